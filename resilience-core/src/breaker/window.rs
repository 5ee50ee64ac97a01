//! What a closed breaker counts: the outcomes of the last `size` calls ([`Window::Count`]), or
//! of the calls of the last `window` seconds ([`Window::Time`]).
//!
//! The count window is a ring of bits (one for a failure, one for a slow call) in words, and
//! one word holding both running counts, all atomics. A success recorded while no recorded
//! call failed or was slow (the steady state of a healthy dependency) is one load of that word
//! and, once the window is full, one more load: no write to shared words.
//!
//! The time window is resilience4j's: one bucket per second (per `width` seconds past an hour,
//! so that a window holds at most [`MAX_BUCKETS`]), under a small mutex; a bucket is emptied
//! when the window has moved a whole window past it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The most buckets a time window keeps: one per second up to an hour, wider buckets past it.
pub(crate) const MAX_BUCKETS: u64 = 3600;

/// The window after one record: how many calls it holds, and how many of them failed or were
/// slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tally {
    pub(crate) recorded: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

/// One call's outcome, as the window counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) failed: bool,
    pub(crate) slow: bool,
}

pub(crate) enum Window {
    Count(CountWindow),
    Time(Mutex<TimeWindow>),
}

impl Window {
    /// A window of the last `size` calls.
    pub(crate) fn count(size: u32) -> Self {
        Window::Count(CountWindow::new(size))
    }

    /// A window of the last `seconds` seconds.
    pub(crate) fn time(seconds: u32) -> Self {
        Window::Time(Mutex::new(TimeWindow::new(seconds)))
    }

    /// Records one call's outcome; `now` (nanoseconds on the breaker's clock) places it in
    /// a time window.
    #[inline]
    pub(crate) fn record(&self, outcome: Outcome, now: impl FnOnce() -> u64) -> Tally {
        match self {
            Window::Count(window) => window.record(outcome),
            Window::Time(window) => lock(window).record(outcome, now()),
        }
    }

    /// Forgets every outcome (a breaker closing starts a fresh window).
    pub(crate) fn reset(&self) {
        match self {
            Window::Count(window) => window.reset(),
            Window::Time(window) => lock(window).reset(),
        }
    }
}

fn lock(window: &Mutex<TimeWindow>) -> std::sync::MutexGuard<'_, TimeWindow> {
    window
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The bit ring of the last `size` calls.
pub(crate) struct CountWindow {
    size: u64,
    /// Per slot, bit `slot % 64` of word `slot / 64`: the call failed.
    failed: Box<[AtomicU64]>,
    /// The same for slow calls.
    slow: Box<[AtomicU64]>,
    /// Calls recorded since the window was (re)started.
    next: AtomicU64,
    /// Failures in the low half, slow calls in the high half: one load tells both are zero.
    counts: AtomicU64,
}

const FAILURE: u64 = 1;
const SLOW: u64 = 1 << 32;

impl CountWindow {
    fn new(size: u32) -> Self {
        let size = u64::from(size.max(1));
        let words = || (0..size.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        CountWindow {
            size,
            failed: words(),
            slow: words(),
            next: AtomicU64::new(0),
            counts: AtomicU64::new(0),
        }
    }

    #[inline]
    fn record(&self, outcome: Outcome) -> Tally {
        if !outcome.failed && !outcome.slow && self.counts.load(Ordering::Relaxed) == 0 {
            // Every recorded call succeeded in time: one more changes nothing but the count
            // of recorded calls, until the window is full. A healthy dependency's steady
            // state is then two loads, no write.
            let recorded = self.next.load(Ordering::Relaxed);
            if recorded >= self.size {
                return Tally {
                    recorded: self.size as u32,
                    ..Tally::default()
                };
            }
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = n % self.size;
        let (index, bit) = ((slot / 64) as usize, 1u64 << (slot % 64));
        mark(
            &self.failed[index],
            bit,
            outcome.failed,
            &self.counts,
            FAILURE,
        );
        mark(&self.slow[index], bit, outcome.slow, &self.counts, SLOW);
        let counts = self.counts.load(Ordering::Relaxed);
        Tally {
            recorded: (n + 1).min(self.size) as u32,
            failures: counts as u32,
            slow: (counts >> 32) as u32,
        }
    }

    fn reset(&self) {
        for word in self.failed.iter().chain(self.slow.iter()) {
            word.store(0, Ordering::Relaxed);
        }
        self.counts.store(0, Ordering::Relaxed);
        self.next.store(0, Ordering::Relaxed);
    }
}

/// Sets or clears `bit` of `word`, counting `one` in `counts` when it changed.
#[inline]
fn mark(word: &AtomicU64, bit: u64, set: bool, counts: &AtomicU64, one: u64) {
    if set {
        if word.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            counts.fetch_add(one, Ordering::Relaxed);
        }
    } else if word.load(Ordering::Relaxed) & bit != 0
        && word.fetch_and(!bit, Ordering::Relaxed) & bit != 0
    {
        // A concurrent reset may have zeroed the counts: never borrow from the other half.
        let _ = counts.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |counts| {
            let half = if one == SLOW {
                counts >> 32
            } else {
                counts & 0xffff_ffff
            };
            (half > 0).then(|| counts - one)
        });
    }
}

/// The calls of the last `buckets * width` seconds.
pub(crate) struct TimeWindow {
    width: u64,
    buckets: Box<[Tally]>,
    /// The bucket number (time / width) of the latest record, or `None` when fresh.
    head: Option<u64>,
    total: Tally,
}

impl TimeWindow {
    fn new(seconds: u32) -> Self {
        let seconds = u64::from(seconds.max(1));
        let width = seconds.div_ceil(MAX_BUCKETS);
        let count = seconds.div_ceil(width);
        TimeWindow {
            width: width.saturating_mul(NANOS_PER_SECOND),
            buckets: vec![Tally::default(); count as usize].into_boxed_slice(),
            head: None,
            total: Tally::default(),
        }
    }

    fn record(&mut self, outcome: Outcome, now: u64) -> Tally {
        let current = now / self.width;
        let count = self.buckets.len() as u64;
        let head = self.head.unwrap_or(current);
        // Buckets the window moved past since the latest record, at most all of them.
        let expired = current.saturating_sub(head).min(count);
        for number in (current - expired + 1)..=current {
            let bucket = &mut self.buckets[(number % count) as usize];
            // Saturating: a total that saturated is less than the sum of its buckets.
            self.total.recorded = self.total.recorded.saturating_sub(bucket.recorded);
            self.total.failures = self.total.failures.saturating_sub(bucket.failures);
            self.total.slow = self.total.slow.saturating_sub(bucket.slow);
            *bucket = Tally::default();
        }
        // A clock read before the latest record's (two callers racing to the lock) counts
        // in the latest bucket.
        self.head = Some(current.max(head));
        let bucket = &mut self.buckets[(current.max(head) % count) as usize];
        let add = |count: &mut u32, total: &mut u32, yes: bool| {
            let one = u32::from(yes);
            *count = count.saturating_add(one);
            *total = total.saturating_add(one);
        };
        add(&mut bucket.recorded, &mut self.total.recorded, true);
        add(
            &mut bucket.failures,
            &mut self.total.failures,
            outcome.failed,
        );
        add(&mut bucket.slow, &mut self.total.slow, outcome.slow);
        self.total
    }

    fn reset(&mut self) {
        self.buckets.fill(Tally::default());
        self.total = Tally::default();
        self.head = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAIL: Outcome = Outcome {
        failed: true,
        slow: false,
    };
    const PASS: Outcome = Outcome {
        failed: false,
        slow: false,
    };
    const SLOW_PASS: Outcome = Outcome {
        failed: false,
        slow: true,
    };

    fn tally(recorded: u32, failures: u32, slow: u32) -> Tally {
        Tally {
            recorded,
            failures,
            slow,
        }
    }

    fn never() -> u64 {
        unreachable!("a count window reads no clock")
    }

    #[test]
    fn counts_the_last_size_calls() {
        let window = Window::count(3);
        assert_eq!(window.record(FAIL, never), tally(1, 1, 0));
        assert_eq!(window.record(PASS, never), tally(2, 1, 0));
        assert_eq!(window.record(FAIL, never), tally(3, 2, 0));
        // The first failure leaves the window.
        assert_eq!(window.record(PASS, never), tally(3, 1, 0));
        assert_eq!(window.record(PASS, never), tally(3, 1, 0));
        assert_eq!(window.record(PASS, never), tally(3, 0, 0));
        window.reset();
        assert_eq!(window.record(FAIL, never), tally(1, 1, 0));
    }

    #[test]
    fn counts_slow_calls_beside_failures() {
        let window = Window::count(2);
        assert_eq!(window.record(SLOW_PASS, never), tally(1, 0, 1));
        let both = Outcome {
            failed: true,
            slow: true,
        };
        assert_eq!(window.record(both, never), tally(2, 1, 2));
        assert_eq!(window.record(PASS, never), tally(2, 1, 1));
        assert_eq!(window.record(PASS, never), tally(2, 0, 0));
    }

    #[test]
    fn spans_several_words() {
        let window = Window::count(100);
        for i in 0..100 {
            window.record(if i % 4 == 0 { FAIL } else { PASS }, never);
        }
        assert_eq!(window.record(PASS, never), tally(100, 24, 0));
    }

    const S: u64 = NANOS_PER_SECOND;

    #[test]
    fn a_time_window_forgets_a_call_a_whole_window_after_its_second() {
        let window = Window::time(10);
        assert_eq!(window.record(FAIL, || S / 2), tally(1, 1, 0));
        assert_eq!(window.record(PASS, || 3 * S), tally(2, 1, 0));
        // Second 0 leaves at 10 s: its failure is counted up to the last nanosecond before.
        assert_eq!(window.record(PASS, || 10 * S - 1), tally(3, 1, 0));
        assert_eq!(window.record(PASS, || 10 * S), tally(3, 0, 0));
        // Second 3 leaves at 13 s.
        assert_eq!(window.record(PASS, || 13 * S), tally(3, 0, 0));
        assert_eq!(window.record(SLOW_PASS, || 18 * S), tally(4, 0, 1));
        // Idle for longer than the window: everything is gone.
        assert_eq!(window.record(FAIL, || 100 * S), tally(1, 1, 0));
        window.reset();
        assert_eq!(window.record(PASS, || 100 * S), tally(1, 0, 0));
    }

    #[test]
    fn a_long_time_window_keeps_at_most_max_buckets() {
        let TimeWindow { width, buckets, .. } = TimeWindow::new(7201);
        assert_eq!((width, buckets.len()), (3 * S, 2401));
        let TimeWindow { width, buckets, .. } = TimeWindow::new(u32::MAX);
        assert_eq!(width / S, u64::from(u32::MAX).div_ceil(MAX_BUCKETS));
        assert!(buckets.len() as u64 <= MAX_BUCKETS);
    }

    #[test]
    fn a_clock_read_behind_the_latest_record_counts_in_its_bucket() {
        let window = Window::time(2);
        window.record(FAIL, || 5 * S);
        assert_eq!(window.record(PASS, || 4 * S), tally(2, 1, 0));
        assert_eq!(window.record(PASS, || 7 * S), tally(1, 0, 0));
    }
}
