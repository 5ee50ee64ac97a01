//! [`stats()`]: an in-process snapshot of what the runtime did, per site and per named policy.
//!
//! The same figures go through the `metrics` facade as they happen (see the README's
//! observability section); this snapshot is for tests, admin endpoints and debugging.
//!
//! What is counted, and where it costs: a call that succeeds on its first try at a site that
//! names no policy is not counted at all (counting it would cost that happy path a shared
//! write); everything else is: retries by class, give-ups, successes after a retry, limiter
//! waits and rejections, bulkhead and breaker refusals, timeouts. At a retry site that names a
//! policy every call is counted (that path already reads the policy), which gives the policy
//! its calls and its retry rate over the last 5 minutes, and drives the policy's `alert`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use crate::breaker::{Breaker, BreakerState};
use crate::cache::CacheCounts;
use crate::classify::ErrorClass;
use crate::rate_limit::clock::{Clock, nanos};

/// Everything counted so far.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// One entry per site that has counted anything, by name.
    pub sites: Vec<SiteStats>,
    /// One entry per named policy that has counted anything, by name.
    pub policies: Vec<PolicyStats>,
    /// Policy files loaded and refused.
    pub config: ConfigStats,
}

impl Stats {
    /// The site called `name` (`module::path::function`), if it counted anything.
    pub fn site(&self, name: &str) -> Option<&SiteStats> {
        self.sites.iter().find(|site| site.name == name)
    }

    /// The policy called `name`, if it counted anything.
    pub fn policy(&self, name: &str) -> Option<&PolicyStats> {
        self.policies.iter().find(|policy| policy.name == name)
    }
}

/// Retries by the class of the error that caused them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retries {
    /// After a timeout.
    pub timeout: u64,
    /// After a connection failure.
    pub connect: u64,
    /// After an answer whose body failed (only with `on = [Body]`).
    pub body: u64,
    /// After a 429.
    pub too_many_requests: u64,
    /// After another status (5xx, or one named in `on`).
    pub status: u64,
    /// After an unclassified error (with `retry_if`).
    pub other: u64,
}

impl Retries {
    /// All retries.
    pub fn total(&self) -> u64 {
        self.timeout + self.connect + self.body + self.too_many_requests + self.status + self.other
    }

    fn add(&mut self, other: &Retries) {
        self.timeout += other.timeout;
        self.connect += other.connect;
        self.body += other.body;
        self.too_many_requests += other.too_many_requests;
        self.status += other.status;
        self.other += other.other;
    }
}

/// What one annotated function did.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SiteStats {
    /// `module::path::function`.
    pub name: String,
    /// The policy it names.
    pub policy: Option<String>,
    /// Calls that succeeded on the first try (counted only at sites naming a policy).
    pub ok_first_try: u64,
    /// Calls that succeeded after one or more retries.
    pub ok_after_retry: u64,
    /// Calls that returned an error (given up, or not retryable).
    pub failed: u64,
    /// Retries, by class.
    pub retries: Retries,
    /// Calls that waited for a rate limit.
    pub limiter_waits: u64,
    /// Calls a rate limit refused.
    pub limiter_rejections: u64,
    /// Calls a full bulkhead refused.
    pub bulkhead_rejections: u64,
    /// Calls an open breaker refused.
    pub breaker_refusals: u64,
    /// Calls cut by a time limit.
    pub timeouts: u64,
    /// The site's own breaker (not a policy's), if it has one.
    pub breaker: Option<BreakerState>,
    /// The site's cache, if it has one.
    pub cache: Option<CacheCounts>,
}

/// What the sites naming one policy did together.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PolicyStats {
    /// The policy's name.
    pub name: String,
    /// Calls through its retry sites.
    pub calls: u64,
    /// Of those, calls that retried at least once.
    pub retried_calls: u64,
    /// Retried calls / calls over the last 5 minutes (`None` before any call).
    pub retry_rate_5m: Option<f64>,
    /// Retries of every site naming it, by class.
    pub retries: Retries,
    /// Limiter waits and rejections, bulkhead and breaker refusals and timeouts of its sites.
    pub limiter_waits: u64,
    /// See `limiter_waits`.
    pub limiter_rejections: u64,
    /// See `limiter_waits`.
    pub bulkhead_rejections: u64,
    /// See `limiter_waits`.
    pub breaker_refusals: u64,
    /// See `limiter_waits`.
    pub timeouts: u64,
    /// Its shared breaker's state, if one is in use.
    pub breaker: Option<BreakerState>,
    /// The caches of the sites naming it, summed.
    pub cache: Option<CacheCounts>,
    /// Whether its `alert` is firing.
    pub alert_firing: bool,
}

/// Policy files loaded and refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigStats {
    /// Loads and reloads applied.
    pub reloads: u64,
    /// Loads and reloads refused (the last good policies stayed).
    pub failed_reloads: u64,
}

/// The snapshot now.
///
/// ```
/// let stats = resilience_core::stats();
/// assert!(stats.site("no::such::site").is_none());
/// ```
pub fn stats() -> Stats {
    let mut sites: Vec<SiteStats> = lock(&SITES).iter().map(|site| site.snapshot()).collect();
    for (name, policy, breaker) in lock(&BREAKERS).iter() {
        let Some(breaker) = breaker.upgrade() else {
            continue;
        };
        if policy.is_none() {
            let site = entry(&mut sites, name, None);
            site.breaker = Some(breaker.state());
        }
    }
    for (name, policy, counts) in crate::cache::all_counts() {
        let site = entry(&mut sites, name, policy);
        site.cache = Some(counts);
    }
    sites.sort_by(|a, b| a.name.cmp(&b.name));

    let mut policies: HashMap<String, PolicyStats> = HashMap::new();
    for site in &sites {
        let Some(name) = &site.policy else { continue };
        let policy = policies.entry(name.clone()).or_insert_with(|| PolicyStats {
            name: name.clone(),
            ..PolicyStats::default()
        });
        policy.retries.add(&site.retries);
        policy.limiter_waits += site.limiter_waits;
        policy.limiter_rejections += site.limiter_rejections;
        policy.bulkhead_rejections += site.bulkhead_rejections;
        policy.breaker_refusals += site.breaker_refusals;
        policy.timeouts += site.timeouts;
        if let Some(counts) = site.cache {
            let sum = policy.cache.get_or_insert_with(CacheCounts::default);
            sum.hits += counts.hits;
            sum.misses += counts.misses;
            sum.stale += counts.stale;
            sum.loads += counts.loads;
            sum.load_errors += counts.load_errors;
            sum.evictions += counts.evictions;
        }
    }
    for (name, counters) in lock(&POLICIES).iter() {
        let policy = policies.entry(name.clone()).or_insert_with(|| PolicyStats {
            name: name.clone(),
            ..PolicyStats::default()
        });
        policy.calls = counters.calls.load(Ordering::Relaxed);
        policy.retried_calls = counters.retried.load(Ordering::Relaxed);
        policy.retry_rate_5m = counters
            .rate(Duration::from_secs(300))
            .map(|(rate, _)| rate);
        policy.alert_firing = counters.firing.load(Ordering::Relaxed);
    }
    for (_, policy, breaker) in lock(&BREAKERS).iter() {
        if let (Some(name), Some(breaker)) = (policy, breaker.upgrade()) {
            let policy = policies.entry(name.clone()).or_insert_with(|| PolicyStats {
                name: name.clone(),
                ..PolicyStats::default()
            });
            policy.breaker = Some(breaker.state());
        }
    }
    let mut policies: Vec<PolicyStats> = policies.into_values().collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    Stats {
        sites,
        policies,
        config: ConfigStats {
            reloads: RELOADS.load(Ordering::Relaxed),
            failed_reloads: FAILED_RELOADS.load(Ordering::Relaxed),
        },
    }
}

fn entry<'a>(sites: &'a mut Vec<SiteStats>, name: &str, policy: Option<&str>) -> &'a mut SiteStats {
    let index = match sites.iter().position(|site| site.name == name) {
        Some(index) => index,
        None => {
            sites.push(SiteStats {
                name: name.to_string(),
                policy: policy.map(str::to_string),
                ..SiteStats::default()
            });
            sites.len() - 1
        }
    };
    &mut sites[index]
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Counting
// ---------------------------------------------------------------------------------------------

/// The counters of one site.
#[derive(Debug)]
pub(crate) struct SiteCounters {
    name: String,
    policy: Option<String>,
    ok_first_try: AtomicU64,
    ok_after_retry: AtomicU64,
    failed: AtomicU64,
    retries: [AtomicU64; 6],
    limiter_waits: AtomicU64,
    limiter_rejections: AtomicU64,
    bulkhead_rejections: AtomicU64,
    breaker_refusals: AtomicU64,
    timeouts: AtomicU64,
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
            Event::Retry(ErrorClass::Other) => &self.retries[4],
            Event::Retry(ErrorClass::Body) => &self.retries[5],
            Event::LimiterWait => &self.limiter_waits,
            Event::LimiterRejection => &self.limiter_rejections,
            Event::BulkheadRejection => &self.bulkhead_rejections,
            Event::BreakerRefusal => &self.breaker_refusals,
            Event::Timeout => &self.timeouts,
        }
    }

    fn snapshot(&self) -> SiteStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SiteStats {
            name: self.name.clone(),
            policy: self.policy.clone(),
            ok_first_try: load(&self.ok_first_try),
            ok_after_retry: load(&self.ok_after_retry),
            failed: load(&self.failed),
            retries: Retries {
                timeout: load(&self.retries[0]),
                connect: load(&self.retries[1]),
                body: load(&self.retries[5]),
                too_many_requests: load(&self.retries[2]),
                status: load(&self.retries[3]),
                other: load(&self.retries[4]),
            },
            limiter_waits: load(&self.limiter_waits),
            limiter_rejections: load(&self.limiter_rejections),
            bulkhead_rejections: load(&self.bulkhead_rejections),
            breaker_refusals: load(&self.breaker_refusals),
            timeouts: load(&self.timeouts),
            breaker: None,
            cache: None,
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

pub(crate) fn config_reloaded(ok: bool) {
    if ok { &RELOADS } else { &FAILED_RELOADS }.fetch_add(1, Ordering::Relaxed);
}

/// Breakers in use, for their state: (site, policy, breaker).
type Breakers = Vec<(String, Option<String>, Weak<Breaker>)>;

static BREAKERS: Mutex<Breakers> = Mutex::new(Vec::new());

pub(crate) fn breaker_created(site: &str, policy: Option<&str>, breaker: &Arc<Breaker>) {
    lock(&BREAKERS).push((
        site.to_string(),
        policy.map(str::to_string),
        Arc::downgrade(breaker),
    ));
}

// ---------------------------------------------------------------------------------------------
// Per-policy calls, the retry rate, and the alert
// ---------------------------------------------------------------------------------------------

/// Width of one bucket of the retry-rate ring.
const BUCKET: Duration = Duration::from_secs(10);
/// Buckets kept: one hour, the longest alert window.
const BUCKETS: usize = 360;
/// Fewest calls in an alert's window before its rate is judged (1 retried call out of 1 is
/// not a trend).
const ALERT_MIN_CALLS: u64 = 10;

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
    name: String,
    clock: Clock,
    calls: AtomicU64,
    retried: AtomicU64,
    ring: Box<[Bucket]>,
    firing: AtomicBool,
    /// When the alert was last judged (nanoseconds on `clock`, plus one; 0: never).
    judged: AtomicU64,
}

static POLICIES: LazyLock<Mutex<HashMap<String, Arc<PolicyCounters>>>> =
    LazyLock::new(Default::default);

/// The counters of `policy`, created on first use.
pub(crate) fn policy(name: &str) -> Arc<PolicyCounters> {
    let mut policies = lock(&POLICIES);
    if let Some(policy) = policies.get(name) {
        return Arc::clone(policy);
    }
    let policy = Arc::new(PolicyCounters {
        name: name.to_string(),
        // 10 s buckets need no better than a millisecond: the one-load clock of the caches.
        clock: Clock::coarse(),
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
    /// Counts one finished call; `retried`: it needed at least one retry.
    pub(crate) fn call(&self, retried: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if retried {
            self.retried.fetch_add(1, Ordering::Relaxed);
        }
        let now = self.clock.now_coarse();
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
        self.judge(now);
    }

    /// Retried calls / calls over the last `window` (whole buckets), and the calls counted;
    /// `None` with no call in it.
    fn rate(&self, window: Duration) -> Option<(f64, u64)> {
        let now = self.clock.now_coarse() / nanos(BUCKET);
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

    /// Judges the policy's `alert` at most once a second: a warn-level event when the retry
    /// rate crosses above it, and one when it falls back below.
    fn judge(&self, now: u64) {
        let judged = self.judged.load(Ordering::Relaxed);
        if judged != 0 && now.saturating_sub(judged - 1) < nanos(Duration::from_secs(1)) {
            return;
        }
        if self
            .judged
            .compare_exchange(judged, now + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let Some(alert) = crate::registry::alert(&self.name) else {
            if self.firing.swap(false, Ordering::Relaxed) {
                crate::observe::alert_cleared(&self.name, None, Duration::ZERO);
            }
            return;
        };
        let threshold = alert.retry_rate.unwrap_or(0.2);
        let window = alert.window.unwrap_or(Duration::from_secs(300));
        let Some((rate, calls)) = self.rate(window) else {
            return;
        };
        if calls < ALERT_MIN_CALLS {
            return;
        }
        let above = rate > threshold;
        if above != self.firing.load(Ordering::Relaxed) {
            self.firing.store(above, Ordering::Relaxed);
            if above {
                crate::observe::alert_fired(&self.name, rate, threshold, window);
            } else {
                crate::observe::alert_cleared(&self.name, Some((rate, threshold)), window);
            }
        }
    }
}
