use resilience::{Rejected, rate_limited};

#[derive(Debug)]
struct ApiError(Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

/// A signed cost: it could be negative.
#[rate_limited(calls = 90_000, period = "1m", cost = delta)]
async fn complete(prompt: &str, delta: i64) -> Result<usize, ApiError> {
    Ok(prompt.len() + delta as usize)
}

fn main() {
    let _ = complete("hi", 1);
}
