//! How a cached value is stored in a shared (Redis) cache: a format version, its freshness,
//! then its JSON. Kept beside the cache, so the Redis client only moves bytes.
//!
//! Version 1 is `[1, freshness, json..]`. Version 2, written for an entry that may be served
//! after it stops being fresh (`stale_while_revalidate`, `early_refresh`), is
//! `[2, freshness, refresh_below (8 bytes, big-endian milliseconds), json..]`: the entry is
//! fresh while Redis's time to live for it (`PTTL`) is above `refresh_below`, and past that it
//! is served while one caller refreshes it. Reading the time to live from Redis rather than a
//! timestamp from the writer keeps instances with skewed clocks in agreement.

use super::Freshness;

const PLAIN: u8 = 1;
const REFRESHED: u8 = 2;

/// A decoded entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Framed<'a> {
    pub(crate) freshness: Freshness,
    /// Milliseconds of life left below which the entry is no longer fresh (0: fresh until it
    /// expires).
    pub(crate) refresh_below: u64,
    pub(crate) json: &'a [u8],
}

/// Encodes a stored value, its freshness and (when not 0) the time to live below which it
/// is refreshed, in milliseconds.
pub(crate) fn frame(freshness: Freshness, json: &[u8], refresh_below: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(json.len() + 10);
    bytes.push(if refresh_below == 0 { PLAIN } else { REFRESHED });
    bytes.push(match freshness {
        Freshness::Positive => 0,
        Freshness::Negative => 1,
    });
    if refresh_below > 0 {
        bytes.extend_from_slice(&refresh_below.to_be_bytes());
    }
    bytes.extend_from_slice(json);
    bytes
}

/// Decodes an entry; `None` for another format version.
pub(crate) fn unframe(bytes: &[u8]) -> Option<Framed<'_>> {
    let (version, freshness, rest) = match bytes {
        [version, 0, rest @ ..] => (*version, Freshness::Positive, rest),
        [version, 1, rest @ ..] => (*version, Freshness::Negative, rest),
        _ => return None,
    };
    let (refresh_below, json) = match version {
        PLAIN => (0, rest),
        REFRESHED => {
            let (below, json) = rest.split_first_chunk::<8>()?;
            (u64::from_be_bytes(*below), json)
        }
        _ => return None,
    };
    Some(Framed {
        freshness,
        refresh_below,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_and_other_versions_are_misses() {
        let plain = frame(Freshness::Positive, b"[1]", 0);
        assert_eq!(plain, b"\x01\x00[1]");
        let refreshed = frame(Freshness::Positive, b"[1]", 30_000);
        assert_eq!(refreshed[..2], [2, 0]);
        assert_eq!(
            unframe(&refreshed),
            Some(Framed {
                freshness: Freshness::Positive,
                refresh_below: 30_000,
                json: b"[1]"
            })
        );
        assert_eq!(unframe(&plain).map(|framed| framed.refresh_below), Some(0));
        let negative = frame(Freshness::Negative, b"\"gone\"", 0);
        assert_eq!(
            unframe(&negative).map(|framed| framed.freshness),
            Some(Freshness::Negative)
        );
        for other in [
            &b"\x03\x00[1]"[..],
            b"\x02\x00short",
            b"\x01\x07[1]",
            b"",
            b"\x01",
        ] {
            assert_eq!(unframe(other), None, "{other:?}");
        }
    }
}
