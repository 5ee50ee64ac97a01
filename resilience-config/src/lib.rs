//! YAML policies of [`resilience`](https://docs.rs/resilience): the schema, validation with
//! `file:line:column` errors and "did you mean" hints, loading, and hot reload.
//!
//! This crate reads and checks; it does not apply. `resilience::config::{load, load_str,
//! watch}` (in `resilience-core`, re-exported by the facade) call these functions and install
//! what they return as the named policies. The runtime depends on this crate, rather than the
//! other way round, so that `RESILIENCE_CONFIG=path` can load a file from inside the runtime
//! on the first use of a named policy.
//!
//! The value rules (duration syntax, `jitter` in 0..=1, `attempts >= 1`, status codes) are
//! the runtime's own files compiled here too, so a value `#[retry]` refuses at compile time is
//! refused here at load time with the same words.

mod error;
mod limits;
mod load;
mod schema;
mod validate;
mod watch;

#[allow(dead_code, unreachable_pub)]
#[path = "../../resilience-core/src/duration.rs"]
mod duration;
#[allow(dead_code, unreachable_pub)]
#[path = "../../resilience-core/src/rules.rs"]
mod rules;

pub use error::{ConfigError, ConfigErrors};
pub use limits::{MAX_DOCUMENT_BYTES, MAX_FLOW_DEPTH, MAX_VALUES};
pub use load::{load, load_str};
pub use schema::{
    ALERT_KEYS, AlertDoc, BULKHEAD_KEYS, BackendName, BackoffName, BulkheadDoc, CACHE_KEYS,
    CIRCUIT_BREAKER_KEYS, CacheDoc, CircuitBreakerDoc, JitterValue, ModeName,
    ON_BACKEND_ERROR_NAMES, OnBackendError, OnItem, PolicyDoc, PolicyFile, RATE_LIMIT_KEYS,
    RETRY_KEYS, RateLimitDoc, RetryDoc, SECTION_KEYS,
};
pub use watch::{__panic_in_reloads_holding, Reload, WatchOptions, Watcher, watch, watch_with};
