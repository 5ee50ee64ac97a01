//! [`RetryBudgetSpec`]: a retry budget's values as plain data, and [`RetryBudgetPatch`], a
//! partial override (a policy's `retry_budget` section).

use std::time::Duration;

use crate::declare::patch;

/// A retry budget: over the last `window`, retries may number at most
/// `min_per_second * window + ratio * calls`, where `calls` counts the calls (first tries) of
/// the sites drawing on it. When a dependency fails hard, every caller retrying multiplies its
/// load; a budget caps that multiplication at `1 + ratio` (tower's `TpsBudget`, Finagle's
/// `RetryBudget` and Envoy's `retry_budget` work the same way), while `min_per_second` keeps
/// retries possible at low traffic.
///
/// ```
/// # use resilience_config as resilience;
/// use std::time::Duration;
/// use resilience::retry_budget::RetryBudgetSpec;
///
/// let spec = RetryBudgetSpec::DEFAULT;
/// assert_eq!((spec.ratio, spec.min_per_second, spec.window), (0.2, 10, Duration::from_secs(10)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryBudgetSpec {
    /// Retries allowed per call in the window (0.0..=1.0).
    pub ratio: f64,
    /// Retries allowed each second whatever the traffic.
    pub min_per_second: u32,
    /// The window the calls and retries are counted over.
    pub window: Duration,
}

impl RetryBudgetSpec {
    /// `ratio: 0.2, min_per_second: 10, window: 10s`: tower's `TpsBudget` defaults.
    pub const DEFAULT: RetryBudgetSpec = RetryBudgetSpec {
        ratio: 0.2,
        min_per_second: 10,
        window: Duration::from_secs(10),
    };
}

impl Default for RetryBudgetSpec {
    fn default() -> Self {
        RetryBudgetSpec::DEFAULT
    }
}

patch! {
    /// A partial [`RetryBudgetSpec`]: the fields a policy's `retry_budget` section sets.
    RetryBudgetPatch for RetryBudgetSpec {
    }
    with setters {
        /// Overrides `ratio`.
        ratio: f64,
        /// Overrides `min_per_second`.
        min_per_second: u32,
        /// Overrides `window`.
        window: Duration,
    }
}

impl RetryBudgetPatch {
    /// `spec` with every field this patch sets replaced.
    pub fn apply(&self, mut spec: RetryBudgetSpec) -> RetryBudgetSpec {
        self.set(&mut spec);
        spec
    }
}
