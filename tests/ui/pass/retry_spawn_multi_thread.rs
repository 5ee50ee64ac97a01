//! An annotated `async fn` stays `Send`: it can be spawned on a multi-thread runtime.

use std::sync::Arc;

use resilience::{HttpError, retry};

#[retry(attempts = 3, backoff = "exp", jitter = 0.2, on = [Timeout, 502, 503])]
async fn fetch_user(id: u64, region: Arc<String>) -> Result<String, HttpError> {
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
}
