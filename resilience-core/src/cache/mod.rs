//! Caching: a bounded concurrent cache with TTL, `ttl_jitter`, negative entries,
//! stale-while-revalidate, a run-time switch and single-flight loads ([`Cache`]), and its policy
//! as data ([`CacheSpec`]).
//!
//! [`CacheSite`] is the handle `#[cached]` puts beside each cached function
//! (`<function>_cache()`): invalidate one key or all, read the counters.

// `adapter` and `site` hold what `#[cached]` expands to: `__private` re-exports it from here.
pub(crate) mod adapter;
mod flight;
#[cfg(feature = "redis")]
mod frame;
#[cfg(feature = "redis")]
mod near;
pub(crate) mod site;
mod stats;
mod store;
pub(crate) mod weigh;

pub(crate) use adapter::Failure;
// What a return type stores: named in the compile errors of `#[cached]` (`Report:
// Cacheable<AsIs>` for a value that is not `Clone`), so documented, at a path outside
// `__private` (rustc writes a name short only when a visible path has it).
pub use adapter::{AsIs, Cacheable, OkAndErr, OkCloneErr, OkOnly, SomeAndNone, SomeOnly};
pub use site::CacheSite;
pub(crate) use site::all_counts;
// Plain data, shared with the macros and YAML.
pub use resilience_config::cache::{CachePatch, CacheSpec};
pub use stats::{CacheCounts, CacheStats, Reporter, spawn_reporter};
pub use store::{Cache, Freshness, Lookup};
pub use weigh::Weigh;
