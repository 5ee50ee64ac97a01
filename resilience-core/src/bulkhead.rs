//! [`Bulkhead`]: at most `max_concurrent` calls in flight; the others wait up to `max_wait`,
//! then are refused with `Rejected::BulkheadFull`.

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

// Plain data, shared with the macros and YAML.
pub use resilience_config::bulkhead::{BulkheadPatch, BulkheadSpec};

use crate::observe;
use crate::registry::SharedByName;
use crate::rejected::Rejected;

/// A semaphore of `max_concurrent` slots whose size can change while calls run: growing
/// adds slots at once; shrinking takes slots back as calls finish.
///
/// ```
/// # use resilience_core as resilience;
/// use resilience::bulkhead::{Bulkhead, BulkheadSpec};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let bulkhead = Bulkhead::new(BulkheadSpec::new(1));
/// let first = bulkhead.enter().await.unwrap();
/// assert!(bulkhead.enter().await.is_err()); // full, and max_wait is zero
/// drop(first);
/// assert!(bulkhead.enter().await.is_ok());
/// # }
/// ```
#[derive(Debug)]
pub struct Bulkhead {
    semaphore: Semaphore,
    size: AtomicU32,
    /// Slots to take back as calls finish, after a shrink below the slots in use.
    debt: AtomicU32,
    max_wait: AtomicU64,
    resize: Mutex<()>,
}

/// One slot of a [`Bulkhead`], released when dropped.
#[derive(Debug)]
pub struct Slot<'a> {
    permit: Option<SemaphorePermit<'a>>,
    debt: &'a AtomicU32,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let owed = self
            .debt
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| {
                debt.checked_sub(1)
            });
        if owed.is_ok() {
            if let Some(permit) = self.permit.take() {
                permit.forget();
            }
        }
    }
}

impl Bulkhead {
    /// A bulkhead with these values (`max_concurrent` 0 is read as 1).
    pub fn new(spec: BulkheadSpec) -> Self {
        let size = spec.max_concurrent.max(1);
        Bulkhead {
            semaphore: Semaphore::new(size as usize),
            size: AtomicU32::new(size),
            debt: AtomicU32::new(0),
            max_wait: AtomicU64::new(nanos(spec.max_wait)),
            resize: Mutex::new(()),
        }
    }

    /// Changes the values; calls in flight keep their slots.
    pub fn configure(&self, spec: BulkheadSpec) {
        let _guard = self
            .resize
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let new = spec.max_concurrent.max(1);
        let old = self.size.swap(new, Ordering::AcqRel);
        if new > old {
            let mut grow = new - old;
            // Slots owed from an earlier shrink are cancelled before any is added.
            let owed = self.debt.load(Ordering::Acquire);
            let cancelled = owed.min(grow);
            self.debt.fetch_sub(cancelled, Ordering::AcqRel);
            grow -= cancelled;
            self.semaphore.add_permits(grow as usize);
        } else if new < old {
            let shrink = (old - new) as usize;
            let forgotten = self.semaphore.forget_permits(shrink);
            // Slots in use now are taken back as their calls finish (see `Slot`'s drop).
            self.debt
                .fetch_add((shrink - forgotten) as u32, Ordering::AcqRel);
        }
        self.max_wait.store(nanos(spec.max_wait), Ordering::Relaxed);
    }

    /// Whether it has no bound: the size a site without `max_concurrent` gets until a policy
    /// gives one. Calls then take no slot (a bound added later applies to calls starting
    /// after it).
    pub fn is_unbounded(&self) -> bool {
        self.size.load(Ordering::Relaxed) >= BulkheadSpec::UNBOUNDED
    }

    /// The number of free slots now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Takes a free slot if there is one now, without waiting.
    pub fn try_enter(&self) -> Option<Slot<'_>> {
        self.semaphore
            .try_acquire()
            .ok()
            .map(|permit| self.slot(permit))
    }

    /// Takes a slot, waiting up to `max_wait`; the slot is released when the permit drops.
    pub async fn enter(&self) -> Result<Slot<'_>, Rejected> {
        if let Ok(permit) = self.semaphore.try_acquire() {
            return Ok(self.slot(permit));
        }
        let max_wait = Duration::from_nanos(self.max_wait.load(Ordering::Relaxed));
        if max_wait.is_zero() {
            return Err(Rejected::BulkheadFull);
        }
        match tokio::time::timeout(max_wait, self.semaphore.acquire()).await {
            Ok(Ok(permit)) => Ok(self.slot(permit)),
            _ => Err(Rejected::BulkheadFull),
        }
    }

    fn slot<'a>(&'a self, permit: SemaphorePermit<'a>) -> Slot<'a> {
        Slot {
            permit: Some(permit),
            debt: &self.debt,
        }
    }

    /// Takes a slot from a blocking function: waits up to `max_wait`, parking the thread.
    pub fn enter_blocking(&self) -> Result<Slot<'_>, Rejected> {
        if let Ok(permit) = self.semaphore.try_acquire() {
            return Ok(self.slot(permit));
        }
        let max_wait = Duration::from_nanos(self.max_wait.load(Ordering::Relaxed));
        if max_wait.is_zero() {
            return Err(Rejected::BulkheadFull);
        }
        let deadline = std::time::Instant::now() + max_wait;
        crate::block_on::block_on_until(self.semaphore.acquire(), deadline)
            .and_then(Result::ok)
            .map(|permit| self.slot(permit))
            .ok_or(Rejected::BulkheadFull)
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// One `#[bulkhead]` function: its name, policy, inline values and (once called) its bulkhead.
#[doc(hidden)]
#[derive(Debug)]
pub struct BulkheadSite {
    name: &'static str,
    policy: Option<&'static str>,
    spec: BulkheadSpec,
    bulkhead: OnceLock<Arc<Bulkhead>>,
    counters: crate::counters::SiteCell,
}

impl BulkheadSite {
    /// A site named `name`.
    pub const fn new(name: &'static str, policy: Option<&'static str>, spec: BulkheadSpec) -> Self {
        BulkheadSite {
            name,
            policy,
            spec,
            bulkhead: OnceLock::new(),
            counters: crate::counters::SiteCell::new(),
        }
    }

    /// The site's counters in [`stats()`](crate::stats()), looked up once.
    #[inline]
    pub(crate) fn counted(&self) -> &crate::counters::SiteCounters {
        self.counters.get(self.name, self.policy)
    }

    /// The site's bulkhead: the policy's shared one, or its own.
    pub fn bulkhead(&self) -> &Bulkhead {
        self.bulkhead.get_or_init(|| match self.policy {
            Some(policy) => named(policy, self.spec),
            None => Arc::new(Bulkhead::new(self.spec)),
        })
    }
}

/// Runs the future `call` makes holding one of `site`'s slots;
/// `Err(reject(Rejected::BulkheadFull))` when no slot frees up within `max_wait`. `reject` is
/// usually `E::from`. `call` makes the future for the reason [`timeout_async`] gives.
///
/// [`timeout_async`]: crate::__private::timeout_async
#[doc(hidden)]
pub async fn bulkhead_async<T, E, F, Fut>(
    site: &'static BulkheadSite,
    reject: fn(Rejected) -> E,
    call: F,
) -> Result<T, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let bulkhead = site.bulkhead();
    if bulkhead.is_unbounded() {
        // No bound given (`#[resilient]` before the policy gives one): no slot to take.
        return call().await;
    }
    let _slot = match bulkhead.try_enter() {
        Some(slot) => slot,
        None => {
            let started = tokio::time::Instant::now();
            match bulkhead.enter().await {
                Ok(slot) => slot,
                Err(rejected) => {
                    observe::bulkhead_full(site.counted(), started.elapsed());
                    return Err(reject(rejected));
                }
            }
        }
    };
    call().await
}

/// [`bulkhead_async`] for a blocking function.
#[doc(hidden)]
pub fn bulkhead_blocking<T, E, F>(
    site: &'static BulkheadSite,
    reject: fn(Rejected) -> E,
    call: F,
) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E>,
{
    let bulkhead = site.bulkhead();
    if bulkhead.is_unbounded() {
        return call();
    }
    let _slot = match bulkhead.try_enter() {
        Some(slot) => slot,
        None => {
            let started = std::time::Instant::now();
            match bulkhead.enter_blocking() {
                Ok(slot) => slot,
                Err(rejected) => {
                    observe::bulkhead_full(site.counted(), started.elapsed());
                    return Err(reject(rejected));
                }
            }
        }
    };
    call()
}

static NAMED: SharedByName<Bulkhead, BulkheadSpec> = SharedByName::new(
    "a shared bulkhead",
    |_, spec| Bulkhead::new(spec),
    Bulkhead::configure,
    |policy, inline| policy.bulkhead.map(|patch| patch.apply(inline)),
);

/// The bulkhead shared by every site naming `policy` (see [`crate::rate_limit::named`]).
pub fn named(policy: &str, inline: BulkheadSpec) -> Arc<Bulkhead> {
    NAMED.get_or_create(policy, inline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_up_to_max_wait() {
        let bulkhead = Bulkhead::new(BulkheadSpec::new(1).max_wait(Duration::from_millis(100)));
        let held = bulkhead.enter().await.unwrap();
        let start = tokio::time::Instant::now();
        assert_eq!(bulkhead.enter().await.err(), Some(Rejected::BulkheadFull));
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        drop(held);
        assert!(bulkhead.enter().await.is_ok());
    }

    #[tokio::test]
    async fn resizes_while_running() {
        let bulkhead = Bulkhead::new(BulkheadSpec::new(2));
        let a = bulkhead.enter().await.unwrap();
        bulkhead.configure(BulkheadSpec::new(4));
        assert_eq!(bulkhead.available(), 3);
        let b = bulkhead.enter().await.unwrap();
        bulkhead.configure(BulkheadSpec::new(1));
        assert_eq!(bulkhead.available(), 0);
        drop(a); // taken back: two in use, one allowed
        assert_eq!(bulkhead.available(), 0);
        drop(b);
        assert_eq!(bulkhead.available(), 1);
        bulkhead.configure(BulkheadSpec::new(3));
        assert_eq!(bulkhead.available(), 3);
    }

    #[test]
    fn blocking_enter_waits_then_refuses() {
        let bulkhead = Bulkhead::new(BulkheadSpec::new(1).max_wait(Duration::from_millis(20)));
        let held = bulkhead.enter_blocking().unwrap();
        assert_eq!(
            bulkhead.enter_blocking().err(),
            Some(Rejected::BulkheadFull)
        );
        drop(held);
        assert!(bulkhead.enter_blocking().is_ok());
    }
}
