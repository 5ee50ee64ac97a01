//! Behaviour of `#[retry]` through the facade, on tokio's paused clock: every test records the
//! instant of each try relative to its start and asserts the exact list of offsets.
//!
//! Tokio's timer has a resolution of one millisecond and the paused clock only ever stops on
//! whole milliseconds from the runtime's start, so a jittered sleep of `x` shows up as `x`
//! rounded up to the millisecond; the bounds asserted below are whole milliseconds, so that
//! rounding never moves a correct sleep outside them.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use resilience::registry::{self, NamedPolicy};
use resilience::{Backoff, Classify, ErrorClass, HttpError, Retry, RetryPatch, retry};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// Recording tries
// ---------------------------------------------------------------------------------------------

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn offsets(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|&n| ms(n)).collect()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The tries of one call: when each started, relative to the creation of the recorder.
struct Calls {
    start: Instant,
    at: Mutex<Vec<Duration>>,
}

impl Calls {
    fn new() -> Self {
        Calls {
            start: Instant::now(),
            at: Mutex::new(Vec::new()),
        }
    }

    /// Records a try; returns its index (0 for the first try).
    fn hit(&self) -> usize {
        let mut at = lock(&self.at);
        at.push(self.start.elapsed());
        at.len() - 1
    }

    /// Records a try and answers from `script`: the n-th try fails with the n-th error, and
    /// once the script is spent a try succeeds with its 1-based number.
    fn replay<E: Clone>(&self, script: &[E]) -> Result<usize, E> {
        let n = self.hit();
        match script.get(n) {
            Some(error) => Err(error.clone()),
            None => Ok(n + 1),
        }
    }

    /// [`Calls::replay`] with an [`HttpError`] of each status.
    fn step(&self, statuses: &[u16]) -> Result<usize, HttpError> {
        let n = self.hit();
        match statuses.get(n) {
            Some(&status) => Err(HttpError::new(status)),
            None => Ok(n + 1),
        }
    }

    fn offsets(&self) -> Vec<Duration> {
        lock(&self.at).clone()
    }

    fn count(&self) -> usize {
        lock(&self.at).len()
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The gaps between consecutive tries.
    fn gaps(&self) -> Vec<Duration> {
        self.offsets().windows(2).map(|w| w[1] - w[0]).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Backoff shapes
// ---------------------------------------------------------------------------------------------

#[retry]
async fn defaults(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(attempts = 5, backoff = "exp", base = "100ms", factor = 3.0)]
async fn exp_factor_3(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(attempts = 4, backoff = "exp", base = "100ms", factor = 1.5)]
async fn exp_factor_1_5(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(attempts = 5, backoff = "linear", base = "100ms")]
async fn linear(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(attempts = 4, backoff = "constant", base = "250ms")]
async fn constant(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(attempts = 6, backoff = "exp", base = "100ms", max_delay = "300ms")]
async fn exp_capped(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(attempts = 5, backoff = "linear", base = "100ms", max_delay = "250ms")]
async fn linear_capped(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

/// No key at all: 3 attempts, exponential from 100ms with factor 2.
#[tokio::test(start_paused = true)]
async fn defaults_are_three_tries_exp_from_100ms() {
    let calls = Calls::new();
    assert_eq!(defaults(&calls, &[503, 503]).await, Ok(3));
    assert_eq!(calls.offsets(), offsets(&[0, 100, 300]));
    assert_eq!(calls.elapsed(), ms(300), "no sleep after the last try");
}

/// `factor` sets the growth: base * factor^(n-1).
#[tokio::test(start_paused = true)]
async fn exp_backoff_follows_the_factor() {
    let calls = Calls::new();
    assert_eq!(exp_factor_3(&calls, &[503, 503, 503, 503]).await, Ok(5));
    // sleeps 100, 300, 900, 2700
    assert_eq!(calls.offsets(), offsets(&[0, 100, 400, 1300, 4000]));

    let calls = Calls::new();
    assert_eq!(exp_factor_1_5(&calls, &[503, 503, 503]).await, Ok(4));
    // sleeps 100, 150, 225
    assert_eq!(calls.offsets(), offsets(&[0, 100, 250, 475]));
}

#[tokio::test(start_paused = true)]
async fn linear_backoff_grows_by_base() {
    let calls = Calls::new();
    assert_eq!(linear(&calls, &[503, 503, 503, 503]).await, Ok(5));
    // sleeps 100, 200, 300, 400
    assert_eq!(calls.offsets(), offsets(&[0, 100, 300, 600, 1000]));
}

#[tokio::test(start_paused = true)]
async fn constant_backoff_sleeps_base_every_time() {
    let calls = Calls::new();
    assert_eq!(constant(&calls, &[503, 503, 503]).await, Ok(4));
    assert_eq!(calls.offsets(), offsets(&[0, 250, 500, 750]));
}

#[tokio::test(start_paused = true)]
async fn max_delay_caps_each_sleep() {
    let calls = Calls::new();
    assert_eq!(exp_capped(&calls, &[503; 5]).await, Ok(6));
    // sleeps 100, 200, then 400 and more capped at 300
    assert_eq!(calls.offsets(), offsets(&[0, 100, 300, 600, 900, 1200]));

    let calls = Calls::new();
    assert_eq!(linear_capped(&calls, &[503; 4]).await, Ok(5));
    // sleeps 100, 200, then 300 and 400 capped at 250
    assert_eq!(calls.offsets(), offsets(&[0, 100, 300, 550, 800]));
}

// ---------------------------------------------------------------------------------------------
// Attempts and max_elapsed
// ---------------------------------------------------------------------------------------------

#[retry(attempts = 4, base = "10ms")]
async fn four_attempts(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(attempts = 1, base = "10ms")]
async fn one_attempt(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

/// `attempts` counts every try, the first included; the error returned is the last one.
#[tokio::test(start_paused = true)]
async fn attempts_bound_the_tries_and_the_last_error_is_returned() {
    let calls = Calls::new();
    let result = four_attempts(&calls, &[502, 503, 504, 429, 503]).await;
    assert_eq!(result, Err(HttpError::new(429)), "the 4th try's error");
    assert_eq!(calls.offsets(), offsets(&[0, 10, 30, 70]));
    assert_eq!(calls.elapsed(), ms(70), "no sleep after the last try");

    let calls = Calls::new();
    assert_eq!(
        four_attempts(&calls, &[503, 502, 504]).await,
        Ok(4),
        "succeeding on the last allowed try"
    );
    assert_eq!(calls.count(), 4);

    let calls = Calls::new();
    assert_eq!(
        one_attempt(&calls, &[503, 503]).await,
        Err(HttpError::new(503))
    );
    assert_eq!(calls.offsets(), offsets(&[0]));
    assert_eq!(calls.elapsed(), ms(0));
}

/// Each try itself takes 50ms; sleeps 100, 200, 400, ...
async fn slow_try(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    let outcome = calls.step(statuses);
    tokio::time::sleep(ms(50)).await;
    outcome
}

#[retry(attempts = 10, base = "100ms", max_elapsed = "750ms")]
async fn elapsed_750(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    slow_try(calls, statuses).await
}

#[retry(attempts = 10, base = "100ms", max_elapsed = "850ms")]
async fn elapsed_850(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    slow_try(calls, statuses).await
}

#[retry(attempts = 10, base = "100ms", max_elapsed = "849ms")]
async fn elapsed_849(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    slow_try(calls, statuses).await
}

/// `max_elapsed` counts the time spent inside the tries, not only the sleeps.
#[tokio::test(start_paused = true)]
async fn max_elapsed_counts_time_spent_in_the_tries() {
    // tries start at 0, 150, 400 and end 50ms later. After the 3rd (at 450ms) the next sleep
    // of 400ms would end at 850ms > 750ms: give up. (Counting only the sleeps, 100 + 200 + 400
    // = 700ms would have fitted.)
    let calls = Calls::new();
    let result = elapsed_750(&calls, &[502, 503, 504, 429]).await;
    assert_eq!(result, Err(HttpError::new(504)), "the 3rd try's error");
    assert_eq!(calls.offsets(), offsets(&[0, 150, 400]));
    assert_eq!(
        calls.elapsed(),
        ms(450),
        "gave up at once, without sleeping"
    );
}

/// A sleep ending exactly at `max_elapsed` is allowed; one ending a millisecond later is not.
#[tokio::test(start_paused = true)]
async fn max_elapsed_boundary_is_inclusive() {
    let calls = Calls::new();
    let result = elapsed_850(&calls, &[502, 503, 504, 429, 500]).await;
    assert_eq!(result, Err(HttpError::new(429)), "the 4th try's error");
    assert_eq!(calls.offsets(), offsets(&[0, 150, 400, 850]));
    assert_eq!(calls.elapsed(), ms(900));

    let calls = Calls::new();
    let result = elapsed_849(&calls, &[502, 503, 504, 429, 500]).await;
    assert_eq!(result, Err(HttpError::new(504)));
    assert_eq!(calls.offsets(), offsets(&[0, 150, 400]));
    assert_eq!(calls.elapsed(), ms(450));
}

/// Success within `max_elapsed` is returned as usual.
#[tokio::test(start_paused = true)]
async fn max_elapsed_does_not_touch_a_success() {
    let calls = Calls::new();
    assert_eq!(elapsed_750(&calls, &[503, 503]).await, Ok(3));
    assert_eq!(calls.offsets(), offsets(&[0, 150, 400]));
    assert_eq!(calls.elapsed(), ms(450));
}

// ---------------------------------------------------------------------------------------------
// Retry-After
// ---------------------------------------------------------------------------------------------

#[retry(attempts = 4, base = "100ms")]
async fn honours_retry_after(calls: &Calls, script: &[HttpError]) -> Result<usize, HttpError> {
    calls.replay(script)
}

#[retry(attempts = 4, base = "100ms", jitter = "full")]
async fn jittered_honours_retry_after(
    calls: &Calls,
    script: &[HttpError],
) -> Result<usize, HttpError> {
    calls.replay(script)
}

#[retry(attempts = 4, base = "100ms", max_delay = "1s")]
async fn retry_after_capped(calls: &Calls, script: &[HttpError]) -> Result<usize, HttpError> {
    calls.replay(script)
}

#[retry(attempts = 4, base = "100ms", retry_after = false)]
async fn ignores_retry_after(calls: &Calls, script: &[HttpError]) -> Result<usize, HttpError> {
    calls.replay(script)
}

fn busy(wait_ms: u64) -> HttpError {
    HttpError::new(503).with_retry_after(ms(wait_ms))
}

/// The server's Retry-After replaces the backoff for that sleep; the backoff goes on counting.
#[tokio::test(start_paused = true)]
async fn retry_after_sets_the_next_sleep() {
    let calls = Calls::new();
    let script = [busy(1500), HttpError::new(502), busy(30)];
    assert_eq!(honours_retry_after(&calls, &script).await, Ok(4));
    // 1500 (server), 200 (2nd retry of exp from 100ms), 30 (server)
    assert_eq!(calls.offsets(), offsets(&[0, 1500, 1700, 1730]));
}

/// No jitter is added on top of the server's wait.
#[tokio::test(start_paused = true)]
async fn retry_after_is_not_jittered() {
    for _ in 0..20 {
        let calls = Calls::new();
        assert_eq!(
            jittered_honours_retry_after(&calls, &[busy(700), busy(70)]).await,
            Ok(3)
        );
        assert_eq!(calls.offsets(), offsets(&[0, 700, 770]));
    }
}

/// A Retry-After longer than `max_delay` is returned at once, without sleeping; one equal to
/// `max_delay` is waited.
#[tokio::test(start_paused = true)]
async fn retry_after_over_max_delay_gives_up_at_once() {
    let calls = Calls::new();
    let script = [busy(1001), HttpError::new(502)];
    assert_eq!(retry_after_capped(&calls, &script).await, Err(busy(1001)));
    assert_eq!(calls.offsets(), offsets(&[0]));
    assert_eq!(calls.elapsed(), ms(0));

    let calls = Calls::new();
    assert_eq!(retry_after_capped(&calls, &[busy(1000)]).await, Ok(2));
    assert_eq!(calls.offsets(), offsets(&[0, 1000]));
}

#[tokio::test(start_paused = true)]
async fn retry_after_false_ignores_the_server() {
    let calls = Calls::new();
    let script = [busy(5000), busy(60_000)];
    assert_eq!(ignores_retry_after(&calls, &script).await, Ok(3));
    assert_eq!(calls.offsets(), offsets(&[0, 100, 300]));
}

// ---------------------------------------------------------------------------------------------
// What is retried
// ---------------------------------------------------------------------------------------------

/// An error the runtime knows nothing about: no `Classify`, no `source()`.
#[derive(Debug, Clone, PartialEq)]
struct Opaque(u32);

impl fmt::Display for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "opaque {}", self.0)
    }
}

impl Error for Opaque {}

#[retry(attempts = 5, base = "10ms")]
async fn opaque(calls: &Calls, script: &[Opaque]) -> Result<usize, Opaque> {
    calls.replay(script)
}

/// 400, 401, 403, 404 and 422 are answers, not accidents: returned after one try, no sleep.
#[tokio::test(start_paused = true)]
async fn client_errors_are_returned_at_once() {
    for status in [400, 401, 403, 404, 422] {
        let calls = Calls::new();
        assert_eq!(
            defaults(&calls, &[status, 503]).await,
            Err(HttpError::new(status))
        );
        assert_eq!(calls.offsets(), offsets(&[0]), "{status}");
        assert_eq!(calls.elapsed(), ms(0), "{status}");
    }
    // a Retry-After does not make a client error retryable
    let calls = Calls::new();
    let script = [HttpError::new(400).with_retry_after(ms(10))];
    assert_eq!(
        honours_retry_after(&calls, &script).await,
        Err(script[0].clone())
    );
    assert_eq!(calls.count(), 1);
    // 500 is not in the default set either
    let calls = Calls::new();
    assert_eq!(defaults(&calls, &[500]).await, Err(HttpError::new(500)));
    assert_eq!(calls.count(), 1);
}

/// The default set is Timeout, Connect, 429, 502, 503, 504.
#[tokio::test(start_paused = true)]
async fn transient_statuses_are_retried_by_default() {
    for status in [429, 502, 503, 504] {
        let calls = Calls::new();
        assert_eq!(
            defaults(&calls, &[status, status, status]).await,
            Err(HttpError::new(status))
        );
        assert_eq!(calls.offsets(), offsets(&[0, 100, 300]), "{status}");
    }
}

#[tokio::test(start_paused = true)]
async fn unclassified_errors_are_returned_at_once() {
    let calls = Calls::new();
    assert_eq!(
        opaque(&calls, &[Opaque(1), Opaque(2)]).await,
        Err(Opaque(1))
    );
    assert_eq!(calls.offsets(), offsets(&[0]));
    assert_eq!(calls.elapsed(), ms(0));
}

#[retry(attempts = 4, base = "10ms", on = [500, 418])]
async fn on_codes(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(attempts = 4, base = "10ms", on = ["5xx"])]
async fn on_5xx(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

/// `on` lists what is retried, and replaces the default set.
#[tokio::test(start_paused = true)]
async fn on_status_codes() {
    let calls = Calls::new();
    assert_eq!(on_codes(&calls, &[500, 418, 500]).await, Ok(4));
    assert_eq!(calls.offsets(), offsets(&[0, 10, 30, 70]));

    let calls = Calls::new();
    assert_eq!(
        on_codes(&calls, &[500, 503]).await,
        Err(HttpError::new(503)),
        "503 is not in the list"
    );
    assert_eq!(calls.offsets(), offsets(&[0, 10]));
}

#[tokio::test(start_paused = true)]
async fn on_status_class() {
    let calls = Calls::new();
    assert_eq!(on_5xx(&calls, &[500, 501, 599]).await, Ok(4));
    assert_eq!(calls.offsets(), offsets(&[0, 10, 30, 70]));

    for outside in [429, 404, 499] {
        let calls = Calls::new();
        assert_eq!(
            on_5xx(&calls, &[550, outside]).await,
            Err(HttpError::new(outside))
        );
        assert_eq!(calls.count(), 2, "{outside} is not 5xx");
    }
}

fn io_step(calls: &Calls, kinds: &[io::ErrorKind]) -> io::Result<usize> {
    let n = calls.hit();
    match kinds.get(n) {
        Some(&kind) => Err(io::Error::new(kind, format!("try {n}"))),
        None => Ok(n + 1),
    }
}

#[retry(attempts = 5, base = "10ms", on = [Timeout])]
async fn on_timeout(calls: &Calls, kinds: &[io::ErrorKind]) -> io::Result<usize> {
    io_step(calls, kinds)
}

#[retry(attempts = 5, base = "10ms", on = [Connect])]
async fn on_connect(calls: &Calls, kinds: &[io::ErrorKind]) -> io::Result<usize> {
    io_step(calls, kinds)
}

#[retry(attempts = 5, base = "10ms")]
async fn io_default(calls: &Calls, kinds: &[io::ErrorKind]) -> io::Result<usize> {
    io_step(calls, kinds)
}

/// `std::io::Error` of kind `TimedOut` is `Timeout`.
#[tokio::test(start_paused = true)]
async fn on_timeout_retries_io_timed_out() {
    use io::ErrorKind::*;
    let calls = Calls::new();
    assert_eq!(
        on_timeout(&calls, &[TimedOut, TimedOut]).await.ok(),
        Some(3)
    );
    assert_eq!(calls.offsets(), offsets(&[0, 10, 30]));

    let calls = Calls::new();
    let error = on_timeout(&calls, &[TimedOut, ConnectionRefused])
        .await
        .err()
        .map(|e| (e.kind(), e.to_string()));
    assert_eq!(error, Some((ConnectionRefused, "try 1".to_string())));
    assert_eq!(calls.count(), 2, "Connect is not in `on = [Timeout]`");
}

/// Refused, reset, aborted and not connected are `Connect`.
#[tokio::test(start_paused = true)]
async fn on_connect_retries_the_connection_kinds() {
    use io::ErrorKind::*;
    let calls = Calls::new();
    let kinds = [
        ConnectionRefused,
        ConnectionReset,
        ConnectionAborted,
        NotConnected,
    ];
    assert_eq!(on_connect(&calls, &kinds).await.ok(), Some(5));
    assert_eq!(calls.offsets(), offsets(&[0, 10, 30, 70, 150]));

    let calls = Calls::new();
    let error = on_connect(&calls, &[TimedOut])
        .await
        .err()
        .map(|e| e.kind());
    assert_eq!(error, Some(TimedOut));
    assert_eq!(calls.count(), 1, "Timeout is not in `on = [Connect]`");
}

/// Other io kinds are `Other`: returned at once even with the default set.
#[tokio::test(start_paused = true)]
async fn other_io_kinds_are_not_retried() {
    use io::ErrorKind::*;
    for kind in [NotFound, PermissionDenied, InvalidData, UnexpectedEof] {
        let calls = Calls::new();
        let error = io_default(&calls, &[kind, kind])
            .await
            .err()
            .map(|e| e.kind());
        assert_eq!(error, Some(kind));
        assert_eq!(calls.count(), 1, "{kind:?}");
    }
    let calls = Calls::new();
    assert_eq!(
        io_default(&calls, &[TimedOut, ConnectionReset]).await.ok(),
        Some(3),
        "the default set has Timeout and Connect"
    );
}

/// Each try times out after 10ms unless its work is short; sleeps 100, 200.
#[retry(base = "100ms")]
async fn times_out(calls: &Calls, slow_tries: usize) -> Result<usize, tokio::time::error::Elapsed> {
    let n = calls.hit();
    let work = if n < slow_tries { ms(50) } else { ms(5) };
    tokio::time::timeout(ms(10), tokio::time::sleep(work)).await?;
    Ok(n + 1)
}

/// `tokio::time::error::Elapsed` is `Timeout`.
#[tokio::test(start_paused = true)]
async fn tokio_elapsed_is_retried_as_timeout() {
    let calls = Calls::new();
    assert_eq!(times_out(&calls, 2).await, Ok(3));
    // try 1: 0..10 (timeout), sleep 100; try 2: 110..120 (timeout), sleep 200; try 3: 320..325
    assert_eq!(calls.offsets(), offsets(&[0, 110, 320]));
    assert_eq!(calls.elapsed(), ms(325));

    let calls = Calls::new();
    assert!(times_out(&calls, 9).await.is_err());
    assert_eq!(calls.offsets(), offsets(&[0, 110, 320]));
    assert_eq!(calls.elapsed(), ms(330));
}

/// A user error whose `source()` chain holds an `HttpError`, possibly several levels down.
#[derive(Debug, Clone, PartialEq)]
enum AppError {
    Api(HttpError),
    Context(&'static str, Box<AppError>),
    Decode(String),
}

impl From<HttpError> for AppError {
    fn from(error: HttpError) -> Self {
        AppError::Api(error)
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Api(_) => f.write_str("api call failed"),
            AppError::Context(what, _) => write!(f, "while {what}"),
            AppError::Decode(what) => write!(f, "cannot decode {what}"),
        }
    }
}

impl Error for AppError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AppError::Api(inner) => Some(inner),
            AppError::Context(_, inner) => Some(&**inner),
            AppError::Decode(_) => None,
        }
    }
}

#[retry(attempts = 5, base = "10ms", on = [503])]
async fn app_call(calls: &Calls, script: &[AppError]) -> Result<usize, AppError> {
    calls.replay(script)
}

#[tokio::test(start_paused = true)]
async fn user_errors_are_classified_through_their_source_chain() {
    let nested = AppError::Context(
        "loading",
        Box::new(AppError::Context(
            "fetching",
            Box::new(HttpError::new(503).into()),
        )),
    );
    let calls = Calls::new();
    let script = [
        nested,
        HttpError::new(503).into(),
        HttpError::new(404).into(),
        HttpError::new(503).into(),
    ];
    assert_eq!(
        app_call(&calls, &script).await,
        Err(AppError::Api(HttpError::new(404))),
        "404 is not in `on = [503]`"
    );
    assert_eq!(calls.offsets(), offsets(&[0, 10, 30]));

    // a Retry-After deep in the chain is honoured too
    let calls = Calls::new();
    let script = [AppError::Context("x", Box::new(busy(250).into()))];
    assert_eq!(app_call(&calls, &script).await, Ok(2));
    assert_eq!(calls.offsets(), offsets(&[0, 250]));

    // nothing known in the chain: Other
    let calls = Calls::new();
    let script = [AppError::Decode("body".into()), HttpError::new(503).into()];
    assert_eq!(
        app_call(&calls, &script).await,
        Err(AppError::Decode("body".into()))
    );
    assert_eq!(calls.count(), 1);
}

/// A user type (not even `std::error::Error`) that says what it is through `Classify`.
#[derive(Debug, Clone, PartialEq)]
enum Flaky {
    /// Overloaded: 503, come back after the given milliseconds.
    Busy(u64),
    /// Timed out.
    Slow,
    /// Nothing to do about it.
    Broken,
}

impl Classify for Flaky {
    fn class(&self) -> ErrorClass {
        match self {
            Flaky::Busy(_) => ErrorClass::Status(503),
            Flaky::Slow => ErrorClass::Timeout,
            Flaky::Broken => ErrorClass::Other,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Flaky::Busy(wait) => Some(ms(*wait)),
            Flaky::Slow | Flaky::Broken => None,
        }
    }
}

#[retry(attempts = 5, base = "10ms")]
async fn flaky(calls: &Calls, script: &[Flaky]) -> Result<usize, Flaky> {
    calls.replay(script)
}

#[tokio::test(start_paused = true)]
async fn user_classify_impl_decides() {
    let calls = Calls::new();
    assert_eq!(
        flaky(&calls, &[Flaky::Busy(250), Flaky::Slow, Flaky::Busy(5)]).await,
        Ok(4)
    );
    // 250 (its Retry-After), 20 (2nd retry), 5 (its Retry-After)
    assert_eq!(calls.offsets(), offsets(&[0, 250, 270, 275]));

    let calls = Calls::new();
    assert_eq!(
        flaky(&calls, &[Flaky::Slow, Flaky::Broken, Flaky::Slow]).await,
        Err(Flaky::Broken)
    );
    assert_eq!(calls.offsets(), offsets(&[0, 10]));
}

fn is_not_found(error: &HttpError) -> bool {
    error.status() == 404
}

#[retry(attempts = 5, base = "10ms", retry_if = is_not_found)]
async fn retry_if_not_found(calls: &Calls, script: &[HttpError]) -> Result<usize, HttpError> {
    calls.replay(script)
}

/// `retry_if` replaces `on`: exactly what the predicate accepts is retried (Retry-After still
/// honoured), and what it refuses is returned even if `on` would have retried it.
#[tokio::test(start_paused = true)]
async fn retry_if_replaces_on() {
    let calls = Calls::new();
    let script = [
        HttpError::new(404),
        HttpError::new(404).with_retry_after(ms(300)),
        HttpError::new(404),
    ];
    assert_eq!(retry_if_not_found(&calls, &script).await, Ok(4));
    // 10, 300 (server), 40
    assert_eq!(calls.offsets(), offsets(&[0, 10, 310, 350]));

    let calls = Calls::new();
    let script = [
        HttpError::new(404),
        HttpError::new(503),
        HttpError::new(404),
    ];
    assert_eq!(
        retry_if_not_found(&calls, &script).await,
        Err(HttpError::new(503))
    );
    assert_eq!(calls.offsets(), offsets(&[0, 10]));
}

// ---------------------------------------------------------------------------------------------
// Jitter
// ---------------------------------------------------------------------------------------------

#[retry(attempts = 4, base = "100ms", jitter = 0.5)]
async fn jitter_half(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(attempts = 4, base = "100ms", jitter = "full")]
async fn jitter_full(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(attempts = 4, base = "100ms", jitter = "equal")]
async fn jitter_equal(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(
    attempts = 6,
    base = "100ms",
    max_delay = "1s",
    jitter = "decorrelated"
)]
async fn jitter_decorrelated(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

const RUNS: usize = 200;
/// The un-jittered sleeps of `attempts = 4, base = "100ms"`.
const DELAYS: [u64; 3] = [100, 200, 400];

/// `jitter = 0.5`: each sleep is uniform in [d*0.5, d*1.5]; over many runs it covers both
/// sides of `d`.
#[tokio::test(start_paused = true)]
async fn fraction_jitter_stays_within_half_of_the_delay() {
    let mut gaps_seen = Vec::new();
    for _ in 0..RUNS {
        let calls = Calls::new();
        assert_eq!(jitter_half(&calls, &[503, 503, 503]).await, Ok(4));
        let gaps = calls.gaps();
        assert_eq!(gaps.len(), 3);
        for (gap, d) in gaps.iter().zip(DELAYS) {
            assert!(
                (ms(d / 2)..=ms(d * 3 / 2)).contains(gap),
                "{gap:?} outside [{}ms, {}ms]",
                d / 2,
                d * 3 / 2
            );
            gaps_seen.push((*gap, ms(d)));
        }
    }
    assert!(gaps_seen.iter().any(|(gap, d)| gap != d), "never jittered");
    assert!(
        gaps_seen.iter().any(|(gap, d)| *gap < d.mul_f64(0.75)),
        "lower quarter never reached"
    );
    assert!(
        gaps_seen.iter().any(|(gap, d)| *gap > d.mul_f64(1.25)),
        "upper quarter never reached"
    );
}

/// `"full"`: each sleep is uniform in [0, d].
#[tokio::test(start_paused = true)]
async fn full_jitter_stays_within_zero_and_the_delay() {
    let mut all = Vec::new();
    for _ in 0..RUNS {
        let calls = Calls::new();
        assert_eq!(jitter_full(&calls, &[503, 503, 503]).await, Ok(4));
        for (gap, d) in calls.gaps().into_iter().zip(DELAYS) {
            assert!(gap <= ms(d), "{gap:?} > {d}ms");
            all.push((gap, ms(d)));
        }
    }
    assert_eq!(all.len(), RUNS * 3);
    assert!(
        all.iter().any(|(gap, d)| *gap < *d / 2),
        "lower half never reached"
    );
}

/// `"equal"`: each sleep is uniform in [d/2, d].
#[tokio::test(start_paused = true)]
async fn equal_jitter_stays_within_half_and_the_delay() {
    let mut all = Vec::new();
    for _ in 0..RUNS {
        let calls = Calls::new();
        assert_eq!(jitter_equal(&calls, &[503, 503, 503]).await, Ok(4));
        for (gap, d) in calls.gaps().into_iter().zip(DELAYS) {
            assert!(
                (ms(d / 2)..=ms(d)).contains(&gap),
                "{gap:?} outside [{}ms, {d}ms]",
                d / 2
            );
            all.push((gap, ms(d)));
        }
    }
    assert_eq!(all.len(), RUNS * 3);
    assert!(all.iter().any(|(gap, d)| gap != d), "never jittered");
}

/// `"decorrelated"`: each sleep is uniform in [base, 3 * previous sleep] (the first "previous"
/// being base), capped at `max_delay`.
#[tokio::test(start_paused = true)]
async fn decorrelated_jitter_stays_within_base_and_three_times_the_previous() {
    let mut longest = Duration::ZERO;
    for _ in 0..RUNS {
        let calls = Calls::new();
        assert_eq!(jitter_decorrelated(&calls, &[503; 5]).await, Ok(6));
        let mut previous = ms(100);
        for gap in calls.gaps() {
            let high = (previous * 3).min(ms(1000));
            assert!(
                (ms(100)..=high).contains(&gap),
                "{gap:?} outside [100ms, {high:?}]"
            );
            longest = longest.max(gap);
            previous = gap;
        }
    }
    assert!(longest > ms(300), "never grew past 3 * base: {longest:?}");
}

// ---------------------------------------------------------------------------------------------
// Shapes of functions
// ---------------------------------------------------------------------------------------------

fn sync_step(calls: &Calls, kinds: &[io::ErrorKind]) -> io::Result<usize> {
    io_step(calls, kinds)
}

#[retry(base = "0ms")]
fn sync_default(calls: &Calls, kinds: &[io::ErrorKind]) -> io::Result<usize> {
    sync_step(calls, kinds)
}

#[retry(attempts = 5, base = "0ms")]
fn sync_five((calls, kinds): (&Calls, &[io::ErrorKind])) -> io::Result<usize> {
    sync_step(calls, kinds)
}

/// A plain `fn` retries the same way (its sleeps are the thread's, so no timing here).
#[tokio::test(start_paused = true)]
async fn sync_fn_retries_the_right_number_of_times() {
    use io::ErrorKind::*;
    let calls = Calls::new();
    assert_eq!(
        sync_default(&calls, &[TimedOut, ConnectionReset]).ok(),
        Some(3)
    );
    assert_eq!(calls.count(), 3);

    let calls = Calls::new();
    let error = sync_default(&calls, &[TimedOut; 5]).err().map(|e| e.kind());
    assert_eq!(error, Some(TimedOut));
    assert_eq!(calls.count(), 3, "attempts defaults to 3");

    let calls = Calls::new();
    let error = sync_default(&calls, &[NotFound, TimedOut])
        .err()
        .map(|e| e.kind());
    assert_eq!(error, Some(NotFound));
    assert_eq!(calls.count(), 1);

    let calls = Calls::new();
    let kinds = [TimedOut; 9];
    let error = sync_five((&calls, &kinds)).err().map(|e| e.kind());
    assert_eq!(error, Some(TimedOut));
    assert_eq!(calls.count(), 5, "a destructured argument, attempts = 5");
}

struct Counter {
    value: u32,
    log: Vec<String>,
}

impl Counter {
    /// `&mut self` and a `&mut` argument are reborrowed for each try of a plain `fn`.
    #[retry(base = "0ms")]
    fn bump(&mut self, out: &mut Vec<u32>, fail: u32) -> Result<u32, HttpError> {
        self.value += 1;
        out.push(self.value);
        if self.value <= fail {
            return Err(HttpError::new(503));
        }
        Ok(self.value)
    }

    /// A `mut` owned argument: each try starts from the caller's value.
    // The macro keeps `mut` on the outer parameter, which is never mutated: a spurious
    // `unused_mut` warning (reported; remove this `allow` once the expansion drops it).
    #[allow(unused_mut)]
    #[retry(base = "0ms")]
    fn record(&mut self, mut line: String) -> Result<usize, HttpError> {
        line.push('!');
        self.log.push(line);
        if self.log.len() < 3 {
            return Err(HttpError::new(502));
        }
        Ok(self.log.len())
    }
}

#[tokio::test(start_paused = true)]
async fn sync_methods_reborrow_mut_arguments() {
    let mut counter = Counter {
        value: 0,
        log: Vec::new(),
    };
    let mut out = Vec::new();
    assert_eq!(counter.bump(&mut out, 2), Ok(3));
    assert_eq!(out, [1, 2, 3]);
    assert_eq!(counter.bump(&mut out, 0), Ok(4));
    assert_eq!(out, [1, 2, 3, 4]);

    assert_eq!(counter.record("line".to_string()), Ok(3));
    assert_eq!(counter.log, ["line!", "line!", "line!"]);
}

struct Service {
    calls: Calls,
    prefix: String,
}

impl Service {
    #[retry(attempts = 4, base = "20ms", backoff = "linear")]
    async fn get(&self, path: &str, statuses: &[u16]) -> Result<String, HttpError> {
        let n = self.calls.step(statuses)?;
        Ok(format!("{}{path} after {n} tries", self.prefix))
    }

    /// The output borrows from `self` (`&String` coerces to `&str` as in a plain method).
    #[retry(base = "20ms")]
    async fn prefix(&self, statuses: &[u16]) -> Result<&str, HttpError> {
        self.calls.step(statuses)?;
        Ok(&self.prefix)
    }
}

/// A `&self` method borrows the receiver for every try.
#[tokio::test(start_paused = true)]
async fn methods_with_self_retry() {
    let service = Service {
        calls: Calls::new(),
        prefix: "http://api".to_string(),
    };
    assert_eq!(
        service.get("/users", &[503, 504, 429]).await,
        Ok("http://api/users after 4 tries".to_string())
    );
    assert_eq!(service.calls.offsets(), offsets(&[0, 20, 60, 120]));

    let service = Service {
        calls: Calls::new(),
        prefix: "http://api".to_string(),
    };
    assert_eq!(service.prefix(&[502]).await, Ok("http://api"));
    assert_eq!(service.calls.offsets(), offsets(&[0, 20]));
}

#[retry(base = "10ms")]
async fn generic_value<T>(
    calls: &Calls,
    value: T,
    statuses: &[u16],
) -> Result<(usize, T), HttpError>
where
    T: Clone + Send + Sync,
{
    let n = calls.step(statuses)?;
    Ok((n, value))
}

#[retry(base = "10ms")]
async fn generic_error<E: Classify + From<HttpError>>(
    calls: &Calls,
    statuses: &[u16],
) -> Result<usize, E> {
    Ok(calls.step(statuses)?)
}

#[retry(base = "10ms")]
async fn generic_std_error<E>(calls: &Calls, statuses: &[u16]) -> Result<usize, E>
where
    E: Error + From<HttpError> + 'static,
{
    Ok(calls.step(statuses)?)
}

#[tokio::test(start_paused = true)]
async fn generic_functions_retry() {
    let calls = Calls::new();
    let value = vec!["a".to_string(), "b".to_string()];
    assert_eq!(
        generic_value(&calls, value.clone(), &[503, 503]).await,
        Ok((3, value))
    );
    assert_eq!(calls.offsets(), offsets(&[0, 10, 30]));

    let calls = Calls::new();
    assert_eq!(
        generic_value(&calls, 7u8, &[404]).await,
        Err(HttpError::new(404))
    );
    assert_eq!(calls.count(), 1);

    // the error type is a generic parameter: its bound says how it is classified
    let calls = Calls::new();
    assert_eq!(
        generic_error::<HttpError>(&calls, &[503, 503]).await,
        Ok(3),
        "E: Classify"
    );
    assert_eq!(calls.offsets(), offsets(&[0, 10, 30]));

    let calls = Calls::new();
    assert_eq!(
        generic_std_error::<AppError>(&calls, &[502, 404]).await,
        Err(AppError::Api(HttpError::new(404))),
        "E: Error, classified through source()"
    );
    assert_eq!(calls.offsets(), offsets(&[0, 10]));
}

// See `Counter::record` for why `unused_mut` is allowed.
#[allow(unused_mut)]
#[retry(attempts = 4, base = "10ms")]
async fn shout(
    calls: &Calls,
    seen: &Mutex<Vec<String>>,
    prefix: &str,
    mut word: String,
) -> Result<String, HttpError> {
    word.push('!');
    lock(seen).push(word.clone());
    calls.step(&[503, 502, 504])?;
    Ok(format!("{prefix}{word}"))
}

/// `&str` is reused as it is; an owned `String` is fresh for each try even though the body
/// mutates its `mut` copy.
#[tokio::test(start_paused = true)]
async fn str_and_string_arguments_are_fresh_for_each_try() {
    let calls = Calls::new();
    let seen = Mutex::new(Vec::new());
    let prefix = String::from("hey ");
    let result = shout(&calls, &seen, &prefix, "ho".to_string()).await;
    assert_eq!(result, Ok("hey ho!".to_string()));
    assert_eq!(*lock(&seen), ["ho!", "ho!", "ho!", "ho!"]);
    assert_eq!(calls.offsets(), offsets(&[0, 10, 30, 70]));
}

// ---------------------------------------------------------------------------------------------
// Named policies
// ---------------------------------------------------------------------------------------------

/// Adds one policy to the registry, keeping the other tests' policies.
fn install_retry_policy(name: &str, patch: RetryPatch) {
    registry::set(name, NamedPolicy::with_retry(patch));
}

#[retry(attempts = 2, base = "10ms", policy = "retry_schedule.five_attempts")]
async fn policy_five(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(attempts = 2, base = "10ms", policy = "retry_schedule.never_installed")]
async fn policy_missing(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

#[retry(attempts = 2, base = "10ms", policy = "retry_schedule.installed_later")]
async fn policy_later(calls: &Calls, statuses: &[u16]) -> Result<usize, HttpError> {
    calls.step(statuses)
}

/// The policy's `retry` section overrides `attempts`; the fields it lacks keep the inline
/// values (base 10ms, exp).
#[tokio::test(start_paused = true)]
async fn policy_overrides_inline_attempts() {
    install_retry_policy(
        "retry_schedule.five_attempts",
        RetryPatch {
            attempts: Some(5),
            ..RetryPatch::default()
        },
    );
    let calls = Calls::new();
    assert_eq!(
        policy_five(&calls, &[503; 9]).await,
        Err(HttpError::new(503))
    );
    assert_eq!(calls.offsets(), offsets(&[0, 10, 30, 70, 150]));
}

/// A policy name that is not installed keeps the inline values.
#[tokio::test(start_paused = true)]
async fn missing_policy_keeps_inline_values() {
    for _ in 0..2 {
        let calls = Calls::new();
        assert_eq!(
            policy_missing(&calls, &[503; 9]).await,
            Err(HttpError::new(503))
        );
        assert_eq!(calls.offsets(), offsets(&[0, 10]));
    }
}

/// A site reads the registry at each call: a policy installed after a first call applies to
/// the next one.
#[tokio::test(start_paused = true)]
async fn policy_installed_later_applies_to_the_next_call() {
    let calls = Calls::new();
    assert_eq!(
        policy_later(&calls, &[503; 9]).await,
        Err(HttpError::new(503))
    );
    assert_eq!(calls.count(), 2, "not installed yet: inline attempts");

    install_retry_policy(
        "retry_schedule.installed_later",
        RetryPatch {
            attempts: Some(3),
            backoff: Some(Backoff::Constant),
            base: Some(ms(40)),
            ..RetryPatch::default()
        },
    );
    let calls = Calls::new();
    assert_eq!(
        policy_later(&calls, &[503; 9]).await,
        Err(HttpError::new(503))
    );
    assert_eq!(calls.offsets(), offsets(&[0, 40, 80]));
}

// ---------------------------------------------------------------------------------------------
// The builder and Send
// ---------------------------------------------------------------------------------------------

/// `resilience::Retry` runs the same executor for a closure.
#[tokio::test(start_paused = true)]
async fn builder_retries_a_closure_on_the_same_schedule() {
    let calls = Calls::new();
    let retry = Retry::new()
        .attempts(5)
        .backoff(Backoff::Linear)
        .base(ms(50))
        .max_delay(ms(120));
    let result = retry
        .run(|| {
            let outcome = calls.step(&[503, 429, 502, 503, 504, 503]);
            async move { outcome }
        })
        .await;
    assert_eq!(result, Err(HttpError::new(504)), "the 5th try's error");
    // sleeps 50, 100, then 150 and 200 capped at 120
    assert_eq!(calls.offsets(), offsets(&[0, 50, 150, 270, 390]));
    assert_eq!(calls.elapsed(), ms(390));
}

#[retry(base = "0ms")]
async fn spawnable(calls: Arc<Calls>, name: String) -> Result<String, HttpError> {
    let n = calls.step(&[503, 503])?;
    tokio::task::yield_now().await;
    Ok(format!("{name} after {n}"))
}

/// An annotated `async fn` is `Send` when its body is: it can be spawned on a multi-thread
/// runtime. (The paused clock needs a current-thread runtime, so this test runs on the real
/// clock with `base = "0ms"` and asserts counts only.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotated_fn_spawns_on_a_multi_thread_runtime() {
    let calls = Arc::new(Calls::new());
    let tasks: Vec<_> = (0..4)
        .map(|i| tokio::spawn(spawnable(Arc::new(Calls::new()), format!("job {i}"))))
        .collect();
    let handle = tokio::spawn(spawnable(Arc::clone(&calls), "job".to_string()));
    assert_eq!(
        handle.await.map_err(|e| e.to_string()),
        Ok(Ok("job after 3".to_string()))
    );
    assert_eq!(calls.count(), 3);
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(
            task.await.map_err(|e| e.to_string()),
            Ok(Ok(format!("job {i} after 3")))
        );
    }
}
