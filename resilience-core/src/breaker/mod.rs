//! Circuit breaking: stop calling a failing dependency for a while instead of piling up
//! doomed calls.
//!
//! - [`Breaker`] is the state machine over a window of the last `window` calls
//!   (`window_type = "count"`) or of the last `window` seconds (`"time"`). It opens when at
//!   least `min_calls` were recorded and failures / recorded reaches `failure_rate`, or slow
//!   calls (longer than `slow_call`) / recorded reaches `slow_call_rate` (never without a
//!   failure or a slow call: at a rate of `0.0` the first one opens it once `min_calls` are
//!   recorded); while open it refuses at once; after `open_for` it lets `half_open_calls`
//!   trials through, closing with a fresh window when all succeed and opening again when one
//!   fails or is slow, for `open_for` times `backoff` per failed trial in a row, up to
//!   `max_open_for`.
//! - [`breaker()`] is the handle to the breaker a policy's sites share: `state()`, and by hand
//!   `force_open()`, `disable()`, `reset()`.
//! - [`counts_as_failure`] is the rule for what a failure is: Timeout, Connect, Body, 429, 5xx and
//!   unclassified errors; other 4xx answers are not failures (the server is healthy, the
//!   request was wrong), and neither are the runtime's own local refusals but `Timeout`.
//! - [`named`] is the breaker every site naming a policy shares; `site.rs` holds what
//!   `#[circuit_breaker]` expands to.

// What `#[circuit_breaker]` expands to: `__private` re-exports it from here.
pub(crate) mod site;
mod state;
mod window;

pub(crate) use site::in_use;
pub use site::{breaker, named};
// Plain data, shared with the macros and YAML.
pub use resilience_config::breaker::{BreakerPatch, BreakerSpec, WindowType};
pub use state::{Breaker, BreakerState, Permit};

use crate::error_class::{Classification, ErrorClass};

/// Whether an error of this classification counts against the dependency.
///
/// ```
/// # use resilience_core as resilience;
/// use resilience::breaker::counts_as_failure;
/// use resilience::{Classification, ErrorClass};
///
/// assert!(counts_as_failure(&Classification::new(ErrorClass::Status(503))));
/// assert!(counts_as_failure(&Classification::new(ErrorClass::Status(429))));
/// assert!(counts_as_failure(&Classification::OTHER));
/// assert!(counts_as_failure(&Classification::new(ErrorClass::Body)));
/// assert!(!counts_as_failure(&Classification::new(ErrorClass::Status(404))));
/// ```
pub fn counts_as_failure(classification: &Classification) -> bool {
    match classification.class {
        ErrorClass::Timeout => true,
        // A refusal by this process (a rate limit, a full bulkhead, another open breaker)
        // says nothing about the dependency.
        _ if classification.local => false,
        ErrorClass::Status(code) => code == 429 || code >= 500,
        // `Connect`, `Other`, and `Body` (a cut body is the dependency failing midway, as a
        // lost connection was before it had a class of its own); a class added later too,
        // until it is decided otherwise, as an unclassified error is.
        _ => true,
    }
}
