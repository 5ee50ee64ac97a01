//! [`Breaker`]: the state machine, closed -> open -> half-open -> closed.
//!
//! The state is one atomic word (phase and a generation number); a closed breaker admits a
//! call with one load of it. Transitions are rare and take a small mutex, so each one sees a
//! consistent breaker (counters reset before the new phase is published). Every permit
//! carries the generation it was granted in, and an outcome reported after the breaker moved
//! on (a slow call finishing after the breaker opened) is ignored.
//!
//! Two phases are set only by hand ([`Breaker::force_open`], [`Breaker::disable`]) and left
//! only by hand ([`Breaker::reset`]): a policy reload does not undo them.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::window::{Outcome, Window};
use super::{BreakerSpec, WindowType};
use crate::clock::{Clock, nanos};

// Defined with the events that carry it, below this module.
pub use crate::events::BreakerState;

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const DISABLED: u64 = 3;
/// Open until [`Breaker::reset`].
const FORCED_OPEN: u64 = 4;
/// Disabled until [`Breaker::reset`], whatever the policy says.
const HELD_DISABLED: u64 = 5;

const PHASE_BITS: u32 = 3;

fn phase(word: u64) -> u64 {
    word & ((1 << PHASE_BITS) - 1)
}

fn next(word: u64, phase: u64) -> u64 {
    ((word >> PHASE_BITS).wrapping_add(1) << PHASE_BITS) | phase
}

/// How long the breaker stays open after `reopens` failed trials in a row: `open_for` times
/// `backoff` to that power, rounded to the nanosecond, at most `max_open_for` and never less
/// than `open_for`.
fn open_nanos(spec: &BreakerSpec, reopens: u32) -> u64 {
    let base = nanos(spec.open_for);
    if reopens == 0 || spec.backoff <= 1.0 {
        return base;
    }
    let power = i32::try_from(reopens).unwrap_or(i32::MAX);
    // `as` saturates: an infinite product is u64::MAX, then the cap.
    let grown = (base as f64 * spec.backoff.powi(power)).round() as u64;
    grown
        .min(spec.max_open_for.map_or(u64::MAX, nanos))
        .max(base)
}

/// A circuit breaker over a count-based or a time-based window (see the crate's README for
/// the semantics).
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
    /// Failed trials since the breaker last closed: how much `open_for` has grown.
    reopens: AtomicU32,
    /// `slow_call` in nanoseconds, 0 when off: read when a call is let through, to time it.
    slow_call: AtomicU64,
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

/// The right to make one call through a breaker: report its outcome with [`Permit::record`],
/// which also times the call when the breaker has a `slow_call`.
/// A trial permit dropped without a report (its call was cancelled) gives its trial back.
#[derive(Debug)]
#[must_use = "report the call's outcome with `record`"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    word: u64,
    reported: bool,
    /// When the call was let through, on the breaker's clock, if it is timed.
    started: Option<u64>,
}

impl Config {
    fn new(spec: BreakerSpec) -> Self {
        let window = match spec.window_type {
            WindowType::Count => Window::count(spec.window),
            WindowType::Time => Window::time(spec.window),
        };
        Config {
            spec,
            window: Arc::new(window),
        }
    }
}

fn slow_call_nanos(spec: &BreakerSpec) -> u64 {
    spec.slow_call.map_or(0, nanos)
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
            config: ArcSwap::from_pointee(Config::new(spec)),
            clock: Clock::new(),
            open_until: AtomicU64::new(0),
            trials: AtomicU32::new(0),
            passed: AtomicU32::new(0),
            reopens: AtomicU32::new(0),
            slow_call: AtomicU64::new(slow_call_nanos(&spec)),
            transitions: AtomicU64::new(0),
            transition: Mutex::new(()),
        }
    }

    /// Changes the values, keeping the state and, when `window` and `window_type` stay the
    /// same, the recorded outcomes; a new window starts fresh. A breaker forced open or
    /// disabled by hand stays so.
    pub fn configure(&self, spec: BreakerSpec) {
        let _transition = self.lock();
        let current = self.config.load_full();
        if current.spec == spec {
            return;
        }
        let config =
            if (current.spec.window, current.spec.window_type) == (spec.window, spec.window_type) {
                Config {
                    spec,
                    window: Arc::clone(&current.window),
                }
            } else {
                Config::new(spec)
            };
        self.config.store(Arc::new(config));
        self.slow_call
            .store(slow_call_nanos(&spec), Ordering::Relaxed);
        let word = self.word.load(Ordering::Acquire);
        let to = match (spec.enabled, phase(word)) {
            (_, FORCED_OPEN | HELD_DISABLED) => return,
            (true, DISABLED) => CLOSED,
            (false, DISABLED) => return,
            (false, _) => DISABLED,
            _ => return,
        };
        // Switched on: closed with a fresh window. Switched off: outcomes in flight ignored.
        self.config.load().window.reset();
        self.publish(word, to);
    }

    /// Opens the breaker until [`reset`](Self::reset): every call is refused, with
    /// `open_for` as its `retry_after` (no time is known). [`state`](Self::state) says `Open`.
    ///
    /// ```
    /// # use resilience_core as resilience;
    /// use resilience::breaker::{Breaker, BreakerSpec, BreakerState};
    ///
    /// let breaker = Breaker::new(BreakerSpec::DEFAULT);
    /// breaker.force_open();
    /// assert_eq!(breaker.state(), BreakerState::Open);
    /// assert_eq!(breaker.try_acquire().err(), Some(BreakerSpec::DEFAULT.open_for));
    /// breaker.reset();
    /// assert_eq!(breaker.state(), BreakerState::Closed);
    /// ```
    pub fn force_open(&self) {
        self.hold(FORCED_OPEN);
    }

    /// Lets every call through, recording nothing, until [`reset`](Self::reset), whatever
    /// the policy says. [`state`](Self::state) says `Disabled`.
    pub fn disable(&self) {
        self.hold(HELD_DISABLED);
    }

    /// Closes the breaker with a fresh window and `open_for` back at its start, or disables
    /// it when its policy switches it off; undoes [`force_open`](Self::force_open) and
    /// [`disable`](Self::disable). Outcomes of calls let through before are ignored.
    pub fn reset(&self) {
        let _transition = self.lock();
        let config = self.config.load();
        let to = if config.spec.enabled {
            CLOSED
        } else {
            DISABLED
        };
        config.window.reset();
        self.reopens.store(0, Ordering::Relaxed);
        self.publish(self.word.load(Ordering::Acquire), to);
    }

    fn hold(&self, to: u64) {
        let _transition = self.lock();
        let word = self.word.load(Ordering::Acquire);
        if phase(word) != to {
            self.publish(word, to);
        }
    }

    /// Stores the phase `to` with the next generation, under the transition lock; a change
    /// of state is counted and observed.
    fn publish(&self, from: u64, to: u64) {
        let before = self.state_at(from);
        self.word.store(next(from, to), Ordering::Release);
        let state = self.state_at(next(from, to));
        if state != before || phase(from) != to {
            self.transitions.fetch_add(1, Ordering::Relaxed);
            crate::observe::breaker_transition(&self.name, state);
        }
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
            OPEN | FORCED_OPEN => BreakerState::Open,
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
            return Ok(self.permit(word));
        }
        self.acquire_slow(word)
    }

    /// A permit granted in `word`, timed when a call can be slow.
    #[inline]
    fn permit(&self, word: u64) -> Permit<'_> {
        let timed = self.slow_call.load(Ordering::Relaxed) != 0
            && matches!(phase(word), CLOSED | HALF_OPEN);
        Permit {
            breaker: self,
            word,
            reported: false,
            started: timed.then(|| self.clock.now()),
        }
    }

    #[cold]
    fn acquire_slow(&self, mut word: u64) -> Result<Permit<'_>, Duration> {
        loop {
            match phase(word) {
                CLOSED | DISABLED | HELD_DISABLED => return Ok(self.permit(word)),
                FORCED_OPEN => return Err(self.config.load().spec.open_for),
                OPEN => {
                    let now = self.clock.now();
                    let until = self.open_until.load(Ordering::Acquire);
                    if now < until {
                        return Err(Duration::from_nanos(until - now));
                    }
                    self.half_open(word);
                    word = self.word.load(Ordering::Acquire);
                }
                _ => {
                    let allowed = self.config.load().spec.half_open_calls;
                    let taken = self.trials.fetch_add(1, Ordering::AcqRel);
                    let now = self.word.load(Ordering::Acquire);
                    if taken < allowed && now == word {
                        return Ok(self.permit(word));
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

    /// Opens for `open_for`, or, after a failed trial, for `open_for` grown by `backoff`
    /// once more.
    fn open(&self, from: u64, trial_failed: bool) {
        let spec = self.config.load().spec;
        let now = self.clock.now();
        self.transit(from, OPEN, || {
            let reopens = if trial_failed {
                self.reopens
                    .fetch_add(1, Ordering::Relaxed)
                    .saturating_add(1)
            } else {
                0
            };
            let until = now.saturating_add(open_nanos(&spec, reopens));
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
        self.transit(from, CLOSED, || {
            self.config.load().window.reset();
            self.reopens.store(0, Ordering::Relaxed);
        });
    }

    fn report(&self, word: u64, outcome: Outcome) {
        if self.word.load(Ordering::Acquire) != word {
            return; // the breaker moved on since this call was let through
        }
        match phase(word) {
            CLOSED => {
                let config = self.config.load();
                let tally = config.window.record(outcome, || self.clock.now());
                let spec = &config.spec;
                // Never on a rate of nothing: at a rate of 0.0 the first bad call opens it.
                let reached = |bad: u32, rate: f64| {
                    bad > 0 && f64::from(bad) >= rate * f64::from(tally.recorded)
                };
                if tally.recorded >= spec.min_calls
                    && (reached(tally.failures, spec.failure_rate)
                        || reached(tally.slow, spec.slow_call_rate))
                {
                    self.open(word, false);
                }
            }
            // A slow trial is a failed one: the dependency is not back yet.
            HALF_OPEN if outcome.failed || outcome.slow => self.open(word, true),
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
    /// [`counts_as_failure`](super::counts_as_failure)); with a `slow_call`, a call that took
    /// longer than it since the permit was granted is slow too.
    #[inline]
    pub fn record(mut self, failed: bool) {
        self.reported = true;
        let slow = self.started.is_some_and(|started| {
            let slow_call = self.breaker.slow_call.load(Ordering::Relaxed);
            slow_call != 0 && self.breaker.clock.now().saturating_sub(started) > slow_call
        });
        self.breaker.report(self.word, Outcome { failed, slow });
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

    #[tokio::test(start_paused = true)]
    async fn a_time_window_slides_off_old_failures_at_the_exact_second() {
        let spec = spec().window_type(WindowType::Time).window(10).min_calls(2);
        // A failure at 0 s is in the window until 10 s: with one success at 10 s - 1 ns the
        // rate is 1 of 2.
        let early = Breaker::new(spec);
        call(&early, true).unwrap();
        advance(10 * S - Duration::from_nanos(1)).await;
        call(&early, false).unwrap();
        assert_eq!(early.state(), BreakerState::Open);
        // At 10 s it has left: 0 of 1, below min_calls.
        let late = Breaker::new(spec);
        call(&late, true).unwrap();
        advance(10 * S).await;
        call(&late, false).unwrap();
        assert_eq!(late.state(), BreakerState::Closed);
        call(&late, true).unwrap();
        assert_eq!(late.state(), BreakerState::Open, "1 of 2 in the last 10 s");
    }

    #[tokio::test(start_paused = true)]
    async fn slow_calls_open_it_at_the_slow_call_rate() {
        let breaker = Breaker::new(
            spec()
                .slow_call(Some(2 * S))
                .slow_call_rate(0.5)
                .failure_rate(1.0),
        );
        let timed = |took: Duration| {
            let breaker = &breaker;
            async move {
                let permit = breaker.try_acquire().unwrap();
                advance(took).await;
                permit.record(false);
            }
        };
        timed(2 * S).await; // exactly slow_call: not slow
        timed(2 * S + Duration::from_nanos(1)).await;
        timed(S).await;
        assert_eq!(breaker.state(), BreakerState::Closed, "3 of min_calls 4");
        timed(3 * S).await;
        assert_eq!(breaker.state(), BreakerState::Open, "2 slow of 4");
        assert_eq!(call(&breaker, false), Err(30 * S));

        // A slow trial reopens it, as a failed one does.
        advance(30 * S).await;
        let trial = breaker.try_acquire().unwrap();
        advance(3 * S).await;
        trial.record(false);
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn open_for_grows_by_backoff_up_to_the_cap_and_starts_again_on_close() {
        let breaker = Breaker::new(
            spec()
                .half_open_calls(1)
                .backoff(2.0)
                .max_open_for(Some(100 * S)),
        );
        for _ in 0..4 {
            call(&breaker, true).unwrap();
        }
        // 30 s, then 60, 100 (120 capped), 100 for each failed trial in a row.
        for open_for in [30, 60, 100, 100] {
            assert_eq!(call(&breaker, false), Err(open_for * S));
            advance(open_for * S - Duration::from_nanos(1)).await;
            assert_eq!(breaker.state(), BreakerState::Open);
            advance(Duration::from_nanos(1)).await;
            call(&breaker, true).unwrap();
        }
        advance(100 * S).await;
        call(&breaker, false).unwrap();
        assert_eq!(breaker.state(), BreakerState::Closed);
        for _ in 0..4 {
            call(&breaker, true).unwrap();
        }
        assert_eq!(
            call(&breaker, false),
            Err(30 * S),
            "closing started it again"
        );
    }

    #[test]
    fn open_for_growth_saturates() {
        let spec = spec().backoff(1e6);
        assert_eq!(open_nanos(&spec, 0), 30_000_000_000);
        assert_eq!(open_nanos(&spec, 1), 30_000_000_000_000_000);
        assert_eq!(open_nanos(&spec, u32::MAX), u64::MAX);
        let capped = spec.max_open_for(Some(60 * S));
        assert_eq!(open_nanos(&capped, u32::MAX), 60_000_000_000);
        // A cap below open_for (refused by `validate`) leaves open_for.
        let below = spec.max_open_for(Some(S));
        assert_eq!(open_nanos(&below, 3), 30_000_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn manual_control_holds_until_reset() {
        let breaker = Breaker::new(spec());
        let before = breaker.try_acquire().unwrap();
        breaker.force_open();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(call(&breaker, false), Err(30 * S));
        advance(1000 * S).await;
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "no half-open by itself"
        );
        assert_eq!(call(&breaker, false), Err(30 * S));
        // A policy reload does not undo it.
        breaker.configure(spec().open_for(5 * S));
        assert_eq!(call(&breaker, false), Err(5 * S));

        breaker.disable();
        assert_eq!(breaker.state(), BreakerState::Disabled);
        for _ in 0..10 {
            call(&breaker, true).unwrap();
        }
        breaker.configure(spec());
        assert_eq!(breaker.state(), BreakerState::Disabled, "nothing recorded");

        breaker.reset();
        assert_eq!(breaker.state(), BreakerState::Closed);
        before.record(true); // granted before: ignored
        for _ in 0..3 {
            call(&breaker, true).unwrap();
        }
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "a fresh window: 3 of 4"
        );
        assert_eq!(breaker.transitions(), 3);
        breaker.reset();
        assert_eq!(
            breaker.transitions(),
            3,
            "closed to closed is no transition"
        );
        call(&breaker, true).unwrap();
        assert_eq!(
            breaker.state(),
            BreakerState::Closed,
            "the window was emptied"
        );
    }
}
