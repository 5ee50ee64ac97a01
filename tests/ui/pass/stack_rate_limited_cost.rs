//! `cost = expr` over the arguments: with `key`, with `policy` (shared, and set by YAML), a
//! `usize` and a `u128` expression, a borrowed value, a literal, a blocking fn, a `&self`
//! method, under `#[retry]` and inside `#[resilient]`.
#![deny(warnings)]

use resilience::{Rejected, rate_limited, resilient, retry};

#[derive(Debug)]
struct ApiError(#[allow(dead_code)] Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

/// An LLM call that takes its token estimate from a per-tenant budget.
#[rate_limited(calls = 100, period = "1m", key = tenant, cost = prompt.len() / 4 + max_tokens)]
async fn complete(tenant: &str, prompt: &str, max_tokens: usize) -> Result<usize, ApiError> {
    Ok(prompt.len() + max_tokens)
}

/// Shared by name, with the cost a parameter named `cost` (a `&u32`).
#[rate_limited(calls = 100, period = "1m", policy = "tokens", cost = cost)]
async fn embed(text: &str, cost: &u32) -> Result<usize, ApiError> {
    Ok(text.len() + *cost as usize)
}

#[retry(attempts = 2, base = "1ms")]
#[rate_limited(policy = "tokens", key = (user, region), cost = bytes as u128)]
fn upload(user: &str, region: &str, bytes: u16) -> Result<u16, ApiError> {
    Ok(bytes + user.len() as u16 + region.len() as u16)
}

#[rate_limited(calls = 10, period = "1s", mode = "reject", cost = 3)]
fn constant() -> Result<(), ApiError> {
    Ok(())
}

#[resilient(policy = "tokens", rate_limit(cost = weight))]
async fn weighed(weight: u8) -> Result<u8, ApiError> {
    Ok(weight)
}

struct Client {
    per_call: u64,
}

impl Client {
    #[rate_limited(calls = 100, period = "1m", cost = self.per_call)]
    async fn get(&self, id: u64) -> Result<u64, ApiError> {
        Ok(id + self.per_call)
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(complete("t", "abcdefgh", 10).await.unwrap(), 18);
    assert_eq!(embed("abc", &5).await.unwrap(), 8);
    assert_eq!(upload("u", "eu", 7).unwrap(), 10);
    // 3 permits at once, then the next call waits 300 ms for them: refused
    assert!(constant().is_ok());
    assert!(constant().is_err());
    assert_eq!(weighed(2).await.unwrap(), 2);
    let client = Client { per_call: 2 };
    assert_eq!(client.get(1).await.unwrap(), 3);
    let spawned = tokio::spawn(async { complete("u", "abcd", 1).await.unwrap() });
    assert_eq!(spawned.await.unwrap(), 5);
}
