//! Permit leasing: one round trip takes a small batch of permits from a shared schedule, and
//! this instance spends them locally until they run out or expire.
//!
//! A lease is sized from this instance's own recent use: the permits it used in the last
//! [`lifetime`] (a tenth of the period, at most [`MAX_LIFETIME`]), at most the policy's cap
//! ([`Lease::cap`](resilience_config::rate_limit::Lease::cap)). An instance that used one
//! permit or none in that span asks for no extra permit: an idle instance holds none, and
//! one calling less often than once a lifetime makes one round trip per check, as without
//! leasing. Permits still held [`lifetime`] after the last grant are dropped, never used late.
//!
//! **The over-admission bound.** A lease is taken by the same script call as the check that
//! asks for it, and only when that check is admitted at once, as if the check cost the
//! lease's permits too: the schedule in Redis stays a strict GCRA of weighted admissions, and
//! every permit any instance uses was admitted by it. What leasing changes is *when* a permit
//! is used: by the instance holding it, at any time from its grant to the lease's deadline.
//! So in any window of `period`, the calls (of one permit each) started by K instances whose
//! leases hold at most `cap` permits are at most
//!
//! `calls + burst + (K + 1) × cap`:
//!
//! - the permits the schedule grants in the window: `calls + burst`, plus the look-ahead of
//!   the last admission in it, a lease of at most `cap` (a weighted call's allowance);
//! - plus the permits granted before the window and used in it: those the instances held
//!   when it opened, at most one lease each, `K × cap`.
//!
//! That is the worst case (every instance holding a full lease when the window opens and
//! spending it at once); without leasing (`cap` 1) it is the strict schedule's own bound.
//! Permits a lease held and did not use are spent in the schedule all the same: an instance
//! going idle wastes at most one lease, on the strict side.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The longest a lease lives (and the span its size is measured over), whatever the period.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_millis(100);

/// How long a lease under a limit of `period` lives: a tenth of the period, at most
/// [`MAX_LIFETIME`] (and at least a microsecond, Redis's unit).
pub(crate) fn lifetime(period: Duration) -> Duration {
    (period / 10).clamp(Duration::from_micros(1), MAX_LIFETIME)
}

/// One instance's lease on one shared schedule, and its recent use.
#[derive(Debug, Default)]
pub(crate) struct Lease {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Permits granted and not used yet.
    held: u64,
    /// When they expire.
    deadline: Option<Instant>,
    /// The start of the current span of use (one lifetime long).
    span: Option<Instant>,
    /// Permits used in the current span, and in the one before.
    used: u64,
    used_before: u64,
}

impl State {
    /// Moves the spans of use along to `now`.
    fn roll(&mut self, now: Instant, lifetime: Duration) {
        let Some(start) = self.span else {
            self.span = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= lifetime.saturating_mul(2) {
            self.span = Some(now);
            self.used_before = 0;
            self.used = 0;
        } else if elapsed >= lifetime {
            self.span = Some(start + lifetime);
            self.used_before = self.used;
            self.used = 0;
        }
    }

    fn expire(&mut self, now: Instant) {
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            self.held = 0;
            self.deadline = None;
        }
    }
}

impl Lease {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes `permits` from the lease, if it holds that many and has not expired; counts them
    /// as used.
    pub(crate) fn take(&self, permits: u64, now: Instant, lifetime: Duration) -> bool {
        let mut state = self.state();
        state.expire(now);
        if state.held < permits {
            return false;
        }
        state.held -= permits;
        state.roll(now, lifetime);
        state.used = state.used.saturating_add(permits);
        true
    }

    /// The extra permits to ask for with a call taking `permits` through a round trip: what
    /// this instance used in the last lifetime, at most `cap`, less the call's own.
    pub(crate) fn wanted(&self, permits: u64, cap: u64, now: Instant, lifetime: Duration) -> u64 {
        let mut state = self.state();
        state.roll(now, lifetime);
        let recent = state.used.max(state.used_before);
        recent.min(cap).saturating_sub(permits)
    }

    /// A round trip admitted a call of `permits` and granted `extra` more: the call's are
    /// counted as used, the extra held (at most `cap` in all) until one lifetime from now.
    pub(crate) fn granted(
        &self,
        permits: u64,
        extra: u64,
        cap: u64,
        now: Instant,
        lifetime: Duration,
    ) {
        let mut state = self.state();
        state.roll(now, lifetime);
        state.used = state.used.saturating_add(permits);
        if extra == 0 {
            return;
        }
        state.expire(now);
        // Two round trips of this instance in flight at once can both bring a lease: what
        // goes past the cap is never used (spent in the shared schedule, on the strict side).
        state.held = state.held.saturating_add(extra).min(cap);
        state.deadline = Some(now + lifetime);
    }

    /// Drops every permit held (the shared schedule was paused).
    pub(crate) fn drop_all(&self) {
        let mut state = self.state();
        state.held = 0;
        state.deadline = None;
    }

    /// The permits held and usable at `now`.
    #[cfg(test)]
    pub(crate) fn held(&self, now: Instant) -> u64 {
        let mut state = self.state();
        state.expire(now);
        state.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIME: Duration = Duration::from_millis(100);

    #[test]
    fn the_lifetime_is_a_tenth_of_the_period_within_bounds() {
        assert_eq!(lifetime(Duration::from_secs(1)), LIFETIME);
        assert_eq!(lifetime(Duration::from_secs(3600)), MAX_LIFETIME);
        assert_eq!(
            lifetime(Duration::from_millis(50)),
            Duration::from_millis(5)
        );
        assert_eq!(lifetime(Duration::from_nanos(1)), Duration::from_micros(1));
    }

    /// An idle instance asks for nothing beyond its call; one in use asks for what it used in
    /// the last lifetime, at most the cap; a lease is spent locally and then refilled.
    #[tokio::test(start_paused = true)]
    async fn a_lease_is_sized_from_recent_use_and_an_idle_instance_holds_none() {
        let lease = Lease::default();
        let now = Instant::now();
        assert_eq!(lease.wanted(1, 64, now, LIFETIME), 0, "idle: no lease");
        assert!(!lease.take(1, now, LIFETIME), "nothing held");
        // Round trips one after the other: each asks for what came before it, less its own.
        for asked in [0, 0, 1, 2] {
            assert_eq!(lease.wanted(1, 64, now, LIFETIME), asked);
            lease.granted(1, 0, 64, now, LIFETIME);
        }
        // 4 used in this lifetime: a lease of 3 beyond the call.
        assert_eq!(lease.wanted(1, 64, now, LIFETIME), 3);
        lease.granted(1, 3, 64, now, LIFETIME);
        assert_eq!(lease.held(now), 3);
        for _ in 0..3 {
            assert!(lease.take(1, now, LIFETIME), "spent locally");
        }
        assert!(!lease.take(1, now, LIFETIME), "run out: a round trip");
        // 8 used: capped.
        assert_eq!(
            lease.wanted(1, 4, now, LIFETIME),
            3,
            "at most the cap in all"
        );
        assert_eq!(
            lease.wanted(2, 64, now, LIFETIME),
            6,
            "the call's own permits first"
        );
        // A cost larger than the lease held is not taken from it.
        lease.granted(1, 2, 64, now, LIFETIME);
        assert!(!lease.take(3, now, LIFETIME));
        assert_eq!(lease.held(now), 2);
    }

    /// Permits left at the deadline are dropped, and use is forgotten after two idle
    /// lifetimes: the instance is back to one round trip per check, holding nothing.
    #[tokio::test(start_paused = true)]
    async fn unused_permits_expire_and_an_instance_gone_idle_holds_none() {
        let lease = Lease::default();
        let start = Instant::now();
        for _ in 0..10 {
            lease.granted(1, 0, 64, start, LIFETIME);
        }
        lease.granted(1, 10, 64, start, LIFETIME);
        assert_eq!(lease.held(start), 10);
        tokio::time::advance(LIFETIME - Duration::from_millis(1)).await;
        assert!(
            lease.take(1, Instant::now(), LIFETIME),
            "still within the lifetime"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        let deadline = Instant::now();
        assert_eq!(lease.held(deadline), 0, "9 left at the deadline, dropped");
        assert!(!lease.take(1, deadline, LIFETIME));
        // One lifetime on: the last span's use still sizes the next lease (12 in it).
        assert_eq!(lease.wanted(1, 64, deadline, LIFETIME), 11);
        // Two idle lifetimes: forgotten.
        tokio::time::advance(LIFETIME * 2).await;
        assert_eq!(lease.wanted(1, 64, Instant::now(), LIFETIME), 0);
        // The cap holds even when two grants arrive together.
        lease.granted(1, 50, 64, Instant::now(), LIFETIME);
        lease.granted(1, 50, 64, Instant::now(), LIFETIME);
        assert_eq!(lease.held(Instant::now()), 64);
        lease.drop_all();
        assert_eq!(lease.held(Instant::now()), 0, "a pause drops the lease");
    }
}
