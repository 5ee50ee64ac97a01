//! [`CacheStats`]: the counters of one cache, readable in-process.
//!
//! A hit must not write a cache line that another core writes too: one shared `AtomicU64`
//! bumped by every hit costs a locked add per hit (about 5 ns here), and far more once two
//! threads hit the same cache (the line bounces between their cores; reads of quick_cache
//! alone scale, reads that also bump a shared counter do not). So the lookup counters (hits,
//! misses, stale serves) are striped: each live thread holds a slot number of its own
//! ([`slot`]), and a cache keeps one stripe of counters per slot, each stripe on its own cache
//! lines. Only the thread holding a slot writes that stripe, so a bump is a plain load and
//! store, no locked instruction. Threads beyond the stripes (and any thread whose slot is
//! already gone, during its exit) share one more stripe, bumped with `fetch_add`. A thread
//! gives its slot back when it exits, so a pool that replaces its threads reuses the numbers.
//!
//! Nor does a lookup or a load talk to the `metrics` facade on every count: the counts are
//! handed to it when read ([`CacheStats::counts`] through a handle, `resilience::stats()`),
//! when a cache is dropped, by the first lookup of each second ([`CacheStats::report_due`]),
//! and, for a user who asks, by a thread of their own ([`spawn_reporter`]). The library starts
//! no thread of its own for this.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, OnceLock, Weak};
use std::time::Duration;

use crate::clock::nanos;
use crate::families;

/// The lookup counters of one slot, alone on its cache lines (128 bytes: two lines, as
/// x86's adjacent-line prefetch pairs them).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
    stale: AtomicU64,
}

/// Which counter of a stripe.
#[derive(Clone, Copy)]
pub(crate) enum Lookups {
    Hit,
    Miss,
    Stale,
}

impl Stripe {
    /// Adds one with a plain load and store: only the stripe's own thread writes it.
    #[inline]
    fn bump_own(&self, which: Lookups) {
        let counter = self.counter(which);
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    #[inline]
    fn counter(&self, which: Lookups) -> &AtomicU64 {
        match which {
            Lookups::Hit => &self.hits,
            Lookups::Miss => &self.misses,
            Lookups::Stale => &self.stale,
        }
    }
}

/// Stripes per cache: twice the cores (a runtime's workers, the threads that block on it,
/// a few more), at least 4, at most 64.
static STRIPES: LazyLock<usize> = LazyLock::new(|| {
    std::thread::available_parallelism()
        .map_or(4, |cores| cores.get() * 2)
        .clamp(4, 64)
});

/// Slot numbers: the next never handed out, and those given back (smallest first).
static SLOTS: Mutex<(usize, BinaryHeap<Reverse<usize>>)> = Mutex::new((0, BinaryHeap::new()));

/// This thread's slot number while it has none yet.
const UNASSIGNED: usize = usize::MAX;
/// This thread's slot number once it has given it back (it is exiting).
const EXITING: usize = usize::MAX - 1;

/// A thread's slot number, given back when the thread exits.
struct ThreadSlot(usize);

impl ThreadSlot {
    fn take() -> Self {
        let mut slots = SLOTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match slots.1.pop() {
            Some(Reverse(slot)) => ThreadSlot(slot),
            None => {
                slots.0 += 1;
                ThreadSlot(slots.0 - 1)
            }
        }
    }
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        // From here on this thread counts on the shared stripe: the number may be another's.
        SLOT.set(EXITING);
        let mut slots = SLOTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.1.push(Reverse(self.0));
    }
}

thread_local! {
    /// This thread's slot number, read on every lookup: a plain thread-local word, with no
    /// initialisation or destruction state for the read to check.
    static SLOT: Cell<usize> = const { Cell::new(UNASSIGNED) };
    /// The number's owner, which gives it back when the thread exits.
    static OWNER: ThreadSlot = ThreadSlot::take();
}

/// This thread's slot number; [`UNASSIGNED`] before its first count, [`EXITING`] once it has
/// given the number back.
#[inline]
fn slot() -> usize {
    SLOT.get()
}

/// Takes a slot number for this thread ([`EXITING`] if it is already exiting).
#[cold]
fn assign() -> usize {
    let slot = OWNER.try_with(|owner| owner.0).unwrap_or(EXITING);
    SLOT.set(slot);
    slot
}

/// Counters of one cache. Cheap to bump, exact once quiet.
pub struct CacheStats {
    /// Lookups, one stripe per slot.
    stripes: Box<[Stripe]>,
    /// Lookups of threads without a stripe of their own.
    shared: Stripe,
    pub(crate) loads: AtomicU64,
    pub(crate) load_errors: AtomicU64,
    pub(crate) evictions: AtomicU64,
    /// What the `metrics` facade was last given, per counter (see [`CacheStats::report`]).
    reported: [AtomicU64; 6],
    /// When (on the cache's clock) a lookup next hands the counts to the `metrics` facade.
    next_report: AtomicU64,
    /// Its `resilience_cache_load_duration_seconds` handle, made on the first load timed
    /// after [`enable_metrics`](crate::stats::enable_metrics).
    load_duration: OnceLock<metrics::Histogram>,
}

impl Default for CacheStats {
    fn default() -> Self {
        CacheStats {
            stripes: (0..*STRIPES).map(|_| Stripe::default()).collect(),
            shared: Stripe::default(),
            loads: AtomicU64::new(0),
            load_errors: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            reported: Default::default(),
            next_report: AtomicU64::new(nanos(REPORT_EVERY)),
            load_duration: OnceLock::new(),
        }
    }
}

impl fmt::Debug for CacheStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CacheStats").field(&self.counts()).finish()
    }
}

/// A copy of [`CacheStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheCounts {
    /// Lookups that found a fresh value.
    pub hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// Lookups served a stale value (stale-while-revalidate).
    pub stale: u64,
    /// Loads run (the function was called to fill the cache).
    pub loads: u64,
    /// Loads that failed (stored as negative entries or not stored).
    pub load_errors: u64,
    /// Entries evicted to stay within `max_entries`.
    pub evictions: u64,
}

impl CacheStats {
    /// Counts one lookup: on this thread's own stripe with a plain load and store (no other
    /// thread writes it), or on the shared stripe with `fetch_add`.
    #[inline]
    pub(crate) fn count(&self, which: Lookups) {
        match self.stripes.get(slot()) {
            Some(stripe) => stripe.bump_own(which),
            None => self.count_slow(which),
        }
    }

    /// [`count`](Self::count) for a thread without a stripe: one that has no slot number yet
    /// takes one, one beyond the stripes or exiting counts on the shared stripe.
    #[cold]
    fn count_slow(&self, which: Lookups) {
        let slot = match slot() {
            UNASSIGNED => assign(),
            slot => slot,
        };
        match self.stripes.get(slot) {
            Some(stripe) => stripe.bump_own(which),
            None => {
                self.shared.counter(which).fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn sum(&self, which: Lookups) -> u64 {
        self.stripes
            .iter()
            .chain(std::iter::once(&self.shared))
            .map(|stripe| stripe.counter(which).load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// Reports (see [`report`](Self::report)) if a second has passed since the last report
    /// made here: a lookup calls it with the time it read for the expiry check anyway, so a
    /// cache in use reaches the `metrics` facade about once a second without a thread, for
    /// one load and a compare per lookup.
    #[inline]
    pub(crate) fn report_due(&self, now: u64, site: &'static str) {
        let due = self.next_report.load(Ordering::Relaxed);
        if now >= due {
            self.report_from(now, due, site);
        }
    }

    /// [`report_due`](Self::report_due) when due: one caller of those that find it due
    /// reports.
    #[cold]
    fn report_from(&self, now: u64, due: u64, site: &'static str) {
        let next = now.saturating_add(nanos(REPORT_EVERY));
        if self
            .next_report
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.report(site);
        }
    }

    /// Gives the `metrics` facade what was counted since the last report, as
    /// `resilience_cache_{hits,misses,stale,loads,load_errors,evictions}_total{site}`.
    ///
    /// Called when a handle reads [`counts`](Self::counts), by the first lookup of each second
    /// ([`report_due`](Self::report_due)), when the cache is dropped, and by the user's
    /// reporter thread if one runs ([`spawn_reporter`]); never on every lookup or load, which
    /// only bump counters.
    pub(crate) fn report(&self, site: &'static str) {
        let counts = self.counts();
        let values = [
            counts.hits,
            counts.misses,
            counts.stale,
            counts.loads,
            counts.load_errors,
            counts.evictions,
        ];
        const NAMES: [&str; 6] = [
            families::CACHE_HITS,
            families::CACHE_MISSES,
            families::CACHE_STALE,
            families::CACHE_LOADS,
            families::CACHE_LOAD_ERRORS,
            families::CACHE_EVICTIONS,
        ];
        for ((name, value), reported) in NAMES.iter().zip(values).zip(&self.reported) {
            // fetch_max keeps the reported value monotonic when two reports race.
            let delta = value.saturating_sub(reported.fetch_max(value, Ordering::Relaxed));
            if delta > 0 {
                metrics::counter!(*name, "site" => site).increment(delta);
            }
        }
    }

    /// Whether a load's time goes to `metrics`: per-call metrics are on.
    #[inline]
    pub(crate) fn times_loads(&self) -> bool {
        families::metrics()
    }

    /// A load of the cache `site` took `took` nanoseconds (reported when
    /// [`times_loads`](Self::times_loads) said so).
    #[cold]
    pub(crate) fn loaded(&self, site: &'static str, took: u64) {
        let histogram = self
            .load_duration
            .get_or_init(|| metrics::histogram!(families::CACHE_LOAD_DURATION, "site" => site));
        histogram.record(Duration::from_nanos(took).as_secs_f64());
    }

    /// The counts now.
    pub fn counts(&self) -> CacheCounts {
        CacheCounts {
            hits: self.sum(Lookups::Hit),
            misses: self.sum(Lookups::Miss),
            stale: self.sum(Lookups::Stale),
            loads: self.loads.load(Ordering::Relaxed),
            load_errors: self.load_errors.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

/// How often a lookup hands the counts to the `metrics` facade (at most).
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// The caches a [`Reporter`] reports.
static WATCHED: Mutex<Vec<(Weak<CacheStats>, &'static str)>> = Mutex::new(Vec::new());

/// Lists `stats` among the caches a [`Reporter`] hands to the `metrics` facade under
/// `site = name`, for as long as the cache lives. Starts nothing.
///
/// Why not report on every count: handing counts to `metrics` builds a labelled key and asks
/// the recorder for its counter, about 1,400 instructions for a cache's six counters; done
/// after every load it was 39% of a miss (callgrind). A scrape every few seconds needs
/// nothing fresher than a second.
pub(crate) fn watch(stats: &Arc<CacheStats>, name: &'static str) {
    WATCHED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push((Arc::downgrade(stats), name));
}

/// A thread handing every cache's counts to the `metrics` facade at a fixed period, started by
/// [`spawn_reporter`]; dropping it stops the thread (after one last report).
#[derive(Debug)]
pub struct Reporter {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts a thread (`resilience-cache-metrics`) that hands every cache's counts to the global
/// `metrics` recorder every `every`, until the returned [`Reporter`] is dropped.
///
/// Without one, counts reach the recorder when read (a handle's `counts()`,
/// `resilience::stats()`), at the first lookup of each second, and when a cache is dropped:
/// enough for a cache in use. A reporter also delivers the last second's counts of a cache
/// that has gone quiet, for an exporter that reads the recorder and not `counts()`.
///
/// # Errors
///
/// The operating system's error if the thread cannot be started.
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::Duration;
///
/// let reporter = resilience::cache::spawn_reporter(Duration::from_secs(5))?;
/// // ... serve; the counts reach the recorder every 5 s
/// drop(reporter); // stops the thread
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn spawn_reporter(every: Duration) -> std::io::Result<Reporter> {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let signal = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("resilience-cache-metrics".into())
        .spawn(move || {
            let (stopped, wake) = &*signal;
            let mut stopped = stopped
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            while !*stopped {
                stopped = wake
                    .wait_timeout(stopped, every)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0;
                report_watched();
            }
        })?;
    Ok(Reporter {
        stop,
        thread: Some(thread),
    })
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic in the recorder ended the thread already: nothing left to stop.
            let _ = thread.join();
        }
    }
}

/// Reports every live watched cache, and forgets those that are gone.
fn report_watched() {
    let live: Vec<(Arc<CacheStats>, &'static str)> = {
        let mut watched = WATCHED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        watched.retain(|(stats, _)| stats.strong_count() > 0);
        watched
            .iter()
            .filter_map(|(stats, name)| Some((stats.upgrade()?, *name)))
            .collect()
    };
    // Reported outside the lock: a recorder may be slow, and caches are created meanwhile.
    for (stats, name) in live {
        stats.report(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exact_across_many_threads() {
        // More threads at once than there are stripes: some share the last stripe.
        let stats = Arc::new(CacheStats::default());
        let threads = *STRIPES * 2 + 3;
        let barrier = Arc::new(std::sync::Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (stats, barrier) = (Arc::clone(&stats), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..10_000 {
                        stats.count(Lookups::Hit);
                    }
                    stats.count(Lookups::Miss);
                    stats.count(Lookups::Stale);
                    barrier.wait();
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("a counting thread panicked");
        }
        let counts = stats.counts();
        let threads = threads as u64;
        assert_eq!(
            (counts.hits, counts.misses, counts.stale),
            (threads * 10_000, threads, threads)
        );
    }

    #[test]
    fn live_threads_hold_distinct_slots() {
        let (tx, rx) = std::sync::mpsc::channel();
        let barrier = Arc::new(std::sync::Barrier::new(9));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (tx, barrier) = (tx.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    tx.send(assign()).expect("the test is listening");
                    barrier.wait();
                })
            })
            .collect();
        let mut live: Vec<usize> = (0..8).map(|_| rx.recv().expect("a slot")).collect();
        barrier.wait();
        for handle in handles {
            handle.join().expect("a slot thread panicked");
        }
        live.sort_unstable();
        live.dedup();
        assert_eq!(live.len(), 8, "two live threads shared a slot");
    }

    /// A recorder that adds up every counter increment by name.
    #[derive(Default)]
    struct Totals(std::sync::Mutex<std::collections::HashMap<String, u64>>);

    struct Add(Arc<Totals>, String);

    impl metrics::CounterFn for Add {
        fn increment(&self, value: u64) {
            *self.0.0.lock().unwrap().entry(self.1.clone()).or_default() += value;
        }
        fn absolute(&self, _value: u64) {}
    }

    struct Recorder(Arc<Totals>);

    impl metrics::Recorder for Recorder {
        fn describe_counter(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_gauge(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_histogram(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn register_counter(
            &self,
            key: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Counter {
            metrics::Counter::from_arc(Arc::new(Add(Arc::clone(&self.0), key.name().to_string())))
        }
        fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            metrics::Gauge::noop()
        }
        fn register_histogram(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Histogram {
            metrics::Histogram::noop()
        }
    }

    #[test]
    fn reports_each_count_once_to_the_metrics_facade() {
        let totals = Arc::new(Totals::default());
        let recorder = Recorder(Arc::clone(&totals));
        let stats = CacheStats::default();
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..5 {
                stats.count(Lookups::Hit);
            }
            stats.count(Lookups::Miss);
            stats.loads.fetch_add(1, Ordering::Relaxed);
            stats.report("site");
            stats.report("site"); // nothing new: nothing more reported
            stats.count(Lookups::Hit);
            stats.report("site");
        });
        let totals = totals.0.lock().unwrap();
        assert_eq!(totals.get("resilience_cache_hits_total"), Some(&6));
        assert_eq!(totals.get("resilience_cache_misses_total"), Some(&1));
        assert_eq!(totals.get("resilience_cache_loads_total"), Some(&1));
        assert_eq!(totals.get("resilience_cache_evictions_total"), None);
    }

    #[test]
    fn a_lookup_reports_once_a_second_at_most() {
        let totals = Arc::new(Totals::default());
        let recorder = Recorder(Arc::clone(&totals));
        let stats = CacheStats::default();
        let second = nanos(REPORT_EVERY);
        let hits = || {
            totals
                .0
                .lock()
                .unwrap()
                .get("resilience_cache_hits_total")
                .copied()
        };
        metrics::with_local_recorder(&recorder, || {
            stats.count(Lookups::Hit);
            stats.report_due(second - 1, "site");
            assert_eq!(hits(), None, "not before a second");
            stats.report_due(second, "site");
            assert_eq!(hits(), Some(1));
            stats.count(Lookups::Hit);
            stats.report_due(2 * second - 1, "site");
            assert_eq!(hits(), Some(1), "one report a second");
            stats.report_due(2 * second, "site");
            assert_eq!(hits(), Some(2));
        });
    }

    #[test]
    fn dropping_a_reporter_stops_its_thread() {
        let reporter = spawn_reporter(Duration::from_secs(3600)).expect("a thread");
        let started = std::time::Instant::now();
        drop(reporter);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "woken, not slept out"
        );
    }
}
