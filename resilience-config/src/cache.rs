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
    /// Under the HTTP middleware (`resilience::http::ResilienceMiddleware`), cache responses
    /// by HTTP's rules (RFC 9111: each response's `Cache-Control`, `Expires`, `Vary` and
    /// validators say what is stored and for how long); a YAML key only, with no meaning for
    /// `#[cached]`. Default false.
    pub http: bool,
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
            http: false,
        }
    }
}

patch! {
    /// A partial [`CacheSpec`]: the fields a named policy sets (a policy's `cache` section).
    CachePatch for CacheSpec {
        /// Overrides `ttl`.
        ttl: Duration,
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
