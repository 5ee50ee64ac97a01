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
//! - **Cost.** A call that answers before `after` pays two clock reads, a registry read when
//!   the site names a policy, and one boxed future for the hedging loop (the timer and the set
//!   of hedges are made only once a hedge may be due): 0.6x tower's `Hedge` on the happy path
//!   (`benches/retry.rs`, group `retry_happy_path_hedge`).

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

/// The attempts of one call. The first is polled in place, and the timer and the set of
/// hedges are made only when the first did not answer on its first poll: a call that answers
/// at once then costs one allocation (the box around this future) and two clock reads, where
/// making them up front (a `FuturesUnordered` holding every attempt, a `Sleep`) cost three
/// allocations more and took the happy path from about 195 to 290 ns against tower's `Hedge`
/// (`benches/retry.rs`, group `retry_happy_path_hedge`).
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
    let began = Instant::now();
    let mut first = pin!(Some(op()));
    let mut hedges = None::<FuturesUnordered<_>>;
    let mut timer = pin!(None::<tokio::time::Sleep>);
    let mut sent = 1u32;
    let mut hedging = true;
    let mut last_error = None;
    poll_fn(|cx| {
        loop {
            if let Some(attempt) = first.as_mut().as_pin_mut() {
                if let Poll::Ready(result) = attempt.poll(cx) {
                    first.set(None);
                    match result {
                        Ok(value) => {
                            site.latency.record(began.elapsed());
                            return Poll::Ready(Ok(value));
                        }
                        Err(error) => last_error = Some(error),
                    }
                }
            }
            if let Some(hedges) = hedges.as_mut() {
                while let Poll::Ready(Some((result, sent_at))) = hedges.poll_next_unpin(cx) {
                    match result {
                        Ok(value) => {
                            site.latency.record(Instant::elapsed(&sent_at));
                            return Poll::Ready(Ok(value));
                        }
                        Err(error) => last_error = Some(error),
                    }
                }
            }
            // Every attempt sent has failed: errors do not hedge.
            let in_flight = first.is_some() || hedges.as_ref().is_some_and(|h| !h.is_empty());
            if !in_flight {
                if let Some(error) = last_error.take() {
                    return Poll::Ready(Err(error));
                }
            }
            if !hedging {
                return Poll::Pending;
            }
            if timer.is_none() {
                timer.set(Some(tokio::time::sleep_until(began + after)));
            }
            let Some(mut due) = timer.as_mut().as_pin_mut() else {
                return Poll::Pending;
            };
            if due.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if sent < max && budget.is_none_or(RetryBudget::withdraw) {
                sent += 1;
                tracing::debug!(
                    target: "resilience::hedge",
                    site = site.name,
                    attempt = sent,
                    "hedging: attempt {sent} sent, the others silent for {after:?}",
                );
                hedges
                    .get_or_insert_with(FuturesUnordered::new)
                    .push(timed(op()));
                due.reset(Instant::now() + after);
            } else {
                hedging = false;
            }
        }
    })
    .await
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
        // On the stack, and a selection rather than a sort: with a `Vec` and a full sort, the
        // computation every 16 answers added about 30 ns to every call of a `p95` site.
        let mut samples = [0u64; SAMPLES];
        for (copy, sample) in samples.iter_mut().zip(&self.samples[..count]) {
            *copy = sample.load(Ordering::Relaxed);
        }
        // Nearest rank: the smallest sample with at least p% of the samples at or below it.
        let rank = (p as usize * count).div_ceil(100).clamp(1, count.max(1));
        if count > 0 {
            let (_, value, _) = samples[..count].select_nth_unstable(rank - 1);
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
