//! `retry_if` takes a path to a plain fn, a generic fn, or an associated fn.

use std::fmt::Display;
use std::sync::atomic::{AtomicU32, Ordering};

use resilience::{HttpError, retry};

fn is_server_error(error: &HttpError) -> bool {
    error.status() >= 500
}

fn mentions_teapot<E: Display>(error: &E) -> bool {
    error.to_string().contains("418")
}

static TRIES: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 3, base = "1ms", retry_if = is_server_error)]
async fn plain() -> Result<u32, HttpError> {
    if TRIES.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(HttpError::new(500));
    }
    Ok(1)
}

#[retry(attempts = 3, base = "1ms", retry_if = mentions_teapot)]
fn generic() -> Result<u32, HttpError> {
    Err(HttpError::new(404))
}

struct Service;

impl Service {
    fn retryable(error: &HttpError) -> bool {
        error.status() == 503
    }

    #[retry(attempts = 2, base = "1ms", retry_if = Self::retryable)]
    async fn call(&self) -> Result<u32, HttpError> {
        Ok(2)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tokio::time::pause();
    assert_eq!(plain().await.unwrap(), 1);
    assert_eq!(TRIES.load(Ordering::SeqCst), 2);
    assert_eq!(generic().unwrap_err().status(), 404);
    assert_eq!(Service.call().await.unwrap(), 2);
}
