use resilience::{HttpError, retry};

fn is_server_error(status: u16) -> bool {
    status >= 500
}

#[retry(retry_if = is_server_error)]
async fn fetch(id: u64) -> Result<u64, HttpError> {
    Ok(id)
}

fn main() {
    let _ = fetch(1);
}
