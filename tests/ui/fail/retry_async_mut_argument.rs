use resilience::{HttpError, retry};

#[retry(attempts = 3)]
async fn fill(buffer: &mut Vec<u8>) -> Result<usize, HttpError> {
    buffer.push(1);
    Ok(buffer.len())
}

fn main() {
    let mut buffer = Vec::new();
    let _ = fill(&mut buffer);
}
