//! Caching: a bounded concurrent cache with TTL, `ttl_jitter`, negative entries,
//! stale-while-revalidate, a run-time switch and single-flight loads ([`Cache`]), and its policy
//! as data ([`CacheSpec`]).
//!
//! [`CacheSite`], [`cached_async`], [`cached_async_refreshing`] and [`cached_blocking`] are
//! what `#[cached]` expands to.

mod adapter;
mod flight;
#[cfg(feature = "redis")]
mod frame;
mod site;
mod stats;
mod store;
mod weigh;

pub use adapter::{AsIs, Cacheable, Failure, OkAndErr, OkCloneErr, OkOnly, SomeAndNone, SomeOnly};
pub(crate) use site::all_counts;
pub use site::{
    AnyCache, CacheSite, Codec, cached_async, cached_async_refreshing, cached_blocking,
};
// Plain data, shared with the macros and YAML.
pub use resilience_config::cache::{CachePatch, CacheSpec};
pub use stats::{CacheCounts, CacheStats, Reporter, spawn_reporter};
pub use store::{Cache, Freshness, Lookup};
pub use weigh::{AnyWeigher, Weigh, weigh_any};
