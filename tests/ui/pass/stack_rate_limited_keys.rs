//! `key = expr` over the arguments: a `&str` argument, a parameter named `key`, an
//! expression over two arguments, and a field of `&self` in a method.
#![deny(warnings)]

use resilience::{Rejected, rate_limited, retry};

#[derive(Debug)]
struct ApiError(#[allow(dead_code)] Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

/// One permit per hour per user.
#[rate_limited(calls = 1, period = "1h", mode = "reject", key = user)]
async fn per_user(user: &str, page: u32) -> Result<String, ApiError> {
    Ok(format!("{user}:{page}"))
}

/// A parameter named `key` is just an argument.
#[rate_limited(calls = 1, period = "1h", mode = "reject", key = key)]
fn per_key(key: u64) -> Result<u64, ApiError> {
    Ok(key)
}

/// An expression over several arguments, under a `#[retry]`.
#[retry(attempts = 2, base = "1ms")]
#[rate_limited(calls = 1, period = "1h", mode = "reject", key = (tenant, id % 2))]
async fn per_tenant_parity(tenant: &str, id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

struct Client {
    name: String,
}

impl Client {
    /// A `&self` method keyed by a field of `self` and an argument.
    #[rate_limited(calls = 1, period = "1h", mode = "reject", key = (&self.name, region))]
    async fn get(&self, region: &str, id: u64) -> Result<String, ApiError> {
        Ok(format!("{}/{region}/{id}", self.name))
    }

    #[rate_limited(calls = 1, period = "1h", mode = "reject")]
    #[retry(attempts = 2, base = "1ms")]
    fn name(&self) -> Result<&str, ApiError> {
        Ok(&self.name)
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(per_user("ann", 1).await.unwrap(), "ann:1");
    assert_eq!(per_user("bob", 1).await.unwrap(), "bob:1");
    assert!(per_user("ann", 2).await.is_err());

    assert_eq!(per_key(1).unwrap(), 1);
    assert_eq!(per_key(2).unwrap(), 2);
    assert!(per_key(1).is_err());

    assert_eq!(per_tenant_parity("t", 1).await.unwrap(), 1);
    assert_eq!(per_tenant_parity("t", 2).await.unwrap(), 2);
    assert!(per_tenant_parity("t", 3).await.is_err());
    assert_eq!(per_tenant_parity("u", 3).await.unwrap(), 3);

    let client = Client {
        name: "api".to_string(),
    };
    assert_eq!(client.get("eu", 1).await.unwrap(), "api/eu/1");
    assert_eq!(client.get("us", 1).await.unwrap(), "api/us/1");
    assert!(client.get("eu", 2).await.is_err());
    assert_eq!(client.name().unwrap(), "api");
    assert!(client.name().is_err());
}
