use resilience::{HttpError, hedge};

#[hedge(after = "p100", idempotent = true)]
async fn fetch() -> Result<u32, HttpError> {
    Ok(1)
}

#[hedge(after = "0ms", max = 11, idempotent = true)]
async fn fetch_now() -> Result<u32, HttpError> {
    Ok(1)
}

fn main() {}
