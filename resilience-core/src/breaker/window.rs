//! The outcomes of the last `size` calls: one bit each in a ring of words, and a running count
//! of failures, all atomics.
//!
//! A success recorded over a slot that held a success (the steady state of a healthy
//! dependency) is one `fetch_add` and two loads: no write to shared words.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

pub(crate) struct Window {
    size: u64,
    words: Box<[AtomicU64]>,
    /// Calls recorded since the window was (re)started.
    next: AtomicU64,
    failures: AtomicU32,
}

/// The window after one record: how many of the last `size` calls are recorded, and how many
/// of them failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) recorded: u32,
    pub(crate) failures: u32,
}

impl Window {
    pub(crate) fn new(size: u32) -> Self {
        let size = u64::from(size.max(1));
        let words = (0..size.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        Window {
            size,
            words,
            next: AtomicU64::new(0),
            failures: AtomicU32::new(0),
        }
    }

    /// Records one call's outcome over the oldest one.
    #[inline]
    pub(crate) fn record(&self, failed: bool) -> Tally {
        if !failed && self.failures.load(Ordering::Relaxed) == 0 {
            // Every recorded call succeeded: one more success changes nothing but the count
            // of recorded calls, until the window is full. A healthy dependency's steady
            // state is then two loads, no write.
            let recorded = self.next.load(Ordering::Relaxed);
            if recorded >= self.size {
                return Tally {
                    recorded: self.size as u32,
                    failures: 0,
                };
            }
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = n % self.size;
        let word = &self.words[(slot / 64) as usize];
        let bit = 1u64 << (slot % 64);
        let failures = if failed {
            if word.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
                self.failures.fetch_add(1, Ordering::Relaxed) + 1
            } else {
                self.failures.load(Ordering::Relaxed)
            }
        } else if word.load(Ordering::Relaxed) & bit != 0
            && word.fetch_and(!bit, Ordering::Relaxed) & bit != 0
        {
            self.failures
                .fetch_sub(1, Ordering::Relaxed)
                .saturating_sub(1)
        } else {
            self.failures.load(Ordering::Relaxed)
        };
        Tally {
            recorded: (n + 1).min(self.size) as u32,
            failures,
        }
    }

    /// Forgets every outcome (a breaker closing starts a fresh window).
    pub(crate) fn reset(&self) {
        for word in &self.words {
            word.store(0, Ordering::Relaxed);
        }
        self.failures.store(0, Ordering::Relaxed);
        self.next.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_size_calls() {
        let window = Window::new(3);
        assert_eq!(
            window.record(true),
            Tally {
                recorded: 1,
                failures: 1
            }
        );
        assert_eq!(
            window.record(false),
            Tally {
                recorded: 2,
                failures: 1
            }
        );
        assert_eq!(
            window.record(true),
            Tally {
                recorded: 3,
                failures: 2
            }
        );
        // The first failure leaves the window.
        assert_eq!(
            window.record(false),
            Tally {
                recorded: 3,
                failures: 1
            }
        );
        assert_eq!(
            window.record(false),
            Tally {
                recorded: 3,
                failures: 1
            }
        );
        assert_eq!(
            window.record(false),
            Tally {
                recorded: 3,
                failures: 0
            }
        );
        window.reset();
        assert_eq!(
            window.record(true),
            Tally {
                recorded: 1,
                failures: 1
            }
        );
    }

    #[test]
    fn spans_several_words() {
        let window = Window::new(100);
        for i in 0..100 {
            window.record(i % 4 == 0);
        }
        assert_eq!(
            window.record(false),
            Tally {
                recorded: 100,
                failures: 24
            }
        );
    }
}
