//! [`CacheStats`]: the counters of one cache, readable in-process.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one cache. Each is a relaxed atomic: cheap to bump, exact once quiet.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) stale: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) load_errors: AtomicU64,
    pub(crate) evictions: AtomicU64,
}

/// A copy of [`CacheStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheCounts {
    /// Lookups that found a fresh value.
    pub hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// Lookups served a stale value (stale-while-revalidate).
    pub stale: u64,
    /// Loads run (the function was called to fill the cache).
    pub loads: u64,
    /// Loads that failed (stored as negative entries or not stored).
    pub load_errors: u64,
    /// Entries evicted to stay within `max_entries`.
    pub evictions: u64,
}

impl CacheStats {
    /// The counts now.
    pub fn counts(&self) -> CacheCounts {
        CacheCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
            loads: self.loads.load(Ordering::Relaxed),
            load_errors: self.load_errors.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}
