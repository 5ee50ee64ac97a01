//! [`RetrySpec`], a retry policy as plain data, and [`RetryPatch`], a partial override of it.

use std::time::Duration;

use super::{Backoff, Jitter, RetryOn};
use crate::InvalidValue;
use crate::declare::patch;
use crate::rules;

/// A retry policy as plain data: what `#[retry(...)]` builds at compile time and what a YAML
/// policy's `retry` section overrides.
///
/// Its setters are `const fn`, so a policy can live in a `static`. Values are kept as given;
/// the executor reads `attempts` 0 as 1, clamps a jitter fraction to `0.0..=1.0` and a
/// `factor` to `1.0..=1e6` (NaN as 2.0), and the macro and YAML front ends refuse such values
/// before they get here (see [`RetrySpec::validate`]).
///
/// ```
/// # use resilience_config as resilience;
/// use std::time::Duration;
/// use resilience::retry::{Backoff, Jitter, RetrySpec};
///
/// const SPEC: RetrySpec = RetrySpec::DEFAULT
///     .attempts(5)
///     .backoff(Backoff::Linear)
///     .base(Duration::from_millis(250))
///     .jitter(Jitter::Full);
/// assert_eq!(SPEC.attempts, 5);
/// assert_eq!(SPEC.max_delay, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetrySpec {
    /// Total tries, the first included (>= 1). Default 3.
    pub attempts: u32,
    /// How delays grow. Default exponential.
    pub backoff: Backoff,
    /// The first delay. Default 100 ms.
    pub base: Duration,
    /// Growth per retry for exponential backoff. Default 2.0.
    pub factor: f64,
    /// Cap on one sleep. Default 10 s.
    pub max_delay: Duration,
    /// Give up when the next sleep would end past this much time since the first try started.
    /// Default none.
    pub max_elapsed: Option<Duration>,
    /// Randomisation of each sleep. Default none.
    pub jitter: Jitter,
    /// Which error classes are retried. Default [`RetryOn::TRANSIENT`].
    pub on: RetryOn,
    /// Honour a server's Retry-After: wait exactly that long, or give up at once when it is
    /// longer than `max_delay`. Default true.
    pub retry_after: bool,
}

impl RetrySpec {
    /// The contract's defaults: 3 attempts, exponential from 100 ms by 2.0, capped at 10 s,
    /// no jitter, retry on Transient, honour Retry-After.
    pub const DEFAULT: RetrySpec = RetrySpec {
        attempts: 3,
        backoff: Backoff::Exponential,
        base: Duration::from_millis(100),
        factor: 2.0,
        max_delay: Duration::from_secs(10),
        max_elapsed: None,
        jitter: Jitter::None,
        on: RetryOn::TRANSIENT,
        retry_after: true,
    };

    /// Retries nothing, and reports nothing, until a named policy's `retry` section applies
    /// (over [`DEFAULT`](Self::DEFAULT)): what `#[resilient(policy = ...)]` uses when its
    /// attribute gives no `retry(...)`. Marked by `attempts = 0`.
    pub const OFF: RetrySpec = RetrySpec::DEFAULT.attempts(0);

    /// Checks every value against the rules the macro and YAML front ends enforce
    /// (`attempts >= 1`, `jitter` in 0.0..=1.0, `factor` in 1.0..=1e6).
    ///
    /// ```
    /// # use resilience_config as resilience;
    /// use resilience::retry::{Jitter, RetrySpec};
    ///
    /// assert!(RetrySpec::DEFAULT.validate().is_ok());
    /// let err = RetrySpec::DEFAULT.jitter(Jitter::Fraction(1.5)).validate().unwrap_err();
    /// assert_eq!(err, "`jitter` must be between 0.0 and 1.0, found 1.5");
    /// ```
    pub fn validate(&self) -> Result<(), InvalidValue> {
        rules::check_attempts(u64::from(self.attempts))?;
        rules::check_factor(self.factor)?;
        if let Jitter::Fraction(j) = self.jitter {
            rules::check_jitter(j)?;
        }
        Ok(())
    }
}

impl Default for RetrySpec {
    fn default() -> Self {
        RetrySpec::DEFAULT
    }
}

patch! {
    /// A partial [`RetrySpec`]: the fields a named policy sets (a policy's `retry` section).
    /// Applied over a site's inline values field by field; `None` keeps the inline value.
    RetryPatch for RetrySpec {
    }
    with setters {
        /// Overrides `attempts`.
        attempts: u32,
        /// Overrides `backoff`.
        backoff: Backoff,
        /// Overrides `base`.
        base: Duration,
        /// Overrides `factor`.
        factor: f64,
        /// Overrides `max_delay`.
        max_delay: Duration,
        /// Overrides `max_elapsed` (`Some(None)` removes an inline limit).
        max_elapsed: Option<Duration>,
        /// Overrides `jitter`.
        jitter: Jitter,
        /// Overrides `on`.
        on: RetryOn,
        /// Overrides `retry_after`.
        retry_after: bool,
    }
}

impl RetryPatch {
    /// `spec` with every field this patch sets replaced.
    ///
    /// ```
    /// # use resilience_config as resilience;
    /// use resilience::retry::{RetryPatch, RetrySpec};
    ///
    /// let patch = RetryPatch { attempts: Some(5), ..RetryPatch::default() };
    /// let spec = patch.apply(RetrySpec::DEFAULT.attempts(2).factor(3.0));
    /// assert_eq!((spec.attempts, spec.factor), (5, 3.0));
    /// ```
    pub fn apply(&self, mut spec: RetrySpec) -> RetrySpec {
        self.set(&mut spec);
        spec
    }
}
