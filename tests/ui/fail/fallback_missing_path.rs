use resilience::{HttpError, fallback};

#[fallback]
async fn fetch(id: u64) -> Result<u64, HttpError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
