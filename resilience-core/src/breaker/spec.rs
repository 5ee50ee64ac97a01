//! [`BreakerSpec`]: a circuit breaker's values as plain data.

use std::time::Duration;

/// A circuit breaker's values: the keys of `#[circuit_breaker]` and of a policy's
/// `circuit_breaker` section.
///
/// ```
/// use std::time::Duration;
/// use resilience_core::breaker::BreakerSpec;
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
    /// The number of most recent calls the rate is computed over.
    pub window: u32,
    /// How long it stays open before letting trial calls through.
    pub open_for: Duration,
    /// The trial calls let through when half-open; all must succeed to close.
    pub half_open_calls: u32,
    /// `false`: every call goes through and nothing is recorded (see [`OFF`](Self::OFF)).
    pub enabled: bool,
}

impl BreakerSpec {
    /// `failure_rate = 0.5, min_calls = 10, window = 20, open_for = "30s", half_open_calls = 3`.
    pub const DEFAULT: BreakerSpec = BreakerSpec {
        failure_rate: 0.5,
        min_calls: 10,
        window: 20,
        open_for: Duration::from_secs(30),
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

    /// Sets `failure_rate`.
    pub const fn failure_rate(mut self, failure_rate: f64) -> Self {
        self.failure_rate = failure_rate;
        self
    }

    /// Sets `min_calls`.
    pub const fn min_calls(mut self, min_calls: u32) -> Self {
        self.min_calls = min_calls;
        self
    }

    /// Sets `window`.
    pub const fn window(mut self, window: u32) -> Self {
        self.window = window;
        self
    }

    /// Sets `open_for`.
    pub const fn open_for(mut self, open_for: Duration) -> Self {
        self.open_for = open_for;
        self
    }

    /// Sets `half_open_calls`.
    pub const fn half_open_calls(mut self, half_open_calls: u32) -> Self {
        self.half_open_calls = half_open_calls;
        self
    }

    /// Checks the rules the macro and YAML front ends enforce: `failure_rate` in 0.0..=1.0,
    /// counts at least 1, `open_for` longer than zero.
    pub fn validate(&self) -> Result<(), String> {
        crate::rules::check_fraction("failure_rate", self.failure_rate)?;
        crate::rules::check_count("min_calls", u64::from(self.min_calls))?;
        crate::rules::check_count("window", u64::from(self.window))?;
        crate::rules::check_count("half_open_calls", u64::from(self.half_open_calls))?;
        if self.open_for.is_zero() {
            return Err("`open_for` must be longer than zero".to_string());
        }
        Ok(())
    }

    /// The values with each field `doc` sets replaced (a named policy over inline values); a
    /// section turns the breaker on.
    pub fn patched(mut self, doc: &resilience_config::CircuitBreakerDoc) -> Self {
        self.enabled = true;
        if let Some(v) = doc.failure_rate {
            self.failure_rate = v;
        }
        if let Some(v) = doc.min_calls {
            self.min_calls = v;
        }
        if let Some(v) = doc.window {
            self.window = v;
        }
        if let Some(v) = doc.open_for {
            self.open_for = v;
        }
        if let Some(v) = doc.half_open_calls {
            self.half_open_calls = v;
        }
        self
    }
}

impl Default for BreakerSpec {
    fn default() -> Self {
        BreakerSpec::DEFAULT
    }
}
