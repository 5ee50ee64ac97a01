//! How a cached value is stored in a shared (Redis) cache: a format version, its freshness,
//! then its JSON. Kept beside the cache, so the Redis client only moves bytes.

use super::Freshness;

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
