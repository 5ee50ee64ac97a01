//! Observability: one `tracing` event and one `metrics` counter per retry, give-up and
//! configuration problem. Nothing here runs on a call that succeeds the first time.

use std::fmt;
use std::time::Duration;

use crate::counters::{self, Event};
use crate::error_class::ErrorClass;

/// What most events share besides their log line: the site's counter in
/// [`stats()`](crate::stats()), and the `metrics` counter `name` labelled with the site.
fn counted(site: &str, policy: Option<&str>, event: Event, name: &'static str) {
    counters::count(site, policy, event);
    site_counter(name, site);
}

/// Adds one to the `metrics` counter `name` of `site`.
fn site_counter(name: &'static str, site: &str) {
    metrics::counter!(name, "site" => site.to_owned()).increment(1);
}

/// The facts of one failed try, logged by the retry executor.
pub(crate) struct RetryEvent<'a> {
    pub(crate) site: &'a str,
    pub(crate) policy: Option<&'a str>,
    pub(crate) attempt: u32,
    pub(crate) error: &'a dyn fmt::Display,
    pub(crate) class: ErrorClass,
}

impl RetryEvent<'_> {
    pub(crate) fn retrying(&self, delay: Duration) {
        counters::count(self.site, self.policy, Event::Retry(self.class));
        tracing::warn!(
            target: "resilience::retry",
            site = self.site,
            policy = self.policy,
            attempt = self.attempt,
            class = %self.class,
            error = %self.error,
            delay_ms = millis(delay),
            "try {} failed; retrying in {}",
            self.attempt,
            Rounded(delay),
        );
        self.count_class("resilience_retries_total");
    }

    pub(crate) fn not_retryable(&self) {
        counters::count(self.site, self.policy, Event::Failed);
        tracing::debug!(
            target: "resilience::retry",
            site = self.site,
            policy = self.policy,
            attempt = self.attempt,
            class = %self.class,
            error = %self.error,
            "try {} failed; not retryable",
            self.attempt,
        );
    }

    pub(crate) fn gave_up(&self, reason: impl fmt::Display) {
        counters::count(self.site, self.policy, Event::Failed);
        tracing::error!(
            target: "resilience::retry",
            site = self.site,
            policy = self.policy,
            attempt = self.attempt,
            class = %self.class,
            error = %self.error,
            "giving up: {}",
            reason,
        );
        self.count_class("resilience_retry_give_ups_total");
    }

    /// The `metrics` counter `name` labelled with the site and the error's class.
    fn count_class(&self, name: &'static str) {
        metrics::counter!(name, "site" => self.site.to_owned(), "class" => self.class.to_string())
            .increment(1);
    }
}

/// Reported once per policy name (per process): every call of a site naming a missing policy
/// would otherwise log.
pub(crate) fn policy_missing(site: &str, policy: &str) {
    static REPORTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    {
        let mut reported = REPORTED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if reported.iter().any(|name| name == policy) {
            return;
        }
        reported.push(policy.to_owned());
    }
    tracing::warn!(
        target: "resilience::config",
        site,
        policy,
        "policy `{policy}` named by `{site}` is not loaded; using the inline values",
    );
    metrics::counter!("resilience_policy_missing_total", "policy" => policy.to_owned())
        .increment(1);
}

/// A delay for humans: whole milliseconds from 1 ms up, exact below.
struct Rounded(Duration);

impl fmt::Display for Rounded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= Duration::from_millis(1) {
            let millis = (self.0.as_micros() + 500) / 1000;
            write!(f, "{millis}ms")
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

pub(crate) fn rate_limit_rejected(site: &str, policy: Option<&str>, retry_after: Duration) {
    counted(
        site,
        policy,
        Event::LimiterRejection,
        "resilience_rate_limit_rejections_total",
    );
    tracing::debug!(
        target: "resilience::rate_limit",
        site,
        policy,
        retry_after_ms = millis(retry_after),
        "rate limited; next permit in {}",
        Rounded(retry_after),
    );
}

/// A call costing more permits than its limiter admits per period (`Rejected::CostTooHigh`):
/// a bug in the caller's cost or in the limit, so a warning.
pub(crate) fn rate_limit_too_costly(site: &str, policy: Option<&str>, rejected: &dyn fmt::Display) {
    counted(
        site,
        policy,
        Event::LimiterRejection,
        "resilience_rate_limit_rejections_total",
    );
    tracing::warn!(
        target: "resilience::rate_limit",
        site,
        policy,
        "{rejected}",
    );
}

pub(crate) fn rate_limit_waited(site: &str, policy: Option<&str>, wait: Duration) {
    counted(
        site,
        policy,
        Event::LimiterWait,
        "resilience_rate_limit_waits_total",
    );
    tracing::trace!(
        target: "resilience::rate_limit",
        site,
        policy,
        wait_ms = millis(wait),
        "waiting {} for a permit",
        Rounded(wait),
    );
    metrics::histogram!("resilience_rate_limit_wait_seconds", "site" => site.to_owned())
        .record(wait.as_secs_f64());
}

/// A server's 429 reached a limiter: the pace was cut, and maybe every caller held.
pub(crate) fn rate_limit_throttled(
    site: &str,
    policy: Option<&str>,
    pace: Option<Duration>,
    pause: Option<Duration>,
) {
    if let Some(pace) = pace {
        let per_second = 1.0 / pace.as_secs_f64().max(f64::MIN_POSITIVE);
        tracing::info!(
            target: "resilience::rate_limit",
            site,
            policy,
            per_second,
            "server answered 429; the limiter slows to {per_second:.2}/s and recovers from there",
        );
        site_counter("resilience_rate_limit_slowdowns_total", site);
    }
    if let Some(pause) = pause {
        quota_spent(site, policy, pause);
    }
}

/// A server said its quota is spent (a long Retry-After, repeated 429s, `Remaining: 0` with a
/// `Reset` past the window): every caller sharing the limiter waits.
fn quota_spent(site: &str, policy: Option<&str>, pause: Duration) {
    tracing::warn!(
        target: "resilience::rate_limit",
        site,
        policy,
        pause_ms = millis(pause),
        "the server's quota is spent; the limiter admits nothing for {}",
        Rounded(pause),
    );
    site_counter("resilience_rate_limit_server_pauses_total", site);
}

pub(crate) fn bulkhead_full(site: &str, policy: Option<&str>, waited: Duration) {
    counted(
        site,
        policy,
        Event::BulkheadRejection,
        "resilience_bulkhead_rejections_total",
    );
    tracing::debug!(
        target: "resilience::bulkhead",
        site,
        policy,
        waited_ms = millis(waited),
        "bulkhead full; call refused",
    );
}

fn millis(duration: Duration) -> u64 {
    u64::try_from((duration.as_micros() + 500) / 1000).unwrap_or(u64::MAX)
}

/// A policy file (or YAML text) was loaded and installed.
pub(crate) fn config_loaded(path: Option<&std::path::Path>, policies: usize) {
    let file = path.map_or_else(|| "<yaml>".to_string(), |path| path.display().to_string());
    tracing::info!(
        target: "resilience::config",
        file,
        policies,
        "loaded {policies} named policies from {file}",
    );
    reloaded(true);
}

/// A policy file was refused; the policies in force stay.
pub(crate) fn config_failed(
    path: Option<&std::path::Path>,
    errors: &resilience_config::ConfigErrors,
) {
    let file = path.map_or_else(|| "<yaml>".to_string(), |path| path.display().to_string());
    for error in errors.errors() {
        tracing::error!(
            target: "resilience::config",
            file,
            line = error.line,
            column = error.column,
            path = error.path,
            "policy file refused, the last good policies stay in force: {error}",
        );
    }
    reloaded(false);
}

/// Counts a policy file applied (`ok`) or refused.
fn reloaded(ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::counter!("resilience_config_reloads_total", "outcome" => outcome).increment(1);
    counters::config_reloaded(ok);
}

/// A circuit breaker changed state.
pub(crate) fn breaker_transition(breaker: &str, state: &'static str, gauge: f64) {
    if state == "open" {
        tracing::warn!(target: "resilience::breaker", breaker, state, "circuit breaker `{breaker}` opened");
    } else {
        tracing::info!(target: "resilience::breaker", breaker, state, "circuit breaker `{breaker}` is {state}");
    }
    metrics::gauge!("resilience_breaker_state", "breaker" => breaker.to_owned()).set(gauge);
    metrics::counter!("resilience_breaker_transitions_total", "breaker" => breaker.to_owned(), "to" => state)
        .increment(1);
}

/// An open breaker refused a call.
pub(crate) fn circuit_refused(site: &str, policy: Option<&str>, retry_after: Duration) {
    counted(
        site,
        policy,
        Event::BreakerRefusal,
        "resilience_breaker_refused_total",
    );
    tracing::debug!(
        target: "resilience::breaker",
        site,
        policy,
        retry_after_ms = millis(retry_after),
        "circuit open: `{site}` refused without calling",
    );
}

/// A call ran past its time limit and was dropped.
pub(crate) fn timed_out(site: &str, policy: Option<&str>, after: Duration) {
    counted(site, policy, Event::Timeout, "resilience_timeouts_total");
    tracing::warn!(
        target: "resilience::timeout",
        site,
        policy,
        after_ms = millis(after),
        "`{site}` timed out after {}",
        Rounded(after),
    );
}

/// A policy's retry rate crossed above its `alert`.
pub(crate) fn alert_fired(policy: &str, rate: f64, threshold: f64, window: Duration) {
    tracing::warn!(
        target: "resilience::alert",
        policy,
        retry_rate = rate,
        threshold,
        window_s = window.as_secs(),
        "policy `{policy}`: {} of calls retried over the last {}, above the alert's {}",
        percent(rate),
        span(window),
        percent(threshold),
    );
    alert_state(policy, "firing", 1.0);
}

/// A policy's retry rate fell back below its `alert` (or the alert was removed: `None`).
pub(crate) fn alert_cleared(policy: &str, rate: Option<(f64, f64)>, window: Duration) {
    match rate {
        Some((rate, threshold)) => tracing::warn!(
            target: "resilience::alert",
            policy,
            retry_rate = rate,
            threshold,
            window_s = window.as_secs(),
            "policy `{policy}`: retry rate back to {} over the last {}, below the alert's {}",
            percent(rate),
            span(window),
            percent(threshold),
        ),
        None => tracing::warn!(
            target: "resilience::alert",
            policy,
            "policy `{policy}`: alert removed from the policy; cleared",
        ),
    }
    alert_state(policy, "cleared", 0.0);
}

/// Counts an alert's change to `state` and sets its `resilience_alert_firing` gauge.
fn alert_state(policy: &str, state: &'static str, firing: f64) {
    metrics::counter!("resilience_alerts_total", "policy" => policy.to_owned(), "state" => state)
        .increment(1);
    metrics::gauge!("resilience_alert_firing", "policy" => policy.to_owned()).set(firing);
}

/// A window for people: `5m`, `1h`, `90s`.
fn span(window: Duration) -> String {
    let secs = window.as_secs();
    match secs {
        0 => format!("{}", Rounded(window)),
        _ if secs % 3600 == 0 => format!("{}h", secs / 3600),
        _ if secs % 60 == 0 => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}

/// A rate for people: `20%`, `19.6%`.
fn percent(rate: f64) -> String {
    let percent = (rate * 1000.0).round() / 10.0;
    if percent.fract() == 0.0 {
        format!("{percent:.0}%")
    } else {
        format!("{percent:.1}%")
    }
}

/// A server's quota headers changed a named limiter.
pub(crate) fn rate_limit_learned(
    site: &str,
    policy: Option<&str>,
    limit: Option<u32>,
    pause: Option<Duration>,
) {
    if let Some(limit) = limit {
        tracing::info!(
            target: "resilience::rate_limit",
            site,
            policy,
            limit,
            "the server advertises a limit of {limit}; the limiter follows it down",
        );
        site_counter("resilience_rate_limit_server_limits_total", site);
    }
    if let Some(pause) = pause {
        quota_spent(site, policy, pause);
    }
}

/// A backend round trip failed; `on_error` decides what the call does.
#[cfg(feature = "redis")]
pub(crate) fn backend_failed(
    site: &str,
    policy: &str,
    error: &dyn fmt::Display,
    skipped: bool,
    on_error: crate::backend::OnBackendError,
) {
    let fallback = match on_error {
        crate::backend::OnBackendError::Allow => "allow",
        crate::backend::OnBackendError::Deny => "deny",
        crate::backend::OnBackendError::Local => "local",
    };
    if skipped {
        tracing::debug!(target: "resilience::backend", site, policy, fallback, "backend skipped: {error}; {fallback}");
    } else {
        tracing::warn!(target: "resilience::backend", site, policy, fallback, "backend failed: {error}; {fallback}");
    }
    metrics::counter!("resilience_backend_errors_total", "policy" => policy.to_owned(), "fallback" => fallback)
        .increment(1);
}
