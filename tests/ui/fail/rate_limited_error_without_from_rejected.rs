use resilience::rate_limited;

#[derive(Debug)]
struct ApiError;

#[rate_limited(calls = 20, period = "1s")]
async fn fetch(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
