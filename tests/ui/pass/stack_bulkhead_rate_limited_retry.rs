//! `#[bulkhead] #[rate_limited] #[retry]`: three layers in the written order, on an
//! `async fn` and a blocking `fn`, and the same stack written with paths.
#![deny(warnings)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{HttpError, Rejected, bulkhead, rate_limited, retry};

#[derive(Debug)]
enum ApiError {
    Rejected(Rejected),
    #[allow(dead_code)]
    Http(HttpError),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

static IN_FLIGHT: AtomicU32 = AtomicU32::new(0);
static MOST: AtomicU32 = AtomicU32::new(0);

/// At most two calls inside at once; the others wait for a slot up to a minute.
#[bulkhead(max_concurrent = 2, max_wait = "1m")]
#[rate_limited(calls = 100, period = "1s", burst = 10)]
#[retry(attempts = 2, base = "1ms")]
async fn work(id: u64) -> Result<u64, ApiError> {
    let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
    MOST.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(10)).await;
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    Ok(id)
}

#[bulkhead(max_concurrent = 1)]
#[rate_limited(calls = 1000, period = "1s", mode = "wait", max_wait = "1s")]
#[retry(attempts = 2, base = "1ms")]
fn blocking(id: u64) -> Result<u64, ApiError> {
    Ok(id * 2)
}

#[resilience::bulkhead(max_concurrent = 4)]
#[resilience::rate_limited(calls = 10, period = "1s", burst = 3)]
#[resilience::retry(attempts = 2)]
async fn by_path(id: u64) -> Result<u64, ApiError> {
    Ok(id + 1)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let calls: Vec<_> = (0..5).map(work).collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(tokio::spawn(call));
    }
    for (id, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.await.unwrap().unwrap(), id as u64);
    }
    assert_eq!(MOST.load(Ordering::SeqCst), 2);

    assert_eq!(blocking(4).unwrap(), 8);
    assert_eq!(by_path(1).await.unwrap(), 2);
}
