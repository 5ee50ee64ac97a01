//! [`Jitter`]: randomising each sleep so that many clients do not retry in lockstep.

use std::time::Duration;

/// How each backoff delay `d` is randomised (then capped at `max_delay`):
///
/// | jitter | sleep |
/// |---|---|
/// | `None` (`jitter = 0.0`) | `d` exactly |
/// | `Fraction(j)` (`jitter = 0.2`) | uniform in `[d*(1-j), d*(1+j)]` |
/// | `Full` (`"full"`) | uniform in `[0, d]` |
/// | `Equal` (`"equal"`) | `d/2` + uniform in `[0, d/2]` |
/// | `Decorrelated` (`"decorrelated"`) | uniform in `[base, 3 * previous sleep]` (the first previous sleep is `base`); the backoff kind is not used |
///
/// `Full`, `Equal` and `Decorrelated` are the three strategies of the AWS Architecture Blog's
/// "Exponential Backoff and Jitter".
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Jitter {
    /// No randomisation.
    #[default]
    None,
    /// A fraction `j` in `0.0..=1.0`: uniform in `[d*(1-j), d*(1+j)]`.
    Fraction(f64),
    /// Uniform in `[0, d]`.
    Full,
    /// `d/2` plus uniform in `[0, d/2]`.
    Equal,
    /// Uniform in `[base, 3 * previous sleep]`.
    Decorrelated,
}

impl Jitter {
    /// Parses the macro / YAML name: `"full"`, `"equal"` or `"decorrelated"`.
    pub fn from_name(name: &str) -> Option<Jitter> {
        match name {
            "full" => Some(Jitter::Full),
            "equal" => Some(Jitter::Equal),
            "decorrelated" => Some(Jitter::Decorrelated),
            _ => None,
        }
    }

    /// The sleep for a backoff delay `delay`. `base` and `previous` (the last sleep taken,
    /// `base` before the first) feed `Decorrelated`. Never more than `max_delay`.
    ///
    /// `pick(low, high)` draws uniformly from `low..=high` (nanoseconds, `low < high`): the
    /// runtime's random source, so that this crate needs none.
    pub fn apply(
        self,
        delay: Duration,
        base: Duration,
        previous: Duration,
        max_delay: Duration,
        pick: impl FnOnce(u64, u64) -> u64,
    ) -> Duration {
        let d = nanos(delay);
        let (low, high) = match self {
            Jitter::None => (d, d),
            Jitter::Fraction(j) => {
                let j = if j.is_nan() { 0.0 } else { j.clamp(0.0, 1.0) };
                let df = d as f64;
                (
                    (df * (1.0 - j)).ceil() as u64,
                    saturating_f64(df * (1.0 + j)),
                )
            }
            Jitter::Full => (0, d),
            Jitter::Equal => (d / 2 + d % 2, d),
            Jitter::Decorrelated => {
                let low = nanos(base);
                (low, nanos(previous).saturating_mul(3).max(low))
            }
        };
        let low = low.min(high);
        let picked = if low == high {
            low
        } else {
            pick(low, high).clamp(low, high)
        };
        Duration::from_nanos(picked).min(max_delay)
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn saturating_f64(value: f64) -> u64 {
    if value >= u64::MAX as f64 {
        u64::MAX
    } else {
        value.max(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The sleep `jitter` picks with `rng`, as the runtime picks it.
    fn sleep(
        jitter: Jitter,
        d: Duration,
        b: Duration,
        p: Duration,
        c: Duration,
        rng: &mut StdRng,
    ) -> Duration {
        jitter.apply(d, b, p, c, |low, high| rng.random_range(low..=high))
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn none_and_zero_fraction_are_exact() {
        let mut rng = StdRng::seed_from_u64(1);
        for jitter in [Jitter::None, Jitter::Fraction(0.0)] {
            assert_eq!(
                sleep(jitter, MS(300), MS(100), MS(100), MS(10_000), &mut rng),
                MS(300)
            );
        }
    }

    #[test]
    fn names() {
        assert_eq!(Jitter::from_name("full"), Some(Jitter::Full));
        assert_eq!(Jitter::from_name("equal"), Some(Jitter::Equal));
        assert_eq!(
            Jitter::from_name("decorrelated"),
            Some(Jitter::Decorrelated)
        );
        assert_eq!(Jitter::from_name("ful"), None);
    }

    #[test]
    fn fraction_spreads_over_the_whole_range() {
        let mut rng = StdRng::seed_from_u64(7);
        let samples: Vec<Duration> = (0..2000)
            .map(|_| {
                sleep(
                    Jitter::Fraction(0.5),
                    MS(1000),
                    MS(100),
                    MS(100),
                    MS(10_000),
                    &mut rng,
                )
            })
            .collect();
        assert!(samples.iter().all(|s| (MS(500)..=MS(1500)).contains(s)));
        assert!(samples.iter().any(|s| *s < MS(600)), "low end reached");
        assert!(samples.iter().any(|s| *s > MS(1400)), "high end reached");
    }

    proptest! {
        #[test]
        fn every_strategy_stays_in_its_bounds(
            seed in any::<u64>(),
            delay_ms in 0u64..100_000,
            base_ms in 0u64..10_000,
            previous_ms in 0u64..100_000,
            cap_ms in 0u64..200_000,
            fraction in 0.0f64..=1.0,
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let (d, base, prev, cap) = (MS(delay_ms), MS(base_ms), MS(previous_ms), MS(cap_ms));
            let fr = sleep(Jitter::Fraction(fraction), d, base, prev, cap, &mut rng);
            let low = d.mul_f64(1.0 - fraction).saturating_sub(Duration::from_nanos(1));
            let high = d.mul_f64(1.0 + fraction) + Duration::from_nanos(1);
            prop_assert!(fr <= cap);
            prop_assert!(fr == cap || (low..=high).contains(&fr), "{fr:?} not in {low:?}..={high:?}");

            let full = sleep(Jitter::Full, d, base, prev, cap, &mut rng);
            prop_assert!(full <= d.min(cap));

            let equal = sleep(Jitter::Equal, d, base, prev, cap, &mut rng);
            prop_assert!(equal <= d.min(cap));
            prop_assert!(equal == cap || equal >= d / 2);

            let dec = sleep(Jitter::Decorrelated, d, base, prev, cap, &mut rng);
            prop_assert!(dec <= cap);
            prop_assert!(dec == cap || (base..=(prev * 3).max(base)).contains(&dec));
        }
    }
}
