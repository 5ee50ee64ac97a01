//! [`RetryBudget`]: retries capped to a share of recent calls, shared by name.
//!
//! The window is ten slots of `window / 10`, each stamped with the slot period it counts: a
//! deposit (a call) and a withdrawal (a retry) are one atomic add on the current slot, and a
//! withdrawal sums the ten. Two withdrawals racing for the last retry may both pass; the
//! overshoot is at most the number of callers retrying at that instant, as in tower's
//! `TpsBudget`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{Clock, nanos};
use crate::registry::SharedByName;
pub use resilience_config::retry_budget::{RetryBudgetPatch, RetryBudgetSpec};

/// Slots of the window.
const SLOTS: u64 = 10;

/// Retries capped at `min_per_second * window + ratio * calls` over the last `window` (see
/// [`RetryBudgetSpec`]). A site draws on one with `#[retry(budget = "name")]`; the policy
/// of that name gives its values in a `retry_budget` section.
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::Duration;
/// use resilience::retry::{RetryBudget, RetryBudgetSpec};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// // One retry a second over 10 s, plus half a retry per call.
/// let budget = RetryBudget::new(RetryBudgetSpec::DEFAULT.ratio(0.5).min_per_second(1));
/// for _ in 0..4 {
///     budget.deposit();
/// }
/// let allowed = (0..20).filter(|_| budget.withdraw()).count();
/// assert_eq!(allowed, 10 + 2);
/// # });
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    clock: Clock,
    ratio_bits: AtomicU64,
    min_per_second: AtomicU32,
    window_nanos: AtomicU64,
    slots: [Slot; SLOTS as usize],
}

/// One slot of the window: what was counted in the slot period `tag - 1`.
#[derive(Debug, Default)]
struct Slot {
    /// The slot period plus one (0: never used).
    tag: AtomicU64,
    calls: AtomicU64,
    retries: AtomicU64,
}

impl RetryBudget {
    /// A budget with these values, its window starting now.
    pub fn new(spec: RetryBudgetSpec) -> Self {
        let budget = RetryBudget {
            clock: Clock::new(),
            ratio_bits: AtomicU64::new(0),
            min_per_second: AtomicU32::new(0),
            window_nanos: AtomicU64::new(1),
            slots: Default::default(),
        };
        budget.configure(spec);
        budget
    }

    /// Changes its values, keeping what the window counted.
    pub fn configure(&self, spec: RetryBudgetSpec) {
        let ratio = if spec.ratio.is_finite() {
            spec.ratio.max(0.0)
        } else {
            0.0
        };
        self.ratio_bits.store(ratio.to_bits(), Ordering::Relaxed);
        self.min_per_second
            .store(spec.min_per_second, Ordering::Relaxed);
        self.window_nanos
            .store(nanos(spec.window).max(SLOTS), Ordering::Relaxed);
    }

    /// Counts one call (its first try).
    pub fn deposit(&self) {
        self.current().calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry if the budget allows it: `true` when the retry may go.
    pub fn withdraw(&self) -> bool {
        let (calls, retries) = self.totals();
        let window = self.window_nanos.load(Ordering::Relaxed);
        let reserve = f64::from(self.min_per_second.load(Ordering::Relaxed))
            * Duration::from_nanos(window).as_secs_f64();
        let ratio = f64::from_bits(self.ratio_bits.load(Ordering::Relaxed));
        let allowed = reserve + ratio * calls as f64;
        if (retries as f64) + 1.0 > allowed {
            return false;
        }
        self.current().retries.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The slot period now, and the slot width.
    fn period(&self) -> u64 {
        let width = (self.window_nanos.load(Ordering::Relaxed) / SLOTS).max(1);
        self.clock.now() / width
    }

    /// The slot of the period now, emptied first if it last counted an older period.
    fn current(&self) -> &Slot {
        let period = self.period();
        let slot = &self.slots[(period % SLOTS) as usize];
        let tag = period + 1;
        if crate::counters::claim(&slot.tag, tag) {
            slot.calls.store(0, Ordering::Relaxed);
            slot.retries.store(0, Ordering::Relaxed);
        }
        slot
    }

    /// Calls and retries counted over the window now.
    fn totals(&self) -> (u64, u64) {
        let period = self.period();
        let oldest = (period + 1).saturating_sub(SLOTS - 1);
        self.slots
            .iter()
            .filter(|slot| (oldest..=period + 1).contains(&slot.tag.load(Ordering::Acquire)))
            .fold((0, 0), |(calls, retries), slot| {
                (
                    calls + slot.calls.load(Ordering::Relaxed),
                    retries + slot.retries.load(Ordering::Relaxed),
                )
            })
    }
}

static NAMED: SharedByName<RetryBudget, RetryBudgetSpec> = SharedByName::new(
    "a retry budget",
    |_, spec| RetryBudget::new(spec),
    RetryBudget::configure,
    |policy, inline| policy.retry_budget.map(|patch| patch.apply(inline)),
);

/// The budget called `name`, shared by every site naming it: the `retry_budget` section of
/// the policy of that name over [`RetryBudgetSpec::DEFAULT`].
pub fn named(name: &str) -> Arc<RetryBudget> {
    NAMED.get_or_create(name, RetryBudgetSpec::DEFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(ratio: f64, min_per_second: u32) -> RetryBudget {
        RetryBudget::new(
            RetryBudgetSpec::DEFAULT
                .ratio(ratio)
                .min_per_second(min_per_second),
        )
    }

    /// `min_per_second * window` retries with no calls at all: 1/s over 10 s is 10.
    #[tokio::test(start_paused = true)]
    async fn the_reserve_allows_min_per_second_times_the_window() {
        let budget = budget(0.0, 1);
        assert_eq!((0..20).filter(|_| budget.withdraw()).count(), 10);
    }

    /// `ratio * calls` on top: 10 calls at 0.2 are 2 retries.
    #[tokio::test(start_paused = true)]
    async fn each_call_adds_ratio_retries() {
        let budget = budget(0.2, 0);
        assert!(!budget.withdraw());
        for _ in 0..10 {
            budget.deposit();
        }
        assert_eq!((0..5).filter(|_| budget.withdraw()).count(), 2);
    }

    /// What was spent at t = 0 is free again once it leaves the window, at exactly 10 s; a
    /// retry spent at 5 s still counts then.
    #[tokio::test(start_paused = true)]
    async fn spent_retries_leave_the_window_after_it() {
        let budget = budget(0.0, 1);
        assert_eq!((0..9).filter(|_| budget.withdraw()).count(), 9);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert!(
            !budget.withdraw(),
            "t = 9.999 s: all ten still in the window"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!((0..20).filter(|_| budget.withdraw()).count(), 9);
    }

    /// A reload changes the values and keeps the count.
    #[tokio::test(start_paused = true)]
    async fn configure_keeps_what_was_counted() {
        let budget = budget(0.0, 1);
        assert_eq!((0..10).filter(|_| budget.withdraw()).count(), 10);
        budget.configure(RetryBudgetSpec::DEFAULT.ratio(0.0).min_per_second(2));
        assert_eq!((0..20).filter(|_| budget.withdraw()).count(), 10);
    }

    /// Odd values never panic: a NaN ratio is 0, a zero window is the smallest one.
    #[tokio::test(start_paused = true)]
    async fn odd_values_are_read_safely() {
        let budget = RetryBudget::new(
            RetryBudgetSpec::DEFAULT
                .ratio(f64::NAN)
                .min_per_second(u32::MAX)
                .window(Duration::ZERO),
        );
        budget.deposit();
        let _ = budget.withdraw();
        let huge = RetryBudget::new(RetryBudgetSpec::DEFAULT.window(Duration::MAX));
        huge.deposit();
        assert!(huge.withdraw());
    }
}
