//! [`Rejected`]: the errors the runtime itself produces instead of calling the function.

use std::fmt;
use std::time::Duration;

use crate::error_class::{Classification, Classify, ErrorClass};

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
/// | `CostTooHigh { .. }` | `Other` | none |
///
/// So with the default `on = [Transient]`, a retry waits out a local rate limit or an open
/// breaker when that is shorter than `max_delay`, and gives up at once when it is longer. A
/// call too costly for its rate limit is never retried (trying again cannot help), and, like
/// every refusal, never counts as a failure of the dependency for a circuit breaker.
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
    /// A rate-limited call takes more permits (`cost`) than its limiter admits in a whole
    /// period (`calls + burst`, or the lower limit a server advertised): it could never be
    /// admitted, so it is refused at once, in wait mode too.
    CostTooHigh {
        /// The permits the call takes.
        cost: u64,
        /// The most permits the limiter admits per `period`: `calls + burst` in force.
        capacity: u64,
        /// The limiter's period.
        period: Duration,
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
            Rejected::CostTooHigh {
                cost,
                capacity,
                period,
            } => write!(
                f,
                "a call costing {cost} permits can never be admitted: the limiter admits at most {capacity} per {} (calls + burst)",
                Period(*period)
            ),
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
            // Not an answer of the dependency, and nothing a retry can change.
            Rejected::CostTooHigh { .. } => ErrorClass::Other,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Rejected::RateLimited { retry_after } | Rejected::CircuitOpen { retry_after } => {
                Some(*retry_after)
            }
            Rejected::BulkheadFull | Rejected::Timeout { .. } | Rejected::CostTooHigh { .. } => {
                None
            }
        }
    }
    fn classification(&self) -> Classification {
        Classification {
            local: true,
            ..Classification::new(self.class()).with_retry_after(self.retry_after())
        }
    }
}

/// A period as the attributes write it: `1m`, `10s`, `1h`, `250ms` (`Debug` otherwise).
struct Period(Duration);

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Period(period) = *self;
        let (secs, nanos) = (period.as_secs(), period.subsec_nanos());
        match (secs, nanos) {
            (0, 0) => f.write_str("0s"),
            (0, nanos) if nanos % 1_000_000 == 0 => write!(f, "{}ms", nanos / 1_000_000),
            (secs, 0) if secs % 3_600 == 0 => write!(f, "{}h", secs / 3_600),
            (secs, 0) if secs % 60 == 0 => write!(f, "{}m", secs / 60),
            (secs, 0) => write!(f, "{secs}s"),
            _ => write!(f, "{period:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::counts_as_failure;
    use crate::retry::RetryOn;

    #[test]
    fn a_cost_too_high_says_why_and_is_neither_retried_nor_a_failure() {
        let rejected = Rejected::CostTooHigh {
            cost: 120_000,
            capacity: 90_000,
            period: Duration::from_secs(60),
        };
        assert_eq!(
            rejected.to_string(),
            "a call costing 120000 permits can never be admitted: the limiter admits at most 90000 per 1m (calls + burst)"
        );
        let classification = rejected.classification();
        assert!(classification.local);
        assert_eq!(classification.retry_after, None);
        assert!(!RetryOn::TRANSIENT.matches(classification.class));
        assert!(!counts_as_failure(&classification));
    }

    #[test]
    fn periods_read_as_written() {
        let shown = |period| Period(period).to_string();
        assert_eq!(shown(Duration::from_millis(250)), "250ms");
        assert_eq!(shown(Duration::from_secs(10)), "10s");
        assert_eq!(shown(Duration::from_secs(90)), "90s");
        assert_eq!(shown(Duration::from_secs(3_600)), "1h");
        assert_eq!(shown(Duration::from_secs(86_400)), "24h");
        assert_eq!(shown(Duration::from_micros(1_500)), "1.5ms");
    }
}
