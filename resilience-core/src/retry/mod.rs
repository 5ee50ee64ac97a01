//! Retrying: the policy as plain data ([`RetrySpec`]), the backoff and jitter maths, the
//! decision of what to do after each failure, and the executors.
//!
//! Use [`Retry`] to retry a closure, or `#[retry(...)]` on a function; both run the same
//! executor.

mod backoff;
mod builder;
mod executor;
mod jitter;
mod observer;
mod on;
mod schedule;
mod spec;

pub use crate::hooks::ErrorHooks;
pub use backoff::Backoff;
pub use builder::Retry;
pub use executor::{RetrySite, retry_after_first_failure, retry_async, retry_blocking};
pub use jitter::Jitter;
pub(crate) use observer::counting_retries;
pub use on::RetryOn;
pub use schedule::{Decision, GiveUp, Schedule};
pub use spec::{RetryPatch, RetrySpec};
