//! What each event says. The breaker's state and the alert are defined here, below the
//! `breaker` and `alert` modules that emit them (imports point down), and re-exported at
//! their usual paths (`resilience::breaker::BreakerState`, `resilience::Alert`).

use std::fmt;
use std::time::Duration;

use crate::error_class::ErrorClass;
use crate::rejected::Rejected;

/// One thing a policy did, as listeners of [`events()`](super::events()) hear it.
///
/// Matching on it needs a `_` arm: kinds may be added.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A try failed with a retryable error; the call sleeps `delay`, then tries again.
    Retry(&'a RetryEvent<'a>),
    /// A circuit breaker changed state.
    StateChange(&'a StateChange<'a>),
    /// A policy refused a call (or, for a timeout, dropped it).
    Rejected(&'a RejectionEvent<'a>),
    /// A policy's `alert` fired or cleared.
    Alert(&'a Alert),
}

/// A retry: try `attempt` failed and the next one starts after `delay`.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// The retrying site (`module::function` for a macro, the site name of a pipeline).
    pub site: &'a str,
    /// The policy the site names, if any.
    pub policy: Option<&'a str>,
    /// The try that failed, the first being 1.
    pub attempt: u32,
    /// The sleep before the next try (the server's Retry-After when it gave one).
    pub delay: Duration,
    /// What the error was classified as.
    pub class: ErrorClass,
    /// The error, as the logs show it.
    pub error: &'a dyn fmt::Display,
}

impl fmt::Debug for RetryEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryEvent")
            .field("site", &self.site)
            .field("policy", &self.policy)
            .field("attempt", &self.attempt)
            .field("delay", &self.delay)
            .field("class", &self.class)
            .field("error", &format_args!("{}", self.error))
            .finish()
    }
}

/// A circuit breaker moved to `state`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct StateChange<'a> {
    /// The breaker: the policy's name for a shared breaker, else the site's.
    pub breaker: &'a str,
    /// The state it is in now.
    pub state: BreakerState,
}

/// A call refused by a policy, with the error the caller gets.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RejectionEvent<'a> {
    /// The refusing site.
    pub site: &'a str,
    /// The policy the site names, if any.
    pub policy: Option<&'a str>,
    /// Why: rate limited, circuit open, bulkhead full, timeout, or a cost too high.
    pub rejected: Rejected,
}

/// Where a breaker is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; outcomes are recorded.
    Closed,
    /// Calls are refused without calling the function.
    Open,
    /// A few trial calls go through; the others are refused.
    HalfOpen,
    /// Switched off ([`BreakerSpec::OFF`](crate::breaker::BreakerSpec::OFF)): every call goes
    /// through, nothing is recorded.
    Disabled,
}

impl BreakerState {
    /// The state as one number: 0 closed, 1 open, 2 half-open, -1 disabled. (The
    /// `resilience_breaker_state` gauge is labelled by state instead: `state="open"` is 1
    /// while open, and the other states' series 0.)
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open => 1.0,
            BreakerState::HalfOpen => 2.0,
            BreakerState::Disabled => -1.0,
        }
    }

    /// Every state's `state` label, in the `resilience_breaker_state` gauge.
    pub(crate) const NAMES: &[&'static str] = &["closed", "open", "half_open", "disabled"];

    /// The state's `state` label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Disabled => "disabled",
        }
    }
}

/// Which condition of a policy's `alert` changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AlertKind {
    /// `retry_rate`: the share of calls that needed a retry.
    RetryRate,
    /// `failure_rate`: the share of calls that returned an error.
    FailureRate,
    /// `slow_call`: a call retried (first failure to answer) for longer than this.
    SlowCall,
}

impl AlertKind {
    pub(crate) const ALL: [AlertKind; 3] = [
        AlertKind::RetryRate,
        AlertKind::FailureRate,
        AlertKind::SlowCall,
    ];

    /// The condition's YAML key, also its `alert` label in metrics.
    pub fn key(self) -> &'static str {
        match self {
            AlertKind::RetryRate => "retry_rate",
            AlertKind::FailureRate => "failure_rate",
            AlertKind::SlowCall => "slow_call",
        }
    }
}

/// One alert fired or cleared, as [`on_alert`](crate::on_alert) hooks see it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Alert {
    /// The policy whose `alert` it is.
    pub policy: String,
    /// The site whose calls it judged, when it watched one site naming no policy (the
    /// `default` policy's alert); `None` for a policy's calls.
    pub site: Option<String>,
    /// Which condition.
    pub kind: AlertKind,
    /// `true`: it fired; `false`: it cleared.
    pub firing: bool,
    /// What was measured over the window: a rate (0.0 to 1.0), or the slowest call's
    /// retrying in seconds. `None` when it cleared without a measure: too few calls left in
    /// the window, or the condition removed from the policy.
    pub value: Option<f64>,
    /// The condition's threshold, in the value's unit (`None` when removed).
    pub threshold: Option<f64>,
    /// The alert's window.
    pub window: Duration,
}
