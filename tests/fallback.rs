//! `#[fallback(path)]` and `.fallback(..)`: called with the final error (after every retry),
//! never on success, for blocking and async functions and async fallbacks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{HttpError, Retry, fallback, retry};
use tokio::time::Instant;

/// The errors the fallbacks were called with.
static SEEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());

fn seen() -> Vec<u16> {
    std::mem::take(&mut *SEEN.lock().unwrap_or_else(|e| e.into_inner()))
}

fn remember(error: &HttpError) {
    SEEN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(error.status());
}

fn from_cache(error: HttpError) -> Result<String, HttpError> {
    remember(&error);
    match error.status() {
        503 => Ok("cached".to_string()),
        _ => Err(error),
    }
}

async fn from_cache_later(error: HttpError) -> Result<String, HttpError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    from_cache(error)
}

static TRIES: AtomicU32 = AtomicU32::new(0);

/// Fails with 502, then 504, then 503: the last error reaches the fallback.
#[fallback(from_cache)]
#[retry(attempts = 3, base = "100ms")]
async fn flaky(fail: bool) -> Result<String, HttpError> {
    let tries = TRIES.fetch_add(1, Ordering::Relaxed) + 1;
    match (fail, tries) {
        (false, _) => Ok(format!("fresh after {tries}")),
        (true, 1) => Err(HttpError::new(502)),
        (true, 2) => Err(HttpError::new(504)),
        (true, _) => Err(HttpError::new(503)),
    }
}

#[fallback(from_cache_later)]
async fn not_found(status: u16) -> Result<String, HttpError> {
    Err(HttpError::new(status))
}

#[fallback(from_cache)]
fn blocking(status: Option<u16>) -> Result<String, HttpError> {
    match status {
        Some(status) => Err(HttpError::new(status)),
        None => Ok("fresh".to_string()),
    }
}

// One test for the statics.
#[tokio::test(start_paused = true)]
async fn the_fallback_sees_the_final_error_once() {
    // Three tries (0, 100, 300 ms), then the fallback with the third error.
    let started = Instant::now();
    assert_eq!(flaky(true).await, Ok("cached".to_string()));
    assert_eq!(TRIES.swap(0, Ordering::Relaxed), 3);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    assert_eq!(seen(), [503]);

    // Success: no fallback.
    assert_eq!(flaky(false).await, Ok("fresh after 1".to_string()));
    assert_eq!(seen(), Vec::<u16>::new());

    // An async fallback, awaited; its own failure is the call's.
    let started = Instant::now();
    assert_eq!(not_found(503).await, Ok("cached".to_string()));
    assert_eq!(not_found(404).await, Err(HttpError::new(404)));
    assert_eq!(started.elapsed(), Duration::from_millis(10));
    assert_eq!(seen(), [503, 404]);

    // A blocking fn.
    assert_eq!(blocking(Some(503)), Ok("cached".to_string()));
    assert_eq!(blocking(None), Ok("fresh".to_string()));
    assert_eq!(blocking(Some(500)), Err(HttpError::new(500)));
    assert_eq!(seen(), [503, 500]);

    // The builder: after two tries (100 ms apart), the closure with the last error.
    let retry = Retry::new().attempts(2).fallback(|error: HttpError| {
        remember(&error);
        Ok::<_, HttpError>(0)
    });
    let started = Instant::now();
    let mut calls = 0u16;
    let answer = retry
        .run(|| {
            calls += 1;
            let status = 501 + calls;
            async move { Err(HttpError::new(status)) }
        })
        .await;
    assert_eq!((answer, calls), (Ok(0), 2));
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    assert_eq!(seen(), [503]);
    assert_eq!(retry.run(|| async { Ok(7) }).await, Ok(7));
    assert_eq!(
        retry.run_blocking(|| Err(HttpError::new(404))),
        Ok(0),
        "404 is not retried: at once"
    );
    assert_eq!(seen(), [404]);
}

#[derive(Debug, PartialEq)]
enum ApiError {
    Http(HttpError),
    Refused,
}

impl From<resilience::Rejected> for ApiError {
    fn from(_: resilience::Rejected) -> Self {
        ApiError::Refused
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl resilience::Classify for ApiError {
    fn class(&self) -> resilience::ErrorClass {
        match self {
            ApiError::Http(http) => http.class(),
            ApiError::Refused => resilience::ErrorClass::Other,
        }
    }
}

/// A pipeline's fallback (here an async closure) sees the error left after the policy's retries.
#[tokio::test(start_paused = true)]
async fn a_pipeline_falls_back_after_its_retries() {
    resilience::config::load_str(
        "policies:\n  fallback-pipeline: { retry: { attempts: 3, base: 100ms } }\n",
    )
    .unwrap();
    let pipeline = resilience::pipeline::Pipeline::policy("fallback-pipeline").fallback(
        |error: ApiError| async move {
            match error {
                ApiError::Http(http) => Ok(http.status()),
                refused => Err(refused),
            }
        },
    );
    let started = Instant::now();
    let mut calls = 0u16;
    let answer = pipeline
        .run(|| {
            calls += 1;
            let status = 501 + calls;
            async move { Err::<u16, _>(ApiError::Http(HttpError::new(status))) }
        })
        .await;
    // 502, 503, 504: three tries, 100 + 200 ms apart; the fallback gets the 504.
    assert_eq!((answer, calls), (Ok(504), 3));
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}
