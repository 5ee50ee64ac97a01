//! HTTP status errors: [`HttpError`], Retry-After parsing, the quota a server advertises in
//! its rate-limit headers ([`Quota`]), and (feature `reqwest`) [`error_for_status`] for
//! `reqwest::Response`.

use std::fmt;
use std::time::Duration;

use crate::error_class::{Classify, ErrorClass};

pub use crate::quota::{Allowance, Quota, parse_retry_after};

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

/// Turns a non-2xx `reqwest::Response` into an [`HttpError`] carrying its status, URL and
/// parsed Retry-After; a 2xx response is returned unchanged.
///
/// `reqwest::Response::error_for_status` loses the Retry-After header; this keeps it, so
/// `#[retry]` can honour it.
///
/// ```no_run
/// # use resilience_core as resilience;
/// # async fn demo() -> Result<String, resilience::HttpError> {
/// let response = reqwest::get("http://127.0.0.1:8080/users/1").await.map_err(|_| resilience::HttpError::new(599))?;
/// let response = resilience::http::error_for_status(response)?;
/// # Ok(response.text().await.unwrap_or_default())
/// # }
/// ```
///
/// Every response passed here (successes too) also reports its quota headers
/// ([`Quota`]) to the named limiter of the `#[rate_limited(policy = ...)]` site making the
/// call, so a batch paces itself to what the server advertises.
#[cfg(feature = "reqwest")]
pub fn error_for_status(response: reqwest::Response) -> Result<reqwest::Response, HttpError> {
    let quota = Quota::from_headers(response.headers(), std::time::SystemTime::now());
    if !quota.is_empty() {
        crate::rate_limit::learn_from_server(&quota);
    }
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let mut error = HttpError::new(status.as_u16()).with_url(response.url().as_str());
    if let Some(wait) = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, std::time::SystemTime::now()))
    {
        error = error.with_retry_after(wait);
    }
    Err(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        // a date in the past means "now"
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("99999999999999999999999", now), None);
    }

    #[test]
    fn display_and_class() {
        let err = HttpError::new(404).with_url("http://x/y");
        assert_eq!(err.to_string(), "HTTP 404 Not Found from http://x/y");
        assert_eq!(err.class(), ErrorClass::Status(404));
        assert_eq!(HttpError::new(599).to_string(), "HTTP 599");
    }
}
