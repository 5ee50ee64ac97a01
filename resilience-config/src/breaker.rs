//! [`BreakerSpec`]: a circuit breaker's values as plain data, and [`BreakerPatch`], a partial
//! override.

use std::time::Duration;

use crate::InvalidValue;
use crate::declare::patch;
use crate::rules;

/// What a breaker's `window` counts: the last `window` calls, or the calls of the last
/// `window` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WindowType {
    /// The last `window` calls (resilience4j's `COUNT_BASED`).
    #[default]
    Count,
    /// The calls of the last `window` seconds, in one-second buckets (resilience4j's
    /// `TIME_BASED`): a call leaves the window `window` seconds after the start of the second
    /// it was recorded in.
    Time,
}

impl WindowType {
    /// Parses the macro / YAML name: `"count"` or `"time"`.
    pub fn from_name(name: &str) -> Option<WindowType> {
        match name {
            "count" => Some(WindowType::Count),
            "time" => Some(WindowType::Time),
            _ => None,
        }
    }

    /// The macro / YAML name of this kind.
    pub const fn name(self) -> &'static str {
        match self {
            WindowType::Count => "count",
            WindowType::Time => "time",
        }
    }
}

/// A circuit breaker's values: the keys of `#[circuit_breaker]` and of a policy's
/// `circuit_breaker` section.
///
/// ```
/// # use resilience_config as resilience;
/// use std::time::Duration;
/// use resilience::breaker::BreakerSpec;
///
/// let spec = BreakerSpec::DEFAULT.failure_rate(0.25).open_for(Duration::from_secs(10));
/// assert_eq!((spec.min_calls, spec.window, spec.half_open_calls), (10, 20, 3));
/// assert!(spec.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BreakerSpec {
    /// Opens when failures / recorded calls reaches this (0.0..=1.0).
    pub failure_rate: f64,
    /// ... and at least this many of the last `window` calls were recorded.
    pub min_calls: u32,
    /// The number of most recent calls the rate is computed over, or with
    /// [`WindowType::Time`] the number of seconds.
    pub window: u32,
    /// Whether `window` counts calls or seconds.
    pub window_type: WindowType,
    /// How long it stays open before letting trial calls through (the first time; see
    /// `backoff`).
    pub open_for: Duration,
    /// Each time a failed trial opens it again, it stays open `backoff` times longer than the
    /// time before (1.0: always `open_for`), up to `max_open_for`; closing starts again at
    /// `open_for`.
    pub backoff: f64,
    /// The longest it stays open when `backoff` grows the time (`None`: no cap).
    pub max_open_for: Option<Duration>,
    /// A call that takes longer than this is slow (`None`: no call is).
    pub slow_call: Option<Duration>,
    /// Opens when slow calls / recorded calls reaches this (0.0..=1.0), with `min_calls`
    /// recorded, as `failure_rate` does for failures.
    pub slow_call_rate: f64,
    /// The trial calls let through when half-open; all must succeed to close.
    pub half_open_calls: u32,
    /// `false`: every call goes through and nothing is recorded (see [`OFF`](Self::OFF)).
    pub enabled: bool,
}

impl BreakerSpec {
    /// `failure_rate = 0.5, min_calls = 10, window = 20, window_type = "count", open_for =
    /// "30s", backoff = 1.0, no max_open_for, no slow_call, slow_call_rate = 1.0,
    /// half_open_calls = 3`.
    pub const DEFAULT: BreakerSpec = BreakerSpec {
        failure_rate: 0.5,
        min_calls: 10,
        window: 20,
        window_type: WindowType::Count,
        open_for: Duration::from_secs(30),
        backoff: 1.0,
        max_open_for: None,
        slow_call: None,
        slow_call_rate: 1.0,
        half_open_calls: 3,
        enabled: true,
    };

    /// No breaker until a named policy's `circuit_breaker` section applies (over
    /// [`DEFAULT`](Self::DEFAULT)): what `#[resilient(policy = ...)]` uses when its attribute
    /// gives no `circuit_breaker(...)`.
    pub const OFF: BreakerSpec = BreakerSpec {
        enabled: false,
        ..BreakerSpec::DEFAULT
    };

    /// Checks the rules the macro and YAML front ends enforce: `failure_rate` in 0.0..=1.0,
    /// counts at least 1, `open_for` longer than zero, `backoff` in 1.0..=1000000.0,
    /// `max_open_for` at least `open_for`, `slow_call` longer than zero, `slow_call_rate` in
    /// 0.0..=1.0.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        rules::check_fraction("failure_rate", self.failure_rate)?;
        rules::check_fraction("slow_call_rate", self.slow_call_rate)?;
        rules::check_growth("backoff", self.backoff)?;
        if self.slow_call.is_some_and(|slow| slow.is_zero()) {
            return Err("`slow_call` must be longer than zero".to_string().into());
        }
        if let Some(max) = self.max_open_for {
            rules::check_max_open_for(self.open_for, max)?;
        }
        rules::check_count("min_calls", u64::from(self.min_calls))?;
        rules::check_count("window", u64::from(self.window))?;
        rules::check_count("half_open_calls", u64::from(self.half_open_calls))?;
        if self.open_for.is_zero() {
            return Err("`open_for` must be longer than zero".to_string().into());
        }
        Ok(())
    }
}

impl Default for BreakerSpec {
    fn default() -> Self {
        BreakerSpec::DEFAULT
    }
}

patch! {
    /// A partial [`BreakerSpec`]: the fields a named policy sets (a policy's
    /// `circuit_breaker` section).
    BreakerPatch for BreakerSpec {
    }
    with setters {
        /// Overrides `failure_rate`.
        failure_rate: f64,
        /// Overrides `min_calls`.
        min_calls: u32,
        /// Overrides `window`.
        window: u32,
        /// Overrides `window_type`.
        window_type: WindowType,
        /// Overrides `open_for`.
        open_for: Duration,
        /// Overrides `backoff`.
        backoff: f64,
        /// Overrides `max_open_for` (`Some(None)` removes an inline cap).
        max_open_for: Option<Duration>,
        /// Overrides `slow_call` (`Some(None)` removes an inline one).
        slow_call: Option<Duration>,
        /// Overrides `slow_call_rate`.
        slow_call_rate: f64,
        /// Overrides `half_open_calls`.
        half_open_calls: u32,
    }
}

impl BreakerPatch {
    /// `spec` with every field this patch sets replaced; a section turns the breaker on
    /// (over [`BreakerSpec::OFF`]).
    pub fn apply(&self, mut spec: BreakerSpec) -> BreakerSpec {
        spec.enabled = true;
        self.set(&mut spec);
        spec
    }
}
