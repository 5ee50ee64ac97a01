//! [`CacheSite`]: one cached function's cache, found by a site id, and the executors
//! `#[cached]` calls.
//!
//! The key type of a site is whatever its key expression gives, which a `static` cannot name,
//! so a site holds its cache type-erased ([`AnyCache`]) and a call reaches the typed
//! [`Cache`] with one `downcast_ref`. Sites are also registered by id, so the invalidation
//! handle `#[cached]` emits beside the function (an item of its own, with its own `static`)
//! reaches the same cache.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{LazyLock, Mutex, OnceLock};

use super::{Cache, CacheCounts, CacheSpec, Cacheable};
use crate::registry::{NamedPolicy, Policies, Reconfigurable};
#[cfg(feature = "redis")]
use std::time::Duration;

/// A cache of any key and value type, as a site holds it.
pub trait AnyCache: Send + Sync {
    /// The typed cache, for `downcast_ref`.
    fn as_any(&self) -> &(dyn Any + Send + Sync);
    /// Removes the entry for `key` if `key` has the cache's key type; whether it had.
    fn invalidate_key(&self, key: &dyn Any) -> bool;
    /// Removes every entry.
    fn invalidate_all(&self);
    /// The counters now.
    fn counts(&self) -> CacheCounts;
    /// Replaces the values (a named policy changed).
    fn configure(&self, spec: CacheSpec);
    /// The number of entries.
    fn len(&self) -> usize;
    /// Whether nothing is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K, V> AnyCache for Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }
    fn invalidate_key(&self, key: &dyn Any) -> bool {
        match key.downcast_ref::<K>() {
            Some(key) => {
                self.invalidate(key);
                true
            }
            None => false,
        }
    }
    fn invalidate_all(&self) {
        Cache::invalidate_all(self);
    }
    fn counts(&self) -> CacheCounts {
        self.report();
        self.stats().counts()
    }
    fn configure(&self, spec: CacheSpec) {
        Cache::configure(self, spec);
    }
    fn len(&self) -> usize {
        // A two-tier cache keeps its copies in the local tier.
        Cache::len(self) + self.near().map_or(0, Cache::len)
    }
}

struct Registered {
    cache: &'static dyn AnyCache,
    name: &'static str,
    policy: Option<&'static str>,
    inline: CacheSpec,
}

/// Every site's cache by site id. Entries are created once per cached function and live for
/// the whole process (like the function's `static`), so they are leaked on purpose.
static SITES: LazyLock<Mutex<HashMap<&'static str, Registered>>> = LazyLock::new(Default::default);

fn effective(policies: &Policies, policy: Option<&str>, inline: CacheSpec) -> CacheSpec {
    let named: Option<&NamedPolicy> = policy.and_then(|name| policies.get(name));
    let mut spec = match named.and_then(|policy| policy.cache) {
        Some(patch) => patch.apply(inline),
        None => inline,
    };
    // A local tier stands in front of a shared cache only.
    let shared = named.is_some_and(|policy| policy.cache_backend_spec().is_some());
    if !shared {
        spec.local = None;
    }
    spec
}

/// Every cache in use: its function's name, policy and counters.
pub(crate) fn all_counts() -> Vec<(&'static str, Option<&'static str>, CacheCounts)> {
    let sites = SITES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    sites
        .values()
        .map(|registered| {
            (
                registered.name,
                registered.policy,
                registered.cache.counts(),
            )
        })
        .collect()
}

/// The caches of the sites naming a policy, reconfigured when the policies change: a policy
/// name shares configuration only, each function keeps its own store.
struct PolicyCaches;

impl Reconfigurable for PolicyCaches {
    fn reconfigure(&self, policies: &Policies) {
        let sites = SITES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for registered in sites.values() {
            if registered.policy.is_some() {
                registered.cache.configure(effective(
                    policies,
                    registered.policy,
                    registered.inline,
                ));
            }
        }
    }
}

/// One cached function's cache: what the handle `#[cached]` puts beside the function
/// (`<function>_cache()`) returns, to invalidate one key or every key and read the counters.
///
/// It holds an id unique to its `#[cached]` attribute, a name for people, the policy it names,
/// its inline values, and (once first called) its cache.
#[derive(Debug)]
pub struct CacheSite {
    id: &'static str,
    name: &'static str,
    policy: Option<&'static str>,
    spec: CacheSpec,
    /// How the stored values are weighed for `max_bytes` (`#[cached(max_bytes = ..)]`).
    weigher: Option<super::weigh::AnyWeigher>,
    slot: OnceLock<Erased>,
}

/// A site's cache, type-erased, with its `dyn Any` view taken once so that a call's
/// `downcast_ref` is one virtual call (`type_id`) and a compare.
#[derive(Debug, Clone, Copy)]
struct Erased {
    cache: &'static dyn AnyCache,
    any: &'static (dyn Any + Send + Sync),
}

impl Erased {
    fn new(cache: &'static dyn AnyCache) -> Self {
        Erased {
            cache,
            any: cache.as_any(),
        }
    }
}

impl std::fmt::Debug for dyn AnyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnyCache")
            .field("len", &self.len())
            .finish()
    }
}

impl CacheSite {
    /// A site; `id` must be unique to one function (`#[cached]` uses the module path, the
    /// function's name and the attribute's line and column).
    #[doc(hidden)]
    pub const fn new(
        id: &'static str,
        name: &'static str,
        policy: Option<&'static str>,
        spec: CacheSpec,
    ) -> Self {
        CacheSite {
            id,
            name,
            policy,
            spec,
            weigher: None,
            slot: OnceLock::new(),
        }
    }

    #[doc(hidden)]
    /// The same site, weighing its values with `weigher` (`weigh_any::<Stored>`), so that
    /// `max_bytes` can hold.
    pub const fn weighed(mut self, weigher: super::weigh::AnyWeigher) -> Self {
        self.weigher = Some(weigher);
        self
    }

    /// The function's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The typed cache, created on first use. `None` if another site registered the same id
    /// with other key or value types (a duplicate id: not something `#[cached]` emits).
    #[doc(hidden)]
    #[inline]
    pub fn cache<K, V>(&self) -> Option<&'static Cache<K, V>>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let erased = self
            .slot
            .get_or_init(|| Erased::new(self.register::<K, V>()));
        erased.any.downcast_ref::<Cache<K, V>>()
    }

    fn register<K, V>(&self) -> &'static dyn AnyCache
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        if let Some(policy) = self.policy {
            crate::registry::register(&PolicyCaches);
            // Before `SITES` is locked: loading `RESILIENCE_CONFIG` reconfigures every site.
            crate::registry::snapshot_for(self.name, policy);
        }
        let mut sites = SITES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(registered) = sites.get(self.id) {
            return registered.cache;
        }
        let spec = effective(&crate::registry::current(), self.policy, self.spec);
        let cache: &'static dyn AnyCache = Box::leak(Box::new(Cache::<K, V>::weighed(
            spec,
            self.name,
            self.weigher,
        )));
        sites.insert(
            self.id,
            Registered {
                cache,
                name: self.name,
                policy: self.policy,
                inline: self.spec,
            },
        );
        cache
    }

    /// The cache if the function has been called (a handle used before any call finds none:
    /// there is nothing to invalidate yet).
    #[doc(hidden)]
    pub fn existing(&self) -> Option<&'static dyn AnyCache> {
        if let Some(erased) = self.slot.get() {
            return Some(erased.cache);
        }
        let sites = SITES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let cache = sites.get(self.id).map(|registered| registered.cache)?;
        Some(self.slot.get_or_init(|| Erased::new(cache)).cache)
    }

    /// Removes the entry for `key` (the function's key type: the tuple of its owned
    /// arguments, or its `key` expression's type). `false` when `key` is of another type;
    /// `true` before the first call (nothing is cached yet).
    pub fn invalidate<Q: Any>(&self, key: &Q) -> bool {
        self.existing()
            .is_none_or(|cache| cache.invalidate_key(key))
    }

    /// Removes every entry.
    pub fn invalidate_all(&self) {
        if let Some(cache) = self.existing() {
            cache.invalidate_all();
        }
    }

    /// Removes the entry for `key` here and, when the site's policy keeps its cache in Redis,
    /// there too, for every instance: with a `local` tier, every instance drops its copy
    /// (an invalidation message). Without a Redis backend it is [`invalidate`](Self::invalidate).
    pub async fn invalidate_shared<Q: Any + serde::Serialize>(&self, key: &Q) -> bool {
        let here = self.invalidate(key);
        #[cfg(feature = "redis")]
        if let Some((backend, prefix)) = self.shared_prefix() {
            if let Ok(json) = serde_json::to_string(key) {
                use crate::redis::invalidation;
                let redis = crate::redis::connection::backend(&backend.url);
                let entry = format!("{prefix}{json}");
                let lock = crate::redis::keys::lock(&entry);
                let message = (
                    invalidation::channel(&backend.key_prefix),
                    invalidation::one(redis.origin(), &entry),
                );
                let keys = vec![entry, lock];
                if let Err(error) =
                    crate::redis::cache::delete(&redis, backend.timeout, keys, Some(message)).await
                {
                    error.report(self.name, self.policy.unwrap_or_default(), backend.on_error);
                }
            }
        }
        here
    }

    /// Removes every entry here and, when the site's policy keeps its cache in Redis, there
    /// too (a `SCAN` of the function's keys, then `DEL`), for every instance: with a `local`
    /// tier, every instance empties it (an invalidation message).
    pub async fn invalidate_all_shared(&self) {
        self.invalidate_all();
        #[cfg(feature = "redis")]
        if let Some((backend, prefix)) = self.shared_prefix() {
            use crate::redis::invalidation;
            let redis = crate::redis::connection::backend(&backend.url);
            let message = (
                invalidation::channel(&backend.key_prefix),
                invalidation::all(redis.origin(), &prefix),
            );
            let deleted = match crate::redis::cache::keys(&redis, backend.timeout, &prefix).await {
                Ok(keys) => {
                    crate::redis::cache::delete(&redis, backend.timeout, keys, Some(message)).await
                }
                Err(error) => Err(error),
            };
            if let Err(error) = deleted {
                error.report(self.name, self.policy.unwrap_or_default(), backend.on_error);
            }
        }
    }

    /// The Redis backend of the site's policy and the prefix of the function's entries.
    #[cfg(feature = "redis")]
    fn shared_prefix(&self) -> Option<(std::sync::Arc<crate::backend::BackendSpec>, String)> {
        let policy = self.policy?;
        let backend = crate::registry::cache_backend(policy)?;
        let prefix = crate::redis::keys::function_prefix(&backend.key_prefix, policy, self.name);
        Some((backend, prefix))
    }

    /// The counters (zero before the first call).
    pub fn counts(&self) -> CacheCounts {
        self.existing().map(AnyCache::counts).unwrap_or_default()
    }

    /// The number of entries kept in this process now (0 before the first call).
    pub fn len(&self) -> usize {
        self.existing().map_or(0, AnyCache::len)
    }

    /// Whether nothing is kept in this process.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a cached function's key and values travel to a shared backend (feature `redis`):
/// JSON, for types that implement serde's traits. `#[cached]` finds one for every function
/// whose key and value types are `Serialize` (and the value `Deserialize`); a function
/// without one keeps its cache in memory even under a policy naming a Redis backend.
pub struct Codec<K, V> {
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) key: fn(&K) -> Option<String>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) encode: fn(&V) -> Option<Vec<u8>>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) decode: fn(&[u8]) -> Option<V>,
    /// A key back from its JSON, when the key type reads back (a `local` tier needs it).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) key_back: Option<fn(&str) -> Option<K>>,
}

impl<K, V> std::fmt::Debug for Codec<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Codec(json)")
    }
}

impl<K, V> Codec<K, V>
where
    K: serde::Serialize,
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    /// The JSON codec.
    pub fn json() -> Self {
        Codec {
            key: |key| serde_json::to_string(key).ok(),
            encode: |value| serde_json::to_vec(value).ok(),
            decode: |bytes| serde_json::from_slice(bytes).ok(),
            key_back: None,
        }
    }
}

impl<K, V> Codec<K, V>
where
    K: serde::de::DeserializeOwned,
{
    /// The same codec, reading keys back from JSON too.
    pub fn reading_keys(mut self) -> Self {
        self.key_back = Some(|json| serde_json::from_str(json).ok());
        self
    }
}

/// Runs `load` through `site`'s cache for `key`: what `#[cached]` on an `async fn` calls.
/// `Mode` says what the return type stores (see [`Cacheable`]). With a `codec`, a policy
/// naming a Redis backend keeps the entries there (see [`crate::backend`]). The codec comes
/// first: generated code probes it from a borrow of the key before moving the key in.
pub async fn cached_async<Mode, R, K, Fut>(
    site: &'static CacheSite,
    codec: Option<Codec<K, R::Stored>>,
    key: K,
    load: impl FnOnce() -> Fut,
) -> R
where
    R: Cacheable<Mode>,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    Fut: Future<Output = R>,
{
    let Some(cache) = site.cache::<K, R::Stored>() else {
        return load().await;
    };
    #[cfg(feature = "redis")]
    if let (Some(policy), Some(codec)) = (site.policy, codec) {
        // A local tier's hit: no round trip, and no look-up of the policy's backend (the
        // tier is on only while the policy names one).
        if let Some(near) = cache.near().filter(|_| codec.key_back.is_some()) {
            if let Some(value) = near.hit(&key) {
                return R::restore(value);
            }
        }
        if let Some(backend) = crate::registry::cache_backend(policy) {
            // Boxed: the Redis path's state would otherwise make every call's future larger.
            return Box::pin(redis_cached(site, cache, &backend, &codec, key, load)).await;
        }
    }
    #[cfg(not(feature = "redis"))]
    let _ = codec;
    // The hit first, here: a hit then builds no loading future around the call.
    let found = cache.lookup(&key);
    if let super::Lookup::Fresh(value) = found {
        return R::restore(value);
    }
    let handover = super::store::Handover::of::<Mode>();
    cache
        .load_after(found, &key, R::restore, handover, || async {
            load().await.split()
        })
        .await
}

/// [`cached_async`] for a policy whose backend is Redis (see [`crate::redis::cache`] for the
/// format and the cross-instance single-flight). When Redis fails, `on_backend_error: local`
/// uses the in-memory cache; `allow` and `deny` call the function uncached.
#[cfg(feature = "redis")]
async fn redis_cached<Mode, R, K, Fut>(
    site: &'static CacheSite,
    cache: &'static Cache<K, R::Stored>,
    backend: &crate::backend::BackendSpec,
    codec: &Codec<K, R::Stored>,
    key: K,
    load: impl FnOnce() -> Fut,
) -> R
where
    R: Cacheable<Mode>,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    Fut: Future<Output = R>,
{
    use super::store::Handover;
    use crate::backend::OnBackendError;
    use crate::redis::connection::BackendError;
    use crate::redis::{cache as shared, connection};
    use std::sync::Arc;

    if !cache.is_enabled() {
        return load().await;
    }
    // A stale entry being refreshed by this process: served at once.
    if cache.refreshes() {
        if let Some(value) = cache.stale_while_loading(&key) {
            return R::restore(value);
        }
    }
    let Some(key_text) = (codec.key)(&key) else {
        let found = cache.lookup(&key);
        return cache
            .load_after(found, &key, R::restore, Handover::of::<Mode>(), || async {
                load().await.split()
            })
            .await;
    };
    let prefix =
        crate::redis::keys::function_prefix(&backend.key_prefix, policy_of(site), site.name);
    let entry = format!("{prefix}{key_text}");
    let redis = connection::backend(&backend.url);
    let timeout = backend.timeout;
    let near = Near::of(cache, codec, &redis, backend, prefix);
    let decode = |bytes: &[u8]| {
        let framed = super::frame::unframe(bytes)?;
        let value = (codec.decode)(framed.json)?;
        Some((value, framed.freshness, framed.refresh_below))
    };
    let failed = |error: &BackendError| {
        error.report(site.name, site.policy.unwrap_or_default(), backend.on_error);
    };
    // Borrowed into the load, which moves only `alone` and `load` in.
    let (key, redis, entry, decode, failed, near) = (&key, &redis, &entry, &decode, &failed, &near);
    cache
        .deduplicated(
            key,
            R::restore,
            Handover::of::<Mode>(),
            |alone| async move {
                // The round trips before the load share one `backend_timeout`: a Redis that
                // freezes during a miss costs it once, then `on_backend_error` decides.
                let deadline = tokio::time::Instant::now() + timeout;
                let epoch = cache.near_epoch();
                let with_ttl = cache.refreshes() || near.as_ref().is_some_and(Near::keeps);
                let read = if with_ttl {
                    shared::get_with_ttl(redis, timeout, entry).await
                } else {
                    shared::get(redis, timeout, entry)
                        .await
                        .map(|found| found.map(|bytes| (bytes, None)))
                };
                let plan = match read {
                    Ok(Some((bytes, left))) => match decode(&bytes) {
                        Some((value, freshness, below)) => {
                            let below = Duration::from_millis(below);
                            match left.filter(|left| !below.is_zero() && *left <= below) {
                                // Fresh (or of unknown life: a plain `GET`).
                                None => {
                                    cache.count_lookup(true);
                                    if let Some(near) = near {
                                        let fresh = left.map(|left| left.saturating_sub(below));
                                        near.keep(epoch, key, &value, freshness, fresh);
                                    }
                                    return (R::restore(value.clone()), Some(value));
                                }
                                // Stale: served to everyone while one caller, of any
                                // instance, refreshes it.
                                Some(left) => {
                                    cache.count_stale();
                                    let usable = crate::clock::nanos(left);
                                    cache.keep_stale(key.clone(), value.clone(), usable);
                                    let lock = shared::Lock::new(entry);
                                    let lease = shared::lease(timeout);
                                    match shared::try_lock(redis, timeout, &lock, lease).await {
                                        Ok(true) => Plan::Refresh(lock),
                                        Ok(false) | Err(_) => {
                                            return (R::restore(value.clone()), Some(value));
                                        }
                                    }
                                }
                            }
                        }
                        None => Plan::Load(None),
                    },
                    // This instance's load of the key just failed and its failure could not be
                    // handed on: each of its waiters loads now, not one after another
                    // through the lock.
                    Ok(None) if alone => Plan::Load(None),
                    Ok(None) => {
                        let remaining =
                            deadline.saturating_duration_since(tokio::time::Instant::now());
                        lock_or_wait(redis, timeout, remaining, entry, &decode).await
                    }
                    Err(error) => Plan::Fallback(error),
                };
                if !matches!(plan, Plan::Fallback(_) | Plan::Refresh(_)) {
                    cache.count_lookup(false);
                }
                let mut guard = match plan {
                    Plan::Served((value, freshness, _)) => {
                        if let Some(near) = near {
                            near.keep(epoch, key, &value, freshness, None);
                        }
                        return (R::restore(value.clone()), Some(value));
                    }
                    Plan::Fallback(error) => {
                        failed(&error);
                        return match backend.on_error {
                            OnBackendError::Local => {
                                if let super::Lookup::Fresh(value) = cache.lookup(key) {
                                    return (R::restore(value.clone()), Some(value));
                                }
                                let (result, stored) = load().await.split();
                                match stored {
                                    Some((value, freshness)) => {
                                        cache.insert(key.clone(), value.clone(), freshness);
                                        (result, Some(value))
                                    }
                                    None => (result, None),
                                }
                            }
                            OnBackendError::Allow | OnBackendError::Deny => (load().await, None),
                        };
                    }
                    Plan::Load(lock) => lock.map(|lock| {
                        shared::LockGuard::new(Arc::clone(redis), timeout, entry, lock)
                    }),
                    Plan::Refresh(lock) => Some(shared::LockGuard::new(
                        Arc::clone(redis),
                        timeout,
                        entry,
                        lock,
                    )),
                };
                cache
                    .stats()
                    .loads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let started = tokio::time::Instant::now();
                let (result, stored) = match guard.as_ref().and_then(shared::LockGuard::lock) {
                    Some(lock) => {
                        let lease = shared::lease(timeout);
                        shared::renewing(redis, timeout, lock, lease, load()).await
                    }
                    None => load().await,
                }
                .split();
                let took = crate::clock::nanos(started.elapsed());
                if cache.refreshes() {
                    cache.forget_stale(key);
                }
                // The value (when it is to be stored) and the release of the lock, in one round
                // trip; a load without the lock has none to release.
                let frame = stored.as_ref().and_then(|(value, freshness)| {
                    let (ttl, below) = cache.shared_life(*freshness, took);
                    let json = (codec.encode)(value).filter(|_| ttl > 0)?;
                    // Whole milliseconds, rounded up: never fresher than the policy says.
                    let below = below.div_ceil(1_000_000);
                    let ttl = Duration::from_nanos(ttl);
                    let fresh = ttl.saturating_sub(Duration::from_millis(below));
                    Some((super::frame::frame(*freshness, &json, below), ttl, fresh))
                });
                let lock = match guard.as_ref().and_then(shared::LockGuard::lock) {
                    Some(lock) => Some(lock.clone()),
                    None => frame.as_ref().map(|_| shared::Lock::new(entry)),
                };
                if let Some(lock) = lock {
                    let value = frame
                        .as_ref()
                        .map(|(frame, ttl, _)| (frame.as_slice(), *ttl));
                    let announce = near.as_ref().map(Near::announce);
                    let epoch = cache.near_epoch();
                    match shared::store_and_unlock(redis, timeout, entry, &lock, value, announce)
                        .await
                    {
                        Ok(()) => {
                            if let (Some(near), Some((value, freshness)), Some((_, _, fresh))) =
                                (near, &stored, &frame)
                            {
                                near.keep(epoch, key, value, *freshness, Some(*fresh));
                            }
                        }
                        Err(error) => failed(&error),
                    }
                }
                // Released, or tried: a lock whose release failed ends with its lease.
                if let Some(guard) = guard.as_mut() {
                    guard.disarm();
                }
                (result, stored.map(|(value, _)| value))
            },
        )
        .await
}

/// The policy a Redis-backed site names (every one names one: a backend is a policy's).
#[cfg(feature = "redis")]
fn policy_of(site: &CacheSite) -> &'static str {
    site.policy.unwrap_or_default()
}

/// A call's view of its cache's local tier (`local`): where its copies go, and how this
/// instance tells the others to drop theirs.
#[cfg(feature = "redis")]
struct Near<'a, K, V> {
    /// The tier, when this call can keep copies in it: the key reads back from JSON (to drop
    /// the copy a message names) and the invalidation subscriber runs.
    keeper: Option<(&'a Cache<K, V>, &'a crate::redis::invalidation::Subscriber)>,
    cache: &'a Cache<K, V>,
    /// The channel, and the head of a message naming one entry.
    channel: String,
    head: String,
}

#[cfg(feature = "redis")]
impl<'a, K, V> Near<'a, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// `None` when the cache has no local tier. Starts the subscriber of `redis` and
    /// registers the tier with it on first use.
    fn of(
        cache: &'static Cache<K, V>,
        codec: &Codec<K, V>,
        redis: &'a crate::redis::connection::Backend,
        backend: &crate::backend::BackendSpec,
        prefix: String,
    ) -> Option<Self> {
        use crate::redis::invalidation;
        let tier = cache.near()?;
        let channel = invalidation::channel(&backend.key_prefix);
        let head = invalidation::one(redis.origin(), "");
        let keeper = match (codec.key_back, invalidation::subscriber(redis)) {
            (Some(key_back), Some(subscriber)) => {
                let identity = (std::ptr::from_ref(cache) as usize, prefix.as_str());
                if !subscriber.listens(identity) {
                    subscriber.listen(std::sync::Arc::new(super::near::Listening {
                        cache,
                        channel: channel.clone(),
                        prefix,
                        key_back,
                    }));
                }
                Some((tier, &**subscriber))
            }
            _ => None,
        };
        Some(Near {
            keeper,
            cache,
            channel,
            head,
        })
    }

    /// Whether copies are kept now (a read then asks how long the entry lives).
    fn keeps(&self) -> bool {
        self.keeper.is_some()
    }

    /// Keeps a copy of `value` for at most `left` (the entry's time to live), unless an
    /// invalidation message came since `epoch` or the subscriber is not subscribed.
    fn keep(
        &self,
        epoch: u64,
        key: &K,
        value: &V,
        freshness: super::Freshness,
        left: Option<Duration>,
    ) {
        let Some((tier, subscriber)) = self.keeper else {
            return;
        };
        if subscriber.is_subscribed() && self.cache.near_epoch() == epoch {
            let within = left.map_or(u64::MAX, crate::clock::nanos);
            tier.insert_within(key.clone(), value.clone(), freshness, 0, within);
        }
    }

    /// The channel and the head of the message announcing a stored entry.
    fn announce(&self) -> (&str, &str) {
        (&self.channel, &self.head)
    }
}
/// What a miss does next, once Redis has answered (or not).
#[cfg(feature = "redis")]
enum Plan<V> {
    /// Another instance's load stored this (a value, or a failure under `negative_ttl`).
    Served((V, super::Freshness, u64)),
    /// Refresh a stale entry, holding the lock.
    Refresh(crate::redis::cache::Lock),
    /// Load, holding the lock (or without it: the wait ended, or the entry is of another
    /// format version).
    Load(Option<crate::redis::cache::Lock>),
    /// Redis failed: `on_backend_error` decides.
    Fallback(crate::redis::connection::BackendError),
}

/// After a missed `GET`: takes the lock of `entry`, or waits for the instance that holds it
/// until it stores the value (served) or lets go of the lock (taken in turn). The first round
/// trip has `first` (what is left of the miss's `backend_timeout`), the polls `timeout` each;
/// the wait is bounded by [`WAIT_LIMIT`](crate::redis::cache::WAIT_LIMIT).
#[cfg(feature = "redis")]
async fn lock_or_wait<V>(
    redis: &crate::redis::connection::Backend,
    timeout: Duration,
    first: Duration,
    entry: &str,
    decode: &impl Fn(&[u8]) -> Option<(V, super::Freshness, u64)>,
) -> Plan<V> {
    use crate::redis::cache::{self as shared, Fetched};

    let lock = shared::Lock::new(entry);
    let lease = shared::lease(timeout);
    let waited = tokio::time::Instant::now() + shared::WAIT_LIMIT;
    let mut budget = first;
    // Bounded in count as well as in time: one poll per `POLL` until `WAIT_LIMIT`.
    let polls = shared::WAIT_LIMIT.as_millis() / shared::POLL.as_millis();
    for _ in 0..=polls {
        match shared::get_or_lock(redis, budget, entry, &lock, lease).await {
            Ok(Fetched::Entry(bytes)) => {
                return match decode(&bytes) {
                    Some(value) => Plan::Served(value),
                    None => Plan::Load(None),
                };
            }
            Ok(Fetched::Locked) => return Plan::Load(Some(lock)),
            Ok(Fetched::Held) => {}
            Err(error) => return Plan::Fallback(error),
        }
        if tokio::time::Instant::now() >= waited {
            break;
        }
        tokio::time::sleep(shared::POLL).await;
        budget = timeout;
    }
    Plan::Load(None)
}

/// [`cached_async`] for a function whose attribute sets `stale_while_revalidate` and whose
/// future owns everything it uses: a stale entry is served to every caller at once while a
/// spawned task refreshes it (see [`Cache::get_or_refresh`]).
pub async fn cached_async_refreshing<Mode, R, K, F, Fut>(
    site: &'static CacheSite,
    key: K,
    load: F,
) -> R
where
    R: Cacheable<Mode> + Send + 'static,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let Some(cache) = site.cache::<K, R::Stored>() else {
        return load().await;
    };
    let handover = super::store::Handover::of::<Mode>();
    cache
        .refresh_or_load(&key, R::restore, handover, || async {
            load().await.split()
        })
        .await
}

/// [`cached_async`] for a blocking function: a miss waiting on another caller's load parks
/// the thread.
pub fn cached_blocking<Mode, R, K>(site: &'static CacheSite, key: K, load: impl FnOnce() -> R) -> R
where
    R: Cacheable<Mode>,
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    let Some(cache) = site.cache::<K, R::Stored>() else {
        return load();
    };
    let found = cache.lookup(&key);
    if let super::Lookup::Fresh(value) = found {
        return R::restore(value);
    }
    let handover = super::store::Handover::of::<Mode>();
    crate::block_on::block_on(
        cache.load_after(found, &key, R::restore, handover, || async {
            load().split()
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::adapter::{OkAndErr, OkOnly};
    use crate::registry::{self, NamedPolicy};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    const MINUTE: Duration = Duration::from_secs(60);

    async fn fetch(
        site: &'static CacheSite,
        id: u32,
        calls: &AtomicUsize,
    ) -> Result<String, String> {
        cached_async::<OkOnly, _, _, _>(site, None, (id,), || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            if id == 0 {
                Err("no user 0".to_string())
            } else {
                Ok(format!("user {id}"))
            }
        })
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn the_handle_reaches_the_functions_cache() {
        static FUNCTION: CacheSite =
            CacheSite::new("tests::handle#1:1", "handle", None, CacheSpec::new(MINUTE));
        static HANDLE: CacheSite =
            CacheSite::new("tests::handle#1:1", "handle", None, CacheSpec::new(MINUTE));
        let calls = AtomicUsize::new(0);
        assert!(
            HANDLE.invalidate(&(1u32,)),
            "nothing to invalidate before the first call"
        );
        assert_eq!(fetch(&FUNCTION, 1, &calls).await, Ok("user 1".into()));
        assert_eq!(fetch(&FUNCTION, 1, &calls).await, Ok("user 1".into()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(HANDLE.invalidate(&(1u32,)));
        assert!(!HANDLE.invalidate(&"wrong key type"));
        assert_eq!(fetch(&FUNCTION, 1, &calls).await, Ok("user 1".into()));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        HANDLE.invalidate_all();
        assert_eq!(fetch(&FUNCTION, 1, &calls).await, Ok("user 1".into()));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(HANDLE.counts(), FUNCTION.counts());
        assert_eq!(HANDLE.counts().loads, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_cached_only_in_the_negative_mode() {
        static PLAIN: CacheSite =
            CacheSite::new("tests::plain#1:1", "plain", None, CacheSpec::new(MINUTE));
        let calls = AtomicUsize::new(0);
        for _ in 0..2 {
            assert!(fetch(&PLAIN, 0, &calls).await.is_err());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "Err is not cached");

        static NEGATIVE: CacheSite = CacheSite::new(
            "tests::negative#1:1",
            "negative",
            None,
            CacheSpec::new(MINUTE).negative_ttl(Some(Duration::from_secs(5))),
        );
        let calls = AtomicUsize::new(0);
        let load = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<String, String>("down".into())
        };
        for _ in 0..3 {
            let result = cached_async::<OkAndErr, _, _, _>(&NEGATIVE, None, 9u8, load).await;
            assert_eq!(result, Err("down".into()));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "Err cached for negative_ttl"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        let _ = cached_async::<OkAndErr, _, _, _>(&NEGATIVE, None, 9u8, load).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_policy_switches_the_cache_off_and_on() {
        static SWITCHED: CacheSite = CacheSite::new(
            "tests::switched#1:1",
            "switched",
            Some("cache-switch-test"),
            CacheSpec::new(MINUTE),
        );
        let calls = AtomicUsize::new(0);
        let _ = fetch(&SWITCHED, 1, &calls).await;
        let _ = fetch(&SWITCHED, 1, &calls).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let mut policies = Policies::new();
        policies.insert(
            "cache-switch-test",
            NamedPolicy::with_cache(crate::cache::CachePatch {
                enabled: Some(false),
                ..Default::default()
            }),
        );
        registry::install(policies);
        let _ = fetch(&SWITCHED, 1, &calls).await;
        let _ = fetch(&SWITCHED, 1, &calls).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "bypassed while the policy disables it"
        );
        registry::install(Policies::new());
        let _ = fetch(&SWITCHED, 1, &calls).await;
        let _ = fetch(&SWITCHED, 1, &calls).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "back on, cleared, then cached again"
        );
    }

    /// `local` is kept only for a policy naming a Redis backend: in memory there is nothing
    /// to stand in front of.
    #[test]
    fn a_local_tier_needs_a_backend() {
        use resilience_config::cache::LocalTier;
        let tier = LocalTier::new(10, Duration::from_secs(1));
        let local = Some(tier);
        let patch = crate::cache::CachePatch {
            local: Some(tier),
            ..Default::default()
        };
        let mut policies = Policies::new();
        policies.insert("memory", NamedPolicy::with_cache(patch));
        policies.insert(
            "shared",
            NamedPolicy::with_cache(patch)
                .with_backend(crate::backend::BackendSpec::redis("redis://127.0.0.1:1/0")),
        );
        let inline = CacheSpec::new(MINUTE);
        assert_eq!(effective(&policies, Some("memory"), inline).local, None);
        assert_eq!(effective(&policies, Some("shared"), inline).local, local);
        assert_eq!(effective(&policies, None, inline.local(local)).local, None);
    }

    #[test]
    fn blocking_callers_share_one_load() {
        static BLOCKING: CacheSite = CacheSite::new(
            "tests::blocking#1:1",
            "blocking",
            None,
            CacheSpec::new(MINUTE),
        );
        let calls = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    let value: Option<u32> =
                        cached_blocking::<crate::cache::adapter::SomeOnly, _, _>(&BLOCKING, "k", || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            Some(7)
                        });
                    assert_eq!(value, Some(7));
                });
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
