use resilience::{Rejected, circuit_breaker};

#[derive(Debug)]
struct ApiError(Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

#[circuit_breaker(slow_call = "2s", slow_call_rate = 1.5)]
async fn fetch(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
