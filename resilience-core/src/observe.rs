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
            policy = self.policy.unwrap_or(""),
            attempt = self.attempt,
            error = %self.error,
            class = %self.class,
            delay_ms = delay.as_secs_f64() * 1000.0,
            "try {} failed ({}); retrying in {:?}",
            self.attempt,
            self.class,
            delay,
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
            policy = self.policy.unwrap_or(""),
            attempt = self.attempt,
            error = %self.error,
            class = %self.class,
            "try {} failed ({}); not retryable",
            self.attempt,
            self.class,
        );
    }

    pub(crate) fn gave_up(&self, reason: GiveUp) {
        tracing::error!(
            target: "resilience::retry",
            site = self.site,
            policy = self.policy.unwrap_or(""),
            attempt = self.attempt,
            error = %self.error,
            class = %self.class,
            reason = %reason,
            "giving up after try {}: {}",
            self.attempt,
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
