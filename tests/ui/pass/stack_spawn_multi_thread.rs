//! A `#[rate_limited]` `async fn`, alone and in a full stack, stays `Send`: it can be spawned
//! on a multi-thread runtime.
#![deny(warnings)]

use std::sync::Arc;

use resilience::{Rejected, bulkhead, rate_limited, retry};

#[derive(Debug)]
struct ApiError(#[allow(dead_code)] Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

#[rate_limited(calls = 1000, period = "1s", burst = 8, key = region.as_str())]
async fn fetch_user(id: u64, region: Arc<String>) -> Result<String, ApiError> {
    tokio::task::yield_now().await;
    Ok(format!("user {id} in {region}"))
}

#[bulkhead(max_concurrent = 2, max_wait = "10s")]
#[rate_limited(calls = 1000, period = "1s", burst = 8)]
#[retry(attempts = 3, backoff = "exp", jitter = 0.2)]
async fn fetch_stacked(id: u64, region: Arc<String>) -> Result<String, ApiError> {
    tokio::task::yield_now().await;
    Ok(format!("user {id} in {region}"))
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let region = Arc::new("eu".to_string());
    let handles: Vec<_> = (0..4)
        .map(|id| tokio::spawn(assert_send(fetch_user(id, region.clone()))))
        .collect();
    for (id, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await.unwrap().unwrap(), format!("user {id} in eu"));
    }
    let handles: Vec<_> = (0..4)
        .map(|id| tokio::spawn(assert_send(fetch_stacked(id, region.clone()))))
        .collect();
    for (id, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await.unwrap().unwrap(), format!("user {id} in eu"));
    }
}
