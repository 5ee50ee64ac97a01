//! The words the runtime classifies errors in: [`ErrorClass`], [`Classification`] and the
//! [`Classify`] trait. The built-in rules that apply them to concrete errors (this crate's
//! own among them) are in [`crate::classify`], above the error types they know.

use std::time::Duration;

// Plain data: the vocabulary of a retry policy's `on`, shared with the macros and YAML.
pub use resilience_config::class::ErrorClass;

/// What the runtime learns about one error: its class and, if the server sent one, how long
/// it asked the client to wait (Retry-After).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// The kind of failure.
    pub class: ErrorClass,
    /// The server's Retry-After, if the error carries one.
    pub retry_after: Option<Duration>,
    /// The error is the runtime's own refusal ([`Rejected`](crate::Rejected)), not an answer from the server.
    /// A rate limiter learns from a server's 429 + Retry-After, never from a local refusal.
    pub local: bool,
}

impl Classification {
    /// An error of class `Other` without Retry-After.
    pub const OTHER: Classification = Classification::new(ErrorClass::Other);

    /// A classification without Retry-After.
    pub const fn new(class: ErrorClass) -> Self {
        Classification {
            class,
            retry_after: None,
            local: false,
        }
    }

    /// The same classification carrying a Retry-After.
    pub const fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }
}

/// Says what a user error type is, so `#[retry]` knows whether to retry it.
///
/// Implement this for your own error type when the built-in rules (see the
/// [module docs](crate::classify)) cannot see inside it. An implementation takes precedence over the
/// `source()` chain walk that `#[retry]` uses for other `std::error::Error` types.
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::Duration;
/// use resilience::{Classify, ErrorClass};
///
/// enum ApiError {
///     Throttled { wait_secs: u64 },
///     NotFound,
/// }
///
/// impl Classify for ApiError {
///     fn class(&self) -> ErrorClass {
///         match self {
///             ApiError::Throttled { .. } => ErrorClass::Status(429),
///             ApiError::NotFound => ErrorClass::Status(404),
///         }
///     }
///     fn retry_after(&self) -> Option<Duration> {
///         match self {
///             ApiError::Throttled { wait_secs } => Some(Duration::from_secs(*wait_secs)),
///             ApiError::NotFound => None,
///         }
///     }
/// }
/// ```
pub trait Classify {
    /// The kind of failure.
    fn class(&self) -> ErrorClass;

    /// How long the server asked the client to wait before trying again, if it said.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// Both answers at once. A type wrapping [`Rejected`](crate::Rejected) should delegate this method too
    /// (`Rejected::classification` marks the refusal as local, so a rate limiter does not
    /// mistake it for the server's 429).
    fn classification(&self) -> Classification {
        Classification::new(self.class()).with_retry_after(self.retry_after())
    }
}
