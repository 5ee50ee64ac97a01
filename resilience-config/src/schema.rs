//! The policy file as plain data: what YAML says, checked, before it meets the runtime.
//!
//! Every field is optional: a policy overrides only the fields it names, field by field, over
//! the inline values of each site that names it.

use std::collections::BTreeMap;
use std::time::Duration;

/// A whole policy file: `policies:` and the named policies under it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyFile {
    /// The policies by name.
    pub policies: BTreeMap<String, PolicyDoc>,
}

/// One named policy: its sections. A section that is absent leaves the sites' inline values.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PolicyDoc {
    /// `retry`.
    pub retry: Option<RetryDoc>,
    /// `rate_limit`.
    pub rate_limit: Option<RateLimitDoc>,
    /// `cache`.
    pub cache: Option<CacheDoc>,
    /// `circuit_breaker`.
    pub circuit_breaker: Option<CircuitBreakerDoc>,
    /// `timeout`: a duration.
    pub timeout: Option<Duration>,
    /// `bulkhead`.
    pub bulkhead: Option<BulkheadDoc>,
    /// `alert`.
    pub alert: Option<AlertDoc>,
    /// `backend`: where the stateful sections keep their state.
    pub backend: Option<BackendName>,
    /// `backend_timeout`: the bound on every round trip to the backend.
    pub backend_timeout: Option<Duration>,
    /// `on_backend_error`: what a call does when the backend fails.
    pub on_backend_error: Option<OnBackendError>,
    /// `key_prefix`: the prefix of every key the policy keeps in the backend.
    pub key_prefix: Option<String>,
}

/// `backend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendName {
    /// `memory`: in this process (the default).
    Memory,
    /// A `redis://` (or `redis+unix://`) URL: shared by every instance.
    Redis(String),
}

/// `on_backend_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBackendError {
    /// `allow`: let the call through (the default).
    Allow,
    /// `deny`: refuse the call.
    Deny,
    /// `local`: use this process's in-memory state instead.
    Local,
}

/// `backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffName {
    /// `exp`.
    Exp,
    /// `linear`.
    Linear,
    /// `constant`.
    Constant,
}

/// `jitter`: a fraction or a named strategy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JitterValue {
    /// A fraction in 0.0..=1.0.
    Fraction(f64),
    /// `full`.
    Full,
    /// `equal`.
    Equal,
    /// `decorrelated`.
    Decorrelated,
}

/// One item of `on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnItem {
    /// `Timeout`.
    Timeout,
    /// `Connect`.
    Connect,
    /// `Body`: an answer whose body failed midway (not in `Transient`).
    Body,
    /// `Transient`: Timeout, Connect, 429, 502, 503, 504.
    Transient,
    /// A status code (`503`).
    Status(u16),
    /// A status class by its hundreds digit (`5xx` is 5).
    Class(u16),
}

/// The `retry` section.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RetryDoc {
    /// `attempts`.
    pub attempts: Option<u32>,
    /// `backoff`.
    pub backoff: Option<BackoffName>,
    /// `base`.
    pub base: Option<Duration>,
    /// `factor`.
    pub factor: Option<f64>,
    /// `max_delay`.
    pub max_delay: Option<Duration>,
    /// `max_elapsed`; `Some(None)` (`max_elapsed: ~`) removes an inline limit.
    pub max_elapsed: Option<Option<Duration>>,
    /// `jitter`.
    pub jitter: Option<JitterValue>,
    /// `on`.
    pub on: Option<Vec<OnItem>>,
    /// `retry_after`.
    pub retry_after: Option<bool>,
}

/// `mode` of a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeName {
    /// `wait`.
    Wait,
    /// `reject`.
    Reject,
}

/// The `rate_limit` section.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RateLimitDoc {
    /// `calls`.
    pub calls: Option<u32>,
    /// `period`.
    pub period: Option<Duration>,
    /// `burst`.
    pub burst: Option<u32>,
    /// `mode`.
    pub mode: Option<ModeName>,
    /// `max_wait`; `Some(None)` removes an inline limit.
    pub max_wait: Option<Option<Duration>>,
    /// `cost`: the permits every call takes, overriding the sites' `cost` expressions.
    pub cost: Option<u64>,
}

/// The `cache` section.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CacheDoc {
    /// `enabled`: `false` bypasses and clears the cache.
    pub enabled: Option<bool>,
    /// `ttl`.
    pub ttl: Option<Duration>,
    /// `max_entries`.
    pub max_entries: Option<u64>,
    /// `ttl_jitter`.
    pub ttl_jitter: Option<f64>,
    /// `negative_ttl`; `Some(None)` turns it off.
    pub negative_ttl: Option<Option<Duration>>,
    /// `stale_while_revalidate`; `Some(None)` turns it off.
    pub stale_while_revalidate: Option<Option<Duration>>,
}

/// The `circuit_breaker` section.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CircuitBreakerDoc {
    /// `failure_rate`.
    pub failure_rate: Option<f64>,
    /// `min_calls`.
    pub min_calls: Option<u32>,
    /// `window`.
    pub window: Option<u32>,
    /// `open_for`.
    pub open_for: Option<Duration>,
    /// `half_open_calls`.
    pub half_open_calls: Option<u32>,
}

/// The `bulkhead` section.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct BulkheadDoc {
    /// `max_concurrent`.
    pub max_concurrent: Option<u32>,
    /// `max_wait`.
    pub max_wait: Option<Duration>,
}

/// The `alert` section: warn when a policy's retry rate crosses `retry_rate` over `window`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AlertDoc {
    /// `retry_rate`.
    pub retry_rate: Option<f64>,
    /// `window`.
    pub window: Option<Duration>,
}

/// The sections of a policy, in the pipeline's order.
pub const SECTION_KEYS: &[&str] = &[
    "cache",
    "bulkhead",
    "rate_limit",
    "retry",
    "circuit_breaker",
    "timeout",
    "alert",
    "backend",
    "backend_timeout",
    "on_backend_error",
    "key_prefix",
];

/// Keys of the `retry` section: the macro's keys but `retry_if` and `policy`.
pub const RETRY_KEYS: &[&str] = &[
    "attempts",
    "backoff",
    "base",
    "factor",
    "max_delay",
    "max_elapsed",
    "jitter",
    "on",
    "retry_after",
];

/// Keys of the `rate_limit` section: the macro's keys but `key` and `policy` (`cost` is a
/// constant here, an expression in the macro).
pub const RATE_LIMIT_KEYS: &[&str] = &["calls", "period", "burst", "mode", "max_wait", "cost"];

/// Keys of the `cache` section: the macro's keys but `key` and `policy`, and `enabled`.
pub const CACHE_KEYS: &[&str] = &[
    "enabled",
    "ttl",
    "max_entries",
    "ttl_jitter",
    "negative_ttl",
    "stale_while_revalidate",
];

/// Keys of the `circuit_breaker` section.
pub const CIRCUIT_BREAKER_KEYS: &[&str] = &[
    "failure_rate",
    "min_calls",
    "window",
    "open_for",
    "half_open_calls",
];

/// Keys of the `bulkhead` section.
pub const BULKHEAD_KEYS: &[&str] = &["max_concurrent", "max_wait"];

/// Names accepted for `on_backend_error`.
pub const ON_BACKEND_ERROR_NAMES: &[&str] = &["allow", "deny", "local"];

/// Keys of the `alert` section.
pub const ALERT_KEYS: &[&str] = &["retry_rate", "window"];

/// Keys only an attribute can set (an expression or a function path, not a value).
#[cfg(feature = "yaml")]
pub(crate) const ATTRIBUTE_ONLY_KEYS: &[&str] = &["retry_if", "failure_if", "key", "policy"];
