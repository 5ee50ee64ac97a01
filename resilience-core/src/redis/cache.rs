//! A cache kept in Redis: values serialized with serde, so every instance of a service shares
//! one copy of each entry, and one load per key across instances.
//!
//! Entry format (the value of key `{key_prefix}cache:{function}:{key as JSON}`): one version
//! byte (1), one freshness byte (0: a value, 1: a cached failure, under `negative_ttl`), then
//! the value as JSON. An entry with another version byte is a miss, never misread. Redis
//! expires entries (`PX`, with the site's `ttl_jitter` applied).
//!
//! Cross-instance single-flight: on a miss, an instance takes the lock
//! `{entry key}:lock` (`SET NX PX`, [`LOCK`]) and loads; the others poll the entry every
//! [`POLL`] and, if it has not appeared when the lock would have expired, load themselves. A
//! crashed holder's lock expires by itself.

use std::time::Duration;

use super::connection::{Backend, BackendError};
use crate::cache::Freshness;

/// How long a loader holds the lock at most (and how long the others wait for its value).
pub(crate) const LOCK: Duration = Duration::from_secs(5);
/// How often a waiting instance looks for the loader's value.
pub(crate) const POLL: Duration = Duration::from_millis(20);

const VERSION: u8 = 1;

/// Encodes a stored value and its freshness.
pub(crate) fn frame(freshness: Freshness, json: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(json.len() + 2);
    bytes.push(VERSION);
    bytes.push(match freshness {
        Freshness::Positive => 0,
        Freshness::Negative => 1,
    });
    bytes.extend_from_slice(json);
    bytes
}

/// Decodes an entry: its freshness and JSON; `None` for another format version.
pub(crate) fn unframe(bytes: &[u8]) -> Option<(Freshness, &[u8])> {
    match bytes {
        [VERSION, 0, json @ ..] => Some((Freshness::Positive, json)),
        [VERSION, 1, json @ ..] => Some((Freshness::Negative, json)),
        _ => None,
    }
}

pub(crate) async fn get(
    backend: &Backend,
    timeout: Duration,
    key: &str,
) -> Result<Option<Vec<u8>>, BackendError> {
    backend
        .run(timeout, |mut connection| async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<Vec<u8>>>(&mut connection)
                .await
        })
        .await
}

pub(crate) async fn set(
    backend: &Backend,
    timeout: Duration,
    key: &str,
    bytes: &[u8],
    ttl: Duration,
) -> Result<(), BackendError> {
    let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    backend
        .run(timeout, |mut connection| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(bytes)
                .arg("PX")
                .arg(millis)
                .query_async::<()>(&mut connection)
                .await
        })
        .await
}

/// Takes the load lock of `key`; `true` when this instance got it.
pub(crate) async fn lock(
    backend: &Backend,
    timeout: Duration,
    key: &str,
) -> Result<bool, BackendError> {
    let lock = format!("{key}:lock");
    let millis = u64::try_from(LOCK.as_millis()).unwrap_or(u64::MAX);
    backend
        .run(timeout, |mut connection| async move {
            redis::cmd("SET")
                .arg(&lock)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(millis)
                .query_async::<Option<String>>(&mut connection)
                .await
                .map(|answer| answer.is_some())
        })
        .await
}

/// Deletes keys (an entry and its lock, or the results of [`keys`]).
pub(crate) async fn delete(
    backend: &Backend,
    timeout: Duration,
    keys: Vec<String>,
) -> Result<(), BackendError> {
    if keys.is_empty() {
        return Ok(());
    }
    backend
        .run(timeout, |mut connection| async move {
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<()>(&mut connection)
                .await
        })
        .await
}

/// Every key starting with `prefix` (SCAN, so a large database is not blocked).
pub(crate) async fn keys(
    backend: &Backend,
    timeout: Duration,
    prefix: &str,
) -> Result<Vec<String>, BackendError> {
    let pattern = format!("{}*", prefix.replace('*', "\\*").replace('?', "\\?"));
    backend
        .run(timeout, |mut connection| async move {
            let mut found = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut connection)
                    .await?;
                found.extend(batch);
                if next == 0 {
                    return Ok(found);
                }
                cursor = next;
            }
        })
        .await
}
