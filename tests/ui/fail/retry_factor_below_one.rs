use resilience::{HttpError, retry};

#[retry(factor = 0.5)]
async fn fetch(id: u64) -> Result<u64, HttpError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
