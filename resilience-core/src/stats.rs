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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::breaker::BreakerState;
use crate::cache::CacheCounts;
use crate::counters::{self, SiteCounters};

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
    /// Retries a retry budget refused (the call gave up).
    pub budget_refusals: u64,
    /// The site's own breaker (not a policy's), if it has one.
    pub breaker: Option<BreakerState>,
    /// The site's cache, if it has one.
    pub cache: Option<CacheCounts>,
    /// Whether the `default` policy's alert is firing for this site's calls (a site naming
    /// no policy; see [`on_alert`](crate::on_alert)).
    pub alert_firing: bool,
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
    /// Whether one of its `alert`'s conditions is firing.
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

/// Readies the `metrics` families for an exporter: describes each (its HELP text and unit)
/// to the recorder installed now, once per process, and turns on the metrics a call that
/// succeeds at once would otherwise not pay for: `resilience_calls_total` and
/// `resilience_call_duration_seconds` (every call of a retry site, timed) and
/// `resilience_cache_load_duration_seconds`.
///
/// Call it once, after installing the recorder (an exporter such as
/// `metrics-exporter-prometheus`); `examples/prometheus.rs` serves `/metrics` this way and
/// the README lists every family. Before it, the runtime still emits its other families (retries,
/// refusals, waits, breaker states, cache counts), without HELP text.
///
/// What it costs: a call of a retry site reads the CPU's counter clock twice and updates two
/// handles (a counter and a histogram, registered once per site and outcome), tens of
/// nanoseconds on a happy path of a few; a cache load reads the clock once more. Without it,
/// the happy path pays one relaxed load for the check, and the future of an `async fn` under
/// `#[retry]` holds one more word.
pub fn enable_metrics() {
    crate::families::enable();
}

/// The snapshot now.
///
/// ```
/// # use resilience_core as resilience;
/// let stats = resilience::stats();
/// assert!(stats.site("no::such::site").is_none());
/// ```
pub fn stats() -> Stats {
    // A reader may be the only activity left: its read judges the alerts, so one firing
    // clears once its window empties even when no call comes.
    crate::alert::sweep();
    let mut sites: Vec<SiteStats> = counters::sites()
        .iter()
        .map(|site| snapshot(site))
        .collect();
    let breakers = crate::breaker::in_use();
    for (name, policy, breaker) in &breakers {
        if policy.is_none() {
            let site = entry(&mut sites, name, None);
            site.breaker = Some(breaker.state());
        }
    }
    for (name, policy, counts) in crate::cache::all_counts() {
        let site = entry(&mut sites, name, policy);
        site.cache = Some(counts);
    }

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
    for counters in counters::policies() {
        let name = &counters.name;
        if counters.site {
            entry(&mut sites, name, None).alert_firing = counters
                .firing
                .iter()
                .any(|firing| firing.load(Ordering::Relaxed));
            continue;
        }
        let policy = policies.entry(name.clone()).or_insert_with(|| PolicyStats {
            name: name.clone(),
            ..PolicyStats::default()
        });
        policy.calls = counters.calls.load(Ordering::Relaxed);
        policy.retried_calls = counters.retried.load(Ordering::Relaxed);
        policy.retry_rate_5m = counters.window(Duration::from_secs(300)).retry_rate();
        policy.alert_firing = counters
            .firing
            .iter()
            .any(|firing| firing.load(Ordering::Relaxed));
    }
    for (_, policy, breaker) in &breakers {
        if let Some(name) = policy {
            let policy = policies.entry(name.clone()).or_insert_with(|| PolicyStats {
                name: name.clone(),
                ..PolicyStats::default()
            });
            policy.breaker = Some(breaker.state());
        }
    }
    sites.sort_by(|a, b| a.name.cmp(&b.name));
    let mut policies: Vec<PolicyStats> = policies.into_values().collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    let (reloads, failed_reloads) = counters::reloads();
    Stats {
        sites,
        policies,
        config: ConfigStats {
            reloads,
            failed_reloads,
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

/// What one site's counters say now.
fn snapshot(site: &SiteCounters) -> SiteStats {
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    SiteStats {
        name: site.name.to_string(),
        policy: site.policy.map(str::to_string),
        ok_first_try: load(&site.ok_first_try),
        ok_after_retry: load(&site.ok_after_retry),
        failed: load(&site.failed),
        retries: Retries {
            timeout: load(&site.retries[0]),
            connect: load(&site.retries[1]),
            body: load(&site.retries[5]),
            too_many_requests: load(&site.retries[2]),
            status: load(&site.retries[3]),
            other: load(&site.retries[4]),
        },
        limiter_waits: load(&site.limiter_waits),
        limiter_rejections: load(&site.limiter_rejections),
        bulkhead_rejections: load(&site.bulkhead_rejections),
        breaker_refusals: load(&site.breaker_refusals),
        timeouts: load(&site.timeouts),
        budget_refusals: load(&site.budget_refusals),
        breaker: None,
        cache: None,
        alert_firing: false,
    }
}
