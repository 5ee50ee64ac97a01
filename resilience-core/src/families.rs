//! The metric families the runtime emits through the `metrics` facade: each name written once,
//! with its kind, unit and help text, and the switch for the metrics a happy call would pay
//! for (see [`enable_metrics`](crate::stats::enable_metrics)).
//!
//! Names follow Prometheus's conventions: base units (seconds), `_total` on counters, one
//! family per meaning with its variants as labels.

use std::sync::Once;
use std::sync::atomic::{AtomicU8, Ordering};

use metrics::Unit;

/// Calls of a retry site, by `site`, `policy` and `outcome`.
pub(crate) const CALLS: &str = "resilience_calls_total";
/// How long a call took, first try to answer, in seconds; same labels as [`CALLS`].
pub(crate) const CALL_DURATION: &str = "resilience_call_duration_seconds";
/// Retries by `site`, `policy` and the `class` of the error retried.
pub(crate) const RETRIES: &str = "resilience_retries_total";
/// Calls that gave up (attempts spent, `max_elapsed`, a Retry-After past `max_delay`).
pub(crate) const GIVE_UPS: &str = "resilience_retry_give_ups_total";
/// One backoff wait before a retry, in seconds.
pub(crate) const RETRY_WAIT: &str = "resilience_retry_wait_seconds";
/// Calls that waited for a rate limit's permit.
pub(crate) const LIMIT_WAITS: &str = "resilience_rate_limit_waits_total";
/// How long a call waited for a permit, in seconds.
pub(crate) const LIMIT_WAIT: &str = "resilience_rate_limit_wait_seconds";
/// Calls a rate limit refused.
pub(crate) const LIMIT_REJECTIONS: &str = "resilience_rate_limit_rejections_total";
/// A server's 429 slowed a limiter down.
pub(crate) const LIMIT_SLOWDOWNS: &str = "resilience_rate_limit_slowdowns_total";
/// A server said its quota is spent: the limiter admits nothing for a while.
pub(crate) const LIMIT_PAUSES: &str = "resilience_rate_limit_server_pauses_total";
/// A server's advertised limit lowered a limiter.
pub(crate) const LIMIT_LEARNED: &str = "resilience_rate_limit_server_limits_total";
/// Calls a full bulkhead refused.
pub(crate) const BULKHEAD_REJECTIONS: &str = "resilience_bulkhead_rejections_total";
/// A breaker's state: 1 for the state it is in, 0 for the others.
pub(crate) const BREAKER_STATE: &str = "resilience_breaker_state";
/// A breaker's changes of state, by the state it went `to`.
pub(crate) const BREAKER_TRANSITIONS: &str = "resilience_breaker_transitions_total";
/// Calls an open breaker refused.
pub(crate) const BREAKER_REFUSED: &str = "resilience_breaker_refused_total";
/// Calls cut by a time limit.
pub(crate) const TIMEOUTS: &str = "resilience_timeouts_total";
/// Cache lookups that found a fresh value.
pub(crate) const CACHE_HITS: &str = "resilience_cache_hits_total";
/// Cache lookups that found nothing usable.
pub(crate) const CACHE_MISSES: &str = "resilience_cache_misses_total";
/// Cache lookups served a stale value while it refreshes.
pub(crate) const CACHE_STALE: &str = "resilience_cache_stale_total";
/// Loads run to fill a cache.
pub(crate) const CACHE_LOADS: &str = "resilience_cache_loads_total";
/// Loads that failed.
pub(crate) const CACHE_LOAD_ERRORS: &str = "resilience_cache_load_errors_total";
/// Entries evicted to stay within `max_entries`.
pub(crate) const CACHE_EVICTIONS: &str = "resilience_cache_evictions_total";
/// How long a load took, in seconds.
pub(crate) const CACHE_LOAD_DURATION: &str = "resilience_cache_load_duration_seconds";
/// Policy files applied or refused, by `outcome`.
pub(crate) const CONFIG_RELOADS: &str = "resilience_config_reloads_total";
/// Sites naming a policy that is not loaded (once per policy).
pub(crate) const POLICY_MISSING: &str = "resilience_policy_missing_total";
/// Built-in alerts fired and cleared, by `state`.
pub(crate) const ALERTS: &str = "resilience_alerts_total";
/// Whether a built-in alert is firing (1) or not (0).
pub(crate) const ALERT_FIRING: &str = "resilience_alert_firing";
/// Backend (Redis) round trips that failed, by the `fallback` taken.
pub(crate) const BACKEND_ERRORS: &str = "resilience_backend_errors_total";

/// A family's kind, for its `describe_*` call.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every family: name, kind, unit and the HELP text an exporter shows.
const FAMILIES: &[(&str, Kind, Unit, &str)] = &[
    (
        CALLS,
        Kind::Counter,
        Unit::Count,
        "Calls of a retry site by outcome: ok (first try), ok_after_retry, error (no retry), error_after_retry",
    ),
    (
        CALL_DURATION,
        Kind::Histogram,
        Unit::Seconds,
        "Duration of a call of a retry site, first try to answer, tries and waits included",
    ),
    (
        RETRIES,
        Kind::Counter,
        Unit::Count,
        "Retries, by the class of the error retried",
    ),
    (
        GIVE_UPS,
        Kind::Counter,
        Unit::Count,
        "Calls that gave up retrying: attempts spent, max_elapsed reached or Retry-After past max_delay",
    ),
    (
        RETRY_WAIT,
        Kind::Histogram,
        Unit::Seconds,
        "Backoff wait before one retry",
    ),
    (
        LIMIT_WAITS,
        Kind::Counter,
        Unit::Count,
        "Calls that waited for a rate limit's permit",
    ),
    (
        LIMIT_WAIT,
        Kind::Histogram,
        Unit::Seconds,
        "Time a call waited for a rate limit's permit",
    ),
    (
        LIMIT_REJECTIONS,
        Kind::Counter,
        Unit::Count,
        "Calls a rate limit refused",
    ),
    (
        LIMIT_SLOWDOWNS,
        Kind::Counter,
        Unit::Count,
        "Times a server's 429 slowed a rate limiter down",
    ),
    (
        LIMIT_PAUSES,
        Kind::Counter,
        Unit::Count,
        "Times a server said its quota is spent and the rate limiter held every caller",
    ),
    (
        LIMIT_LEARNED,
        Kind::Counter,
        Unit::Count,
        "Times a server's advertised limit lowered a rate limiter",
    ),
    (
        BULKHEAD_REJECTIONS,
        Kind::Counter,
        Unit::Count,
        "Calls a full bulkhead refused",
    ),
    (
        BREAKER_STATE,
        Kind::Gauge,
        Unit::Count,
        "Circuit breaker state: 1 for the state it is in, 0 for the others",
    ),
    (
        BREAKER_TRANSITIONS,
        Kind::Counter,
        Unit::Count,
        "Circuit breaker changes of state, by the state entered",
    ),
    (
        BREAKER_REFUSED,
        Kind::Counter,
        Unit::Count,
        "Calls an open circuit breaker refused without calling",
    ),
    (
        TIMEOUTS,
        Kind::Counter,
        Unit::Count,
        "Calls cut by a time limit",
    ),
    (
        CACHE_HITS,
        Kind::Counter,
        Unit::Count,
        "Cache lookups that found a fresh value",
    ),
    (
        CACHE_MISSES,
        Kind::Counter,
        Unit::Count,
        "Cache lookups that found nothing usable",
    ),
    (
        CACHE_STALE,
        Kind::Counter,
        Unit::Count,
        "Cache lookups served a stale value while it refreshes",
    ),
    (
        CACHE_LOADS,
        Kind::Counter,
        Unit::Count,
        "Loads run to fill a cache",
    ),
    (
        CACHE_LOAD_ERRORS,
        Kind::Counter,
        Unit::Count,
        "Cache loads that failed",
    ),
    (
        CACHE_EVICTIONS,
        Kind::Counter,
        Unit::Count,
        "Cache entries evicted to stay within max_entries",
    ),
    (
        CACHE_LOAD_DURATION,
        Kind::Histogram,
        Unit::Seconds,
        "Duration of one cache load",
    ),
    (
        CONFIG_RELOADS,
        Kind::Counter,
        Unit::Count,
        "Policy files applied (ok) or refused (error)",
    ),
    (
        POLICY_MISSING,
        Kind::Counter,
        Unit::Count,
        "Policies named by a site but not loaded (counted once per policy)",
    ),
    (
        ALERTS,
        Kind::Counter,
        Unit::Count,
        "Built-in alerts fired and cleared",
    ),
    (
        ALERT_FIRING,
        Kind::Gauge,
        Unit::Count,
        "Whether a built-in alert is firing (1) or not (0)",
    ),
    (
        BACKEND_ERRORS,
        Kind::Counter,
        Unit::Count,
        "Failed backend (Redis) round trips, by the fallback taken",
    ),
];

/// Who wants each call of a retry site timed and counted, as bits: [`METRICS`] (the calls
/// counter and call duration at sites naming no policy, and the cache load duration) and
/// [`SITE_ALERTS`] (the `default` policy's alert, watching every site that names no policy).
/// One byte, so a happy call asks both with one relaxed load.
static PER_CALL: AtomicU8 = AtomicU8::new(0);

/// [`enable`] was called.
const METRICS: u8 = 1;

/// A policy named `default` has an `alert` (see [`crate::alert`]).
const SITE_ALERTS: u8 = 2;

/// Whether anything wants each call timed and counted: one relaxed load.
#[inline(always)]
pub(crate) fn per_call() -> bool {
    PER_CALL.load(Ordering::Relaxed) != 0
}

/// Whether the per-call metrics are on.
#[inline]
pub(crate) fn metrics() -> bool {
    PER_CALL.load(Ordering::Relaxed) & METRICS != 0
}

/// Whether sites naming no policy count their calls for the `default` policy's alert.
#[inline]
pub(crate) fn site_alerts() -> bool {
    PER_CALL.load(Ordering::Relaxed) & SITE_ALERTS != 0
}

/// Turns the counting of calls for the `default` policy's alert on or off (at each install).
pub(crate) fn set_site_alerts(on: bool) {
    if on {
        PER_CALL.fetch_or(SITE_ALERTS, Ordering::Relaxed);
    } else {
        PER_CALL.fetch_and(!SITE_ALERTS, Ordering::Relaxed);
    }
}

/// Describes every family to the recorder installed now (once per process), and turns the
/// per-call metrics on.
pub(crate) fn enable() {
    static DESCRIBED: Once = Once::new();
    DESCRIBED.call_once(|| {
        for &(name, kind, unit, help) in FAMILIES {
            match kind {
                Kind::Counter => metrics::describe_counter!(name, unit, help),
                Kind::Gauge => metrics::describe_gauge!(name, unit, help),
                Kind::Histogram => metrics::describe_histogram!(name, unit, help),
            }
        }
    });
    PER_CALL.fetch_or(METRICS, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_follows_the_naming_conventions_once() {
        let mut names: Vec<&str> = FAMILIES.iter().map(|family| family.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len(), "a family listed twice");
        for &(name, kind, unit, help) in FAMILIES {
            assert!(name.starts_with("resilience_"), "{name}");
            assert!(!help.is_empty() && !help.ends_with('.'), "{name}: {help}");
            match kind {
                Kind::Counter => assert!(name.ends_with("_total"), "{name}"),
                Kind::Gauge => assert!(!name.ends_with("_total"), "{name}"),
                Kind::Histogram => {
                    assert!(name.ends_with("_seconds"), "{name}");
                    assert_eq!(unit, Unit::Seconds, "{name}");
                }
            }
        }
    }
}
