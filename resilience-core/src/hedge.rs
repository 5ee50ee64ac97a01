//! Hedging: `#[hedge(after = "100ms", max = 2, idempotent = true)]` and a policy's `hedge`
//! section. A call whose attempts in flight have not answered `after` is sent again; the first
//! `Ok` wins and the other attempts are dropped, which cancels them. For idempotent calls with
//! a long tail (Polly's hedging, tower's `hedge`, gRPC's `hedgingPolicy`).
//!
//! - **Errors do not hedge.** An attempt that fails waits for the attempts still in flight;
//!   when every attempt sent has failed, the call returns the last error (retrying is
//!   `#[retry]`'s job: put `#[retry]` outside `#[hedge]` for both).
//! - **`after = "p95"`** follows the site's latency: the 95th percentile of its last 64 attempts
//!   that answered `Ok`, recomputed every 16. Until 20 have answered, the site sends no hedge
//!   (hedging blind could double the load on a dependency that is merely slow for everyone).
//! - **Budget.** With `budget = "name"`, each call deposits into that retry budget and each
//!   hedge withdraws from it: a hedge the budget refuses is not sent.
//! - **Cost.** A call that answers before `after` pays a clock read, a registry read when the
//!   site names a policy, and one boxed future for the hedging loop.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;

use crate::clock::nanos;
use crate::retry::RetryBudget;
pub use resilience_config::hedge::{HedgeAfter, HedgePatch, HedgeSpec};

/// Latency samples kept per site.
const SAMPLES: usize = 64;

/// Samples before a percentile is trusted.
const MIN_SAMPLES: u64 = 20;

/// Samples between two computations of the percentile.
const EVERY: u64 = 16;

/// One `#[hedge]` function: its name, the policy it names, its inline values, the retry
/// budget it draws on, and its observed latency. Built by the attribute as a `static`.
#[derive(Debug)]
pub struct HedgeSite {
    name: &'static str,
    policy: Option<&'static str>,
    spec: HedgeSpec,
    budget: Option<&'static str>,
    budget_cell: OnceLock<Arc<RetryBudget>>,
    latency: Latency,
}

impl HedgeSite {
    /// A site named `name` (conventionally `module::path::function`).
    pub const fn new(name: &'static str, policy: Option<&'static str>, spec: HedgeSpec) -> Self {
        HedgeSite {
            name,
            policy,
            spec,
            budget: None,
            budget_cell: OnceLock::new(),
            latency: Latency::new(),
        }
    }

    /// This site drawing on the retry budget called `budget`.
    pub const fn with_budget(mut self, budget: &'static str) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The values a call starting now uses: the inline ones under the policy's `hedge`.
    pub fn spec(&self) -> HedgeSpec {
        let Some(policy) = self.policy else {
            return self.spec;
        };
        crate::registry::snapshot_for(self.name, policy)
            .get(policy)
            .and_then(|policy| policy.hedge)
            .map_or(self.spec, |patch| patch.apply(self.spec))
    }

    /// How long after an attempt the next one is sent, if one is.
    fn after(&self, spec: &HedgeSpec) -> Option<Duration> {
        if spec.max < 2 {
            return None;
        }
        match spec.after {
            HedgeAfter::Delay(delay) => Some(delay),
            HedgeAfter::Percentile(p) => self.latency.percentile(p),
        }
    }

    fn budget(&self) -> Option<&RetryBudget> {
        let name = self.budget?;
        Some(self.budget_cell.get_or_init(|| crate::retry::budget(name)))
    }
}

/// Runs `op` under `site`'s hedging: what `#[hedge]` on an `async fn` calls. `op` makes one
/// attempt each time it is called.
pub async fn hedge_async<T, E, F, Fut>(site: &'static HedgeSite, mut op: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let spec = site.spec();
    let budget = site.budget();
    if let Some(budget) = budget {
        budget.deposit();
    }
    let Some(after) = site.after(&spec) else {
        let (result, began) = timed(op()).await;
        if result.is_ok() {
            site.latency.record(began.elapsed());
        }
        return result;
    };
    // Boxed: the attempts in flight and the timer stay out of the caller's future.
    Box::pin(hedged(site, spec.max, after, budget, op)).await
}

/// The attempts of one call, each with when it was sent.
async fn hedged<T, E, F, Fut>(
    site: &'static HedgeSite,
    max: u32,
    after: Duration,
    budget: Option<&RetryBudget>,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut running = FuturesUnordered::new();
    running.push(timed(op()));
    let mut sent = 1u32;
    let mut timer = pin!(tokio::time::sleep(after));
    let mut hedging = true;
    loop {
        let step = poll_fn(|cx| {
            if let Poll::Ready(Some(done)) = running.poll_next_unpin(cx) {
                return Poll::Ready(Some(done));
            }
            if hedging && timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        match step {
            Some((Ok(value), began)) => {
                site.latency.record(began.elapsed());
                return Ok(value);
            }
            Some((Err(error), _)) if running.is_empty() => return Err(error),
            // Others are in flight: one of them may still answer.
            Some((Err(_), _)) => {}
            None => {
                if sent < max && budget.is_none_or(RetryBudget::withdraw) {
                    sent += 1;
                    tracing::debug!(
                        target: "resilience::hedge",
                        site = site.name,
                        attempt = sent,
                        "hedging: attempt {sent} sent, the others silent for {after:?}",
                    );
                    running.push(timed(op()));
                    timer.as_mut().reset(Instant::now() + after);
                } else {
                    hedging = false;
                }
            }
        }
    }
}

/// `fut`, with the instant it was made.
fn timed<Fut: Future>(fut: Fut) -> impl Future<Output = (Fut::Output, Instant)> {
    let began = Instant::now();
    async move { (fut.await, began) }
}

/// The latencies of a site's last [`SAMPLES`] attempts that answered `Ok`, and the percentile
/// last computed from them.
#[derive(Debug)]
struct Latency {
    samples: [AtomicU64; SAMPLES],
    recorded: AtomicU64,
    /// The percentile computed last, as nanoseconds plus one (0: none yet), and which one.
    estimate: AtomicU64,
    of: AtomicU64,
    computing: AtomicBool,
}

impl Latency {
    const fn new() -> Self {
        Latency {
            samples: [const { AtomicU64::new(0) }; SAMPLES],
            recorded: AtomicU64::new(0),
            estimate: AtomicU64::new(0),
            of: AtomicU64::new(0),
            computing: AtomicBool::new(false),
        }
    }

    fn record(&self, took: Duration) {
        let index = self.recorded.fetch_add(1, Ordering::Relaxed);
        self.samples[(index % SAMPLES as u64) as usize].store(nanos(took), Ordering::Relaxed);
        let count = index + 1;
        if count == MIN_SAMPLES || (count > MIN_SAMPLES && count % EVERY == 0) {
            let p = self.of.load(Ordering::Relaxed);
            if p != 0 {
                self.compute(p);
            }
        }
    }

    /// The `p`-th percentile, once enough attempts answered.
    fn percentile(&self, p: u8) -> Option<Duration> {
        if self.recorded.load(Ordering::Relaxed) < MIN_SAMPLES {
            self.of.store(u64::from(p), Ordering::Relaxed);
            return None;
        }
        if self.of.swap(u64::from(p), Ordering::Relaxed) != u64::from(p)
            || self.estimate.load(Ordering::Relaxed) == 0
        {
            self.compute(u64::from(p));
        }
        match self.estimate.load(Ordering::Relaxed) {
            0 => None,
            plus_one => Some(Duration::from_nanos(plus_one - 1)),
        }
    }

    /// Sorts a copy of the samples: 64 numbers, every 16 answers. One caller at a time.
    fn compute(&self, p: u64) {
        if self.computing.swap(true, Ordering::Acquire) {
            return;
        }
        let count = self.recorded.load(Ordering::Relaxed).min(SAMPLES as u64) as usize;
        let mut sorted: Vec<u64> = self.samples[..count]
            .iter()
            .map(|sample| sample.load(Ordering::Relaxed))
            .collect();
        sorted.sort_unstable();
        // Nearest rank: the smallest sample with at least p% of the samples at or below it.
        let rank = (p as usize * count).div_ceil(100).clamp(1, count.max(1));
        if let Some(value) = sorted.get(rank - 1) {
            self.estimate
                .store(value.saturating_add(1), Ordering::Relaxed);
        }
        self.computing.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_waits_for_twenty_answers_then_takes_the_nearest_rank() {
        let latency = Latency::new();
        for ms in 1..=19 {
            latency.record(Duration::from_millis(ms));
        }
        assert_eq!(latency.percentile(95), None);
        latency.record(Duration::from_millis(20));
        // 20 samples, 1..=20 ms: the 95th percentile is the 19th.
        assert_eq!(latency.percentile(95), Some(Duration::from_millis(19)));
        assert_eq!(latency.percentile(50), Some(Duration::from_millis(10)));
    }
}
