//! Moving reserved slots when a server says to slow down.
//!
//! In wait mode an admission reserves a slot in the future and the caller sleeps until it. A
//! server's Retry-After or a lower advertised limit moves the schedule's end (the TAT) for
//! later callers, but callers already asleep hold slots computed at the old pace: with 30 of
//! them queued, a 429 with `Retry-After: 5` would be followed by up to 30 more requests during
//! the pause, each provoking its own 429. (A pause read from `Remaining`/`Reset` holds back
//! only new reservations: see [`RateLimiter::learn`](super::RateLimiter::learn).)
//!
//! So each such change is logged ([`Changes`]) with a generation number, and a caller that
//! wakes on a reserved slot asks whether its slot moved ([`Changes::remap`]): a pause shifts
//! every slot after it by the pause, a lower limit stretches the reserved slots after it by the
//! ratio of the intervals, as the TAT is shifted or stretched. A caller admitted at once, the
//! happy path, never looks. A reload of the YAML values is not logged: a changed rate keeps the
//! slots already reserved, as documented for configuration changes.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many changes are remembered; a caller asleep through more than this many applies the
/// ones still remembered.
const REMEMBERED: usize = 32;

/// What a change does to a slot reserved after it (times in nanoseconds on the limiter's
/// clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Move {
    /// A pause: every later slot is shifted by this much.
    Shift(u64),
    /// A new interval: the reserved slots after the change are spaced by `to` instead of
    /// `from`.
    Stretch { from: u64, to: u64 },
}

impl Move {
    /// Where a slot at `slot` goes, for a change made at `at`.
    pub(crate) fn apply(self, at: u64, slot: u64) -> u64 {
        if slot <= at {
            return slot;
        }
        match self {
            Move::Shift(by) => slot.saturating_add(by),
            Move::Stretch { from, to } if from > 0 => {
                let stretched = u128::from(slot - at) * u128::from(to) / u128::from(from);
                at.saturating_add(u64::try_from(stretched).unwrap_or(u64::MAX))
            }
            Move::Stretch { .. } => slot,
        }
    }
}

/// Which reserved slots a change moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every key's and the unkeyed cell's.
    All,
    /// The unkeyed cell's.
    Unkeyed,
    /// One key's.
    Key(u64),
}

impl Scope {
    fn covers(self, key: Option<u64>) -> bool {
        match self {
            Scope::All => true,
            Scope::Unkeyed => key.is_none(),
            Scope::Key(scoped) => key == Some(scoped),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Change {
    generation: u64,
    at: u64,
    scope: Scope,
    change: Move,
    /// For a pause, when it ends.
    until: Option<u64>,
}

/// What a server asked for, before it is turned into a [`Move`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    /// Nothing before this time.
    PauseUntil(u64),
    /// This pace instead (see [`Move::Stretch`]).
    Stretch { from: u64, to: u64 },
}

/// The changes of one limiter, newest last.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    generation: AtomicU64,
    log: Mutex<VecDeque<Change>>,
}

impl Changes {
    /// The generation now: read before a reservation, handed back to [`remap`](Self::remap).
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Turns `ask`, made at `at`, into the move of the slots reserved in `scope`, has
    /// `move_cells` apply it to the cells' schedules, and records it for the callers asleep.
    ///
    /// A pause moves the slots by the part of it not already in force: several responses in
    /// a row saying `Remaining: 0, Reset: 1` (or a burst of 429s with one Retry-After) pause
    /// the queue once, and a longer pause during one extends it by the difference.
    ///
    /// The cells move first and the log after, under one lock (so two pauses at once are
    /// not both counted in full): a caller reserving in between read the generation before
    /// the change, so it moves a slot that was already moved and sleeps longer than it needed
    /// to. The other order would let it keep an unmoved slot inside the pause.
    pub(crate) fn apply(&self, at: u64, scope: Scope, ask: Ask, move_cells: impl FnOnce(Move)) {
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (change, until) = match ask {
            Ask::PauseUntil(until) => {
                let in_force = log
                    .iter()
                    .filter(|change| change.scope == scope)
                    .filter_map(|change| change.until)
                    .fold(at, u64::max);
                (Move::Shift(until.saturating_sub(in_force)), Some(until))
            }
            Ask::Stretch { from, to } => (Move::Stretch { from, to }, None),
        };
        move_cells(change);
        if change == Move::Shift(0) {
            return;
        }
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        if log.len() == REMEMBERED {
            log.pop_front();
        }
        log.push_back(Change {
            generation,
            at,
            scope,
            change,
            until,
        });
        // Published after the entry, under the lock: a reader seeing the new generation
        // finds its entry.
        self.generation.store(generation, Ordering::Release);
    }

    /// Where a slot at `slot`, reserved for `key` at `generation`, is now, and the generation
    /// that answer is current for. One atomic load when nothing changed.
    pub(crate) fn remap(&self, key: Option<u64>, generation: u64, slot: u64) -> (u64, u64) {
        let now = self.generation();
        if now == generation {
            return (slot, now);
        }
        let log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut slot = slot;
        let mut latest = generation;
        for change in log.iter().filter(|change| change.generation > generation) {
            if change.scope.covers(key) {
                slot = change.change.apply(change.at, slot);
            }
            latest = change.generation;
        }
        (slot, latest.max(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_pause_shifts_later_slots_only() {
        let shift = Move::Shift(2_000 * MS);
        assert_eq!(shift.apply(100 * MS, 50 * MS), 50 * MS);
        assert_eq!(shift.apply(100 * MS, 300 * MS), 2_300 * MS);
    }

    #[test]
    fn a_lower_limit_stretches_the_queue_from_the_change() {
        let stretch = Move::Stretch {
            from: 10 * MS,
            to: 20 * MS,
        };
        // reserved 10 ms apart from the change at 100 ms: now 20 ms apart from it
        let slots: Vec<u64> = (1..=3)
            .map(|i| stretch.apply(100 * MS, 100 * MS + i * 10 * MS) / MS)
            .collect();
        assert_eq!(slots, [120, 140, 160]);
        assert_eq!(stretch.apply(100 * MS, 90 * MS), 90 * MS);
        assert_eq!(Move::Stretch { from: 0, to: 5 }.apply(0, 7), 7);
        assert_eq!(
            Move::Stretch {
                from: 1,
                to: u64::MAX
            }
            .apply(0, u64::MAX),
            u64::MAX
        );
    }

    /// Records `change` as [`Changes::apply`] does, without cells to move.
    fn record(changes: &Changes, at: u64, scope: Scope, change: Move) {
        let ask = match change {
            Move::Shift(by) => Ask::PauseUntil(at + by),
            Move::Stretch { from, to } => Ask::Stretch { from, to },
        };
        changes.apply(at, scope, ask, |_| {});
    }

    #[test]
    fn a_pause_already_in_force_is_not_applied_twice() {
        let changes = Changes::default();
        let mut moves = Vec::new();
        for (at, until) in [
            (0, 1_000),
            (0, 1_000),
            (500, 1_000),
            (500, 1_500),
            (2_000, 2_100),
        ] {
            changes.apply(at, Scope::Unkeyed, Ask::PauseUntil(until), |change| {
                moves.push(change)
            });
        }
        assert_eq!(
            moves,
            [
                Move::Shift(1_000), // the pause
                Move::Shift(0),     // the same pause, from a second response
                Move::Shift(0),     // a shorter one, inside it
                Move::Shift(500),   // a longer one: extended by the difference
                Move::Shift(100),   // a new pause, after the last one ended
            ]
        );
        assert_eq!(changes.generation(), 3);
        // one key's pause is its own
        changes.apply(0, Scope::Key(1), Ask::PauseUntil(1_000), |change| {
            assert_eq!(change, Move::Shift(1_000));
        });
    }

    #[test]
    fn remap_applies_the_changes_since_the_reservation_for_its_key() {
        let changes = Changes::default();
        let before = changes.generation();
        record(&changes, 0, Scope::Key(7), Move::Shift(1_000));
        let middle = changes.generation();
        record(&changes, 0, Scope::All, Move::Stretch { from: 1, to: 1 });
        record(&changes, 0, Scope::Unkeyed, Move::Shift(100));
        assert_eq!(changes.remap(Some(7), before, 5), (1_005, 3));
        assert_eq!(changes.remap(Some(8), before, 5), (5, 3));
        assert_eq!(changes.remap(Some(7), middle, 5), (5, 3));
        assert_eq!(changes.remap(None, before, 5), (105, 3));
        assert_eq!(changes.remap(None, changes.generation(), 5), (5, 3));
    }

    #[test]
    fn only_the_newest_changes_are_kept() {
        let changes = Changes::default();
        for at in 0..REMEMBERED as u64 + 8 {
            record(&changes, at, Scope::Unkeyed, Move::Shift(1));
        }
        let (slot, generation) = changes.remap(None, 0, 100);
        assert_eq!(slot, 100 + REMEMBERED as u64);
        assert_eq!(generation, (REMEMBERED + 8) as u64);
    }
}
