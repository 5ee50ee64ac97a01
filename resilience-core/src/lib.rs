//! The runtime of [`resilience`](https://docs.rs/resilience): every behaviour the attribute
//! macros expand to lives here, as plain Rust you can also call directly.
//!
//! - [`Retry`] retries a closure; [`RetrySpec`] is a retry policy as data; [`Backoff`],
//!   [`Jitter`] and [`RetryOn`] are its parts; [`Schedule`] is the decision after each failure.
//! - [`Classify`], [`ErrorClass`] and [`classify_error`] say what an error is.
//! - [`HttpError`] and [`Rejected`] are the crate's own errors.
//! - [`parse_duration`] is the duration syntax of the macros and YAML policies.
//! - [`rate_limit`] is a GCRA rate limiter; [`bulkhead`] caps calls in flight.
//! - [`pipeline::Pipeline`] applies a named policy's sections to a closure.
//! - [`registry`] holds named policies; [`config`] loads them from YAML and reloads them.
//! - [`events()`] tells listeners of retries, breaker state changes, refusals and alerts.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
pub mod batch;
pub mod breaker;
pub mod bulkhead;
pub mod cache;
pub mod classify;
pub mod config;
pub mod events;
pub mod fallback;
pub mod hedge;
pub mod http;
pub mod pipeline;
pub mod rate_limit;
pub mod registry;
pub mod rejected;
pub mod retry;
#[cfg(feature = "sim")]
pub mod sim;
pub mod stats;
#[cfg(feature = "tower")]
pub mod tower;

mod alert;
mod block_on;
mod clock;
mod counters;
mod error_class;
mod families;
mod hooks;
mod http_error;
mod observe;
mod quota;
// What `#[timeout]` expands to, re-exported by `__private`.
#[cfg(feature = "redis")]
mod redis;
mod timeout;

#[doc(hidden)]
pub mod __private;

// The duration syntax is the config crate's, shared with the macros and YAML.
use resilience_config::duration;

pub use alert::{Alert, AlertKind, on_alert};
pub use batch::batch;
pub use breaker::breaker;
pub use classify::classify_error;
pub use duration::{DurationError, parse_duration};
pub use error_class::{Classification, Classify, ErrorClass};
pub use events::events;
pub use hooks::ErrorHooks;
pub use http::HttpError;
pub use rejected::Rejected;
pub use resilience_config::InvalidValue;
pub use retry::{
    Backoff, Decision, GiveUp, Jitter, Retry, RetryOn, RetryPatch, RetrySpec, Schedule,
};
pub use stats::stats;
