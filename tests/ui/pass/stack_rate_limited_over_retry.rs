//! `#[rate_limited] #[retry]`: one permit covers the whole retry loop. The path form
//! `#[resilience::rate_limited(...)]` stacks the same way.
#![deny(warnings)]

use std::sync::atomic::{AtomicU32, Ordering};

use resilience::{HttpError, Rejected, rate_limited, retry};

#[derive(Debug)]
enum ApiError {
    Rejected(Rejected),
    Http(HttpError),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Rejected(rejected) => rejected.fmt(f),
            ApiError::Http(http) => http.fmt(f),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Rejected(rejected) => Some(rejected),
            ApiError::Http(http) => Some(http),
        }
    }
}

static CALLS: AtomicU32 = AtomicU32::new(0);

/// One permit, then two tries: the 503 of the first try is retried inside the permit.
#[rate_limited(calls = 1, period = "1h", mode = "reject")]
#[retry(attempts = 3, base = "1ms", on = [503])]
async fn fetch(id: u64) -> Result<u64, ApiError> {
    if CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(ApiError::Http(HttpError::new(503)));
    }
    Ok(id)
}

static PATH_CALLS: AtomicU32 = AtomicU32::new(0);

/// The path form, below and above `#[retry]`.
#[resilience::rate_limited(calls = 1, period = "1h", mode = "reject")]
#[retry(attempts = 2, base = "1ms", on = [503])]
async fn by_path(id: u64) -> Result<u64, ApiError> {
    if PATH_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(ApiError::Http(HttpError::new(503)));
    }
    Ok(id)
}

#[retry(attempts = 2, base = "1ms")]
#[resilience::rate_limited(calls = 1000, period = "1s", burst = 2)]
fn by_path_blocking(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(fetch(1).await.unwrap(), 1);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    let refused = fetch(2).await.unwrap_err();
    assert!(
        matches!(refused, ApiError::Rejected(Rejected::RateLimited { .. })),
        "{refused}"
    );
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);

    assert_eq!(by_path(3).await.unwrap(), 3);
    assert_eq!(PATH_CALLS.load(Ordering::SeqCst), 2);
    assert!(by_path(4).await.is_err());

    assert_eq!(by_path_blocking(5).unwrap(), 5);
}
