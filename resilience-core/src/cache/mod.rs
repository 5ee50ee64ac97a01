//! Caching: a bounded concurrent cache with TTL, `ttl_jitter`, negative entries,
//! stale-while-revalidate, a run-time switch and single-flight loads ([`Cache`]), and its policy
//! as data ([`CacheSpec`]).
//!
//! This is the runtime `#[cached]` will expand to; the macro itself is not written yet.

mod flight;
mod spec;
mod stats;
mod store;

pub use spec::{CachePatch, CacheSpec};
pub use stats::{CacheCounts, CacheStats};
pub use store::{Cache, Freshness, Lookup};
