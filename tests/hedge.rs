//! `#[hedge]` (issue 20, point 2) on tokio's paused clock: a hedge sent at exactly `after`,
//! the first `Ok` winning and the loser cancelled, errors waiting for the attempts in flight,
//! `max`, `after = "p95"` following the observed latency, the retry budget, and a policy's
//! `hedge` section.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use resilience::{HttpError, hedge};
use tokio::time::{Instant, sleep};

/// Held by each test: they install policies and share the script below.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What each attempt does, by its index: answer after that long, `Ok` or 503.
static SCRIPT: Mutex<Vec<(u64, bool)>> = Mutex::new(Vec::new());
/// When each attempt started, since the test's start.
static STARTS: Mutex<Vec<Duration>> = Mutex::new(Vec::new());
/// Attempts dropped before they answered.
static CANCELLED: AtomicUsize = AtomicUsize::new(0);
static EPOCH: Mutex<Option<Instant>> = Mutex::new(None);

fn script(steps: &[(u64, bool)]) {
    *common::lock(&SCRIPT) = steps.to_vec();
    common::lock(&STARTS).clear();
    CANCELLED.store(0, Ordering::SeqCst);
    *common::lock(&EPOCH) = Some(Instant::now());
}

fn starts() -> Vec<u64> {
    common::lock(&STARTS)
        .iter()
        .map(|start| start.as_millis() as u64)
        .collect()
}

/// Counts a drop before the attempt finished as a cancellation.
struct Attempt(bool);

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.0 {
            CANCELLED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// One attempt as the script says; the attempt's index is its start's.
async fn attempt(value: u64) -> Result<u64, HttpError> {
    let index = {
        let epoch = common::lock(&EPOCH).expect("scripted");
        let mut starts = common::lock(&STARTS);
        starts.push(epoch.elapsed());
        starts.len() - 1
    };
    let (after, ok) = common::lock(&SCRIPT)
        .get(index)
        .copied()
        .unwrap_or((10, true));
    let mut guard = Attempt(false);
    sleep(Duration::from_millis(after)).await;
    guard.0 = true;
    if ok {
        Ok(value + index as u64)
    } else {
        Err(HttpError::new(503))
    }
}

#[hedge(after = "100ms", idempotent = true)]
async fn fixed(value: u64) -> Result<u64, HttpError> {
    attempt(value).await
}

#[hedge(after = "100ms", max = 3, idempotent = true)]
async fn three(value: u64) -> Result<u64, HttpError> {
    attempt(value).await
}

async fn timed<F: std::future::Future<Output = Result<u64, HttpError>>>(
    call: F,
) -> (Result<u64, HttpError>, u64) {
    let started = Instant::now();
    let result = call.await;
    (result, started.elapsed().as_millis() as u64)
}

#[tokio::test(start_paused = true)]
async fn a_hedge_goes_at_exactly_after_and_the_first_ok_wins() {
    let _serial = SERIAL.lock().await;
    // The first attempt would take 1 s; the hedge, sent at 100 ms, answers at 110 ms.
    script(&[(1_000, true), (10, true)]);
    assert_eq!(timed(fixed(7)).await, (Ok(8), 110));
    assert_eq!(starts(), [0, 100]);
    assert_eq!(CANCELLED.load(Ordering::SeqCst), 1, "the loser is dropped");

    // An answer before `after`: no hedge.
    script(&[(40, true)]);
    assert_eq!(timed(fixed(7)).await, (Ok(7), 40));
    assert_eq!(starts(), [0]);
}

#[tokio::test(start_paused = true)]
async fn an_error_waits_for_the_attempts_in_flight() {
    let _serial = SERIAL.lock().await;
    // The first fails at 200 ms while the hedge (sent at 100 ms) still runs: it wins at 300.
    script(&[(200, false), (200, true)]);
    assert_eq!(timed(fixed(1)).await, (Ok(2), 300));
    // Both fail: the last error, when the last one fails.
    script(&[(200, false), (150, false)]);
    assert_eq!(timed(fixed(1)).await, (Err(HttpError::new(503)), 250));
    // The only attempt fails before `after`: returned at once, nothing hedged.
    script(&[(30, false)]);
    assert_eq!(timed(fixed(1)).await, (Err(HttpError::new(503)), 30));
    assert_eq!(starts(), [0]);
}

#[tokio::test(start_paused = true)]
async fn max_caps_the_attempts_in_flight() {
    let _serial = SERIAL.lock().await;
    script(&[(1_000, true), (1_000, true), (1_000, true), (10, true)]);
    // Three at 0, 100 and 200 ms, then no more: the first answers at 1 s.
    assert_eq!(timed(three(0)).await, (Ok(0), 1_000));
    assert_eq!(starts(), [0, 100, 200]);
    assert_eq!(CANCELLED.load(Ordering::SeqCst), 2);
}

#[hedge(after = "p95", idempotent = true)]
async fn tail(value: u64) -> Result<u64, HttpError> {
    attempt(value).await
}

#[tokio::test(start_paused = true)]
async fn p95_waits_for_twenty_answers_then_follows_the_latency() {
    let _serial = SERIAL.lock().await;
    // Nineteen calls of 10 to 28 ms: too few to know the tail, a slow one is not hedged.
    for ms in 10..29 {
        script(&[(ms, true)]);
        assert_eq!(timed(tail(0)).await, (Ok(0), ms));
    }
    script(&[(500, true)]);
    assert_eq!(timed(tail(0)).await, (Ok(0), 500));
    assert_eq!(starts(), [0]);
    // Twenty answers now (10..=28 ms and 500 ms): the 95th percentile is the 19th, 28 ms.
    script(&[(500, true), (5, true)]);
    assert_eq!(timed(tail(0)).await, (Ok(1), 33));
    assert_eq!(starts(), [0, 28]);
}

#[hedge(after = "100ms", idempotent = true, budget = "hedge.budget")]
async fn budgeted(value: u64) -> Result<u64, HttpError> {
    attempt(value).await
}

#[hedge(idempotent = true, policy = "hedge.policy")]
async fn by_policy(value: u64) -> Result<u64, HttpError> {
    attempt(value).await
}

#[tokio::test(start_paused = true)]
async fn the_budget_and_the_policy_govern_the_hedges() {
    let _serial = SERIAL.lock().await;
    resilience::config::load_str(
        "policies:\n  hedge.budget:\n    retry_budget: { ratio: 0.0, min_per_second: 0 }\n  hedge.policy:\n    hedge: { after: 30ms, max: 2 }\n",
    )
    .unwrap_or_else(|errors| panic!("{errors}"));
    // A budget with nothing to spend sends no hedge: the slow first attempt answers alone.
    script(&[(1_000, true), (10, true)]);
    assert_eq!(timed(budgeted(0)).await, (Ok(0), 1_000));
    assert_eq!(starts(), [0]);
    // The policy's `after: 30ms` over the default `p95` (which would not hedge yet).
    script(&[(1_000, true), (10, true)]);
    assert_eq!(timed(by_policy(0)).await, (Ok(1), 40));
    assert_eq!(starts(), [0, 30]);
    resilience::config::load_str("policies: {}\n").unwrap_or_else(|errors| panic!("{errors}"));
}
