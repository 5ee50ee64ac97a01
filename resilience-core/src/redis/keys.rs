//! The names of the keys a policy keeps in Redis, in one place.
//!
//! Every key of a policy carries the policy's name as its hash tag (`{policy}`): Redis
//! Cluster hashes only what is between the first `{` and the next `}`, so the keys one script
//! or one lock uses together (an entry and its lock, a limiter's keys) are served from one slot
//! and never fail with `CROSSSLOT`. On one server a tag is just part of the name.
//!
//! | family | key |
//! |---|---|
//! | rate limiter | `<key_prefix>rl:{<policy>}`, keyed `<key_prefix>rl:{<policy>}:<hash>` |
//! | cache entry | `<key_prefix>cache:{<policy>}:<function>:<key as JSON>` |
//! | its load lock | the entry's key + `:lock` |
//!
//! A `key_prefix` that holds a `{...}` of its own makes that the tag instead: still one per
//! prefix, so the keys used together still share a slot. (One whose first `{` closes at once,
//! `{}`, would make Redis hash whole keys: YAML refuses it.) (Tagging per policy puts all of a
//! policy's keys on one node of a cluster: split a cache too large for one node across
//! policies.)

/// The GCRA key of `policy`'s limiter, or of one key value's (`hash`: its stable hash).
pub(crate) fn limiter(key_prefix: &str, policy: &str, hash: Option<u64>) -> String {
    match hash {
        Some(hash) => format!("{key_prefix}rl:{{{policy}}}:{hash:016x}"),
        None => format!("{key_prefix}rl:{{{policy}}}"),
    }
}

/// The start of every entry key of the cached function `function` under `policy`; the key
/// as JSON follows.
pub(crate) fn function_prefix(key_prefix: &str, policy: &str, function: &str) -> String {
    format!("{key_prefix}cache:{{{policy}}}:{function}:")
}

/// The load lock of the entry `entry`.
pub(crate) fn lock(entry: &str) -> String {
    format!("{entry}:lock")
}

/// CRC16-CCITT (XMODEM), the hash of Redis Cluster's key slots.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for byte in bytes {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot Redis Cluster serves `key` from: the hash of its tag if it has a non-empty one,
/// of the whole key otherwise (where a `SCAN` of a function's keys must run on a cluster).
pub(crate) fn slot(key: &str) -> u16 {
    let hashed = key
        .find('{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.find('}')
                .filter(|close| *close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    crc16(hashed.as_bytes()) & 16383
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_function_is_redis_clusters() {
        // From the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
        assert_eq!(slot("foo{}{bar}"), crc16(b"foo{}{bar}") & 16383);
        assert_eq!(slot("foo{{bar}}zap"), crc16(b"{bar") & 16383);
    }

    /// Each family's keys (a limiter's; a cache's entries and their locks) share one slot per
    /// policy, whatever the prefix, the policy's name, the function or the key; without
    /// braces in the prefix both families share the policy's slot.
    #[test]
    fn the_keys_used_together_share_one_slot() {
        // Not `{}` first: YAML refuses such a prefix (an empty tag hashes the whole key).
        let prefixes = ["resilience:", "", "svc{a}:", "x}", "a{b", "x{a}{}"];
        let policies = ["github", "user-api", "a}b", "a{b", "{", "ünï"];
        for prefix in prefixes {
            for policy in policies {
                let limiter_slot = slot(&limiter(prefix, policy, None));
                assert_eq!(slot(&limiter(prefix, policy, Some(7))), limiter_slot);
                assert_eq!(slot(&limiter(prefix, policy, Some(u64::MAX))), limiter_slot);
                let cache_slot = slot(&function_prefix(prefix, policy, "f"));
                if !prefix.contains('{') {
                    assert_eq!(cache_slot, limiter_slot, "one tag: the policy's");
                }
                for function in ["app::city", "m::f{x}"] {
                    for json in ["[1]", "[\"{k}\"]", "{\"a\":1}"] {
                        let entry = format!("{}{json}", function_prefix(prefix, policy, function));
                        assert_eq!(slot(&entry), cache_slot, "{entry}");
                        assert_eq!(slot(&lock(&entry)), cache_slot, "{entry}");
                    }
                }
            }
        }
        assert_eq!(limiter("p:", "github", None), "p:rl:{github}");
        assert_eq!(
            limiter("p:", "github", Some(0xab)),
            "p:rl:{github}:00000000000000ab"
        );
        assert_eq!(
            function_prefix("p:", "github", "app::repos"),
            "p:cache:{github}:app::repos:"
        );
        assert_ne!(
            slot(&limiter("p:", "github", None)),
            slot(&limiter("p:", "gitlab", None)),
            "policies are spread over slots"
        );
    }
}
