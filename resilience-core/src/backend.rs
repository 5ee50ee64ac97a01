//! Where a policy's stateful sections keep their state: in this process (the default), or in
//! Redis (feature `redis`), shared by every instance.
//!
//! ```yaml
//! policies:
//!   github:
//!     rate_limit: { calls: 5000, period: 1h }
//!     backend: redis://127.0.0.1:6379/0
//!     backend_timeout: 50ms          # bound on every round trip (default 50ms)
//!     on_backend_error: allow        # allow | deny | local (default allow)
//!     key_prefix: "myservice:"       # default "resilience:"
//! ```
//!
//! A call never hangs on the backend: each round trip is bounded by `backend_timeout`, after
//! which `on_backend_error` decides: `allow` lets the call through, `deny` refuses it
//! (`Rejected::RateLimited`), `local` uses this process's in-memory state instead. After
//! three failures in a row the backend is skipped for a second (so an outage does not add
//! the timeout to every call), then tried again by itself. Every fallback is counted
//! (`resilience_backend_errors_total{policy, fallback}`) and logged.

use std::time::Duration;

pub use resilience_config::OnBackendError;

/// A policy's backend, as its YAML section gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendSpec {
    /// The Redis URL.
    pub url: String,
    /// The bound on every round trip.
    pub timeout: Duration,
    /// What a call does when the backend fails.
    pub on_error: OnBackendError,
    /// The prefix of every key.
    pub key_prefix: String,
}

impl BackendSpec {
    /// The default `backend_timeout`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

    /// The default `key_prefix`.
    pub const DEFAULT_KEY_PREFIX: &'static str = "resilience:";

    /// A Redis backend at `url` with the defaults.
    pub fn redis(url: impl Into<String>) -> Self {
        BackendSpec {
            url: url.into(),
            timeout: Self::DEFAULT_TIMEOUT,
            on_error: OnBackendError::Allow,
            key_prefix: Self::DEFAULT_KEY_PREFIX.to_string(),
        }
    }

    /// Sets `backend_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets `on_backend_error`.
    pub fn on_error(mut self, on_error: OnBackendError) -> Self {
        self.on_error = on_error;
        self
    }

    /// Sets `key_prefix`.
    pub fn key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into();
        self
    }

    /// The backend a policy document selects (`None`: in memory).
    pub(crate) fn from_doc(doc: &resilience_config::PolicyDoc) -> Option<Self> {
        let resilience_config::BackendName::Redis(url) = doc.backend.as_ref()? else {
            return None;
        };
        let mut spec = BackendSpec::redis(url.clone());
        if let Some(timeout) = doc.backend_timeout {
            spec.timeout = timeout;
        }
        if let Some(on_error) = doc.on_backend_error {
            spec.on_error = on_error;
        }
        if let Some(prefix) = &doc.key_prefix {
            spec.key_prefix = prefix.clone();
        }
        Some(spec)
    }
}
