//! What an error is: [`ErrorClass`], the [`Classify`] trait, and the built-in rules.
//!
//! The retry executor never matches on concrete error types itself; it asks a classifier for a
//! [`Classification`] (a class and an optional Retry-After) and decides from that. The built-in
//! rules are the contract's:
//!
//! | error | class |
//! |---|---|
//! | `std::io::Error` of kind `TimedOut` | `Timeout` |
//! | `std::io::Error` of kind `ConnectionRefused`, `ConnectionReset`, `ConnectionAborted`, `NotConnected` | `Connect` |
//! | `tokio::time::error::Elapsed` | `Timeout` |
//! | [`HttpError`] | `Status(code)`, with its Retry-After |
//! | [`Rejected`] | see [`Rejected`]'s own table |
//! | `reqwest::Error` (feature `reqwest`) | by the phase that failed: `Connect`, `Timeout`, `Body`, or `Status(code)` |
//! | any `std::error::Error + 'static` | the first of the above found along its `source()` chain |
//! | anything else | `Other` (not retried by default) |

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use crate::http::HttpError;
use crate::rejected::Rejected;

/// The kind of failure, as far as retrying and circuit breaking care.
///
/// For a network call the class tells how far the request got, which is what decides whether
/// trying again is safe:
///
/// | class | phase | retried by `Transient` |
/// |---|---|---|
/// | `Connect` | never sent: refused, DNS, TLS handshake, connect timeout | yes, always safe |
/// | `Timeout` | sent, no answer | yes |
/// | `Status(code)` | answered with this status | 429, 502, 503, 504 |
/// | `Body` | the answer had begun and its body failed: a cut stream, a read timeout mid-body | no: `on = [Body]` opts in |
///
/// A `reqwest::Error` knows its phase. A bare `std::io::Error` does not: it keeps the mapping
/// of the [module docs](self) (a reset is `Connect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The call was sent, or may have been, and no answer came in time (a client timeout,
    /// `Elapsed`, `Rejected::Timeout`).
    Timeout,
    /// The request was never sent: the connection could not be made (refused, DNS, TLS
    /// handshake, connect timeout). A bare `std::io::Error` reset, aborted or not connected is
    /// `Connect` too, as its phase is unknown.
    Connect,
    /// The answer had begun and its body failed (a stream cut halfway, a read timeout while
    /// reading it). Not in `Transient`: part of the answer was seen, so a retry repeats a call
    /// that reached the server, and for a stream it replays what the caller already read.
    Body,
    /// The server answered with this HTTP status code.
    Status(u16),
    /// Anything else: not retried unless `retry_if` says so.
    Other,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorClass::Timeout => f.write_str("Timeout"),
            ErrorClass::Connect => f.write_str("Connect"),
            ErrorClass::Body => f.write_str("Body"),
            ErrorClass::Status(code) => write!(f, "{code}"),
            ErrorClass::Other => f.write_str("Other"),
        }
    }
}

/// What the runtime learns about one error: its class and, if the server sent one, how long
/// it asked the client to wait (Retry-After).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// The kind of failure.
    pub class: ErrorClass,
    /// The server's Retry-After, if the error carries one.
    pub retry_after: Option<Duration>,
    /// The error is the runtime's own refusal ([`Rejected`]), not an answer from the server.
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
/// [module docs](self)) cannot see inside it. An implementation takes precedence over the
/// `source()` chain walk that `#[retry]` uses for other `std::error::Error` types.
///
/// ```
/// use std::time::Duration;
/// use resilience_core::{Classify, ErrorClass};
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

    /// Both answers at once. A type wrapping [`Rejected`] should delegate this method too
    /// (`Rejected::classification` marks the refusal as local, so a rate limiter does not
    /// mistake it for the server's 429).
    fn classification(&self) -> Classification {
        Classification::new(self.class()).with_retry_after(self.retry_after())
    }
}

/// Classifies any error by walking its `source()` chain, stopping at the first error the
/// built-in rules know (see the [module docs](self)). `Other` when none is known.
///
/// Use it to implement [`Classify`] for a wrapper type, or as the classifier of
/// [`Retry::run_with`](crate::Retry::run_with) (through [`ErrorHooks::new`](crate::ErrorHooks::new)).
///
/// ```
/// use std::io;
/// use resilience_core::{classify_error, ErrorClass};
///
/// let err = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
/// assert_eq!(classify_error(&err).class, ErrorClass::Connect);
/// ```
pub fn classify_error(error: &(dyn Error + 'static)) -> Classification {
    let mut current = Some(error);
    // A bounded walk: a buggy `source()` returning itself must not hang the caller.
    for _ in 0..64 {
        let Some(error) = current else { break };
        if let Some(known) = classify_known(error) {
            return known;
        }
        current = error.source();
    }
    Classification::OTHER
}

fn classify_known(error: &(dyn Error + 'static)) -> Option<Classification> {
    if let Some(http) = error.downcast_ref::<HttpError>() {
        return Some(http.classification());
    }
    if let Some(rejected) = error.downcast_ref::<Rejected>() {
        return Some(rejected.classification());
    }
    if error.is::<tokio::time::error::Elapsed>() {
        return Some(Classification::new(ErrorClass::Timeout));
    }
    if let Some(io) = error.downcast_ref::<io::Error>() {
        return classify_io(io);
    }
    #[cfg(feature = "reqwest")]
    if let Some(reqwest) = error.downcast_ref::<reqwest::Error>() {
        return crate::http::classify_reqwest(reqwest);
    }
    None
}

/// An `io::Error` of an unknown kind may still wrap a known error (`io::Error::other(e)`),
/// which `source()` does not expose, so look inside it.
fn classify_io(error: &io::Error) -> Option<Classification> {
    use io::ErrorKind::*;
    match error.kind() {
        TimedOut => Some(Classification::new(ErrorClass::Timeout)),
        ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected => {
            Some(Classification::new(ErrorClass::Connect))
        }
        _ => error
            .get_ref()
            .map(|inner| classify_error(inner))
            .filter(|inner| inner.class != ErrorClass::Other),
    }
}

impl Classify for io::Error {
    fn class(&self) -> ErrorClass {
        self.classification().class
    }
    fn classification(&self) -> Classification {
        classify_io(self).unwrap_or(Classification::OTHER)
    }
}

impl Classify for tokio::time::error::Elapsed {
    fn class(&self) -> ErrorClass {
        ErrorClass::Timeout
    }
}

impl Classify for Box<dyn Error + Send + Sync> {
    fn class(&self) -> ErrorClass {
        self.classification().class
    }
    fn retry_after(&self) -> Option<Duration> {
        self.classification().retry_after
    }
    fn classification(&self) -> Classification {
        classify_error(self.as_ref())
    }
}

impl Classify for Box<dyn Error> {
    fn class(&self) -> ErrorClass {
        self.classification().class
    }
    fn retry_after(&self) -> Option<Duration> {
        self.classification().retry_after
    }
    fn classification(&self) -> Classification {
        classify_error(self.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(Box<dyn Error + Send + Sync>);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapper")
        }
    }
    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(self.0.as_ref())
        }
    }

    #[test]
    fn io_kinds() {
        let class = |kind| classify_error(&io::Error::new(kind, "x")).class;
        assert_eq!(class(io::ErrorKind::TimedOut), ErrorClass::Timeout);
        for kind in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::NotConnected,
        ] {
            assert_eq!(class(kind), ErrorClass::Connect, "{kind:?}");
        }
        assert_eq!(class(io::ErrorKind::NotFound), ErrorClass::Other);
        assert_eq!(class(io::ErrorKind::PermissionDenied), ErrorClass::Other);
    }

    #[test]
    fn walks_the_source_chain() {
        let inner = HttpError::new(503).with_retry_after(Duration::from_secs(2));
        let outer = Wrapper(Box::new(Wrapper(Box::new(inner))));
        assert_eq!(
            classify_error(&outer),
            Classification::new(ErrorClass::Status(503))
                .with_retry_after(Some(Duration::from_secs(2)))
        );
        let plain = Wrapper("no known cause".into());
        assert_eq!(classify_error(&plain), Classification::OTHER);
    }

    #[test]
    fn looks_inside_io_other() {
        let err = io::Error::other(HttpError::new(429));
        assert_eq!(err.class(), ErrorClass::Status(429));
    }

    #[test]
    fn boxed_errors_classify() {
        let boxed: Box<dyn Error + Send + Sync> =
            Box::new(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(boxed.class(), ErrorClass::Connect);
    }

    #[tokio::test]
    async fn elapsed_is_timeout() {
        let elapsed = tokio::time::timeout(Duration::ZERO, std::future::pending::<()>())
            .await
            .expect_err("a pending future times out");
        assert_eq!(classify_error(&elapsed).class, ErrorClass::Timeout);
        assert_eq!(elapsed.class(), ErrorClass::Timeout);
    }
}
