//! A policy's `alert`: a warn-level event (and `resilience_alerts_total`) when the retry rate
//! of its sites crosses above the threshold over the alert's window, and one when it falls
//! back below. Judged on the per-policy counters, at most once a second, after a call.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::clock::nanos;
use crate::counters::PolicyCounters;

/// Fewest calls in an alert's window before its rate is judged (1 retried call out of 1 is
/// not a trend).
const ALERT_MIN_CALLS: u64 = 10;

/// Counts one finished call of a retry site naming the policy (`retried`: it needed at least
/// one retry), then judges the policy's alert.
pub(crate) fn count_call(policy: &PolicyCounters, retried: bool) {
    let now = policy.call(retried);
    judge(policy, now);
}

/// Judges the policy's `alert` at most once a second: a warn-level event when the retry
/// rate crosses above it, and one when it falls back below.
fn judge(policy: &PolicyCounters, now: u64) {
    let judged = policy.judged.load(Ordering::Relaxed);
    if judged != 0 && now.saturating_sub(judged - 1) < nanos(Duration::from_secs(1)) {
        return;
    }
    if policy
        .judged
        .compare_exchange(judged, now + 1, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    let Some(alert) = crate::registry::alert(&policy.name) else {
        if policy.firing.swap(false, Ordering::Relaxed) {
            crate::observe::alert_cleared(&policy.name, None, Duration::ZERO);
        }
        return;
    };
    let threshold = alert.retry_rate.unwrap_or(0.2);
    let window = alert.window.unwrap_or(Duration::from_secs(300));
    let Some((rate, calls)) = policy.rate(window) else {
        return;
    };
    if calls < ALERT_MIN_CALLS {
        return;
    }
    let above = rate > threshold;
    if above != policy.firing.load(Ordering::Relaxed) {
        policy.firing.store(above, Ordering::Relaxed);
        if above {
            crate::observe::alert_fired(&policy.name, rate, threshold, window);
        } else {
            crate::observe::alert_cleared(&policy.name, Some((rate, threshold)), window);
        }
    }
}
