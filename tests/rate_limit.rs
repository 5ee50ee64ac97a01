//! Behaviour of `#[rate_limited]` through the facade, on tokio's paused clock: every test records
//! when each call was admitted (its body ran), relative to the test's start, and asserts the
//! exact offsets.
//!
//! GCRA spaces admissions smoothly: `calls = 20, period = "10s"` admits one call every 500ms
//! (never 20 at once, unless `burst` says so). Each test uses its own functions and its own
//! policy names: a site is a `static`, shared by every test of this binary.

mod common;

use common::{ApiError, lock, ms};

use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::rate_limit::RateLimitPatch;
use resilience::registry::{self, NamedPolicy};
use resilience::{HttpError, Rejected, rate_limited, retry};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// Recording admissions
// ---------------------------------------------------------------------------------------------

fn offsets(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|&n| ms(n)).collect()
}

/// When each call was admitted, with a label (a caller id, a key, a function name).
struct Log<L> {
    start: Instant,
    admitted: Mutex<Vec<(L, Duration)>>,
}

impl<L: Clone> Log<L> {
    fn new() -> Self {
        Log {
            start: Instant::now(),
            admitted: Mutex::new(Vec::new()),
        }
    }

    /// Records an admission now; returns its offset.
    fn admit(&self, label: L) -> Duration {
        let at = self.start.elapsed();
        lock(&self.admitted).push((label, at));
        at
    }

    fn entries(&self) -> Vec<(L, Duration)> {
        lock(&self.admitted).clone()
    }

    fn offsets(&self) -> Vec<Duration> {
        self.entries().into_iter().map(|(_, at)| at).collect()
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// The tries of a function whose first `failures` tries fail with 503.
struct Tries {
    log: Log<()>,
    failures: usize,
}

impl Tries {
    fn failing(failures: usize) -> Self {
        Tries {
            log: Log::new(),
            failures,
        }
    }

    fn hit(&self) -> Result<usize, ApiError> {
        self.log.admit(());
        let index = self.log.entries().len() - 1;
        if index < self.failures {
            Err(ApiError::Http(HttpError::new(503)))
        } else {
            Ok(index)
        }
    }
}

fn limited(retry_after: Duration) -> ApiError {
    ApiError::Rejected(Rejected::RateLimited { retry_after })
}

/// Adds one policy to the registry, keeping the other tests' policies.
fn install_rate_limit(name: &str, patch: RateLimitPatch) {
    registry::set(name, NamedPolicy::with_rate_limit(patch));
}

// ---------------------------------------------------------------------------------------------
// Spacing and fairness
// ---------------------------------------------------------------------------------------------

#[rate_limited(calls = 20, period = "10s")]
async fn twenty_per_ten_seconds(log: Arc<Log<usize>>, id: usize) -> Result<(), ApiError> {
    log.admit(id);
    Ok(())
}

/// The example: 40 calls at t=0 through 20 per 10s are admitted one every 500ms, at
/// 0, 0.5s, ..., 19.5s, in the order they asked (the k-th to reserve gets slot k).
#[tokio::test(start_paused = true)]
async fn forty_calls_are_admitted_every_500ms_in_arrival_order() {
    let log = Arc::new(Log::new());
    // A current-thread runtime polls spawned tasks in spawn order: task k reserves k-th.
    let tasks: Vec<_> = (0..40)
        .map(|id| tokio::spawn(twenty_per_ten_seconds(Arc::clone(&log), id)))
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(()));
    }
    let mut times = log.offsets();
    times.sort();
    let expected: Vec<Duration> = (0..40).map(|k| ms(500 * k)).collect();
    assert_eq!(times, expected);
    // Admission order is arrival order, and caller k got slot k exactly.
    let by_id: Vec<(usize, Duration)> = (0..40).map(|k| (k, ms(500 * k as u64))).collect();
    assert_eq!(log.entries(), by_id);
    assert_eq!(log.elapsed(), ms(19_500));
}

#[rate_limited(calls = 20, period = "10s")]
async fn staggered_arrivals(log: Arc<Log<usize>>, id: usize) -> Result<(), ApiError> {
    log.admit(id);
    Ok(())
}

/// Callers arriving every 50ms (ten times faster than the quota) queue up: a late arrival never
/// overtakes a caller already waiting, and each is admitted at its exact slot.
#[tokio::test(start_paused = true)]
async fn late_arrivals_queue_behind_earlier_waiters() {
    let log = Arc::new(Log::new());
    let tasks: Vec<_> = (0..40u64)
        .map(|id| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                tokio::time::sleep(ms(50 * id)).await;
                staggered_arrivals(log, id as usize).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(()));
    }
    let expected: Vec<(usize, Duration)> = (0..40).map(|k| (k, ms(500 * k as u64))).collect();
    assert_eq!(log.entries(), expected);
}

#[rate_limited(calls = 2, period = "1s", burst = 3)]
async fn bursty(log: &Log<()>) -> Result<(), ApiError> {
    log.admit(());
    Ok(())
}

/// `burst = 3` after idle time: 4 calls (burst + 1) at once, then one every 500ms; never more
/// than calls + burst = 5 in a 1s window. Once idle long enough, the burst is back.
#[tokio::test(start_paused = true)]
async fn burst_after_idle_then_spacing_then_refill() {
    let log = Log::new();
    let _ = tokio::join!(
        bursty(&log),
        bursty(&log),
        bursty(&log),
        bursty(&log),
        bursty(&log),
        bursty(&log),
    );
    assert_eq!(log.offsets(), offsets(&[0, 0, 0, 0, 500, 1000]));

    // The six admissions moved the limiter's schedule to 3s: it is back to full capacity then.
    tokio::time::sleep_until(log.start + ms(3000)).await;
    let _ = tokio::join!(
        bursty(&log),
        bursty(&log),
        bursty(&log),
        bursty(&log),
        bursty(&log),
        bursty(&log),
    );
    assert_eq!(
        log.offsets(),
        offsets(&[0, 0, 0, 0, 500, 1000, 3000, 3000, 3000, 3000, 3500, 4000])
    );
}

// ---------------------------------------------------------------------------------------------
// Reject mode and max_wait
// ---------------------------------------------------------------------------------------------

#[rate_limited(calls = 4294967295, period = "100000h", mode = "reject")]
async fn largest_calls(log: &Log<()>) -> Result<(), ApiError> {
    log.admit(());
    Ok(())
}

/// The largest `calls` a user can write is a limit like any other (11.9/s here), not "no
/// limit": it once admitted 1000 calls in 1000.
#[tokio::test(start_paused = true)]
async fn the_largest_calls_is_a_limit() {
    let log = Log::new();
    let mut refused = 0;
    for _ in 0..1000 {
        if largest_calls(&log).await.is_err() {
            refused += 1;
        }
    }
    assert_eq!(refused, 999);
    assert_eq!(
        largest_calls(&log).await,
        Err(limited(Duration::from_nanos(83_819_032)))
    );
}

#[rate_limited(calls = 2, period = "1s", mode = "reject")]
async fn rejecting(log: &Log<()>) -> Result<(), ApiError> {
    log.admit(());
    Ok(())
}

/// Reject mode refuses at once with the exact time until the next permit; a refusal reserves
/// nothing.
#[tokio::test(start_paused = true)]
async fn reject_mode_returns_the_exact_retry_after() {
    let log = Log::new();
    assert_eq!(rejecting(&log).await, Ok(()));
    assert_eq!(rejecting(&log).await, Err(limited(ms(500))));
    assert_eq!(log.elapsed(), Duration::ZERO, "refused without waiting");

    tokio::time::advance(ms(200)).await;
    assert_eq!(rejecting(&log).await, Err(limited(ms(300))));
    tokio::time::advance(ms(300)).await;
    assert_eq!(rejecting(&log).await, Ok(()));
    // The refusals took no slot: the next permit is one interval after the last admission.
    assert_eq!(rejecting(&log).await, Err(limited(ms(500))));
    assert_eq!(log.offsets(), offsets(&[0, 500]));
}

#[rate_limited(calls = 1, period = "1s", max_wait = "1s")]
async fn bounded_wait(log: &Log<()>) -> Result<(), ApiError> {
    log.admit(());
    Ok(())
}

/// `max_wait = "1s"`: a caller whose slot is at most 1s away waits for it (1s included); one
/// whose slot is further is refused at once, with the time its slot would have been.
#[tokio::test(start_paused = true)]
async fn max_wait_waits_up_to_the_limit_and_refuses_beyond_at_once() {
    let log = Log::new();
    let timed = |label: &'static str| {
        let log = &log;
        async move {
            let result = bounded_wait(log).await;
            (label, result, log.elapsed())
        }
    };
    let (first, second, third) = tokio::join!(timed("first"), timed("second"), timed("third"));
    assert_eq!(first, ("first", Ok(()), ms(0)));
    assert_eq!(
        second,
        ("second", Ok(()), ms(1000)),
        "a wait of exactly max_wait"
    );
    assert_eq!(
        third,
        ("third", Err(limited(ms(2000))), ms(0)),
        "refused at once"
    );
    // The refusal reserved nothing: at 1s the next slot is 2s, within max_wait again.
    assert_eq!(bounded_wait(&log).await, Ok(()));
    assert_eq!(log.offsets(), offsets(&[0, 1000, 2000]));
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

#[rate_limited(calls = 1, period = "1s", key = org)]
async fn per_org(log: &Log<String>, org: &str) -> Result<(), ApiError> {
    log.admit(org.to_string());
    Ok(())
}

/// `key = org`: each org value has its own quota; calls for the same org share one.
#[tokio::test(start_paused = true)]
async fn keyed_limits_are_independent_per_value() {
    let log = Log::new();
    let _ = tokio::join!(
        per_org(&log, "acme"),
        per_org(&log, "acme"),
        per_org(&log, "globex"),
        per_org(&log, "acme"),
        per_org(&log, "globex"),
        per_org(&log, "initech"),
    );
    let mut entries = log.entries();
    entries.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let expected: Vec<(String, Duration)> = [
        ("acme", 0),
        ("acme", 1000),
        ("acme", 2000),
        ("globex", 0),
        ("globex", 1000),
        ("initech", 0),
    ]
    .into_iter()
    .map(|(org, at)| (org.to_string(), ms(at)))
    .collect();
    assert_eq!(entries, expected);
}

#[rate_limited(calls = 1, period = "1s", mode = "reject", key = org.to_ascii_lowercase())]
async fn per_org_any_case(org: &str) -> Result<(), ApiError> {
    let _ = org;
    Ok(())
}

/// The key is any expression over the arguments: here two spellings of one org share a quota.
#[tokio::test(start_paused = true)]
async fn key_is_an_expression_over_the_arguments() {
    assert_eq!(per_org_any_case("Acme").await, Ok(()));
    assert_eq!(per_org_any_case("ACME").await, Err(limited(ms(1000))));
    assert_eq!(per_org_any_case("acme").await, Err(limited(ms(1000))));
    assert_eq!(per_org_any_case("Globex").await, Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Named limiters shared through `policy`
// ---------------------------------------------------------------------------------------------

#[rate_limited(calls = 2, period = "1s", policy = "rate_limit.shared")]
async fn shared_list(log: &Log<&'static str>) -> Result<(), ApiError> {
    log.admit("list");
    Ok(())
}

#[rate_limited(calls = 2, period = "1s", policy = "rate_limit.shared")]
async fn shared_get(log: &Log<&'static str>) -> Result<(), ApiError> {
    log.admit("get");
    Ok(())
}

/// Two functions naming one policy share one quota: together they get one slot every 500ms,
/// in the order they asked.
#[tokio::test(start_paused = true)]
async fn two_functions_naming_a_policy_share_one_quota() {
    let log = Log::new();
    let _ = tokio::join!(
        shared_list(&log),
        shared_get(&log),
        shared_list(&log),
        shared_get(&log),
        shared_get(&log),
        shared_list(&log),
    );
    assert_eq!(
        log.entries(),
        vec![
            ("list", ms(0)),
            ("get", ms(500)),
            ("list", ms(1000)),
            ("get", ms(1500)),
            ("get", ms(2000)),
            ("list", ms(2500)),
        ]
    );
}

#[rate_limited(calls = 1, period = "1h", policy = "rate_limit.override")]
async fn overridden(log: &Log<()>) -> Result<(), ApiError> {
    log.admit(());
    Ok(())
}

/// An installed policy's `rate_limit` section overrides the inline values (1 per hour becomes
/// 4 per second); installing a new rate changes the next admissions in place, and the
/// admissions already made still count.
#[tokio::test(start_paused = true)]
async fn installed_policy_overrides_inline_values_and_changes_at_run_time() {
    install_rate_limit(
        "rate_limit.override",
        RateLimitPatch {
            calls: Some(4),
            period: Some(ms(1000)),
            ..RateLimitPatch::default()
        },
    );
    let log = Log::new();
    let _ = tokio::join!(overridden(&log), overridden(&log), overridden(&log));
    assert_eq!(log.offsets(), offsets(&[0, 250, 500]));

    // At 500ms: one per second from now on. The admission at 500ms, made under the old rate,
    // still holds the next slot until 750ms (a fresh limiter would admit at once); after that
    // the new spacing applies.
    install_rate_limit(
        "rate_limit.override",
        RateLimitPatch {
            calls: Some(1),
            period: Some(ms(1000)),
            ..RateLimitPatch::default()
        },
    );
    let _ = tokio::join!(overridden(&log), overridden(&log), overridden(&log));
    assert_eq!(log.offsets(), offsets(&[0, 250, 500, 750, 1750, 2750]));
}

// ---------------------------------------------------------------------------------------------
// The server's 429: feedback to the shared pace; a spent quota holds every caller
// ---------------------------------------------------------------------------------------------

#[rate_limited(calls = 10, period = "1s", policy = "rate_limit.pause")]
async fn pause_search(log: &Log<&'static str>, answer: Option<HttpError>) -> Result<(), ApiError> {
    log.admit("search");
    answer.map_or(Ok(()), |error| Err(ApiError::Http(error)))
}

#[rate_limited(calls = 10, period = "1s", policy = "rate_limit.pause")]
async fn pause_fetch(log: &Log<&'static str>) -> Result<(), ApiError> {
    log.admit("fetch");
    Ok(())
}

/// A 429 with Retry-After 5s (longer than the hold threshold: a quota spent, not a request a
/// few ms early) from one function makes the shared limiter admit nothing until then: the
/// other function sharing the policy is admitted at exactly 5s, then at the pace (one 429 is
/// no cut), released one at a time, never all at once.
#[tokio::test(start_paused = true)]
async fn server_429_with_retry_after_pauses_every_site_of_the_policy() {
    let log = Log::new();
    let throttled = HttpError::new(429).with_retry_after(ms(5000));
    assert_eq!(
        pause_search(&log, Some(throttled.clone())).await,
        Err(ApiError::Http(throttled))
    );
    let _ = tokio::join!(
        pause_fetch(&log),
        pause_search(&log, None),
        pause_fetch(&log)
    );
    assert_eq!(
        log.entries(),
        vec![
            ("search", ms(0)),
            ("fetch", ms(5000)),
            ("search", ms(5100)),
            ("fetch", ms(5200)),
        ]
    );
}

#[rate_limited(calls = 10, period = "1s")]
async fn not_paused(log: &Log<()>, answer: Option<HttpError>) -> Result<(), ApiError> {
    log.admit(());
    answer.map_or(Ok(()), |error| Err(ApiError::Http(error)))
}

/// A 503, even with a Retry-After, leaves the schedule alone, and so do two lone 429s; a third
/// within a period of the first cuts the pace (10/s -> 7/s) without pausing anyone: the next
/// slot was reserved before the cut and keeps its place, the one after follows the new pace.
#[tokio::test(start_paused = true)]
async fn a_503_leaves_the_pace_alone_and_a_third_429_cuts_it() {
    let log = Log::new();
    let unavailable = HttpError::new(503).with_retry_after(ms(5000));
    assert!(not_paused(&log, Some(unavailable)).await.is_err());
    for _ in 0..3 {
        assert!(not_paused(&log, Some(HttpError::new(429))).await.is_err());
    }
    assert_eq!(not_paused(&log, None).await, Ok(()));
    assert_eq!(not_paused(&log, None).await, Ok(()));
    assert_eq!(log.offsets(), offsets(&[0, 100, 200, 300, 400, 543]));
}

/// A user error that only implements `std::error::Error`, with the HTTP error as its source:
/// the runtime finds the 429 along the `source()` chain.
#[derive(Debug)]
enum ChainError {
    Upstream(HttpError),
    Refused(Rejected),
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::Upstream(_) => f.write_str("upstream failed"),
            ChainError::Refused(_) => f.write_str("refused"),
        }
    }
}

impl Error for ChainError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ChainError::Upstream(error) => Some(error),
            ChainError::Refused(rejected) => Some(rejected),
        }
    }
}

impl From<Rejected> for ChainError {
    fn from(rejected: Rejected) -> Self {
        ChainError::Refused(rejected)
    }
}

#[rate_limited(calls = 10, period = "1s", key = org)]
async fn pause_per_org(
    log: &Log<String>,
    org: &str,
    answer: Option<HttpError>,
) -> Result<(), ChainError> {
    log.admit(org.to_string());
    answer.map_or(Ok(()), |error| Err(ChainError::Upstream(error)))
}

/// With a key, the 429 pauses that key only; found through `source()` on an error type that
/// does not implement `Classify`.
#[tokio::test(start_paused = true)]
async fn server_429_pauses_only_its_key_and_is_found_through_source() {
    let log = Log::new();
    let throttled = HttpError::new(429).with_retry_after(ms(3000));
    assert!(matches!(
        pause_per_org(&log, "acme", Some(throttled)).await,
        Err(ChainError::Upstream(_))
    ));
    let _ = tokio::join!(
        pause_per_org(&log, "acme", None),
        pause_per_org(&log, "globex", None),
    );
    assert_eq!(
        log.entries(),
        vec![
            ("acme".to_string(), ms(0)),
            ("globex".to_string(), ms(0)),
            ("acme".to_string(), ms(3000)),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Stacking with #[retry]
// ---------------------------------------------------------------------------------------------

#[retry(attempts = 3, backoff = "constant", base = "1s")]
#[rate_limited(calls = 1, period = "2s")]
async fn permit_per_try(tries: &Tries) -> Result<usize, ApiError> {
    tries.hit()
}

#[rate_limited(calls = 1, period = "2s")]
#[retry(attempts = 3, backoff = "constant", base = "1s")]
async fn permit_per_loop(tries: &Tries) -> Result<usize, ApiError> {
    tries.hit()
}

/// `#[retry]` above `#[rate_limited]`: every try takes a permit (one per 2s), so the 1s sleeps
/// are stretched to the limiter's slots: tries at 0, 2s, 4s; the next call's slot is 6s.
#[tokio::test(start_paused = true)]
async fn retry_over_rate_limited_takes_a_permit_per_try() {
    let tries = Tries::failing(2);
    assert_eq!(permit_per_try(&tries).await, Ok(2));
    assert_eq!(tries.log.offsets(), offsets(&[0, 2000, 4000]));
    assert_eq!(permit_per_try(&tries).await, Ok(3));
    assert_eq!(tries.log.offsets(), offsets(&[0, 2000, 4000, 6000]));
}

/// `#[rate_limited]` above `#[retry]`: one permit covers the whole loop, so the tries follow
/// the backoff alone (0, 1s, 2s) and the next call's slot is 2s, right away.
#[tokio::test(start_paused = true)]
async fn rate_limited_over_retry_takes_one_permit_per_call() {
    let tries = Tries::failing(2);
    assert_eq!(permit_per_loop(&tries).await, Ok(2));
    assert_eq!(tries.log.offsets(), offsets(&[0, 1000, 2000]));
    assert_eq!(permit_per_loop(&tries).await, Ok(3));
    assert_eq!(tries.log.offsets(), offsets(&[0, 1000, 2000, 2000]));
}

#[retry(attempts = 3, base = "100ms")]
#[rate_limited(calls = 1, period = "1s", mode = "reject")]
async fn retried_rejections(log: &Log<()>) -> Result<(), ApiError> {
    log.admit(());
    Ok(())
}

/// A reject-mode limiter under `#[retry]`: the refusal classifies as 429 with its exact
/// Retry-After, so the retry sleeps exactly that long (not the 100ms backoff) and gets in.
#[tokio::test(start_paused = true)]
async fn retry_waits_out_a_local_rejection_exactly() {
    let log = Log::new();
    assert_eq!(retried_rejections(&log).await, Ok(()));
    assert_eq!(retried_rejections(&log).await, Ok(()));
    assert_eq!(log.offsets(), offsets(&[0, 1000]));
    assert_eq!(log.elapsed(), ms(1000));
}

#[retry(attempts = 3, base = "100ms", max_delay = "500ms")]
#[rate_limited(calls = 1, period = "1s", mode = "reject")]
async fn rejection_too_long_to_wait(log: &Log<()>) -> Result<(), ApiError> {
    log.admit(());
    Ok(())
}

/// When the refusal's Retry-After is longer than `max_delay`, the retry gives up at once and
/// returns the refusal.
#[tokio::test(start_paused = true)]
async fn retry_gives_up_at_once_when_the_rejection_is_longer_than_max_delay() {
    let log = Log::new();
    assert_eq!(rejection_too_long_to_wait(&log).await, Ok(()));
    assert_eq!(
        rejection_too_long_to_wait(&log).await,
        Err(limited(ms(1000)))
    );
    assert_eq!(log.offsets(), offsets(&[0]));
    assert_eq!(log.elapsed(), Duration::ZERO);
}

#[retry(attempts = 2, backoff = "constant", base = "100ms")]
#[rate_limited(calls = 10, period = "1s")]
async fn retried_429(tries: &Log<()>) -> Result<(), ApiError> {
    if tries.entries().is_empty() {
        tries.admit(());
        return Err(ApiError::Http(
            HttpError::new(429).with_retry_after(ms(3000)),
        ));
    }
    tries.admit(());
    Ok(())
}

/// A 429 under `#[retry] #[rate_limited]`: the retry sleeps the Retry-After and the limiter is
/// paused until the same instant, so the second try runs at exactly 3s.
#[tokio::test(start_paused = true)]
async fn retry_and_server_pause_agree_on_the_instant() {
    let log = Log::new();
    assert_eq!(retried_429(&log).await, Ok(()));
    assert_eq!(log.offsets(), offsets(&[0, 3000]));
}

// ---------------------------------------------------------------------------------------------
// Blocking functions
// ---------------------------------------------------------------------------------------------

#[rate_limited(calls = 1, period = "1h", burst = 4, mode = "reject")]
fn sync_quota() -> Result<(), ApiError> {
    Ok(())
}

#[rate_limited(calls = 1, period = "1h", mode = "reject", key = user)]
fn sync_per_user(user: u64) -> Result<u64, ApiError> {
    Ok(user)
}

/// A plain `fn` under `#[rate_limited]`, outside any runtime: burst + 1 = 5 admitted, the rest
/// refused (with a wait of at most the 1h interval).
#[test]
fn sync_fn_in_reject_mode_admits_burst_plus_one() {
    let results: Vec<Result<(), ApiError>> = (0..10).map(|_| sync_quota()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
    for refused in &results[5..] {
        match refused {
            Err(ApiError::Rejected(Rejected::RateLimited { retry_after })) => {
                assert!(*retry_after <= Duration::from_secs(3600), "{retry_after:?}");
                assert!(*retry_after > Duration::from_secs(3500), "{retry_after:?}");
            }
            other => panic!("expected a rate-limit refusal, got {other:?}"),
        }
    }
    assert!(results[..5].iter().all(Result::is_ok));
}

/// Keys work for plain functions too: each user gets one call per hour.
#[test]
fn sync_fn_keyed_quota_per_value() {
    let admitted: Vec<u64> = [1, 2, 1, 3, 2, 1]
        .into_iter()
        .filter_map(|user| sync_per_user(user).ok())
        .collect();
    assert_eq!(admitted, vec![1, 2, 3]);
}

// ---------------------------------------------------------------------------------------------
// A local refusal is not the server's 429
// ---------------------------------------------------------------------------------------------

#[rate_limited(calls = 1, period = "1h", mode = "reject", key = user)]
async fn per_user_quota(user: u32) -> Result<(), ApiError> {
    let _ = user;
    Ok(())
}

#[rate_limited(calls = 10, period = "1s", policy = "local-refusal-api")]
async fn api_call_under_user_quota(user: u32) -> Result<(), ApiError> {
    per_user_quota(user).await
}

#[tokio::test(start_paused = true)]
async fn a_local_refusal_does_not_pause_the_shared_limiter() {
    let start = Instant::now();
    assert_eq!(api_call_under_user_quota(1).await, Ok(()));
    // user 1 is over its own quota: refused locally with a one-hour Retry-After; the server
    // was never asked, so the API's limiter must not pause for an hour
    assert!(matches!(
        api_call_under_user_quota(1).await,
        Err(ApiError::Rejected(Rejected::RateLimited { .. }))
    ));
    assert_eq!(api_call_under_user_quota(2).await, Ok(()));
    assert_eq!(start.elapsed(), ms(200));
}

// ---------------------------------------------------------------------------------------------
// The recommended stack: a knife-edge 429 delays only the request that got it
// ---------------------------------------------------------------------------------------------

#[retry(attempts = 5, base = "100ms", max_delay = "5s")]
#[rate_limited(calls = 10, period = "1s", policy = "rate_limit.knife_edge")]
async fn knife_edge(log: &Log<u32>, id: u32, refused: &Mutex<bool>) -> Result<(), ApiError> {
    log.admit(id);
    // the server refuses id 2 once, with `Retry-After: 1` (whole seconds)
    let mut refused = lock(refused);
    if id == 2 && !*refused {
        *refused = true;
        return Err(ApiError::Http(
            HttpError::new(429).with_retry_after(ms(1000)),
        ));
    }
    Ok(())
}

/// Six calls at once at 10/s; the third is refused with `Retry-After: 1`. Nobody else waits
/// out that second: the calls queued behind it keep their slots 100 ms apart (a lone 429 is
/// no cut), and the refused one waits its own second, then queues again at the pace.
#[tokio::test(start_paused = true)]
async fn a_knife_edge_429_delays_only_the_request_that_got_it() {
    let log = Log::new();
    let refused = Mutex::new(false);
    let results = tokio::join!(
        knife_edge(&log, 0, &refused),
        knife_edge(&log, 1, &refused),
        knife_edge(&log, 2, &refused),
        knife_edge(&log, 3, &refused),
        knife_edge(&log, 4, &refused),
        knife_edge(&log, 5, &refused),
    );
    assert_eq!(results, (Ok(()), Ok(()), Ok(()), Ok(()), Ok(()), Ok(())));
    assert_eq!(
        log.entries(),
        vec![
            (0, ms(0)),
            (1, ms(100)),
            (2, ms(200)),
            (3, ms(300)),
            (4, ms(400)),
            (5, ms(500)),
            (2, ms(1200)),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Weighted calls: `cost`
// ---------------------------------------------------------------------------------------------

/// 90,000 tokens a minute, each call taking its token count.
#[rate_limited(calls = 90_000, period = "1m", cost = tokens)]
async fn tokens_per_minute(log: &Log<u64>, tokens: u64) -> Result<(), ApiError> {
    log.admit(tokens);
    Ok(())
}

/// GCRA with a cost: a call is admitted when a unit call would be, and the next one waits for
/// its permits. One permit is 60 s / 90,000 = 666,667 ns (rounded up), so the slots are at
/// 30,000, 60,000 and 105,000 permits: 20.00001 s, 40.00002 s and 70.000035 s, which tokio's
/// millisecond timer fires at 20.001 s, 40.001 s and 70.001 s.
#[tokio::test(start_paused = true)]
async fn calls_costing_tokens_are_admitted_when_the_tokens_before_them_are_paid() {
    let log = Log::new();
    let (a, b, c, d) = tokio::join!(
        tokens_per_minute(&log, 30_000),
        tokens_per_minute(&log, 30_000),
        tokens_per_minute(&log, 45_000),
        tokens_per_minute(&log, 10_000),
    );
    assert!(a.is_ok() && b.is_ok() && c.is_ok() && d.is_ok());
    assert_eq!(
        log.entries(),
        [
            (30_000, ms(0)),
            (30_000, ms(20_001)),
            (45_000, ms(40_001)),
            (10_000, ms(70_001)),
        ]
    );
}

#[rate_limited(calls = 10, period = "1s", key = org, cost = units)]
async fn weighted_per_org(log: &Log<String>, org: &str, units: u8) -> Result<(), ApiError> {
    log.admit(format!("{org}:{units}"));
    Ok(())
}

/// Each key pays for its own calls: `a`'s 5 units hold `a`'s next call 500 ms, not `b`'s.
#[tokio::test(start_paused = true)]
async fn a_keyed_weighted_limiter_charges_each_key_its_own_costs() {
    let log = Log::new();
    let _ = tokio::join!(
        weighted_per_org(&log, "a", 5),
        weighted_per_org(&log, "a", 1),
        weighted_per_org(&log, "b", 10),
        weighted_per_org(&log, "b", 1),
    );
    let mut entries = log.entries();
    entries.sort_by_key(|(_, at)| *at);
    assert_eq!(
        entries,
        [
            ("a:5".to_string(), ms(0)),
            ("b:10".to_string(), ms(0)),
            ("a:1".to_string(), ms(500)),
            ("b:1".to_string(), ms(1000)),
        ]
    );
}

#[rate_limited(calls = 10, period = "1s", mode = "reject", cost = units)]
async fn weighted_rejecting(units: usize) -> Result<(), ApiError> {
    Ok(())
}

/// Reject mode: a call is refused until a unit call would be admitted, whatever its cost, with
/// the exact wait for the permits already taken.
#[tokio::test(start_paused = true)]
async fn reject_mode_with_a_cost_refuses_until_the_permits_are_paid() {
    assert_eq!(weighted_rejecting(4).await, Ok(()));
    assert_eq!(weighted_rejecting(1).await, Err(limited(ms(400))));
    tokio::time::advance(ms(400)).await;
    assert_eq!(weighted_rejecting(6).await, Ok(()));
    assert_eq!(weighted_rejecting(6).await, Err(limited(ms(600))));
    // A cost of 0 takes nothing: admitted at once.
    assert_eq!(weighted_rejecting(0).await, Ok(()));
}

/// The retry would wait 1 s before each of its 5 tries: it never does.
#[retry(attempts = 5, backoff = "constant", base = "1s")]
#[rate_limited(calls = 90_000, period = "1m", cost = tokens)]
async fn too_many_tokens(log: &Log<()>, tokens: u32) -> Result<(), ApiError> {
    log.admit(());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_cost_above_calls_plus_burst_is_refused_at_once_and_not_retried() {
    let log = Log::new();
    let refused = too_many_tokens(&log, 120_000).await;
    assert_eq!(
        refused,
        Err(ApiError::Rejected(Rejected::CostTooHigh {
            cost: 120_000,
            capacity: 90_000,
            period: ms(60_000),
        }))
    );
    if let Err(ApiError::Rejected(rejected)) = &refused {
        assert_eq!(
            rejected.to_string(),
            "a call costing 120000 permits can never be admitted: the limiter admits at most 90000 per 1m (calls + burst)"
        );
    }
    // no try ran, no retry slept, and the limiter kept its permits
    assert_eq!(log.entries(), []);
    assert_eq!(log.elapsed(), ms(0));
    assert_eq!(too_many_tokens(&log, 90_000).await, Ok(()));
    assert_eq!(log.offsets(), offsets(&[0]));
}

#[rate_limited(calls = 10, period = "1s", burst = 2, policy = "rate_limit.cost_capacity", cost = units)]
async fn capacity_follows_the_limit(units: u32) -> Result<(), ApiError> {
    Ok(())
}

/// The capacity check uses the values in force: a policy that lowers `calls` at run time, and
/// then a lower limit learned from the server.
#[tokio::test(start_paused = true)]
async fn the_capacity_check_follows_the_limit_in_force() {
    let too_costly = |cost, capacity| {
        Err(ApiError::Rejected(Rejected::CostTooHigh {
            cost,
            capacity,
            period: ms(1000),
        }))
    };
    assert_eq!(capacity_follows_the_limit(12).await, Ok(()));
    assert_eq!(capacity_follows_the_limit(13).await, too_costly(13, 12));

    install_rate_limit(
        "rate_limit.cost_capacity",
        RateLimitPatch {
            calls: Some(5),
            ..RateLimitPatch::default()
        },
    );
    assert_eq!(capacity_follows_the_limit(8).await, too_costly(8, 7));

    install_rate_limit("rate_limit.cost_capacity", RateLimitPatch::default());
    let headers = [("x-ratelimit-limit", "4")];
    let quota = resilience::http::Quota::parse(
        |name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
        std::time::SystemTime::UNIX_EPOCH,
    );
    let limiter = resilience::rate_limit::named(
        "rate_limit.cost_capacity",
        resilience::rate_limit::RateLimitSpec::UNLIMITED,
    );
    assert_eq!(limiter.learn(None, &quota).limit, Some(4));
    assert_eq!(capacity_follows_the_limit(7).await, too_costly(7, 6));
    // 6 still fits: 4 per period and the burst of 2 (when, is the learned pace's business)
    assert_eq!(capacity_follows_the_limit(6).await, Ok(()));
}

#[rate_limited(calls = 100, period = "1h", mode = "reject", cost = bytes)]
fn sync_upload(bytes: usize) -> Result<usize, ApiError> {
    Ok(bytes)
}

/// A plain `fn` with a cost, outside any runtime: 60 of the 100 permits an hour, then a call
/// waits 60 intervals of 36 s (less the few microseconds since), and 101 never fits.
#[test]
fn sync_fn_with_a_cost() {
    assert_eq!(sync_upload(60), Ok(60));
    match sync_upload(1) {
        Err(ApiError::Rejected(Rejected::RateLimited { retry_after })) => {
            assert!(retry_after <= Duration::from_secs(2160), "{retry_after:?}");
            assert!(retry_after > Duration::from_secs(2159), "{retry_after:?}");
        }
        other => panic!("expected a rate-limit refusal, got {other:?}"),
    }
    assert_eq!(
        sync_upload(101),
        Err(ApiError::Rejected(Rejected::CostTooHigh {
            cost: 101,
            capacity: 100,
            period: Duration::from_secs(3600),
        }))
    );
}
