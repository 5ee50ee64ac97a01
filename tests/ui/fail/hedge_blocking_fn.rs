use resilience::{HttpError, hedge};

#[hedge(after = "100ms", idempotent = true)]
fn fetch() -> Result<u32, HttpError> {
    Ok(1)
}

fn main() {}
