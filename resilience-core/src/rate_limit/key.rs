//! [`RateKey`]: a key value of a keyed limiter, as this process and as every instance see it.
//!
//! Two hashes, for two jobs. In memory, [`key_hash`]: foldhash with a per-process random seed,
//! fast, and a caller cannot choose keys that collide with someone else's. In Redis the key
//! must be the same in every instance, so it cannot have a random seed: [`stable_hash`],
//! 64-bit FNV-1a (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) over the bytes the
//! key's `Hash` implementation writes, with every integer written little-endian and `usize` /
//! `isize` as 64 bits, so the same key value gives the same hash in every process, on every
//! platform, and in every version of this crate that keeps this algorithm (changing it would
//! split the schedules of a rolling deploy: it is part of the Redis key format).

use std::hash::{Hash, Hasher};

use super::key_hash;

/// A key value of a `#[rate_limited(key = ...)]` call, hashed for this process's limiter and,
/// for a site naming a policy (whose backend may be Redis), for the schedule every instance
/// shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub struct RateKey {
    local: u64,
    shared: Option<u64>,
}

impl RateKey {
    /// The key of a site without a policy: it never leaves this process, so only the fast
    /// in-process hash is computed.
    #[inline]
    pub fn local<K: Hash + ?Sized>(key: &K) -> Self {
        RateKey {
            local: key_hash(key),
            shared: None,
        }
    }

    /// The key of a site naming a policy: also the [`stable_hash`] a Redis backend keys the
    /// schedule by.
    #[inline]
    pub fn shared<K: Hash + ?Sized>(key: &K) -> Self {
        RateKey {
            local: key_hash(key),
            shared: Some(stable_hash(key)),
        }
    }

    /// The hash for this process's limiter ([`key_hash`]).
    #[inline]
    pub fn hash(self) -> u64 {
        self.local
    }

    /// The hash every instance agrees on ([`stable_hash`]); for a key made by
    /// [`local`](Self::local), which the macro makes only for sites that cannot reach Redis,
    /// the in-process hash.
    #[inline]
    pub fn stable(self) -> u64 {
        self.shared.unwrap_or(self.local)
    }
}

/// The hash of `key` that every process, platform and version computes alike: 64-bit FNV-1a
/// of the bytes its `Hash` implementation writes (integers little-endian, `usize` and `isize`
/// as 64 bits). For a `str` that is its UTF-8 bytes and a `0xff` (what `Hash for str` writes).
///
/// Distinct values share a schedule only on a 64-bit collision (the strict side). Unlike
/// [`key_hash`] it has no secret seed (every instance must agree on it), so a caller who
/// chooses key values could search for one that collides with another key's.
pub fn stable_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = Fnv1a(0xcbf2_9ce4_8422_2325);
    key.hash(&mut hasher);
    hasher.0
}

/// 64-bit FNV-1a, with the integer writes made independent of the platform.
struct Fnv1a(u64);

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }
    fn write_u16(&mut self, i: u16) {
        self.write(&i.to_le_bytes());
    }
    fn write_u32(&mut self, i: u32) {
        self.write(&i.to_le_bytes());
    }
    fn write_u64(&mut self, i: u64) {
        self.write(&i.to_le_bytes());
    }
    fn write_u128(&mut self, i: u128) {
        self.write(&i.to_le_bytes());
    }
    fn write_usize(&mut self, i: usize) {
        // 64 bits on every platform: `usize` fits (no platform has more than 64 bits).
        self.write_u64(i as u64);
    }
    fn write_i8(&mut self, i: i8) {
        self.write_u8(i as u8);
    }
    fn write_i16(&mut self, i: i16) {
        self.write_u16(i as u16);
    }
    fn write_i32(&mut self, i: i32) {
        self.write_u32(i as u32);
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    fn write_i128(&mut self, i: i128) {
        self.write_u128(i as u128);
    }
    fn write_isize(&mut self, i: isize) {
        self.write_i64(i as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stable_hash_is_64_bit_fnv_1a_of_the_hash_stream() {
        // Published FNV-1a test vectors, through `Hasher::write`.
        let fnv = |bytes: &[u8]| {
            let mut hasher = Fnv1a(0xcbf2_9ce4_8422_2325);
            hasher.write(bytes);
            hasher.finish()
        };
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
        // A `str` writes its bytes and 0xff; a `String` the same; an integer its
        // little-endian bytes, `usize` as 64 bits. These values are part of the Redis key
        // format: they must never change.
        assert_eq!(stable_hash("org"), fnv(b"org\xff"));
        assert_eq!(stable_hash(&String::from("org")), stable_hash("org"));
        assert_eq!(stable_hash(&7u32), fnv(&[7, 0, 0, 0]));
        assert_eq!(stable_hash(&7usize), fnv(&[7, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(stable_hash(&-1i16), fnv(&[0xff, 0xff]));
        assert_eq!(stable_hash(&("org", 7u8)), fnv(b"org\xff\x07"));
        assert_eq!(stable_hash("org"), 0xe60e_b4b4_589c_4712);
    }

    #[test]
    fn a_local_key_has_no_shared_hash_and_a_shared_one_has_both() {
        let local = RateKey::local("org");
        let shared = RateKey::shared("org");
        assert_eq!(local.hash(), key_hash("org"));
        assert_eq!(shared.hash(), key_hash("org"));
        assert_eq!(shared.stable(), stable_hash("org"));
        assert_eq!(local.stable(), key_hash("org"));
    }
}
