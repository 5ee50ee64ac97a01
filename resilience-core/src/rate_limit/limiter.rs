//! [`RateLimiter`]: a GCRA limiter whose values can change while it runs, direct or keyed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::control::{self, Control};
use super::gcra::{Admission, Gcra};
use super::keyed::Keyed;
use super::reschedule::{Changes, Move, Remap, Scope};
use super::{LimitMode, RateLimitSpec};
use crate::clock::{Clock, nanos};
use crate::rejected::Rejected;

/// A value alone on its cache line (128 bytes: two 64-byte lines, as adjacent-line
/// prefetchers fetch pairs).
#[derive(Debug)]
#[repr(align(128))]
struct CacheLine<T>(T);

/// A rate limiter: one GCRA cell for unkeyed calls and a map of cells for keyed ones, sharing
/// one set of values. The values are atomics, so a named policy's limit can change while
/// calls run: the next admission uses the new values, and the recorded admissions (the TAT)
/// are kept, so a change never forgets recent traffic.
///
/// Time is tokio's clock ([`tokio::time::Instant`]) wherever tokio can pause it, so tests with
/// paused time see exact admission times; elsewhere (a tokio built without `test-util`, or a
/// thread outside any runtime) it is a calibrated TSC clock, which costs half as much to read.
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::Duration;
/// use resilience::rate_limit::{RateLimitSpec, RateLimiter};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let limiter = RateLimiter::new(RateLimitSpec::new(2, Duration::from_secs(1)));
/// let start = tokio::time::Instant::now();
/// for _ in 0..3 {
///     limiter.until_ready(None).await.unwrap();
/// }
/// assert_eq!(start.elapsed(), Duration::from_secs(1)); // admitted at 0, 0.5s and 1s
/// # }
/// ```
#[derive(Debug)]
pub struct RateLimiter {
    interval: AtomicU64,
    tolerance: AtomicU64,
    /// `u64::MAX`: wait as long as needed; 0: reject mode.
    max_wait: AtomicU64,
    /// `calls` in the high half, `burst` in the low half: what a costly call is measured
    /// against (see [`capacity`](Self::capacity)).
    limits: AtomicU64,
    /// The permits every call takes (a policy's `cost`); 0: none, each site's own.
    cost: AtomicU64,
    spec: Mutex<RateLimitSpec>,
    clock: Clock,
    /// The unkeyed cell, alone on its cache line: every check writes it, so the values read
    /// next to it must not share the line (two threads would bounce it on each read).
    direct: CacheLine<Gcra>,
    /// The keys' cells, made on the first keyed call (an unkeyed limiter never pays for them).
    keyed: OnceLock<Keyed>,
    /// The limit a server advertised (`X-RateLimit-Limit`) when lower than `calls`; 0: none.
    advertised: std::sync::atomic::AtomicU32,
    /// The window of the advertised limit in nanoseconds (0: the configured `period`).
    advertised_window: AtomicU64,
    /// Pauses and lower limits learned from a server, which move slots already reserved.
    changes: Changes,
    /// The pace the server's 429s set (see [`control`](super::control)), under the log's lock.
    control: Mutex<Control>,
    /// Whether `control` holds the pace below the ceiling: completed calls then tick it.
    recovering: AtomicBool,
    /// When the pace was last recomputed (at most once an interval).
    ticked_at: AtomicU64,
    /// Pace changes made by 429s so far (see [`epoch`](Self::epoch)).
    epoch: AtomicU64,
    /// The slots and release times of the last callers woken from a reserved slot of the
    /// unkeyed cell; see [`release_gap`](Self::release_gap).
    released: Mutex<Released>,
    /// Whether a server that states no limit answered 429: it may be a strict leaky bucket,
    /// whose millisecond clock refuses any two sends closer than the interval, so the release
    /// spacing no longer gives way to lateness; see [`release_gap`](Self::release_gap).
    strict_spacing: AtomicBool,
    /// Whether the server answered 429 at all: a window of releases then keeps a timer tick
    /// of margin; see [`release_gap`](Self::release_gap).
    refused: AtomicBool,
}

/// The releases [`RateLimiter::release_gap`] spaces a new one from: the last window's worth
/// (at least the last one), in release order.
#[derive(Debug, Default)]
struct Released {
    /// `(slot, release)`, oldest first.
    window: VecDeque<(u64, u64)>,
}

impl Released {
    /// The longest window remembered: 16 KiB of releases.
    const MAX_WINDOW: usize = 1024;

    /// The last release's slot and time.
    fn last(&self) -> Option<(u64, u64)> {
        self.window.back().copied()
    }

    /// The earliest a release for `slot` may go: no closer to the release `window` before
    /// it than their slots are.
    fn window_bound(&self, window: usize, slot: u64) -> Option<u64> {
        let len = self.window.len();
        let &(old_slot, old_release) = self.window.get(len.checked_sub(window)?)?;
        Some(old_release.saturating_add(slot.saturating_sub(old_slot)))
    }

    /// Records a release, keeping `window` of them (the last alone without a window).
    fn record(&mut self, window: Option<usize>, slot: u64, release: u64) {
        self.window.push_back((slot, release));
        let keep = window.unwrap_or(1).max(1);
        while self.window.len() > keep {
            self.window.pop_front();
        }
    }
}

impl RateLimiter {
    /// A limiter with these values, at full capacity.
    pub fn new(spec: RateLimitSpec) -> Self {
        let limiter = RateLimiter {
            interval: AtomicU64::new(0),
            tolerance: AtomicU64::new(0),
            max_wait: AtomicU64::new(u64::MAX),
            limits: AtomicU64::new(0),
            cost: AtomicU64::new(0),
            spec: Mutex::new(spec),
            clock: Clock::new(),
            direct: CacheLine(Gcra::new()),
            keyed: OnceLock::new(),
            advertised: std::sync::atomic::AtomicU32::new(0),
            advertised_window: AtomicU64::new(0),
            changes: Changes::default(),
            control: Mutex::new(Control::default()),
            recovering: AtomicBool::new(false),
            ticked_at: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            released: Mutex::new(Released::default()),
            strict_spacing: AtomicBool::new(false),
            refused: AtomicBool::new(false),
        };
        limiter.configure(spec);
        limiter
    }

    /// Replaces the values; recorded admissions are kept.
    ///
    /// Values the macro and YAML refuse (see [`RateLimitSpec::validate`]) are not refused here
    /// (a limiter is made in code that cannot fail), but logged (`error` level, target
    /// `resilience::rate_limit`) and read as the nearest allowed ones: `calls = 0` as 1, a
    /// zero `period` as a nanosecond.
    ///
    /// ```
    /// # use resilience_core as resilience;
    /// use std::time::Duration;
    /// use resilience::rate_limit::{LimitMode, RateLimitSpec, RateLimiter};
    ///
    /// let spec = RateLimitSpec::new(0, Duration::from_secs(1)).mode(LimitMode::Reject);
    /// assert_eq!(spec.validate().unwrap_err(), "`calls` must be at least 1, found 0");
    /// let limiter = RateLimiter::new(spec); // logged, and one call per second
    /// assert!(limiter.check(None).is_ok());
    /// assert!(limiter.check(None).is_err());
    /// ```
    pub fn configure(&self, spec: RateLimitSpec) {
        if let Err(problem) = spec.validate() {
            tracing::error!(
                target: "resilience::rate_limit",
                "a rate limit was made with a bad value: {problem}; using the nearest allowed value"
            );
        }
        // Under the log's lock: a 429 or a tick computing a pace from the old values must not
        // store it over the new ones.
        let _log = self.changes.lock();
        let (interval, tolerance) = self.pace_of(spec);
        let max_wait = match (spec.mode, spec.max_wait) {
            (LimitMode::Reject, _) => 0,
            (LimitMode::Wait, None) => u64::MAX,
            (LimitMode::Wait, Some(limit)) => nanos(limit),
        };
        self.interval.store(interval, Ordering::Relaxed);
        self.tolerance.store(tolerance, Ordering::Relaxed);
        self.max_wait.store(max_wait, Ordering::Relaxed);
        // `calls` 0 in this word is the unlimited state (`calls` 0 itself reads as 1, as in
        // `RateLimitSpec::interval`).
        let calls = if spec.is_unlimited() {
            0
        } else {
            spec.calls.max(1)
        };
        self.limits.store(
            u64::from(calls) << 32 | u64::from(spec.burst),
            Ordering::Relaxed,
        );
        self.cost.store(spec.cost.unwrap_or(0), Ordering::Relaxed);
        *self
            .spec
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = spec;
    }

    /// The interval and tolerance `spec` sets, at the advertised limit when it is lower and at
    /// the pace the server's 429s set while the controller recovers.
    fn pace_of(&self, spec: RateLimitSpec) -> (u64, u64) {
        let ceiling = self.ceiling_of(spec);
        let mut interval = ceiling;
        if self.recovering.load(Ordering::Relaxed) && ceiling > 0 {
            let control = *self
                .control
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let rate = control.rate(self.now(), nanos(spec.period), per_second(ceiling));
            interval = ceiling.max(interval_of(rate));
        }
        (interval, interval.saturating_mul(u64::from(spec.burst)))
    }

    /// The interval `spec` sets, or the advertised limit's when that is slower: the fastest
    /// pace the controller may go back to.
    fn ceiling_of(&self, spec: RateLimitSpec) -> u64 {
        let interval = nanos(spec.interval());
        let advertised = self.advertised.load(Ordering::Relaxed);
        if advertised == 0 {
            return interval;
        }
        let window = match self.advertised_window.load(Ordering::Relaxed) {
            0 => nanos(spec.period),
            window => window,
        };
        interval.max(window / u64::from(advertised))
    }

    /// The most permits one call can take: `calls + burst`, with `calls` lowered to the limit a
    /// server advertised when that is lower, as the pace in force is. `None` without a limit
    /// ([`RateLimitSpec::UNLIMITED`]).
    ///
    /// ```
    /// # use resilience_core as resilience;
    /// use std::time::Duration;
    /// use resilience::rate_limit::{RateLimitSpec, RateLimiter};
    ///
    /// let limiter = RateLimiter::new(RateLimitSpec::new(90_000, Duration::from_secs(60)).burst(10));
    /// assert_eq!(limiter.capacity(), Some(90_010));
    /// assert_eq!(RateLimiter::new(RateLimitSpec::UNLIMITED).capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<u64> {
        let limits = self.limits.load(Ordering::Relaxed);
        let (calls, burst) = ((limits >> 32) as u32, limits as u32);
        if calls == 0 {
            return None;
        }
        let advertised = self.advertised.load(Ordering::Relaxed);
        let calls = match advertised {
            0 => calls,
            advertised => calls.min(advertised),
        };
        Some(u64::from(calls.max(1)) + u64::from(burst))
    }

    /// The permits every call takes whatever its site computes: a policy's `cost`, if it sets
    /// one.
    #[inline]
    pub fn fixed_cost(&self) -> Option<u64> {
        match self.cost.load(Ordering::Relaxed) {
            0 => None,
            cost => Some(cost),
        }
    }

    /// The current values.
    pub fn spec(&self) -> RateLimitSpec {
        *self
            .spec
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Nanoseconds since this limiter was created (see [`Clock`]).
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Asks for a permit now, for `key` (a hash of the key value) or for the limiter as a
    /// whole. `Ok(wait)`: admitted, and the slot is `wait` from now (zero: at once). `Err(wait)`:
    /// refused (reject mode, or the wait exceeds `max_wait`); a permit is free in `wait`.
    #[inline]
    pub fn check(&self, key: Option<u64>) -> Result<Duration, Duration> {
        match self.acquire(key) {
            // The common case, spared the nanoseconds-to-Duration split.
            Admission::After(0) => Ok(Duration::ZERO),
            Admission::After(wait) => Ok(Duration::from_nanos(wait)),
            Admission::Refused(wait) => Err(Duration::from_nanos(wait)),
        }
    }

    /// [`check`](Self::check) with its outcome in one machine word (see [`Verdict`]), for
    /// callers that keep or pass on the outcome rather than test it at once: an admission
    /// without a wait is a single zero word, where `check`'s `Result<Duration, Duration>` is
    /// three words to write.
    ///
    /// ```
    /// # use resilience_core as resilience;
    /// use std::time::Duration;
    /// use resilience::rate_limit::{LimitMode, RateLimitSpec, RateLimiter};
    ///
    /// let limiter = RateLimiter::new(
    ///     RateLimitSpec::new(1, Duration::from_secs(1)).mode(LimitMode::Reject),
    /// );
    /// assert!(limiter.check_verdict(None).is_admitted());
    /// let refused = limiter.check_verdict(None);
    /// assert!(!refused.is_admitted());
    /// assert!(refused.wait() <= Duration::from_secs(1));
    /// ```
    #[inline]
    pub fn check_verdict(&self, key: Option<u64>) -> Verdict {
        match self.acquire(key) {
            Admission::After(wait) => Verdict(wait.min(Verdict::REFUSED - 1)),
            Admission::Refused(wait) => Verdict(wait.min(Verdict::REFUSED - 1) | Verdict::REFUSED),
        }
    }

    /// [`check_verdict`](Self::check_verdict) for a call that takes `cost` permits (tokens,
    /// bytes): it is admitted when a unit call would be, and the calls after it wait for its
    /// permits (see [`Gcra::acquire_n`]). A cost of 0 is admitted at once and takes nothing.
    /// A cost above [`capacity`](Self::capacity) could never be admitted: it is
    /// `Err(Rejected::CostTooHigh)` at once, whatever the mode, and nothing is reserved.
    ///
    /// ```
    /// # use resilience_core as resilience;
    /// use std::time::Duration;
    /// use resilience::Rejected;
    /// use resilience::rate_limit::{RateLimitSpec, RateLimiter};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let limiter = RateLimiter::new(RateLimitSpec::new(90_000, Duration::from_secs(60)));
    /// assert!(limiter.check_verdict_n(None, 45_000).unwrap().is_immediate());
    /// // 45,000 permits at 1,500 a second: the next call waits 30 s
    /// let next = limiter.check_verdict_n(None, 100).unwrap();
    /// assert_eq!(next.wait().as_secs(), 30);
    /// assert!(matches!(
    ///     limiter.check_verdict_n(None, 120_000),
    ///     Err(Rejected::CostTooHigh { cost: 120_000, capacity: 90_000, .. })
    /// ));
    /// # }
    /// ```
    #[inline]
    pub fn check_verdict_n(&self, key: Option<u64>, cost: u64) -> Result<Verdict, Rejected> {
        self.within_capacity(cost)?;
        let admission =
            self.acquire_n_at(key, cost, self.now(), self.max_wait.load(Ordering::Relaxed));
        Ok(match admission {
            Admission::After(wait) => Verdict(wait.min(Verdict::REFUSED - 1)),
            Admission::Refused(wait) => Verdict(wait.min(Verdict::REFUSED - 1) | Verdict::REFUSED),
        })
    }

    /// `Err(Rejected::CostTooHigh)` when `cost` exceeds the capacity in force.
    pub(crate) fn within_capacity(&self, cost: u64) -> Result<(), Rejected> {
        match self.capacity() {
            Some(capacity) if cost > capacity => Err(Rejected::CostTooHigh {
                cost,
                capacity,
                period: self.spec().period,
            }),
            _ => Ok(()),
        }
    }

    /// One admission attempt now, with the current values.
    #[inline]
    fn acquire(&self, key: Option<u64>) -> Admission {
        self.acquire_at(key, self.now(), self.max_wait.load(Ordering::Relaxed))
    }

    /// [`acquire`](Self::acquire) at `now`, waiting at most `max_wait`.
    #[inline]
    fn acquire_at(&self, key: Option<u64>, now: u64, max_wait: u64) -> Admission {
        self.acquire_n_at(key, 1, now, max_wait)
    }

    /// [`acquire_at`](Self::acquire_at) for a call taking `cost` permits (see
    /// [`Gcra::acquire_n`]; the capacity is the caller's to check).
    #[inline]
    fn acquire_n_at(&self, key: Option<u64>, cost: u64, now: u64, max_wait: u64) -> Admission {
        let interval = self.interval.load(Ordering::Relaxed);
        let tolerance = self.tolerance.load(Ordering::Relaxed);
        match key {
            None => self
                .direct
                .0
                .acquire_n_within(now, interval, tolerance, max_wait, cost),
            Some(key) => self.keyed_acquire(key, now, interval, tolerance, max_wait, cost),
        }
    }

    fn keyed_acquire(
        &self,
        key: u64,
        now: u64,
        interval: u64,
        tolerance: u64,
        max_wait: u64,
        cost: u64,
    ) -> Admission {
        self.keyed().with_cell(key, now, |cell| {
            cell.acquire_n_within(now, interval, tolerance, max_wait, cost)
        })
    }

    fn keyed(&self) -> &Keyed {
        self.keyed.get_or_init(Keyed::default)
    }

    /// The number of keys currently tracked (idle ones linger until a sweep: see the module
    /// `keyed`).
    pub fn tracked_keys(&self) -> usize {
        self.keyed.get().map_or(0, Keyed::len)
    }

    /// Waits until admitted (sleeping on tokio's clock) or returns the refusal. A pause or a
    /// lower limit learned from the server while it sleeps moves its slot (see
    /// [`learn`](Self::learn)).
    pub async fn until_ready(&self, key: Option<u64>) -> Result<(), Duration> {
        self.tick();
        let generation = self.generation();
        let wait = self.check(key)?;
        if !wait.is_zero() {
            self.sleep_reserved(key, 1, generation, wait).await;
        }
        Ok(())
    }

    /// [`until_ready`](Self::until_ready) for a call that takes `cost` permits (see
    /// [`check_verdict_n`](Self::check_verdict_n)): a refusal is
    /// `Rejected::RateLimited { retry_after }`, and a cost above the capacity
    /// `Rejected::CostTooHigh`, at once.
    ///
    /// ```
    /// # use resilience_core as resilience;
    /// use std::time::Duration;
    /// use resilience::rate_limit::{RateLimitSpec, RateLimiter};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let limiter = RateLimiter::new(RateLimitSpec::new(10, Duration::from_secs(1)));
    /// let start = tokio::time::Instant::now();
    /// limiter.until_ready_n(None, 5).await.unwrap();
    /// limiter.until_ready_n(None, 1).await.unwrap();
    /// assert_eq!(start.elapsed(), Duration::from_millis(500)); // after the first call's 5
    /// # }
    /// ```
    pub async fn until_ready_n(&self, key: Option<u64>, cost: u64) -> Result<(), Rejected> {
        self.tick();
        let generation = self.generation();
        let verdict = self.check_verdict_n(key, cost)?;
        if !verdict.is_admitted() {
            return Err(Rejected::RateLimited {
                retry_after: verdict.wait(),
            });
        }
        if !verdict.is_immediate() {
            self.sleep_reserved(key, cost, generation, verdict.wait())
                .await;
        }
        Ok(())
    }

    /// The generation of the learned changes, read before a reservation and handed to
    /// [`sleep_reserved`](Self::sleep_reserved).
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.changes.generation()
    }

    /// Sleeps until the slot reserved `wait` from now (for `key`, at `generation`, by a call
    /// taking `cost` permits), and on until wherever a pause or a lower limit learned
    /// meanwhile has moved it.
    pub(crate) async fn sleep_reserved(
        &self,
        key: Option<u64>,
        cost: u64,
        generation: u64,
        wait: Duration,
    ) {
        let mut slot = self.now().saturating_add(nanos(wait));
        let (mut generation, mut wait) = (generation, wait);
        loop {
            super::wake::sleep(wait, self.interval()).await;
            match self.next_wait(key, cost, &mut generation, &mut slot) {
                Some(next) => wait = next,
                None if key.is_none() => match self.release_gap(slot) {
                    Some(gap) => wait = gap,
                    None => return,
                },
                None => return,
            }
        }
    }

    /// After a sleep to the reserved `slot`, for the unkeyed cell: `None` to go now (and the
    /// release is recorded), or how much longer to wait so that this release is no closer to
    /// the last one than their slots are, less half a millisecond; and, until a server that
    /// states no limit has answered 429, no later than a timer tick past its own slot.
    ///
    /// tokio's timer fires on whole milliseconds, a little late, and never early: a caller
    /// woken 2 ms late followed by one woken on time would leave 18 ms between two sends at
    /// 50/s, which a strict leaky bucket (nginx `limit_req` without `burst`, whose clock is in
    /// milliseconds) refuses. The slack and the cap are trades measured in the quota lab and
    /// `tests/nginx_pacing.rs`: no slack, and a wait shorter than a timer tick rounds up to a
    /// whole one, so every late wake-up added a millisecond for good (the bucket,
    /// fixed-window and nginx-burst rows went from 1.055 to 1.08 of N/qps); a whole
    /// millisecond, and gaps of 19 ms got through (5 to 9 429s from strict nginx in 300
    /// requests, against 3 with half of one). Even so, each wake-up's rounding was passed on
    /// down a busy queue (1.067 of N/qps on the token bucket): the cap stops that (1.050),
    /// but lets a 19 ms gap through after a late wake-up (7 429s from strict nginx in 300
    /// instead of 3 or 4). So the cap holds until a server refuses a request without stating
    /// its limit, the one kind of server that may be counting milliseconds between sends. A
    /// release long after the last (more than two intervals) owes it nothing.
    ///
    /// Where the wake-up is precise (see [`wake::precise`](super::wake::precise): tokio's clock
    /// is the real one and the interval at least 2 ms), a release is late by tens of
    /// microseconds, not a tick, and there is nothing to give back: the slack is then none, and
    /// a release keeps at least its slots' spacing after the last.
    ///
    /// The cap lets a late release pass its lateness on to nobody, so the release a window
    /// of `calls` later may come that much closer to it than a window: a sliding-window log
    /// of exactly `calls` (the quota lab's `sliding` row, a Redis sorted-set limiter) counts
    /// `calls + 1` in its window and answers 429, about three times in a batch of 1000 at
    /// 50/s, each costing a slot and its retry. So a release is also no closer to the one
    /// `capacity` releases before it than their slots are (uncapped: lateness adds up once
    /// per window, not once per release, tens of microseconds a window where the wake-up
    /// is precise). That alone still let two 429s a batch through, from the jitter between
    /// a send and the server's stamp (two requests on two connections): once the server has
    /// answered 429 at all, the window also keeps a timer tick of margin, 0.1% of a 1 s
    /// window, where the 429s each cost 2% of a window. Limiters of more than
    /// [`Released::MAX_WINDOW`] calls a window skip this: a millisecond is then within any
    /// window's rounding.
    fn release_gap(&self, slot: u64) -> Option<Duration> {
        const TICK: u64 = 1_000_000;
        let slack: u64 = if super::wake::precise(self.interval()) {
            0
        } else {
            500_000
        };
        let now = self.now();
        let mut released = self
            .released
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let window = self
            .capacity()
            .and_then(|capacity| usize::try_from(capacity).ok())
            .filter(|&capacity| capacity <= Released::MAX_WINDOW);
        let margin = if self.refused.load(Ordering::Relaxed) {
            TICK
        } else {
            0
        };
        if let Some(earliest) = window.and_then(|window| released.window_bound(window, slot)) {
            let earliest = earliest.saturating_add(margin);
            if now < earliest {
                return Some(Duration::from_nanos(earliest - now));
            }
        }
        if let Some((last_slot, last_release)) = released.last() {
            let spacing = slot.saturating_sub(last_slot);
            let interval = self.interval.load(Ordering::Relaxed);
            if now.saturating_sub(last_release) > interval.saturating_mul(2) {
                // Released long ago: its lateness is not this one's business.
                released.record(window, slot, now);
                return None;
            }
            // Capped: the lateness of one wake-up is not passed down the whole queue.
            let cap = if self.strict_spacing.load(Ordering::Relaxed) {
                u64::MAX
            } else {
                TICK
            };
            let earliest = last_release
                .saturating_add(spacing)
                .saturating_sub(slack)
                .min(slot.saturating_add(cap));
            if now < earliest {
                return Some(Duration::from_nanos(earliest - now));
            }
            if slot < last_slot {
                return None;
            }
        }
        released.record(window, slot, now);
        None
    }

    /// [`sleep_reserved`](Self::sleep_reserved), sleeping the thread.
    pub(crate) fn sleep_reserved_blocking(
        &self,
        key: Option<u64>,
        cost: u64,
        generation: u64,
        wait: Duration,
    ) {
        let mut slot = self.now().saturating_add(nanos(wait));
        let (mut generation, mut wait) = (generation, wait);
        loop {
            std::thread::sleep(wait);
            match self.next_wait(key, cost, &mut generation, &mut slot) {
                Some(next) => wait = next,
                None => return,
            }
        }
    }

    /// After a sleep to `slot`: `None` to go, or how much longer to sleep because the slot
    /// moved (or was lost from the log, and a new one was taken).
    fn next_wait(
        &self,
        key: Option<u64>,
        cost: u64,
        generation: &mut u64,
        slot: &mut u64,
    ) -> Option<Duration> {
        let (remap, latest) = self.changes.remap(key, *generation, *slot);
        *generation = latest;
        let now = self.now();
        match remap {
            Remap::Unchanged => None,
            Remap::Moved(moved) if moved > now => {
                *slot = moved;
                Some(Duration::from_nanos(moved - now))
            }
            Remap::Moved(moved) => {
                *slot = moved;
                None
            }
            Remap::Lost => {
                // Too many changes since this slot was reserved to know where it went: queue
                // again, behind everyone (the old slot goes unused, on the strict side).
                *generation = self.generation();
                match self.acquire_n_at(key, cost, now, u64::MAX) {
                    Admission::After(0) | Admission::Refused(_) => None,
                    Admission::After(wait) => {
                        *slot = now.saturating_add(wait);
                        Some(Duration::from_nanos(wait))
                    }
                }
            }
        }
    }

    /// The interval, tolerance and max wait in force, in nanoseconds (`u64::MAX`: no max
    /// wait), for a backend that keeps the schedule elsewhere.
    #[cfg(feature = "redis")]
    pub(crate) fn params(&self) -> (u64, u64, u64) {
        (
            self.interval.load(Ordering::Relaxed),
            self.tolerance.load(Ordering::Relaxed),
            self.max_wait.load(Ordering::Relaxed),
        )
    }

    /// Follows what a server advertised on a response (see [`Quota`](crate::http::Quota)):
    ///
    /// - a limit (`X-RateLimit-Limit` and its twins) below the configured `calls`: admits at
    ///   most that many per window (the one the server states, else the configured `period`)
    ///   from now on, and spreads the slots already reserved out to that pace; a limit raised
    ///   again lets the pace back up towards `calls`, never above it;
    /// - `Remaining: 0` with a `Reset` longer than a window (and than [`hold_threshold`]):
    ///   the quota is spent until then, so nothing is admitted before the reset, the callers
    ///   already waiting included, and the release is at the pace, not all at once.
    ///   A shorter `Reset` is normal window mechanics (a bucket refilling to full, a window
    ///   sliding or about to roll over), left to the control loop;
    /// - `Retry-After` is not read here: it belongs to the request that got it (a `#[retry]`
    ///   waits it out), and a 429 reaches the limiter through [`throttled`](Self::throttled).
    ///
    /// Returns what changed, for the caller to report.
    ///
    /// [`hold_threshold`]: Self::hold_threshold
    pub fn learn(&self, key: Option<u64>, quota: &crate::quota::Quota) -> Learned {
        let mut learned = Learned::default();
        if let Some(limit) = quota.limit.filter(|limit| *limit > 0) {
            learned.limit = self.advertise(limit, quota.window);
        }
        if let (Some(0), Some(reset)) = (quota.remaining, quota.reset) {
            let spec = self.spec();
            let window = quota.window.unwrap_or(spec.period);
            if reset > self.hold_threshold().max(window) {
                // Spent for longer than a window: the callers already waiting would only be
                // refused, so they wait too.
                self.pause_for(key, reset);
                learned.pause = Some(reset);
            }
        }
        self.tick();
        learned
    }

    /// Takes `limit` per `window` (the configured period when `None`) as the server's limit;
    /// `Some(limit)` when that lowered the pace below `calls`.
    fn advertise(&self, limit: u32, window: Option<Duration>) -> Option<u32> {
        let window = window.map_or(0, |window| nanos(window).max(1));
        let before = self.advertised.swap(limit, Ordering::Relaxed);
        let window_before = self.advertised_window.swap(window, Ordering::Relaxed);
        if before == limit && window_before == window {
            return None;
        }
        // Under the log's lock, the cells moved before the new pace is stored: a caller
        // arriving in between must not be admitted at the new tolerance ahead of the queue,
        // and two responses learning at once stretch it once.
        let log = self.changes.lock();
        let spec = self.spec();
        let (old, new) = (self.pace(), self.pace_of(spec));
        // Every waiting slot follows the new pace, however many `Remaining` says fit: on a
        // token bucket those could go at once, but on a sliding window `Remaining` is room in
        // the whole window, spent by sending them early (keeping them made the first window
        // of the quota lab's `learned` server overshoot 40 by a few, and each overshoot is a
        // 429).
        self.repace(log, self.now(), old, new, None);
        (self.ceiling_of(spec) > nanos(spec.interval())).then_some(limit)
    }

    /// Stores the pace `new` (interval, tolerance) in place of `old`, under the log's lock.
    /// Slower: the slots reserved after `at` at the old pace are spread out at the new one, or
    /// along `curve` (a cut's recovery) when given. Faster: they are kept (the sleepers cannot
    /// wake earlier anyway).
    fn repace(
        &self,
        mut log: std::sync::MutexGuard<'_, super::reschedule::Log>,
        at: u64,
        old: (u64, u64),
        new: (u64, u64),
        curve: Option<control::Curve>,
    ) {
        if new.0 > old.0 {
            let stretch = match curve {
                Some(curve) => Move::Recover { from: old.0, curve },
                None => Move::Stretch {
                    from: old.0,
                    to: new.0,
                },
            };
            self.move_cells(&log, Scope::All, at, stretch, (old, new), 0);
            self.store_pace(new);
            self.changes
                .publish(&mut log, at, Scope::All, stretch, None);
        } else {
            self.store_pace(new);
        }
    }

    fn store_pace(&self, (interval, tolerance): (u64, u64)) {
        self.interval.store(interval, Ordering::Relaxed);
        self.tolerance.store(tolerance, Ordering::Relaxed);
    }

    /// A wait longer than this is a quota spent, not a request a few milliseconds early:
    /// four slots at the pace in force, and at least a second (servers round `Retry-After` and
    /// `Reset` up to whole seconds, so "1" is the shortest wait they can say).
    pub fn hold_threshold(&self) -> Duration {
        let four_slots = self.interval.load(Ordering::Relaxed).saturating_mul(4);
        Duration::from_nanos(four_slots).max(Duration::from_secs(1))
    }

    /// A server answered 429 to a request sent at `epoch` (read by [`epoch`](Self::epoch)
    /// just before it was sent), with its `Retry-After` if any. For the unkeyed cell, the
    /// control loop (see [the module docs](super)) cuts the pace to 70% and spreads the
    /// callers already waiting out to it, or nudges it on a strike, or does nothing (the same
    /// event as the last change, or a lone 429 on the plateau). The `Retry-After` is the
    /// request's own to wait out, except when it is longer than
    /// [`hold_threshold`](Self::hold_threshold), or when 429s keep coming at the reduced pace
    /// (the fourth strike in a row): then the quota is spent, and every caller (of `key`, or
    /// all) waits until then, the ones already waiting included, and is released at the pace.
    /// A key's quota is its own: a 429 for one key never changes the pace of the others, and
    /// holds only that key.
    pub fn throttled(
        &self,
        key: Option<u64>,
        epoch: u64,
        retry_after: Option<Duration>,
    ) -> Learned {
        let mut learned = Learned::default();
        let log = self.changes.lock();
        let spec = self.spec();
        let period = nanos(spec.period);
        let now = self.now();
        let ceiling = self.ceiling_of(spec);
        let strikes = match key {
            // A key's quota is its own: a 429 for one key does not slow the others.
            Some(_) => {
                drop(log);
                0
            }
            None => {
                let stale = epoch != self.epoch.load(Ordering::Relaxed);
                let (cut, strikes, curve) = {
                    let mut control = self
                        .control
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    // A server that states its limit, with the pace within it: the 429 is a
                    // request on the edge, not an overshoot to drain.
                    let advertised = self.advertised.load(Ordering::Relaxed) > 0;
                    if !advertised {
                        self.strict_spacing.store(true, Ordering::Relaxed);
                    }
                    self.refused.store(true, Ordering::Relaxed);
                    let cut =
                        control.throttled(now, stale, advertised, period, per_second(ceiling));
                    let curve = control.curve(period, per_second(ceiling));
                    (cut, control.strikes(now, period), curve)
                };
                if cut != control::Reaction::Ignored {
                    // Requests already on their way belong to this event.
                    self.epoch.fetch_add(1, Ordering::Relaxed);
                }
                match cut {
                    control::Reaction::Paced(_) if ceiling > 0 => {
                        self.recovering.store(true, Ordering::Relaxed);
                        self.ticked_at.store(now, Ordering::Relaxed);
                        let (old, new) = (self.pace(), self.pace_of(spec));
                        self.repace(log, now, old, new, curve);
                        learned.pace = Some(Duration::from_nanos(new.0));
                    }
                    _ => drop(log),
                }
                strikes
            }
        };
        if let Some(retry_after) = retry_after {
            if retry_after > self.hold_threshold() || strikes >= control::HOLD_STRIKES {
                self.pause_for(key, retry_after);
                learned.pause = Some(retry_after);
            }
        }
        learned
    }

    /// The number of 429s the control loop counted so far: read before a call is sent and
    /// handed to [`throttled`](Self::throttled) if it comes back 429, so that a 429 on a
    /// request already on its way when the last one was counted is the same event. (A counter
    /// rather than the send time: no clock read on the happy path.)
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// The spacing of admissions in force: `period / calls`, or slower while a server's
    /// advertised limit or its 429s hold the pace down.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval.load(Ordering::Relaxed))
    }

    /// Brings the pace up to date while the control loop recovers from a 429 (at most once
    /// an interval; one relaxed load otherwise). The `#[rate_limited]` executors call it after
    /// each completed call, and [`until_ready`](Self::until_ready) before each; code that
    /// drives the limiter through [`check`](Self::check) and [`throttled`](Self::throttled)
    /// calls it after each call.
    #[inline]
    pub fn tick(&self) {
        if self.recovering.load(Ordering::Relaxed) {
            self.tick_slow();
        }
    }

    #[cold]
    fn tick_slow(&self) {
        let now = self.now();
        let interval = self.interval.load(Ordering::Relaxed);
        if now.saturating_sub(self.ticked_at.load(Ordering::Relaxed)) < interval {
            return;
        }
        self.ticked_at.store(now, Ordering::Relaxed);
        let log = self.changes.lock();
        let spec = self.spec();
        let new = self.pace_of(spec);
        let ceiling = self.ceiling_of(spec);
        {
            let mut control = self
                .control
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            control.settle(now, nanos(spec.period), per_second(ceiling));
            if !control.recovering() {
                self.recovering.store(false, Ordering::Relaxed);
            }
        }
        let old = self.pace();
        // Recovery only ever speeds up; a slower pace here is a reload's, which keeps slots.
        if new.0 < old.0 {
            self.repace(log, now, old, new, None);
        }
    }

    /// Admits nothing (for `key`, or at all) for `pause`, as when the server answered 429
    /// with a Retry-After: every caller sharing this limiter pauses together.
    ///
    /// Callers already asleep on a reserved slot are moved back by the pause too, so none of
    /// them is sent during it.
    pub fn pause_for(&self, key: Option<u64>, pause: Duration) {
        let scope = match key {
            None => Scope::Unkeyed,
            Some(key) => Scope::Key(key),
        };
        let mut log = self.changes.lock();
        let at = self.now();
        let until = at.saturating_add(nanos(pause));
        // Only the part not already in force: several 429s with one Retry-After (or several
        // responses saying so) pause the queue once, and a longer one extends it.
        let by = until.saturating_sub(log.pause_end(scope).max(at));
        let pace = self.pace();
        let floor = until.saturating_add(pace.1);
        self.move_cells(&log, scope, at, Move::Shift(by), (pace, pace), floor);
        log.set_pause_end(scope, until, at);
        if by > 0 {
            self.changes
                .publish(&mut log, at, scope, Move::Shift(by), Some(until));
        }
    }

    /// The interval and tolerance in force, in nanoseconds.
    fn pace(&self) -> (u64, u64) {
        (
            self.interval.load(Ordering::Relaxed),
            self.tolerance.load(Ordering::Relaxed),
        )
    }

    /// Moves the reserved slots of `scope`'s cells at `at` (see [`Gcra::reschedule`]), under
    /// the log's lock; `paces` is the (interval, tolerance) before and after.
    fn move_cells(
        &self,
        log: &super::reschedule::Log,
        scope: Scope,
        at: u64,
        change: Move,
        paces: ((u64, u64), (u64, u64)),
        floor: u64,
    ) {
        let (old, new) = paces;
        match scope {
            Scope::Unkeyed => {
                let held = log.held_until(scope);
                self.direct.0.reschedule(at, change, old, new, floor, held);
            }
            Scope::Key(key) => {
                let held = log.held_until(scope);
                self.keyed().with_cell(key, at, |cell| {
                    cell.reschedule(at, change, old, new, floor, held);
                });
            }
            Scope::All => {
                let held = log.held_until(Scope::Unkeyed);
                self.direct.0.reschedule(at, change, old, new, floor, held);
                if let Some(keyed) = self.keyed.get() {
                    keyed.for_each(|key, cell| {
                        let held = log.held_until(Scope::Key(key));
                        cell.reschedule(at, change, old, new, floor, held);
                    });
                }
            }
        }
    }
}

/// What [`RateLimiter::learn`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Learned {
    /// The limiter now admits at most this many per period (it was more).
    pub limit: Option<u32>,
    /// The limiter admits nothing for this long.
    pub pause: Option<Duration>,
    /// A 429 slowed the limiter down: it now admits one call every `pace` (and recovers
    /// from there).
    pub pace: Option<Duration>,
}

/// Admissions per second at `interval` nanoseconds apart.
fn per_second(interval: u64) -> f64 {
    1e9 / interval.max(1) as f64
}

/// The interval in nanoseconds of `rate` admissions per second (rounded up, at least 1).
fn interval_of(rate: f64) -> u64 {
    if rate.is_finite() && rate > 0.0 {
        // `as` saturates: a tiny rate is a very long interval, never a wrap
        (1e9 / rate).ceil().max(1.0) as u64
    } else {
        u64::MAX
    }
}

/// The outcome of [`RateLimiter::check_verdict`], in one word: admitted after [`wait`]
/// (zero: at once; the slot is reserved), or refused, with a permit free after [`wait`].
/// Waits are kept to under 2^63 ns (about 292 years).
///
/// [`wait`]: Verdict::wait
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict(u64);

impl Verdict {
    /// The refusal bit; the other bits are the wait in nanoseconds.
    const REFUSED: u64 = 1 << 63;

    /// Whether the call was admitted (possibly after [`wait`](Self::wait)).
    #[inline]
    pub const fn is_admitted(self) -> bool {
        self.0 & Self::REFUSED == 0
    }

    /// Whether the call was admitted at once, without a wait.
    #[inline]
    pub const fn is_immediate(self) -> bool {
        self.0 == 0
    }

    /// The wait in nanoseconds: until the reserved slot if admitted, until a permit is free
    /// if refused.
    #[inline]
    pub const fn wait_nanos(self) -> u64 {
        self.0 & !Self::REFUSED
    }

    /// The wait (see [`wait_nanos`](Self::wait_nanos)).
    #[inline]
    pub const fn wait(self) -> Duration {
        Duration::from_nanos(self.wait_nanos())
    }

    /// As [`RateLimiter::check`] reports it: `Ok(wait)` if admitted, `Err(wait)` if refused.
    #[inline]
    pub const fn into_result(self) -> Result<Duration, Duration> {
        if self.is_admitted() {
            Ok(self.wait())
        } else {
            Err(self.wait())
        }
    }
}

/// Hashes a key value for [`RateLimiter::check`]: the same value always gives the same hash
/// within a process. Distinct values share a limiter only on a 64-bit hash collision, which
/// errs on the strict side (the two keys share one quota).
///
/// foldhash with a per-process random seed: several times faster than SipHash on short keys,
/// and the seed keeps a caller from choosing keys that collide with someone else's quota.
#[inline]
pub fn key_hash<K: std::hash::Hash + ?Sized>(key: &K) -> u64 {
    use std::hash::BuildHasher;
    static STATE: std::sync::LazyLock<foldhash::fast::RandomState> =
        std::sync::LazyLock::new(foldhash::fast::RandomState::default);
    STATE.hash_one(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(limit: Option<u32>, remaining: u32, reset: u64) -> crate::quota::Quota {
        let (limit, remaining, reset) = (
            limit.map(|limit| limit.to_string()),
            remaining.to_string(),
            reset.to_string(),
        );
        crate::quota::Quota::parse(
            |name| match name {
                "x-ratelimit-limit" => limit.as_deref(),
                "x-ratelimit-remaining" => Some(remaining.as_str()),
                "x-ratelimit-reset" => Some(reset.as_str()),
                _ => None,
            },
            std::time::SystemTime::UNIX_EPOCH,
        )
    }

    /// `Remaining: 0` with a `Reset` within the window is window mechanics (a bucket refilling,
    /// a window sliding): no hold. A `Reset` past the window (and a second) is a spent quota:
    /// no new slot before it.
    #[tokio::test(start_paused = true)]
    async fn remaining_zero_holds_only_past_the_window() {
        let limiter = RateLimiter::new(RateLimitSpec::new(10, Duration::from_secs(1)));
        assert_eq!(limiter.learn(None, &quota(Some(10), 0, 1)).pause, None);
        assert_eq!(limiter.check(None), Ok(Duration::ZERO));
        let learned = limiter.learn(None, &quota(Some(10), 0, 30));
        assert_eq!(learned.pause, Some(Duration::from_secs(30)));
        assert_eq!(limiter.check(None), Ok(Duration::from_secs(30)));
        // and the release is at the pace, not all at once
        assert_eq!(limiter.check(None), Ok(Duration::from_millis(30_100)));
    }

    const MS: u64 = 1_000_000;

    /// A caller woken 2 ms late from its slot does not let the next one, woken on time, go
    /// 18 ms after it at 50/s: the next waits until half a millisecond short of the slots'
    /// own 20 ms, but never more than a tick past its own slot.
    /// 5 a second: the release a window after a late one keeps the window whole, though
    /// every release between them was capped at a tick past its slot; once the server has
    /// answered 429, with a tick of margin.
    #[tokio::test(start_paused = true)]
    async fn a_window_of_releases_is_never_shorter_than_its_slots() {
        for (refused, window_wait) in [(false, 3), (true, 4)] {
            let limiter = RateLimiter::new(RateLimitSpec::new(5, Duration::from_secs(1)));
            limiter.refused.store(refused, Ordering::Relaxed);
            let start = tokio::time::Instant::now();
            let at = |ms: u64| start + Duration::from_millis(ms);
            // the first of the window 3 ms late, the next four a tick late (the cap)
            tokio::time::advance(Duration::from_millis(103)).await;
            assert_eq!(limiter.release_gap(100 * MS), None);
            for slot in [300, 500, 700, 900] {
                tokio::time::advance(at(slot + 1) - tokio::time::Instant::now()).await;
                assert_eq!(limiter.release_gap(slot * MS), None, "slot {slot}");
            }
            // on time for its slot, a window after the first: 3 ms short of a window
            tokio::time::advance(at(1100) - tokio::time::Instant::now()).await;
            assert_eq!(
                limiter.release_gap(1100 * MS),
                Some(Duration::from_millis(window_wait))
            );
            tokio::time::advance(Duration::from_millis(window_wait)).await;
            assert_eq!(limiter.release_gap(1100 * MS), None);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_wake_up_does_not_bunch_the_next_release() {
        let limiter = RateLimiter::new(RateLimitSpec::new(50, Duration::from_secs(1)));
        tokio::time::advance(Duration::from_millis(102)).await;
        assert_eq!(limiter.release_gap(100 * MS), None);
        tokio::time::advance(Duration::from_millis(18)).await;
        // 19.5 ms after the last would be 121.5: capped at a tick past its slot, 121
        assert_eq!(
            limiter.release_gap(120 * MS),
            Some(Duration::from_millis(1))
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(limiter.release_gap(120 * MS), None);
        // one slot later, 19.5 ms after the last release is enough: half a millisecond of the
        // lateness is forgiven at each release
        tokio::time::advance(Duration::from_millis(19)).await;
        assert_eq!(
            limiter.release_gap(140 * MS),
            Some(Duration::from_micros(500))
        );
        tokio::time::advance(Duration::from_micros(500)).await;
        assert_eq!(limiter.release_gap(140 * MS), None);
        // an older slot woken late never waits
        assert_eq!(limiter.release_gap(60 * MS), None);
    }

    /// After a 429 from a server that states no limit (it may count the milliseconds between
    /// sends), the spacing no longer gives way to lateness.
    #[tokio::test(start_paused = true)]
    async fn after_a_429_with_no_stated_limit_the_spacing_is_kept_in_full() {
        let limiter = RateLimiter::new(RateLimitSpec::new(50, Duration::from_secs(1)));
        limiter.throttled(None, limiter.epoch(), None);
        tokio::time::advance(Duration::from_millis(102)).await;
        assert_eq!(limiter.release_gap(100 * MS), None);
        tokio::time::advance(Duration::from_millis(18)).await;
        assert_eq!(
            limiter.release_gap(120 * MS),
            Some(Duration::from_micros(1_500))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_release_long_after_the_last_ignores_its_lateness() {
        let limiter = RateLimiter::new(RateLimitSpec::new(50, Duration::from_secs(1)));
        tokio::time::advance(Duration::from_millis(400)).await;
        // 300 ms late
        assert_eq!(limiter.release_gap(100 * MS), None);
        tokio::time::advance(Duration::from_secs(3600)).await;
        // an hour of slots later, on time: no wait
        assert_eq!(limiter.release_gap(3_600_400 * MS), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_for_one_key_leaves_the_others_alone() {
        let limiter = RateLimiter::new(RateLimitSpec::new(10, Duration::from_secs(1)));
        let (a, b) = (key_hash("a"), key_hash("b"));
        let learned = limiter.throttled(Some(a), limiter.epoch(), Some(Duration::from_secs(1)));
        assert_eq!((learned.pace, learned.pause), (None, None));
        assert_eq!(limiter.check(Some(b)), Ok(Duration::ZERO));
        assert_eq!(limiter.check(Some(b)), Ok(Duration::from_millis(100)));
        // a spent quota (a long Retry-After) holds that key only
        let learned = limiter.throttled(Some(a), limiter.epoch(), Some(Duration::from_secs(5)));
        assert_eq!(learned.pause, Some(Duration::from_secs(5)));
        assert_eq!(limiter.check(Some(a)), Ok(Duration::from_secs(5)));
        assert_eq!(limiter.check(Some(b)), Ok(Duration::from_millis(200)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_pace_recovers_through_until_ready_alone() {
        let limiter = RateLimiter::new(RateLimitSpec::new(50, Duration::from_secs(1)));
        cut(&limiter, limiter.epoch(), None);
        assert_eq!(limiter.interval(), Duration::from_nanos(28_571_429));
        for _ in 0..100 {
            limiter.until_ready(None).await.expect("wait mode admits");
        }
        // back to 49.5/s within the period, without any `tick` from a site
        assert_eq!(limiter.interval(), Duration::from_nanos(20_202_021));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_cuts_the_pace_and_spreads_the_waiting_callers() {
        let limiter = Arc::new(RateLimiter::new(RateLimitSpec::new(
            10,
            Duration::from_secs(1),
        )));
        let admitted = admissions_around(Arc::clone(&limiter), None, 5, |limiter| {
            // `Retry-After: 1` is the request's own to wait: nobody else pauses
            let learned = cut(limiter, 0, Some(Duration::from_secs(1)));
            assert_eq!(learned.pause, None);
            assert_eq!(learned.pace, Some(Duration::from_nanos(142_857_143)));
        })
        .await;
        // reserved 100 ms apart, now along the recovery: 7/s at first, climbing to 9.9/s
        // within the period (at the cut pace alone: 143, 286, 429, 572)
        assert_eq!(admitted, [0, 133, 253, 365, 472]);
    }

    /// A server that states its limit (here on the 429 itself, as a sliding window's gateway
    /// does) and a pace within it: the 429 is a request on the edge. It is counted; a second
    /// within two periods is a strike, a nudge of two timer ticks per period (0.2% here).
    #[tokio::test(start_paused = true)]
    async fn a_429_within_the_advertised_limit_is_counted_not_cut() {
        let limiter = RateLimiter::new(RateLimitSpec::new(50, Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            limiter.learn(None, &quota(Some(50), 0, 1)),
            Learned::default()
        );
        let edge = limiter.throttled(None, limiter.epoch(), Some(Duration::from_secs(1)));
        assert_eq!(edge, Learned::default());
        assert_eq!(limiter.interval(), Duration::from_millis(20));
        tokio::time::advance(Duration::from_millis(1_500)).await;
        let strike = limiter.throttled(None, limiter.epoch(), Some(Duration::from_secs(1)));
        assert_eq!(strike.pace, Some(Duration::from_nanos(20_040_081))); // 49.9/s
        assert_eq!(strike.pause, None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pace_recovers_within_a_period_to_one_percent_under_the_refused_one() {
        let limiter = RateLimiter::new(RateLimitSpec::new(50, Duration::from_secs(1)));
        cut(&limiter, 0, None);
        assert_eq!(limiter.interval(), Duration::from_nanos(28_571_429)); // 35/s
        let mut paces = Vec::new();
        for _ in 0..4 {
            tokio::time::advance(Duration::from_millis(250)).await;
            limiter.tick();
            paces.push((1e9 / limiter.interval().as_nanos() as f64 * 100.0).round() / 100.0);
        }
        assert_eq!(paces, [43.38, 47.69, 49.27, 49.5]);
        // the plateau holds 49.5/s for ten periods
        tokio::time::advance(Duration::from_secs(9)).await;
        limiter.tick();
        assert_eq!(limiter.interval(), Duration::from_nanos(20_202_021));
        // then the probe goes back to 50/s over twenty, and no further
        tokio::time::advance(Duration::from_secs(21)).await;
        limiter.tick();
        assert_eq!(limiter.interval(), Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_on_a_request_sent_before_the_cut_is_the_same_event() {
        let limiter = RateLimiter::new(RateLimitSpec::new(10, Duration::from_secs(1)));
        tokio::time::advance(Duration::from_millis(500)).await;
        let sent = limiter.epoch();
        let first = cut(&limiter, sent, None);
        assert_eq!(first.pace, Some(Duration::from_nanos(142_857_143)));
        // sent before the cut, answered after it: already answered by it
        assert_eq!(limiter.throttled(None, sent, None).pace, None);
        assert_eq!(limiter.interval(), Duration::from_nanos(142_857_143));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_retry_after_holds_every_caller_and_releases_them_at_the_pace() {
        let limiter = Arc::new(RateLimiter::new(RateLimitSpec::new(
            10,
            Duration::from_secs(1),
        )));
        let admitted = admissions_around(Arc::clone(&limiter), None, 4, |limiter| {
            let learned = limiter.throttled(None, 0, Some(Duration::from_secs(5)));
            assert_eq!(learned.pause, Some(Duration::from_secs(5)));
        })
        .await;
        // the waiting ones move past the hold and are released at the pace (one 429 is no
        // cut: three within a period would be)
        assert_eq!(admitted, [0, 5100, 5200, 5300]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_fourth_429_in_a_row_holds_every_caller_for_a_short_retry_after() {
        let limiter = RateLimiter::new(RateLimitSpec::new(10, Duration::from_secs(1)));
        let one = Some(Duration::from_secs(1));
        let mut pauses = Vec::new();
        // three at once (two lone, then the cut), then each a little over a period after the
        // one before: no longer the same event, three strikes
        for after in [0, 0, 0, 1_100, 1_100, 1_100u64] {
            tokio::time::advance(Duration::from_millis(after)).await;
            pauses.push(limiter.throttled(None, limiter.epoch(), one).pause);
        }
        assert_eq!(pauses, [None, None, None, None, None, one]);
        // 10 -> 7/s, recovered to 9.9 by the second 429, then nudged 1%, 2%, 4%: 9.22/s
        assert_eq!(limiter.interval(), Duration::from_nanos(108_450_686));
        assert_eq!(limiter.check(None), Ok(Duration::from_secs(1)));
    }

    /// Three 429s from a server that states no limit, on requests sent at `sent`: two lone
    /// ones, then the cut, which this returns.
    fn cut(limiter: &RateLimiter, sent: u64, retry_after: Option<Duration>) -> Learned {
        for _ in 1..control::LONE_BEFORE_CUT {
            let lone = limiter.throttled(None, sent, retry_after);
            assert_eq!((lone.pace, lone.pause), (None, None));
        }
        limiter.throttled(None, sent, retry_after)
    }

    /// Starts `n` callers of `until_ready` at once, lets each reserve its slot, runs
    /// `change`, and returns when each was admitted (ms from the start), in reservation order.
    async fn admissions_around(
        limiter: Arc<RateLimiter>,
        key: Option<u64>,
        n: usize,
        change: impl FnOnce(&RateLimiter),
    ) -> Vec<u64> {
        let start = tokio::time::Instant::now();
        let mut callers = Vec::new();
        for _ in 0..n {
            let limiter = Arc::clone(&limiter);
            callers.push(tokio::spawn(async move {
                limiter.until_ready(key).await.expect("wait mode admits");
                start.elapsed().as_millis() as u64
            }));
            // Each caller reserves before the next starts (and before `change`).
            tokio::task::yield_now().await;
        }
        change(&limiter);
        let mut admitted = Vec::new();
        for caller in callers {
            admitted.push(caller.await.expect("a caller panicked"));
        }
        admitted
    }

    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_pause_moves_callers_already_waiting() {
        let limiter = Arc::new(RateLimiter::new(RateLimitSpec::new(
            10,
            Duration::from_secs(1),
        )));
        let admitted = admissions_around(Arc::clone(&limiter), None, 5, |limiter| {
            limiter.pause_for(None, Duration::from_secs(2));
        })
        .await;
        // The first was admitted before the pause; the 4 asleep on 100..400 ms move by 2 s.
        assert_eq!(admitted, [0, 2100, 2200, 2300, 2400]);
        // and a newcomer queues behind them
        assert_eq!(limiter.check(None), Ok(Duration::from_millis(100)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_of_one_key_moves_only_that_keys_callers() {
        let limiter = Arc::new(RateLimiter::new(RateLimitSpec::new(
            10,
            Duration::from_secs(1),
        )));
        let (a, b) = (key_hash("a"), key_hash("b"));
        let of_b = tokio::spawn(admissions_around(Arc::clone(&limiter), Some(b), 3, |_| {}));
        let of_a = admissions_around(Arc::clone(&limiter), Some(a), 3, |limiter| {
            limiter.pause_for(Some(a), Duration::from_secs(1));
        })
        .await;
        assert_eq!(of_a, [0, 1100, 1200]);
        assert_eq!(of_b.await.expect("b's callers"), [0, 100, 200]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lower_learned_limit_spreads_callers_already_waiting() {
        let limiter = Arc::new(RateLimiter::new(RateLimitSpec::new(
            10,
            Duration::from_secs(1),
        )));
        let admitted = admissions_around(Arc::clone(&limiter), None, 5, |limiter| {
            assert_eq!(limiter.learn(None, &quota(Some(5), 0, 1)).limit, Some(5));
        })
        .await;
        // reserved 100 ms apart, now 200 ms apart: 5 per second, as the server said
        assert_eq!(admitted, [0, 200, 400, 600, 800]);
        assert_eq!(limiter.check(None), Ok(Duration::from_millis(200)));
    }

    /// Starts `n` callers of `until_ready`, each reserving before the next starts, and
    /// returns their handles (each gives when it was admitted, in ms from the start).
    async fn waiting_callers(
        limiter: &Arc<RateLimiter>,
        n: usize,
    ) -> Vec<tokio::task::JoinHandle<u64>> {
        let start = tokio::time::Instant::now();
        let mut callers = Vec::new();
        for _ in 0..n {
            let limiter = Arc::clone(limiter);
            callers.push(tokio::spawn(async move {
                limiter.until_ready(None).await.expect("wait mode admits");
                start.elapsed().as_millis() as u64
            }));
            tokio::task::yield_now().await;
        }
        callers
    }

    async fn admitted(callers: Vec<tokio::task::JoinHandle<u64>>) -> Vec<u64> {
        let mut admitted = Vec::new();
        for caller in callers {
            admitted.push(caller.await.expect("a caller panicked"));
        }
        admitted
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_reaches_callers_even_past_the_log() {
        // 40 Retry-After answers 1 ms apart, each extending the pause by 1 ms: more changes
        // than the log keeps, so the two callers asleep lose track of theirs and queue again.
        let limiter = Arc::new(RateLimiter::new(RateLimitSpec::new(
            10,
            Duration::from_secs(1),
        )));
        let callers = waiting_callers(&limiter, 3).await;
        for _ in 0..40 {
            limiter.pause_for(None, Duration::from_secs(1));
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        // the queue (100, 200 ms) moved behind the last pause's schedule, in order
        assert_eq!(admitted(callers).await, [0, 1339, 1439]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_whose_slot_came_but_did_not_fire_waits_the_pause_out() {
        let limiter = Arc::new(RateLimiter::new(RateLimitSpec::new(
            3,
            Duration::from_secs(1),
        )));
        // slots at 0, 333.3 and 666.7 ms; tokio fires the second at 334 ms
        let callers = waiting_callers(&limiter, 3).await;
        tokio::time::advance(Duration::from_micros(333_500)).await;
        limiter.pause_for(None, Duration::from_secs(1));
        // not at 334 ms, inside the pause [333.5, 1333.5) ms
        assert_eq!(admitted(callers).await, [0, 1334, 1667]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_then_a_retry_after_wait_the_longer_of_the_two() {
        let limiter = RateLimiter::new(RateLimitSpec::new(10, Duration::from_secs(1)));
        assert_eq!(
            limiter.learn(None, &quota(Some(10), 0, 5)).pause,
            Some(Duration::from_secs(5))
        );
        tokio::time::advance(Duration::from_millis(100)).await;
        limiter.pause_for(None, Duration::from_secs(1));
        assert_eq!(limiter.check(None), Ok(Duration::from_millis(4_900)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lower_limit_spreads_a_burst_queue_from_the_first_waiting_slot() {
        let limiter = Arc::new(RateLimiter::new(
            RateLimitSpec::new(100, Duration::from_secs(1)).burst(5),
        ));
        let admitted = admissions_around(Arc::clone(&limiter), None, 14, |limiter| {
            assert_eq!(limiter.learn(None, &quota(Some(10), 0, 1)).limit, Some(10));
        })
        .await;
        // 6 at once (the burst and the first), then 8 queued 10 ms apart, now 100 ms apart
        assert_eq!(
            admitted,
            [0, 0, 0, 0, 0, 0, 100, 200, 300, 400, 500, 600, 700, 800]
        );
    }

    /// `Remaining: 2` does not let two waiting slots keep their places: on a sliding window
    /// the room it gives is for the whole window, and sending those early would overshoot it.
    #[tokio::test(start_paused = true)]
    async fn a_lower_limit_spreads_every_waiting_slot_whatever_remains() {
        let limiter = Arc::new(RateLimiter::new(RateLimitSpec::new(
            10,
            Duration::from_secs(1),
        )));
        let admitted = admissions_around(Arc::clone(&limiter), None, 6, |limiter| {
            assert_eq!(limiter.learn(None, &quota(Some(5), 2, 1)).limit, Some(5));
        })
        .await;
        assert_eq!(admitted, [0, 200, 400, 600, 800, 1000]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_keeps_the_slots_already_reserved() {
        let limiter = Arc::new(RateLimiter::new(RateLimitSpec::new(
            10,
            Duration::from_secs(1),
        )));
        let admitted = admissions_around(Arc::clone(&limiter), None, 4, |limiter| {
            limiter.configure(RateLimitSpec::new(5, Duration::from_secs(1)));
        })
        .await;
        assert_eq!(admitted, [0, 100, 200, 300]);
        // the new pace starts after the reserved slots
        assert_eq!(limiter.check(None), Ok(Duration::from_millis(100)));
        assert_eq!(limiter.check(None), Ok(Duration::from_millis(300)));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_keys_are_swept() {
        let limiter = RateLimiter::new(RateLimitSpec::new(10, Duration::from_secs(1)));
        for round in 0..100u64 {
            for key in 0..10_000u64 {
                assert!(limiter.check(Some(key_hash(&(round, key)))).is_ok());
            }
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        // a million distinct keys over time, but only about one round's worth is kept
        assert!(
            limiter.tracked_keys() <= 2 * 10_000 + super::super::keyed::SWEEP_FLOOR,
            "{}",
            limiter.tracked_keys()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reconfigure_keeps_recent_admissions() {
        let limiter =
            RateLimiter::new(RateLimitSpec::new(1, Duration::from_secs(1)).mode(LimitMode::Reject));
        assert_eq!(limiter.check(None), Ok(Duration::ZERO));
        limiter.configure(RateLimitSpec::new(10, Duration::from_secs(1)).mode(LimitMode::Reject));
        // the admission at 0 under the old interval still holds the next slot until 1s
        assert_eq!(limiter.check(None), Err(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(limiter.check(None), Ok(Duration::ZERO));
        assert_eq!(limiter.check(None), Err(Duration::from_millis(100)));
    }

    fn too_costly(cost: u64, capacity: u64) -> Rejected {
        Rejected::CostTooHigh {
            cost,
            capacity,
            period: Duration::from_secs(1),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_cost_above_calls_plus_burst_is_refused_at_once_in_both_modes() {
        for mode in [LimitMode::Wait, LimitMode::Reject] {
            let limiter = RateLimiter::new(
                RateLimitSpec::new(10, Duration::from_secs(1))
                    .burst(2)
                    .mode(mode),
            );
            assert_eq!(limiter.check_verdict_n(None, 13), Err(too_costly(13, 12)));
            assert_eq!(
                limiter.until_ready_n(Some(7), 13).await,
                Err(too_costly(13, 12))
            );
            // nothing was reserved: the whole capacity is still there
            assert_eq!(
                limiter.check_verdict_n(None, 12).map(Verdict::wait),
                Ok(Duration::ZERO)
            );
        }
        // no limit, no capacity
        let unlimited = RateLimiter::new(RateLimitSpec::UNLIMITED);
        assert!(
            unlimited
                .check_verdict_n(None, u64::MAX)
                .is_ok_and(Verdict::is_immediate)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn weighted_calls_in_reject_mode_and_per_key() {
        let limiter = RateLimiter::new(
            RateLimitSpec::new(10, Duration::from_secs(1)).mode(LimitMode::Reject),
        );
        let (a, b) = (key_hash("a"), key_hash("b"));
        assert!(
            limiter
                .check_verdict_n(Some(a), 4)
                .is_ok_and(Verdict::is_immediate)
        );
        // the next call of `a`, whatever its cost, is free in 400 ms
        let refused = limiter
            .check_verdict_n(Some(a), 1)
            .expect("within capacity");
        assert_eq!(
            (refused.is_admitted(), refused.wait()),
            (false, Duration::from_millis(400))
        );
        assert!(
            limiter
                .check_verdict_n(Some(b), 10)
                .is_ok_and(Verdict::is_immediate)
        );
        tokio::time::advance(Duration::from_millis(400)).await;
        assert!(
            limiter
                .check_verdict_n(Some(a), 6)
                .is_ok_and(Verdict::is_immediate)
        );
        // a cost of 0 takes nothing, even when the key is out of permits
        assert!(
            limiter
                .check_verdict_n(Some(b), 0)
                .is_ok_and(Verdict::is_immediate)
        );
        assert!(
            limiter
                .check_verdict_n(None, 0)
                .is_ok_and(Verdict::is_immediate)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_capacity_follows_a_reload_and_a_learned_limit() {
        let limiter = RateLimiter::new(RateLimitSpec::new(10, Duration::from_secs(1)).burst(2));
        assert_eq!(limiter.capacity(), Some(12));
        limiter.configure(RateLimitSpec::new(6, Duration::from_secs(1)));
        assert_eq!(limiter.capacity(), Some(6));
        assert_eq!(limiter.check_verdict_n(None, 7), Err(too_costly(7, 6)));
        limiter.configure(RateLimitSpec::new(10, Duration::from_secs(1)).burst(2));
        // the server says 5 per period: 5 + the burst of 2
        assert_eq!(limiter.learn(None, &quota(Some(5), 5, 1)).limit, Some(5));
        assert_eq!(limiter.capacity(), Some(7));
        assert_eq!(limiter.check_verdict_n(None, 8), Err(too_costly(8, 7)));
        // and back up, never above `calls`
        limiter.learn(None, &quota(Some(50), 50, 1));
        assert_eq!(limiter.capacity(), Some(12));
    }

    #[tokio::test(start_paused = true)]
    async fn a_policy_cost_is_every_calls_cost() {
        let limiter = RateLimiter::new(RateLimitSpec::new(10, Duration::from_secs(1)));
        assert_eq!(limiter.fixed_cost(), None);
        limiter.configure(RateLimitSpec::new(10, Duration::from_secs(1)).cost(Some(3)));
        assert_eq!(limiter.fixed_cost(), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_independent_and_pause_is_per_key() {
        let limiter =
            RateLimiter::new(RateLimitSpec::new(1, Duration::from_secs(1)).mode(LimitMode::Reject));
        let (a, b) = (key_hash("a"), key_hash("b"));
        assert!(limiter.check(Some(a)).is_ok());
        assert!(limiter.check(Some(a)).is_err());
        assert!(limiter.check(Some(b)).is_ok());
        limiter.pause_for(Some(b), Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(limiter.check(Some(a)).is_ok());
        assert_eq!(limiter.check(Some(b)), Err(Duration::from_secs(3)));
    }
}
