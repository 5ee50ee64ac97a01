//! Policies written back as data (serde `Serialize`): each key under its YAML name, each value
//! as a policy file writes it (durations as `"250ms"`, names as `"exp"`), so what serializing
//! gives, reading it back ([`crate::deserialize_policies`]) turns into the same policy.

use std::time::Duration;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::backend::{BackendName, OnBackendError};
use crate::breaker::WindowType;
use crate::class::ErrorClass;
use crate::hedge::HedgeAfter;
use crate::rate_limit::{Lease, LimitMode};
use crate::retry::{Backoff, Jitter, RetryOn};
use crate::schema::{AlertDoc, NamedPolicy};
use crate::timeout::HttpTimeouts;

/// A value as a policy file writes it.
pub(crate) trait Written {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
}

/// `Serialize` for a [`Written`] value.
pub(crate) struct AsWritten<'a, T: ?Sized>(pub(crate) &'a T);

impl<T: Written + ?Sized> Serialize for AsWritten<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.write(serializer)
    }
}

/// Plain values are written as they are.
macro_rules! as_is {
    ($($ty:ty),*) => {$(
        impl Written for $ty {
            fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.serialize(serializer)
            }
        }
    )*};
}

as_is!(u32, u64, f64, bool, String);

/// `~` (null): a limit the attribute sets, removed.
impl<T: Written> Written for Option<T> {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(value) => value.write(serializer),
            None => serializer.serialize_unit(),
        }
    }
}

/// In the largest unit that holds it exactly (`"90s"`, `"1500ms"`, `"2d"`).
impl Written for Duration {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        const UNITS: [(u128, &str); 7] = [
            (86_400_000_000_000, "d"),
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ];
        let nanos = self.as_nanos();
        let (per, unit) = UNITS
            .into_iter()
            .find(|(per, _)| nanos % per == 0)
            .unwrap_or((1, "ns"));
        serializer.collect_str(&format_args!("{}{unit}", nanos / per))
    }
}

impl Written for Backoff {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl Written for WindowType {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl Written for LimitMode {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            LimitMode::Wait => "wait",
            LimitMode::Reject => "reject",
        })
    }
}

/// `auto`, `off`, or the number of permits.
impl Written for Lease {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Lease::Off => serializer.serialize_str("off"),
            Lease::Auto => serializer.serialize_str("auto"),
            Lease::Max(most) => serializer.serialize_u32(*most),
        }
    }
}

/// A fraction as a number (no jitter as `0.0`), a named kind by its name.
impl Written for Jitter {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Jitter::None => serializer.serialize_f64(0.0),
            Jitter::Fraction(fraction) => serializer.serialize_f64(*fraction),
            Jitter::Full => serializer.serialize_str("full"),
            Jitter::Equal => serializer.serialize_str("equal"),
            Jitter::Decorrelated => serializer.serialize_str("decorrelated"),
        }
    }
}

/// The kinds by name, a whole class of statuses as `"5xx"`, other statuses as numbers.
impl Written for RetryOn {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut items = serializer.serialize_seq(None)?;
        for (class, name) in [
            (ErrorClass::Timeout, "Timeout"),
            (ErrorClass::Connect, "Connect"),
            (ErrorClass::Body, "Body"),
        ] {
            if self.matches(class) {
                items.serialize_element(name)?;
            }
        }
        for hundreds in 1..=5u16 {
            let codes = hundreds * 100..hundreds * 100 + 100;
            if codes
                .clone()
                .all(|code| self.matches(ErrorClass::Status(code)))
            {
                items.serialize_element(&format!("{hundreds}xx"))?;
                continue;
            }
            for code in codes.filter(|code| self.matches(ErrorClass::Status(*code))) {
                items.serialize_element(&code)?;
            }
        }
        items.end()
    }
}

/// A delay as a duration, a percentile as `p95`.
impl Written for HedgeAfter {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            HedgeAfter::Delay(delay) => delay.write(serializer),
            HedgeAfter::Percentile(p) => serializer.serialize_str(&format!("p{p}")),
        }
    }
}

impl Written for OnBackendError {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            OnBackendError::Allow => "allow",
            OnBackendError::Deny => "deny",
            OnBackendError::Local => "local",
        })
    }
}

impl Written for BackendName {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            BackendName::Memory => serializer.serialize_str("memory"),
            BackendName::Redis(url) => serializer.serialize_str(url),
        }
    }
}

/// The entries of a section: each field it sets, under its key.
pub(crate) struct Entries<M>(pub(crate) M);

impl<M: SerializeMap> Entries<M> {
    pub(crate) fn entry<T: Written + ?Sized>(
        &mut self,
        key: &'static str,
        value: Option<&T>,
    ) -> Result<(), M::Error> {
        match value {
            Some(value) => self.0.serialize_entry(key, &AsWritten(value)),
            None => Ok(()),
        }
    }

    /// A section (a patch writes the fields it sets: its `patch!` declaration lists them).
    pub(crate) fn section<T: Serialize>(
        &mut self,
        key: &'static str,
        value: Option<&T>,
    ) -> Result<(), M::Error> {
        match value {
            Some(value) => self.0.serialize_entry(key, value),
            None => Ok(()),
        }
    }
}

/// A cache section's `backend`, as the policy's is written.
impl Written for crate::backend::CacheBackend {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.name().write(serializer)
    }
}

/// `local: { max_entries, ttl }`, the fields it sets.
impl Written for crate::cache::LocalTier {
    fn write<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries = Entries(serializer.serialize_map(None)?);
        entries.entry("max_entries", self.max_entries.as_ref())?;
        entries.entry("ttl", self.ttl.as_ref())?;
        entries.0.end()
    }
}

impl Serialize for AlertDoc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries = Entries(serializer.serialize_map(None)?);
        entries.entry("retry_rate", self.retry_rate.as_ref())?;
        entries.entry("failure_rate", self.failure_rate.as_ref())?;
        entries.entry("slow_call", self.slow_call.as_ref())?;
        entries.entry("window", self.window.as_ref())?;
        entries.0.end()
    }
}

/// `timeout` as a mapping of the phases it bounds.
impl Serialize for HttpTimeouts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries = Entries(serializer.serialize_map(None)?);
        entries.entry("connect", self.connect.as_ref())?;
        entries.entry("read", self.read.as_ref())?;
        entries.entry("total", self.total.as_ref())?;
        entries.0.end()
    }
}

/// The sections in the pipeline's order, then the backend's keys.
impl Serialize for NamedPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries = Entries(serializer.serialize_map(None)?);
        entries.section("cache", self.cache.as_ref())?;
        entries.section("bulkhead", self.bulkhead.as_ref())?;
        entries.section("rate_limit", self.rate_limit.as_ref())?;
        entries.section("retry", self.retry.as_ref())?;
        entries.section("retry_budget", self.retry_budget.as_ref())?;
        entries.section("hedge", self.hedge.as_ref())?;
        entries.section("circuit_breaker", self.circuit_breaker.as_ref())?;
        entries.entry("timeout", self.timeout.as_ref())?;
        entries.section("timeout", self.http_timeouts.as_ref())?;
        entries.section("alert", self.alert.as_ref())?;
        entries.entry("backend", self.backend.as_ref())?;
        entries.entry("backend_timeout", self.backend_timeout.as_ref())?;
        entries.entry("on_backend_error", self.on_backend_error.as_ref())?;
        entries.entry("key_prefix", self.key_prefix.as_ref())?;
        entries.0.end()
    }
}

/// `policies:` and the policies by name.
impl Serialize for crate::schema::PolicyFile {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("policies", &self.policies)?;
        map.end()
    }
}

#[cfg(all(test, feature = "yaml"))]
mod tests {
    use crate::keys::Doc;
    use crate::{
        breaker, bulkhead, cache, hedge, rate_limit, retry, retry_budget, schema, timeout,
    };

    /// Every YAML key of every table, each set: what serializing writes must hold each one
    /// and read back as the same policies. A key added to a table and not to its writer fails
    /// here (the check below makes sure this file sets it).
    const EVERY_KEY: &str = "policies:
  every:
    cache: { enabled: true, ttl: 60s, max_entries: 100, max_bytes: 1MiB, ttl_jitter: 0.1, negative_ttl: 5s, stale_while_revalidate: 10s, early_refresh: 1.5, backend: redis://127.0.0.1:6379/1, local: { max_entries: 50, ttl: 5s }, http: true }
    bulkhead: { max_concurrent: 20, max_wait: 1s }
    rate_limit: { calls: 50, period: 1s, burst: 5, mode: reject, max_wait: 2s, cost: 3, lease: 32 }
    retry_budget: { ratio: 0.5, min_per_second: 3, window: 20s }
    hedge: { after: p90, max: 3 }
    retry: { attempts: 5, backoff: linear, base: 200ms, factor: 3.0, max_delay: 10s, max_elapsed: 1m, jitter: 0.2, on: [Timeout, Connect, 429, 5xx], retry_after: false }
    circuit_breaker: { failure_rate: 0.5, min_calls: 10, window: 20, window_type: time, open_for: 30s, backoff: 2.0, max_open_for: 5m, slow_call: 2s, slow_call_rate: 0.5, half_open_calls: 3 }
    timeout: 3s
    alert: { retry_rate: 0.2, failure_rate: 0.1, slow_call: 30s, window: 5m }
    backend: redis://127.0.0.1:6379/0
    backend_timeout: 20ms
    on_backend_error: local
    key_prefix: 'svc:'
  phases:
    timeout: { connect: 3s, read: 10s, total: 30s }
    hedge: { after: 150ms }
";

    fn keys_of(value: &serde_yaml::Value) -> Vec<String> {
        value
            .as_mapping()
            .map(|map| {
                map.keys()
                    .filter_map(|k| k.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The keys `value` sets for `D`'s table, missing ones listed.
    fn missing<D: Doc>(value: &serde_yaml::Value) -> Vec<&'static str> {
        let set = keys_of(value);
        D::YAML
            .iter()
            .copied()
            .filter(|key| !set.iter().any(|s| s == key))
            .collect()
    }

    fn check(text: &str) {
        let value: serde_yaml::Value = serde_yaml::from_str(text).expect("YAML");
        let every = &value["policies"]["every"];
        let phases = &value["policies"]["phases"];
        let sections: Vec<(&str, Vec<&str>)> = vec![
            ("policy", {
                let mut keys = missing::<schema::NamedPolicy>(every);
                keys.retain(|key| *key != "timeout" || keys_of(phases).is_empty());
                keys
            }),
            ("retry", missing::<retry::RetryPatch>(&every["retry"])),
            ("hedge", missing::<hedge::HedgePatch>(&every["hedge"])),
            (
                "retry_budget",
                missing::<retry_budget::RetryBudgetPatch>(&every["retry_budget"]),
            ),
            (
                "rate_limit",
                missing::<rate_limit::RateLimitPatch>(&every["rate_limit"]),
            ),
            ("cache", missing::<cache::CachePatch>(&every["cache"])),
            (
                "circuit_breaker",
                missing::<breaker::BreakerPatch>(&every["circuit_breaker"]),
            ),
            (
                "bulkhead",
                missing::<bulkhead::BulkheadPatch>(&every["bulkhead"]),
            ),
            ("alert", missing::<schema::AlertDoc>(&every["alert"])),
            (
                "timeout",
                missing::<timeout::HttpTimeouts>(&phases["timeout"]),
            ),
        ];
        for (section, keys) in sections {
            assert!(keys.is_empty(), "`{section}` lacks {keys:?} in:\n{text}");
        }
    }

    #[test]
    fn every_key_is_written_and_read_back() {
        check(EVERY_KEY);
        let file = crate::load_str(EVERY_KEY).expect("a valid file");
        let written = serde_yaml::to_string(&file).expect("written");
        check(&written);
        assert_eq!(crate::load_str(&written).expect("reads back"), file);
    }
}
