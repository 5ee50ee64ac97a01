//! A policy's `alert`: over the alert's `window`, the retry rate of its calls above
//! `retry_rate`, their failure rate above `failure_rate`, or a call that retried for longer
//! than `slow_call`. Each condition fires once when it starts to hold and clears once when it
//! stops: a warn-level event, `resilience_alerts_total`, and the hooks of [`on_alert`].
//!
//! # Sites without a policy
//!
//! The `alert` of the policy named `default` (as resilience4j's `default` config is the base
//! of every instance) also watches every retry site that names no policy, each site on its
//! own calls: a site's alert fires for that site alone, with the site's name in the event,
//! the hook's [`Alert::site`] and the metrics' `site` label. While no `default` alert is
//! installed, such sites count nothing per call; with one, each call pays a clock read and
//! two atomic adds.
//!
//! ```yaml
//! policies:
//!   default:
//!     alert: { retry_rate: 0.2, slow_call: 30s, window: 5m }
//! ```
//!
//! Judged on the per-policy counters without a thread: by each call of the policy's retry
//! sites (at most once a second), by a call of any policy's retry site for every policy (at
//! most once a second per calling policy), and by each [`stats()`](crate::stats()) read. So
//! an alert whose traffic stopped clears with the next call anywhere or the next read; a
//! program with no calls and no reads judges nothing.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clock::nanos;
use crate::counters::{Call, PolicyCounters, Window};
pub use crate::events::{Alert, AlertKind};
use crate::families;
use crate::observe::{percent, span};

/// Fewest calls in an alert's window before a rate is judged (1 retried call out of 1 is
/// not a trend); with fewer, a rate alert that fired clears.
const ALERT_MIN_CALLS: u64 = 10;

/// The retry rate an `alert` section without any condition watches.
const DEFAULT_RETRY_RATE: f64 = 0.2;

/// The window of an `alert` section without `window`.
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// A hook of [`on_alert`].
type Hook = Arc<dyn Fn(&Alert) + Send + Sync>;

static HOOKS: RwLock<Vec<Hook>> = RwLock::new(Vec::new());

/// Calls `hook` for every alert that fires or clears from now on, for the life of the
/// process (a webhook, a pager, a test's recorder). Hooks run on the thread that judged the
/// alert, after its `tracing` event: keep them quick, or hand the alert to a task of your own.
///
/// ```
/// # use resilience_core as resilience;
/// resilience::on_alert(|alert| {
///     let state = if alert.firing { "fired" } else { "cleared" };
///     eprintln!("{}: {} {state}", alert.policy, alert.kind.key());
/// });
/// ```
pub fn on_alert(hook: impl Fn(&Alert) + Send + Sync + 'static) {
    HOOKS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(Arc::new(hook));
}

/// Tells the hooks; they run outside the lock, so a hook may add another.
fn notify(alert: &Alert) {
    let hooks = HOOKS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    for hook in hooks {
        hook(alert);
    }
}

/// Counts one finished call of a retry site naming the policy, then judges the policy's
/// alert (and, at most once a second, every policy's).
pub(crate) fn count_call(policy: &PolicyCounters, call: Call) {
    let now = policy.call(call);
    judge(policy, now);
    if due(&policy.swept, now) {
        sweep_others(policy);
    }
}

/// Judges every policy's alert now: what a [`stats()`](crate::stats()) read does.
pub(crate) fn sweep() {
    for policy in crate::counters::policies() {
        let now = policy.now();
        judge(&policy, now);
    }
}

fn sweep_others(calling: &PolicyCounters) {
    for policy in crate::counters::policies() {
        if !std::ptr::eq(Arc::as_ptr(&policy), calling) {
            let now = policy.now();
            judge(&policy, now);
        }
    }
}

/// Whether a second has passed since `last` (nanoseconds plus one; 0: never), claiming the
/// turn if so: of several callers at once, one is told yes.
fn due(last: &std::sync::atomic::AtomicU64, now: u64) -> bool {
    let seen = last.load(Ordering::Relaxed);
    if seen != 0 && now.saturating_sub(seen - 1) < nanos(Duration::from_secs(1)) {
        return false;
    }
    last.compare_exchange(seen, now + 1, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
}

/// Judges the policy's `alert` at most once a second.
fn judge(policy: &PolicyCounters, now: u64) {
    if !due(&policy.judged, now) {
        return;
    }
    let owner = if policy.site {
        crate::registry::DEFAULT_POLICY
    } else {
        &policy.name
    };
    let alert = crate::registry::alert(owner);
    let window = alert
        .as_ref()
        .and_then(|alert| alert.window)
        .unwrap_or(DEFAULT_WINDOW);
    let measured = policy.window(window);
    for kind in AlertKind::ALL {
        let threshold = alert.as_ref().and_then(|alert| match kind {
            AlertKind::RetryRate => alert
                .retry_rate
                .or((alert.failure_rate.is_none() && alert.slow_call.is_none())
                    .then_some(DEFAULT_RETRY_RATE)),
            AlertKind::FailureRate => alert.failure_rate,
            AlertKind::SlowCall => alert.slow_call.map(|slow| slow.as_secs_f64()),
        });
        let firing = &policy.firing[kind as usize];
        let (above, value) = match threshold {
            None => (false, None),
            Some(threshold) => verdict(kind, &measured, threshold),
        };
        if above != firing.load(Ordering::Relaxed) {
            firing.store(above, Ordering::Relaxed);
            let change = Alert {
                policy: owner.to_string(),
                site: policy.site.then(|| policy.name.clone()),
                kind,
                firing: above,
                value,
                threshold,
                window,
            };
            report(&change);
            notify(&change);
            crate::events::alert(&change);
        }
    }
}

/// A condition of a policy's `alert` fired or cleared: one warn-level event, and the
/// `resilience_alerts_total` counter and `resilience_alert_firing` gauge of the condition.
fn report(alert: &Alert) {
    let (policy, kind, window) = (alert.policy.as_str(), alert.kind.key(), alert.window);
    let site = alert.site.as_deref().unwrap_or_default();
    let subject = match &alert.site {
        Some(site) => format!("site `{site}`"),
        None => format!("policy `{policy}`"),
    };
    let shown = |value: f64| match alert.kind {
        AlertKind::SlowCall => span(Duration::from_secs_f64(value.max(0.0))),
        _ => percent(value),
    };
    // Fired: "50% of calls retried over the last 1m, above the alert's 20%"; cleared:
    // "retry rate back to 10% over the last 1m, below the alert's 20%".
    let (measured, back) = match alert.kind {
        AlertKind::RetryRate => ("of calls retried", "retry rate back to"),
        AlertKind::FailureRate => ("of calls failed", "failure rate back to"),
        AlertKind::SlowCall => (
            "the slowest call retried for",
            "the slowest call retried for",
        ),
    };
    let message = match (alert.value, alert.threshold) {
        (Some(value), Some(threshold)) => {
            let (value, threshold, window) = (shown(value), shown(threshold), span(window));
            match (alert.firing, alert.kind) {
                (true, AlertKind::SlowCall) => format!(
                    "{subject}: a call retried for {value} within the last {window}, above the alert's {threshold}"
                ),
                (true, _) => format!(
                    "{subject}: {value} {measured} over the last {window}, above the alert's {threshold}"
                ),
                (false, _) => format!(
                    "{subject}: {back} {value} over the last {window}, below the alert's {threshold}"
                ),
            }
        }
        (_, Some(_)) => format!(
            "{subject}: fewer than 10 calls over the last {}; `{kind}` alert cleared",
            span(window),
        ),
        (_, None) => format!("{subject}: `{kind}` alert removed from the policy; cleared"),
    };
    tracing::warn!(
        target: "resilience::alert",
        policy,
        site,
        alert = kind,
        firing = alert.firing,
        value = alert.value,
        threshold = alert.threshold,
        window_s = window.as_secs(),
        "{message}",
    );
    let (state, firing) = if alert.firing {
        ("firing", 1.0)
    } else {
        ("cleared", 0.0)
    };
    let labels = [
        ("policy", policy.to_owned()),
        ("site", site.to_owned()),
        ("alert", kind.to_owned()),
    ];
    metrics::gauge!(families::ALERT_FIRING, &labels).set(firing);
    let mut labels = labels.to_vec();
    labels.push(("state", state.to_owned()));
    metrics::counter!(families::ALERTS, &labels).increment(1);
}

/// Whether the condition holds over `measured`, and the value it was judged on (`None`: too
/// few calls to judge a rate, which does not hold).
fn verdict(kind: AlertKind, measured: &Window, threshold: f64) -> (bool, Option<f64>) {
    let rate = match kind {
        AlertKind::SlowCall => {
            let slowest = measured.slowest.as_secs_f64();
            return (slowest > threshold, Some(slowest));
        }
        AlertKind::RetryRate => measured.retry_rate(),
        AlertKind::FailureRate => measured.failure_rate(),
    };
    match rate {
        Some(rate) if measured.calls >= ALERT_MIN_CALLS => (rate > threshold, Some(rate)),
        _ => (false, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(calls: u64, retried: u64, failed: u64, slowest_s: u64) -> Window {
        Window {
            calls,
            retried,
            failed,
            slowest: Duration::from_secs(slowest_s),
        }
    }

    #[test]
    fn rates_need_ten_calls_and_must_exceed_the_threshold() {
        let retry = AlertKind::RetryRate;
        assert_eq!(verdict(retry, &window(9, 9, 0, 0), 0.2), (false, None));
        assert_eq!(
            verdict(retry, &window(10, 2, 0, 0), 0.2),
            (false, Some(0.2))
        );
        assert_eq!(verdict(retry, &window(10, 3, 0, 0), 0.2), (true, Some(0.3)));
        let failure = AlertKind::FailureRate;
        assert_eq!(
            verdict(failure, &window(20, 0, 5, 0), 0.2),
            (true, Some(0.25))
        );
        assert_eq!(verdict(failure, &window(0, 0, 0, 0), 0.2), (false, None));
    }

    #[test]
    fn one_slow_call_is_enough() {
        let slow = AlertKind::SlowCall;
        assert_eq!(
            verdict(slow, &window(1, 1, 0, 31), 30.0),
            (true, Some(31.0))
        );
        assert_eq!(
            verdict(slow, &window(1, 1, 0, 30), 30.0),
            (false, Some(30.0))
        );
    }
}
