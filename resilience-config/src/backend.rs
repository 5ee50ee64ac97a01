//! [`BackendSpec`]: where a policy's stateful sections keep their state, as plain data
//! (`backend`, `backend_timeout`, `on_backend_error` and `key_prefix`).

use std::time::Duration;

/// `backend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendName {
    /// `memory`: in this process (the default).
    Memory,
    /// A `redis://` (or `redis+unix://`, or `redis+cluster://`) URL: shared by every instance.
    Redis(String),
}

/// A `cache` section's own `backend` (`cache: { backend: redis://.., local: {..} }`): where
/// that section keeps its entries, over the policy's `backend`. A `Copy` value, as the
/// section's other values are: a URL is interned (kept for the life of the process, once per
/// distinct URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheBackend {
    /// `memory`: in this process, whatever the policy's `backend`.
    Memory,
    /// A Redis URL (checked as the policy's `backend` is).
    Redis(&'static str),
}

impl CacheBackend {
    /// The section's backend for `name`.
    pub fn of(name: &BackendName) -> Self {
        match name {
            BackendName::Memory => CacheBackend::Memory,
            BackendName::Redis(url) => CacheBackend::Redis(intern(url)),
        }
    }

    /// The name it was read from.
    pub fn name(self) -> BackendName {
        match self {
            CacheBackend::Memory => BackendName::Memory,
            CacheBackend::Redis(url) => BackendName::Redis(url.to_string()),
        }
    }
}

/// `text`, kept for the life of the process: once per distinct text, so reloading a file
/// does not grow memory.
fn intern(text: &str) -> &'static str {
    static INTERNED: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut interned = INTERNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = interned.iter().find(|known| **known == text) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.to_string().into_boxed_str());
    interned.push(leaked);
    leaked
}

/// The scheme of a Redis Cluster's URL: `redis+cluster://h1:p1,h2:p2,...`.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// The nodes of a `redis+cluster://[user:password@]h1:p1,h2:p2,...` URL, each as a
/// `redis://` URL (with the credentials, if any); `None` for another URL, or one without a
/// node.
pub fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let rest = url.strip_prefix(CLUSTER_SCHEME)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (credentials, hosts) = match rest.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), rest),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| format!("redis://{credentials}{host}"))
        .collect();
    (!nodes.is_empty()).then_some(nodes)
}

/// `on_backend_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBackendError {
    /// `allow`: let the call through (the default).
    Allow,
    /// `deny`: refuse the call.
    Deny,
    /// `local`: use this process's in-memory state instead.
    Local,
}

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
}
