//! Helpers shared by the behaviour tests.

#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use resilience::{Classification, Classify, ErrorClass, HttpError, Rejected};

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Reads an HTTP/1.1 request head, up to its blank line, for the loopback servers of the HTTP
/// tests; `None` when the client leaves first.
pub(crate) async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
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
