use resilience::{HttpError, retry};

#[retry(jitter = 0.1, attempts = 3, jitter = 0.2)]
async fn fetch(id: u64) -> Result<u64, HttpError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
