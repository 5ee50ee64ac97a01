use resilience::{retry, HttpError};

// The whole part times the unit fits in u128 and the fraction overflows it: this panicked
// inside the macro ("custom attribute panicked", no span).
#[retry(base = "340282366920938463463374607431.9s", max_delay = "99999999999999999999h")]
async fn fetch() -> Result<u32, HttpError> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
