//! `#[cached]` on free functions and `&self` methods, with keys of every argument (owned,
//! borrowed, a user type), a `key` expression, a parameter named `key`, and each handle.
#![deny(warnings)]

use std::sync::Arc;

use resilience::cached;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct UserId(u64);

#[derive(Debug, Clone, PartialEq)]
struct User {
    id: u64,
    name: String,
}

/// Docs and attributes on the function are kept.
#[cached(ttl = "60s", max_entries = 1_000, ttl_jitter = 0.1)]
#[inline]
pub async fn user(id: UserId, region: &str) -> Option<User> {
    Some(User {
        id: id.0,
        name: format!("user in {region}"),
    })
}

#[cached(ttl = "1m", key = key.to_ascii_lowercase())]
async fn lookup(key: &str, verbose: bool) -> Result<Arc<String>, std::io::Error> {
    let _ = verbose;
    Ok(Arc::new(key.to_string()))
}

#[cached(ttl = "10s", negative_ttl = "1s", stale_while_revalidate = "30s")]
fn parse(text: String) -> Result<u64, std::num::ParseIntError> {
    text.parse()
}

#[cached(ttl = "1h")]
fn config() -> Vec<(String, String)> {
    vec![("mode".to_string(), "fast".to_string())]
}

struct Repo {
    prefix: String,
}

impl Repo {
    #[cached(ttl = "60s")]
    async fn find(&self, id: u64, tags: &[u8]) -> Result<String, String> {
        Ok(format!("{}{id}:{}", self.prefix, tags.len()))
    }

    #[cached(ttl = "60s", policy = "repo-count")]
    fn count(&self) -> usize {
        self.prefix.len()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(user(UserId(1), "eu").await.map(|user| user.id), Some(1));
    assert!(user_cache().invalidate(&(UserId(1), "eu".to_string())));

    assert_eq!(*lookup("Key", true).await.unwrap(), "Key");
    assert_eq!(*lookup("KEY", false).await.unwrap(), "Key");
    assert!(lookup_cache().invalidate(&"key".to_string()));

    assert!(parse("x".to_string()).is_err());
    assert_eq!(parse("7".to_string()), Ok(7));
    assert_eq!(config().len(), 1);
    config_cache().invalidate_all();

    let repo = Repo {
        prefix: "r".to_string(),
    };
    assert_eq!(repo.find(1, &[1, 2]).await.unwrap(), "r1:2");
    assert!(Repo::find_cache().invalidate(&(1u64, vec![1u8, 2])));
    assert_eq!(repo.count(), 1);
    assert_eq!(Repo::count_cache().counts().loads, 1);
}
