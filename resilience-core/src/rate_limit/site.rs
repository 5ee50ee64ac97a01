//! [`RateLimitSite`] and the executors `#[rate_limited]` calls.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::{Learned, RateKey, RateLimitSpec, RateLimiter, named};
use crate::error_class::ErrorClass;
use crate::hooks::ErrorHooks;
use crate::observe;
use crate::rejected::Rejected;

/// One `#[rate_limited]` function: its name, the policy it names, its inline values, and
/// (once first called) its limiter, private or shared through the policy.
#[derive(Debug)]
pub struct RateLimitSite {
    name: &'static str,
    policy: Option<&'static str>,
    spec: RateLimitSpec,
    limiter: OnceLock<Arc<RateLimiter>>,
    counters: crate::counters::SiteCell,
}

impl RateLimitSite {
    /// A site named `name` (conventionally `module::path::function`).
    pub const fn new(
        name: &'static str,
        policy: Option<&'static str>,
        spec: RateLimitSpec,
    ) -> Self {
        RateLimitSite {
            name,
            policy,
            spec,
            limiter: OnceLock::new(),
            counters: crate::counters::SiteCell::new(),
        }
    }

    /// The site's counters in [`stats()`](crate::stats()), looked up once.
    #[inline]
    pub(crate) fn counted(&self) -> &crate::counters::SiteCounters {
        self.counters.get(self.name, self.policy)
    }

    /// The site's limiter: the policy's shared one, or its own.
    #[inline]
    pub fn limiter(&self) -> &RateLimiter {
        self.limiter.get_or_init(|| match self.policy {
            Some(policy) => named(policy, self.spec),
            None => Arc::new(RateLimiter::new(self.spec)),
        })
    }

    /// The permits a call takes: the policy's `cost` if it sets one, else the site's `cost`
    /// expression's value (`expression`); `None` for a unit call.
    #[inline]
    fn cost(&self, expression: Option<u64>) -> Option<u64> {
        self.limiter().fixed_cost().or(expression)
    }

    /// The wait before the reserved slot (zero on the happy path), or the refusal, for a call
    /// taking `cost` permits (`None`: one). Uses the one-word [`Verdict`](super::Verdict)
    /// check, the one the benchmarks measure.
    #[inline]
    fn admit(&self, key: Option<u64>, cost: Option<u64>) -> Result<Duration, Rejected> {
        let verdict = match cost {
            None => self.limiter().check_verdict(key),
            Some(cost) => self
                .limiter()
                .check_verdict_n(key, cost)
                .inspect_err(|rejected| observe::rate_limit_too_costly(self.counted(), rejected))?,
        };
        if verdict.is_immediate() {
            return Ok(Duration::ZERO);
        }
        if verdict.is_admitted() {
            return Ok(verdict.wait());
        }
        let retry_after = verdict.wait();
        observe::rate_limit_rejected(self.counted(), retry_after);
        Err(Rejected::RateLimited { retry_after })
    }

    /// After a call sent at `epoch` (see [`RateLimiter::epoch`]): a 429 from the server is
    /// feedback to the control loop (see [`RateLimiter::throttled`]); any completed call
    /// moves a recovering pace along. Returns what the 429 changed, for a backend to share.
    #[inline]
    fn learn<T, E>(
        &self,
        key: Option<u64>,
        epoch: u64,
        hooks: &ErrorHooks<E>,
        result: &Result<T, E>,
    ) -> Learned {
        let limiter = self.limiter();
        let mut learned = Learned::default();
        if let Err(error) = result {
            let classification = hooks.classify(error);
            if let (ErrorClass::Status(429), false) = (classification.class, classification.local) {
                learned = limiter.throttled(key, epoch, classification.retry_after);
                observe::rate_limit_throttled(self.name, self.policy, learned.pace, learned.pause);
            }
        }
        limiter.tick();
        learned
    }
}

/// Runs the future `call` makes once admitted by `site`'s limiter (for `key`, the hashes of
/// the key value (see [`RateKey`]), or the whole site), taking `cost` permits
/// (the site's `cost` expression's value; `None`: one, unless the policy sets a cost). A
/// refusal is `Err(reject(Rejected::RateLimited))`, and a cost above what the limiter admits
/// per period `Err(reject(Rejected::CostTooHigh))`; `reject` is usually `E::from`. `call`
/// makes the future for the reason [`timeout_async`](crate::timeout::timeout_async) gives.
pub async fn rate_limited_async<T, E, F, Fut>(
    site: &'static RateLimitSite,
    key: Option<RateKey>,
    cost: Option<u64>,
    hooks: ErrorHooks<E>,
    reject: fn(Rejected) -> E,
    call: F,
) -> Result<T, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    #[cfg(feature = "redis")]
    if let Some(policy) = site.policy {
        if let Some(backend) = crate::registry::backend(policy) {
            // Boxed: the Redis path's state (a script call, the connection) would otherwise
            // make every call's future larger, Redis or not (a `#[resilient(policy = ..)]`
            // fn's measured 9.1 kB with it inline, 5.3 kB boxed), and an allocation is nothing
            // next to a round trip.
            return Box::pin(redis_limited(
                site,
                policy,
                &backend,
                key,
                cost,
                hooks,
                reject,
                call(),
            ))
            .await;
        }
    }
    let key = key.map(RateKey::hash);
    let cost = site.cost(cost);
    let generation = site.limiter().generation();
    let wait = site.admit(key, cost).map_err(reject)?;
    if !wait.is_zero() {
        observe::rate_limit_waited(site.counted(), wait);
        site.limiter()
            .sleep_reserved(key, cost.unwrap_or(1), generation, wait)
            .await;
    }
    let epoch = site.limiter().epoch();
    // A named limiter also learns the quota headers of the responses the call reads (only
    // `http::error_for_status`, feature `reqwest`, reads them).
    #[cfg(feature = "reqwest")]
    let result = match site.policy {
        Some(_) => {
            SERVING
                .scope(site.serving(key, cost.is_some()), call())
                .await
        }
        None => call().await,
    };
    #[cfg(not(feature = "reqwest"))]
    let result = call().await;
    site.learn(key, epoch, &hooks, &result);
    result
}

/// The limiter a call in progress was admitted by, for [`learn_from_server`].
#[derive(Clone)]
#[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
struct Serving {
    limiter: Arc<RateLimiter>,
    key: Option<u64>,
    site: &'static str,
    policy: Option<&'static str>,
    /// The call takes a cost (its site has a `cost` expression, or its policy sets one): its
    /// limiter meters tokens rather than requests, so its feedback is the servers' tokens
    /// headers (`x-ratelimit-*-tokens`).
    weighted: bool,
    /// The shared schedule a pause must reach too (a Redis backend): its spec and key.
    #[cfg(feature = "redis")]
    shared: Option<(Arc<crate::backend::BackendSpec>, String)>,
}

tokio::task_local! {
    static SERVING: Serving;
}

#[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
impl RateLimitSite {
    fn serving(&'static self, key: Option<u64>, weighted: bool) -> Serving {
        self.limiter();
        let limiter = match self.limiter.get() {
            Some(limiter) => Arc::clone(limiter),
            None => named(self.policy.unwrap_or_default(), self.spec),
        };
        Serving {
            limiter,
            key,
            site: self.name,
            policy: self.policy,
            weighted,
            #[cfg(feature = "redis")]
            shared: None,
        }
    }
}

/// Whether a named limiter listens on this task for [`learn_from_server`]: when none does,
/// a response's quota headers need not be read.
#[cfg(feature = "reqwest")]
pub(crate) fn listening() -> bool {
    SERVING.try_with(|_| ()).is_ok()
}

/// Hands a response's quota headers to the named limiter of the `#[rate_limited]` call in
/// progress on this task, if any (`http::error_for_status` calls it for every response).
///
/// A limiter whose calls take a `cost` meters tokens, not requests: it learns from the
/// tokens allowance (`x-ratelimit-*-tokens`, `anthropic-ratelimit-tokens-*`), read against
/// the configured `period` (those headers state no window), and ignores the request counts.
/// Only the innermost `#[rate_limited]` of a stack learns from the headers.
pub fn learn_from_server(quota: &crate::quota::Quota) {
    let _ = SERVING.try_with(|serving| {
        let tokens;
        let quota = if serving.weighted {
            tokens = tokens_view(quota);
            &tokens
        } else {
            quota
        };
        let learned = serving.limiter.learn(serving.key, quota);
        observe::rate_limit_learned(serving.site, serving.policy, learned.limit, learned.pause);
        // With a Redis backend the pause goes to the shared schedule, for every instance.
        #[cfg(feature = "redis")]
        if let (Some(pause), Some((backend, redis_key))) = (learned.pause, &serving.shared) {
            let (_, tolerance, _) = serving.limiter.params();
            let (backend, redis_key) = (Arc::clone(backend), redis_key.clone());
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let redis = crate::redis::connection::backend(&backend.url);
                    let _ = crate::redis::limiter::pause(
                        &redis,
                        backend.timeout,
                        &redis_key,
                        tolerance,
                        pause,
                    )
                    .await;
                });
            }
        }
    });
}

/// The tokens allowance of `quota` in its request fields, for a weighted limiter.
fn tokens_view(quota: &crate::quota::Quota) -> crate::quota::Quota {
    let saturate = |units: u64| u32::try_from(units).unwrap_or(u32::MAX);
    crate::quota::Quota {
        limit: quota.tokens.limit.map(saturate),
        remaining: quota.tokens.remaining.map(saturate),
        reset: quota.tokens.reset,
        window: None,
        retry_after: quota.retry_after,
        tokens: crate::quota::Allowance::default(),
    }
}

/// [`rate_limited_async`] for a blocking function: sleeps the thread until admitted.
pub fn rate_limited_blocking<T, E, F>(
    site: &'static RateLimitSite,
    key: Option<RateKey>,
    cost: Option<u64>,
    hooks: ErrorHooks<E>,
    reject: fn(Rejected) -> E,
    call: F,
) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E>,
{
    let key = key.map(RateKey::hash);
    let cost = site.cost(cost);
    let generation = site.limiter().generation();
    let wait = site.admit(key, cost).map_err(reject)?;
    if !wait.is_zero() {
        observe::rate_limit_waited(site.counted(), wait);
        site.limiter()
            .sleep_reserved_blocking(key, cost.unwrap_or(1), generation, wait);
    }
    let epoch = site.limiter().epoch();
    let result = call();
    site.learn(key, epoch, &hooks, &result);
    result
}

/// [`rate_limited_async`] for a policy whose backend is Redis: one schedule for every
/// instance, kept by a Lua script on the Redis server's clock. When Redis fails (or takes
/// longer than `backend_timeout`), `on_backend_error` decides. Under a lease (the policy's
/// `lease`, see [`crate::redis::lease`]) a call is admitted from the permits this instance
/// holds, without a round trip, and a round trip that refills the lease is a check like any
/// other: the same timeout and the same `on_backend_error`.
#[cfg(feature = "redis")]
// `rate_limited_async`'s arguments, with the policy and backend it found: a private step.
#[allow(clippy::too_many_arguments)]
async fn redis_limited<T, E, Fut>(
    site: &'static RateLimitSite,
    policy: &'static str,
    backend: &crate::backend::BackendSpec,
    key: Option<RateKey>,
    cost: Option<u64>,
    hooks: ErrorHooks<E>,
    reject: fn(Rejected) -> E,
    call: Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    use crate::backend::OnBackendError;
    use crate::redis::{connection, limiter};

    let cost = site.cost(cost);
    let permits = cost.unwrap_or(1);
    // Refused here, before a round trip: the shared schedule has the same capacity.
    if let Err(rejected) = site.limiter().within_capacity(permits) {
        observe::rate_limit_too_costly(site.counted(), &rejected);
        return Err(reject(rejected));
    }
    let (interval, tolerance, max_wait) = site.limiter().params();
    // One Redis key per key value, the same in every instance: the stable hash, never the
    // in-process one (its seed is random per process).
    let redis_key =
        crate::redis::keys::limiter(&backend.key_prefix, policy, key.map(RateKey::stable));
    let redis = connection::backend(&backend.url);
    // A lease for the unkeyed schedule only: one per key value would be a map of this
    // instance's recent keys to bound, for quotas that are rarely hot per value.
    let lease = match key {
        None if interval > 0 => {
            let spec = site.limiter().spec();
            // Never more than a period's quota, whatever `lease: N` says.
            let cap = u64::from(spec.lease.cap(spec.calls).min(spec.calls));
            (cap > 1).then(|| {
                let lifetime = crate::redis::lease::lifetime(spec.period);
                (redis.lease(&redis_key), cap, lifetime)
            })
        }
        _ => None,
    };
    let key = key.map(RateKey::hash);
    let acquired = match &lease {
        Some((lease, _, lifetime))
            if lease.take(permits, tokio::time::Instant::now(), *lifetime) =>
        {
            Ok(Ok(Duration::ZERO))
        }
        _ => {
            let extra = lease.as_ref().map_or(0, |(lease, cap, lifetime)| {
                lease.wanted(permits, *cap, tokio::time::Instant::now(), *lifetime)
            });
            let ask = limiter::Ask {
                interval,
                tolerance,
                max_wait,
                cost: permits,
                extra,
            };
            let acquired = limiter::acquire(&redis, backend.timeout, &redis_key, ask).await;
            if let (Ok(Ok((_, granted))), Some((lease, cap, lifetime))) = (&acquired, &lease) {
                let now = tokio::time::Instant::now();
                lease.granted(permits, *granted, *cap, now, *lifetime);
            }
            acquired.map(|admission| admission.map(|(wait, _)| wait))
        }
    };
    // Set when the wait is a slot of the in-memory limiter (`on_backend_error: local`), which
    // a pause or a lower limit learned meanwhile can move; a slot in Redis stays where it is.
    let mut local = None;
    let wait = match acquired {
        Ok(Ok(wait)) => wait,
        Ok(Err(retry_after)) => {
            observe::rate_limit_rejected(site.counted(), retry_after);
            return Err(reject(Rejected::RateLimited { retry_after }));
        }
        Err(error) => {
            error.report(site.name, policy, backend.on_error);
            match backend.on_error {
                OnBackendError::Allow => Duration::ZERO,
                OnBackendError::Deny => {
                    // Not zero: a `#[retry]` honouring it should not come back at once.
                    return Err(reject(Rejected::RateLimited {
                        retry_after: backend.timeout,
                    }));
                }
                OnBackendError::Local => {
                    local = Some(site.limiter().generation());
                    site.admit(key, cost).map_err(reject)?
                }
            }
        }
    };
    if !wait.is_zero() {
        observe::rate_limit_waited(site.counted(), wait);
        match local {
            Some(generation) => {
                site.limiter()
                    .sleep_reserved(key, permits, generation, wait)
                    .await
            }
            None => super::wake::sleep(wait, site.limiter().interval()).await,
        }
    }
    let epoch = site.limiter().epoch();
    #[cfg(feature = "reqwest")]
    let result = {
        let mut serving = site.serving(key, cost.is_some());
        serving.shared = Some((Arc::new(backend.clone()), redis_key.clone()));
        SERVING.scope(serving, call).await
    };
    #[cfg(not(feature = "reqwest"))]
    let result = call.await;
    // A hold reaches every instance: it is written to the shared schedule. (A cut of the pace
    // is each instance's own: the pace is a parameter of each acquire.)
    if let Some(pause) = site.learn(key, epoch, &hooks, &result).pause {
        if let Err(error) =
            limiter::pause(&redis, backend.timeout, &redis_key, tolerance, pause).await
        {
            error.report(site.name, policy, backend.on_error);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_weighted_limiter_reads_the_tokens_headers_and_not_the_request_counts() {
        let headers = [
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-limit-tokens", "150000"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6m0s"),
            ("retry-after", "7"),
        ];
        let quota = crate::quota::Quota::parse(
            |name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
            UNIX_EPOCH,
        );
        let tokens = tokens_view(&quota);
        assert_eq!(tokens.limit, Some(150_000));
        assert_eq!(tokens.remaining, Some(0));
        assert_eq!(tokens.reset, Some(Duration::from_secs(360)));
        assert_eq!(tokens.retry_after, Some(Duration::from_secs(7)));
        // and a limiter of 150,000 tokens a minute holds new calls until the tokens reset
        let limiter = RateLimiter::new(RateLimitSpec::new(150_000, Duration::from_secs(60)));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let learned = limiter.learn(None, &tokens);
            assert_eq!(learned.pause, Some(Duration::from_secs(360)));
            assert_eq!(limiter.check(None), Ok(Duration::from_secs(360)));
        });
    }
}
