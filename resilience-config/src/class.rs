//! [`ErrorClass`]: the kind of failure, the vocabulary of a retry policy's `on`.

use std::fmt;

/// The kind of failure, as far as retrying and circuit breaking care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The call took too long (a client timeout, `Elapsed`, `Rejected::Timeout`).
    Timeout,
    /// The connection could not be made or was lost (refused, reset, aborted).
    Connect,
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
            ErrorClass::Status(code) => write!(f, "{code}"),
            ErrorClass::Other => f.write_str("Other"),
        }
    }
}
