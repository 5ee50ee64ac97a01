//! [`BreakerSite`]: one `#[circuit_breaker]` function, and the executors it calls.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::{Breaker, BreakerSpec, counts_as_failure};
use crate::Rejected;
use crate::hooks::ErrorHooks;
use crate::registry::SharedByName;

/// One `#[circuit_breaker]` function: its name, policy, inline values and (once called) its
/// breaker.
#[derive(Debug)]
pub struct BreakerSite {
    name: &'static str,
    policy: Option<&'static str>,
    spec: BreakerSpec,
    breaker: OnceLock<Arc<Breaker>>,
    counters: crate::counters::SiteCell,
}

impl BreakerSite {
    /// A site named `name`.
    pub const fn new(name: &'static str, policy: Option<&'static str>, spec: BreakerSpec) -> Self {
        BreakerSite {
            name,
            policy,
            spec,
            breaker: OnceLock::new(),
            counters: crate::counters::SiteCell::new(),
        }
    }

    /// The site's counters in [`stats()`](crate::stats()), looked up once.
    #[inline]
    pub(crate) fn counted(&self) -> &crate::counters::SiteCounters {
        self.counters.get(self.name, self.policy)
    }

    /// The site's breaker: the policy's shared one, or its own.
    pub fn breaker(&self) -> &Breaker {
        self.breaker.get_or_init(|| {
            let breaker = match self.policy {
                Some(policy) => named(policy, self.spec),
                None => Arc::new(Breaker::named(self.spec, self.name)),
            };
            created(self.name, self.policy, &breaker);
            breaker
        })
    }
}

/// What decides that an error is a failure: `failure_if` when given, else the classification.
fn failed<E>(error: &E, hooks: &ErrorHooks<E>, failure_if: Option<fn(&E) -> bool>) -> bool {
    match failure_if {
        Some(failure_if) => failure_if(error),
        None => counts_as_failure(&hooks.classify(error)),
    }
}

/// Runs the future `call` makes through `site`'s breaker: refused at once with
/// `Err(reject(Rejected::CircuitOpen { retry_after }))` while open, and its outcome recorded
/// otherwise. `reject` is usually `E::from`. `call` makes the future for the reason
/// [`timeout_async`](crate::timeout::timeout_async) gives.
pub async fn circuit_breaker_async<T, E, F, Fut>(
    site: &'static BreakerSite,
    hooks: ErrorHooks<E>,
    failure_if: Option<fn(&E) -> bool>,
    reject: fn(Rejected) -> E,
    call: F,
) -> Result<T, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let permit = match site.breaker().try_acquire() {
        Ok(permit) => permit,
        Err(retry_after) => {
            crate::observe::circuit_refused(site.counted(), retry_after);
            return Err(reject(Rejected::CircuitOpen { retry_after }));
        }
    };
    let result = call().await;
    permit.record(match &result {
        Ok(_) => false,
        Err(error) => failed(error, &hooks, failure_if),
    });
    result
}

/// [`circuit_breaker_async`] for a blocking function.
pub fn circuit_breaker_blocking<T, E, F>(
    site: &'static BreakerSite,
    hooks: ErrorHooks<E>,
    failure_if: Option<fn(&E) -> bool>,
    reject: fn(Rejected) -> E,
    call: F,
) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E>,
{
    let permit = match site.breaker().try_acquire() {
        Ok(permit) => permit,
        Err(retry_after) => {
            crate::observe::circuit_refused(site.counted(), retry_after);
            return Err(reject(Rejected::CircuitOpen { retry_after }));
        }
    };
    let result = call();
    permit.record(match &result {
        Ok(_) => false,
        Err(error) => failed(error, &hooks, failure_if),
    });
    result
}

static NAMED: SharedByName<Breaker, BreakerSpec> = SharedByName::new(
    "a shared circuit breaker",
    |policy, spec| Breaker::with_name(spec, policy.into()),
    Breaker::configure,
    |policy, inline| {
        policy
            .circuit_breaker
            .as_ref()
            .map(|patch| patch.apply(inline))
    },
);

/// The breaker shared by every site naming `policy`, created on first use with `inline`
/// values overridden by the loaded policy's `circuit_breaker` section.
pub fn named(policy: &str, inline: BreakerSpec) -> Arc<Breaker> {
    NAMED.get_or_create(policy, inline)
}

/// The breaker shared by every site naming `policy` (`#[circuit_breaker(policy = "...")]`,
/// `#[resilient(policy = "...")]`), to read its state and to control it by hand.
///
/// Asked for before any site runs, it is created with the policy's loaded
/// `circuit_breaker` section over [`BreakerSpec::DEFAULT`], and the first site naming the
/// policy then gives its inline values, as if it had come first; what was done by hand stays.
///
/// ```
/// # use resilience_core as resilience;
/// use resilience::breaker::BreakerState;
///
/// let payments = resilience::breaker("payments");
/// payments.force_open(); // maintenance: refuse every call at once
/// assert_eq!(payments.state(), BreakerState::Open);
/// payments.disable(); // every call goes through, nothing is recorded
/// assert_eq!(payments.state(), BreakerState::Disabled);
/// payments.reset(); // closed, with a fresh window
/// assert_eq!(resilience::breaker("payments").state(), BreakerState::Closed);
/// ```
pub fn breaker(policy: &str) -> Arc<Breaker> {
    NAMED.get_or_reserve(policy, BreakerSpec::DEFAULT)
}

/// Breakers in use, for [`crate::stats()`]: (site, policy, breaker).
type Created = Vec<(String, Option<String>, Weak<Breaker>)>;

static CREATED: Mutex<Created> = Mutex::new(Vec::new());

fn created(site: &str, policy: Option<&str>, breaker: &Arc<Breaker>) {
    CREATED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push((
            site.to_string(),
            policy.map(str::to_string),
            Arc::downgrade(breaker),
        ));
}

/// Every breaker still in use: (site, policy, breaker).
pub(crate) fn in_use() -> Vec<(String, Option<String>, Arc<Breaker>)> {
    CREATED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .filter_map(|(site, policy, breaker)| {
            Some((site.clone(), policy.clone(), breaker.upgrade()?))
        })
        .collect()
}
