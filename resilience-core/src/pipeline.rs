//! [`Pipeline`]: every section of a named policy around a closure, in `#[resilient]`'s order
//! (bulkhead -> rate limit -> retry -> circuit breaker -> timeout -> call), without a macro.
//!
//! It nests the same runtime functions `#[resilient(policy = ..)]` expands into
//! ([`bulkhead_async`], [`rate_limited_async`], [`RetrySite::retry_async`],
//! [`circuit_breaker_async`], [`timeout_async`]), around sites built the way the macro builds
//! them for a policy with no inline values: each layer does nothing until the policy gives its
//! section, and follows the policy as it is reloaded. The `cache` section is not applied: a
//! closure has no key (the HTTP middleware keys responses itself).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::breaker::BreakerSpec;
use crate::breaker::site::{BreakerSite, circuit_breaker_async};
use crate::bulkhead::{BulkheadSite, BulkheadSpec, bulkhead_async};
use crate::error_class::Classify;
use crate::hooks::ErrorHooks;
use crate::rate_limit::RateLimitSpec;
use crate::rate_limit::site::{RateLimitSite, rate_limited_async};
use crate::rejected::Rejected;
use crate::retry::RetrySpec;
use crate::retry::executor::RetrySite;
use crate::timeout::{TimeoutSite, timeout_async};

/// A named policy applied to closures: the builder API behind `#[resilient(policy = ..)]`,
/// for code that makes its calls at run time (an HTTP middleware, a tower layer, a loop over
/// requests).
///
/// Each call of [`run`](Self::run) goes through the policy's bulkhead, rate limit, retry,
/// circuit breaker and timeout sections, outermost first, exactly as a
/// `#[resilient(policy = "name")]` function does: the stateful sections (bulkhead, rate limit,
/// breaker) are the ones every site naming the policy shares, a section the policy lacks does
/// nothing, and a reload applies from the next call. The closure is called once per try.
///
/// A call that must not be repeated once sent (a POST without an idempotency key) passes
/// hooks made with [`ErrorHooks::unsent_only`]: only its `Connect` failures are retried.
///
/// ```
/// # use resilience_core as resilience;
/// use resilience::{HttpError, Rejected};
/// use resilience::pipeline::Pipeline;
///
/// #[derive(Debug)]
/// enum ApiError { Http(HttpError), Rejected(Rejected) }
/// impl From<Rejected> for ApiError {
///     fn from(rejected: Rejected) -> Self { ApiError::Rejected(rejected) }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// resilience::config::load_str(
///     "policies:\n  users: { retry: { attempts: 3, base: 100ms }, timeout: 2s }\n",
/// ).unwrap();
/// let pipeline = Pipeline::policy("users");
/// let hooks = resilience::ErrorHooks::new(
///     |error: &ApiError| match error {
///         ApiError::Http(http) => resilience::Classify::classification(http),
///         ApiError::Rejected(rejected) => resilience::Classify::classification(rejected),
///     },
///     |error, f| write!(f, "{error:?}"),
/// );
/// let mut tries = 0;
/// let result = pipeline
///     .run_with(hooks, || {
///         tries += 1;
///         let answer = if tries < 3 { Err(ApiError::Http(HttpError::new(503))) } else { Ok(tries) };
///         async move { answer }
///     })
///     .await;
/// assert_eq!(result.ok(), Some(3));
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Pipeline {
    sites: &'static Sites,
}

/// One site per section, as `#[resilient(policy = ..)]` builds them with no inline values.
#[derive(Debug)]
struct Sites {
    policy: &'static str,
    bulkhead: BulkheadSite,
    rate_limit: RateLimitSite,
    retry: RetrySite,
    breaker: BreakerSite,
    timeout: TimeoutSite,
}

impl Sites {
    fn new(site: &'static str, policy: &'static str) -> Self {
        let named = Some(policy);
        Sites {
            policy,
            bulkhead: BulkheadSite::new(site, named, BulkheadSpec::new(BulkheadSpec::UNBOUNDED)),
            rate_limit: RateLimitSite::new(site, named, RateLimitSpec::UNLIMITED),
            retry: RetrySite::new(site, named, RetrySpec::OFF),
            breaker: BreakerSite::new(site, named, BreakerSpec::OFF),
            timeout: TimeoutSite::new(site, named, Duration::MAX),
        }
    }
}

/// The sites of each (site name, policy) pair in use. The layers' runtime functions take
/// `&'static` sites (a macro's are `static`s); a pipeline's are made once per pair and kept
/// for the life of the program, so their number is bounded by the names the program uses.
type Interned = HashMap<(String, String), &'static Sites>;

static INTERNED: OnceLock<Mutex<Interned>> = OnceLock::new();

impl Pipeline {
    /// The pipeline of the policy called `policy`; its site (in logs, metrics and
    /// [`stats`](crate::stats())) is named after the policy.
    pub fn policy(policy: &str) -> Self {
        Pipeline::site(policy, policy)
    }

    /// The pipeline of the policy called `policy`, as a site named `site`. Pipelines with the
    /// same site and policy share their sites, so making one per request costs a lookup.
    pub fn site(site: &str, policy: &str) -> Self {
        let mut interned = INTERNED
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (site.to_owned(), policy.to_owned());
        if let Some(sites) = interned.get(&key) {
            return Pipeline { sites };
        }
        let leaked = |name: &str| -> &'static str { Box::leak(name.to_owned().into_boxed_str()) };
        let sites: &'static Sites = Box::leak(Box::new(Sites::new(leaked(site), leaked(policy))));
        interned.insert(key, sites);
        Pipeline { sites }
    }

    /// The policy's name.
    pub fn policy_name(&self) -> &'static str {
        self.sites.policy
    }

    /// The retry values a call starting now uses (the policy's `retry` section; one try when
    /// it has none).
    pub fn retry_spec(&self) -> RetrySpec {
        *self.sites.retry.spec()
    }

    /// Runs `op` (called once per try) through every section, for an error type that
    /// classifies itself ([`Classify`]) and can carry a refusal (`E: From<Rejected>`).
    pub async fn run<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        E: Classify + std::fmt::Display + From<Rejected>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_with(ErrorHooks::classified(), op).await
    }

    /// Runs `op` (called once per try) through every section, looking at its errors with
    /// `hooks` (how they classify, how they read in logs, and whether only unsent failures
    /// may be retried: [`ErrorHooks::unsent_only`]). A refusal of the bulkhead, the rate
    /// limit, the breaker or the timeout is returned as `Err(E::from(Rejected))`.
    pub async fn run_with<T, E, F, Fut>(&self, hooks: ErrorHooks<E>, mut op: F) -> Result<T, E>
    where
        E: From<Rejected>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let sites = self.sites;
        let reject: fn(Rejected) -> E = E::from;
        bulkhead_async(&sites.bulkhead, reject, move || {
            rate_limited_async(&sites.rate_limit, None, None, hooks, reject, move || {
                sites.retry.retry_async(
                    move || hooks,
                    move || {
                        let call = op();
                        circuit_breaker_async(&sites.breaker, hooks, None, reject, move || {
                            timeout_async(&sites.timeout, reject, move || call)
                        })
                    },
                )
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_set_of_sites_per_name() {
        let a = Pipeline::policy("pipeline-interned");
        let b = Pipeline::policy("pipeline-interned");
        assert!(std::ptr::eq(a.sites, b.sites));
        let c = Pipeline::site("other-site", "pipeline-interned");
        assert!(!std::ptr::eq(a.sites, c.sites));
        assert_eq!(c.policy_name(), "pipeline-interned");
    }
}
