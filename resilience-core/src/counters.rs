//! The counters behind [`stats()`](crate::stats()): per site, per policy (with the retry-rate
//! ring an `alert` is judged on) and per policy file, bumped where things happen and read
//! only by the snapshot. Nothing here logs or looks a policy up, so every layer can count.
//!
//! A site keeps its counters in a [`SiteCell`] of its own: the list of every site's counters
//! is locked once per site (the first event), never per event, so a refused, retried or
//! timed-out call counts with one atomic add on its site's counters, even when a failing
//! dependency makes every call take that path at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use crate::clock::{Clock, nanos};
use crate::error_class::ErrorClass;

/// The counters of one site.
#[derive(Debug)]
pub(crate) struct SiteCounters {
    pub(crate) name: &'static str,
    pub(crate) policy: Option<&'static str>,
    pub(crate) ok_first_try: AtomicU64,
    pub(crate) ok_after_retry: AtomicU64,
    pub(crate) failed: AtomicU64,
    /// Retries by class: timeout, connect, 429, another status, other.
    pub(crate) retries: [AtomicU64; 6],
    pub(crate) limiter_waits: AtomicU64,
    pub(crate) limiter_rejections: AtomicU64,
    pub(crate) bulkhead_rejections: AtomicU64,
    pub(crate) breaker_refusals: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    /// Retries a retry budget refused.
    pub(crate) budget_refusals: AtomicU64,
}

/// What happened, for [`count`].
#[derive(Clone, Copy)]
pub(crate) enum Event {
    OkFirstTry,
    OkAfterRetry,
    Failed,
    Retry(ErrorClass),
    LimiterWait,
    LimiterRejection,
    BulkheadRejection,
    BreakerRefusal,
    Timeout,
    BudgetRefusal,
}

impl SiteCounters {
    fn counter(&self, event: Event) -> &AtomicU64 {
        match event {
            Event::OkFirstTry => &self.ok_first_try,
            Event::OkAfterRetry => &self.ok_after_retry,
            Event::Failed => &self.failed,
            Event::Retry(ErrorClass::Timeout) => &self.retries[0],
            Event::Retry(ErrorClass::Connect) => &self.retries[1],
            Event::Retry(ErrorClass::Status(429)) => &self.retries[2],
            Event::Retry(ErrorClass::Status(_)) => &self.retries[3],
            Event::Retry(ErrorClass::Body) => &self.retries[5],
            // `Other`, and a class added later until it has a counter of its own.
            Event::Retry(_) => &self.retries[4],
            Event::LimiterWait => &self.limiter_waits,
            Event::LimiterRejection => &self.limiter_rejections,
            Event::BulkheadRejection => &self.bulkhead_rejections,
            Event::BreakerRefusal => &self.breaker_refusals,
            Event::Timeout => &self.timeouts,
            Event::BudgetRefusal => &self.budget_refusals,
        }
    }
}

static SITES: Mutex<Vec<Arc<SiteCounters>>> = Mutex::new(Vec::new());

/// The counters of the site `name` naming `policy`, created on first use. Locks the list:
/// a site keeps the answer in its [`SiteCell`].
pub(crate) fn site(name: &'static str, policy: Option<&'static str>) -> Arc<SiteCounters> {
    let mut sites = lock(&SITES);
    if let Some(site) = sites
        .iter()
        .find(|site| site.name == name && site.policy == policy)
    {
        return Arc::clone(site);
    }
    let site = Arc::new(SiteCounters {
        name,
        policy,
        ok_first_try: AtomicU64::new(0),
        ok_after_retry: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        retries: Default::default(),
        limiter_waits: AtomicU64::new(0),
        limiter_rejections: AtomicU64::new(0),
        bulkhead_rejections: AtomicU64::new(0),
        breaker_refusals: AtomicU64::new(0),
        timeouts: AtomicU64::new(0),
        budget_refusals: AtomicU64::new(0),
    });
    sites.push(Arc::clone(&site));
    site
}

/// Counts one event on counters already at hand.
pub(crate) fn count_at(counters: &SiteCounters, event: Event) {
    if COUNTING.load(Ordering::Relaxed) {
        counters.counter(event).fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether events are counted; off only in the failure-path benchmark, to measure what the
/// counting costs (`benches/failure_path.rs`).
static COUNTING: AtomicBool = AtomicBool::new(true);

/// Turns the counting of events on or off (see [`COUNTING`]).
pub(crate) fn set_counting(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

/// A site's counters, kept on the site (a `static` the macros build): looked up in the list
/// once, on the site's first event.
#[derive(Debug)]
pub(crate) struct SiteCell(OnceLock<Arc<SiteCounters>>);

impl SiteCell {
    pub(crate) const fn new() -> Self {
        SiteCell(OnceLock::new())
    }

    /// The counters of the site `name` naming `policy`, whose cell this is.
    #[inline]
    pub(crate) fn get(&self, name: &'static str, policy: Option<&'static str>) -> &SiteCounters {
        self.0.get_or_init(|| site(name, policy))
    }
}

static RELOADS: AtomicU64 = AtomicU64::new(0);
static FAILED_RELOADS: AtomicU64 = AtomicU64::new(0);

/// Policy files loaded, and refused.
pub(crate) fn reloads() -> (u64, u64) {
    (
        RELOADS.load(Ordering::Relaxed),
        FAILED_RELOADS.load(Ordering::Relaxed),
    )
}

pub(crate) fn config_reloaded(ok: bool) {
    if ok { &RELOADS } else { &FAILED_RELOADS }.fetch_add(1, Ordering::Relaxed);
}

// Per-policy calls and the retry rate.

/// Width of one bucket of the retry-rate ring.
const BUCKET: Duration = Duration::from_secs(10);
/// Buckets kept: one hour, the longest alert window.
const BUCKETS: usize = 360;

/// Calls, retried and failed calls, and the longest retrying of one bucket; `epoch` is the
/// bucket's number since the clock's start, so a bucket left from an hour ago reads as empty.
#[derive(Debug, Default)]
struct Bucket {
    epoch: AtomicU64,
    calls: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    /// The longest a call of the bucket spent retrying (first failure to answer), in ns.
    slowest: AtomicU64,
}

/// How one call of a policy's retry site ended, for its ring.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Call {
    /// It needed at least one retry.
    pub(crate) retried: bool,
    /// It returned an error.
    pub(crate) failed: bool,
    /// How long it spent retrying, first failure to answer (zero when it did not fail).
    pub(crate) retrying: Duration,
}

/// What a policy's ring holds over a window: see [`PolicyCounters::window`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Window {
    pub(crate) calls: u64,
    pub(crate) retried: u64,
    pub(crate) failed: u64,
    pub(crate) slowest: Duration,
}

impl Window {
    /// Retried calls / calls; `None` without calls.
    pub(crate) fn retry_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.retried as f64 / self.calls as f64)
    }

    /// Failed calls / calls; `None` without calls.
    pub(crate) fn failure_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.failed as f64 / self.calls as f64)
    }
}

/// The calls of one policy's retry sites, or of one site naming no policy (for the
/// `default` policy's alert).
#[derive(Debug)]
pub(crate) struct PolicyCounters {
    /// The policy's name, or the site's.
    pub(crate) name: String,
    /// Whether these are one site's calls (`name` is the site's).
    pub(crate) site: bool,
    clock: Clock,
    pub(crate) calls: AtomicU64,
    pub(crate) retried: AtomicU64,
    ring: Box<[Bucket]>,
    /// Whether each condition of the policy's alert is firing, by `AlertKind`
    /// (see [`crate::alert`]).
    pub(crate) firing: [AtomicBool; 3],
    /// When the alert was last judged (nanoseconds on `clock`, plus one; 0: never).
    pub(crate) judged: AtomicU64,
    /// When a call of this policy last judged every policy's alerts (as `judged`).
    pub(crate) swept: AtomicU64,
}

static POLICIES: LazyLock<Mutex<HashMap<String, Arc<PolicyCounters>>>> =
    LazyLock::new(Default::default);

/// The calls of each site naming no policy that counted one, by site name: apart from
/// [`POLICIES`], since a policy may be called anything.
static SITE_WINDOWS: LazyLock<Mutex<HashMap<String, Arc<PolicyCounters>>>> =
    LazyLock::new(Default::default);

/// Moves a ring slot's `stamp` to `value` (the period it now counts): `true` for the one
/// caller that moved it, which empties the slot. A count landing between the move and the
/// emptying is lost: one call in a window, for no lock.
pub(crate) fn claim(stamp: &AtomicU64, value: u64) -> bool {
    let seen = stamp.load(Ordering::Acquire);
    seen != value
        && stamp
            .compare_exchange(seen, value, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
}

/// The counters of every site that has counted anything.
pub(crate) fn sites() -> Vec<Arc<SiteCounters>> {
    lock(&SITES).clone()
}

/// The counters of every policy whose retry sites have counted a call, then of every site
/// naming no policy that counted one.
pub(crate) fn policies() -> Vec<Arc<PolicyCounters>> {
    let mut all: Vec<_> = lock(&POLICIES).values().cloned().collect();
    all.extend(lock(&SITE_WINDOWS).values().cloned());
    all
}

/// The counters of `policy`, created on first use.
pub(crate) fn policy(name: &str) -> Arc<PolicyCounters> {
    window_in(&POLICIES, name, false)
}

/// The calls of the site `name`, which names no policy, created on first use.
pub(crate) fn site_window(name: &str) -> Arc<PolicyCounters> {
    window_in(&SITE_WINDOWS, name, true)
}

fn window_in(
    map: &Mutex<HashMap<String, Arc<PolicyCounters>>>,
    name: &str,
    site: bool,
) -> Arc<PolicyCounters> {
    let mut policies = lock(map);
    if let Some(policy) = policies.get(name) {
        return Arc::clone(policy);
    }
    let policy = Arc::new(PolicyCounters {
        name: name.to_string(),
        site,
        clock: Clock::new(),
        calls: AtomicU64::new(0),
        retried: AtomicU64::new(0),
        ring: (0..BUCKETS).map(|_| Bucket::default()).collect(),
        firing: Default::default(),
        judged: AtomicU64::new(0),
        swept: AtomicU64::new(0),
    });
    policies.insert(name.to_string(), Arc::clone(&policy));
    policy
}

impl PolicyCounters {
    /// Counts one finished call. Returns the time it was counted at (nanoseconds on the
    /// policy's clock), for judging its alert.
    pub(crate) fn call(&self, call: Call) -> u64 {
        let retried = call.retried;
        self.calls.fetch_add(1, Ordering::Relaxed);
        if retried {
            self.retried.fetch_add(1, Ordering::Relaxed);
        }
        let now = self.clock.now();
        let epoch = now / nanos(BUCKET);
        let bucket = &self.ring[(epoch % BUCKETS as u64) as usize];
        if claim(&bucket.epoch, epoch) {
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.retried.store(0, Ordering::Relaxed);
            bucket.failed.store(0, Ordering::Relaxed);
            bucket.slowest.store(0, Ordering::Relaxed);
        }
        bucket.calls.fetch_add(1, Ordering::Relaxed);
        if retried {
            bucket.retried.fetch_add(1, Ordering::Relaxed);
        }
        if call.failed {
            bucket.failed.fetch_add(1, Ordering::Relaxed);
        }
        if !call.retrying.is_zero() {
            bucket
                .slowest
                .fetch_max(nanos(call.retrying), Ordering::Relaxed);
        }
        now
    }

    /// The policy's clock now.
    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    /// What the ring holds over the last `window` (whole buckets).
    pub(crate) fn window(&self, window: Duration) -> Window {
        let now = self.clock.now() / nanos(BUCKET);
        let span = (nanos(window).div_ceil(nanos(BUCKET))).clamp(1, BUCKETS as u64);
        let mut sum = Window::default();
        let mut slowest = 0;
        for epoch in now.saturating_sub(span - 1)..=now {
            let bucket = &self.ring[(epoch % BUCKETS as u64) as usize];
            if bucket.epoch.load(Ordering::Acquire) == epoch {
                sum.calls += bucket.calls.load(Ordering::Relaxed);
                sum.retried += bucket.retried.load(Ordering::Relaxed);
                sum.failed += bucket.failed.load(Ordering::Relaxed);
                slowest = slowest.max(bucket.slowest.load(Ordering::Relaxed));
            }
        }
        sum.slowest = Duration::from_nanos(slowest);
        sum
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
