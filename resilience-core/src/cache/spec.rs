//! [`CacheSpec`]: a cache policy as plain data, and [`CachePatch`], a partial override.

use std::time::Duration;

/// A cache policy as plain data: what `#[cached(...)]` builds at compile time and what a YAML
/// policy's `cache` section overrides.
///
/// ```
/// use std::time::Duration;
/// use resilience_core::cache::CacheSpec;
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
    /// Each entry's ttl is uniform in `[ttl * (1 - j), ttl]`, so entries written together do
    /// not expire together. Default 0.0.
    pub ttl_jitter: f64,
    /// Also cache failures (`Err`, `None`) for this long. Default none.
    pub negative_ttl: Option<Duration>,
    /// Serve an expired value for this long while one refresh runs. Default none.
    pub stale_while_revalidate: Option<Duration>,
    /// `false` bypasses the cache (and clears it). Default true.
    pub enabled: bool,
}

impl CacheSpec {
    /// Entries fresh for `ttl`; every other value its default.
    pub const fn new(ttl: Duration) -> Self {
        CacheSpec {
            ttl,
            max_entries: 10_000,
            ttl_jitter: 0.0,
            negative_ttl: None,
            stale_while_revalidate: None,
            enabled: true,
        }
    }

    /// Sets `max_entries`.
    pub const fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Sets `ttl_jitter`.
    pub const fn ttl_jitter(mut self, ttl_jitter: f64) -> Self {
        self.ttl_jitter = ttl_jitter;
        self
    }

    /// Sets `negative_ttl`.
    pub const fn negative_ttl(mut self, negative_ttl: Option<Duration>) -> Self {
        self.negative_ttl = negative_ttl;
        self
    }

    /// Sets `stale_while_revalidate`.
    pub const fn stale_while_revalidate(mut self, window: Option<Duration>) -> Self {
        self.stale_while_revalidate = window;
        self
    }

    /// Sets `enabled`.
    pub const fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
}

/// A partial [`CacheSpec`]: the fields a named policy sets.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CachePatch {
    /// Overrides `ttl`.
    pub ttl: Option<Duration>,
    /// Overrides `max_entries`.
    pub max_entries: Option<u64>,
    /// Overrides `ttl_jitter`.
    pub ttl_jitter: Option<f64>,
    /// Overrides `negative_ttl` (`Some(None)` turns it off).
    pub negative_ttl: Option<Option<Duration>>,
    /// Overrides `stale_while_revalidate` (`Some(None)` turns it off).
    pub stale_while_revalidate: Option<Option<Duration>>,
    /// Overrides `enabled`.
    pub enabled: Option<bool>,
}

impl CachePatch {
    /// `spec` with every field this patch sets replaced.
    pub fn apply(&self, mut spec: CacheSpec) -> CacheSpec {
        if let Some(v) = self.ttl {
            spec.ttl = v;
        }
        if let Some(v) = self.max_entries {
            spec.max_entries = v;
        }
        if let Some(v) = self.ttl_jitter {
            spec.ttl_jitter = v;
        }
        if let Some(v) = self.negative_ttl {
            spec.negative_ttl = v;
        }
        if let Some(v) = self.stale_while_revalidate {
            spec.stale_while_revalidate = v;
        }
        if let Some(v) = self.enabled {
            spec.enabled = v;
        }
        spec
    }
}
