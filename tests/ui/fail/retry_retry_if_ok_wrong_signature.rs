use resilience::{HttpError, retry};

// Takes the body as text, but the function's `Ok` value is a `u64`.
fn is_empty(body: &String) -> bool {
    body.is_empty()
}

#[retry(retry_if_ok = is_empty)]
async fn fetch(id: u64) -> Result<u64, HttpError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
