use resilience::{HttpError, retry};

fn is_server_error(error: &HttpError) -> bool {
    error.status() >= 500
}

#[retry(on = [503], retry_if = is_server_error)]
async fn fetch(id: u64) -> Result<u64, HttpError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
