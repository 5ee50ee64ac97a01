use resilience::{HttpError, retry};

#[retry(base = "10x")]
async fn fetch(id: u64) -> Result<u64, HttpError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
