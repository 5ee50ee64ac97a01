//! [`Breaker`]: the state machine, closed -> open -> half-open -> closed.
//!
//! The state is one atomic word (phase and a generation number); a closed breaker admits a
//! call with one load of it. Transitions are rare and take a small mutex, so each one sees a
//! consistent breaker (counters reset before the new phase is published). Every permit
//! carries the generation it was granted in, and an outcome reported after the breaker moved
//! on (a slow call finishing after the breaker opened) is ignored.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::BreakerSpec;
use super::window::Window;
use crate::clock::{Clock, nanos};

// Defined with the events that carry it, below this module.
pub use crate::events::BreakerState;

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const DISABLED: u64 = 3;

fn phase(word: u64) -> u64 {
    word & 3
}

fn next(word: u64, phase: u64) -> u64 {
    ((word >> 2).wrapping_add(1) << 2) | phase
}

/// A count-based circuit breaker (see the crate's README for the semantics).
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::Duration;
/// use resilience::breaker::{Breaker, BreakerSpec, BreakerState};
///
/// let breaker = Breaker::new(BreakerSpec::DEFAULT.min_calls(2).window(2));
/// breaker.try_acquire().unwrap().record(true);
/// breaker.try_acquire().unwrap().record(true);
/// assert_eq!(breaker.state(), BreakerState::Open);
/// assert!(breaker.try_acquire().is_err(), "refused while open");
/// ```
pub struct Breaker {
    /// In events and metrics: the site's name, or the policy's for a shared breaker.
    name: Arc<str>,
    word: AtomicU64,
    config: ArcSwap<Config>,
    clock: Clock,
    /// While open: when trials may start, on `clock`.
    open_until: AtomicU64,
    /// While half-open: trials let through, and trials that succeeded.
    trials: AtomicU32,
    passed: AtomicU32,
    transitions: AtomicU64,
    transition: Mutex<()>,
}

/// The values and the window sized for them, swapped together when a policy changes them.
struct Config {
    spec: BreakerSpec,
    window: Arc<Window>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("spec", &self.config.load().spec)
            .finish()
    }
}

/// The right to make one call through a breaker: report its outcome with [`Permit::record`].
/// A trial permit dropped without a report (its call was cancelled) gives its trial back.
#[derive(Debug)]
#[must_use = "report the call's outcome with `record`"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    word: u64,
    reported: bool,
}

impl Breaker {
    /// A closed breaker with these values.
    pub fn new(spec: BreakerSpec) -> Self {
        Breaker::named(spec, "breaker")
    }

    /// A closed breaker named `name` in events and metrics.
    pub fn named(spec: BreakerSpec, name: &'static str) -> Self {
        Breaker::with_name(spec, name.into())
    }

    /// [`Breaker::named`] with a name known only at run time (a policy's).
    pub(crate) fn with_name(spec: BreakerSpec, name: Arc<str>) -> Self {
        Breaker {
            name,
            word: AtomicU64::new(if spec.enabled { CLOSED } else { DISABLED }),
            config: ArcSwap::from_pointee(Config {
                window: Arc::new(Window::new(spec.window)),
                spec,
            }),
            clock: Clock::new(),
            open_until: AtomicU64::new(0),
            trials: AtomicU32::new(0),
            passed: AtomicU32::new(0),
            transitions: AtomicU64::new(0),
            transition: Mutex::new(()),
        }
    }

    /// Changes the values, keeping the state and, when `window` keeps its size, the recorded
    /// outcomes; a new `window` size starts a fresh window.
    pub fn configure(&self, spec: BreakerSpec) {
        let _transition = self.lock();
        let current = self.config.load_full();
        if current.spec == spec {
            return;
        }
        let window = if current.spec.window == spec.window {
            Arc::clone(&current.window)
        } else {
            Arc::new(Window::new(spec.window))
        };
        self.config.store(Arc::new(Config { spec, window }));
        let word = self.word.load(Ordering::Acquire);
        let to = match (spec.enabled, phase(word) == DISABLED) {
            (true, true) => CLOSED,
            (false, false) => DISABLED,
            _ => return,
        };
        // Switched on: closed with a fresh window. Switched off: outcomes in flight ignored.
        self.config.load().window.reset();
        self.word.store(next(word, to), Ordering::Release);
        self.transitions.fetch_add(1, Ordering::Relaxed);
        let state = self.state_at(next(word, to));
        crate::observe::breaker_transition(&self.name, state);
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state_at(self.word.load(Ordering::Acquire))
    }

    fn state_at(&self, word: u64) -> BreakerState {
        match phase(word) {
            CLOSED => BreakerState::Closed,
            OPEN if self.clock.now() >= self.open_until.load(Ordering::Acquire) => {
                BreakerState::HalfOpen
            }
            OPEN => BreakerState::Open,
            HALF_OPEN => BreakerState::HalfOpen,
            _ => BreakerState::Disabled,
        }
    }

    /// The number of state changes so far.
    pub fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }

    /// The values in force.
    pub fn spec(&self) -> BreakerSpec {
        self.config.load().spec
    }

    /// A permit to make one call, or how long until the breaker lets calls through again
    /// (zero while half-open with every trial taken).
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Duration> {
        let word = self.word.load(Ordering::Acquire);
        if phase(word) == CLOSED {
            return Ok(Permit {
                breaker: self,
                word,
                reported: false,
            });
        }
        self.acquire_slow(word)
    }

    #[cold]
    fn acquire_slow(&self, mut word: u64) -> Result<Permit<'_>, Duration> {
        loop {
            match phase(word) {
                CLOSED => {
                    return Ok(Permit {
                        breaker: self,
                        word,
                        reported: false,
                    });
                }
                OPEN => {
                    let now = self.clock.now();
                    let until = self.open_until.load(Ordering::Acquire);
                    if now < until {
                        return Err(Duration::from_nanos(until - now));
                    }
                    self.half_open(word);
                    word = self.word.load(Ordering::Acquire);
                }
                DISABLED => {
                    return Ok(Permit {
                        breaker: self,
                        word,
                        reported: false,
                    });
                }
                _ => {
                    let allowed = self.config.load().spec.half_open_calls;
                    let taken = self.trials.fetch_add(1, Ordering::AcqRel);
                    let now = self.word.load(Ordering::Acquire);
                    if taken < allowed && now == word {
                        return Ok(Permit {
                            breaker: self,
                            word,
                            reported: false,
                        });
                    }
                    self.trials.fetch_sub(1, Ordering::AcqRel);
                    if now == word {
                        return Err(Duration::ZERO);
                    }
                    word = now;
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.transition
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves from `from` to `to` under the transition lock, after `prepare`; nothing if the
    /// breaker left `from` meanwhile.
    fn transit(&self, from: u64, to: u64, prepare: impl FnOnce()) {
        let _transition = self.lock();
        if self.word.load(Ordering::Acquire) != from {
            return;
        }
        prepare();
        self.word.store(next(from, to), Ordering::Release);
        self.transitions.fetch_add(1, Ordering::Relaxed);
        let state = self.state_at(next(from, to));
        crate::observe::breaker_transition(&self.name, state);
    }

    fn open(&self, from: u64) {
        let open_for = self.config.load().spec.open_for;
        let until = self.clock.now().saturating_add(nanos(open_for));
        self.transit(from, OPEN, || {
            self.open_until.store(until, Ordering::Release)
        });
    }

    fn half_open(&self, from: u64) {
        self.transit(from, HALF_OPEN, || {
            self.trials.store(0, Ordering::Release);
            self.passed.store(0, Ordering::Release);
        });
    }

    fn close(&self, from: u64) {
        self.transit(from, CLOSED, || self.config.load().window.reset());
    }

    fn report(&self, word: u64, failed: bool) {
        if self.word.load(Ordering::Acquire) != word {
            return; // the breaker moved on since this call was let through
        }
        match phase(word) {
            CLOSED => {
                let config = self.config.load();
                let tally = config.window.record(failed);
                let spec = &config.spec;
                if tally.failures > 0
                    && tally.recorded >= spec.min_calls
                    && f64::from(tally.failures) >= spec.failure_rate * f64::from(tally.recorded)
                {
                    self.open(word);
                }
            }
            HALF_OPEN if failed => self.open(word),
            HALF_OPEN => {
                let needed = self.config.load().spec.half_open_calls;
                if self.passed.fetch_add(1, Ordering::AcqRel) + 1 >= needed {
                    self.close(word);
                }
            }
            _ => {}
        }
    }
}

impl Permit<'_> {
    /// Reports the call's outcome: `failed` as the breaker's rule says (see
    /// [`counts_as_failure`](super::counts_as_failure)).
    #[inline]
    pub fn record(mut self, failed: bool) {
        self.reported = true;
        self.breaker.report(self.word, failed);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported
            && phase(self.word) == HALF_OPEN
            && self.breaker.word.load(Ordering::Acquire) == self.word
        {
            self.breaker.trials.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    const S: Duration = Duration::from_secs(1);

    fn spec() -> BreakerSpec {
        BreakerSpec::DEFAULT
            .failure_rate(0.5)
            .min_calls(4)
            .window(4)
            .open_for(30 * S)
            .half_open_calls(2)
    }

    fn call(breaker: &Breaker, failed: bool) -> Result<(), Duration> {
        breaker.try_acquire().map(|permit| permit.record(failed))
    }

    #[tokio::test(start_paused = true)]
    async fn the_whole_cycle_with_exact_times() {
        let breaker = Breaker::new(spec());
        // 1 failure in 3 recorded: below min_calls.
        call(&breaker, true).unwrap();
        call(&breaker, false).unwrap();
        call(&breaker, false).unwrap();
        assert_eq!(breaker.state(), BreakerState::Closed);
        // 2 of 4: the rate is reached with min_calls recorded.
        call(&breaker, true).unwrap();
        assert_eq!(breaker.state(), BreakerState::Open);

        assert_eq!(
            call(&breaker, false),
            Err(30 * S),
            "refused, with the time to half-open"
        );
        advance(30 * S - Duration::from_nanos(1)).await;
        assert_eq!(call(&breaker, false), Err(Duration::from_nanos(1)));
        advance(Duration::from_nanos(1)).await;
        assert_eq!(
            breaker.state(),
            BreakerState::HalfOpen,
            "at exactly open_for"
        );

        // Two trials; a third caller is refused meanwhile.
        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        assert_eq!(breaker.try_acquire().err(), Some(Duration::ZERO));
        first.record(false);
        second.record(true);
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "a failed trial reopens"
        );
        assert_eq!(call(&breaker, false), Err(30 * S));

        advance(30 * S).await;
        call(&breaker, false).unwrap();
        call(&breaker, false).unwrap();
        assert_eq!(breaker.state(), BreakerState::Closed, "all trials passed");

        // A fresh window: the failures before opening are forgotten.
        call(&breaker, true).unwrap();
        call(&breaker, false).unwrap();
        call(&breaker, false).unwrap();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.transitions(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_trial_gives_its_place_back() {
        let breaker = Breaker::new(spec().half_open_calls(1));
        for _ in 0..4 {
            call(&breaker, true).unwrap();
        }
        advance(30 * S).await;
        let trial = breaker.try_acquire().unwrap();
        assert!(breaker.try_acquire().is_err());
        drop(trial);
        call(&breaker, false).unwrap();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_outcome_from_before_a_transition_is_ignored() {
        let breaker = Breaker::new(spec());
        let slow = breaker.try_acquire().unwrap();
        for _ in 0..4 {
            call(&breaker, true).unwrap();
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        advance(30 * S).await;
        let trial = breaker.try_acquire().unwrap();
        slow.record(true); // granted while closed: says nothing about the trials
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        trial.record(false);
    }

    #[tokio::test(start_paused = true)]
    async fn reconfiguring_keeps_the_state_and_the_window() {
        let breaker = Breaker::new(spec());
        call(&breaker, true).unwrap();
        call(&breaker, true).unwrap();
        breaker.configure(spec().min_calls(2));
        call(&breaker, false).unwrap();
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "2 of 3 with min_calls 2"
        );
        breaker.configure(spec().open_for(5 * S));
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.spec().open_for, 5 * S);
    }
}
