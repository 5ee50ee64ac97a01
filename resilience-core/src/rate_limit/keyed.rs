//! [`Keyed`]: the cells of a keyed limiter, one per key, with idle keys swept a part at a time.
//!
//! Memory must stay proportional to the keys active recently, however many were ever seen, so
//! keys back at full capacity are dropped once the map has doubled since the last sweep. A
//! sweep of the whole map on the caller's path stalled that caller 21 to 38 ms at a million
//! keys; so the map is split in [`PARTS`] parts by the key's hash, and a sweep is a pass over
//! the parts, one part by each caller that adds a key, until the pass is done: a caller pays
//! for 1/32 of the map at most.

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::gcra::Gcra;

/// Keys are already 64-bit hashes of the user's key values, so the map need not hash again.
#[derive(Default)]
pub(crate) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type Part = DashMap<u64, Gcra, BuildHasherDefault<PreHashed>>;

/// The parts of the map, each swept on its own.
pub(crate) const PARTS: usize = 32;
/// Locks per part: 128 in all, as many as dashmap gives a 32-core machine by default, in 16 kB.
const SHARDS: usize = 4;
/// Below this many keys a keyed limiter never sweeps idle keys.
pub(crate) const SWEEP_FLOOR: usize = 1024;

/// The cells of a keyed limiter.
#[derive(Debug)]
pub(crate) struct Keyed {
    parts: Box<[Part]>,
    /// Keys added less keys swept (concurrent changes make it approximate; it only decides
    /// when a pass starts).
    tracked: AtomicUsize,
    /// `tracked` when the last pass ended.
    swept_at: AtomicUsize,
    /// The next part a pass sweeps; `PARTS` or more: no pass under way.
    cursor: AtomicUsize,
}

impl Default for Keyed {
    fn default() -> Self {
        Keyed {
            parts: (0..PARTS)
                .map(|_| Part::with_hasher_and_shard_amount(BuildHasherDefault::default(), SHARDS))
                .collect(),
            tracked: AtomicUsize::new(0),
            swept_at: AtomicUsize::new(0),
            cursor: AtomicUsize::new(PARTS),
        }
    }
}

impl Keyed {
    /// The part of `key`: bits 32 to 36 of the hash, which neither the part's shard choice
    /// (the top bits) nor its table (the top 7 and the low bits) relies on.
    fn part(&self, key: u64) -> &Part {
        &self.parts[(key >> 32) as usize % PARTS]
    }

    /// Runs `f` on `key`'s cell, adding the cell (at full capacity) if the key is new; a new
    /// key then sweeps one part if a pass is due or under way. `now` is the limiter's clock.
    #[inline]
    pub(crate) fn with_cell<R>(&self, key: u64, now: u64, f: impl FnOnce(&Gcra) -> R) -> R {
        let part = self.part(key);
        if let Some(cell) = part.get(&key) {
            return f(&cell);
        }
        let (result, added) = match part.entry(key) {
            Entry::Occupied(cell) => (f(cell.get()), false),
            Entry::Vacant(vacant) => {
                let cell = vacant.insert(Gcra::new());
                (f(&cell), true)
            }
        };
        // The entry's lock is released by now: the sweep may take this very part.
        if added {
            self.tracked.fetch_add(1, Ordering::Relaxed);
            self.sweep_step(now);
        }
        result
    }

    /// Runs `f` on every cell, with its key.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u64, &Gcra)) {
        for part in self.parts.iter() {
            for cell in part.iter() {
                f(*cell.key(), cell.value());
            }
        }
    }

    /// The keys held now (idle ones may linger until a pass sweeps their part).
    pub(crate) fn len(&self) -> usize {
        self.parts.iter().map(Part::len).sum()
    }

    /// Sweeps the next part of the pass under way, or starts a pass once the map has doubled
    /// since the last one (and holds more than [`SWEEP_FLOOR`] keys).
    fn sweep_step(&self, now: u64) {
        if self.cursor.load(Ordering::Relaxed) >= PARTS {
            let tracked = self.tracked.load(Ordering::Relaxed);
            let last = self.swept_at.load(Ordering::Relaxed);
            if tracked <= SWEEP_FLOOR.max(last.saturating_mul(2)) {
                return;
            }
            // One caller starts the pass; the others go on.
            let current = self.cursor.load(Ordering::Relaxed);
            if current < PARTS
                || self
                    .cursor
                    .compare_exchange(current, 0, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                return;
            }
        }
        let index = self.cursor.fetch_add(1, Ordering::Relaxed);
        let Some(part) = self.parts.get(index) else {
            return;
        };
        let before = part.len();
        part.retain(|_, cell| !cell.is_idle(now));
        let swept = before.saturating_sub(part.len());
        let _ = self
            .tracked
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tracked| {
                Some(tracked.saturating_sub(swept))
            });
        if index + 1 == PARTS {
            self.swept_at
                .store(self.tracked.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn admit(keyed: &Keyed, key: u64, now: u64) {
        keyed.with_cell(key, now, |cell| cell.acquire(now, MS, 0, Some(0)));
    }

    /// Keys spread over every part by the hash bits [`Keyed::part`] reads.
    fn key(i: u64) -> u64 {
        crate::rate_limit::key_hash(&i)
    }

    /// A sweep is a pass over the parts, one part per new key: no caller sweeps the whole map,
    /// and the idle keys are gone once the pass is done.
    #[test]
    fn idle_keys_are_swept_a_part_per_new_key() {
        let keyed = Keyed::default();
        // 1024 keys, admitted at 0, idle from 1 ms on: no pass yet (the floor)
        for i in 0..SWEEP_FLOOR as u64 {
            admit(&keyed, key(i), 0);
        }
        assert_eq!(keyed.len(), SWEEP_FLOOR);
        // at 10 ms the 1025th key starts a pass, which sweeps its first part only
        let now = 10 * MS;
        admit(&keyed, key(u64::MAX), now);
        let after_one = keyed.len();
        let swept = SWEEP_FLOOR + 1 - after_one;
        assert!(
            swept > 0 && swept < SWEEP_FLOOR / 8,
            "one part is about 1/32 of the keys; swept {swept}"
        );
        // 31 more new keys finish the pass: only the keys admitted since remain
        for i in 0..(PARTS as u64 - 1) {
            admit(&keyed, key(u64::MAX - 1 - i), now);
        }
        assert_eq!(keyed.len(), PARTS);
        // and the next pass waits for the map to double again
        admit(&keyed, key(u64::MAX - 100), now);
        assert_eq!(keyed.len(), PARTS + 1);
    }

    #[test]
    fn keys_in_use_are_kept() {
        let keyed = Keyed::default();
        let now = 10 * MS;
        // busy until 10 s: each admitted at 10 ms with a 10 s interval
        for i in 0..2 * SWEEP_FLOOR as u64 {
            keyed.with_cell(key(i), now, |cell| {
                cell.acquire(now, 10_000 * MS, 0, Some(0))
            });
        }
        assert_eq!(keyed.len(), 2 * SWEEP_FLOOR);
        let mut seen = 0;
        keyed.for_each(|_, _| seen += 1);
        assert_eq!(seen, 2 * SWEEP_FLOOR);
    }
}
