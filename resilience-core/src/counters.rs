//! The counters behind [`stats()`](crate::stats()): per site, per policy (with the retry-rate
//! ring an `alert` is judged on) and per policy file, bumped where things happen and read
//! only by the snapshot. Nothing here logs or looks a policy up, so every layer can count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use crate::clock::{Clock, nanos};
use crate::error_class::ErrorClass;

/// The counters of one site.
#[derive(Debug)]
pub(crate) struct SiteCounters {
    pub(crate) name: String,
    pub(crate) policy: Option<String>,
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
        }
    }
}

static SITES: Mutex<Vec<Arc<SiteCounters>>> = Mutex::new(Vec::new());

/// The counters of the site `name` naming `policy`, created on first use.
pub(crate) fn site(name: &str, policy: Option<&str>) -> Arc<SiteCounters> {
    let mut sites = lock(&SITES);
    if let Some(site) = sites
        .iter()
        .find(|site| site.name == name && site.policy.as_deref() == policy)
    {
        return Arc::clone(site);
    }
    let site = Arc::new(SiteCounters {
        name: name.to_string(),
        policy: policy.map(str::to_string),
        ok_first_try: AtomicU64::new(0),
        ok_after_retry: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        retries: Default::default(),
        limiter_waits: AtomicU64::new(0),
        limiter_rejections: AtomicU64::new(0),
        bulkhead_rejections: AtomicU64::new(0),
        breaker_refusals: AtomicU64::new(0),
        timeouts: AtomicU64::new(0),
    });
    sites.push(Arc::clone(&site));
    site
}

/// Counts one event of a site, looked up by name (the paths that are not the happy one).
pub(crate) fn count(name: &str, policy: Option<&str>, event: Event) {
    site(name, policy)
        .counter(event)
        .fetch_add(1, Ordering::Relaxed);
}

/// Counts one event on counters already at hand.
pub(crate) fn count_at(counters: &SiteCounters, event: Event) {
    counters.counter(event).fetch_add(1, Ordering::Relaxed);
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

/// Calls and retried calls of one bucket; `epoch` is the bucket's number since the clock's
/// start, so a bucket left from an hour ago reads as empty.
#[derive(Debug, Default)]
struct Bucket {
    epoch: AtomicU64,
    calls: AtomicU64,
    retried: AtomicU64,
}

/// The calls of one policy's retry sites.
#[derive(Debug)]
pub(crate) struct PolicyCounters {
    pub(crate) name: String,
    clock: Clock,
    pub(crate) calls: AtomicU64,
    pub(crate) retried: AtomicU64,
    ring: Box<[Bucket]>,
    /// Whether the policy's alert is firing (see [`crate::alert`]).
    pub(crate) firing: AtomicBool,
    /// When the alert was last judged (nanoseconds on `clock`, plus one; 0: never).
    pub(crate) judged: AtomicU64,
}

static POLICIES: LazyLock<Mutex<HashMap<String, Arc<PolicyCounters>>>> =
    LazyLock::new(Default::default);

/// The counters of every site that has counted anything.
pub(crate) fn sites() -> Vec<Arc<SiteCounters>> {
    lock(&SITES).clone()
}

/// The counters of every policy whose retry sites have counted a call.
pub(crate) fn policies() -> Vec<Arc<PolicyCounters>> {
    lock(&POLICIES).values().cloned().collect()
}

/// The counters of `policy`, created on first use.
pub(crate) fn policy(name: &str) -> Arc<PolicyCounters> {
    let mut policies = lock(&POLICIES);
    if let Some(policy) = policies.get(name) {
        return Arc::clone(policy);
    }
    let policy = Arc::new(PolicyCounters {
        name: name.to_string(),
        clock: Clock::new(),
        calls: AtomicU64::new(0),
        retried: AtomicU64::new(0),
        ring: (0..BUCKETS).map(|_| Bucket::default()).collect(),
        firing: AtomicBool::new(false),
        judged: AtomicU64::new(0),
    });
    policies.insert(name.to_string(), Arc::clone(&policy));
    policy
}

impl PolicyCounters {
    /// Counts one finished call; `retried`: it needed at least one retry. Returns the time
    /// it was counted at (nanoseconds on the policy's clock), for judging its alert.
    pub(crate) fn call(&self, retried: bool) -> u64 {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if retried {
            self.retried.fetch_add(1, Ordering::Relaxed);
        }
        let now = self.clock.now();
        let epoch = now / nanos(BUCKET);
        let bucket = &self.ring[(epoch % BUCKETS as u64) as usize];
        let seen = bucket.epoch.load(Ordering::Acquire);
        if seen != epoch
            && bucket
                .epoch
                .compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.retried.store(0, Ordering::Relaxed);
        }
        bucket.calls.fetch_add(1, Ordering::Relaxed);
        if retried {
            bucket.retried.fetch_add(1, Ordering::Relaxed);
        }
        now
    }

    /// Retried calls / calls over the last `window` (whole buckets), and the calls counted;
    /// `None` with no call in it.
    pub(crate) fn rate(&self, window: Duration) -> Option<(f64, u64)> {
        let now = self.clock.now() / nanos(BUCKET);
        let span = (nanos(window).div_ceil(nanos(BUCKET))).clamp(1, BUCKETS as u64);
        let (mut calls, mut retried) = (0, 0);
        for epoch in now.saturating_sub(span - 1)..=now {
            let bucket = &self.ring[(epoch % BUCKETS as u64) as usize];
            if bucket.epoch.load(Ordering::Acquire) == epoch {
                calls += bucket.calls.load(Ordering::Relaxed);
                retried += bucket.retried.load(Ordering::Relaxed);
            }
        }
        (calls > 0).then(|| (retried as f64 / calls as f64, calls))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
