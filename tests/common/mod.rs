//! Helpers shared by the behaviour tests.

#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use resilience::{Classification, Classify, ErrorClass, HttpError, Rejected};

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A user error type as the README recommends: it carries the server's answers and the
/// runtime's refusals, and classifies itself by delegating `classification()`, so a refusal
/// stays marked local. Cloneable, so `negative_ttl` can store it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ApiError {
    Http(HttpError),
    Rejected(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        self.classification().class
    }
    fn retry_after(&self) -> Option<Duration> {
        self.classification().retry_after
    }
    fn classification(&self) -> Classification {
        match self {
            ApiError::Http(error) => error.classification(),
            ApiError::Rejected(rejected) => rejected.classification(),
        }
    }
}
