//! Moving reserved slots when a server says to slow down.
//!
//! In wait mode an admission reserves a slot in the future and the caller sleeps until it. A
//! server's spent quota (a long Retry-After), a pace cut by a 429 or a lower advertised limit
//! moves the schedule's end (the TAT) for later callers, but callers already asleep hold slots
//! computed at the old pace: with 30 of them queued, a 429 with `Retry-After: 5` would be
//! followed by up to 30 more requests during the pause, each provoking its own 429.
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

use super::control::Curve;

/// How many changes are remembered; a caller asleep through more than this many applies the
/// ones still remembered.
const REMEMBERED: usize = 32;

/// What a change does to a slot reserved after it (times in nanoseconds on the limiter's
/// clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Move {
    /// A pause: every later slot is shifted by this much.
    Shift(u64),
    /// A new interval: the reserved slots after the change are spaced by `to` instead of
    /// `from`.
    Stretch { from: u64, to: u64 },
    /// A cut: the reserved slots after the change, `from` apart, are spread out along the
    /// recovery's pace.
    Recover { from: u64, curve: Curve },
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
            Move::Recover { from, curve } => {
                let admissions = (slot - at) as f64 / from.max(1) as f64;
                // `as` saturates a float too large for u64; a slot never moves earlier.
                let moved = at.saturating_add(curve.time_for(admissions).ceil() as u64);
                moved.max(slot)
            }
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

/// The changes of one limiter: the log callers asleep read, and what is in force.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    generation: AtomicU64,
    log: Mutex<Log>,
}

/// The log, under [`Changes`]' lock. A limiter holds the lock for the whole of a change (the
/// time it is made at, the cells moved, the values stored, the entry published), so two
/// changes never interleave and a reader of the log never sees a change half made.
#[derive(Debug, Default)]
pub(crate) struct Log {
    entries: VecDeque<Change>,
    /// The generation of the newest entry dropped to keep [`REMEMBERED`].
    evicted_through: u64,
    /// When the pause in force ends, per scope (a long Retry-After, a spent quota).
    pause_ends: Vec<(Scope, u64)>,
}

/// Where a slot is after the changes since its reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Remap {
    /// Where it was.
    Unchanged,
    /// Later, at this time.
    Moved(u64),
    /// Unknown: changes it missed were dropped from the log. The caller takes a new slot.
    Lost,
}

fn end_of(ends: &[(Scope, u64)], scope: Scope) -> u64 {
    ends.iter()
        .filter(|(of, _)| *of == scope)
        .map(|(_, end)| *end)
        .max()
        .unwrap_or(0)
}

fn set_end(ends: &mut Vec<(Scope, u64)>, scope: Scope, end: u64, now: u64) {
    // Ends already past are forgotten, so a keyed limiter keeps only its recent keys here.
    ends.retain(|(of, past)| *past > now && *of != scope);
    ends.push((scope, end));
}

impl Log {
    /// When the pause in force for `scope` ends (0: none).
    pub(crate) fn pause_end(&self, scope: Scope) -> u64 {
        end_of(&self.pause_ends, scope)
    }

    /// Until when `scope`'s schedule was raised by a pause rather than by
    /// reservations: a TAT at this end (plus the tolerance) holds no reserved slot.
    pub(crate) fn held_until(&self, scope: Scope) -> u64 {
        end_of(&self.pause_ends, scope)
    }

    /// Records a pause of `scope` ending at `end`, made at `now`.
    pub(crate) fn set_pause_end(&mut self, scope: Scope, end: u64, now: u64) {
        let end = end.max(self.pause_end(scope));
        set_end(&mut self.pause_ends, scope, end, now);
    }
}

impl Changes {
    /// The generation now: read before a reservation, handed back to [`remap`](Self::remap).
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The log, locked for one change.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes a change made at `at` (the cells already moved): callers asleep on slots of
    /// `scope` reserved before it move as `change` says, and, for a pause, to `until` at
    /// least.
    ///
    /// The cells move before the entry is published: a caller reserving in between read the
    /// generation before the change, so it moves a slot that was already moved and sleeps
    /// longer than it needed to. The other order would let it keep an unmoved slot inside
    /// the pause.
    pub(crate) fn publish(
        &self,
        log: &mut Log,
        at: u64,
        scope: Scope,
        change: Move,
        until: Option<u64>,
    ) {
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        if log.entries.len() == REMEMBERED {
            if let Some(evicted) = log.entries.pop_front() {
                log.evicted_through = evicted.generation;
            }
        }
        log.entries.push_back(Change {
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
    pub(crate) fn remap(&self, key: Option<u64>, generation: u64, slot: u64) -> (Remap, u64) {
        let now = self.generation();
        if now == generation {
            return (Remap::Unchanged, now);
        }
        let log = self.lock();
        let latest = log
            .entries
            .back()
            .map_or(now, |change| change.generation.max(now));
        if generation < log.evicted_through {
            return (Remap::Lost, latest);
        }
        let mut moved = slot;
        for change in log
            .entries
            .iter()
            .filter(|change| change.generation > generation)
        {
            if change.scope.covers(key) {
                moved = change.change.apply(change.at, moved);
                // Whoever asks has not been sent: a slot at or just before the pause's start
                // (its timer not fired yet) waits the pause out too.
                if let Some(until) = change.until {
                    moved = moved.max(until);
                }
            }
        }
        let remap = if moved > slot {
            Remap::Moved(moved)
        } else {
            Remap::Unchanged
        };
        (remap, latest)
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

    /// Publishes `change` as a limiter does (pauses with their end).
    fn record(changes: &Changes, at: u64, scope: Scope, change: Move) {
        let until = match change {
            Move::Shift(by) => Some(at + by),
            Move::Stretch { .. } | Move::Recover { .. } => None,
        };
        let mut log = changes.lock();
        changes.publish(&mut log, at, scope, change, until);
    }

    #[test]
    fn ends_in_force_are_per_scope_and_only_grow() {
        let changes = Changes::default();
        let mut log = changes.lock();
        log.set_pause_end(Scope::Unkeyed, 1_000, 0);
        log.set_pause_end(Scope::Unkeyed, 500, 10);
        log.set_pause_end(Scope::Key(1), 2_000, 10);
        assert_eq!(log.pause_end(Scope::Unkeyed), 1_000);
        assert_eq!(log.pause_end(Scope::Key(2)), 0);
        assert_eq!(log.held_until(Scope::Key(1)), 2_000);
        assert_eq!(log.held_until(Scope::Unkeyed), 1_000);
        // ends already past are dropped
        log.set_pause_end(Scope::Key(2), 3_000, 2_500);
        assert_eq!(log.held_until(Scope::Key(1)), 0);
    }

    #[test]
    fn remap_applies_the_changes_since_the_reservation_for_its_key() {
        let changes = Changes::default();
        let before = changes.generation();
        record(&changes, 0, Scope::Key(7), Move::Shift(1_000));
        let middle = changes.generation();
        record(&changes, 0, Scope::All, Move::Stretch { from: 1, to: 2 });
        record(&changes, 0, Scope::Unkeyed, Move::Shift(100));
        assert_eq!(changes.remap(Some(7), before, 5), (Remap::Moved(2_010), 3));
        assert_eq!(changes.remap(Some(8), before, 5), (Remap::Moved(10), 3));
        assert_eq!(changes.remap(Some(7), middle, 5), (Remap::Moved(10), 3));
        assert_eq!(changes.remap(None, before, 5), (Remap::Moved(110), 3));
        assert_eq!(changes.remap(None, 3, 5), (Remap::Unchanged, 3));
    }

    #[test]
    fn a_slot_at_the_pause_start_waits_it_out() {
        let changes = Changes::default();
        record(&changes, 100, Scope::Unkeyed, Move::Shift(1_000));
        // reserved at 100 (or just before), its timer not fired when the pause came
        assert_eq!(changes.remap(None, 0, 100), (Remap::Moved(1_100), 1));
        assert_eq!(changes.remap(None, 0, 99), (Remap::Moved(1_100), 1));
    }

    #[test]
    fn a_caller_older_than_the_log_is_told_its_slot_is_lost() {
        let changes = Changes::default();
        for at in 0..REMEMBERED as u64 + 8 {
            record(&changes, at, Scope::Unkeyed, Move::Shift(1));
        }
        let latest = (REMEMBERED + 8) as u64;
        assert_eq!(changes.remap(None, 0, 100), (Remap::Lost, latest));
        // one that reserved after the dropped entries still reads the log
        let (remap, _) = changes.remap(None, 8, 100);
        assert_eq!(remap, Remap::Moved(100 + REMEMBERED as u64));
    }
}
