use resilience::{Rejected, rate_limited};

#[derive(Debug)]
struct ApiError(Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

#[rate_limited(calls = 90_000, period = "1m", burst = 10_000, cost = 120_000)]
async fn complete(prompt: &str) -> Result<usize, ApiError> {
    Ok(prompt.len())
}

fn main() {
    let _ = complete("hi");
}
