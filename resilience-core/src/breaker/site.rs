//! [`BreakerSite`]: one `#[circuit_breaker]` function, and the executors it calls.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use super::{Breaker, BreakerSpec, counts_as_failure};
use crate::Rejected;
use crate::registry::{NamedPolicy, Policies, SharedByName, SharedState};
use crate::retry::ErrorHooks;

/// One `#[circuit_breaker]` function: its name, policy, inline values and (once called) its
/// breaker.
#[derive(Debug)]
pub struct BreakerSite {
    name: &'static str,
    policy: Option<&'static str>,
    spec: BreakerSpec,
    breaker: OnceLock<Arc<Breaker>>,
}

impl BreakerSite {
    /// A site named `name`.
    pub const fn new(name: &'static str, policy: Option<&'static str>, spec: BreakerSpec) -> Self {
        BreakerSite {
            name,
            policy,
            spec,
            breaker: OnceLock::new(),
        }
    }

    /// The site's breaker: the policy's shared one, or its own.
    pub fn breaker(&self) -> &Breaker {
        self.breaker.get_or_init(|| {
            let breaker = match self.policy {
                Some(policy) => named(policy, self.spec),
                None => Arc::new(Breaker::named(self.spec, self.name)),
            };
            crate::stats::breaker_created(self.name, self.policy, &breaker);
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
            crate::observe::circuit_refused(site.name, site.policy, retry_after);
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
            crate::observe::circuit_refused(site.name, site.policy, retry_after);
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

impl SharedState for Breaker {
    const KIND: &'static str = "a shared circuit breaker";
    type Spec = BreakerSpec;

    fn create(spec: BreakerSpec) -> Self {
        Breaker::new(spec)
    }

    fn configure(&self, spec: BreakerSpec) {
        Breaker::configure(self, spec);
    }

    fn effective(policy: Option<&NamedPolicy>, inline: BreakerSpec) -> BreakerSpec {
        match policy.and_then(|policy| policy.circuit_breaker.as_ref()) {
            Some(patch) => patch.apply(inline),
            None => inline,
        }
    }
}

static NAMED: SharedByName<Breaker> = SharedByName::new();

/// The breaker shared by every site naming `policy`, created on first use with `inline`
/// values overridden by the loaded policy's `circuit_breaker` section.
pub fn named(policy: &str, inline: BreakerSpec) -> Arc<Breaker> {
    NAMED.get_or_create(policy, inline)
}

/// Applies newly installed policies to every named breaker in use.
pub(crate) fn reconfigure_all(policies: &Policies) {
    NAMED.reconfigure_all(policies);
}
