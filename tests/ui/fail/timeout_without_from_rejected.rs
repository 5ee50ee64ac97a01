use resilience::timeout;

#[derive(Debug)]
struct ApiError;

#[timeout("1s")]
async fn fetch(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
