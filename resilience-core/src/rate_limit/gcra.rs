//! [`Gcra`]: the generic cell rate algorithm on one atomic word.
//!
//! The state is the theoretical arrival time (TAT) of the next admission, in nanoseconds since
//! the limiter's epoch. With emission interval `T = period / calls` and tolerance
//! `tau = burst * T`, a call arriving at `now` may be admitted at `max(tat, now) - tau` (or
//! `now`, if later) and moves the TAT to `max(tat, now) + T`. That bounds admissions in any
//! half-open window of length `period` to `calls + burst`.
//!
//! An admission is one compare-and-swap: a reservation in wait mode is the same CAS, which
//! also makes waiters fair (admitted in the order their reservations succeeded).
//!
//! A call that takes `n` permits ([`acquire_n`](Gcra::acquire_n), GCRA for variable-size
//! cells) is admitted when a unit call would be, and moves the TAT by `n * T`: the calls after
//! it wait for its permits. The long-run rate stays `calls` per `period`; a half-open window of
//! length `period` whose last admission took `n` permits holds at most `calls + burst - 1 + n`
//! (unit calls: `calls + burst`). The `n - 1` beyond `calls + burst` is inherent to one word
//! of state: holding every window to `calls + burst` would need a log of recent admissions,
//! or would halve the pace of a stream of large calls. A cost above `calls + burst` never
//! fits a period: the limiter refuses it before asking the cell.

use std::sync::atomic::{AtomicU64, Ordering};

/// The outcome of asking for a permit at time `now` (all values in nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum Admission {
    /// Admitted after waiting this long (0: at once). The slot is reserved.
    After(u64),
    /// Refused: a permit would be free after this long. Nothing was reserved.
    Refused(u64),
}

/// One GCRA cell: the TAT of one limiter (or of one key of a keyed limiter).
#[derive(Debug, Default)]
#[doc(hidden)]
pub struct Gcra {
    tat: AtomicU64,
}

impl Gcra {
    /// A cell at full capacity.
    pub const fn new() -> Self {
        Gcra {
            tat: AtomicU64::new(0),
        }
    }

    /// Asks for a permit at `now`. With `max_wait = Some(w)` a permit that needs a wait up to
    /// `w` is reserved (and `After(wait)` returned); a longer wait is `Refused`. With `None`
    /// the call waits as long as needed. Reject mode is `max_wait = Some(0)`.
    #[inline]
    pub fn acquire(
        &self,
        now: u64,
        interval: u64,
        tolerance: u64,
        max_wait: Option<u64>,
    ) -> Admission {
        self.acquire_within(now, interval, tolerance, max_wait.unwrap_or(u64::MAX))
    }

    /// [`acquire`](Self::acquire) with `max_wait = u64::MAX` for "as long as needed" (no wait
    /// exceeds it), so one loop serves both modes.
    #[inline]
    pub(crate) fn acquire_within(
        &self,
        now: u64,
        interval: u64,
        tolerance: u64,
        max_wait: u64,
    ) -> Admission {
        let mut tat = self.tat.load(Ordering::Acquire);
        if interval == 0 {
            // No limit (`RateLimitSpec::UNLIMITED`): nothing to reserve, so no write; only a
            // pause can hold a call back. Reserving here would also refuse (or, in wait mode,
            // put to sleep for a timer tick) a thread whose clock read came a few nanoseconds
            // before another's that already moved the TAT to its own `now`.
            let wait = tat.saturating_sub(now).saturating_sub(tolerance);
            return match wait {
                0 => Admission::After(0),
                wait if wait > max_wait => Admission::Refused(wait),
                wait => Admission::After(wait),
            };
        }
        loop {
            let base = tat.max(now);
            let wait = (base - now).saturating_sub(tolerance);
            if wait > max_wait {
                return Admission::Refused(wait);
            }
            let next = base.saturating_add(interval);
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Admission::After(wait),
                Err(current) => tat = current,
            }
        }
    }

    /// [`acquire`](Self::acquire) for a call that takes `cost` permits: admitted when a unit
    /// call would be, it moves the TAT by `cost * interval` (saturating). A cost of 0 takes
    /// nothing and is admitted at once. The caller keeps `cost` within what one period admits
    /// (`calls + burst`); the cell does not know `calls`.
    #[inline]
    pub fn acquire_n(
        &self,
        now: u64,
        interval: u64,
        tolerance: u64,
        max_wait: Option<u64>,
        cost: u64,
    ) -> Admission {
        self.acquire_n_within(now, interval, tolerance, max_wait.unwrap_or(u64::MAX), cost)
    }

    /// [`acquire_n`](Self::acquire_n) with `max_wait = u64::MAX` for "as long as needed" (a
    /// cost of 1 is [`acquire_within`](Self::acquire_within), once inlined).
    #[inline]
    pub(crate) fn acquire_n_within(
        &self,
        now: u64,
        interval: u64,
        tolerance: u64,
        max_wait: u64,
        cost: u64,
    ) -> Admission {
        if cost == 0 {
            return Admission::After(0);
        }
        // The unit admission, with a step of `cost` intervals: the interval is only the TAT's
        // step there (and 0, no limit, stays 0).
        self.acquire_within(now, interval.saturating_mul(cost), tolerance, max_wait)
    }

    /// Admits nothing before `until` (a server's Retry-After): the TAT moves to at least
    /// `until + tolerance`, so the next admission is at `until` at the earliest.
    pub fn pause_until(&self, until: u64, tolerance: u64) {
        self.tat
            .fetch_max(until.saturating_add(tolerance), Ordering::AcqRel);
    }

    /// Moves the slots reserved after `at` as `change` says (see
    /// [`reschedule`](super::reschedule)), so later callers queue behind the moved ones. `old`
    /// and `new` are the (interval, tolerance) before and after the change: the last reserved
    /// slot is the TAT less the old pair, and the next free one follows the moved last slot by
    /// the new pair. The TAT ends at `floor` at least (a pause's end plus the tolerance, so
    /// nothing is admitted before the end). A TAT no later than `held` plus the old tolerance
    /// was raised by a pause or a hold, not by reservations: it holds no slot to move.
    pub(crate) fn reschedule(
        &self,
        at: u64,
        change: super::reschedule::Move,
        old: (u64, u64),
        new: (u64, u64),
        floor: u64,
        held: u64,
    ) {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let reserved = tat > held.saturating_add(old.1);
            let last = tat.saturating_sub(old.0.saturating_add(old.1));
            let moved = if reserved && last > at {
                change
                    .apply(at, last)
                    .saturating_add(new.0)
                    .saturating_add(new.1)
            } else {
                // Nobody is waiting: only the pause's floor applies.
                tat
            };
            let next = moved.max(floor);
            if next == tat {
                return;
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(current) => tat = current,
            }
        }
    }

    /// Whether the cell is back to full capacity at `now` (it can then be forgotten: a fresh
    /// cell behaves the same).
    pub fn is_idle(&self, now: u64) -> bool {
        self.tat.load(Ordering::Acquire) <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn forty_calls_at_once_are_spaced_by_the_interval() {
        let cell = Gcra::new();
        let waits: Vec<u64> = (0..40)
            .map(|_| match cell.acquire(0, S / 2, 0, None) {
                Admission::After(wait) => wait,
                Admission::Refused(_) => u64::MAX,
            })
            .collect();
        let expected: Vec<u64> = (0..40).map(|i| i * S / 2).collect();
        assert_eq!(waits, expected);
    }

    #[test]
    fn burst_after_idle_then_spacing() {
        let cell = Gcra::new();
        let tolerance = 3 * S;
        let at_zero: Vec<Admission> = (0..5)
            .map(|_| cell.acquire(0, S, tolerance, Some(0)))
            .collect();
        assert_eq!(
            at_zero,
            [
                Admission::After(0),
                Admission::After(0),
                Admission::After(0),
                Admission::After(0),
                Admission::Refused(S),
            ]
        );
        assert_eq!(cell.acquire(S, S, tolerance, Some(0)), Admission::After(0));
        assert_eq!(
            cell.acquire(S, S, tolerance, Some(0)),
            Admission::Refused(S)
        );
    }

    #[test]
    fn max_wait_reserves_only_short_waits() {
        let cell = Gcra::new();
        assert_eq!(cell.acquire(0, S, 0, Some(S)), Admission::After(0));
        assert_eq!(cell.acquire(0, S, 0, Some(S)), Admission::After(S));
        assert_eq!(cell.acquire(0, S, 0, Some(S)), Admission::Refused(2 * S));
        // the refusal reserved nothing
        assert_eq!(cell.acquire(S, S, 0, Some(S)), Admission::After(S));
    }

    #[test]
    fn pause_blocks_until_then_resumes() {
        let cell = Gcra::new();
        cell.pause_until(5 * S, 2 * S);
        assert_eq!(
            cell.acquire(S, S, 2 * S, Some(0)),
            Admission::Refused(4 * S)
        );
        assert_eq!(cell.acquire(5 * S, S, 2 * S, Some(0)), Admission::After(0));
        assert!(!cell.is_idle(5 * S));
        assert!(cell.is_idle(8 * S));
    }

    #[test]
    fn a_call_of_cost_n_is_admitted_with_a_unit_call_and_moves_the_tat_by_n() {
        let cell = Gcra::new();
        assert_eq!(cell.acquire_n(0, S, 0, None, 3), Admission::After(0));
        // the next call waits for the three permits
        assert_eq!(cell.acquire_n(0, S, 0, None, 2), Admission::After(3 * S));
        assert_eq!(cell.acquire(0, S, 0, Some(0)), Admission::Refused(5 * S));
        // nothing to take: at once, and nothing reserved
        assert_eq!(cell.acquire_n(0, S, 0, Some(0), 0), Admission::After(0));
        assert_eq!(
            cell.acquire_n(0, S, 0, Some(0), 1),
            Admission::Refused(5 * S)
        );
        // with a burst of 2, a call of 3 after idle time is at once, the next waits 1 s
        let cell = Gcra::new();
        assert_eq!(cell.acquire_n(0, S, 2 * S, Some(0), 3), Admission::After(0));
        assert_eq!(
            cell.acquire_n(0, S, 2 * S, Some(0), 1),
            Admission::Refused(S)
        );
        // the step saturates
        let cell = Gcra::new();
        assert_eq!(cell.acquire_n(0, S, 0, None, u64::MAX), Admission::After(0));
        assert!(matches!(
            cell.acquire_n(0, S, 0, Some(0), 1),
            Admission::Refused(_)
        ));
    }

    #[test]
    fn no_limit_admits_any_clock_read_and_still_pauses() {
        let cell = Gcra::new();
        assert_eq!(cell.acquire(100, 0, 0, Some(0)), Admission::After(0));
        // another thread's read, a few nanoseconds older
        assert_eq!(cell.acquire(95, 0, 0, Some(0)), Admission::After(0));
        cell.pause_until(1_000, 0);
        assert_eq!(cell.acquire(500, 0, 0, None), Admission::After(500));
        assert_eq!(cell.acquire(500, 0, 0, Some(0)), Admission::Refused(500));
        assert_eq!(cell.acquire(1_000, 0, 0, Some(0)), Admission::After(0));
    }

    #[test]
    fn extreme_values_saturate() {
        let cell = Gcra::new();
        assert_eq!(
            cell.acquire(u64::MAX, u64::MAX, u64::MAX, None),
            Admission::After(0)
        );
        assert!(matches!(
            cell.acquire(0, u64::MAX, 0, Some(0)),
            Admission::Refused(_)
        ));
        cell.pause_until(u64::MAX, u64::MAX);
    }

    proptest! {
        /// Whatever the arrivals and parameters, no half-open window of length `period` holds
        /// more than `calls + burst` admissions, in reject mode and in wait mode.
        #[test]
        fn never_more_than_calls_plus_burst_per_window(
            calls in 1u64..20,
            period_ms in 1u64..5_000,
            burst in 0u64..5,
            wait_mode in any::<bool>(),
            gaps in proptest::collection::vec(0u64..2_000, 1..300),
        ) {
            let period = period_ms * 1_000_000;
            let interval = period.div_ceil(calls);
            let tolerance = burst * interval;
            let cell = Gcra::new();
            let mut now = 0u64;
            let mut admitted = Vec::new();
            for gap in gaps {
                now += gap * 1_000_000 / 10;
                let max_wait = if wait_mode { None } else { Some(0) };
                if let Admission::After(wait) = cell.acquire(now, interval, tolerance, max_wait) {
                    admitted.push(now + wait);
                }
            }
            admitted.sort_unstable();
            let limit = (calls + burst) as usize;
            for (i, start) in admitted.iter().enumerate() {
                let in_window = admitted[i..].iter().take_while(|t| **t < start + period).count();
                prop_assert!(in_window <= limit, "{in_window} admissions in [{start}, {start}+{period})");
            }
        }

        /// Weighted arrivals (costs up to `calls + burst`, zero included): a window of length
        /// `period` holds at most `calls + burst - 1` permits besides those of its last
        /// admission, so at most `calls + burst` when that one is a unit call, and the
        /// long-run pace is kept (the permits of the calls up to any admission fit in the
        /// time since the first, plus `calls + burst`).
        #[test]
        fn weighted_windows_hold_calls_plus_burst_besides_the_last_call(
            calls in 1u64..20,
            period_ms in 1u64..5_000,
            burst in 0u64..5,
            wait_mode in any::<bool>(),
            arrivals in proptest::collection::vec((0u64..2_000, 0u64..=24), 1..300),
        ) {
            let period = period_ms * 1_000_000;
            let interval = period.div_ceil(calls);
            let tolerance = burst * interval;
            let capacity = calls + burst;
            let cell = Gcra::new();
            let mut now = 0u64;
            // (admitted at, permits), in admission order (which is time order)
            let mut admitted: Vec<(u64, u64)> = Vec::new();
            for (gap, cost) in arrivals {
                now += gap * 1_000_000 / 10;
                let cost = cost % (capacity + 1);
                let max_wait = if wait_mode { None } else { Some(0) };
                if let Admission::After(wait) =
                    cell.acquire_n(now, interval, tolerance, max_wait, cost)
                {
                    if cost > 0 {
                        admitted.push((now + wait, cost));
                    }
                }
            }
            prop_assert!(admitted.windows(2).all(|pair| pair[0].0 <= pair[1].0));
            for (i, (start, _)) in admitted.iter().enumerate() {
                let window: Vec<&(u64, u64)> = admitted[i..]
                    .iter()
                    .take_while(|(at, _)| *at < start + period)
                    .collect();
                let permits: u64 = window.iter().map(|(_, cost)| cost).sum();
                let last = window.last().map_or(0, |(_, cost)| *cost);
                prop_assert!(
                    permits - last < capacity,
                    "{permits} permits in [{start}, {start}+{period}), the last call taking {last}"
                );
            }
            let mut spent = 0u64;
            for (at, cost) in &admitted {
                // Every permit before this call was paced: `at - first >= (spent - burst - 1)
                // intervals`, as for unit calls.
                let first = admitted[0].0;
                prop_assert!(
                    (at - first) >= spent.saturating_sub(burst + 1) * interval,
                    "{spent} permits spent by {at}, first at {first}"
                );
                spent += cost;
            }
        }

        /// A pause or a slower pace applied in the middle of a wait-mode queue: the callers
        /// asleep move (as [`Move::apply`] says) and the cell's schedule with them, and then
        /// no slot falls inside the pause, and no window holds more than the pace in force
        /// allows, old slots and new together.
        #[test]
        fn a_reschedule_keeps_every_window_within_the_new_pace(
            calls in 1u64..20,
            burst in 0u64..4,
            before in proptest::collection::vec(0u64..400, 1..60),
            after in proptest::collection::vec(0u64..400, 0..60),
            pause in any::<bool>(),
            amount in 1u64..5_000,
            slower in 1u64..5,
        ) {
            use super::super::reschedule::Move;
            const MS: u64 = 1_000_000;
            let period = 1_000 * MS;
            let interval = period.div_ceil(calls);
            let tolerance = burst * interval;
            let cell = Gcra::new();
            let mut now = 0u64;
            let mut slots = Vec::new();
            for gap in before {
                now += gap * MS / 10;
                if let Admission::After(wait) = cell.acquire(now, interval, tolerance, None) {
                    slots.push(now + wait);
                }
            }
            let at = now;
            let (change, new) = if pause {
                (Move::Shift(amount * MS), (interval, tolerance))
            } else {
                let to = interval * (slower + 1);
                (Move::Stretch { from: interval, to }, (to, burst * to))
            };
            let floor = match change {
                Move::Shift(by) => at + by + tolerance,
                Move::Stretch { .. } | Move::Recover { .. } => 0,
            };
            cell.reschedule(at, change, (interval, tolerance), new, floor, 0);
            for slot in &mut slots {
                *slot = change.apply(at, *slot);
            }
            for gap in after {
                now += gap * MS / 10;
                if let Admission::After(wait) = cell.acquire(now, new.0, new.1, None) {
                    slots.push(now + wait);
                }
            }
            if let Move::Shift(by) = change {
                prop_assert!(
                    slots.iter().all(|slot| *slot <= at || *slot >= at + by),
                    "a slot inside the pause [{at}, {}): {slots:?}", at + by
                );
            }
            // At the new pace, with the old pace's allowance for the slots already taken
            // before the change.
            slots.sort_unstable();
            let new_period = new.0.saturating_mul(calls);
            let limit = (calls + burst) as usize;
            for (i, start) in slots.iter().enumerate().filter(|(_, slot)| **slot > at) {
                let in_window = slots[i..].iter().take_while(|t| **t < start + new_period).count();
                prop_assert!(in_window <= limit, "{in_window} slots in [{start}, {start}+{new_period})");
            }
        }
    }
}
