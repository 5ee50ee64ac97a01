//! HTTP: [`HttpError`], Retry-After parsing, the quota a server advertises in its rate-limit
//! headers ([`Quota`]); with feature `reqwest`, [`error_for_status`] for `reqwest::Response` and
//! [`client_builder`] (a client with a policy's connect and read timeouts); with feature
//! `reqwest-middleware`, [`ResilienceMiddleware`] (a policy for every request of a client).

pub use crate::http_error::HttpError;
pub use crate::quota::{Allowance, Quota, parse_retry_after};

#[cfg(feature = "reqwest-middleware")]
mod cache;
#[cfg(feature = "reqwest")]
mod client;
#[cfg(feature = "reqwest-middleware")]
mod middleware;

#[cfg(feature = "reqwest")]
pub use client::client_builder;
#[cfg(feature = "reqwest-middleware")]
pub use middleware::ResilienceMiddleware;

/// Whether a request may be sent again after it may have reached the server: its method is
/// idempotent (GET, HEAD, OPTIONS, PUT, DELETE, TRACE; RFC 9110, 9.2.2) or it carries an
/// `Idempotency-Key` header (the server then answers a repeat as the first). The middleware
/// and the tower layer retry any other request only when it was never sent (`Connect`).
///
/// ```
/// # use resilience_core as resilience;
/// use http::{HeaderMap, HeaderValue, Method};
/// use resilience::http::is_retry_safe;
///
/// let mut headers = HeaderMap::new();
/// assert!(is_retry_safe(&Method::PUT, &headers));
/// assert!(!is_retry_safe(&Method::POST, &headers));
/// headers.insert("idempotency-key", HeaderValue::from_static("order-42"));
/// assert!(is_retry_safe(&Method::POST, &headers));
/// ```
#[cfg(any(feature = "reqwest", feature = "tower"))]
pub fn is_retry_safe(method: &http::Method, headers: &http::HeaderMap) -> bool {
    use http::Method;
    let idempotent = [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::PUT,
        Method::DELETE,
        Method::TRACE,
    ];
    idempotent.contains(method) || headers.contains_key("idempotency-key")
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
    match read_answer(&response) {
        None => Ok(response),
        Some(error) => Err(error),
    }
}

/// What every response read by this crate goes through ([`error_for_status`] and the
/// middleware): its quota headers reach the named limiter of the call in progress, and a
/// non-2xx status becomes an [`HttpError`] with its URL and Retry-After.
#[cfg(feature = "reqwest")]
fn read_answer(response: &reqwest::Response) -> Option<HttpError> {
    let status = response.status();
    // Only a limiter learns from the quota headers: a call that none admitted (a policy with
    // no `rate_limit`, a fn without `#[rate_limited]`) skips the dozen header lookups, about
    // a tenth of the middleware's own instructions per request.
    if crate::rate_limit::site::listening() {
        let quota = Quota::from_headers(response.headers(), std::time::SystemTime::now());
        if !quota.is_empty() {
            crate::rate_limit::learn_from_server(&quota);
        }
    }
    if status.is_success() {
        return None;
    }
    let now = std::time::SystemTime::now();
    let mut error = HttpError::new(status.as_u16()).with_url(response.url().as_str());
    if let Some(wait) = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, now))
    {
        error = error.with_retry_after(wait);
    }
    Some(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

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
}
