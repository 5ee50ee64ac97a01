use resilience::{Rejected, bulkhead, rate_limited, retry};

#[derive(Debug)]
struct ApiError(Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

#[retry(attempts = 3)]
#[rate_limited]
#[bulkhead(max_concurrent = 0, max_wait = "1s")]
async fn fetch(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
