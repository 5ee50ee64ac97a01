use resilience::{HttpError, retry};

#[retry(on = [Timeout, 600])]
async fn fetch(id: u64) -> Result<u64, HttpError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
