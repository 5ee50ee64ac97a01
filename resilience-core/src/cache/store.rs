//! [`Cache`]: a bounded concurrent map with TTL, jitter, negative entries, stale-while-revalidate,
//! a run-time switch, single-flight loads and counters.
//!
//! The store is `quick_cache` (S3-FIFO eviction, sharded, a hit takes a shard's read lock and
//! no global lock), chosen over moka for its hit cost and memory per entry; this module adds
//! what `#[cached]` needs on top: expiry times in each entry, on tokio's clock where tests can
//! pause it.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use quick_cache::sync::Cache as Store;
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};
use rand::Rng;

use super::flight::{Flights, Handed, Leader, Role};
use super::stats::Lookups;
use super::weigh::AnyWeigher;
use super::{CacheSpec, CacheStats, Cacheable, Failure};
use crate::clock::{TtlClock, nanos};

/// One stored value and when it stops being usable (and, with stale-while-revalidate or an
/// early refresh, fresh a while before that).
///
/// 16 bytes beside the value: the stale stretch in milliseconds and the weight in 32 bits each
/// keep a `u64` entry at 1.17x quick_cache's memory, where two more `u64`s made it 1.32x
/// (`benches/cache_memory.rs`).
#[derive(Clone)]
struct Entry<V> {
    value: V,
    usable_until: u64,
    /// How long before `usable_until` it stops being fresh, in whole milliseconds, rounded
    /// up (its freshness ends up to a millisecond early, its use never late; at most about
    /// 49 days).
    stale_ms: u32,
    /// Its weight in the store: 1, or under `max_bytes` its share of both bounds (see
    /// [`Cache::weight_of`]). Kept with the entry because the store reads it again when it
    /// evicts, and a reload may change the bounds meanwhile. A value heavier than `u32::MAX`
    /// outweighs any bound up to four billion entries, so it saturates there.
    weight: u32,
}

impl<V> Entry<V> {
    fn new(value: V, fresh_until: u64, usable_until: u64, weight: u64) -> Self {
        let stale_ms = usable_until.saturating_sub(fresh_until).div_ceil(1_000_000);
        Entry {
            value,
            usable_until,
            stale_ms: u32::try_from(stale_ms).unwrap_or(u32::MAX),
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
        }
    }

    /// Until when it is fresh.
    #[inline]
    fn fresh_until(&self) -> u64 {
        self.usable_until
            .saturating_sub(u64::from(self.stale_ms) * 1_000_000)
    }
}

/// The store's weigher: the weight each entry was stored with.
#[derive(Clone, Copy)]
struct EntryWeight;

impl<K, V> Weighter<K, Entry<V>> for EntryWeight {
    fn weight(&self, _key: &K, entry: &Entry<V>) -> u64 {
        u64::from(entry.weight)
    }
}

/// Counts evictions (the store calls it under its shard lock: one relaxed add).
#[derive(Clone)]
struct CountEvictions(Arc<CacheStats>);

/// The key an insert is storing: the store reports the entry that insert replaces (a refresh
/// of a stale entry) through `on_evict` too, and a replaced entry is not an eviction.
struct Inserting<K>(Option<K>);

impl<K> Default for Inserting<K> {
    fn default() -> Self {
        Inserting(None)
    }
}

impl<K: Eq, V> Lifecycle<K, V> for CountEvictions {
    type RequestState = Inserting<K>;

    fn on_evict(&self, inserting: &mut Inserting<K>, key: K, _value: V) {
        if inserting.0.as_ref() != Some(&key) {
            self.0.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<V> {
    /// A fresh value.
    Fresh(V),
    /// An expired value still inside its stale-while-revalidate window: serve it, and refresh.
    Stale(V),
    /// Nothing usable (or the cache is disabled).
    Miss,
}

/// Whether a loaded value is stored as a success or as a failure (`negative_ttl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A success: kept for `ttl` (with jitter).
    Positive,
    /// A failure: kept for `negative_ttl`, or not at all when that is unset.
    Negative,
}

/// How the result of a load that stores nothing (a failure, without `negative_ttl`) reaches
/// the callers waiting on the same load: copied ([`Cacheable::share`]), or not at all (each
/// waiter then runs its own load at once).
pub(crate) struct Handover<R> {
    share: fn(&R) -> Option<Failure>,
    unshare: fn(&Failure) -> Option<R>,
}

impl<R> Clone for Handover<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Handover<R> {}

impl<R> Handover<R> {
    /// Nothing is copied: the waiters on a failed load each load at once.
    pub(crate) fn none() -> Self {
        Handover {
            share: |_| None,
            unshare: |_| None,
        }
    }

    /// As the return type's mode says (see [`Cacheable::share`]).
    pub(crate) fn of<Mode>() -> Self
    where
        R: Cacheable<Mode>,
    {
        Handover {
            share: R::share,
            unshare: R::unshare,
        }
    }
}

/// A cache of `V` by `K`, with the values of a [`CacheSpec`] that can change while it runs.
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::Duration;
/// use resilience::cache::{Cache, CacheSpec, Freshness, Lookup};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let cache: Cache<u64, String> = Cache::new(CacheSpec::new(Duration::from_secs(60)));
/// let load = || async {
///     let user = "user 7".to_string();
///     // the caller's result, and what to store
///     (Ok::<_, ()>(user.clone()), Some((user, Freshness::Positive)))
/// };
/// let value = cache.get_or_load(&7, Ok, load).await;
/// assert_eq!(value, Ok("user 7".to_string()));
/// assert_eq!(cache.lookup(&7), Lookup::Fresh("user 7".to_string()));
/// tokio::time::advance(Duration::from_secs(60)).await;
/// assert_eq!(cache.lookup(&7), Lookup::Miss);
/// # }
/// ```
pub struct Cache<K, V> {
    store: Store<K, Entry<V>, EntryWeight, DefaultHashBuilder, CountEvictions>,
    /// How a value is weighed for `max_bytes` (`#[cached(max_bytes = ..)]`); without one a
    /// `max_bytes` from a policy is not applied.
    weigher: Option<AnyWeigher>,
    /// `max_bytes`, 0 when unset.
    max_bytes: AtomicU64,
    flights: Flights<K, V>,
    ttl: AtomicU64,
    jitter_bits: AtomicU64,
    negative_ttl: AtomicU64,
    stale_window: AtomicU64,
    /// `early_refresh` (XFetch's beta) as f64 bits; 0.0 is off.
    early_bits: AtomicU64,
    enabled: AtomicBool,
    capacity: AtomicU64,
    clock: TtlClock,
    stats: Arc<CacheStats>,
    /// The site name reported to the `metrics` facade.
    name: &'static str,
    /// The in-memory tier in front of a shared cache (`local`), made when a policy first sets
    /// one; it counts its hits in this cache's counters.
    near: OnceLock<Box<Cache<K, V>>>,
    /// Whether [`near`](Self::near) is in use (`local` set, the cache enabled).
    near_on: AtomicBool,
    /// Bumped by each invalidation message for this cache (see [`near_epoch`](Self::near_epoch)).
    near_epoch: AtomicU64,
}

/// How long before its expiry a value whose load took `took` nanoseconds stops being fresh,
/// under early refresh with `beta` (XFetch: Vattani, Chierichetti and Lowenstein, "Optimal
/// Probabilistic Cache Stampede Prevention", VLDB 2015): `took * beta * E`, with
/// `E = -ln(draw)` exponential of mean 1 for a `draw` uniform in `[0, 1)`.
///
/// The paper draws on every read; this draws once per stored value, so a hit reads no random
/// number and compares against one stored instant as it does without early refresh. The
/// refresh then comes at the first read past a point drawn from the same distribution, one
/// refresh at a time (the stale path's single flight), where per-read draws would make a key
/// read more often refresh a little earlier.
fn early_gap(took: u64, beta: f64, draw: f64) -> u64 {
    // `1 - draw` is in (0, 1]: its logarithm is finite and at most 0.
    let exponential = -(1.0 - draw).ln();
    let gap = took as f64 * beta * exponential;
    // `as` saturates (and reads NaN as 0): a huge gap is capped by the ttl at the caller.
    gap as u64
}

#[cfg(test)]
thread_local! {
    /// The draw [`early_draw`] returns on this thread, in this module's tests.
    static DRAW: std::cell::Cell<Option<f64>> = const { std::cell::Cell::new(None) };
}

/// A uniform draw in `[0, 1)` for [`early_gap`].
fn early_draw() -> f64 {
    #[cfg(test)]
    if let Some(draw) = DRAW.with(std::cell::Cell::get) {
        return draw;
    }
    rand::rng().random()
}

/// Shards of a store that weighs its values (`#[cached(max_bytes = ..)]`). The store splits
/// its bound evenly between its shards and keeps no value heavier than its shard's part, so
/// with the usual 32 a value over a thirty-second of `max_bytes` could never be kept; with 4
/// one may take up to about a quarter (less the store's cold share), at the price of more
/// contention on hits from many threads.
const WEIGHED_SHARDS: usize = 4;

/// Shards of the store: 16 per core where quick_cache's default is 4. A read takes its
/// shard's lock word for an atomic add, so two threads reading keys of one shard bounce that
/// line between their cores; with 2 cores and 1000 warm keys, 32 shards read 2 threads' hits
/// about 20% faster than 8 (`cache_hit_2_threads`). quick_cache still halves the count until
/// each shard holds at least 32 entries, so a small cache is not split finer than that.
fn shards() -> usize {
    static SHARDS: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
        std::thread::available_parallelism().map_or(4, |cores| cores.get().saturating_mul(16))
    });
    *SHARDS
}

/// The counts of the last second before a cache goes, which no lookup will report.
impl<K, V> Drop for Cache<K, V> {
    fn drop(&mut self) {
        self.stats.report(self.name);
    }
}

impl<K: Hash + Eq + Clone, V: Clone + 'static> Cache<K, V> {
    /// An empty cache with these values.
    pub fn new(spec: CacheSpec) -> Self {
        Cache::named(spec, "cache")
    }

    /// An empty cache whose counters reach the `metrics` facade under `site = name`.
    pub fn named(spec: CacheSpec, name: &'static str) -> Self {
        Cache::weighed(spec, name, None)
    }

    /// [`named`](Self::named), weighing values with `weigher` (see
    /// [`Weigh`](super::Weigh)) so that `max_bytes` can hold. Without a weigher, `max_bytes`
    /// is not applied (and said so once, at `warn` level).
    pub fn weighed(spec: CacheSpec, name: &'static str, weigher: Option<AnyWeigher>) -> Self {
        let stats = Arc::new(CacheStats::default());
        super::stats::watch(&stats, name);
        Cache::counting_in(spec, name, weigher, stats)
    }

    /// A cache counting in `stats` (its own, or the one of the cache it is the local tier of).
    fn counting_in(
        spec: CacheSpec,
        name: &'static str,
        weigher: Option<AnyWeigher>,
        stats: Arc<CacheStats>,
    ) -> Self {
        let capacity = spec.max_entries.max(1);
        let store = Store::with_options(
            quick_cache::OptionsBuilder::new()
                .estimated_items_capacity(
                    usize::try_from(capacity).unwrap_or(usize::MAX).min(1 << 24),
                )
                .weight_capacity(capacity)
                .shards(if weigher.is_some() {
                    WEIGHED_SHARDS
                } else {
                    shards()
                })
                .build()
                .expect("both capacities are set"),
            EntryWeight,
            DefaultHashBuilder::default(),
            CountEvictions(Arc::clone(&stats)),
        );
        let cache = Cache {
            store,
            flights: Flights::new(),
            ttl: AtomicU64::new(0),
            jitter_bits: AtomicU64::new(0),
            negative_ttl: AtomicU64::new(0),
            stale_window: AtomicU64::new(0),
            early_bits: AtomicU64::new(0),
            weigher,
            max_bytes: AtomicU64::new(0),
            enabled: AtomicBool::new(true),
            capacity: AtomicU64::new(capacity),
            clock: TtlClock::new(),
            stats,
            name,
            near: OnceLock::new(),
            near_on: AtomicBool::new(false),
            near_epoch: AtomicU64::new(0),
        };
        cache.fit_capacity(capacity);
        cache.configure(spec);
        cache
    }

    /// Bounds the store to `capacity` entries at most. quick_cache gives each shard the
    /// total rounded up to a multiple of the shard count (1000 over 16 shards holds 1008), so
    /// the total is rounded down here instead: a little under `max_entries`, never over.
    /// Under one entry per shard (a reload lowering the bound below the shard count) the
    /// store still keeps one per shard, and [`trim`](Self::trim) removes the rest on insert.
    fn fit_capacity(&self, capacity: u64) {
        let shards = self.store.num_shards() as u64;
        let per_shard = (capacity / shards).max(1);
        self.store.set_capacity(per_shard * shards);
        self.trim(capacity);
    }

    /// Removes entries beyond `capacity` (only needed below one entry per shard).
    fn trim(&self, capacity: u64) {
        let excess = (self.store.len() as u64).saturating_sub(capacity);
        if excess == 0 {
            return;
        }
        let keys: Vec<K> = self
            .store
            .iter()
            .take(usize::try_from(excess).unwrap_or(usize::MAX))
            .map(|(key, _)| key)
            .collect();
        for key in keys {
            if self.store.remove(&key).is_some() {
                self.stats.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Replaces the values. Disabling clears the cache; a smaller `max_entries` evicts down to it.
    pub fn configure(&self, spec: CacheSpec) {
        self.ttl.store(nanos(spec.ttl), Ordering::Relaxed);
        let jitter = if spec.ttl_jitter.is_nan() {
            0.0
        } else {
            spec.ttl_jitter.clamp(0.0, 1.0)
        };
        self.jitter_bits.store(jitter.to_bits(), Ordering::Relaxed);
        self.negative_ttl
            .store(spec.negative_ttl.map_or(0, nanos), Ordering::Relaxed);
        self.stale_window.store(
            spec.stale_while_revalidate.map_or(0, nanos),
            Ordering::Relaxed,
        );
        // NaN and negatives (a spec built in code, unchecked) are off.
        let early = if spec.early_refresh > 0.0 {
            spec.early_refresh.min(100.0)
        } else {
            0.0
        };
        self.early_bits.store(early.to_bits(), Ordering::Relaxed);
        let max_bytes = spec.max_bytes.unwrap_or(0);
        let previous = self.max_bytes.swap(max_bytes, Ordering::Relaxed);
        // Once per value a policy gives, not at every reload that leaves it as it was.
        if max_bytes > 0 && self.weigher.is_none() && previous != max_bytes {
            tracing::warn!(
                target: "resilience::cache",
                site = self.name,
                max_bytes,
                "`max_bytes` is not applied: this cache's values have no weigher (give the \
                 function `#[cached(max_bytes = ..)]`, whose value type implements \
                 `resilience::cache::Weigh`); `max_entries` still holds"
            );
        }
        let capacity = spec.max_entries.max(1);
        if self.capacity.swap(capacity, Ordering::Relaxed) != capacity {
            self.fit_capacity(capacity);
        }
        let was_enabled = self.enabled.swap(spec.enabled, Ordering::AcqRel);
        if was_enabled && !spec.enabled {
            self.store.clear();
        }
        self.configure_near(spec);
    }

    /// Makes, reconfigures or turns off the local tier as `spec.local` says. Its copies live
    /// for the tier's `ttl`, at most the cache's, and its failures for `negative_ttl`, at most
    /// that; it has no jitter, stale window or early refresh of its own (Redis's entry has).
    fn configure_near(&self, spec: CacheSpec) {
        let Some(tier) = spec.local.filter(|_| spec.enabled) else {
            if self.near_on.swap(false, Ordering::AcqRel) {
                if let Some(near) = self.near.get() {
                    near.invalidate_all();
                }
            }
            return;
        };
        let ttl = tier.ttl.map_or(spec.ttl, |ttl| ttl.min(spec.ttl));
        let near_spec = CacheSpec::new(ttl)
            .max_entries(tier.max_entries.unwrap_or(spec.max_entries))
            .negative_ttl(spec.negative_ttl.map(|negative| negative.min(ttl)));
        let near = self.near.get_or_init(|| {
            Box::new(Cache::counting_in(
                near_spec,
                self.name,
                None,
                Arc::clone(&self.stats),
            ))
        });
        near.configure(near_spec);
        self.near_on.store(true, Ordering::Release);
    }

    /// The local tier in front of a shared cache, while a policy sets one.
    #[inline]
    pub(crate) fn near(&self) -> Option<&Cache<K, V>> {
        if !self.near_on.load(Ordering::Relaxed) {
            return None;
        }
        self.near.get().map(|near| &**near)
    }

    /// How many invalidation messages (and resubscriptions) reached this cache: a value read
    /// from the shared cache is kept in the local tier only if this did not move while it was
    /// read, so a message that overtakes the read's answer is not undone by it.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn near_epoch(&self) -> u64 {
        self.near_epoch.load(Ordering::Acquire)
    }

    /// Drops the local tier's copy of `key` (of every key: `None`) for an invalidation
    /// message, and moves [`near_epoch`](Self::near_epoch) so that no read under way keeps a
    /// copy from before it.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn drop_near(&self, key: Option<&K>) {
        self.near_epoch.fetch_add(1, Ordering::AcqRel);
        // With the stale copies kept for the callers of a refresh: those are copies too.
        match key {
            Some(key) => self.invalidate(key),
            None => self.invalidate_all(),
        }
    }

    /// A fresh value of this (local) tier, counted as a hit; nothing is counted without one
    /// (the shared tier behind it counts the lookup).
    #[inline]
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn hit(&self, key: &K) -> Option<V> {
        let entry = self.store.get(key)?;
        let now = self.clock.now();
        if now < entry.fresh_until() {
            self.stats.report_due(now, self.name);
            self.stats.count(Lookups::Hit);
            return Some(entry.value);
        }
        self.store.remove_if(key, |entry| entry.usable_until <= now);
        None
    }

    /// The `max_bytes` in force, if any.
    #[cfg_attr(not(feature = "reqwest-middleware"), allow(dead_code))]
    pub(crate) fn max_bytes(&self) -> Option<u64> {
        Some(self.max_bytes.load(Ordering::Relaxed)).filter(|bytes| *bytes > 0)
    }

    /// Whether the cache is in use (a disabled cache bypasses to the function).
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Gives the `metrics` facade the counts since the last report (see [`CacheStats`]).
    pub(crate) fn report(&self) {
        self.stats.report(self.name);
    }

    /// The counters of this cache.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The number of entries stored now.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Removes one key (from the local tier too, if there is one).
    pub fn invalidate(&self, key: &K) {
        self.store.remove(key);
        if let Some(near) = self.near.get() {
            near.store.remove(key);
        }
    }

    /// Removes every key (from the local tier too, if there is one).
    pub fn invalidate_all(&self) {
        self.store.clear();
        if let Some(near) = self.near.get() {
            near.store.clear();
        }
    }

    /// Looks `key` up, counting a hit, a stale serve or a miss.
    #[inline]
    pub fn lookup(&self, key: &K) -> Lookup<V> {
        if !self.enabled.load(Ordering::Relaxed) {
            return Lookup::Miss;
        }
        let Some(entry) = self.store.get(key) else {
            self.stats.count(Lookups::Miss);
            return Lookup::Miss;
        };
        let now = self.clock.now();
        self.stats.report_due(now, self.name);
        if now < entry.fresh_until() {
            self.stats.count(Lookups::Hit);
            Lookup::Fresh(entry.value)
        } else if now < entry.usable_until {
            self.stats.count(Lookups::Stale);
            Lookup::Stale(entry.value)
        } else {
            self.store.remove_if(key, |entry| entry.usable_until <= now);
            self.stats.count(Lookups::Miss);
            Lookup::Miss
        }
    }

    /// The fresh value for `key`, without counting a lookup.
    fn fresh(&self, key: &K) -> Option<V> {
        let entry = self.store.peek(key)?;
        (self.clock.now() < entry.fresh_until()).then_some(entry.value)
    }

    /// Stores `value` for `key` as a success or a failure. A failure is only stored when
    /// `negative_ttl` is set; a disabled cache stores nothing. Returns whether it was stored.
    pub fn insert(&self, key: K, value: V, freshness: Freshness) -> bool {
        self.insert_loaded(key, value, freshness, 0)
    }

    /// [`insert`](Self::insert) of a value whose load took `took` nanoseconds: with
    /// `early_refresh`, a success stops being fresh a random stretch before it expires (see
    /// [`early_gap`]) and stays servable until then, so the first caller past that point
    /// refreshes it as it would a stale one while everyone else is served.
    pub(crate) fn insert_loaded(&self, key: K, value: V, freshness: Freshness, took: u64) -> bool {
        self.insert_within(key, value, freshness, took, u64::MAX)
    }

    /// [`insert_loaded`](Self::insert_loaded) of a value that lives at most `within`
    /// nanoseconds (a copy of a shared entry: no longer than the entry itself).
    pub(crate) fn insert_within(
        &self,
        key: K,
        value: V,
        freshness: Freshness,
        took: u64,
        within: u64,
    ) -> bool {
        if !self.enabled.load(Ordering::Relaxed) || within == 0 {
            return false;
        }
        let ttl = match freshness {
            Freshness::Positive => self.jittered_ttl(),
            Freshness::Negative => match self.negative_ttl.load(Ordering::Relaxed) {
                0 => return false,
                ttl => ttl,
            },
        }
        .min(within);
        let now = self.clock.now();
        let expiry = now.saturating_add(ttl);
        let usable_until = match freshness {
            Freshness::Positive => expiry.saturating_add(self.stale_window.load(Ordering::Relaxed)),
            Freshness::Negative => expiry,
        };
        let beta = f64::from_bits(self.early_bits.load(Ordering::Relaxed));
        let fresh_until = if freshness == Freshness::Positive && beta > 0.0 && took > 0 {
            expiry.saturating_sub(early_gap(took, beta, early_draw()).min(ttl))
        } else {
            expiry
        };
        let weight = self.weight_of(&value);
        let entry = Entry::new(value, fresh_until, usable_until, weight);
        let mut inserting = Inserting(Some(key.clone()));
        self.store.insert_with_lifecycle(key, entry, &mut inserting);
        let capacity = self.capacity.load(Ordering::Relaxed);
        if capacity < self.store.num_shards() as u64 {
            self.trim(capacity);
        }
        true
    }

    /// The weight `value` is stored with. The store holds one bound, on the sum of weights,
    /// set to `max_entries`; under `max_bytes` a value of `b` bytes weighs
    /// `ceil(b * max_entries / max_bytes)` (at least 1), so that a full store holds at most
    /// `max_entries` values (each weighs 1 or more) and at most `max_bytes` bytes (the weights
    /// are the bytes in units of `max_bytes / max_entries`), whichever binds first.
    fn weight_of(&self, value: &V) -> u64 {
        let max_bytes = self.max_bytes.load(Ordering::Relaxed);
        let Some(weigh) = self.weigher.filter(|_| max_bytes > 0) else {
            return 1;
        };
        let bytes = u128::from(weigh(value));
        let entries = u128::from(self.capacity.load(Ordering::Relaxed));
        let weight = (bytes * entries).div_ceil(u128::from(max_bytes));
        u64::try_from(weight).unwrap_or(u64::MAX).max(1)
    }

    /// For a backend that keeps the entries elsewhere: how long a value stored now lives
    /// there (nanoseconds; 0: not stored), and the life left below which it is no longer
    /// fresh but served while one caller refreshes it (0: fresh until it expires). A success
    /// lives its jittered `ttl` plus the `stale_while_revalidate` window, and stops being
    /// fresh that window before it expires, or earlier under `early_refresh` (by a gap drawn
    /// as in memory, from `took`, how long its load took).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn shared_life(&self, freshness: Freshness, took: u64) -> (u64, u64) {
        match freshness {
            Freshness::Positive => {
                let ttl = self.jittered_ttl();
                if ttl == 0 {
                    return (0, 0);
                }
                let stale = self.stale_window.load(Ordering::Relaxed);
                let beta = f64::from_bits(self.early_bits.load(Ordering::Relaxed));
                let gap = if beta > 0.0 && took > 0 {
                    early_gap(took, beta, early_draw()).min(ttl)
                } else {
                    0
                };
                (ttl.saturating_add(stale), stale.saturating_add(gap))
            }
            Freshness::Negative => (self.negative_ttl.load(Ordering::Relaxed), 0),
        }
    }

    /// Whether a value may be served after it stops being fresh (`stale_while_revalidate`
    /// or `early_refresh`): a backend then reads how long its entries have left.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn refreshes(&self) -> bool {
        self.stale_window.load(Ordering::Relaxed) > 0
            || f64::from_bits(self.early_bits.load(Ordering::Relaxed)) > 0.0
    }

    /// Keeps `value`, read stale from a backend with `usable_for` nanoseconds of life left,
    /// so that the callers arriving while one of them refreshes it are served it at once
    /// (see [`stale_while_loading`](Self::stale_while_loading)).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn keep_stale(&self, key: K, value: V, usable_for: u64) {
        if !self.enabled.load(Ordering::Relaxed) || usable_for == 0 {
            return;
        }
        let now = self.clock.now();
        let weight = self.weight_of(&value);
        let entry = Entry::new(value, now, now.saturating_add(usable_for), weight);
        let mut inserting = Inserting(Some(key.clone()));
        self.store.insert_with_lifecycle(key, entry, &mut inserting);
    }

    /// Drops what [`keep_stale`](Self::keep_stale) kept for `key` (its refresh ended).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn forget_stale(&self, key: &K) {
        self.store.remove(key);
    }

    /// A value kept by [`keep_stale`](Self::keep_stale) (or any usable one) while a load of
    /// `key` runs in this process: served at once, counted as stale.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn stale_while_loading(&self, key: &K) -> Option<V> {
        if !self.flights.is_loading(key) {
            return None;
        }
        let entry = self.store.peek(key)?;
        (self.clock.now() < entry.usable_until).then(|| {
            self.stats.count(Lookups::Stale);
            entry.value
        })
    }

    /// Counts a stale value served from a backend.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn count_stale(&self) {
        self.stats.count(Lookups::Stale);
    }

    /// Counts a lookup made elsewhere (a backend's hit or miss).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn count_lookup(&self, hit: bool) {
        self.stats
            .count(if hit { Lookups::Hit } else { Lookups::Miss });
    }

    /// Runs `load` once however many callers of this process ask for `key` together (the
    /// single-flight of [`get_or_load`](Self::get_or_load) without this cache's own store: a
    /// backend keeps the entries). Waiters get the leader's shared value, or its failure as
    /// `handover` copies it; one that cannot be copied has each waiter load at once, with
    /// `load(true)` (alone: not through a backend's lock). When the leader was cancelled or
    /// panicked, one waiter loads in its turn, with `load(false)` as any leader.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) async fn deduplicated<R, F, Fut>(
        &self,
        key: &K,
        restore: impl Fn(V) -> R,
        handover: Handover<R>,
        load: F,
    ) -> R
    where
        F: FnOnce(bool) -> Fut,
        Fut: Future<Output = (R, Option<V>)>,
    {
        loop {
            match self.flights.join(key) {
                Role::Lead(leader) => {
                    let (result, shared) = load(false).await;
                    Self::land(leader, handover, &result, shared);
                    return result;
                }
                Role::Follow(flight) => match flight.wait().await {
                    Handed::Value(value) => return restore(value),
                    Handed::Failure(failure) => {
                        if let Some(result) = (handover.unshare)(&failure) {
                            return result;
                        }
                        return load(true).await.0;
                    }
                    Handed::LoadAlone => return load(true).await.0,
                    Handed::Abandoned => {}
                },
            }
        }
    }

    fn jittered_ttl(&self) -> u64 {
        let ttl = self.ttl.load(Ordering::Relaxed);
        let jitter = f64::from_bits(self.jitter_bits.load(Ordering::Relaxed));
        if jitter <= 0.0 || ttl == 0 {
            return ttl;
        }
        let low = (ttl as f64 * (1.0 - jitter)) as u64;
        rand::rng().random_range(low..=ttl)
    }

    /// The value for `key`: cached, or loaded once however many callers miss together.
    ///
    /// `load` runs the function and returns the caller's result with, when it should be
    /// stored, the value to store and whether it is a success or a failure; `restore` turns a
    /// stored value back into a result. Waiters get the leader's stored value. When the
    /// leader's result is not stored (an error without `negative_ttl`), this method cannot
    /// copy it (`R` is any type), so every waiter runs its own load at once; `#[cached]` hands
    /// a copyable failure itself to the waiters (see [`Cacheable::share`]). When the leader's
    /// load is cancelled or panics, one waiter loads in its turn, so nobody is left waiting
    /// and a panic reaches only the caller whose load panicked.
    ///
    /// A stale value (inside `stale_while_revalidate`) is served to every caller while one
    /// refresh runs: the first caller to find it stale refreshes (and gets the fresh value),
    /// the others get the stale one at once. A disabled cache calls `load` every time.
    pub async fn get_or_load<R, F, Fut>(&self, key: &K, restore: impl Fn(V) -> R, load: F) -> R
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = (R, Option<(V, Freshness)>)>,
    {
        // The hit path first: `lookup` finds a disabled cache empty.
        let found = self.lookup(key);
        if let Lookup::Fresh(value) = found {
            return restore(value);
        }
        self.load_after(found, key, restore, Handover::none(), load)
            .await
    }

    /// [`get_or_load`](Self::get_or_load) after its first lookup found `found` (not fresh),
    /// handing a failure to the waiters as `handover` says.
    pub(crate) async fn load_after<R, F, Fut>(
        &self,
        mut found: Lookup<V>,
        key: &K,
        restore: impl Fn(V) -> R,
        handover: Handover<R>,
        load: F,
    ) -> R
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = (R, Option<(V, Freshness)>)>,
    {
        if !self.is_enabled() {
            return load().await.0;
        }
        loop {
            let stale = match found {
                Lookup::Fresh(value) => return restore(value),
                Lookup::Stale(value) if self.flights.is_loading(key) => return restore(value),
                Lookup::Stale(value) => Some(value),
                Lookup::Miss => None,
            };
            match self.flights.join(key) {
                Role::Lead(leader) => {
                    // A load that finished between the lookup above and `join` stored its
                    // value before leaving the flight: take that value, do not load again.
                    if let Some(value) = self.fresh(key) {
                        leader.finish(value.clone());
                        return restore(value);
                    }
                    let (result, stored) = self.load_and_store(key, load).await;
                    Self::land(leader, handover, &result, stored);
                    return result;
                }
                Role::Follow(flight) => {
                    if let Some(value) = stale {
                        return restore(value);
                    }
                    match flight.wait().await {
                        Handed::Value(value) => return restore(value),
                        Handed::Failure(failure) => {
                            if let Some(result) = (handover.unshare)(&failure) {
                                return result;
                            }
                            return self.load_and_store(key, load).await.0;
                        }
                        // A failure that cannot be copied: this waiter's own load, shared
                        // with nobody (the other waiters run theirs at the same time).
                        Handed::LoadAlone => return self.load_and_store(key, load).await.0,
                        // Cancelled, or panicked: look again (one waiter takes over).
                        Handed::Abandoned => found = self.lookup(key),
                    }
                }
            }
        }
    }

    /// Ends a leader's flight with its load's outcome: the stored value for every waiter, or
    /// the failure as `handover` copies it. (A leader dropped unended, on a cancel or a panic,
    /// hands the load to one waiter instead.)
    fn land<R>(leader: Leader<'_, K, V>, handover: Handover<R>, result: &R, stored: Option<V>) {
        match stored {
            Some(value) => leader.finish(value),
            None => leader.fail((handover.share)(result)),
        }
    }

    /// Runs one load, counts it (and its failure), stores what it says to store; the result
    /// and the stored value.
    async fn load_and_store<R, F, Fut>(&self, key: &K, load: F) -> (R, Option<V>)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = (R, Option<(V, Freshness)>)>,
    {
        self.stats.loads.fetch_add(1, Ordering::Relaxed);
        let started = self.clock.now();
        let (result, store) = load().await;
        // A miss finds no entry, so its lookup read no time: a cache whose loads all fail
        // would otherwise reach the `metrics` facade only when read.
        let done = self.clock.now();
        if self.stats.times_loads() {
            self.stats.loaded(self.name, done.saturating_sub(started));
        }
        self.stats.report_due(done, self.name);
        let Some((value, freshness)) = store else {
            self.stats.load_errors.fetch_add(1, Ordering::Relaxed);
            return (result, None);
        };
        if freshness == Freshness::Negative {
            self.stats.load_errors.fetch_add(1, Ordering::Relaxed);
        }
        let took = done.saturating_sub(started);
        self.insert_loaded(key.clone(), value.clone(), freshness, took);
        (result, Some(value))
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// [`get_or_load`](Self::get_or_load), with stale-while-revalidate refreshing in the
    /// background: the caller that finds an entry stale is served the stale value at once,
    /// like everyone else, while a spawned tokio task runs the one refresh. This needs a
    /// cache that lives for the whole process and a load that can move to another thread;
    /// outside a tokio runtime the refresh runs inline, as in `get_or_load`.
    ///
    /// The spawned refresh is an ordinary leader: if it panics or its result is not stored,
    /// the next caller to find the entry stale (or missing) loads in its turn.
    pub async fn get_or_refresh<R, F, Fut>(
        &'static self,
        key: &K,
        restore: impl Fn(V) -> R,
        load: F,
    ) -> R
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = (R, Option<(V, Freshness)>)> + Send + 'static,
        R: Send + 'static,
    {
        self.refresh_or_load(key, restore, Handover::none(), load)
            .await
    }

    /// [`get_or_refresh`](Self::get_or_refresh), handing a failure to the waiters of a load
    /// as `handover` says.
    pub(crate) async fn refresh_or_load<R, F, Fut>(
        &'static self,
        key: &K,
        restore: impl Fn(V) -> R,
        handover: Handover<R>,
        load: F,
    ) -> R
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = (R, Option<(V, Freshness)>)> + Send + 'static,
        R: Send + 'static,
    {
        let found = self.lookup(key);
        match found {
            Lookup::Fresh(value) => restore(value),
            Lookup::Stale(value) if self.is_enabled() => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return self
                        .load_after(Lookup::Stale(value), key, restore, handover, load)
                        .await;
                };
                if let Role::Lead(leader) = self.flights.join(key) {
                    // A refresh that stored between the lookup and `join`: nothing to do.
                    if let Some(fresh) = self.fresh(key) {
                        leader.finish(fresh.clone());
                        return restore(fresh);
                    }
                    let key = key.clone();
                    runtime.spawn(async move {
                        // The result is dropped unused: the refresh's caller was served already.
                        let (result, stored) = self.load_and_store(&key, load).await;
                        Self::land(leader, handover, &result, stored);
                    });
                }
                restore(value)
            }
            found => self.load_after(found, key, restore, handover, load).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    const S: Duration = Duration::from_secs(1);

    fn ok(value: &str) -> (Result<String, String>, Option<(String, Freshness)>) {
        (
            Ok(value.to_string()),
            Some((value.to_string(), Freshness::Positive)),
        )
    }

    fn restore(value: String) -> Result<String, String> {
        Ok(value)
    }

    #[tokio::test(start_paused = true)]
    async fn expires_exactly_at_ttl() {
        let cache: Cache<u32, String> = Cache::new(CacheSpec::new(60 * S));
        assert!(cache.insert(1, "one".into(), Freshness::Positive));
        tokio::time::advance(60 * S - Duration::from_nanos(1)).await;
        assert_eq!(cache.lookup(&1), Lookup::Fresh("one".into()));
        tokio::time::advance(Duration::from_nanos(1)).await;
        assert_eq!(cache.lookup(&1), Lookup::Miss);
        assert_eq!(cache.len(), 0, "the expired entry is removed on lookup");
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_spreads_expiry_within_bounds() {
        let cache: Cache<u32, u32> = Cache::new(CacheSpec::new(100 * S).ttl_jitter(0.5));
        for key in 0..1000 {
            cache.insert(key, key, Freshness::Positive);
        }
        tokio::time::advance(50 * S - Duration::from_nanos(1)).await;
        assert!(
            (0..1000).all(|k| cache.lookup(&k) == Lookup::Fresh(k)),
            "none before ttl*(1-j)"
        );
        tokio::time::advance(25 * S).await;
        let fresh = (0..1000)
            .filter(|k| cache.lookup(k) != Lookup::Miss)
            .count();
        assert!(
            (200..800).contains(&fresh),
            "about half expired by 75s, found {fresh} fresh"
        );
        tokio::time::advance(25 * S).await;
        assert!(
            (0..1000).all(|k| cache.lookup(&k) == Lookup::Miss),
            "all gone at ttl"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_thousand_concurrent_misses_load_once() {
        let cache = Arc::new(Cache::<u32, String>::new(CacheSpec::new(60 * S)));
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
                tokio::spawn(async move {
                    cache
                        .get_or_load(&7, restore, || async {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            ok("seven")
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok("seven".to_string()));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        let counts = cache.stats().counts();
        assert_eq!((counts.loads, counts.load_errors), (1, 0));
    }

    /// Starts a leader whose load never finishes, and `waiters` callers behind it.
    async fn stuck_leader_and_waiters(
        cache: &Arc<Cache<u32, String>>,
        loads: &Arc<AtomicUsize>,
        waiters: usize,
        panic: bool,
    ) -> (
        tokio::task::JoinHandle<Result<String, String>>,
        Vec<tokio::task::JoinHandle<Result<String, String>>>,
    ) {
        let leader = {
            let (cache, loads) = (Arc::clone(cache), Arc::clone(loads));
            tokio::spawn(async move {
                cache
                    .get_or_load(&1, restore, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        if panic {
                            panic!("the leader's load panics");
                        }
                        std::future::pending::<()>().await;
                        ok("never")
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        let followers = (0..waiters)
            .map(|_| {
                let (cache, loads) = (Arc::clone(cache), Arc::clone(loads));
                tokio::spawn(async move {
                    cache
                        .get_or_load(&1, restore, || async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            ok("taken over")
                        })
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1)).await;
        (leader, followers)
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_leader_is_taken_over_once() {
        let cache = Arc::new(Cache::<u32, String>::new(CacheSpec::new(60 * S)));
        let loads = Arc::new(AtomicUsize::new(0));
        let (leader, followers) = stuck_leader_and_waiters(&cache, &loads, 50, false).await;
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        for follower in followers {
            assert_eq!(follower.await.unwrap(), Ok("taken over".to_string()));
        }
        assert_eq!(
            loads.load(Ordering::SeqCst),
            2,
            "the leader's load, then one waiter's"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_leader_panics_alone_and_is_taken_over_once() {
        let cache = Arc::new(Cache::<u32, String>::new(CacheSpec::new(60 * S)));
        let loads = Arc::new(AtomicUsize::new(0));
        let (leader, followers) = stuck_leader_and_waiters(&cache, &loads, 50, true).await;
        assert!(leader.await.unwrap_err().is_panic());
        for follower in followers {
            assert_eq!(follower.await.unwrap(), Ok("taken over".to_string()));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_cached_only_with_negative_ttl() {
        let failing = || async {
            (
                Err::<String, String>("down".into()),
                Some(("down".to_string(), Freshness::Negative)),
            )
        };
        let plain: Cache<u32, String> = Cache::new(CacheSpec::new(60 * S));
        assert_eq!(
            plain.get_or_load(&1, restore, failing).await,
            Err("down".into())
        );
        assert_eq!(plain.lookup(&1), Lookup::Miss);

        let negative: Cache<u32, String> =
            Cache::new(CacheSpec::new(60 * S).negative_ttl(Some(5 * S)));
        let _ = negative.get_or_load(&1, restore, failing).await;
        assert_eq!(negative.lookup(&1), Lookup::Fresh("down".into()));
        tokio::time::advance(5 * S).await;
        assert_eq!(negative.lookup(&1), Lookup::Miss);
        assert_eq!(negative.stats().counts().load_errors, 1);
    }

    #[test]
    fn the_early_gap_is_the_load_time_by_beta_by_an_exponential_draw() {
        let took = 2_000_000_000; // a load of 2 s
        assert_eq!(early_gap(took, 1.0, 0.0), 0);
        // the median draw: ln 2 of the load time
        assert_eq!(early_gap(took, 1.0, 0.5), 1_386_294_361);
        assert_eq!(early_gap(took, 2.0, 0.5), 2_772_588_722);
        // a draw of 1 - 1e-9 is a tail of about 20.7 load times; never infinite
        assert_eq!(early_gap(took, 1.0, 1.0 - 1e-9), 41_446_531_730);
        assert_eq!(early_gap(u64::MAX, 100.0, 0.999), u64::MAX);
        assert_eq!(early_gap(took, f64::NAN, 0.5), 0);
    }

    /// A hot key under `early_refresh`: the first caller past the drawn point refreshes it
    /// before it expires, while every other caller is served at once, and only once.
    #[tokio::test(start_paused = true)]
    async fn early_refresh_reloads_a_hot_key_before_it_expires() {
        // the median draw: the value stops being fresh ln 2 load times before it expires
        DRAW.with(|draw| draw.set(Some(0.5)));
        let spec = CacheSpec::new(60 * S).early_refresh(1.0);
        let cache = Arc::new(Cache::<u32, String>::new(spec));
        let loads = Arc::new(AtomicUsize::new(0));
        let load = |value: &'static str, took: Duration| {
            let loads = Arc::clone(&loads);
            move || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(took).await;
                ok(value)
            }
        };
        let first = cache.get_or_load(&1, restore, load("v1", 10 * S)).await;
        assert_eq!(first, Ok("v1".to_string()));
        // it expires 60 s after its 10 s load finished, and is fresh until 6.93 s before
        // (6,931.5 ms, kept to the millisecond: 6,932)
        tokio::time::advance(60 * S - Duration::from_millis(6_933)).await;
        assert_eq!(cache.lookup(&1), Lookup::Fresh("v1".into()));
        tokio::time::advance(Duration::from_millis(2)).await;
        let refresher = {
            let (cache, load) = (Arc::clone(&cache), load("v2", S));
            tokio::spawn(async move { cache.get_or_load(&1, restore, load).await })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        // the refresh runs; everyone else is served the current value at once
        for _ in 0..5 {
            let served = cache.get_or_load(&1, restore, load("v3", S)).await;
            assert_eq!(served, Ok("v1".to_string()));
        }
        assert_eq!(refresher.await.unwrap(), Ok("v2".to_string()));
        assert_eq!(cache.lookup(&1), Lookup::Fresh("v2".into()));
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_shared_entry_lives_its_stale_window_longer_and_is_refreshed_below_it() {
        DRAW.with(|draw| draw.set(Some(0.5)));
        let spec = CacheSpec::new(60 * S)
            .stale_while_revalidate(Some(30 * S))
            .negative_ttl(Some(5 * S));
        let cache = Cache::<u32, String>::new(spec);
        assert_eq!(
            cache.shared_life(Freshness::Positive, 2_000_000_000),
            (90_000_000_000, 30_000_000_000),
            "without early refresh, fresh until the window"
        );
        assert_eq!(
            cache.shared_life(Freshness::Negative, 2_000_000_000),
            (5_000_000_000, 0)
        );
        cache.configure(spec.early_refresh(1.0));
        // the median draw: ln 2 of the 2 s load before the window
        assert_eq!(
            cache.shared_life(Freshness::Positive, 2_000_000_000),
            (90_000_000_000, 31_386_294_361)
        );
        assert!(cache.refreshes());
        cache.configure(CacheSpec::new(60 * S));
        assert!(!cache.refreshes());
        assert_eq!(
            cache.shared_life(Freshness::Positive, 2_000_000_000),
            (60_000_000_000, 0)
        );
    }

    /// `local`: a tier of its own bound and ttl (at most the cache's), whose hits count as
    /// the cache's hits and whose misses count nothing; off again when the policy drops it.
    #[tokio::test(start_paused = true)]
    async fn the_local_tier_has_its_own_bound_and_ttl_and_counts_only_its_hits() {
        use resilience_config::cache::LocalTier;
        let cache = Cache::<u32, String>::new(CacheSpec::new(60 * S));
        assert!(cache.near().is_none(), "no tier without `local`");
        let spec = CacheSpec::new(60 * S).local(Some(LocalTier::new(10, 5 * S)));
        cache.configure(spec);
        let near = cache.near().expect("the tier");
        for key in 0..100 {
            near.insert(key, key.to_string(), Freshness::Positive);
        }
        assert!(near.len() <= 10, "{} copies", near.len());
        near.insert(1000, "kept".into(), Freshness::Positive);
        assert_eq!(near.hit(&1000), Some("kept".into()));
        assert_eq!(near.hit(&2000), None);
        let counts = cache.stats().counts();
        assert_eq!((counts.hits, counts.misses), (1, 0));
        tokio::time::advance(5 * S).await;
        assert_eq!(near.hit(&1000), None, "the tier's ttl, not the cache's");
        // A copy no longer than its entry has left.
        near.insert_within(7, "short".into(), Freshness::Positive, 0, 1_000_000_000);
        tokio::time::advance(S).await;
        assert_eq!(near.hit(&7), None);
        // A tier's ttl above the cache's is the cache's.
        cache.configure(CacheSpec::new(2 * S).local(Some(LocalTier::new(10, 60 * S))));
        let near = cache.near().expect("the tier");
        near.insert(8, "eight".into(), Freshness::Positive);
        tokio::time::advance(2 * S).await;
        assert_eq!(near.hit(&8), None);
        // Invalidation reaches the tier; dropping `local` turns it off and empties it.
        near.insert(9, "nine".into(), Freshness::Positive);
        cache.invalidate(&9);
        assert_eq!(near.hit(&9), None);
        near.insert(9, "nine".into(), Freshness::Positive);
        cache.configure(CacheSpec::new(2 * S));
        assert!(cache.near().is_none());
        assert_eq!(near.len(), 0);
    }

    #[test]
    fn max_bytes_holds_beside_max_entries() {
        let spec = CacheSpec::new(60 * S)
            .max_entries(1000)
            .max_bytes(Some(1024));
        let weigher: AnyWeigher = super::super::weigh::weigh_any::<String>;
        let cache = Cache::<u32, String>::weighed(spec, "weighed", Some(weigher));
        for key in 0..200 {
            // 124 bytes each: a weight of ceil(124 * 1000 / 1024) = 122 of 1000
            cache.insert(key, String::with_capacity(100), Freshness::Positive);
        }
        let kept = cache.len();
        assert!((1..=8).contains(&kept), "{kept} kept");
        // without a weigher the bound is entries alone
        let cache = Cache::<u32, String>::weighed(spec, "unweighed", None);
        for key in 0..200 {
            cache.insert(key, String::with_capacity(100), Freshness::Positive);
        }
        assert_eq!(cache.len(), 200);
    }

    #[tokio::test(start_paused = true)]
    async fn without_early_refresh_a_value_is_fresh_until_it_expires() {
        let cache = Cache::<u32, String>::new(CacheSpec::new(60 * S));
        let slow = || async {
            tokio::time::sleep(10 * S).await;
            ok("v1")
        };
        let _ = cache.get_or_load(&1, restore, slow).await;
        tokio::time::advance(60 * S - Duration::from_nanos(1)).await;
        assert_eq!(cache.lookup(&1), Lookup::Fresh("v1".into()));
        tokio::time::advance(Duration::from_nanos(1)).await;
        assert_eq!(cache.lookup(&1), Lookup::Miss);
    }

    #[tokio::test(start_paused = true)]
    async fn stale_is_served_while_one_refresh_runs() {
        let spec = CacheSpec::new(10 * S).stale_while_revalidate(Some(30 * S));
        let cache = Arc::new(Cache::<u32, String>::new(spec));
        cache.insert(1, "old".into(), Freshness::Positive);
        tokio::time::advance(15 * S).await;
        let loads = Arc::new(AtomicUsize::new(0));
        let refresher = {
            let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
            tokio::spawn(async move {
                cache
                    .get_or_load(&1, restore, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(S).await;
                        ok("new")
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        for _ in 0..10 {
            let served = cache
                .get_or_load(&1, restore, || async { ok("second refresh") })
                .await;
            assert_eq!(
                served,
                Ok("old".to_string()),
                "stale while the refresh runs"
            );
        }
        assert_eq!(refresher.await.unwrap(), Ok("new".to_string()));
        assert_eq!(cache.lookup(&1), Lookup::Fresh("new".into()));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(cache.stats().counts().stale, 11);
        tokio::time::advance(40 * S).await;
        assert_eq!(cache.lookup(&1), Lookup::Miss, "past the stale window");
    }

    #[tokio::test(start_paused = true)]
    async fn a_background_refresh_that_panics_is_taken_over_by_the_next_stale_caller() {
        let spec = CacheSpec::new(10 * S).stale_while_revalidate(Some(30 * S));
        let cache: &'static Cache<u32, String> = Box::leak(Box::new(Cache::new(spec)));
        cache.insert(1, "old".into(), Freshness::Positive);
        tokio::time::advance(15 * S).await;
        let served = cache
            .get_or_refresh(&1, restore, || async {
                tokio::time::sleep(S).await;
                panic!("the refresh fails")
            })
            .await;
        assert_eq!(served, Ok("old".to_string()), "served stale at once");
        let again = cache
            .get_or_refresh(&1, restore, || async { ok("unused") })
            .await;
        assert_eq!(again, Ok("old".to_string()), "one refresh at a time");
        tokio::task::yield_now().await;
        assert!(cache.flights.is_loading(&1), "the refresh runs");
        tokio::time::advance(S).await;
        tokio::task::yield_now().await;
        assert!(
            !cache.flights.is_loading(&1),
            "the panic released the flight"
        );
        let served = cache
            .get_or_refresh(&1, restore, || async { ok("new") })
            .await;
        assert_eq!(served, Ok("old".to_string()));
        tokio::task::yield_now().await;
        assert_eq!(cache.lookup(&1), Lookup::Fresh("new".into()));
        assert_eq!(cache.stats().counts().loads, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn invalidation_and_the_switch() {
        let cache: Cache<u32, String> = Cache::new(CacheSpec::new(60 * S));
        cache.insert(1, "one".into(), Freshness::Positive);
        cache.insert(2, "two".into(), Freshness::Positive);
        cache.invalidate(&1);
        assert_eq!(cache.lookup(&1), Lookup::Miss);
        assert_eq!(cache.lookup(&2), Lookup::Fresh("two".into()));
        cache.invalidate_all();
        assert!(cache.is_empty());

        cache.insert(3, "three".into(), Freshness::Positive);
        cache.configure(CacheSpec::new(60 * S).enabled(false));
        assert!(cache.is_empty(), "disabling clears");
        let calls = AtomicUsize::new(0);
        for _ in 0..3 {
            let _ = cache
                .get_or_load(&3, restore, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    ok("fresh")
                })
                .await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3, "bypassed while disabled");
        assert!(cache.is_empty());
        cache.configure(CacheSpec::new(60 * S));
        let _ = cache
            .get_or_load(&3, restore, || async { ok("fresh") })
            .await;
        assert_eq!(cache.lookup(&3), Lookup::Fresh("fresh".into()));
    }

    #[tokio::test(start_paused = true)]
    async fn replacing_an_entry_is_not_an_eviction() {
        let spec = CacheSpec::new(10 * S).stale_while_revalidate(Some(30 * S));
        let cache: Cache<u32, u32> = Cache::new(spec.max_entries(2));
        cache.insert(1, 1, Freshness::Positive);
        cache.insert(1, 2, Freshness::Positive);
        tokio::time::advance(15 * S).await;
        let refreshed = cache
            .get_or_load(&1, Some, || async {
                (Some(3), Some((3, Freshness::Positive)))
            })
            .await;
        assert_eq!(refreshed, Some(3));
        assert_eq!(cache.lookup(&1), Lookup::Fresh(3));
        assert_eq!(cache.stats().counts().evictions, 0);
        for key in 2..10 {
            cache.insert(key, key, Freshness::Positive);
        }
        let counts = cache.stats().counts();
        assert_eq!(
            counts.evictions,
            9 - cache.len() as u64,
            "9 keys, {} kept",
            cache.len()
        );
    }

    #[test]
    fn max_entries_holds_after_quiescence() {
        let cache: Cache<u64, u64> = Cache::new(CacheSpec::new(60 * S).max_entries(100));
        for key in 0..10_000 {
            cache.insert(key, key, Freshness::Positive);
        }
        assert!(cache.len() <= 100, "{} entries", cache.len());
        assert!(cache.stats().counts().evictions >= 9_900);
        cache.configure(CacheSpec::new(60 * S).max_entries(10));
        assert!(cache.len() <= 10, "{} entries after shrinking", cache.len());
    }

    /// Bounds that are no multiple of the shard count, and a large cache (many shards)
    /// lowered by a reload below its shard count: the bound holds after each.
    #[test]
    fn max_entries_holds_for_any_bound_and_after_any_reload() {
        let fill = |cache: &Cache<u64, u64>, from: u64| {
            for key in from..from + 20_000 {
                cache.insert(key, key, Freshness::Positive);
            }
        };
        for bound in [1, 7, 33, 100, 1_000, 1_001, 9_999] {
            let cache: Cache<u64, u64> = Cache::new(CacheSpec::new(60 * S).max_entries(bound));
            fill(&cache, 0);
            assert!(
                cache.len() as u64 <= bound,
                "{} entries of {bound}",
                cache.len()
            );
        }
        let cache: Cache<u64, u64> = Cache::new(CacheSpec::new(60 * S).max_entries(10_000));
        fill(&cache, 0);
        assert!(cache.len() <= 10_000);
        assert!(cache.store.num_shards() > 2, "the point: many shards");
        let mut from = 20_000;
        for bound in [1_000, 100, 20, 1, 50] {
            cache.configure(CacheSpec::new(60 * S).max_entries(bound));
            assert!(
                cache.len() as u64 <= bound,
                "{} entries after lowering to {bound}",
                cache.len()
            );
            fill(&cache, from);
            from += 20_000;
            assert!(
                cache.len() as u64 <= bound,
                "{} entries of {bound} after inserts",
                cache.len()
            );
        }
        // a bound of 20 over many shards still caches (the bound is not rounded to zero)
        cache.configure(CacheSpec::new(60 * S).max_entries(20));
        cache.insert(u64::MAX, 1, Freshness::Positive);
        assert!(!cache.is_empty());
    }
}
