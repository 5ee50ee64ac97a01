//! A `#[cached]` `async fn`, alone and stacked over `#[retry]` and `#[rate_limited]`, stays
//! `Send`: it can be spawned on a multi-thread runtime, and concurrent callers share one load.
#![deny(warnings)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use resilience::{HttpError, Rejected, cached, rate_limited, retry};

#[derive(Debug, Clone)]
struct ApiError(#[allow(dead_code)] String);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected.to_string())
    }
}

impl From<HttpError> for ApiError {
    fn from(error: HttpError) -> Self {
        ApiError(error.to_string())
    }
}

static LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "60s")]
async fn profile(id: u64, region: Arc<String>) -> Result<String, ApiError> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    tokio::task::yield_now().await;
    Ok(format!("user {id} in {region}"))
}

#[cached(ttl = "60s", negative_ttl = "1s")]
#[rate_limited(calls = 1000, period = "1s", burst = 8)]
#[retry(attempts = 3, base = "1ms")]
async fn stacked(id: u64, region: &str) -> Result<String, ApiError> {
    tokio::task::yield_now().await;
    Ok(format!("user {id} in {region}"))
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let region = Arc::new("eu".to_string());
    let handles: Vec<_> = (0..16)
        .map(|_| tokio::spawn(assert_send(profile(7, region.clone()))))
        .collect();
    for handle in handles {
        assert_eq!(handle.await.unwrap().unwrap(), "user 7 in eu");
    }
    assert_eq!(LOADS.load(Ordering::SeqCst), 1);
    let handles: Vec<_> = (0..4)
        .map(|id| tokio::spawn(assert_send(async move { stacked(id, "eu").await })))
        .collect();
    for (id, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await.unwrap().unwrap(), format!("user {id} in eu"));
    }
    assert_eq!(stacked_cache().counts().loads, 4);
}
