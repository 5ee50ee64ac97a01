use resilience::{HttpError, retry};

struct Request {
    body: Vec<u8>,
}

#[retry(attempts = 3)]
async fn send(id: u64, request: Request) -> Result<usize, HttpError> {
    Ok(request.body.len() + id as usize)
}

fn main() {
    let _ = send(1, Request { body: Vec::new() });
}
