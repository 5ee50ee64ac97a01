//! [`HttpError`]: the crate's own HTTP status error, below the classifier that knows it (the
//! rest of [`crate::http`] stands above the runtime's layers).

use std::fmt;
use std::time::Duration;

use crate::error_class::{Classify, ErrorClass};

/// The crate's own HTTP status error: a status code and, optionally, the server's Retry-After.
///
/// `#[retry]` classifies it as `Status(code)` and honours its Retry-After. Return it from
/// your function (directly, through `From`, or as the `source()` of your own error type).
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::Duration;
/// use resilience::HttpError;
///
/// let err = HttpError::new(503).with_retry_after(Duration::from_secs(2));
/// assert_eq!(err.status(), 503);
/// assert_eq!(err.to_string(), "HTTP 503 Service Unavailable (retry after 2s)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    status: u16,
    retry_after: Option<Duration>,
    url: Option<String>,
}

impl HttpError {
    /// An error for this status code.
    pub const fn new(status: u16) -> Self {
        HttpError {
            status,
            retry_after: None,
            url: None,
        }
    }

    /// The same error carrying the server's Retry-After.
    pub const fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// The same error naming the URL that answered (shown in its message).
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The HTTP status code.
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// The server's Retry-After, if it sent one.
    pub const fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The URL that answered, if known.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(reason) = reason_phrase(self.status) {
            write!(f, " {reason}")?;
        }
        if let Some(url) = &self.url {
            write!(f, " from {url}")?;
        }
        if let Some(wait) = self.retry_after {
            write!(f, " (retry after {wait:?})")?;
        }
        Ok(())
    }
}

impl std::error::Error for HttpError {}

impl Classify for HttpError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Status(self.status)
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_class() {
        let err = HttpError::new(404).with_url("http://x/y");
        assert_eq!(err.to_string(), "HTTP 404 Not Found from http://x/y");
        assert_eq!(err.class(), ErrorClass::Status(404));
        assert_eq!(HttpError::new(599).to_string(), "HTTP 599");
    }
}
