//! [`BreakerSpec`]: a circuit breaker's values as plain data, and [`BreakerPatch`], a partial
//! override.

use std::time::Duration;

use crate::InvalidValue;
use crate::declare::patch;
use crate::rules;

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

    /// Checks the rules the macro and YAML front ends enforce: `failure_rate` in 0.0..=1.0,
    /// counts at least 1, `open_for` longer than zero.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        rules::check_fraction("failure_rate", self.failure_rate)?;
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
        /// Overrides `open_for`.
        open_for: Duration,
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
