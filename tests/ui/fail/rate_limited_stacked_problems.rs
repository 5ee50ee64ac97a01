use resilience::{Rejected, bulkhead, rate_limited, retry};

#[derive(Debug)]
struct ApiError(Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

#[retry(attemps = 3)]
#[rate_limited(cals = 20, period = "1s")]
#[bulkhead(max_concurrent = 0)]
async fn fetch(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
