//! [`Pipeline`]: every section of a named policy around a closure, in `#[resilient]`'s order
//! (bulkhead -> rate limit -> retry -> circuit breaker -> timeout -> call), without a macro.
//!
//! It nests the same runtime functions `#[resilient(policy = ..)]` expands into
//! ([`bulkhead_async`], [`rate_limited_async`], [`RetrySite::retry_async`], and the breaker's
//! and the timeout's checks), around sites
//! built the way the macro builds them for a policy with no inline values. Each call reads the
//! policy once and skips the sections it lacks; the shared state of the sections it has
//! follows the policy as it is reloaded. The `cache` section is not applied: a closure has no
//! key (the HTTP middleware keys responses itself).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use futures_util::future::Either;

use crate::breaker::BreakerSpec;
use crate::breaker::site::BreakerSite;
use crate::bulkhead::{BulkheadSite, BulkheadSpec, bulkhead_async};
use crate::error_class::Classify;
use crate::hooks::ErrorHooks;
use crate::rate_limit::RateLimitSpec;
use crate::rate_limit::site::{RateLimitSite, rate_limited_async};
use crate::rejected::Rejected;
use crate::retry::RetrySpec;
use crate::retry::executor::RetrySite;
use crate::timeout::TimeoutSite;

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
    ///
    /// The policy is read once, from one snapshot of the registry, and a section it lacks is
    /// skipped rather than run as a layer that does nothing: a policy with only a `retry`
    /// section costs the retry loop and nothing else.
    pub fn run_with<T, E, F, Fut>(
        &self,
        hooks: ErrorHooks<E>,
        op: F,
    ) -> impl Future<Output = Result<T, E>> + use<T, E, F, Fut>
    where
        E: From<Rejected>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // Read before the state machine is made, so the plan is not a second one around it.
        self.run_planned(self.plan(), hooks, op)
    }

    /// [`run_with`](Self::run_with) along a plan the caller read (and looked at) itself.
    pub(crate) fn run_planned<T, E, F, Fut>(
        &self,
        plan: Plan,
        hooks: ErrorHooks<E>,
        op: F,
    ) -> impl Future<Output = Result<T, E>> + use<T, E, F, Fut>
    where
        E: From<Rejected>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        run_planned(self.sites, plan, hooks, op)
    }

    /// What a call starting now goes through, read from one snapshot of the registry.
    pub(crate) fn plan(&self) -> Plan {
        let sites = self.sites;
        crate::registry::named_use();
        let snapshot = crate::registry::current();
        let named = snapshot.get(sites.policy);
        let retry = sites.retry.spec_from(named);
        Plan {
            bulkhead: named.is_some_and(|named| named.bulkhead.is_some()),
            rate_limit: named.is_some_and(|named| named.rate_limit.is_some()),
            breaker: named.is_some_and(|named| named.circuit_breaker.is_some()),
            timeout: named.and_then(|named| named.timeout),
            #[cfg(feature = "reqwest-middleware")]
            attempts: retry.attempts,
            #[cfg(feature = "reqwest-middleware")]
            retries_body: retry.on.matches(crate::error_class::ErrorClass::Body),
            max_elapsed: retry.max_elapsed,
            #[cfg(feature = "reqwest-middleware")]
            http_timeouts: named.and_then(|named| named.http_timeouts),
            #[cfg(feature = "reqwest-middleware")]
            http_cache: named
                .and_then(|named| named.cache)
                .is_some_and(|cache| cache.http == Some(true)),
            snapshot,
        }
    }
}

/// The sections a call's policy has, read once when it starts. It keeps the snapshot it was
/// read from: the retry values, only needed after a failure, are read from it then (the same
/// values: the call keeps the policy it started with), so the happy path's future does not
/// hold them.
pub(crate) struct Plan {
    bulkhead: bool,
    rate_limit: bool,
    breaker: bool,
    /// The limit of each try (`timeout: 3s`).
    timeout: Option<Duration>,
    /// The retry section's `attempts` (0 or 1: no retry), for the HTTP middleware.
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) attempts: u32,
    /// Whether the retry section's `on` names `Body`, for the HTTP middleware.
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) retries_body: bool,
    max_elapsed: Option<Duration>,
    /// The phases' limits (`timeout: { connect, read, total }`), for the HTTP middleware.
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) http_timeouts: Option<resilience_config::timeout::HttpTimeouts>,
    /// The `cache` section sets `http: true`, for the HTTP middleware's response cache.
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) http_cache: bool,
    snapshot: std::sync::Arc<crate::registry::Policies>,
}

/// The layers of `plan`, outermost first, around `op`'s tries. A section the plan lacks is
/// not in the future at all: a policy with only a `retry` section gives the retry loop around
/// `op`'s own future, nothing between.
///
/// No layer takes a future made beforehand (a closure holding it, then the layer holding the
/// closure and what it returns, doubles it at every level: the middleware's future reached
/// 14 kB that way once its try was no longer boxed): the breaker and the per-try timeout wrap
/// the try's future as combinators, and the bulkhead and the rate limit get a closure that
/// makes the retry loop. Nothing is boxed on a happy call: each box is an allocation and a
/// copy of what it holds, and the caller's future is boxed once anyway (`async_trait`, a
/// spawned task).
fn run_planned<T, E, F, Fut>(
    sites: &'static Sites,
    plan: Plan,
    hooks: ErrorHooks<E>,
    mut op: F,
) -> impl Future<Output = Result<T, E>>
where
    E: From<Rejected>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let reject: fn(Rejected) -> E = E::from;
    let Plan {
        bulkhead,
        rate_limit,
        breaker,
        timeout,
        max_elapsed,
        snapshot,
        ..
    } = plan;
    let one_try = move || guarded(sites, breaker, timeout, hooks, reject, op());
    let spec = move || sites.retry.spec_from(snapshot.get(sites.policy));
    let retried = move || {
        sites
            .retry
            .retry_async_as(spec, max_elapsed, move || hooks, None, one_try)
    };
    match bulkhead || rate_limit {
        false => Either::Left(retried()),
        true => Either::Right(admitted(
            sites, bulkhead, rate_limit, hooks, reject, retried,
        )),
    }
}

/// The call `retried` makes, once the bulkhead and the rate limit (each when the plan has it)
/// admit it.
async fn admitted<T, E, F, Fut>(
    sites: &'static Sites,
    bulkhead: bool,
    rate_limit: bool,
    hooks: ErrorHooks<E>,
    reject: fn(Rejected) -> E,
    retried: F,
) -> Result<T, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let limited = move || async move {
        match rate_limit {
            true => rate_limited_async(&sites.rate_limit, None, None, hooks, reject, retried).await,
            false => retried().await,
        }
    };
    match bulkhead {
        true => bulkhead_async(&sites.bulkhead, reject, limited).await,
        false => limited().await,
    }
}

/// One try, `call`, through the per-try timeout and the breaker, each when the plan has it:
/// what [`timeout_async`](crate::timeout::timeout_async) and
/// [`circuit_breaker_async`](crate::breaker::site::circuit_breaker_async) do,
/// as combinators around the try's future rather than futures holding it.
fn guarded<T, E, Fut>(
    sites: &'static Sites,
    breaker: bool,
    timeout: Option<Duration>,
    hooks: ErrorHooks<E>,
    reject: fn(Rejected) -> E,
    call: Fut,
) -> impl Future<Output = Result<T, E>>
where
    Fut: Future<Output = Result<T, E>>,
{
    use futures_util::FutureExt;
    // A try ready at its first poll registers no timer: tokio's `Timeout` polls the call first.
    let timed = match timeout {
        None => Either::Left(call),
        Some(limit) => Either::Right(tokio::time::timeout(limit, call).map(move |result| {
            result.unwrap_or_else(|_| {
                crate::observe::timed_out(sites.timeout.counted(), limit);
                Err(reject(Rejected::Timeout { after: limit }))
            })
        })),
    };
    if !breaker {
        return Either::Left(timed);
    }
    let permit = match sites.breaker.breaker().try_acquire() {
        Ok(permit) => permit,
        Err(retry_after) => {
            crate::observe::circuit_refused(sites.breaker.counted(), retry_after);
            let refused = Err(reject(Rejected::CircuitOpen { retry_after }));
            return Either::Right(Either::Left(std::future::ready(refused)));
        }
    };
    Either::Right(Either::Right(timed.map(move |result| {
        permit.record(match &result {
            Ok(_) => false,
            Err(error) => crate::breaker::counts_as_failure(&hooks.classify(error)),
        });
        result
    })))
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
