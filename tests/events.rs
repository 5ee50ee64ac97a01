//! `resilience::events()`: the typed events of retries, breaker state changes, refusals and
//! alerts, each delivered once, on tokio's paused clock. Every test listens to its own sites
//! only: the tests of this file run at once and share the process's listeners.

mod common;

use common::{ApiError, lock, ms};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::breaker::BreakerState;
use resilience::events::Event;
use resilience::{
    ErrorClass, HttpError, Rejected, bulkhead, circuit_breaker, rate_limited, retry, timeout,
};
use tokio::time::{Instant, advance, sleep};

/// What a listener heard, in order.
type Heard<T> = Arc<Mutex<Vec<T>>>;

static FLAKY_FAILURES: AtomicUsize = AtomicUsize::new(0);

/// Fails with 503 while `FLAKY_FAILURES` lasts, then answers.
#[retry(attempts = 4, base = "100ms", backoff = "exp", jitter = 0.0)]
async fn flaky() -> Result<u32, ApiError> {
    if FLAKY_FAILURES.load(Ordering::SeqCst) > 0 {
        FLAKY_FAILURES.fetch_sub(1, Ordering::SeqCst);
        return Err(ApiError::Http(HttpError::new(503)));
    }
    Ok(7)
}

#[tokio::test(start_paused = true)]
async fn a_retried_call_tells_each_retry_with_its_attempt_and_delay() {
    let heard: Heard<(u32, Duration, ErrorClass, String, Duration)> = Arc::default();
    let start = Instant::now();
    let kept = Arc::clone(&heard);
    let subscription = resilience::events().on_retry(move |retry| {
        if retry.site.ends_with("::flaky") {
            lock(&kept).push((
                retry.attempt,
                retry.delay,
                retry.class,
                retry.error.to_string(),
                start.elapsed(),
            ));
        }
    });
    FLAKY_FAILURES.store(2, Ordering::SeqCst);
    assert_eq!(flaky().await.ok(), Some(7));
    let status = ErrorClass::Status(503);
    let error = format!("{:?}", ApiError::Http(HttpError::new(503)));
    assert_eq!(
        *lock(&heard),
        [
            // Told when try 1 failed (at 0), before its 100 ms sleep; try 2 at 100 ms.
            (1, ms(100), status, error.clone(), ms(0)),
            (2, ms(200), status, error, ms(100)),
        ]
    );

    // A call that succeeds at once tells nothing; after the drop, nothing either.
    assert_eq!(flaky().await.ok(), Some(7));
    drop(subscription);
    FLAKY_FAILURES.store(1, Ordering::SeqCst);
    assert_eq!(flaky().await.ok(), Some(7));
    assert_eq!(lock(&heard).len(), 2);
}

static BREAKER_FAILS: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(
    failure_rate = 0.5,
    min_calls = 2,
    window = 2,
    open_for = "30s",
    half_open_calls = 1
)]
async fn guarded() -> Result<u32, ApiError> {
    if BREAKER_FAILS.load(Ordering::SeqCst) > 0 {
        return Err(ApiError::Http(HttpError::new(503)));
    }
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_breaker_tells_each_state_change_and_each_refusal() {
    let heard: Heard<String> = Arc::default();
    let kept = Arc::clone(&heard);
    let _subscription = resilience::events().subscribe(move |event| match event {
        Event::StateChange(change) if change.breaker.ends_with("::guarded") => {
            lock(&kept).push(format!("{:?}", change.state));
        }
        Event::Rejected(rejection) if rejection.site.ends_with("::guarded") => {
            lock(&kept).push(format!("{:?}", rejection.rejected));
        }
        _ => {}
    });
    BREAKER_FAILS.store(1, Ordering::SeqCst);
    assert!(guarded().await.is_err());
    assert!(lock(&heard).is_empty(), "1 failure of 2: closed");
    assert!(guarded().await.is_err());
    assert_eq!(*lock(&heard), ["Open"]);

    advance(ms(10_000)).await;
    assert_eq!(
        guarded().await,
        Err(ApiError::Rejected(Rejected::CircuitOpen {
            retry_after: ms(20_000)
        }))
    );
    assert_eq!(lock(&heard)[1..], ["CircuitOpen { retry_after: 20s }"]);

    BREAKER_FAILS.store(0, Ordering::SeqCst);
    advance(ms(20_000)).await;
    assert_eq!(guarded().await.ok(), Some(1));
    assert_eq!(lock(&heard)[2..], ["HalfOpen", "Closed"]);
    assert_eq!(
        [BreakerState::HalfOpen, BreakerState::Closed].map(|state| format!("{state:?}")),
        lock(&heard)[2..]
    );
}

/// Two sites sharing the breaker of the policy `events-shared` (not loaded: the first site's
/// inline values make it).
#[circuit_breaker(
    policy = "events-shared",
    failure_rate = 1.0,
    min_calls = 2,
    window = 2,
    open_for = "30s"
)]
async fn shared_a() -> Result<u32, ApiError> {
    Err(ApiError::Http(HttpError::new(503)))
}

#[circuit_breaker(
    policy = "events-shared",
    failure_rate = 1.0,
    min_calls = 2,
    window = 2,
    open_for = "30s"
)]
async fn shared_b() -> Result<u32, ApiError> {
    Err(ApiError::Http(HttpError::new(503)))
}

#[tokio::test(start_paused = true)]
async fn a_breaker_shared_by_two_sites_opens_once() {
    let heard: Heard<(String, BreakerState)> = Arc::default();
    let kept = Arc::clone(&heard);
    let _subscription = resilience::events().on_breaker_state(move |change| {
        if change.breaker == "events-shared" {
            lock(&kept).push((change.breaker.to_string(), change.state));
        }
    });
    assert!(shared_a().await.is_err());
    assert!(shared_b().await.is_err());
    assert!(shared_a().await.is_err(), "refused");
    assert!(shared_b().await.is_err(), "refused");
    assert_eq!(
        *lock(&heard),
        [("events-shared".to_string(), BreakerState::Open)]
    );
}

#[rate_limited(calls = 1, period = "1s", mode = "reject")]
async fn limited() -> Result<(), ApiError> {
    Ok(())
}

#[bulkhead(max_concurrent = 1)]
async fn narrow(hold: Duration) -> Result<(), ApiError> {
    sleep(hold).await;
    Ok(())
}

#[timeout("50ms")]
async fn slow() -> Result<(), ApiError> {
    sleep(ms(80)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn each_refusal_is_one_rejection_event() {
    let heard: Heard<(String, Rejected)> = Arc::default();
    let kept = Arc::clone(&heard);
    let _subscription = resilience::events().on_rejected(move |rejection| {
        let site = rejection.site.rsplit("::").next().unwrap_or_default();
        if ["limited", "narrow", "slow"].contains(&site) {
            lock(&kept).push((site.to_string(), rejection.rejected.clone()));
        }
    });
    let refusals = |site: &str| -> Vec<Rejected> {
        lock(&heard)
            .iter()
            .filter(|(each, _)| each == site)
            .map(|(_, rejected)| rejected.clone())
            .collect()
    };

    // The limiter: one admission a second; the next two calls refused, 1 s then 0.6 s early.
    assert!(limited().await.is_ok());
    assert!(limited().await.is_err());
    advance(ms(400)).await;
    assert!(limited().await.is_err());
    assert_eq!(
        refusals("limited"),
        [
            Rejected::RateLimited {
                retry_after: ms(1000)
            },
            Rejected::RateLimited {
                retry_after: ms(600)
            },
        ]
    );

    // The bulkhead: one call holds the slot, the second is refused at once.
    let holder = tokio::spawn(narrow(ms(100)));
    tokio::task::yield_now().await;
    assert_eq!(
        narrow(ms(0)).await,
        Err(ApiError::Rejected(Rejected::BulkheadFull))
    );
    assert!(holder.await.expect("joined").is_ok());
    assert_eq!(refusals("narrow"), [Rejected::BulkheadFull]);

    // The timeout: dropped at 50 ms.
    assert!(slow().await.is_err());
    assert_eq!(refusals("slow"), [Rejected::Timeout { after: ms(50) }]);
    assert_eq!(lock(&heard).len(), 4);
}

static ALERTED_FAILS: AtomicUsize = AtomicUsize::new(0);

#[retry(policy = "events-alert", attempts = 1)]
async fn watched() -> Result<u32, ApiError> {
    match ALERTED_FAILS.load(Ordering::SeqCst) {
        0 => Ok(1),
        _ => Err(ApiError::Http(HttpError::new(404))),
    }
}

#[tokio::test(start_paused = true)]
async fn an_alert_tells_when_it_fires_and_when_it_clears() {
    resilience::config::load_str(
        "policies:\n  events-alert:\n    alert: { failure_rate: 0.3, window: 1m }\n",
    )
    .unwrap_or_else(|errors| panic!("{errors}"));
    let heard: Heard<(bool, Option<f64>, Duration)> = Arc::default();
    let start = Instant::now();
    let kept = Arc::clone(&heard);
    let _subscription = resilience::events().on_alert(move |alert| {
        if alert.policy == "events-alert" {
            lock(&kept).push((alert.firing, alert.value, start.elapsed()));
        }
    });
    // Ten failed calls a second apart: judged at the tenth (at 9 s), 100% failed.
    ALERTED_FAILS.store(1, Ordering::SeqCst);
    for _ in 0..10 {
        assert!(watched().await.is_err());
        advance(ms(1000)).await;
    }
    assert_eq!(*lock(&heard), [(true, Some(1.0), ms(9000))]);

    // Two quiet minutes: the window is empty, and the next read clears it, once.
    advance(ms(120_000)).await;
    resilience::stats();
    resilience::stats();
    assert_eq!(lock(&heard)[1..], [(false, None, ms(130_000))]);
}
