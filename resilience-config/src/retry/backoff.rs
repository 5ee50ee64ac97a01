//! [`Backoff`]: how the delay grows from one retry to the next.

use std::time::Duration;

/// The shape of the delay before the n-th retry (n = 1 for the first retry), before jitter:
///
/// | kind | delay |
/// |---|---|
/// | `Exponential` (`"exp"`) | `base * factor^(n-1)` |
/// | `Linear` (`"linear"`) | `base * n` |
/// | `Constant` (`"constant"`) | `base` |
///
/// Every delay is capped at `max_delay`; overflow saturates to the cap instead of panicking.
/// A `factor` the rules refuse (see [`RetrySpec::validate`](crate::retry::RetrySpec::validate)) is
/// read as the nearest allowed one: below 1.0 (negative included) as 1.0, above 1e6 (infinity
/// included) as 1e6, and NaN as the default 2.0, so that a bad factor never turns every sleep
/// into `max_delay`.
///
/// ```
/// # use resilience_config as resilience;
/// use std::time::Duration;
/// use resilience::retry::Backoff;
///
/// let ms = Duration::from_millis;
/// let delays: Vec<_> = (1..=5)
///     .map(|n| Backoff::Exponential.delay(ms(100), 2.0, n, ms(1000)))
///     .collect();
/// assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800), ms(1000)]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backoff {
    /// `base * factor^(n-1)`.
    #[default]
    Exponential,
    /// `base * n`.
    Linear,
    /// `base` every time.
    Constant,
}

impl Backoff {
    /// Parses the macro / YAML name: `"exp"`, `"linear"` or `"constant"`.
    pub fn from_name(name: &str) -> Option<Backoff> {
        match name {
            "exp" => Some(Backoff::Exponential),
            "linear" => Some(Backoff::Linear),
            "constant" => Some(Backoff::Constant),
            _ => None,
        }
    }

    /// The macro / YAML name of this kind.
    pub const fn name(self) -> &'static str {
        match self {
            Backoff::Exponential => "exp",
            Backoff::Linear => "linear",
            Backoff::Constant => "constant",
        }
    }

    /// The delay before retry number `retry` (1-based), capped at `max_delay`.
    pub fn delay(self, base: Duration, factor: f64, retry: u32, max_delay: Duration) -> Duration {
        let retry = retry.max(1);
        let raw = match self {
            Backoff::Constant => base,
            Backoff::Linear => base.checked_mul(retry).unwrap_or(Duration::MAX),
            Backoff::Exponential => {
                let factor = allowed_factor(factor);
                let exponent = i32::try_from(retry - 1).unwrap_or(i32::MAX);
                let nanos = base.as_nanos() as f64 * factor.powi(exponent);
                if nanos.is_finite() && nanos < max_delay.as_nanos() as f64 {
                    nanos_to_duration(nanos.round())
                } else {
                    max_delay
                }
            }
        };
        raw.min(max_delay)
    }
}

/// `factor` within the rule's range (`rules::check_factor`): the nearest bound, or the default
/// for NaN.
pub(crate) fn allowed_factor(factor: f64) -> f64 {
    if factor.is_nan() {
        super::RetrySpec::DEFAULT.factor
    } else {
        factor.clamp(1.0, 1e6)
    }
}

/// A float number of nanoseconds as a `Duration`, saturating (NaN and negatives are zero).
pub(crate) fn nanos_to_duration(nanos: f64) -> Duration {
    if nanos.is_nan() || nanos <= 0.0 {
        Duration::ZERO
    } else if nanos >= u64::MAX as f64 {
        Duration::from_nanos(u64::MAX)
    } else {
        Duration::from_nanos(nanos as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn each_kind() {
        let cap = Duration::from_secs(10);
        let take = |kind: Backoff, factor| {
            (1..=6)
                .map(|n| kind.delay(MS(100), factor, n, cap))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            take(Backoff::Exponential, 2.0),
            [MS(100), MS(200), MS(400), MS(800), MS(1600), MS(3200)]
        );
        assert_eq!(
            take(Backoff::Exponential, 1.5),
            [
                MS(100),
                MS(150),
                MS(225),
                Duration::from_micros(337_500),
                Duration::from_micros(506_250),
                Duration::from_nanos(759_375_000)
            ]
        );
        assert_eq!(
            take(Backoff::Linear, 2.0),
            [MS(100), MS(200), MS(300), MS(400), MS(500), MS(600)]
        );
        assert_eq!(take(Backoff::Constant, 2.0), [MS(100); 6]);
    }

    #[test]
    fn caps_and_saturates() {
        let cap = MS(250);
        assert_eq!(Backoff::Exponential.delay(MS(100), 2.0, 3, cap), cap);
        assert_eq!(Backoff::Exponential.delay(MS(100), 2.0, u32::MAX, cap), cap);
        assert_eq!(
            Backoff::Linear.delay(Duration::MAX, 2.0, u32::MAX, cap),
            cap
        );
        assert_eq!(Backoff::Constant.delay(Duration::MAX, 2.0, 1, cap), cap);
        assert_eq!(
            Backoff::Exponential.delay(Duration::MAX, 1e6, 9, Duration::MAX),
            Duration::MAX
        );
        assert_eq!(
            Backoff::Exponential.delay(Duration::ZERO, 2.0, 40, cap),
            Duration::ZERO
        );
    }

    /// A NaN factor made every sleep `max_delay`; a negative one made every other sleep zero.
    #[test]
    fn a_factor_the_rules_refuse_is_read_as_the_nearest_allowed_one() {
        let cap = Duration::from_secs(10);
        let take = |factor| {
            (1..=4)
                .map(|n| Backoff::Exponential.delay(MS(100), factor, n, cap))
                .collect::<Vec<_>>()
        };
        assert_eq!(take(f64::NAN), [MS(100), MS(200), MS(400), MS(800)]);
        assert_eq!(take(-2.0), [MS(100); 4]);
        assert_eq!(take(0.5), [MS(100); 4]);
        assert_eq!(take(f64::NEG_INFINITY), [MS(100); 4]);
        assert_eq!(take(f64::INFINITY), [MS(100), cap, cap, cap]);
    }

    #[test]
    fn names_round_trip() {
        for kind in [Backoff::Exponential, Backoff::Linear, Backoff::Constant] {
            assert_eq!(Backoff::from_name(kind.name()), Some(kind));
        }
        assert_eq!(Backoff::from_name("expo"), None);
    }
}
