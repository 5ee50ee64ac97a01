//! Named policies: the values a YAML file (or code) gives to every site naming a policy.
//!
//! The registry is one atomic snapshot ([`arc_swap::ArcSwap`]): a call loads it once, lock-free,
//! and keeps the values it started with even if the snapshot is replaced mid-call; the next
//! call sees the new one.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;

mod file;
mod shared;

pub(crate) use file::{install_file, load_file};
use shared::RECONFIGURABLE;
pub(crate) use shared::{Reconfigurable, SharedByName, register};

// The sections are the config crate's patches, plain data below every runtime module.
use resilience_config::retry::RetryPatch;

/// The sections of one named policy (the config crate's type: a policy read from a file, from
/// a service's own configuration or written in code is the same value). A `None` section
/// leaves the inline values alone.
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::Duration;
/// use resilience::backend::{BackendSpec, OnBackendError};
/// use resilience::rate_limit::RateLimitPatch;
/// use resilience::registry::NamedPolicy;
///
/// let policy = NamedPolicy::with_rate_limit(RateLimitPatch { calls: Some(50), ..Default::default() })
///     .with_backend(
///         BackendSpec::redis("redis://127.0.0.1:6379/0")
///             .timeout(Duration::from_millis(20))
///             .on_error(OnBackendError::Local),
///     );
/// assert_eq!(policy.backend_spec().unwrap().on_error, OnBackendError::Local);
/// ```
pub use resilience_config::NamedPolicy;

/// A policy in the snapshot, with what the runtime derives from it once per install rather
/// than once per call.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    policy: NamedPolicy,
    /// The policy's backend, built from its four keys: a call through a shared limiter or
    /// cache reads it on every call, so it is built here, not there.
    #[cfg(feature = "redis")]
    backend: Option<Arc<crate::backend::BackendSpec>>,
    /// Where its caches keep their entries: the `cache` section's own `backend`, else the
    /// policy's (see [`NamedPolicy::cache_backend_spec`]).
    #[cfg(feature = "redis")]
    cache_backend: Option<Arc<crate::backend::BackendSpec>>,
}

/// A complete set of named policies, replaced as a whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policies {
    /// foldhash rather than SipHash: every call of a site naming a policy looks its name up,
    /// and these keys come from the program's own attributes and policy file, not from users.
    by_name: HashMap<String, Entry, foldhash::fast::RandomState>,
}

impl Policies {
    /// No policies.
    pub fn new() -> Self {
        Policies::default()
    }

    /// Adds (or replaces) the policy called `name`.
    pub fn insert(&mut self, name: impl Into<String>, policy: NamedPolicy) -> &mut Self {
        let entry = Entry {
            #[cfg(feature = "redis")]
            backend: policy.backend_spec().map(Arc::new),
            #[cfg(feature = "redis")]
            cache_backend: policy.cache_backend_spec().map(Arc::new),
            policy,
        };
        self.by_name.insert(name.into(), entry);
        self
    }

    /// The policy called `name`.
    pub fn get(&self, name: &str) -> Option<&NamedPolicy> {
        self.by_name.get(name).map(|entry| &entry.policy)
    }

    /// The names of all policies.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// The policy whose `alert` also watches each retry site naming no policy (see
/// [`crate::alert`]).
pub(crate) const DEFAULT_POLICY: &str = "default";

static CURRENT: LazyLock<ArcSwap<Policies>> = LazyLock::new(ArcSwap::default);

/// Replaces every named policy at once. Calls already running keep the values they started
/// with; calls starting afterwards use `policies`.
///
/// ```
/// # use resilience_core as resilience;
/// use resilience::registry::{self, NamedPolicy, Policies};
/// use resilience::RetryPatch;
///
/// let mut policies = Policies::new();
/// policies.insert("user-api", NamedPolicy::with_retry(RetryPatch { attempts: Some(5), ..Default::default() }));
/// registry::install(policies);
/// assert!(registry::current().get("user-api").is_some());
/// ```
pub fn install(policies: Policies) {
    EXPLICIT.store(true, std::sync::atomic::Ordering::Relaxed);
    let _writer = lock(&WRITER);
    publish(policies);
}

/// Adds (or replaces) one named policy, keeping the others: a read-modify-write of the
/// snapshot that concurrent writers cannot interleave.
///
/// ```
/// # use resilience_core as resilience;
/// use resilience::registry::{self, NamedPolicy};
/// use resilience::RetryPatch;
///
/// registry::set("search-api", NamedPolicy::with_retry(RetryPatch { attempts: Some(2), ..Default::default() }));
/// assert!(registry::current().get("search-api").is_some());
/// ```
pub fn set(name: impl Into<String>, policy: NamedPolicy) {
    EXPLICIT.store(true, std::sync::atomic::Ordering::Relaxed);
    let _writer = lock(&WRITER);
    let mut policies = (*CURRENT.load_full()).clone();
    policies.insert(name, policy);
    publish(policies);
}

/// Serialises writers, so each one's reconfiguration of the shared objects matches the
/// snapshot it stored. Readers never take it.
static WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn publish(policies: Policies) {
    let policies = Arc::new(policies);
    CURRENT.store(Arc::clone(&policies));
    let site_alerts = policies
        .get(DEFAULT_POLICY)
        .is_some_and(|policy| policy.alert.is_some());
    crate::families::set_site_alerts(site_alerts);
    // Stateful sections live in shared objects: change them in place, keeping their state.
    // A copy of the list, so one registering while this runs does not wait for it (it then
    // reads the snapshot stored above itself).
    let things = lock(&RECONFIGURABLE).clone();
    for thing in things {
        thing.reconfigure(&policies);
    }
}

/// The current snapshot.
pub fn current() -> Arc<Policies> {
    CURRENT.load_full()
}

/// `None`: no policy of that name. `Some(None)`: the policy has no `retry` section.
pub(crate) fn retry_patch(name: &str) -> Option<Option<RetryPatch>> {
    named_use();
    CURRENT.load().get(name).map(|policy| policy.retry)
}

/// Called on each use of a named policy: the first one loads `RESILIENCE_CONFIG`, if set.
/// Never call it while holding a lock that installing policies takes.
///
/// Policies the program installed itself (`install`, `set`, `config::load`, `watch`) win:
/// then the environment is not read.
pub(crate) fn named_use() {
    static ENVIRONMENT: std::sync::Once = std::sync::Once::new();
    ENVIRONMENT.call_once(|| {
        if !EXPLICIT.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(path) = std::env::var_os("RESILIENCE_CONFIG") {
                // A refused file is logged and counted; the sites keep their inline values.
                let _ = load_file(std::path::Path::new(&path));
            }
        }
    });
}

/// Whether the program installed policies itself.
static EXPLICIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The snapshot a site naming `policy` starts from, reporting once that the policy is not
/// loaded (`site` says who names it, for that message).
pub(crate) fn snapshot_for(site: &str, policy: &str) -> Arc<Policies> {
    named_use();
    let snapshot = current();
    if snapshot.get(policy).is_none() {
        crate::observe::policy_missing(site, policy);
    }
    snapshot
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The backend of the policy called `name`, if it names one.
#[cfg(feature = "redis")]
pub(crate) fn backend(name: &str) -> Option<Arc<crate::backend::BackendSpec>> {
    named_use();
    CURRENT
        .load()
        .by_name
        .get(name)
        .and_then(|entry| entry.backend.clone())
}

/// Where the caches of the policy called `name` keep their entries: the `cache` section's
/// own `backend` if it names one (`memory`: none), else the policy's.
#[cfg(feature = "redis")]
pub(crate) fn cache_backend(name: &str) -> Option<Arc<crate::backend::BackendSpec>> {
    named_use();
    CURRENT
        .load()
        .by_name
        .get(name)
        .and_then(|entry| entry.cache_backend.clone())
}

/// The `alert` of the policy called `name`, if it has one.
pub(crate) fn alert(name: &str) -> Option<resilience_config::AlertDoc> {
    CURRENT
        .load()
        .get(name)
        .and_then(|policy| policy.alert.clone())
}

/// The `timeout: { connect, read, total }` of the policy called `name`, if it sets one (read
/// by the HTTP client builder and the middleware).
#[cfg(feature = "reqwest")]
pub(crate) fn http_timeouts(name: &str) -> Option<resilience_config::timeout::HttpTimeouts> {
    named_use();
    CURRENT
        .load()
        .get(name)
        .and_then(|policy| policy.http_timeouts)
}

/// The `timeout` of the policy called `name`, if it sets one.
pub(crate) fn timeout(name: &str) -> Option<std::time::Duration> {
    named_use();
    CURRENT.load().get(name).and_then(|policy| policy.timeout)
}
