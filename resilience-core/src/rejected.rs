//! [`Rejected`]: the errors the runtime itself produces instead of calling the function.

use std::fmt;
use std::time::Duration;

use crate::classify::{Classification, Classify, ErrorClass};

/// A call the runtime refused (or cut short) instead of letting it run to completion.
///
/// Annotated functions return it through `E: From<Rejected>`. It classifies itself so that
/// an outer `#[retry]` treats it sensibly:
///
/// | variant | class | Retry-After |
/// |---|---|---|
/// | `RateLimited { retry_after }` | `Status(429)` | `retry_after` |
/// | `CircuitOpen { retry_after }` | `Status(503)` | `retry_after` (time until half-open) |
/// | `BulkheadFull` | `Status(503)` | none |
/// | `Timeout { after }` | `Timeout` | none |
///
/// So with the default `on = [Transient]`, a retry waits out a local rate limit or an open
/// breaker when that is shorter than `max_delay`, and gives up at once when it is longer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejected {
    /// A rate limiter refused the call; a permit is free after `retry_after`.
    RateLimited {
        /// How long until the limiter would admit this call.
        retry_after: Duration,
    },
    /// A circuit breaker is open; it lets trial calls through after `retry_after`.
    CircuitOpen {
        /// How long until the breaker half-opens.
        retry_after: Duration,
    },
    /// A bulkhead had no free slot within its `max_wait`.
    BulkheadFull,
    /// The call did not finish within its time limit and was dropped.
    Timeout {
        /// The limit that was reached.
        after: Duration,
    },
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::RateLimited { retry_after } => {
                write!(f, "rate limited: next permit in {retry_after:?}")
            }
            Rejected::CircuitOpen { retry_after } => {
                write!(f, "circuit open: next trial in {retry_after:?}")
            }
            Rejected::BulkheadFull => f.write_str("bulkhead full: too many calls in flight"),
            Rejected::Timeout { after } => write!(f, "timed out after {after:?}"),
        }
    }
}

impl std::error::Error for Rejected {}

impl Classify for Rejected {
    fn class(&self) -> ErrorClass {
        match self {
            Rejected::RateLimited { .. } => ErrorClass::Status(429),
            Rejected::CircuitOpen { .. } | Rejected::BulkheadFull => ErrorClass::Status(503),
            Rejected::Timeout { .. } => ErrorClass::Timeout,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Rejected::RateLimited { retry_after } | Rejected::CircuitOpen { retry_after } => {
                Some(*retry_after)
            }
            Rejected::BulkheadFull | Rejected::Timeout { .. } => None,
        }
    }
    fn classification(&self) -> Classification {
        Classification {
            local: true,
            ..Classification::new(self.class()).with_retry_after(self.retry_after())
        }
    }
}
