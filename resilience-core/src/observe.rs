//! Observability: one `tracing` event and one `metrics` counter per retry, give-up and
//! configuration problem. Nothing here runs on a call that succeeds the first time.

use std::fmt;
use std::time::Duration;

use crate::counters::{self, Event, SiteCounters};
use crate::error_class::ErrorClass;
use crate::events::{self, BreakerState};
use crate::families::{
    BREAKER_REFUSED, BREAKER_STATE, BREAKER_TRANSITIONS, BULKHEAD_REJECTIONS, CALL_DURATION, CALLS,
    CONFIG_RELOADS, GIVE_UPS, LIMIT_LEARNED, LIMIT_PAUSES, LIMIT_REJECTIONS, LIMIT_SLOWDOWNS,
    LIMIT_WAIT, LIMIT_WAITS, POLICY_MISSING, RETRIES, RETRY_WAIT, TIMEOUTS,
};
use crate::rejected::Rejected;

/// What most events share besides their log line: the site's counter in
/// [`stats()`](crate::stats()), and the `metrics` counter `name` labelled with the site.
fn counted(site: &SiteCounters, event: Event, name: &'static str) {
    counters::count_at(site, event);
    site_counter(name, site.name, site.policy);
}

/// Adds one to the `metrics` counter `name` of `site`. The labels borrow the site's
/// `'static` names: no allocation.
fn site_counter(name: &'static str, site: &'static str, policy: Option<&'static str>) {
    metrics::counter!(name, "site" => site, "policy" => policy.unwrap_or("")).increment(1);
}

/// How a call of a retry site ended, the `outcome` label of `resilience_calls_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Its first try succeeded.
    Ok,
    /// A retry succeeded.
    OkAfterRetry,
    /// It failed without a retry (not retryable, retries off, or given up at once).
    Error,
    /// It failed after one or more retries.
    ErrorAfterRetry,
}

impl Outcome {
    /// The outcome of a call that returned `ok` (or not), having retried (or not).
    pub(crate) fn of(ok: bool, retried: bool) -> Self {
        match (ok, retried) {
            (true, false) => Outcome::Ok,
            (true, true) => Outcome::OkAfterRetry,
            (false, false) => Outcome::Error,
            (false, true) => Outcome::ErrorAfterRetry,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::OkAfterRetry => "ok_after_retry",
            Outcome::Error => "error",
            Outcome::ErrorAfterRetry => "error_after_retry",
        }
    }
}

/// One finished call of a retry site: `resilience_calls_total` and, when it was timed,
/// `resilience_call_duration_seconds`.
pub(crate) fn call_finished(
    site: &'static str,
    policy: Option<&'static str>,
    outcome: Outcome,
    took: Option<Duration>,
) {
    let labels = [
        ("site", site),
        ("policy", policy.unwrap_or("")),
        ("outcome", outcome.label()),
    ];
    metrics::counter!(CALLS, &labels).increment(1);
    if let Some(took) = took {
        metrics::histogram!(CALL_DURATION, &labels).record(took.as_secs_f64());
    }
}

/// A retry site's handles of `resilience_calls_total` and `resilience_call_duration_seconds`,
/// one per outcome: registered with the recorder once, so a timed call costs two atomic
/// updates and no key, lookup or allocation.
pub(crate) struct CallMetrics {
    calls: [metrics::Counter; 4],
    durations: [metrics::Histogram; 4],
}

impl CallMetrics {
    const OUTCOMES: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::OkAfterRetry,
        Outcome::Error,
        Outcome::ErrorAfterRetry,
    ];

    pub(crate) fn new(site: &'static str, policy: Option<&'static str>) -> Self {
        let labels = |outcome: Outcome| {
            [
                ("site", site),
                ("policy", policy.unwrap_or("")),
                ("outcome", outcome.label()),
            ]
        };
        CallMetrics {
            calls: Self::OUTCOMES.map(|outcome| metrics::counter!(CALLS, &labels(outcome))),
            durations: Self::OUTCOMES
                .map(|outcome| metrics::histogram!(CALL_DURATION, &labels(outcome))),
        }
    }

    pub(crate) fn record(&self, outcome: Outcome, took: Duration) {
        let index = outcome as usize;
        self.calls[index].increment(1);
        self.durations[index].record(took.as_secs_f64());
    }
}

impl fmt::Debug for CallMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallMetrics")
    }
}

/// The facts of one failed try, logged by the retry executor.
pub(crate) struct FailedTry<'a> {
    pub(crate) site: &'a SiteCounters,
    pub(crate) attempt: u32,
    pub(crate) error: &'a dyn fmt::Display,
    pub(crate) class: ErrorClass,
}

impl FailedTry<'_> {
    pub(crate) fn retrying(&self, delay: Duration) {
        counters::count_at(self.site, Event::Retry(self.class));
        tracing::warn!(
            target: "resilience::retry",
            site = self.site.name,
            policy = self.site.policy,
            attempt = self.attempt,
            class = %self.class,
            error = %self.error,
            delay_ms = millis(delay),
            "try {} failed; retrying in {}",
            self.attempt,
            Rounded(delay),
        );
        self.count_class(RETRIES);
        metrics::histogram!(RETRY_WAIT, "site" => self.site.name, "policy" => self.site.policy.unwrap_or(""))
            .record(delay.as_secs_f64());
        events::retry(
            self.site.name,
            self.site.policy,
            self.attempt,
            delay,
            self.class,
            self.error,
        );
    }

    pub(crate) fn not_retryable(&self) {
        counters::count_at(self.site, Event::Failed);
        tracing::debug!(
            target: "resilience::retry",
            site = self.site.name,
            policy = self.site.policy,
            attempt = self.attempt,
            class = %self.class,
            error = %self.error,
            "try {} failed; not retryable",
            self.attempt,
        );
    }

    pub(crate) fn gave_up(&self, reason: impl fmt::Display) {
        counters::count_at(self.site, Event::Failed);
        tracing::error!(
            target: "resilience::retry",
            site = self.site.name,
            policy = self.site.policy,
            attempt = self.attempt,
            class = %self.class,
            error = %self.error,
            "giving up: {}",
            reason,
        );
        self.count_class(GIVE_UPS);
    }

    /// A try returned an `Ok` value that `retry_if_ok` retries, and no retry follows
    /// (`reason`): the call returns that value. It succeeded, so it is not counted as failed.
    pub(crate) fn kept_ok(&self, reason: impl fmt::Display) {
        if self.attempt > 1 {
            counters::count_at(self.site, Event::OkAfterRetry);
        }
        tracing::warn!(
            target: "resilience::retry",
            site = self.site.name,
            policy = self.site.policy,
            attempt = self.attempt,
            "returning the last `Ok` value, which `retry_if_ok` retries: {}",
            reason,
        );
    }

    /// The `metrics` counter `name` labelled with the site and the error's class.
    fn count_class(&self, name: &'static str) {
        let (site, policy) = (self.site.name, self.site.policy.unwrap_or(""));
        metrics::counter!(name, "site" => site, "policy" => policy, "class" => self.class.to_string())
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
    metrics::counter!(POLICY_MISSING, "policy" => policy.to_owned()).increment(1);
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

pub(crate) fn rate_limit_rejected(site: &SiteCounters, retry_after: Duration) {
    counted(site, Event::LimiterRejection, LIMIT_REJECTIONS);
    events::rejected(
        site.name,
        site.policy,
        Rejected::RateLimited { retry_after },
    );
    tracing::debug!(
        target: "resilience::rate_limit",
        site = site.name,
        policy = site.policy,
        retry_after_ms = millis(retry_after),
        "rate limited; next permit in {}",
        Rounded(retry_after),
    );
}

/// A call costing more permits than its limiter admits per period (`Rejected::CostTooHigh`):
/// a bug in the caller's cost or in the limit, so a warning.
pub(crate) fn rate_limit_too_costly(site: &SiteCounters, rejected: &Rejected) {
    counted(site, Event::LimiterRejection, LIMIT_REJECTIONS);
    events::rejected(site.name, site.policy, rejected.clone());
    tracing::warn!(
        target: "resilience::rate_limit",
        site = site.name,
        policy = site.policy,
        "{rejected}",
    );
}

pub(crate) fn rate_limit_waited(site: &SiteCounters, wait: Duration) {
    counted(site, Event::LimiterWait, LIMIT_WAITS);
    tracing::trace!(
        target: "resilience::rate_limit",
        site = site.name,
        policy = site.policy,
        wait_ms = millis(wait),
        "waiting {} for a permit",
        Rounded(wait),
    );
    metrics::histogram!(LIMIT_WAIT, "site" => site.name, "policy" => site.policy.unwrap_or(""))
        .record(wait.as_secs_f64());
}

/// A server's 429 reached a limiter: the pace was cut, and maybe every caller held.
pub(crate) fn rate_limit_throttled(
    site: &'static str,
    policy: Option<&'static str>,
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
        site_counter(LIMIT_SLOWDOWNS, site, policy);
    }
    if let Some(pause) = pause {
        quota_spent(site, policy, pause);
    }
}

/// A server said its quota is spent (a long Retry-After, repeated 429s, `Remaining: 0` with a
/// `Reset` past the window): every caller sharing the limiter waits.
fn quota_spent(site: &'static str, policy: Option<&'static str>, pause: Duration) {
    tracing::warn!(
        target: "resilience::rate_limit",
        site,
        policy,
        pause_ms = millis(pause),
        "the server's quota is spent; the limiter admits nothing for {}",
        Rounded(pause),
    );
    site_counter(LIMIT_PAUSES, site, policy);
}

pub(crate) fn bulkhead_full(site: &SiteCounters, waited: Duration) {
    counted(site, Event::BulkheadRejection, BULKHEAD_REJECTIONS);
    events::rejected(site.name, site.policy, Rejected::BulkheadFull);
    tracing::debug!(
        target: "resilience::bulkhead",
        site = site.name,
        policy = site.policy,
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
    metrics::counter!(CONFIG_RELOADS, "outcome" => outcome).increment(1);
    counters::config_reloaded(ok);
}

/// A circuit breaker changed state: its gauge is 1 for `state` and 0 for each other state,
/// so `resilience_breaker_state{state="open"} == 1` selects the open breakers.
pub(crate) fn breaker_transition(breaker: &str, state: BreakerState) {
    let name = state.name();
    if state == BreakerState::Open {
        tracing::warn!(target: "resilience::breaker", breaker, state = name, "circuit breaker `{breaker}` opened");
    } else {
        tracing::info!(target: "resilience::breaker", breaker, state = name, "circuit breaker `{breaker}` is {name}");
    }
    for &each in BreakerState::NAMES {
        let value = if each == name { 1.0 } else { 0.0 };
        metrics::gauge!(BREAKER_STATE, "breaker" => breaker.to_owned(), "state" => each).set(value);
    }
    metrics::counter!(BREAKER_TRANSITIONS, "breaker" => breaker.to_owned(), "to" => name)
        .increment(1);
    events::state_change(breaker, state);
}

/// An open breaker refused a call.
pub(crate) fn circuit_refused(site: &SiteCounters, retry_after: Duration) {
    counted(site, Event::BreakerRefusal, BREAKER_REFUSED);
    events::rejected(
        site.name,
        site.policy,
        Rejected::CircuitOpen { retry_after },
    );
    let (site, policy) = (site.name, site.policy);
    tracing::debug!(
        target: "resilience::breaker",
        site,
        policy,
        retry_after_ms = millis(retry_after),
        "circuit open: `{site}` refused without calling",
    );
}

/// A call ran past its time limit and was dropped.
pub(crate) fn timed_out(site: &SiteCounters, after: Duration) {
    counted(site, Event::Timeout, TIMEOUTS);
    events::rejected(site.name, site.policy, Rejected::Timeout { after });
    let (site, policy) = (site.name, site.policy);
    tracing::warn!(
        target: "resilience::timeout",
        site,
        policy,
        after_ms = millis(after),
        "`{site}` timed out after {}",
        Rounded(after),
    );
}

/// A window for people: `5m`, `1h`, `90s`.
pub(crate) fn span(window: Duration) -> String {
    let secs = window.as_secs();
    match secs {
        0 => format!("{}", Rounded(window)),
        _ if secs % 3600 == 0 => format!("{}h", secs / 3600),
        _ if secs % 60 == 0 => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}

/// A rate for people: `20%`, `19.6%`.
pub(crate) fn percent(rate: f64) -> String {
    let percent = (rate * 1000.0).round() / 10.0;
    if percent.fract() == 0.0 {
        format!("{percent:.0}%")
    } else {
        format!("{percent:.1}%")
    }
}

/// A server's quota headers changed a named limiter.
pub(crate) fn rate_limit_learned(
    site: &'static str,
    policy: Option<&'static str>,
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
        site_counter(LIMIT_LEARNED, site, policy);
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
    metrics::counter!(crate::families::BACKEND_ERRORS, "policy" => policy.to_owned(), "fallback" => fallback)
        .increment(1);
}
