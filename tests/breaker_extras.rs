//! The breaker's extras (issue 20, point 4), through `#[circuit_breaker]` and YAML on tokio's
//! paused clock: a time window sliding, a slow-call rate opening the breaker, `open_for`
//! growing by `backoff` up to `max_open_for`, and manual control through
//! `resilience::breaker("name")`.

use std::time::Duration;

use resilience::breaker::BreakerState;
use resilience::{HttpError, Rejected, circuit_breaker};
use tokio::time::advance;

const S: Duration = Duration::from_secs(1);
const NS: Duration = Duration::from_nanos(1);

/// Held by each test that installs policies: installing replaces every policy.
static POLICIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn install(yaml: &str) {
    resilience::config::load_str(yaml).unwrap_or_else(|errors| panic!("{errors}"));
}

#[derive(Debug, PartialEq)]
enum ApiError {
    Http(HttpError),
    Refused(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Refused(rejected)
    }
}

impl resilience::Classify for ApiError {
    fn class(&self) -> resilience::ErrorClass {
        self.classification().class
    }
    fn classification(&self) -> resilience::Classification {
        match self {
            ApiError::Http(error) => error.classification(),
            ApiError::Refused(rejected) => rejected.classification(),
        }
    }
}

fn outcome(fail: bool) -> Result<(), ApiError> {
    if fail {
        Err(ApiError::Http(HttpError::new(503)))
    } else {
        Ok(())
    }
}

fn refused(retry_after: Duration) -> Result<(), ApiError> {
    Err(ApiError::Refused(Rejected::CircuitOpen { retry_after }))
}

#[circuit_breaker(window_type = "time", window = 10, min_calls = 2, failure_rate = 0.5)]
async fn last_ten_seconds(fail: bool) -> Result<(), ApiError> {
    outcome(fail)
}

#[tokio::test(start_paused = true)]
async fn a_time_window_slides_at_the_exact_second() {
    assert_eq!(last_ten_seconds(true).await, outcome(true));
    // The failure of second 0 leaves the window at 10 s: 0 of 1 recorded then.
    advance(10 * S).await;
    assert_eq!(last_ten_seconds(false).await, Ok(()));
    assert_eq!(last_ten_seconds(true).await, outcome(true));
    // 1 of 2 in the last ten seconds: open.
    assert_eq!(last_ten_seconds(false).await, refused(30 * S));
}

#[circuit_breaker(slow_call = "2s", slow_call_rate = 0.5, min_calls = 4, window = 4)]
async fn sometimes_slow(took: Duration) -> Result<(), ApiError> {
    tokio::time::sleep(took).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_the_breaker_at_the_slow_call_rate() {
    // Exactly `slow_call` is not slow; a nanosecond more is.
    for took in [2 * S, 2 * S + NS, S] {
        assert_eq!(sometimes_slow(took).await, Ok(()));
    }
    assert_eq!(
        sometimes_slow(5 * S).await,
        Ok(()),
        "2 slow of 4: opens after it"
    );
    assert_eq!(sometimes_slow(Duration::ZERO).await, refused(30 * S));
}

#[circuit_breaker(policy = "breaker.backoff")]
async fn backing_off(fail: bool) -> Result<(), ApiError> {
    outcome(fail)
}

#[tokio::test(start_paused = true)]
async fn open_for_grows_while_the_trials_fail_and_starts_again_on_close() {
    let _policies = POLICIES.lock().await;
    install(
        "policies:
  breaker.backoff:
    circuit_breaker: { min_calls: 1, window: 1, open_for: 10s, backoff: 3.0, max_open_for: 60s, half_open_calls: 1 }
",
    );
    assert_eq!(backing_off(true).await, outcome(true));
    // 10 s, then 30, 60 (90 capped), 60.
    for open_for in [10, 30, 60, 60] {
        assert_eq!(backing_off(false).await, refused(open_for * S));
        advance(open_for * S - NS).await;
        assert_eq!(backing_off(false).await, refused(NS));
        advance(NS).await;
        assert_eq!(backing_off(true).await, outcome(true), "a failed trial");
    }
    advance(60 * S).await;
    assert_eq!(backing_off(false).await, Ok(()), "a passed trial closes it");
    assert_eq!(backing_off(true).await, outcome(true));
    assert_eq!(backing_off(false).await, refused(10 * S));
    install("policies: {}\n");
}

#[circuit_breaker(policy = "breaker.manual", min_calls = 1, window = 1)]
async fn manual(fail: bool) -> Result<(), ApiError> {
    outcome(fail)
}

#[tokio::test(start_paused = true)]
async fn a_breaker_is_controlled_by_hand_through_its_policy_name() {
    let _policies = POLICIES.lock().await;
    // Asked for before any call: the first site's inline values still apply, and what was
    // done by hand stays.
    let handle = resilience::breaker("breaker.manual");
    handle.force_open();
    assert_eq!(manual(false).await, refused(30 * S));
    advance(3600 * S).await;
    assert_eq!(manual(false).await, refused(30 * S), "open until reset");
    assert_eq!(handle.state(), BreakerState::Open);

    handle.disable();
    for _ in 0..3 {
        assert_eq!(manual(true).await, outcome(true), "every call goes through");
    }
    assert_eq!(handle.state(), BreakerState::Disabled);

    handle.reset();
    assert_eq!(handle.state(), BreakerState::Closed);
    // min_calls = 1, window = 1 (the site's, not the default 10 and 20): one failure opens.
    assert_eq!(manual(true).await, outcome(true));
    assert_eq!(
        resilience::breaker("breaker.manual").state(),
        BreakerState::Open
    );
    assert_eq!(manual(false).await, refused(30 * S));
    handle.reset();
    assert_eq!(manual(false).await, Ok(()));
}
