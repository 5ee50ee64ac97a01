//! `resilience::stats()` and the YAML `alert`: exact counts per site and per policy, the
//! retry rate over a window, and the alert's warn events (once when it fires, once when it
//! clears), on tokio's paused clock.

mod common;

use common::{ApiError, ms};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::breaker::BreakerState;
use resilience::{HttpError, Rejected, circuit_breaker, rate_limited, retry, timeout};
use tokio::time::{advance, sleep};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Held by the tests that install policies: installing replaces them all.
static POLICIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn install(yaml: &str) {
    resilience::config::load_str(yaml).unwrap_or_else(|errors| panic!("{errors}"));
}

/// Answers 503 `failures` times, then 200; `404` answers 404 at once.
struct Script(AtomicUsize);

impl Script {
    const fn new() -> Self {
        Script(AtomicUsize::new(0))
    }
    fn set(&self, failures: usize) {
        self.0.store(failures, Ordering::SeqCst);
    }
    fn answer(&self) -> Result<u32, ApiError> {
        let left = self.0.load(Ordering::SeqCst);
        if left == 404 {
            return Err(ApiError::Http(HttpError::new(404)));
        }
        if left > 0 {
            self.0.store(left - 1, Ordering::SeqCst);
            return Err(ApiError::Http(HttpError::new(503)));
        }
        Ok(1)
    }
}

static NAMED: Script = Script::new();

#[retry(policy = "stats-counted", attempts = 3, base = "10ms")]
async fn named() -> Result<u32, ApiError> {
    NAMED.answer()
}

#[tokio::test(start_paused = true)]
async fn a_site_naming_a_policy_counts_every_call() {
    let _policies = POLICIES.lock().await;
    install("policies:\n  stats-counted: {}\n");
    for _ in 0..3 {
        assert!(named().await.is_ok());
    }
    NAMED.set(1);
    assert!(named().await.is_ok());
    NAMED.set(404);
    assert!(named().await.is_err());
    NAMED.set(0);

    let stats = resilience::stats();
    let site = stats.site("stats::named").expect("the site is counted");
    assert_eq!(site.policy.as_deref(), Some("stats-counted"));
    assert_eq!(
        (site.ok_first_try, site.ok_after_retry, site.failed),
        (3, 1, 1)
    );
    assert_eq!(site.retries.status, 1);
    assert_eq!(site.retries.total(), 1);
    let policy = stats
        .policy("stats-counted")
        .expect("the policy is counted");
    assert_eq!((policy.calls, policy.retried_calls), (5, 1));
    assert_eq!(policy.retry_rate_5m, Some(0.2));
    assert!(!policy.alert_firing);
    install("policies: {}\n");
}

static INLINE: Script = Script::new();

#[retry(attempts = 3, base = "10ms")]
async fn inline() -> Result<u32, ApiError> {
    INLINE.answer()
}

/// A site naming no policy keeps its happy path free of counting: only calls that failed at
/// least once are counted.
#[tokio::test(start_paused = true)]
async fn an_inline_site_counts_only_what_failed() {
    for _ in 0..5 {
        assert!(inline().await.is_ok());
    }
    assert!(resilience::stats().site("stats::inline").is_none());
    INLINE.set(2);
    assert!(inline().await.is_ok());
    let stats = resilience::stats();
    let site = stats
        .site("stats::inline")
        .expect("counted after a failure");
    assert_eq!(
        (site.ok_first_try, site.ok_after_retry, site.failed),
        (0, 1, 0)
    );
    assert_eq!((site.retries.status, site.retries.total()), (2, 2));
}

#[rate_limited(calls = 1, period = "1s", mode = "reject")]
async fn limited() -> Result<u32, ApiError> {
    Ok(1)
}

#[circuit_breaker(min_calls = 1, window = 1)]
async fn broken() -> Result<u32, ApiError> {
    Err(ApiError::Http(HttpError::new(500)))
}

#[timeout("10ms")]
async fn slow() -> Result<u32, ApiError> {
    sleep(ms(100)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn refusals_breakers_and_timeouts_are_counted() {
    assert!(limited().await.is_ok());
    assert!(matches!(
        limited().await,
        Err(ApiError::Rejected(Rejected::RateLimited { .. }))
    ));
    assert!(broken().await.is_err());
    assert!(matches!(
        broken().await,
        Err(ApiError::Rejected(Rejected::CircuitOpen { .. }))
    ));
    assert!(slow().await.is_err());

    let stats = resilience::stats();
    assert_eq!(stats.site("stats::limited").unwrap().limiter_rejections, 1);
    let broken = stats.site("stats::broken").unwrap();
    assert_eq!(broken.breaker_refusals, 1);
    assert_eq!(broken.breaker, Some(BreakerState::Open));
    assert_eq!(stats.site("stats::slow").unwrap().timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn config_loads_are_counted() {
    let _policies = POLICIES.lock().await;
    let before = resilience::stats().config;
    install("policies: {}\n");
    assert!(resilience::config::load_str("policies: [").is_err());
    let after = resilience::stats().config;
    assert_eq!(after.reloads - before.reloads, 1);
    assert_eq!(after.failed_reloads - before.failed_reloads, 1);
}

// ---------------------------------------------------------------------------------------------
// The alert
// ---------------------------------------------------------------------------------------------

/// Collects the messages of `resilience::alert` events.
#[derive(Clone, Default)]
struct Alerts(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Alerts {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        if event.metadata().target() == "resilience::alert" {
            let mut message = Message(String::new());
            event.record(&mut message);
            common::lock(&self.0).push(message.0);
        }
    }
}

static ALERTED: Script = Script::new();

#[retry(policy = "stats-alert", attempts = 2, base = "1ms")]
async fn alerted() -> Result<u32, ApiError> {
    ALERTED.answer()
}

#[tokio::test(start_paused = true)]
async fn the_alert_warns_once_when_it_fires_and_once_when_it_clears() {
    let _policies = POLICIES.lock().await;
    let alerts = Alerts::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(alerts.clone()));
    install(
        "policies:\n  stats-alert:\n    retry: { attempts: 2, base: 1ms }\n    alert: { retry_rate: 0.2, window: 1m }\n",
    );
    let messages = || common::lock(&alerts.0).clone();

    // 10 calls a second apart (the alert is judged at most once a second), 5 of them
    // retried: 50% over the window, above 20%, judged at the 10th call.
    for call in 0..10 {
        ALERTED.set(usize::from(call % 2 == 0));
        assert!(alerted().await.is_ok());
        if call < 9 {
            assert!(messages().is_empty(), "fewer than 10 calls are not judged");
        }
        advance(Duration::from_secs(1)).await;
    }
    assert_eq!(
        messages(),
        ["policy `stats-alert`: 50% of calls retried over the last 1m, above the alert's 20%"]
    );
    assert!(
        resilience::stats()
            .policy("stats-alert")
            .unwrap()
            .alert_firing
    );

    // Still above: no second warning.
    for _ in 0..5 {
        ALERTED.set(1);
        assert!(alerted().await.is_ok());
        advance(Duration::from_secs(1)).await;
    }
    assert_eq!(messages().len(), 1);

    // A minute of clean calls: the window holds only those, and it clears once.
    for _ in 0..70 {
        assert!(alerted().await.is_ok());
        advance(Duration::from_secs(1)).await;
    }
    assert_eq!(messages().len(), 2, "{:?}", messages());
    let cleared = &messages()[1];
    assert!(
        cleared.starts_with("policy `stats-alert`: retry rate back to ")
            && cleared.ends_with("% over the last 1m, below the alert's 20%"),
        "{cleared}"
    );
    assert!(
        !resilience::stats()
            .policy("stats-alert")
            .unwrap()
            .alert_firing
    );
    install("policies: {}\n");
}

static SHAKY: Script = Script::new();

#[retry(policy = "stats-alert-kinds", attempts = 2)]
async fn shaky() -> Result<u32, ApiError> {
    SHAKY.answer()
}

#[tokio::test(start_paused = true)]
async fn failure_rate_and_slow_call_alerts_fire_and_clear_without_traffic() {
    let _policies = POLICIES.lock().await;
    let seen: Arc<Mutex<Vec<resilience::Alert>>> = Arc::default();
    let hook = Arc::clone(&seen);
    resilience::on_alert(move |alert| {
        if alert.policy == "stats-alert-kinds" {
            common::lock(&hook).push(alert.clone());
        }
    });
    install(
        "policies:\n  stats-alert-kinds:\n    retry: { attempts: 2, base: 40s, max_delay: 1m, jitter: 0.0 }\n    alert: { failure_rate: 0.3, slow_call: 30s, window: 1m }\n",
    );
    let changes = || -> Vec<(resilience::AlertKind, bool, Option<f64>)> {
        common::lock(&seen)
            .iter()
            .map(|alert| (alert.kind, alert.firing, alert.value))
            .collect()
    };
    use resilience::AlertKind::{FailureRate, SlowCall};

    // 10 calls a second apart, each a 404 (not retried, failed): 100% failed, judged at the
    // 10th. No retry-rate alert: the section names other conditions only.
    for _ in 0..10 {
        SHAKY.set(404);
        assert!(shaky().await.is_err());
        advance(Duration::from_secs(1)).await;
    }
    assert_eq!(changes(), [(FailureRate, true, Some(1.0))]);
    let firing = resilience::stats();
    assert!(firing.policy("stats-alert-kinds").unwrap().alert_firing);

    // No call for two minutes: the window empties, and a read judges it (no thread runs).
    advance(Duration::from_secs(120)).await;
    assert_eq!(changes().len(), 1, "nothing judges before the read");
    let quiet = resilience::stats();
    assert!(!quiet.policy("stats-alert-kinds").unwrap().alert_firing);
    assert_eq!(changes()[1], (FailureRate, false, None));

    // One call that fails once and succeeds after its 40 s backoff: it retried for 40 s,
    // above `slow_call: 30s`.
    SHAKY.set(1);
    assert!(shaky().await.is_ok());
    assert_eq!(changes()[2..], [(SlowCall, true, Some(40.0))]);
    let fired = common::lock(&seen)[2].clone();
    assert_eq!(
        (fired.threshold, fired.window),
        (Some(30.0), Duration::from_secs(60))
    );

    // A quiet minute later the slow call is out of the window: cleared on the next read.
    advance(Duration::from_secs(70)).await;
    resilience::stats();
    assert_eq!(changes()[3..], [(SlowCall, false, Some(0.0))]);
    install("policies: {}\n");
}
