use resilience::{Rejected, circuit_breaker};

#[derive(Debug)]
struct ApiError(Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

#[circuit_breaker(open_for = "10s", backoff = 0.5)]
async fn fetch(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
