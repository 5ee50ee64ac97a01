//! The operator's view: `resilience::stats()` and a retry-rate alert from YAML.
//!
//! `cargo run --example alert`
//!
//! A service calls a backend through `#[resilient(policy = "payments")]`. The policy file
//! retries 3 times and sets `alert: { retry_rate: 0.2, window: 1m }`. For three simulated
//! minutes the backend is healthy, then one in two requests needs a retry for a minute, then
//! it recovers. The alert warns once when the retry rate crosses 20% and once when it falls
//! back; `stats()` shows what the policy did. The clock is tokio's paused clock, so the three
//! minutes take milliseconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use resilience::{Classification, Classify, ErrorClass, HttpError, Rejected, resilient};

const POLICIES: &str = "\
policies:
  payments:
    retry: { attempts: 3, base: 50ms, backoff: constant }
    timeout: 2s
    circuit_breaker: { failure_rate: 0.5, min_calls: 20, window: 50, open_for: 30s }
    alert: { retry_rate: 0.2, window: 1m }
";

#[derive(Debug)]
enum PaymentError {
    Http(HttpError),
    Refused(Rejected),
}

impl From<Rejected> for PaymentError {
    fn from(rejected: Rejected) -> Self {
        PaymentError::Refused(rejected)
    }
}

impl Classify for PaymentError {
    fn class(&self) -> ErrorClass {
        self.classification().class
    }
    fn classification(&self) -> Classification {
        match self {
            PaymentError::Http(error) => error.classification(),
            PaymentError::Refused(rejected) => rejected.classification(),
        }
    }
}

/// While `FLAKY` is set, the first try of every even order fails with 503.
static FLAKY: AtomicU64 = AtomicU64::new(0);
static LAST_FAILED: AtomicU64 = AtomicU64::new(u64::MAX);

#[resilient(policy = "payments")]
async fn charge(order: u64) -> Result<u64, PaymentError> {
    if FLAKY.load(Ordering::SeqCst) == 1
        && order % 2 == 0
        && LAST_FAILED.swap(order, Ordering::SeqCst) != order
    {
        return Err(PaymentError::Http(HttpError::new(503)));
    }
    Ok(order)
}

/// One order a second for `seconds` seconds.
async fn traffic(first_order: u64, seconds: u64) {
    for order in first_order..first_order + seconds {
        let _ = charge(order).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn report(when: &str) {
    let stats = resilience::stats();
    let Some(policy) = stats.policy("payments") else {
        return;
    };
    println!(
        "  [{when}] calls {:>3}, retried {:>2}, retry rate (5m) {:>4.1}%, alert {}",
        policy.calls,
        policy.retried_calls,
        policy.retry_rate_5m.unwrap_or(0.0) * 100.0,
        if policy.alert_firing {
            "FIRING"
        } else {
            "quiet"
        },
    );
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Only the alert's own events, as an operator's log would show them.
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .without_time()
                .with_target(false)
                .compact(),
        )
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_target("resilience::alert", tracing::Level::WARN),
        )
        .init();
    resilience::config::load_str(POLICIES)?;
    println!("policies.yaml:\n{POLICIES}");

    println!("minute 1-3: the backend is healthy");
    traffic(0, 180).await;
    report("t=3m");

    println!("minute 4: every other request needs a retry (503, then 200)");
    FLAKY.store(1, Ordering::SeqCst);
    traffic(180, 60).await;
    report("t=4m");

    println!("minute 5-6: the backend recovers");
    FLAKY.store(0, Ordering::SeqCst);
    traffic(240, 120).await;
    report("t=6m");

    let stats = resilience::stats();
    if let Some(site) = stats.site("alert::charge") {
        println!(
            "\nresilience::stats() for `alert::charge`: {} ok first try, {} ok after a retry, {} failed, {} retries after 5xx",
            site.ok_first_try, site.ok_after_retry, site.failed, site.retries.status
        );
    }
    Ok(())
}
