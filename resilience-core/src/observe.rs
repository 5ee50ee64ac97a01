//! Observability: one `tracing` event and one `metrics` counter per retry, give-up and
//! configuration problem. Nothing here runs on a call that succeeds the first time.

use std::fmt;
use std::time::Duration;

use crate::classify::ErrorClass;
use crate::retry::GiveUp;

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
        tracing::warn!(
            target: "resilience::retry",
            site = self.site,
            policy = self.policy,
            attempt = self.attempt,
            class = %self.class,
            error = %self.error,
            delay_ms = u64::try_from((delay.as_micros() + 500) / 1000).unwrap_or(u64::MAX),
            "try {} failed; retrying in {}",
            self.attempt,
            Rounded(delay),
        );
        metrics::counter!(
            "resilience_retries_total",
            "site" => self.site.to_owned(),
            "class" => self.class.to_string(),
        )
        .increment(1);
    }

    pub(crate) fn not_retryable(&self) {
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

    pub(crate) fn gave_up(&self, reason: GiveUp) {
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
        metrics::counter!(
            "resilience_retry_give_ups_total",
            "site" => self.site.to_owned(),
            "class" => self.class.to_string(),
        )
        .increment(1);
    }
}

pub(crate) fn policy_missing(site: &str, policy: &str) {
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
