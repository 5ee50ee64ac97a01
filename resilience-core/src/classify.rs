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
//! | `reqwest_middleware::Error` (feature `reqwest-middleware`) | its `reqwest::Error` as above, or the error a middleware returned (a [`Rejected`] of the policy) |
//! | any `std::error::Error + 'static` | the first of the above found along its `source()` chain |
//! | anything else | `Other` (not retried by default) |

use std::error::Error;
use std::io;
use std::time::Duration;

pub use crate::error_class::{Classification, Classify, ErrorClass};
use crate::http_error::HttpError;
use crate::rejected::Rejected;

/// Classifies any error by walking its `source()` chain, stopping at the first error the
/// built-in rules know (see the [module docs](self)). `Other` when none is known.
///
/// Use it to implement [`Classify`] for a wrapper type, or as the classifier of
/// [`Retry::run_with`](crate::Retry::run_with) (through [`ErrorHooks::new`](crate::ErrorHooks::new)).
///
/// ```
/// # use resilience_core as resilience;
/// use std::io;
/// use resilience::{classify_error, ErrorClass};
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
        return classify_reqwest(reqwest);
    }
    // Its `source()` skips the error it wraps (`#[error(transparent)]`): its `Classify` impl
    // (in `http`) looks at that error itself.
    #[cfg(feature = "reqwest-middleware")]
    if let Some(middleware) = error.downcast_ref::<reqwest_middleware::Error>() {
        return Some(middleware.classification());
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

/// A `reqwest::Error` by the phase that failed. The order matters: a body error may hold a
/// timeout or a reset below it, and a connect timeout is also a timeout.
#[cfg(feature = "reqwest")]
fn classify_reqwest(error: &reqwest::Error) -> Option<Classification> {
    if error.is_body() || error.is_decode() {
        return Some(Classification::new(ErrorClass::Body));
    }
    if error.is_connect() {
        return Some(Classification::new(ErrorClass::Connect));
    }
    if error.is_timeout() {
        return Some(Classification::new(ErrorClass::Timeout));
    }
    if let Some(status) = error.status() {
        return Some(Classification::new(ErrorClass::Status(status.as_u16())));
    }
    // The connection was made, so the request may have reached the server: a connection lost
    // before any answer (an io error below) is "sent, no answer", never `Connect`.
    let inner = std::error::Error::source(error)?;
    let found = classify_error(inner);
    match found.class {
        ErrorClass::Other => None,
        ErrorClass::Connect => Some(Classification::new(ErrorClass::Timeout)),
        _ => Some(found),
    }
}

#[cfg(feature = "reqwest")]
impl Classify for reqwest::Error {
    fn class(&self) -> ErrorClass {
        self.classification().class
    }
    fn classification(&self) -> Classification {
        classify_reqwest(self).unwrap_or(Classification::OTHER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

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
