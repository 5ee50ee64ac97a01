use resilience::{Rejected, rate_limited};

#[derive(Debug)]
struct ApiError(Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

#[rate_limited(calls = 10, period = "1s", cost = -2)]
async fn negative(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

#[rate_limited(calls = 10, period = "1s", cost = 1.5)]
async fn fractional(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

#[rate_limited(calls = 10, period = "1s", cost = "3")]
async fn quoted(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

#[rate_limited(calls = 10, period = "1s", cots = 3)]
async fn misspelt(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

fn main() {
    let _ = (negative(1), fractional(1), quoted(1), misspelt(1));
}
