use resilience::{HttpError, retry};

#[retry(budget = "")]
async fn fetch() -> Result<u32, HttpError> {
    Ok(1)
}

fn main() {}
