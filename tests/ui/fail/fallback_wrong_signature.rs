use resilience::{HttpError, fallback};

// Returns the value alone, but the function returns `Result<u64, HttpError>`.
fn zero(_error: HttpError) -> u64 {
    0
}

// Takes the error by reference, but it is handed over by value.
fn by_ref(_error: &HttpError) -> Result<u64, HttpError> {
    Ok(0)
}

#[fallback(zero)]
async fn fetch(id: u64) -> Result<u64, HttpError> {
    Ok(id)
}

#[fallback(by_ref)]
fn fetch_blocking(id: u64) -> Result<u64, HttpError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
    let _ = fetch_blocking(1);
}
