//! `#[retry] #[rate_limited]`: the limiter is inside the retry loop, so every try asks it for
//! a permit; on an `async fn` and a blocking `fn`. Neither import is reported unused.
#![deny(warnings)]

use std::sync::atomic::{AtomicU32, Ordering};

use resilience::{Classify, ErrorClass, Rejected, rate_limited, retry};

#[derive(Debug, PartialEq)]
enum ApiError {
    Rejected(Rejected),
    Status(u16),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        match self {
            ApiError::Rejected(rejected) => rejected.class(),
            ApiError::Status(code) => ErrorClass::Status(*code),
        }
    }
}

static CALLS: AtomicU32 = AtomicU32::new(0);

/// Fails with 503 on the first try; the second try finds no permit and is refused at once
/// (a 429 is not in `on`, so the refusal is the result).
#[retry(attempts = 3, base = "1ms", on = [503])]
#[rate_limited(calls = 1, period = "1h", mode = "reject")]
async fn flaky(id: u64) -> Result<u64, ApiError> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Status(503 + id as u16 * 0))
}

static BLOCKING_CALLS: AtomicU32 = AtomicU32::new(0);

/// The same stack on a blocking function: the limiter spaces the tries 1ms apart.
#[retry(attempts = 3, base = "1ms", on = [502])]
#[rate_limited(calls = 1000, period = "1s")]
fn blocking(id: u64) -> Result<u64, ApiError> {
    if BLOCKING_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(ApiError::Status(502));
    }
    Ok(id)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let refused = flaky(1).await.unwrap_err();
    assert!(
        matches!(refused, ApiError::Rejected(Rejected::RateLimited { .. })),
        "{refused:?}"
    );
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);

    assert_eq!(blocking(7), Ok(7));
    assert_eq!(BLOCKING_CALLS.load(Ordering::SeqCst), 2);
}
