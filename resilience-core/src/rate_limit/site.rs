//! [`RateLimitSite`] and the executors `#[rate_limited]` calls.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::{RateLimitSpec, RateLimiter, named};
use crate::classify::ErrorClass;
use crate::observe;
use crate::rejected::Rejected;
use crate::retry::ErrorHooks;

/// One `#[rate_limited]` function: its name, the policy it names, its inline values, and
/// (once first called) its limiter, private or shared through the policy.
#[derive(Debug)]
pub struct RateLimitSite {
    name: &'static str,
    policy: Option<&'static str>,
    spec: RateLimitSpec,
    limiter: OnceLock<Arc<RateLimiter>>,
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
        }
    }

    /// The site's limiter: the policy's shared one, or its own.
    #[inline]
    pub fn limiter(&self) -> &RateLimiter {
        self.limiter.get_or_init(|| match self.policy {
            Some(policy) => named(policy, self.spec),
            None => Arc::new(RateLimiter::new(self.spec)),
        })
    }

    /// The wait before the reserved slot (zero on the happy path), or the refusal. Uses the
    /// one-word [`Verdict`](super::Verdict) check, the one the benchmarks measure.
    #[inline]
    fn admit(&self, key: Option<u64>) -> Result<Duration, Rejected> {
        let verdict = self.limiter().check_verdict(key);
        if verdict.is_immediate() {
            return Ok(Duration::ZERO);
        }
        if verdict.is_admitted() {
            return Ok(verdict.wait());
        }
        let retry_after = verdict.wait();
        observe::rate_limit_rejected(self.name, self.policy, retry_after);
        Err(Rejected::RateLimited { retry_after })
    }

    /// After a call sent at `sent_at` (on the limiter's clock): a 429 from the server is
    /// feedback to the control loop (see [`RateLimiter::throttled`]); any completed call
    /// moves a recovering pace along.
    #[inline]
    fn learn<T, E>(
        &self,
        key: Option<u64>,
        sent_at: u64,
        hooks: &ErrorHooks<E>,
        result: &Result<T, E>,
    ) {
        let limiter = self.limiter();
        if let Err(error) = result {
            let classification = hooks.classify(error);
            if let (ErrorClass::Status(429), false) = (classification.class, classification.local) {
                let learned = limiter.throttled(key, sent_at, classification.retry_after);
                observe::rate_limit_throttled(self.name, self.policy, learned);
            }
        }
        limiter.tick();
    }
}

/// Runs the future `call` makes once admitted by `site`'s limiter (for `key`, a
/// [`key_hash`](super::key_hash) of the key value, or the whole site). A refusal is
/// `Err(reject(Rejected::RateLimited))`; `reject` is usually `E::from`. `call` makes the future
/// for the reason [`timeout_async`](crate::timeout::timeout_async) gives.
pub async fn rate_limited_async<T, E, F, Fut>(
    site: &'static RateLimitSite,
    key: Option<u64>,
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
                hooks,
                reject,
                call(),
            ))
            .await;
        }
    }
    let generation = site.limiter().generation();
    let wait = site.admit(key).map_err(reject)?;
    if !wait.is_zero() {
        observe::rate_limit_waited(site.name, site.policy, wait);
        site.limiter().sleep_reserved(key, generation, wait).await;
    }
    let sent_at = site.limiter().now_nanos();
    // A named limiter also learns the quota headers of the responses the call reads (only
    // `http::error_for_status`, feature `reqwest`, reads them).
    #[cfg(feature = "reqwest")]
    let result = match site.policy {
        Some(_) => SERVING.scope(site.serving(key), call()).await,
        None => call().await,
    };
    #[cfg(not(feature = "reqwest"))]
    let result = call().await;
    site.learn(key, sent_at, &hooks, &result);
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
    /// The shared schedule a pause must reach too (a Redis backend): its spec and key.
    #[cfg(feature = "redis")]
    shared: Option<(Arc<crate::backend::BackendSpec>, String)>,
}

tokio::task_local! {
    static SERVING: Serving;
}

#[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
impl RateLimitSite {
    fn serving(&'static self, key: Option<u64>) -> Serving {
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
            #[cfg(feature = "redis")]
            shared: None,
        }
    }
}

/// Hands a response's quota headers to the named limiter of the `#[rate_limited]` call in
/// progress on this task, if any (`http::error_for_status` calls it for every response).
pub fn learn_from_server(quota: &crate::http::Quota) {
    let _ = SERVING.try_with(|serving| {
        let learned = serving.limiter.learn(serving.key, quota);
        observe::rate_limit_learned(serving.site, serving.policy, learned);
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

/// [`rate_limited_async`] for a blocking function: sleeps the thread until admitted.
pub fn rate_limited_blocking<T, E, F>(
    site: &'static RateLimitSite,
    key: Option<u64>,
    hooks: ErrorHooks<E>,
    reject: fn(Rejected) -> E,
    call: F,
) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E>,
{
    let generation = site.limiter().generation();
    let wait = site.admit(key).map_err(reject)?;
    if !wait.is_zero() {
        observe::rate_limit_waited(site.name, site.policy, wait);
        site.limiter()
            .sleep_reserved_blocking(key, generation, wait);
    }
    let sent_at = site.limiter().now_nanos();
    let result = call();
    site.learn(key, sent_at, &hooks, &result);
    result
}

/// [`rate_limited_async`] for a policy whose backend is Redis: one schedule for every
/// instance, kept by a Lua script on the Redis server's clock. When Redis fails (or takes
/// longer than `backend_timeout`), `on_backend_error` decides.
#[cfg(feature = "redis")]
async fn redis_limited<T, E, Fut>(
    site: &'static RateLimitSite,
    policy: &'static str,
    backend: &crate::backend::BackendSpec,
    key: Option<u64>,
    hooks: ErrorHooks<E>,
    reject: fn(Rejected) -> E,
    call: Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    use crate::backend::OnBackendError;
    use crate::redis::{connection, limiter};

    let (interval, tolerance, max_wait) = site.limiter().params();
    let redis_key = match key {
        Some(key) => format!("{}rl:{policy}:{key:016x}", backend.key_prefix),
        None => format!("{}rl:{policy}", backend.key_prefix),
    };
    let redis = connection::backend(&backend.url);
    let acquired = limiter::acquire(
        &redis,
        backend.timeout,
        &redis_key,
        interval,
        tolerance,
        max_wait,
    )
    .await;
    // Set when the wait is a slot of the in-memory limiter (`on_backend_error: local`), which
    // a pause or a lower limit learned meanwhile can move; a slot in Redis stays where it is.
    let mut local = None;
    let wait = match acquired {
        Ok(Ok(wait)) => wait,
        Ok(Err(retry_after)) => {
            observe::rate_limit_rejected(site.name, site.policy, retry_after);
            return Err(reject(Rejected::RateLimited { retry_after }));
        }
        Err(error) => {
            observe::backend_failed(site.name, policy, &error, backend.on_error);
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
                    site.admit(key).map_err(reject)?
                }
            }
        }
    };
    if !wait.is_zero() {
        observe::rate_limit_waited(site.name, site.policy, wait);
        match local {
            Some(generation) => site.limiter().sleep_reserved(key, generation, wait).await,
            None => tokio::time::sleep(wait).await,
        }
    }
    let sent_at = site.limiter().now_nanos();
    #[cfg(feature = "reqwest")]
    let result = {
        let mut serving = site.serving(key);
        serving.shared = Some((Arc::new(backend.clone()), redis_key.clone()));
        SERVING.scope(serving, call).await
    };
    #[cfg(not(feature = "reqwest"))]
    let result = call.await;
    if let Err(error) = &result {
        let classification = hooks.classify(error);
        if let (ErrorClass::Status(429), false) = (classification.class, classification.local) {
            let learned = site
                .limiter()
                .throttled(key, sent_at, classification.retry_after);
            observe::rate_limit_throttled(site.name, site.policy, learned);
            // A hold reaches every instance: it is written to the shared schedule. (A cut of
            // the pace is each instance's own: the pace is a parameter of each acquire.)
            if let Some(pause) = learned.pause {
                if let Err(error) =
                    limiter::pause(&redis, backend.timeout, &redis_key, tolerance, pause).await
                {
                    observe::backend_failed(site.name, policy, &error, backend.on_error);
                }
            }
        }
    }
    site.limiter().tick();
    result
}
