//! The policy file as plain data: what YAML says, checked, before it meets the runtime.
//!
//! Every field is optional: a policy overrides only the fields it names, field by field, over
//! the inline values of each site that names it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::backend::{BackendName, BackendSpec, OnBackendError};
use crate::breaker::BreakerPatch;
use crate::bulkhead::BulkheadPatch;
use crate::cache::CachePatch;
use crate::hedge::HedgePatch;
use crate::rate_limit::RateLimitPatch;
use crate::retry::RetryPatch;
use crate::retry_budget::RetryBudgetPatch;
use crate::timeout::HttpTimeouts;

/// A whole policy file: `policies:` and the named policies under it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyFile {
    /// The policies by name.
    pub policies: BTreeMap<String, NamedPolicy>,
}

/// One named policy: its sections. A section that is absent leaves the sites' inline values.
///
/// The one type of a policy wherever it comes from: a file, a service's own configuration
/// (serde) or code. The runtime's registry holds it as it is.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct NamedPolicy {
    /// `retry`.
    pub retry: Option<RetryPatch>,
    /// `retry_budget`: the budget every retry site naming the policy draws on.
    pub retry_budget: Option<RetryBudgetPatch>,
    /// `hedge`: when the sites naming the policy send a call again.
    pub hedge: Option<HedgePatch>,
    /// `rate_limit`.
    pub rate_limit: Option<RateLimitPatch>,
    /// `cache`.
    pub cache: Option<CachePatch>,
    /// `circuit_breaker`.
    pub circuit_breaker: Option<BreakerPatch>,
    /// `timeout` written as one duration: the limit of each try.
    pub timeout: Option<Duration>,
    /// `timeout` written as a mapping (`{ connect, read, total }`): one limit per HTTP phase.
    pub http_timeouts: Option<HttpTimeouts>,
    /// `bulkhead`.
    pub bulkhead: Option<BulkheadPatch>,
    /// `alert`.
    pub alert: Option<AlertDoc>,
    /// `backend`: where the stateful sections keep their state.
    pub backend: Option<BackendName>,
    /// `backend_timeout`: the bound on every round trip to the backend.
    pub backend_timeout: Option<Duration>,
    /// `on_backend_error`: what a call does when the backend fails.
    pub on_backend_error: Option<OnBackendError>,
    /// `key_prefix`: the prefix of every key the policy keeps in the backend.
    pub key_prefix: Option<String>,
}

impl NamedPolicy {
    /// A policy with only a `retry` section.
    pub fn with_retry(retry: RetryPatch) -> Self {
        NamedPolicy {
            retry: Some(retry),
            ..NamedPolicy::default()
        }
    }

    /// A policy with only a `rate_limit` section.
    pub fn with_rate_limit(rate_limit: RateLimitPatch) -> Self {
        NamedPolicy {
            rate_limit: Some(rate_limit),
            ..NamedPolicy::default()
        }
    }

    /// A policy with only a `bulkhead` section.
    pub fn with_bulkhead(bulkhead: BulkheadPatch) -> Self {
        NamedPolicy {
            bulkhead: Some(bulkhead),
            ..NamedPolicy::default()
        }
    }

    /// A policy with only a `cache` section.
    pub fn with_cache(cache: CachePatch) -> Self {
        NamedPolicy {
            cache: Some(cache),
            ..NamedPolicy::default()
        }
    }

    /// This policy with its stateful sections kept in `backend`: its four keys (`backend`,
    /// `backend_timeout`, `on_backend_error`, `key_prefix`) as the spec gives them.
    pub fn with_backend(mut self, backend: BackendSpec) -> Self {
        self.backend = Some(BackendName::Redis(backend.url));
        self.backend_timeout = Some(backend.timeout);
        self.on_backend_error = Some(backend.on_error);
        self.key_prefix = Some(backend.key_prefix);
        self
    }

    /// Where the policy's `cache` section keeps its entries (`None`: in memory): its own
    /// `backend` when it names one (with the policy's `backend_timeout`, `on_backend_error`
    /// and `key_prefix`), else the policy's.
    pub fn cache_backend_spec(&self) -> Option<BackendSpec> {
        match self.cache.and_then(|cache| cache.backend) {
            None => self.backend_spec(),
            Some(crate::backend::CacheBackend::Memory) => None,
            Some(crate::backend::CacheBackend::Redis(url)) => Some(self.spec_at(url.to_string())),
        }
    }

    /// The backend this policy selects (`None`: in memory): its `backend` URL with its
    /// `backend_timeout`, `on_backend_error` and `key_prefix`.
    pub fn backend_spec(&self) -> Option<BackendSpec> {
        let BackendName::Redis(url) = self.backend.as_ref()? else {
            return None;
        };
        Some(self.spec_at(url.clone()))
    }

    /// A Redis backend at `url` with this policy's `backend_timeout`, `on_backend_error` and
    /// `key_prefix`.
    fn spec_at(&self, url: String) -> BackendSpec {
        let mut spec = BackendSpec::redis(url);
        if let Some(timeout) = self.backend_timeout {
            spec.timeout = timeout;
        }
        if let Some(on_error) = self.on_backend_error {
            spec.on_error = on_error;
        }
        if let Some(prefix) = &self.key_prefix {
            spec.key_prefix = prefix.clone();
        }
        spec
    }
}

/// The `alert` section: warn when, over `window`, a policy's retry rate crosses `retry_rate`,
/// its failure rate crosses `failure_rate`, or one of its calls retries for longer than
/// `slow_call`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AlertDoc {
    /// `retry_rate`.
    pub retry_rate: Option<f64>,
    /// `failure_rate`: calls that returned an error / calls.
    pub failure_rate: Option<f64>,
    /// `slow_call`: a call that retried for longer than this (first failure to answer).
    pub slow_call: Option<Duration>,
    /// `window`.
    pub window: Option<Duration>,
}

/// Names accepted for `on_backend_error`.
pub const ON_BACKEND_ERROR_NAMES: &[&str] = &["allow", "deny", "local"];
