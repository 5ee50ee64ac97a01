//! One table per section: each key of an attribute and of a YAML policy's section, written
//! once, with where it may be written and how YAML reads its value.
//!
//! Everything else about keys comes from these tables: the keys each attribute accepts
//! ([`rules::RETRY_KEYS`](crate::rules::RETRY_KEYS), ...), the keys each YAML section accepts
//! and the YAML reader of each key. A YAML key is one with a reader, so a key cannot be
//! accepted and then dropped. A new policy key is one line here, its field and its runtime.

// Without `yaml` only the key lists are read from the tables: the readers are there, unused.
#![cfg_attr(not(feature = "yaml"), allow(dead_code))]

use crate::breaker::BreakerPatch;
use crate::bulkhead::BulkheadPatch;
use crate::cache::{CachePatch, LocalTier};
use crate::hedge::HedgePatch;
use crate::rate_limit::RateLimitPatch;
use crate::retry::{RetryOn, RetryPatch};
use crate::retry_budget::RetryBudgetPatch;
use crate::scalar::{self, Problem, Scalar};
use crate::schema::{AlertDoc, NamedPolicy};
use crate::timeout::HttpTimeouts;

/// How YAML reads a key's value into its section's document `D`.
pub(crate) enum Read<D> {
    /// Not a YAML key: only the attribute sets it (an expression or a function path, not a
    /// value).
    Attribute,
    /// One scalar, checked and stored.
    Scalar(fn(&mut D, &'static str, Scalar<'_>) -> Result<(), Problem>),
    /// The `on` list: error kinds, status codes and classes.
    On(fn(&mut D, RetryOn)),
    /// A `retry` section.
    Retry(fn(&mut D) -> &mut Option<RetryPatch>),
    /// A `rate_limit` section.
    RateLimit(fn(&mut D) -> &mut Option<RateLimitPatch>),
    /// A `cache` section.
    Cache(fn(&mut D) -> &mut Option<CachePatch>),
    /// A cache's `local` tier.
    Local(fn(&mut D) -> &mut Option<LocalTier>),
    /// A `circuit_breaker` section.
    CircuitBreaker(fn(&mut D) -> &mut Option<BreakerPatch>),
    /// A `bulkhead` section.
    Bulkhead(fn(&mut D) -> &mut Option<BulkheadPatch>),
    /// A `retry_budget` section.
    RetryBudget(fn(&mut D) -> &mut Option<RetryBudgetPatch>),
    /// A `hedge` section.
    Hedge(fn(&mut D) -> &mut Option<HedgePatch>),
    /// An `alert` section.
    Alert(fn(&mut D) -> &mut Option<AlertDoc>),
    /// A `timeout`: one duration (the limit of each try), or a mapping of HTTP phases.
    Timeout(fn(&mut D) -> (&mut Option<std::time::Duration>, &mut Option<HttpTimeouts>)),
}

/// One key of a section.
pub(crate) struct Key<D> {
    /// The key as a user writes it.
    pub(crate) name: &'static str,
    /// Whether the attribute takes it.
    pub(crate) attribute: bool,
    /// How YAML reads it.
    pub(crate) read: Read<D>,
}

/// Which keys of a table a list holds.
#[derive(Clone, Copy)]
pub(crate) enum Place {
    /// The keys the attribute takes.
    Attribute,
    /// The keys YAML takes.
    Yaml,
    /// The keys only the attribute takes.
    AttributeOnly,
    /// The keys only YAML takes.
    YamlOnly,
}

impl<D> Key<D> {
    const fn is_in(&self, place: Place) -> bool {
        let yaml = !matches!(self.read, Read::Attribute);
        match place {
            Place::Attribute => self.attribute,
            Place::Yaml => yaml,
            Place::AttributeOnly => !yaml,
            Place::YamlOnly => yaml && !self.attribute,
        }
    }
}

/// How many keys of `keys` are in `place`.
pub(crate) const fn count<D>(keys: &[Key<D>], place: Place) -> usize {
    let (mut found, mut index) = (0, 0);
    while index < keys.len() {
        if keys[index].is_in(place) {
            found += 1;
        }
        index += 1;
    }
    found
}

/// The names of the `N` keys of `keys` in `place`, in the table's order.
pub(crate) const fn select<D, const N: usize>(keys: &[Key<D>], place: Place) -> [&'static str; N] {
    let mut names = [""; N];
    let (mut found, mut index) = (0, 0);
    while index < keys.len() {
        if keys[index].is_in(place) {
            names[found] = keys[index].name;
            found += 1;
        }
        index += 1;
    }
    names
}

/// The names of a table's keys in a place, as a `&'static [&'static str]`.
macro_rules! names {
    ($keys:expr, $place:expr) => {
        &$crate::keys::select::<_, { $crate::keys::count($keys, $place) }>($keys, $place)
    };
}
pub(crate) use names;

/// A table row. `name: check` is a scalar both the attribute and YAML take, stored as
/// `Some(check(..))` in the field of that name; `yaml name: check` one only YAML takes; `name`
/// alone one only the attribute takes; `name: Variant section` a section.
macro_rules! key {
    ($name:ident) => {
        Key {
            name: stringify!($name),
            attribute: true,
            read: Read::Attribute,
        }
    };
    ($name:ident: $variant:ident section) => {
        key!(@ $name, true, Read::$variant(|doc| &mut doc.$name))
    };
    (yaml $name:ident: $variant:ident section) => {
        key!(@ $name, false, Read::$variant(|doc| &mut doc.$name))
    };
    ($name:ident: $check:expr) => {
        key!(@ $name, true, key!(@scalar $name, $check))
    };
    (yaml $name:ident: $check:expr) => {
        key!(@ $name, false, key!(@scalar $name, $check))
    };
    (@scalar $name:ident, $check:expr) => {
        Read::Scalar(|doc, key, value| {
            doc.$name = Some(($check)(key, value)?);
            Ok(())
        })
    };
    (@ $name:ident, $attribute:expr, $read:expr) => {
        Key {
            name: stringify!($name),
            attribute: $attribute,
            read: $read,
        }
    };
}

/// A section's document and its table.
pub(crate) trait Doc: Default + Sized + 'static {
    /// Its keys.
    const KEYS: &'static [Key<Self>];
    /// Its YAML keys.
    const YAML: &'static [&'static str];
    /// A key, for messages (`` `retry` key ``).
    const WHAT: &'static str;
    /// Its keys, for messages (`` `retry` keys ``).
    const WHATS: &'static str;
}

/// `#[retry(...)]` and a policy's `retry` section.
pub(crate) const RETRY: &[Key<RetryPatch>] = &[
    key!(attempts: scalar::attempts),
    key!(backoff: scalar::backoff),
    key!(base: scalar::duration),
    key!(factor: scalar::factor),
    key!(max_delay: scalar::duration),
    key!(max_elapsed: scalar::optional_duration),
    key!(jitter: scalar::jitter),
    key!(@ on, true, Read::On(|doc, on| doc.on = Some(on))),
    key!(retry_if),
    key!(retry_if_ok),
    key!(retry_after: scalar::boolean),
    key!(budget),
    key!(policy),
];

/// `#[rate_limited(...)]` and a policy's `rate_limit` section (`key` is an expression over the
/// arguments; `cost` is one in the attribute and a constant in YAML; `lease` matters only with
/// a Redis backend, which only YAML names).
pub(crate) const RATE_LIMIT: &[Key<RateLimitPatch>] = &[
    key!(calls: scalar::count),
    key!(period: scalar::positive),
    key!(burst: scalar::any_count),
    key!(mode: scalar::mode),
    key!(max_wait: scalar::optional_duration),
    key!(key),
    key!(cost: scalar::cost),
    key!(policy),
    key!(yaml lease: scalar::lease),
];

/// `#[cached(...)]` and a policy's `cache` section (`key` is an expression over the arguments;
/// `enabled` is a run-time switch; `http` is for the HTTP middleware's responses).
pub(crate) const CACHE: &[Key<CachePatch>] = &[
    key!(yaml enabled: scalar::boolean),
    key!(ttl: scalar::duration),
    key!(max_entries: |key, value| scalar::count(key, value).map(u64::from)),
    key!(max_bytes: scalar::optional_bytes),
    key!(ttl_jitter: scalar::fraction),
    key!(negative_ttl: scalar::optional_duration),
    key!(key),
    key!(stale_while_revalidate: scalar::optional_duration),
    key!(early_refresh: scalar::early_refresh),
    key!(yaml local: Local section),
    key!(yaml backend: |key, value| scalar::backend(key, value)
        .map(|name| crate::backend::CacheBackend::of(&name))),
    key!(policy),
    key!(yaml http: scalar::boolean),
];

/// A policy's `cache.local`: the in-memory tier in front of a Redis cache.
pub(crate) const LOCAL: &[Key<LocalTier>] = &[
    key!(yaml max_entries: |key, value| scalar::count(key, value).map(u64::from)),
    key!(yaml ttl: scalar::positive),
];

/// `#[circuit_breaker(...)]` and a policy's `circuit_breaker` section (`failure_if` is a
/// function path; `backoff` here is `open_for`'s growth factor, not retry's kind of backoff).
pub(crate) const CIRCUIT_BREAKER: &[Key<BreakerPatch>] = &[
    key!(failure_rate: scalar::fraction),
    key!(min_calls: scalar::count),
    key!(window: scalar::count),
    key!(window_type: scalar::window_type),
    key!(open_for: scalar::positive),
    key!(backoff: scalar::growth),
    key!(max_open_for: scalar::optional_positive),
    key!(slow_call: scalar::optional_positive),
    key!(slow_call_rate: scalar::fraction),
    key!(half_open_calls: scalar::count),
    key!(failure_if),
    key!(policy),
];

/// `#[bulkhead(...)]` and a policy's `bulkhead` section.
pub(crate) const BULKHEAD: &[Key<BulkheadPatch>] = &[
    key!(max_concurrent: scalar::count),
    key!(max_wait: scalar::duration),
    key!(policy),
];

/// `#[hedge(...)]` and a policy's `hedge` section (`idempotent` is the attribute's promise,
/// `budget` names a retry budget).
pub(crate) const HEDGE: &[Key<HedgePatch>] = &[
    key!(after: scalar::hedge_after),
    key!(max: scalar::hedge_max),
    key!(idempotent),
    key!(budget),
    key!(policy),
];

/// A policy's `retry_budget` section: shared by every retry site naming the policy (as its
/// `policy` or its `budget`).
pub(crate) const RETRY_BUDGET: &[Key<RetryBudgetPatch>] = &[
    key!(yaml ratio: scalar::fraction),
    key!(yaml min_per_second: scalar::any_count),
    key!(yaml window: scalar::positive),
];

/// A policy's `alert` section: warn when, over `window`, its retry rate crosses `retry_rate`,
/// its failure rate crosses `failure_rate`, or a retrying call takes longer than `slow_call`.
pub(crate) const ALERT: &[Key<AlertDoc>] = &[
    key!(yaml retry_rate: scalar::fraction),
    key!(yaml failure_rate: scalar::fraction),
    key!(yaml slow_call: scalar::positive),
    key!(yaml window: scalar::positive),
];

/// `#[timeout(...)]` (also written `#[timeout("3s")]`); in YAML a policy's `timeout` is one
/// duration (the limit of each try) or a mapping of the phases of an HTTP call.
pub(crate) const TIMEOUT: &[Key<HttpTimeouts>] = &[
    key!(duration),
    key!(policy),
    key!(yaml connect: scalar::positive),
    key!(yaml read: scalar::positive),
    key!(yaml total: scalar::positive),
];

/// `#[resilient(...)]` and a named policy: the sections, in the pipeline's order, and the
/// policy's own keys.
pub(crate) const POLICY: &[Key<NamedPolicy>] = &[
    key!(policy),
    key!(cache: Cache section),
    key!(bulkhead: Bulkhead section),
    key!(rate_limit: RateLimit section),
    key!(retry: Retry section),
    key!(yaml retry_budget: RetryBudget section),
    key!(yaml hedge: Hedge section),
    key!(circuit_breaker: CircuitBreaker section),
    key!(@ timeout, true, Read::Timeout(|doc| (&mut doc.timeout, &mut doc.http_timeouts))),
    key!(yaml alert: Alert section),
    key!(yaml backend: scalar::backend),
    key!(yaml backend_timeout: scalar::positive),
    key!(yaml on_backend_error: scalar::on_backend_error),
    key!(yaml key_prefix: scalar::key_prefix),
];

/// The keys only an attribute can set, in any section: YAML refuses them with their reason.
pub(crate) const ATTRIBUTE_ONLY: &[&[&str]] = &[
    names!(RETRY, Place::AttributeOnly),
    names!(RATE_LIMIT, Place::AttributeOnly),
    names!(CACHE, Place::AttributeOnly),
    names!(CIRCUIT_BREAKER, Place::AttributeOnly),
    names!(BULKHEAD, Place::AttributeOnly),
    names!(HEDGE, Place::AttributeOnly),
    names!(POLICY, Place::AttributeOnly),
];

/// Implements [`Doc`] for each section's document.
macro_rules! docs {
    ($($doc:ty: $keys:ident, $what:literal, $whats:literal;)*) => {$(
        impl Doc for $doc {
            const KEYS: &'static [Key<Self>] = $keys;
            const YAML: &'static [&'static str] = names!($keys, Place::Yaml);
            const WHAT: &'static str = $what;
            const WHATS: &'static str = $whats;
        }
    )*};
}

docs! {
    RetryPatch: RETRY, "`retry` key", "`retry` keys";
    RateLimitPatch: RATE_LIMIT, "`rate_limit` key", "`rate_limit` keys";
    CachePatch: CACHE, "`cache` key", "`cache` keys";
    LocalTier: LOCAL, "`local` key", "`local` keys";
    BreakerPatch: CIRCUIT_BREAKER, "`circuit_breaker` key", "`circuit_breaker` keys";
    BulkheadPatch: BULKHEAD, "`bulkhead` key", "`bulkhead` keys";
    HedgePatch: HEDGE, "`hedge` key", "`hedge` keys";
    RetryBudgetPatch: RETRY_BUDGET, "`retry_budget` key", "`retry_budget` keys";
    AlertDoc: ALERT, "`alert` key", "`alert` keys";
    HttpTimeouts: TIMEOUT, "`timeout` key", "`timeout` keys";
    NamedPolicy: POLICY, "section", "sections";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lists keep the table's order; only the attribute takes code.
    #[test]
    fn lists_come_from_the_tables() {
        assert_eq!(
            <AlertDoc as Doc>::YAML,
            ["retry_rate", "failure_rate", "slow_call", "window"]
        );
        assert_eq!(<BulkheadPatch as Doc>::YAML, ["max_concurrent", "max_wait"]);
        assert_eq!(crate::rules::TIMEOUT_KEYS, ["duration", "policy"]);
        assert_eq!(<HttpTimeouts as Doc>::YAML, ["connect", "read", "total"]);
        assert_eq!(<CachePatch as Doc>::YAML[0], "enabled");
        assert!(!crate::rules::CACHE_KEYS.contains(&"enabled"));
        assert!(<CachePatch as Doc>::YAML.contains(&"http"));
        assert_eq!(
            crate::rules::CACHE_YAML_ONLY,
            ["enabled", "local", "backend", "http"]
        );
        let only: Vec<&str> = ATTRIBUTE_ONLY
            .iter()
            .flat_map(|keys| keys.to_vec())
            .collect();
        for key in ["retry_if", "retry_if_ok", "failure_if", "key", "policy"] {
            assert!(only.contains(&key), "{key}");
        }
        assert!(!only.contains(&"duration"));
    }
}
