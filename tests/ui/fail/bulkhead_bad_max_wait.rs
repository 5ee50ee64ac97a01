use resilience::{Rejected, bulkhead};

#[derive(Debug)]
struct ApiError(Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

#[bulkhead(max_concurrent = 4, max_wait = "1 sek")]
async fn fetch(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
