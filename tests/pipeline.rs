//! `#[circuit_breaker]`, `#[timeout]` and their stacking with `#[retry]`, through the facade,
//! on tokio's paused clock with exact times and exact call counts.

mod common;

use common::{ApiError, ms};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use resilience::registry::{self, NamedPolicy, Policies};
use resilience::{HttpError, Rejected, circuit_breaker, retry, timeout};
use tokio::time::{Instant, advance, sleep};

/// Held by the tests that install policies: installing replaces every policy at once.
static POLICIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// How many times a function's body ran.
struct Calls(AtomicUsize);

impl Calls {
    const fn new() -> Self {
        Calls(AtomicUsize::new(0))
    }
    fn run(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn status(code: u16) -> Result<u32, ApiError> {
    Err(ApiError::Http(HttpError::new(code)))
}

fn open_for(result: Result<u32, ApiError>) -> Option<Duration> {
    match result {
        Err(ApiError::Rejected(Rejected::CircuitOpen { retry_after })) => Some(retry_after),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The breaker's cycle
// ---------------------------------------------------------------------------------------------

static FLAKY: Calls = Calls::new();

/// Answers with the status code it is given (0: success).
#[circuit_breaker(
    failure_rate = 0.5,
    min_calls = 4,
    window = 4,
    open_for = "30s",
    half_open_calls = 2
)]
async fn flaky(answer: u16) -> Result<u32, ApiError> {
    FLAKY.run();
    if answer == 0 { Ok(1) } else { status(answer) }
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_refuses_half_opens_reopens_and_closes_with_exact_times() {
    assert_eq!(flaky(0).await.ok(), Some(1));
    assert!(flaky(503).await.is_err());
    assert!(flaky(0).await.is_ok());
    assert!(flaky(502).await.is_err(), "2 failures of 4 recorded: opens");
    assert_eq!(FLAKY.get(), 4);

    assert_eq!(
        open_for(flaky(0).await),
        Some(secs(30)),
        "refused with the time to half-open"
    );
    assert_eq!(FLAKY.get(), 4, "refused without calling");
    advance(secs(30) - Duration::from_nanos(1)).await;
    assert_eq!(open_for(flaky(0).await), Some(Duration::from_nanos(1)));
    advance(Duration::from_nanos(1)).await;

    // Half-open at exactly `open_for`: a failed trial opens it again for `open_for`.
    assert!(flaky(503).await.is_err());
    assert_eq!(FLAKY.get(), 5);
    assert_eq!(open_for(flaky(0).await), Some(secs(30)));

    // Two successful trials close it, with a fresh window.
    advance(secs(30)).await;
    assert!(flaky(0).await.is_ok());
    assert!(flaky(0).await.is_ok());
    assert_eq!(FLAKY.get(), 7);
    assert!(flaky(503).await.is_err());
    assert!(flaky(503).await.is_err());
    assert!(
        flaky(0).await.is_ok(),
        "2 of 3 recorded: below min_calls, still closed"
    );
    assert_eq!(FLAKY.get(), 10);
}

static CLIENT_ERRORS: Calls = Calls::new();

#[circuit_breaker(min_calls = 2, window = 2)]
async fn client_errors(answer: u16) -> Result<u32, ApiError> {
    CLIENT_ERRORS.run();
    status(answer)
}

/// 4xx answers (but 429) are not failures: the server answered.
#[tokio::test(start_paused = true)]
async fn client_errors_do_not_open_the_breaker_but_429_does() {
    for code in [400, 404, 422, 401, 403, 404] {
        assert!(matches!(client_errors(code).await, Err(ApiError::Http(_))));
    }
    assert_eq!(CLIENT_ERRORS.get(), 6);
    assert!(
        matches!(client_errors(429).await, Err(ApiError::Http(_))),
        "one 429 in the last 2 calls: 0.5 reached, opens"
    );
    assert!(open_for(client_errors(404).await).is_some());
    assert_eq!(CLIENT_ERRORS.get(), 7);
}

fn only_teapots(error: &ApiError) -> bool {
    matches!(error, ApiError::Http(http) if http.status() == 418)
}

#[circuit_breaker(min_calls = 1, window = 1, failure_if = only_teapots)]
async fn teapot(answer: u16) -> Result<u32, ApiError> {
    status(answer)
}

#[tokio::test(start_paused = true)]
async fn failure_if_replaces_the_rule() {
    assert!(teapot(503).await.is_err());
    assert!(teapot(503).await.is_err());
    assert!(
        open_for(teapot(503).await).is_none(),
        "503 is not a failure here"
    );
    assert!(teapot(418).await.is_err());
    assert!(open_for(teapot(503).await).is_some());
}

// Two sites naming one policy share one breaker.

#[circuit_breaker(policy = "pipeline-shared", min_calls = 2, window = 2)]
async fn shared_a(answer: u16) -> Result<u32, ApiError> {
    if answer == 0 { Ok(1) } else { status(answer) }
}

#[circuit_breaker(policy = "pipeline-shared", min_calls = 2, window = 2)]
async fn shared_b(answer: u16) -> Result<u32, ApiError> {
    if answer == 0 { Ok(2) } else { status(answer) }
}

#[tokio::test(start_paused = true)]
async fn sites_naming_one_policy_share_one_breaker() {
    assert!(shared_a(503).await.is_err());
    assert!(shared_b(503).await.is_err());
    assert!(
        open_for(shared_a(0).await).is_some(),
        "b's failure counted for a"
    );
    assert!(open_for(shared_b(0).await).is_some());
}

// The policy's `circuit_breaker` section overrides the inline values.

#[circuit_breaker(policy = "pipeline-yaml", min_calls = 5, window = 5)]
async fn configured(answer: u16) -> Result<u32, ApiError> {
    status(answer)
}

#[tokio::test(start_paused = true)]
async fn a_policy_sets_the_breaker() {
    let _policies = POLICIES.lock().await;
    let yaml = "policies:\n  pipeline-yaml:\n    circuit_breaker: { min_calls: 1, window: 1, open_for: 2s }\n";
    let policies = resilience::config::load_str(yaml).unwrap();
    assert!(policies.get("pipeline-yaml").is_some());
    assert!(configured(503).await.is_err());
    assert_eq!(open_for(configured(503).await), Some(secs(2)));
    // Put the other tests' policies back: `load_str` replaced them all.
    registry::install(Policies::new());
}

// ---------------------------------------------------------------------------------------------
// Timeouts and stacking
// ---------------------------------------------------------------------------------------------

#[timeout("3s")]
async fn takes(duration: Duration) -> Result<Duration, ApiError> {
    sleep(duration).await;
    Ok(duration)
}

#[tokio::test(start_paused = true)]
async fn a_timeout_drops_the_call_at_exactly_its_limit() {
    let start = Instant::now();
    assert_eq!(
        takes(secs(3) - Duration::from_nanos(1)).await.ok(),
        Some(secs(3) - Duration::from_nanos(1))
    );
    let start_late = Instant::now();
    assert_eq!(
        takes(secs(10)).await,
        Err(ApiError::Rejected(Rejected::Timeout { after: secs(3) }))
    );
    assert_eq!(start_late.elapsed(), secs(3));
    assert!(start.elapsed() < secs(7));
}

static EACH_TRY: Calls = Calls::new();

/// The first two tries hang; the third answers at once. `#[timeout]` beneath `#[retry]`
/// limits each try, and a `Timeout` rejection is retried.
#[retry(attempts = 3, base = "100ms", backoff = "constant")]
#[timeout("50ms")]
async fn each_try_timed_out() -> Result<u32, ApiError> {
    if EACH_TRY.run() < 3 {
        sleep(secs(3600)).await;
    }
    Ok(7)
}

#[tokio::test(start_paused = true)]
async fn retry_over_timeout_limits_each_try() {
    let start = Instant::now();
    assert_eq!(each_try_timed_out().await, Ok(7));
    assert_eq!(EACH_TRY.get(), 3);
    assert_eq!(start.elapsed(), ms(50 + 100 + 50 + 100));
}

static WHOLE_LOOP: Calls = Calls::new();

/// Always 503: `#[timeout]` above `#[retry]` bounds the whole loop.
#[timeout("250ms")]
#[retry(attempts = 10, base = "100ms", backoff = "constant")]
async fn whole_loop_timed_out() -> Result<u32, ApiError> {
    WHOLE_LOOP.run();
    status(503)
}

#[tokio::test(start_paused = true)]
async fn timeout_over_retry_bounds_the_whole_loop() {
    let start = Instant::now();
    assert_eq!(
        whole_loop_timed_out().await,
        Err(ApiError::Rejected(Rejected::Timeout { after: ms(250) }))
    );
    assert_eq!(start.elapsed(), ms(250));
    assert_eq!(
        WHOLE_LOOP.get(),
        3,
        "tries at 0, 100 and 200 ms; the sleep to 300 is cut"
    );
}

static GUARDED: Calls = Calls::new();

/// Retry over a breaker: once the breaker opens, the retry loop sees `CircuitOpen` (a 503
/// with Retry-After = time to half-open) and gives up at once, as that is over `max_delay`.
#[retry(attempts = 5, base = "10ms", backoff = "constant", max_delay = "1s")]
#[circuit_breaker(min_calls = 2, window = 2, open_for = "30s")]
async fn guarded() -> Result<u32, ApiError> {
    GUARDED.run();
    status(503)
}

#[tokio::test(start_paused = true)]
async fn retry_over_an_open_breaker_stops_calling() {
    let start = Instant::now();
    // Opened at 10 ms by the second failure; the third try, at 20 ms, is refused.
    assert_eq!(open_for(guarded().await), Some(secs(30) - ms(10)));
    assert_eq!(
        GUARDED.get(),
        2,
        "two failures opened it; the third try was refused"
    );
    assert_eq!(start.elapsed(), ms(20));
}

#[test]
fn blocking_functions_take_a_breaker_too() {
    #[circuit_breaker(min_calls = 1, window = 1)]
    fn blocking(answer: u16) -> Result<u32, ApiError> {
        if answer == 0 { Ok(1) } else { status(answer) }
    }
    assert!(blocking(0).is_ok());
    assert!(blocking(500).is_err());
    assert!(open_for(blocking(0)).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_policy_sets_the_timeout() {
    let _policies = POLICIES.lock().await;
    #[timeout(duration = "1s", policy = "pipeline-timeout")]
    async fn limited() -> Result<u32, ApiError> {
        sleep(secs(5)).await;
        Ok(1)
    }
    assert_eq!(
        limited().await,
        Err(ApiError::Rejected(Rejected::Timeout { after: secs(1) }))
    );
    let mut policies = Policies::new();
    let mut policy = NamedPolicy::default();
    policy.timeout = Some(secs(2));
    policies.insert("pipeline-timeout", policy);
    registry::install(policies);
    assert_eq!(
        limited().await,
        Err(ApiError::Rejected(Rejected::Timeout { after: secs(2) }))
    );
    registry::install(Policies::new());
}
