//! [`CacheSpec`]: a cache policy as plain data, and [`CachePatch`], a partial override.

use std::time::Duration;

use crate::declare::patch;

/// A cache policy as plain data: what `#[cached(...)]` builds at compile time and what a YAML
/// policy's `cache` section overrides.
///
/// ```
/// # use resilience_config as resilience;
/// use std::time::Duration;
/// use resilience::cache::CacheSpec;
///
/// const CITIES: CacheSpec = CacheSpec::new(Duration::from_secs(60))
///     .max_entries(10_000)
///     .ttl_jitter(0.1)
///     .negative_ttl(Some(Duration::from_secs(5)));
/// assert!(CITIES.enabled);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CacheSpec {
    /// How long an entry is fresh.
    pub ttl: Duration,
    /// The bound on entries; the least valuable ones are evicted (S3-FIFO). Default 10 000.
    pub max_entries: u64,
    /// A bound on the stored values' weight in bytes, beside `max_entries` (both hold); the
    /// values are weighed by `resilience::cache::Weigh`. Default none.
    pub max_bytes: Option<u64>,
    /// Each entry's ttl is uniform in `[ttl * (1 - j), ttl]`, so entries written together do
    /// not expire together. Default 0.0.
    pub ttl_jitter: f64,
    /// Also cache failures (`Err`, `None`) for this long. Default none.
    pub negative_ttl: Option<Duration>,
    /// Serve an expired value for this long while one refresh runs. Default none.
    pub stale_while_revalidate: Option<Duration>,
    /// Probabilistic early refresh of hot entries before they expire (XFetch), with this
    /// `beta`: a value whose load took `d` is refreshed by the first caller after
    /// `expiry - d * beta * E`, `E` drawn once per stored value from the exponential
    /// distribution of mean 1, while every caller keeps getting the value. 1.0 is the
    /// paper's choice; above it refreshes earlier. Default 0.0: off.
    pub early_refresh: f64,
    /// `false` bypasses the cache (and clears it). Default true.
    pub enabled: bool,
    /// A bounded in-memory tier in front of a shared (Redis) cache: `local: { max_entries,
    /// ttl }`. Ignored while the cache's policy names no Redis backend. Default none.
    pub local: Option<LocalTier>,
    /// Where the entries live when not where the policy's `backend` says (`cache: { backend:
    /// .. }`): read by the runtime from the policy. Default none: the policy's.
    pub backend: Option<crate::backend::CacheBackend>,
    /// Under the HTTP middleware (`resilience::http::ResilienceMiddleware`), cache responses
    /// by HTTP's rules (RFC 9111: each response's `Cache-Control`, `Expires`, `Vary` and
    /// validators say what is stored and for how long); a YAML key only, with no meaning for
    /// `#[cached]`. Default false.
    pub http: bool,
}

/// `local: { max_entries, ttl }`: a bounded in-memory tier in front of a Redis cache, so that a
/// hot key is served without a round trip. Its copies are kept coherent across instances by
/// invalidation messages; `ttl` bounds how long a copy can be served when a message is lost.
///
/// ```
/// # use resilience_config as resilience;
/// use std::time::Duration;
/// use resilience::cache::{CacheSpec, LocalTier};
///
/// const NEAR: CacheSpec = CacheSpec::new(Duration::from_secs(60))
///     .local(Some(LocalTier::new(1_000, Duration::from_secs(5))));
/// assert_eq!(NEAR.local.and_then(|tier| tier.max_entries), Some(1_000));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalTier {
    /// The bound on the tier's entries. Default: the cache's `max_entries`.
    pub max_entries: Option<u64>,
    /// How long a copy is served without asking Redis (at most the cache's `ttl`). Default:
    /// the cache's `ttl`.
    pub ttl: Option<Duration>,
}

impl LocalTier {
    /// A tier of at most `max_entries` copies, each served for at most `ttl`.
    pub const fn new(max_entries: u64, ttl: Duration) -> Self {
        LocalTier {
            max_entries: Some(max_entries),
            ttl: Some(ttl),
        }
    }
}

impl CacheSpec {
    /// Entries fresh for `ttl`; every other value its default.
    pub const fn new(ttl: Duration) -> Self {
        CacheSpec {
            ttl,
            max_entries: 10_000,
            max_bytes: None,
            ttl_jitter: 0.0,
            negative_ttl: None,
            stale_while_revalidate: None,
            early_refresh: 0.0,
            enabled: true,
            local: None,
            backend: None,
            http: false,
        }
    }

    /// Sets `local` (`None`: no local tier).
    pub const fn local(mut self, local: Option<LocalTier>) -> Self {
        self.local = local;
        self
    }
}

patch! {
    /// A partial [`CacheSpec`]: the fields a named policy sets (a policy's `cache` section).
    CachePatch for CacheSpec {
        /// Overrides `ttl`.
        ttl: Duration,
        /// Sets `local`, the in-memory tier in front of a Redis cache.
        local: LocalTier => Some,
        /// Sets the section's own `backend`, over the policy's.
        backend: crate::backend::CacheBackend => Some,
    }
    with setters {
        /// Overrides `max_entries`.
        max_entries: u64,
        /// Overrides `max_bytes` (`Some(None)` turns it off).
        max_bytes: Option<u64>,
        /// Overrides `ttl_jitter`.
        ttl_jitter: f64,
        /// Overrides `negative_ttl` (`Some(None)` turns it off).
        negative_ttl: Option<Duration>,
        /// Overrides `stale_while_revalidate` (`Some(None)` turns it off).
        stale_while_revalidate: Option<Duration>,
        /// Overrides `early_refresh` (0.0 turns it off).
        early_refresh: f64,
        /// Overrides `enabled`: `false` bypasses and clears the cache.
        enabled: bool,
        /// Overrides `http`: cache the HTTP middleware's responses by HTTP's rules.
        http: bool,
    }
}

impl CachePatch {
    /// `spec` with every field this patch sets replaced.
    pub fn apply(&self, mut spec: CacheSpec) -> CacheSpec {
        self.set(&mut spec);
        spec
    }
}
