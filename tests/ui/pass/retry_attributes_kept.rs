//! Doc comments and other attributes on the function are kept.
#![deny(unused_must_use, missing_docs)]

use resilience::{HttpError, retry};

/// The answer, retried.
#[must_use]
#[inline]
#[allow(clippy::unnecessary_wraps, non_snake_case)]
#[retry(
    attempts = 2,
    base = "1ms",
    backoff = "constant",
    jitter = "full",
    max_delay = "1s"
)]
pub fn Answer() -> Result<u32, HttpError> {
    Ok(42)
}

/// The same, asynchronous, with every key given once.
#[doc(alias = "answer")]
#[retry(
    attempts = 4,
    backoff = "linear",
    base = "10ms",
    factor = 1.5,
    max_delay = "2s",
    max_elapsed = "1m",
    jitter = "decorrelated",
    retry_after = false,
    policy = "answers"
)]
#[must_use = "the answer matters"]
pub async fn answer_async() -> Result<u32, HttpError> {
    Ok(42)
}

fn is_server_error(error: &HttpError) -> bool {
    error.status() >= 500
}

/// A predicate replaces `on`.
#[retry(attempts = 2, base = "1ms", retry_if = is_server_error)]
pub async fn predicate() -> Result<(), HttpError> {
    Ok(())
}

/// Entry point.
#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    assert_eq!(Answer().unwrap(), 42);
    assert_eq!(answer_async().await.unwrap(), 42);
    predicate().await.unwrap();
}
