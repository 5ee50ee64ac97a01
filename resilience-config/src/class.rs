//! [`ErrorClass`]: the kind of failure, the vocabulary of a retry policy's `on`.

use std::fmt;

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
/// A `reqwest::Error` knows its phase. A bare `std::io::Error` does not: it keeps its mapping
/// (`TimedOut` is `Timeout`; a refused, reset, aborted or unconnected socket is `Connect`).
///
/// `#[non_exhaustive]`: a phase may get a class of its own later (`Body` was one), so a
/// `match` outside this crate needs a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The call was sent, or may have been, and no answer came in time (a client timeout,
    /// `Elapsed`, `Rejected::Timeout`, a connection lost before any answer).
    Timeout,
    /// The request was never sent: the connection could not be made (refused, DNS, TLS
    /// handshake, connect timeout). A bare `std::io::Error` reset, aborted or not connected is
    /// `Connect` too, as its phase is unknown.
    Connect,
    /// The answer had begun and its body failed (a stream cut halfway, a read timeout while
    /// reading it). Not in `Transient`: the server saw the request, and for a stream a retry
    /// replays what the caller already read.
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
