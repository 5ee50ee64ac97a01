use resilience::{Rejected, resilient};

#[derive(Debug)]
struct ApiError(Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

#[resilient(policy = "user-api", timeout = "2 sec.")]
async fn fetch(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
