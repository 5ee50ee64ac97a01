//! Parameters named like the macro's own keys and internals do not collide with the
//! generated bindings.

use resilience::{HttpError, retry};

#[retry(attempts = 2, base = "1ms", policy = "user-api")]
async fn lookup(key: u64, policy: String, site: &str) -> Result<String, HttpError> {
    Ok(format!("{key}/{policy}/{site}"))
}

#[retry(attempts = 2, base = "1ms")]
fn blocking(key: &str, site: u8, policy: Option<u8>) -> Result<String, HttpError> {
    Ok(format!("{key}/{site}/{policy:?}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(lookup(1, "p".to_string(), "s").await.unwrap(), "1/p/s");
    assert_eq!(blocking("k", 2, None).unwrap(), "k/2/None");
}
