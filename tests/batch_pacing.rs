//! A batch paces itself to the quota a server advertises: `X-RateLimit-*` headers read by
//! `resilience::http::error_for_status` feed the named limiter of the `#[rate_limited]` site
//! making the call, so a limiter configured far too generously (100/s) slows to the server's
//! 10/s before the server has to refuse anything.
//!
//! The server is a tiny HTTP/1.1 server written here, with a token bucket; it runs on the real
//! clock (sockets and a paused clock do not mix for a test about pace), so this file takes
//! about two seconds. It asserts counts and a lower bound on the wall time only: speed
//! figures belong in benchmarks. Also here: `resilience::http::Quota::parse` cases.
//!
//! Run with `cargo test --all-features --test batch_pacing`.

#![cfg(feature = "reqwest")]

mod common;

use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use resilience::http::Quota;
use resilience::rate_limit::{LimitMode, RateLimitSpec, RateLimiter};
use resilience::{HttpError, Rejected, rate_limited, retry};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// The server: a token bucket of 10, refilled at 10 per second
// ---------------------------------------------------------------------------------------------

const CAPACITY: f64 = 10.0;
const REFILL_PER_SEC: f64 = 10.0;

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Hit {
    /// Arrival, from the server's start.
    at: Duration,
    /// The request target (`/item?n=3`).
    target: String,
    /// Tokens in the bucket when it arrived (refilled up to then).
    tokens: f64,
    status: u16,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Refills up to `now`; takes a token if there is one. Returns (tokens before, admitted,
    /// tokens after).
    fn take(&mut self, now: Instant) -> (f64, bool, f64) {
        let refill = now.duration_since(self.at).as_secs_f64() * REFILL_PER_SEC;
        self.tokens = (self.tokens + refill).min(CAPACITY);
        self.at = now;
        let before = self.tokens;
        let admitted = self.tokens >= 1.0;
        if admitted {
            self.tokens -= 1.0;
        }
        (before, admitted, self.tokens)
    }
}

struct Server {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr: {e}"))
            .port();
        let start = Instant::now();
        let bucket = Arc::new(Mutex::new(Bucket {
            tokens: CAPACITY,
            at: start,
        }));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let bucket = Arc::clone(&bucket);
                let seen = Arc::clone(&seen);
                tokio::spawn(answer(stream, start, bucket, seen));
            }
        });
        Server {
            url: format!("http://127.0.0.1:{port}/item"),
            hits,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        lock(&self.hits).clone()
    }

    fn count(&self, status: u16) -> usize {
        lock(&self.hits)
            .iter()
            .filter(|hit| hit.status == status)
            .count()
    }
}

/// Reads one request head, charges the bucket, answers with the quota headers and
/// `Connection: close`.
async fn answer(
    mut stream: TcpStream,
    start: Instant,
    bucket: Arc<Mutex<Bucket>>,
    hits: Arc<Mutex<Vec<Hit>>>,
) {
    let Some(head) = common::read_head(&mut stream).await else {
        return;
    };
    let target = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let now = Instant::now();
    let (before, admitted, after) = lock(&bucket).take(now);
    let status = if admitted { 200 } else { 429 };
    lock(&hits).push(Hit {
        at: now.duration_since(start),
        target,
        tokens: before,
        status,
    });
    let remaining = after.floor();
    let reset = ((CAPACITY - after) / REFILL_PER_SEC).ceil();
    let (line, body) = if admitted {
        ("200 OK", "ok")
    } else {
        ("429 Too Many Requests", "")
    };
    let mut response = format!(
        "HTTP/1.1 {line}\r\nContent-Length: {}\r\nConnection: close\r\n\
         X-RateLimit-Limit: {CAPACITY}\r\nX-RateLimit-Remaining: {remaining}\r\n\
         X-RateLimit-Reset: {reset}\r\n",
        body.len()
    );
    if !admitted {
        response.push_str("Retry-After: 1\r\n");
    }
    response.push_str("\r\n");
    response.push_str(body);
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A client that never goes through a proxy from the environment.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The client: a quota configured ten times too generous
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum ApiError {
    Transport(reqwest::Error),
    Http(HttpError),
    Rejected(Rejected),
}

impl From<reqwest::Error> for ApiError {
    fn from(error: reqwest::Error) -> Self {
        ApiError::Transport(error)
    }
}

impl From<HttpError> for ApiError {
    fn from(error: HttpError) -> Self {
        ApiError::Http(error)
    }
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Transport(error) => write!(f, "transport: {error}"),
            ApiError::Http(error) => write!(f, "{error}"),
            ApiError::Rejected(rejected) => write!(f, "{rejected}"),
        }
    }
}

/// No `Classify` impl: the retry and the limiter classify it through `source()`, which
/// reaches the `HttpError`, the `reqwest::Error` or the `Rejected` (still marked local).
impl Error for ApiError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ApiError::Transport(error) => Some(error),
            ApiError::Http(error) => Some(error),
            ApiError::Rejected(rejected) => Some(rejected),
        }
    }
}

#[retry(attempts = 5, base = "50ms")]
#[rate_limited(calls = 100, period = "1s", policy = "pacing-test")]
async fn get(client: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    let response = client.get(url).send().await?;
    let response = resilience::http::error_for_status(response)?;
    Ok(response.text().await?)
}

fn timeline(hits: &[Hit]) -> String {
    hits.iter()
        .map(|hit| {
            format!(
                "{:>7.1}ms {:<12} tokens {:>5.2} -> {}",
                hit.at.as_secs_f64() * 1000.0,
                hit.target,
                hit.tokens,
                hit.status
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// 25 inputs, 5 at a time, against a server allowing 10 at once and 10 per second: the first
/// responses teach the limiter the server's quota, and the batch never provokes a 429. The
/// server's pace bounds the wall time from below: the 15 requests beyond the first 10 need
/// 1.5 s of refill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_paces_itself_to_the_advertised_quota() {
    let server = Server::start().await;
    let client = client();
    let (client, url) = (&client, server.url.as_str());
    let report = resilience::batch(0..25u32, move |n| async move {
        get(client, &format!("{url}?n={n}")).await
    })
    .concurrency(5)
    .await;

    let hits = server.hits();
    let failures: Vec<String> = report
        .dead_letters
        .iter()
        .map(|dead| format!("{}: {} ({} tries)", dead.input, dead.error, dead.tries))
        .collect();
    assert_eq!(
        (report.succeeded, report.failed),
        (25, 0),
        "{failures:?}\n{}",
        timeline(&hits)
    );
    assert_eq!(server.count(429), 0, "provoked 429s:\n{}", timeline(&hits));
    assert_eq!(server.count(200), 25, "{}", timeline(&hits));
    assert!(
        report.elapsed >= Duration::from_millis(1500),
        "{:?} is faster than the server allows:\n{}",
        report.elapsed,
        timeline(&hits)
    );
    assert!(
        report.elapsed < Duration::from_secs(10),
        "{:?}: a sanity bound, not a speed figure:\n{}",
        report.elapsed,
        timeline(&hits)
    );
}

/// 20 inputs all at once, against the same server: every call reserves its slot at the
/// configured 100/s before the first response comes back, so 19 callers are already asleep
/// on slots 10 ms apart when the limiter learns the server's 10/s. Those slots are spread out
/// to the learned pace too (and pushed back by any pause), so this batch, with twice the
/// server's burst in flight, still provokes no 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_already_waiting_follow_the_learned_quota() {
    let server = Server::start().await;
    let client = client();
    let (client, url) = (&client, server.url.as_str());
    let report = resilience::batch(0..20u32, move |n| async move {
        get_all_at_once(client, &format!("{url}?n={n}")).await
    })
    .concurrency(20)
    .await;

    let hits = server.hits();
    assert_eq!(
        (report.succeeded, report.failed),
        (20, 0),
        "{}",
        timeline(&hits)
    );
    assert_eq!(server.count(429), 0, "provoked 429s:\n{}", timeline(&hits));
    // 10 at the server's burst, 10 more at its refill: no faster than 1 s, and no slower
    // than the learned pace needs (plus a wide margin for a loaded CI machine).
    assert!(
        report.elapsed >= Duration::from_millis(900) && report.elapsed < Duration::from_secs(10),
        "{:?}:\n{}",
        report.elapsed,
        timeline(&hits)
    );
}

/// [`get`] on a limiter of its own, so this test's schedule starts empty.
#[retry(attempts = 5, base = "50ms")]
#[rate_limited(calls = 100, period = "1s", policy = "pacing-test-all-at-once")]
async fn get_all_at_once(client: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    let response = client.get(url).send().await?;
    let response = resilience::http::error_for_status(response)?;
    Ok(response.text().await?)
}

// ---------------------------------------------------------------------------------------------
// Quota headers
// ---------------------------------------------------------------------------------------------

fn quota(headers: &[(&str, &str)], now: SystemTime) -> Quota {
    Quota::parse(
        |name| {
            headers
                .iter()
                .find(|(header, _)| *header == name)
                .map(|(_, value)| *value)
        },
        now,
    )
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn quota_reads_the_three_headers_and_retry_after() {
    let now = UNIX_EPOCH + secs(1_700_000_000);
    let q = quota(
        &[
            ("x-ratelimit-limit", "10"),
            ("x-ratelimit-remaining", " 3 "),
            ("x-ratelimit-reset", "2"),
            ("retry-after", "1"),
        ],
        now,
    );
    assert_eq!(
        (q.limit, q.remaining, q.reset, q.retry_after),
        (Some(10), Some(3), Some(secs(2)), Some(secs(1)))
    );
    assert!(!q.is_empty());

    // a Retry-After alone (an HTTP date 30s ahead) is enough
    let q = quota(&[("retry-after", "Tue, 14 Nov 2023 22:13:50 GMT")], now);
    assert_eq!(
        (q.limit, q.remaining, q.reset, q.retry_after),
        (None, None, None, Some(secs(30)))
    );
}

#[test]
fn quota_reset_is_seconds_or_a_unix_time() {
    let now = UNIX_EPOCH + secs(1_700_000_000);
    let reset = |value: &str| quota(&[("x-ratelimit-reset", value)], now).reset;
    assert_eq!(reset("0"), Some(Duration::ZERO));
    assert_eq!(reset("60"), Some(secs(60)));
    // up to 10^9 it is a number of seconds (about 31 years) ...
    assert_eq!(reset("1000000000"), Some(secs(1_000_000_000)));
    // ... above, a Unix time (GitHub's form), relative to now; a past one is now
    assert_eq!(reset("1700000045"), Some(secs(45)));
    assert_eq!(reset("1700000000"), Some(Duration::ZERO));
    assert_eq!(reset("1600000000"), Some(Duration::ZERO));
}

#[test]
fn quota_without_headers_is_empty() {
    let q = quota(&[], UNIX_EPOCH);
    assert!(q.is_empty());
    assert_eq!(q, Quota::default());
    // other headers do not count
    assert!(quota(&[("content-length", "2")], UNIX_EPOCH).is_empty());
}

#[test]
fn quota_ignores_values_that_are_not_numbers() {
    let now = UNIX_EPOCH + secs(1_700_000_000);
    let q = quota(
        &[
            ("x-ratelimit-limit", "ten"),
            ("x-ratelimit-remaining", "-1"),
            ("x-ratelimit-reset", "1.5s"),
            ("retry-after", "soon"),
        ],
        now,
    );
    assert!(q.is_empty(), "{q:?}");
    // (a fractional number of seconds is a reset, though)
    assert_eq!(
        quota(&[("x-ratelimit-reset", "1.5")], now).reset,
        Some(Duration::from_millis(1500))
    );

    // one bad value does not hide the good ones
    let q = quota(
        &[("x-ratelimit-limit", "50"), ("x-ratelimit-remaining", "")],
        now,
    );
    assert_eq!((q.limit, q.remaining), (Some(50), None));

    // a number too large for u32 saturates; one too large for u64 is not a number
    let q = quota(
        &[
            ("x-ratelimit-limit", "99999999999"),
            ("x-ratelimit-remaining", "99999999999999999999999"),
        ],
        now,
    );
    assert_eq!((q.limit, q.remaining), (Some(u32::MAX), None));
}

/// `from_headers` looks names up case-insensitively, as HTTP requires.
#[test]
fn quota_from_reqwest_headers() {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("X-RateLimit-Limit", "10"),
        ("X-RateLimit-Remaining", "0"),
        ("X-RateLimit-Reset", "1"),
        ("Retry-After", "1"),
    ] {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static(value),
        );
    }
    let q = Quota::from_headers(&headers, SystemTime::now());
    assert_eq!(
        (q.limit, q.remaining, q.reset, q.retry_after),
        (Some(10), Some(0), Some(secs(1)), Some(secs(1)))
    );

    // the other dialects pass its first look at the names too
    for (name, value) in [
        ("X-RateLimit-Remaining-Tokens", "7"),
        ("Anthropic-RateLimit-Tokens-Remaining", "7"),
    ] {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static(value),
        );
        let q = Quota::from_headers(&headers, SystemTime::now());
        assert_eq!(q.tokens.remaining, Some(7), "{name}");
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("ratelimit"),
        HeaderValue::from_static("\"default\";r=3;t=2"),
    );
    headers.insert(
        HeaderName::from_static("ratelimit-policy"),
        HeaderValue::from_static("\"default\";q=10;w=1"),
    );
    headers.insert(
        HeaderName::from_static("content-length"),
        HeaderValue::from_static("2"),
    );
    let q = Quota::from_headers(&headers, SystemTime::now());
    assert_eq!(
        (q.limit, q.remaining, q.reset, q.window),
        (Some(10), Some(3), Some(secs(2)), Some(secs(1)))
    );
    headers.clear();
    headers.insert(
        HeaderName::from_static("content-length"),
        HeaderValue::from_static("2"),
    );
    assert!(Quota::from_headers(&headers, SystemTime::now()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// What the limiter learns from a quota (paused clock: exact admissions)
// ---------------------------------------------------------------------------------------------

fn reject_mode(calls: u32) -> RateLimiter {
    RateLimiter::new(RateLimitSpec::new(calls, secs(1)).mode(LimitMode::Reject))
}

fn limit(value: &str) -> Quota {
    quota(&[("x-ratelimit-limit", value)], UNIX_EPOCH)
}

/// The wait after one admission at a fresh instant: the limiter's current spacing.
async fn spacing(limiter: &RateLimiter) -> Result<Duration, Duration> {
    tokio::time::advance(secs(5)).await;
    assert_eq!(limiter.check(None), Ok(Duration::ZERO));
    limiter.check(None)
}

/// A lower advertised limit slows the limiter; a later, higher one (still below the
/// configured `calls`) speeds it up again.
#[tokio::test(start_paused = true)]
async fn an_advertised_limit_below_calls_sets_the_pace() {
    let limiter = reject_mode(100);
    assert_eq!(spacing(&limiter).await, Err(Duration::from_millis(10)));
    assert_eq!(limiter.learn(None, &limit("10")).limit, Some(10));
    assert_eq!(spacing(&limiter).await, Err(Duration::from_millis(100)));
    assert_eq!(limiter.learn(None, &limit("50")).limit, Some(50));
    assert_eq!(spacing(&limiter).await, Err(Duration::from_millis(20)));
}

/// A server that raises its limit to the configured `calls` or above lets the limiter return
/// to its configured pace.
#[tokio::test(start_paused = true)]
async fn an_advertised_limit_above_calls_restores_the_configured_pace() {
    let limiter = reject_mode(100);
    limiter.learn(None, &limit("10"));
    assert_eq!(spacing(&limiter).await, Err(Duration::from_millis(100)));
    limiter.learn(None, &limit("200"));
    // observed: Err(100ms), the server's old limit of 10/s
    assert_eq!(spacing(&limiter).await, Err(Duration::from_millis(10)));
}

/// `Remaining: 0` with `Reset: 2` admits nothing for 2s.
#[tokio::test(start_paused = true)]
async fn nothing_remaining_pauses_until_the_reset() {
    let limiter = reject_mode(100);
    let spent = quota(
        &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "2")],
        UNIX_EPOCH,
    );
    assert_eq!(limiter.learn(None, &spent).pause, Some(secs(2)));
    assert_eq!(limiter.check(None), Err(secs(2)));
    tokio::time::advance(secs(2)).await;
    assert_eq!(limiter.check(None), Ok(Duration::ZERO));
}
