//! [`Schedule`]: after each failure, retry (after how long) or stop. Pure logic, no clock.

use std::fmt;
use std::time::Duration;

use rand::Rng;

use super::RetrySpec;

/// What to do after a failed try.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Sleep this long, then try again.
    Retry(Duration),
    /// The error is not retryable: return it now.
    Return,
    /// The error is retryable but the policy is spent: return it now, and log why.
    GiveUp(GiveUp),
}

/// Why a retryable error was returned instead of retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// Every attempt was used.
    Exhausted {
        /// Tries made, the first included.
        attempts: u32,
    },
    /// The next sleep would end past `max_elapsed`.
    MaxElapsed {
        /// The configured limit.
        limit: Duration,
    },
    /// The retry budget the site draws on allowed no more retries (see
    /// [`RetryBudget`](crate::retry::RetryBudget)).
    BudgetSpent,
    /// The server asked to wait longer than `max_delay`.
    RetryAfterTooLong {
        /// The server's Retry-After.
        retry_after: Duration,
        /// The configured `max_delay`.
        max_delay: Duration,
    },
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUp::Exhausted { attempts } => write!(f, "all {attempts} attempts failed"),
            GiveUp::BudgetSpent => f.write_str("the retry budget allows no more retries now"),
            GiveUp::MaxElapsed { limit } => {
                write!(f, "the next retry would end past max_elapsed ({limit:?})")
            }
            GiveUp::RetryAfterTooLong {
                retry_after,
                max_delay,
            } => write!(
                f,
                "the server asked to retry after {retry_after:?}, more than max_delay ({max_delay:?})"
            ),
        }
    }
}

/// The retry state of one call: how many tries were made and the last sleep.
///
/// The executors feed it each failure; it is public so a custom loop (or a test) can replay
/// a policy's decisions exactly.
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::Duration;
/// use resilience::{Decision, GiveUp, RetrySpec, Schedule};
///
/// let mut schedule = Schedule::new(RetrySpec::DEFAULT.attempts(3));
/// let mut rng = rand::rng();
/// let ms = Duration::from_millis;
/// assert_eq!(schedule.next(true, None, ms(0), &mut rng), Decision::Retry(ms(100)));
/// assert_eq!(schedule.next(true, None, ms(100), &mut rng), Decision::Retry(ms(200)));
/// assert_eq!(
///     schedule.next(true, None, ms(300), &mut rng),
///     Decision::GiveUp(GiveUp::Exhausted { attempts: 3 })
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    spec: RetrySpec,
    tries: u32,
    previous: Duration,
}

impl Schedule {
    /// A schedule for a call whose first try is under way.
    pub fn new(spec: RetrySpec) -> Self {
        Schedule {
            previous: spec.base,
            spec,
            tries: 1,
        }
    }

    /// Tries made so far, the one that just failed included.
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// The policy this schedule follows.
    pub fn spec(&self) -> &RetrySpec {
        &self.spec
    }

    /// Decides after a failed try. `retryable` is the verdict of `on` or `retry_if`;
    /// `retry_after` is the server's, if any; `elapsed` is the time since the first try
    /// started (only read when `max_elapsed` is set).
    pub fn next<R: Rng + ?Sized>(
        &mut self,
        retryable: bool,
        retry_after: Option<Duration>,
        elapsed: Duration,
        rng: &mut R,
    ) -> Decision {
        let spec = &self.spec;
        if !retryable {
            return Decision::Return;
        }
        if self.tries >= spec.attempts.max(1) {
            return Decision::GiveUp(GiveUp::Exhausted {
                attempts: self.tries,
            });
        }
        let sleep = match retry_after.filter(|_| spec.retry_after) {
            Some(wait) if wait > spec.max_delay => {
                return Decision::GiveUp(GiveUp::RetryAfterTooLong {
                    retry_after: wait,
                    max_delay: spec.max_delay,
                });
            }
            // The server named the wait: no backoff and no jitter on top of it.
            Some(wait) => wait,
            None => {
                let delay = spec
                    .backoff
                    .delay(spec.base, spec.factor, self.tries, spec.max_delay);
                let pick = |low, high| rng.random_range(low..=high);
                spec.jitter
                    .apply(delay, spec.base, self.previous, spec.max_delay, pick)
            }
        };
        if let Some(limit) = spec.max_elapsed {
            if elapsed.saturating_add(sleep) > limit {
                return Decision::GiveUp(GiveUp::MaxElapsed { limit });
            }
        }
        self.tries += 1;
        self.previous = sleep;
        Decision::Retry(sleep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backoff, Jitter};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn delays(spec: RetrySpec) -> Vec<Decision> {
        let mut schedule = Schedule::new(spec);
        let mut rng = StdRng::seed_from_u64(3);
        let mut elapsed = Duration::ZERO;
        let mut out = Vec::new();
        loop {
            let decision = schedule.next(true, None, elapsed, &mut rng);
            out.push(decision);
            match decision {
                Decision::Retry(d) => elapsed += d,
                _ => return out,
            }
        }
    }

    #[test]
    fn exponential_linear_constant() {
        let spec = RetrySpec::DEFAULT.attempts(5);
        assert_eq!(
            delays(spec),
            [
                Decision::Retry(MS(100)),
                Decision::Retry(MS(200)),
                Decision::Retry(MS(400)),
                Decision::Retry(MS(800)),
                Decision::GiveUp(GiveUp::Exhausted { attempts: 5 }),
            ]
        );
        let linear = delays(spec.backoff(Backoff::Linear));
        assert_eq!(
            &linear[..4],
            [100, 200, 300, 400].map(|m| Decision::Retry(MS(m)))
        );
        let constant = delays(spec.backoff(Backoff::Constant).base(MS(50)));
        assert_eq!(&constant[..4], [Decision::Retry(MS(50)); 4]);
    }

    #[test]
    fn one_attempt_never_retries() {
        for attempts in [0, 1] {
            assert_eq!(
                delays(RetrySpec::DEFAULT.attempts(attempts)),
                [Decision::GiveUp(GiveUp::Exhausted { attempts: 1 })]
            );
        }
    }

    #[test]
    fn max_elapsed_counts_the_next_sleep() {
        // sleeps 100, 200, 400: 100 + 200 = 300 fits in 350, + 400 does not
        let spec = RetrySpec::DEFAULT.attempts(10).max_elapsed(Some(MS(350)));
        assert_eq!(
            delays(spec),
            [
                Decision::Retry(MS(100)),
                Decision::Retry(MS(200)),
                Decision::GiveUp(GiveUp::MaxElapsed { limit: MS(350) }),
            ]
        );
    }

    #[test]
    fn retry_after_replaces_the_backoff_or_stops() {
        let mut rng = StdRng::seed_from_u64(0);
        let spec = RetrySpec::DEFAULT.attempts(5).jitter(Jitter::Full);
        let mut schedule = Schedule::new(spec);
        assert_eq!(
            schedule.next(true, Some(MS(1500)), MS(0), &mut rng),
            Decision::Retry(MS(1500))
        );
        assert_eq!(
            schedule.next(true, Some(Duration::from_secs(11)), MS(0), &mut rng),
            Decision::GiveUp(GiveUp::RetryAfterTooLong {
                retry_after: Duration::from_secs(11),
                max_delay: Duration::from_secs(10),
            })
        );
        let mut ignoring = Schedule::new(RetrySpec::DEFAULT.retry_after(false));
        assert_eq!(
            ignoring.next(true, Some(Duration::from_secs(60)), MS(0), &mut rng),
            Decision::Retry(MS(100))
        );
    }

    #[test]
    fn not_retryable_returns_without_counting() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut schedule = Schedule::new(RetrySpec::DEFAULT);
        assert_eq!(
            schedule.next(false, None, MS(0), &mut rng),
            Decision::Return
        );
        assert_eq!(schedule.tries(), 1);
    }

    #[test]
    fn huge_and_zero_values_do_not_panic() {
        let mut rng = StdRng::seed_from_u64(0);
        let spec = RetrySpec::DEFAULT
            .attempts(u32::MAX)
            .base(Duration::MAX)
            .max_delay(Duration::MAX)
            .factor(f64::MAX)
            .max_elapsed(Some(Duration::MAX))
            .jitter(Jitter::Fraction(1.0));
        let mut schedule = Schedule::new(spec);
        for _ in 0..5 {
            let _ = schedule.next(true, Some(Duration::MAX), Duration::MAX, &mut rng);
            let _ = schedule.next(true, None, Duration::MAX, &mut rng);
        }
        let zero = RetrySpec::DEFAULT
            .base(Duration::ZERO)
            .max_delay(Duration::ZERO);
        assert_eq!(delays(zero)[0], Decision::Retry(Duration::ZERO));
    }
}
