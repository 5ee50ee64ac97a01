//! `policy = "name"` alone: no `calls`/`period` (or `max_concurrent`) inline. With no policy
//! file loaded the inline values are unlimited, and every site naming a policy shares it.
#![deny(warnings)]

use resilience::{Rejected, bulkhead, rate_limited, retry};

#[derive(Debug)]
struct ApiError(#[allow(dead_code)] Rejected);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(rejected)
    }
}

#[rate_limited(policy = "github")]
async fn list_repos(org: &str) -> Result<Vec<String>, ApiError> {
    Ok(vec![format!("{org}/one")])
}

#[rate_limited(policy = "github")]
fn list_repos_blocking(org: &str) -> Result<usize, ApiError> {
    Ok(org.len())
}

#[bulkhead(policy = "db")]
#[rate_limited(policy = "db", mode = "reject")]
#[retry(policy = "db")]
async fn query(sql: &str) -> Result<usize, ApiError> {
    Ok(sql.len())
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    for _ in 0..100 {
        assert_eq!(list_repos("rust-lang").await.unwrap(), ["rust-lang/one"]);
        assert_eq!(list_repos_blocking("tokio").unwrap(), 5);
        assert_eq!(query("select 1").await.unwrap(), 8);
    }
}
