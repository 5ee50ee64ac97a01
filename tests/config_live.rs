//! Live state across reloads of YAML policies, through the macros: policies are installed with
//! `resilience::config::load_str` (what each reload of a watched file does) and the annotated
//! functions are called before and after, on tokio's paused clock, with exact expectations.
//!
//! Installing replaces every named policy at once, so the tests of this binary take turns
//! ([`serial`]), and each one names its own policies: a site is a `static`, and a shared
//! limiter belongs to its policy name for the whole process.

mod common;

use common::{ApiError, ms};

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use resilience::cache::CacheCounts;
use resilience::{HttpError, cached, rate_limited, retry};
use tokio::time::Instant;

/// Holds the registry for one test: installing replaces every policy, so no two tests of this
/// binary may run at once. A tokio mutex: the guard is held across awaits.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// Installs `yaml` as the whole set of named policies, as a reload does.
fn install(yaml: &str) {
    if let Err(errors) = resilience::config::load_str(yaml) {
        panic!("the test's YAML is refused:\n{errors}\n---\n{yaml}");
    }
}

/// When each body ran, relative to the recorder's creation.
struct Log {
    start: Instant,
    at: Mutex<Vec<Duration>>,
}

impl Log {
    fn new() -> Self {
        Log {
            start: Instant::now(),
            at: Mutex::new(Vec::new()),
        }
    }

    /// Records a run now.
    fn hit(&self) {
        common::lock(&self.at).push(self.start.elapsed());
    }

    fn offsets(&self) -> Vec<Duration> {
        common::lock(&self.at).clone()
    }

    fn count(&self) -> usize {
        common::lock(&self.at).len()
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

fn offsets(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|&n| ms(n)).collect()
}

/// Runs of a body, counted.
struct Runs(AtomicUsize);

impl Runs {
    const fn new() -> Self {
        Runs(AtomicUsize::new(0))
    }

    fn run(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn counts(hits: u64, misses: u64, loads: u64) -> CacheCounts {
    CacheCounts {
        hits,
        misses,
        stale: 0,
        loads,
        load_errors: 0,
        evictions: 0,
    }
}

// ---------------------------------------------------------------------------------------------
// (a) A changed rate limit applies to the next admission; recent admissions still count
// ---------------------------------------------------------------------------------------------

#[rate_limited(calls = 100, period = "1s", policy = "live.rate")]
async fn limited(log: &Log) -> Result<(), ApiError> {
    log.hit();
    Ok(())
}

fn rate(calls: u32) -> String {
    format!("policies:\n  live.rate:\n    rate_limit: {{ calls: {calls}, period: 1s }}\n")
}

/// GCRA keeps one number, the theoretical arrival time (TAT) of the next slot; a reload changes
/// the spacing of the slots still to come, never the TAT already reserved.
#[tokio::test(start_paused = true)]
async fn a_changed_rate_limit_applies_to_the_next_admission_and_keeps_recent_ones() {
    let _serial = serial().await;
    install(&rate(2));
    let log = Log::new();

    // 2 per second is one slot every 500ms: two callers at t=0 are admitted at 0 and 500ms,
    // and the next slot (the TAT) is at 1s.
    let (first, second) = tokio::join!(limited(&log), limited(&log));
    assert!(first.is_ok() && second.is_ok());
    assert_eq!(log.offsets(), offsets(&[0, 500]));
    assert_eq!(log.elapsed(), ms(500));

    // At 500ms, down to 1 per second. The slot reserved under the old rate still stands: the
    // next call is admitted at 1s (a limiter that forgot would admit it at once, at 500ms);
    // the one after is 1s later (the old rate would have admitted it at 1.5s).
    install(&rate(1));
    limited(&log).await.ok();
    limited(&log).await.ok();
    assert_eq!(log.offsets(), offsets(&[0, 500, 1000, 2000]));

    // At 2s, up to 4 per second: the slot reserved under 1 per second (3s) still stands, and
    // the slots after it are 250ms apart.
    install(&rate(4));
    for _ in 0..3 {
        limited(&log).await.ok();
    }
    assert_eq!(
        log.offsets(),
        offsets(&[0, 500, 1000, 2000, 3000, 3250, 3500])
    );
}

// ---------------------------------------------------------------------------------------------
// (a') A reloaded `cost` overrides the site's expression; the capacity follows the limit
// ---------------------------------------------------------------------------------------------

#[rate_limited(calls = 100, period = "1s", policy = "live.cost", cost = tokens)]
async fn metered(log: &Log, tokens: u32) -> Result<(), ApiError> {
    let _ = tokens;
    log.hit();
    Ok(())
}

fn metered_policy(rate_limit: &str) -> String {
    format!("policies:\n  live.cost:\n    rate_limit: {{ {rate_limit} }}\n")
}

#[tokio::test(start_paused = true)]
async fn a_reloaded_cost_overrides_the_expression_and_the_capacity_follows_the_limit() {
    let _serial = serial().await;
    install(&metered_policy("calls: 10, period: 1s"));
    let log = Log::new();

    // 10 per second, a permit every 100ms: the site's own costs, 4 then 1.
    metered(&log, 4).await.unwrap();
    metered(&log, 1).await.unwrap();
    assert_eq!(log.offsets(), offsets(&[0, 400]));

    // At 400ms the policy says `cost: 3`: every call takes 3, whatever `tokens` is.
    install(&metered_policy("calls: 10, period: 1s, cost: 3"));
    metered(&log, 1).await.unwrap();
    metered(&log, 9).await.unwrap();
    assert_eq!(log.offsets(), offsets(&[0, 400, 500, 800]));

    // Down to 5 per second, `cost` gone: the expression again, and a call of 6 can never be
    // admitted, so it is refused at once.
    install(&metered_policy("calls: 5, period: 1s"));
    let refused = metered(&log, 6).await;
    assert_eq!(
        refused,
        Err(ApiError::Rejected(resilience::Rejected::CostTooHigh {
            cost: 6,
            capacity: 5,
            period: ms(1000),
        }))
    );
    assert_eq!(log.elapsed(), ms(800));
    // The slot reserved before (1.1s) stands; 5 permits at 200ms each follow it.
    metered(&log, 5).await.unwrap();
    metered(&log, 1).await.unwrap();
    assert_eq!(log.offsets(), offsets(&[0, 400, 500, 800, 1100, 2100]));
}

// ---------------------------------------------------------------------------------------------
// (b) `cache.enabled: false` bypasses and clears the site's cache; `true` enables it again
// ---------------------------------------------------------------------------------------------

static PRICE_RUNS: Runs = Runs::new();

#[cached(ttl = "60s", policy = "live.cache-switch")]
async fn price(id: u32) -> u32 {
    PRICE_RUNS.run();
    id * 100
}

fn cache_enabled(enabled: bool) -> String {
    format!("policies:\n  live.cache-switch:\n    cache: {{ enabled: {enabled} }}\n")
}

fn price_entries() -> usize {
    price_cache().existing().map_or(0, |cache| cache.len())
}

#[tokio::test(start_paused = true)]
async fn cache_enabled_false_bypasses_and_clears_then_true_caches_again() {
    let _serial = serial().await;
    install(&cache_enabled(true));
    assert_eq!(price(1).await, 100);
    assert_eq!(price(1).await, 100);
    assert_eq!(price(2).await, 200);
    assert_eq!(PRICE_RUNS.get(), 2, "one load per key");
    assert_eq!(price_cache().counts(), counts(1, 2, 2));
    assert_eq!(price_entries(), 2);

    // Disabled: the entries are dropped at once, every call runs the body, nothing is stored,
    // and a bypassed call is neither a hit, nor a miss, nor a load.
    install(&cache_enabled(false));
    assert_eq!(price_entries(), 0, "disabling clears the cache");
    for _ in 0..3 {
        assert_eq!(price(1).await, 100);
    }
    assert_eq!(PRICE_RUNS.get(), 5, "every call runs the body");
    assert_eq!(price_entries(), 0, "nothing is stored while disabled");
    assert_eq!(price_cache().counts(), counts(1, 2, 2));

    // Enabled again: the cache starts empty (60s have not passed, but the old entries are
    // gone), then caches again.
    install(&cache_enabled(true));
    assert_eq!(price(1).await, 100);
    assert_eq!(price(1).await, 100);
    assert_eq!(price(2).await, 200);
    assert_eq!(PRICE_RUNS.get(), 7, "one load per key again");
    assert_eq!(price_cache().counts(), counts(2, 4, 4));
    assert_eq!(price_entries(), 2);

    // A reload that leaves the section out returns to the inline value: enabled.
    install("policies:\n  live.cache-switch:\n    retry: { attempts: 1 }\n");
    assert_eq!(price(1).await, 100);
    assert_eq!(PRICE_RUNS.get(), 7, "still cached");
}

// ---------------------------------------------------------------------------------------------
// (c) Retry values apply to the next call; a call in flight keeps its snapshot
// ---------------------------------------------------------------------------------------------

#[retry(attempts = 3, base = "10ms", policy = "live.retry")]
async fn always_503(log: &Log) -> Result<(), HttpError> {
    log.hit();
    Err(HttpError::new(503))
}

fn retry_attempts(attempts: u32) -> String {
    format!(
        "policies:\n  live.retry:\n    retry: {{ attempts: {attempts}, backoff: exp, base: 100ms }}\n"
    )
}

#[tokio::test(start_paused = true)]
async fn retry_values_apply_to_the_next_call() {
    let _serial = serial().await;
    install(&retry_attempts(2));
    let log = Log::new();
    assert_eq!(always_503(&log).await, Err(HttpError::new(503)));
    assert_eq!(log.count(), 2);
    assert_eq!(log.offsets(), offsets(&[0, 100]));
    assert_eq!(log.elapsed(), ms(100), "one backoff sleep of `base`");

    install(&retry_attempts(4));
    let log = Log::new();
    assert_eq!(always_503(&log).await, Err(HttpError::new(503)));
    assert_eq!(log.count(), 4);
    assert_eq!(log.offsets(), offsets(&[0, 100, 300, 700]));
    assert_eq!(log.elapsed(), ms(700), "100ms + 200ms + 400ms");
}

#[retry(attempts = 3, base = "10ms", policy = "live.in-flight")]
async fn in_flight_503(log: &Log) -> Result<(), HttpError> {
    log.hit();
    Err(HttpError::new(503))
}

fn in_flight_attempts(attempts: u32) -> String {
    format!(
        "policies:\n  live.in-flight:\n    retry: {{ attempts: {attempts}, backoff: constant, base: 100ms }}\n"
    )
}

/// A reload during a call's backoff sleep does not change that call: it finishes with the
/// values it started with; the next call uses the new ones.
#[tokio::test(start_paused = true)]
async fn a_call_in_flight_finishes_with_the_policy_it_started_with() {
    let _serial = serial().await;
    install(&in_flight_attempts(2));
    let log = Log::new();
    let reload = async {
        tokio::time::sleep(ms(50)).await;
        install(&in_flight_attempts(4));
    };
    let (result, ()) = tokio::join!(in_flight_503(&log), reload);
    assert_eq!(result, Err(HttpError::new(503)));
    assert_eq!(
        log.offsets(),
        offsets(&[0, 100]),
        "2 attempts: its snapshot"
    );

    let log = Log::new();
    assert_eq!(in_flight_503(&log).await, Err(HttpError::new(503)));
    assert_eq!(
        log.offsets(),
        offsets(&[0, 100, 200, 300]),
        "the next call: 4"
    );
}

// ---------------------------------------------------------------------------------------------
// (d) A changed cache `ttl` applies to the entries stored afterwards
// ---------------------------------------------------------------------------------------------

static QUOTE_RUNS: Runs = Runs::new();

#[cached(ttl = "60s", policy = "live.ttl")]
async fn quote(id: u32) -> u32 {
    QUOTE_RUNS.run();
    id
}

fn ttl(ttl: &str) -> String {
    format!("policies:\n  live.ttl:\n    cache: {{ ttl: {ttl} }}\n")
}

#[tokio::test(start_paused = true)]
async fn a_changed_ttl_applies_to_entries_stored_afterwards() {
    let _serial = serial().await;
    install(&ttl("10s"));
    quote(1).await; // stored at 0 for 10s
    install(&ttl("30s"));
    quote(2).await; // stored at 0 for 30s
    assert_eq!(QUOTE_RUNS.get(), 2);

    tokio::time::advance(ms(9_999)).await;
    quote(1).await;
    quote(2).await;
    assert_eq!(QUOTE_RUNS.get(), 2, "both fresh at 9.999s");

    // At 10s the entry stored under the old ttl expires (the new ttl did not extend it); it is
    // loaded again and stored for the new 30s, until 40s.
    tokio::time::advance(ms(1)).await;
    quote(1).await;
    assert_eq!(QUOTE_RUNS.get(), 3, "key 1 expired at 10s");
    quote(2).await;
    assert_eq!(QUOTE_RUNS.get(), 3, "key 2 is fresh until 30s");

    tokio::time::advance(ms(20_000)).await; // 30s
    quote(2).await;
    assert_eq!(QUOTE_RUNS.get(), 4, "key 2 expired at 30s");
    quote(1).await;
    assert_eq!(
        QUOTE_RUNS.get(),
        4,
        "key 1, reloaded at 10s, is fresh until 40s"
    );

    // A shorter ttl does not cut the entries already stored either.
    install(&ttl("1s"));
    tokio::time::advance(ms(9_999)).await; // 39.999s
    quote(1).await;
    assert_eq!(QUOTE_RUNS.get(), 4, "key 1 keeps its 30s");
    quote(3).await; // stored at 39.999s for 1s
    tokio::time::advance(ms(1)).await; // 40s
    quote(1).await;
    assert_eq!(QUOTE_RUNS.get(), 6, "key 1 expired at 40s; key 3 loaded");
    tokio::time::advance(ms(998)).await; // 40.998s
    quote(3).await;
    assert_eq!(QUOTE_RUNS.get(), 6, "key 3 fresh until 40.999s");
    tokio::time::advance(ms(1)).await; // 40.999s
    quote(3).await;
    assert_eq!(QUOTE_RUNS.get(), 7, "key 3 expired after the new 1s");
}

// ---------------------------------------------------------------------------------------------
// (e) A site whose policy the YAML lacks keeps its inline values
// ---------------------------------------------------------------------------------------------

#[retry(attempts = 3, base = "10ms", policy = "live.absent")]
async fn absent_retry(log: &Log) -> Result<(), HttpError> {
    log.hit();
    Err(HttpError::new(503))
}

#[rate_limited(calls = 2, period = "1s", policy = "live.absent")]
async fn absent_limited(log: &Log) -> Result<(), ApiError> {
    log.hit();
    Ok(())
}

static ABSENT_RUNS: Runs = Runs::new();

#[cached(ttl = "5s", policy = "live.absent")]
async fn absent_cached(id: u32) -> u32 {
    ABSENT_RUNS.run();
    id
}

/// The file names other policies only: every site naming `live.absent` uses its inline values
/// (3 attempts 10ms apart doubling, 2 calls per second, a 5s ttl).
#[tokio::test(start_paused = true)]
async fn a_site_whose_policy_the_file_lacks_keeps_its_inline_values() {
    let _serial = serial().await;
    install(
        "policies:\n  live.other:\n    retry: { attempts: 9, base: 1s }\n    rate_limit: { calls: 1, period: 1h }\n    cache: { ttl: 1h }\n",
    );

    let log = Log::new();
    assert_eq!(absent_retry(&log).await, Err(HttpError::new(503)));
    assert_eq!(log.offsets(), offsets(&[0, 10, 30]));

    let log = Log::new();
    for _ in 0..3 {
        absent_limited(&log).await.ok();
    }
    assert_eq!(log.offsets(), offsets(&[0, 500, 1000]));

    absent_cached(1).await;
    tokio::time::advance(ms(4_999)).await;
    absent_cached(1).await;
    assert_eq!(ABSENT_RUNS.get(), 1, "fresh for the inline 5s");
    tokio::time::advance(ms(1)).await;
    absent_cached(1).await;
    assert_eq!(ABSENT_RUNS.get(), 2, "expired after the inline 5s");
}

#[retry(attempts = 3, base = "10ms", policy = "live.dropped")]
async fn dropped_retry(log: &Log) -> Result<(), HttpError> {
    log.hit();
    Err(HttpError::new(503))
}

#[rate_limited(calls = 2, period = "1s", policy = "live.dropped")]
async fn dropped_limited(log: &Log) -> Result<(), ApiError> {
    log.hit();
    Ok(())
}

/// A field a reload no longer sets returns to the inline value, not to the previous file's
/// value; a policy a reload drops returns its sites to their inline values.
#[tokio::test(start_paused = true)]
async fn fields_and_policies_a_reload_drops_return_to_the_inline_values() {
    let _serial = serial().await;
    install(
        "policies:\n  live.dropped:\n    retry: { attempts: 4, base: 100ms }\n    rate_limit: { calls: 10, period: 1s }\n",
    );
    let log = Log::new();
    assert_eq!(dropped_retry(&log).await, Err(HttpError::new(503)));
    assert_eq!(log.offsets(), offsets(&[0, 100, 300, 700]));
    let log = Log::new();
    for _ in 0..3 {
        dropped_limited(&log).await.ok();
    }
    assert_eq!(log.offsets(), offsets(&[0, 100, 200]), "10 per second");

    // `base` is gone from the file: the inline 10ms, not the previous 100ms.
    install("policies:\n  live.dropped:\n    retry: { attempts: 4 }\n");
    let log = Log::new();
    assert_eq!(dropped_retry(&log).await, Err(HttpError::new(503)));
    assert_eq!(log.offsets(), offsets(&[0, 10, 30, 70]));
    // The `rate_limit` section is gone: the inline 2 per second. The slot reserved under 10
    // per second (300ms after the first of the calls above) still stands: it is 30ms away
    // now, 200ms + 70ms of retrying later.
    let log = Log::new();
    for _ in 0..3 {
        dropped_limited(&log).await.ok();
    }
    assert_eq!(
        log.offsets(),
        offsets(&[30, 530, 1030]),
        "then 2 per second"
    );

    // The policy is gone from the file: the inline values throughout.
    install("policies: {}\n");
    let log = Log::new();
    assert_eq!(dropped_retry(&log).await, Err(HttpError::new(503)));
    assert_eq!(log.offsets(), offsets(&[0, 10, 30]));
}

// ---------------------------------------------------------------------------------------------
// `~` removes a limit the attribute sets; a policy alone can give a site its rate
// ---------------------------------------------------------------------------------------------

#[retry(
    attempts = 5,
    base = "100ms",
    max_elapsed = "250ms",
    policy = "live.tilde"
)]
async fn bounded_503(log: &Log) -> Result<(), HttpError> {
    log.hit();
    Err(HttpError::new(503))
}

#[rate_limited(calls = 1, period = "1s", max_wait = "100ms", policy = "live.tilde")]
async fn impatient(log: &Log) -> Result<(), ApiError> {
    log.hit();
    Ok(())
}

/// `max_elapsed: ~` and `max_wait: ~` remove the inline limits; a reload without them
/// brings the inline limits back.
#[tokio::test(start_paused = true)]
async fn a_tilde_removes_an_inline_limit() {
    let _serial = serial().await;
    install("policies:\n  live.tilde:\n    retry: { attempts: 5 }\n");
    // Inline max_elapsed = 250ms: after the try at 100ms, the next sleep (200ms) would end at
    // 300ms, past 250ms: give up.
    let log = Log::new();
    assert_eq!(bounded_503(&log).await, Err(HttpError::new(503)));
    assert_eq!(log.offsets(), offsets(&[0, 100]));
    // Inline max_wait = 100ms: the second call would wait 1s, so it is refused at once.
    let log = Log::new();
    assert_eq!(impatient(&log).await, Ok(()));
    assert_eq!(
        impatient(&log).await,
        Err(ApiError::Rejected(resilience::Rejected::RateLimited {
            retry_after: ms(1000)
        }))
    );
    assert_eq!(log.offsets(), offsets(&[0]));

    install(
        "policies:\n  live.tilde:\n    retry: { max_elapsed: ~ }\n    rate_limit: { max_wait: ~ }\n",
    );
    let log = Log::new();
    assert_eq!(bounded_503(&log).await, Err(HttpError::new(503)));
    assert_eq!(log.offsets(), offsets(&[0, 100, 300, 700, 1500]));
    // 1.5s later the limiter is idle again: one at once, the next a second later.
    let log = Log::new();
    assert_eq!(impatient(&log).await, Ok(()));
    assert_eq!(impatient(&log).await, Ok(()));
    assert_eq!(log.offsets(), offsets(&[0, 1000]));

    install("policies: {}\n");
    let log = Log::new();
    assert_eq!(bounded_503(&log).await, Err(HttpError::new(503)));
    assert_eq!(
        log.offsets(),
        offsets(&[0, 100]),
        "the inline max_elapsed again"
    );
}

#[rate_limited(policy = "live.yaml-only")]
async fn yaml_only(log: &Log) -> Result<(), ApiError> {
    log.hit();
    Ok(())
}

/// `#[rate_limited(policy = ..)]` without inline values takes its rate from the policy; when
/// a reload drops the rate, the slot already reserved still stands.
#[tokio::test(start_paused = true)]
async fn a_policy_alone_gives_a_site_its_rate() {
    let _serial = serial().await;
    install("policies:\n  live.yaml-only:\n    rate_limit: { calls: 1, period: 1s }\n");
    let log = Log::new();
    for _ in 0..3 {
        yaml_only(&log).await.ok();
    }
    assert_eq!(log.offsets(), offsets(&[0, 1000, 2000]));

    install("policies: {}\n");
    let log = Log::new();
    yaml_only(&log).await.ok();
    assert_eq!(
        log.offsets(),
        offsets(&[1000]),
        "the slot reserved at 3s stands"
    );
}

#[rate_limited(policy = "live.unlimited")]
async fn unlimited(log: &Log) -> Result<(), ApiError> {
    log.hit();
    Ok(())
}

/// Without inline values and without a loaded rate, the site is documented as unlimited
/// (`#[rate_limited]` docs: "the site is unlimited until the policy gives a rate").
#[tokio::test(start_paused = true)]
async fn a_site_without_a_rate_is_unlimited() {
    let _serial = serial().await;
    install("policies: {}\n");
    let log = Log::new();
    for _ in 0..3 {
        unlimited(&log).await.ok();
    }
    let _ = tokio::join!(unlimited(&log), unlimited(&log), unlimited(&log));
    assert_eq!(log.offsets(), offsets(&[0, 0, 0, 0, 0, 0]), "never waits");
}
