//! The `default` policy's `alert` watches every retry site that names no policy, each on its
//! own calls (issue 19, point 3): fired and cleared per site, with the site in the hook's
//! `Alert`, in `stats()`, and in the warning; nothing counted per call without it. Its own
//! process: the tests here install policies that change what every unnamed site counts.

mod common;

use common::ApiError;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::{Alert, AlertKind, HttpError, retry};
use tokio::time::advance;

/// Held by each test: installing replaces every policy.
static POLICIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn install(yaml: &str) {
    resilience::config::load_str(yaml).unwrap_or_else(|errors| panic!("{errors}"));
}

/// How many 503s are left before a 200.
static FLAKY_FAILURES: AtomicUsize = AtomicUsize::new(0);

#[retry(attempts = 2, base = "1ms")]
async fn flaky() -> Result<u32, ApiError> {
    if FLAKY_FAILURES.load(Ordering::SeqCst) > 0 {
        FLAKY_FAILURES.fetch_sub(1, Ordering::SeqCst);
        return Err(ApiError::Http(HttpError::new(503)));
    }
    Ok(1)
}

#[retry(attempts = 2, base = "1ms")]
async fn steady() -> Result<u32, ApiError> {
    Ok(2)
}

/// An alert as the tests compare it: site, policy, condition, firing, value.
type Change = (Option<String>, String, AlertKind, bool, Option<f64>);

/// The alerts the hook saw for sites of this file.
fn recorder() -> Arc<Mutex<Vec<Alert>>> {
    let seen: Arc<Mutex<Vec<Alert>>> = Arc::default();
    let hook = Arc::clone(&seen);
    resilience::on_alert(move |alert| {
        if alert
            .site
            .as_deref()
            .is_some_and(|site| site.starts_with("site_alerts::"))
        {
            common::lock(&hook).push(alert.clone());
        }
    });
    seen
}

#[tokio::test(start_paused = true)]
async fn the_default_alert_fires_and_clears_per_site() {
    let _policies = POLICIES.lock().await;
    let seen = recorder();
    install("policies:\n  default:\n    alert: { retry_rate: 0.2, window: 1m }\n");
    let changes = || -> Vec<Change> {
        common::lock(&seen)
            .iter()
            .map(|a| (a.site.clone(), a.policy.clone(), a.kind, a.firing, a.value))
            .collect()
    };

    // 10 calls a second apart at each site; every other call of `flaky` retried once: 50%
    // over the window, above 20%, judged at its 10th call. `steady` never retries.
    for call in 0..10 {
        FLAKY_FAILURES.store(usize::from(call % 2 == 0), Ordering::SeqCst);
        assert_eq!(flaky().await.ok(), Some(1));
        assert_eq!(steady().await.ok(), Some(2));
        advance(Duration::from_secs(1)).await;
    }
    assert_eq!(
        changes(),
        [(
            Some("site_alerts::flaky".to_string()),
            "default".to_string(),
            AlertKind::RetryRate,
            true,
            Some(0.5)
        )]
    );
    let stats = resilience::stats();
    let flaky_stats = stats.site("site_alerts::flaky").expect("counted");
    assert!(flaky_stats.alert_firing);
    assert_eq!(
        (flaky_stats.ok_first_try, flaky_stats.ok_after_retry),
        (5, 5)
    );
    assert!(
        !stats
            .site("site_alerts::steady")
            .expect("counted")
            .alert_firing
    );

    // No call for two minutes: the window empties and a read clears it (no thread runs).
    advance(Duration::from_secs(120)).await;
    assert_eq!(changes().len(), 1, "nothing judges before the read");
    assert!(
        !resilience::stats()
            .site("site_alerts::flaky")
            .unwrap()
            .alert_firing
    );
    assert_eq!(
        changes()[1..],
        [(
            Some("site_alerts::flaky".to_string()),
            "default".to_string(),
            AlertKind::RetryRate,
            false,
            None
        )]
    );
    install("policies: {}\n");
}

#[tokio::test(start_paused = true)]
async fn without_a_default_alert_unnamed_sites_count_no_happy_call() {
    let _policies = POLICIES.lock().await;
    install("policies:\n  default:\n    retry: { attempts: 3 }\n");
    let before = resilience::stats()
        .site("site_alerts::steady")
        .map_or(0, |site| site.ok_first_try);
    for _ in 0..5 {
        assert_eq!(steady().await.ok(), Some(2));
    }
    let after = resilience::stats()
        .site("site_alerts::steady")
        .map_or(0, |site| site.ok_first_try);
    assert_eq!(
        after, before,
        "a happy call is not counted without the alert"
    );

    install("policies:\n  default:\n    alert: { failure_rate: 0.5 }\n");
    for _ in 0..5 {
        assert_eq!(steady().await.ok(), Some(2));
    }
    let counted = resilience::stats()
        .site("site_alerts::steady")
        .map_or(0, |site| site.ok_first_try);
    assert_eq!(counted, before + 5);
    install("policies: {}\n");
}
