//! `retry_budget` and `#[retry(budget = "name")]` (issue 20, point 1): retries beyond the
//! budget are refused at once with the last error, counted, and the budget refills as its
//! window slides; on tokio's paused clock, every try counted exactly.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::{HttpError, retry};
use tokio::time::{Instant, advance};

/// Held by each test: installing replaces every policy.
static POLICIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn install(yaml: &str) {
    resilience::config::load_str(yaml).unwrap_or_else(|errors| panic!("{errors}"));
}

static RESERVE_TRIES: AtomicU32 = AtomicU32::new(0);

/// Always 503: every try wants a retry.
#[retry(attempts = 3, base = "100ms", budget = "budget.reserve")]
async fn reserve_down() -> Result<u32, HttpError> {
    RESERVE_TRIES.fetch_add(1, Ordering::SeqCst);
    Err(HttpError::new(503))
}

/// Tries each call made, and how long it took.
async fn tries_of<F: std::future::Future<Output = Result<u32, HttpError>>>(
    counter: &AtomicU32,
    call: impl FnOnce() -> F,
) -> (u32, Duration) {
    let (before, started) = (counter.load(Ordering::SeqCst), Instant::now());
    assert_eq!(call().await, Err(HttpError::new(503)));
    (counter.load(Ordering::SeqCst) - before, started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn retries_past_the_reserve_are_refused_at_once_until_the_window_slides() {
    let _policies = POLICIES.lock().await;
    install(
        "policies:\n  budget.reserve:\n    retry_budget: { ratio: 0.0, min_per_second: 1, window: 10s }\n",
    );
    let started = Instant::now();
    // 1/s over 10 s: ten retries. Five calls take two each (100 ms, then 200 ms).
    for _ in 0..5 {
        assert_eq!(
            tries_of(&RESERVE_TRIES, reserve_down).await,
            (3, Duration::from_millis(300))
        );
    }
    // Spent: the sixth call gives up after its first try, without sleeping.
    assert_eq!(
        tries_of(&RESERVE_TRIES, reserve_down).await,
        (1, Duration::ZERO)
    );
    let stats = resilience::stats();
    let site = stats.site("retry_budget::reserve_down").expect("counted");
    assert_eq!(site.budget_refusals, 1);

    // Ten seconds on, the retries of the first second have left the window: room again.
    advance(Duration::from_secs(10) - started.elapsed() + Duration::from_millis(100)).await;
    assert_eq!(
        tries_of(&RESERVE_TRIES, reserve_down).await,
        (3, Duration::from_millis(300))
    );
    install("policies: {}\n");
}

static RATIO_TRIES: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 3, base = "10ms", budget = "budget.ratio")]
fn ratio_down() -> Result<u32, HttpError> {
    RATIO_TRIES.fetch_add(1, Ordering::SeqCst);
    Err(HttpError::new(503))
}

/// Half a retry per call and no reserve: after n calls, at most n / 2 retries in all. A
/// blocking `fn` draws on the budget as an `async fn` does.
#[tokio::test(start_paused = true)]
async fn each_call_earns_ratio_retries() {
    let _policies = POLICIES.lock().await;
    install("policies:\n  budget.ratio:\n    retry_budget: { ratio: 0.5, min_per_second: 0 }\n");
    let mut tries = Vec::new();
    for _ in 0..6 {
        let before = RATIO_TRIES.load(Ordering::SeqCst);
        assert_eq!(ratio_down(), Err(HttpError::new(503)));
        tries.push(RATIO_TRIES.load(Ordering::SeqCst) - before);
    }
    // Call 1: 0.5 allowed, none taken. Call 2: 1 allowed, one taken, its second refused.
    assert_eq!(tries, [1, 2, 1, 2, 1, 2]);
    let stats = resilience::stats();
    assert_eq!(
        stats
            .site("retry_budget::ratio_down")
            .map(|site| site.budget_refusals),
        Some(6)
    );
    install("policies: {}\n");
}

/// Without a `retry_budget` section the budget is tower's default: 10/s over 10 s plus 20%
/// of the calls, so a hundred retries in a burst pass.
#[tokio::test(start_paused = true)]
async fn a_budget_the_file_does_not_set_has_the_defaults() {
    let _policies = POLICIES.lock().await;
    install("policies: {}\n");
    let budget = resilience::retry::budget("budget.absent");
    assert_eq!((0..150).filter(|_| budget.withdraw()).count(), 100);
}

#[test]
fn a_misspelt_budget_key_is_refused_with_its_place() {
    let errors =
        resilience::config::load_str("policies:\n  p:\n    retry_budget: { ratoi: 0.2 }\n")
            .expect_err("refused");
    assert_eq!(
        errors.to_string(),
        "<yaml>:3:21: policies.p.retry_budget.ratoi: unknown `retry_budget` key `ratoi`; did you mean `ratio`?"
    );
    let errors =
        resilience::config::load_str("policies:\n  p:\n    retry_budget: { ratio: 1.5 }\n")
            .expect_err("refused");
    assert!(
        errors.to_string().contains("policies.p.retry_budget.ratio"),
        "{errors}"
    );
}
