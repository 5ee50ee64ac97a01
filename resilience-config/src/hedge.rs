//! [`HedgeSpec`]: hedging as plain data, and [`HedgePatch`], a partial override (a policy's
//! `hedge` section).

use std::time::Duration;

use crate::declare::patch;

/// When a hedge is sent: a fixed delay, or a percentile of the site's observed latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HedgeAfter {
    /// `after = "100ms"`: this long after the previous attempt started.
    Delay(Duration),
    /// `after = "p95"`: the site's 95th-percentile latency, from its recent calls.
    Percentile(u8),
}

impl HedgeAfter {
    /// Reads `"p50"` ..= `"p99"`; anything else is not a percentile (it may be a duration).
    pub fn percentile(text: &str) -> Option<HedgeAfter> {
        let digits = text.strip_prefix('p')?;
        if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: u8 = digits.parse().ok()?;
        (50..=99)
            .contains(&value)
            .then_some(HedgeAfter::Percentile(value))
    }
}

/// Hedging: send the call again when the attempts in flight have not answered `after`; the
/// first `Ok` wins and the others are dropped (cancelled). At most `max` attempts at once,
/// the first included.
///
/// ```
/// # use resilience_config as resilience;
/// use resilience::hedge::{HedgeAfter, HedgeSpec};
///
/// assert_eq!(HedgeSpec::DEFAULT.after, HedgeAfter::Percentile(95));
/// assert_eq!(HedgeSpec::DEFAULT.max, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct HedgeSpec {
    /// When each further attempt is sent.
    pub after: HedgeAfter,
    /// Attempts in flight at most, the first included (1: no hedging).
    pub max: u32,
}

impl HedgeSpec {
    /// `after = "p95", max = 2`: one hedge, once the call has taken longer than 95% of the
    /// site's recent calls.
    pub const DEFAULT: HedgeSpec = HedgeSpec {
        after: HedgeAfter::Percentile(95),
        max: 2,
    };

    /// The most attempts at once `max` may ask for.
    pub const MAX_ATTEMPTS: u32 = 10;
}

patch! {
    /// A partial [`HedgeSpec`]: the fields a policy's `hedge` section sets.
    #[derive(Eq)]
    HedgePatch for HedgeSpec {
    }
    with setters {
        /// Overrides `after`.
        after: HedgeAfter,
        /// Overrides `max`.
        max: u32,
    }
}

impl HedgePatch {
    /// `spec` with every field this patch sets replaced.
    pub fn apply(&self, mut spec: HedgeSpec) -> HedgeSpec {
        self.set(&mut spec);
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_p50_to_p99() {
        assert_eq!(
            HedgeAfter::percentile("p95"),
            Some(HedgeAfter::Percentile(95))
        );
        assert_eq!(
            HedgeAfter::percentile("p50"),
            Some(HedgeAfter::Percentile(50))
        );
        for text in ["p49", "p100", "p", "p9x", "95", "p+9", "100ms"] {
            assert_eq!(HedgeAfter::percentile(text), None, "{text}");
        }
    }
}
