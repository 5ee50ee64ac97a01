//! Named policies from a YAML file: [`load`], [`load_str`] and [`watch`] read and check a
//! file with `resilience-config`, then install its policies in the [`registry`](crate::registry::install)
//! as one atomic snapshot.
//!
//! ```yaml
//! policies:
//!   user-api:
//!     retry: { attempts: 5, backoff: exp, base: 200ms, max_delay: 10s, jitter: 0.2 }
//!     rate_limit: { calls: 50, period: 1s, mode: wait, max_wait: 5s }
//!     cache: { enabled: true, ttl: 60s, max_entries: 10000 }
//! ```
//!
//! - Keys are the macros' keys; a value the macro refuses at compile time is refused here
//!   with the same words, and every problem is reported with its file, line, column and
//!   dotted path (`policies.user-api.retry.attemps`), with a "did you mean" hint.
//! - A loaded policy overrides the inline values of every site naming it, field by field;
//!   absent fields keep the inline value. A site naming a policy the file lacks keeps its
//!   inline values and is reported once (a `warn` event).
//! - A call in flight finishes with the snapshot it started with; the next call sees the new
//!   one. A changed rate limit or bulkhead is changed in place, keeping its state (recent
//!   admissions count against the new rate); `cache.enabled: false` bypasses and clears the
//!   caches of the sites naming the policy.
//! - [`watch`] reloads on every change of the file's content: an in-place write, an atomic
//!   rename and a Kubernetes `..data` symlink swap alike. A reload that fails validation
//!   keeps the last good policies, logs every problem at `error` level and counts it.
//! - `RESILIENCE_CONFIG=path` in the environment makes the first use of a named policy load
//!   that file (once; it is not watched: call [`watch`] for that).
//!
//! # Policies inside a service's own configuration
//!
//! [`Policies`] is a serde type: a service that reads its configuration with figment,
//! config-rs or serde itself keeps a `policies:` block there and hands it to [`install`].
//! Reading it checks every value as a policy file is checked (a bad value is an error naming
//! its path, never a value dropped); writing it gives the same block back.
//!
//! ```
//! # use resilience_core as resilience;
//! #[derive(serde::Deserialize)]
//! struct ServiceConfig {
//!     port: u16,
//!     policies: resilience::config::Policies,
//! }
//!
//! let text = r#"{"port": 8080, "policies": {"user-api": {"retry": {"attempts": 5, "base": "200ms"}}}}"#;
//! let config: ServiceConfig = serde_json::from_str(text).unwrap();
//! assert_eq!(config.port, 8080);
//! resilience::config::install(config.policies);
//!
//! let bad = r#"{"port": 8080, "policies": {"user-api": {"retry": {"attemps": 5}}}}"#;
//! let error = serde_json::from_str::<ServiceConfig>(bad).err().unwrap();
//! assert!(error.to_string().starts_with(
//!     "policies.user-api.retry.attemps: unknown `retry` key `attemps`; did you mean `attempts`?"
//! ));
//! ```
//!
//! A YAML value of `~` for `max_elapsed`, `max_wait`, `negative_ttl` or
//! `stale_while_revalidate` removes a limit the attribute sets.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

mod watcher;

pub use resilience_config::{AlertDoc, ConfigError, ConfigErrors, MAX_DOCUMENT_BYTES, PolicyFile};
#[doc(hidden)]
pub use watcher::__panic_in_reloads_holding;
pub use watcher::WatchOptions;

use crate::registry;
// The named policies, one type wherever they come from: a file, a service's own configuration
// (serde), or code.
pub use crate::registry::{NamedPolicy, Policies, install};

/// Reads and checks the policy file at `path` and installs its policies, replacing every
/// named policy at once. On error nothing changes.
///
/// ```
/// # use resilience_core as resilience;
/// # let dir = std::env::temp_dir().join(format!("resilience-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("policies.yaml");
/// std::fs::write(&path, "policies:\n  user-api:\n    retry: { attempts: 5 }\n").unwrap();
/// let policies = resilience::config::load(&path).unwrap();
/// assert!(policies.get("user-api").is_some());
///
/// std::fs::write(&path, "policies:\n  user-api:\n    retry: { attemps: 5 }\n").unwrap();
/// let errors = resilience::config::load(&path).unwrap_err();
/// assert!(errors.to_string().ends_with(
///     "policies.yaml:3:14: policies.user-api.retry.attemps: unknown `retry` key `attemps`; did you mean `attempts`?"
/// ));
/// ```
pub fn load(path: impl AsRef<Path>) -> Result<Policies, ConfigErrors> {
    registry::load_file(path.as_ref())
}

/// Checks policies written as YAML text and installs them, replacing every named policy at
/// once. On error nothing changes.
///
/// ```
/// # use resilience_core as resilience;
/// let yaml = "policies:\n  search:\n    rate_limit: { calls: 20, period: 10s }\n";
/// let policies = resilience::config::load_str(yaml).unwrap();
/// assert_eq!(policies.get("search").unwrap().rate_limit.unwrap().calls, Some(20));
///
/// let errors = resilience::config::load_str("policies:\n  search:\n    retry: { jitter: 1.5 }\n").unwrap_err();
/// assert_eq!(
///     errors.to_string(),
///     "<yaml>:3:22: policies.search.retry.jitter: `jitter` must be between 0.0 and 1.0, found 1.5"
/// );
/// ```
pub fn load_str(yaml: &str) -> Result<Policies, ConfigErrors> {
    let file = resilience_config::load_str(yaml)
        .inspect_err(|errors| crate::observe::config_failed(None, errors))?;
    Ok(registry::install_file(&file, None))
}

/// Loads the policy file at `path` now (an invalid file is an error here, at start-up), then
/// reloads it on every change until the returned [`Watch`] is dropped.
///
/// A reload that fails validation keeps the last good policies; it is logged at `error` level
/// with each problem's location, counted (`resilience_config_reloads_total{outcome="error"}`
/// and [`Watch::failed_reloads`]) and kept in [`Watch::last_error`]. So is a reload that would
/// remove every policy, one that panicked, and a file that cannot be read (see [`watch_with`]).
///
/// ```no_run
/// # use resilience_core as resilience;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let _watch = resilience::config::watch("policies.yaml")?;
/// // ... the service runs; edits to policies.yaml apply to the next call
/// # Ok(())
/// # }
/// ```
pub fn watch(path: impl AsRef<Path>) -> Result<Watch, ConfigErrors> {
    watch_with(path, WatchOptions::default())
}

/// [`watch`] with options: [`WatchOptions::allow_empty`] lets a reload remove every policy.
///
/// When a content is applied: after its writer closes the file (an in-place write) and the
/// file's size and modification time hold still for 25 ms; a content that removes policies
/// only once the file has not changed for 300 ms (a half-written file is not applied); a
/// file with no policies while some are in force is refused unless allowed. A panic while
/// reloading is a failed reload, and watching goes on. Only a regular file of at most
/// [`MAX_DOCUMENT_BYTES`] is read: a FIFO or a device in its place is refused without blocking.
/// Dropping the [`Watch`] waits at most 250 ms for the watching thread.
///
/// ```no_run
/// # use resilience_core as resilience;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use resilience::config::{self, WatchOptions};
/// // An empty `policies:` returns every site to its inline values instead of being refused.
/// let _watch = config::watch_with("policies.yaml", WatchOptions::new().allow_empty(true))?;
/// # Ok(())
/// # }
/// ```
pub fn watch_with(path: impl AsRef<Path>, options: WatchOptions) -> Result<Watch, ConfigErrors> {
    let path = path.as_ref().to_path_buf();
    let state = Arc::new(WatchState::default());
    let on_reload = {
        let (state, path) = (Arc::clone(&state), path.clone());
        move |reload: watcher::Reload| match reload {
            Ok(file) => {
                registry::install_file(&file, Some(&path));
                state.reloads.fetch_add(1, Ordering::SeqCst);
            }
            Err(errors) => {
                crate::observe::config_failed(Some(&path), &errors);
                *state
                    .last_error
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(errors);
                state.failed.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let (file, watcher) = watcher::watch_with(&path, options, on_reload)
        .inspect_err(|errors| crate::observe::config_failed(Some(&path), errors))?;
    registry::install_file(&file, Some(&path));
    Ok(Watch {
        _watcher: watcher,
        state,
        path,
    })
}

/// A watched policy file. Dropping it stops watching; the policies last loaded stay.
#[derive(Debug)]
#[must_use = "dropping the guard stops watching the file"]
pub struct Watch {
    _watcher: watcher::Watcher,
    state: Arc<WatchState>,
    path: PathBuf,
}

#[derive(Debug, Default)]
struct WatchState {
    reloads: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<ConfigErrors>>,
}

impl Watch {
    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reloads applied since the watch started (the first load not counted).
    pub fn reloads(&self) -> u64 {
        self.state.reloads.load(Ordering::SeqCst)
    }

    /// Reloads refused (the previous policies stayed in force).
    pub fn failed_reloads(&self) -> u64 {
        self.state.failed.load(Ordering::SeqCst)
    }

    /// The problems of the last refused reload, if any.
    pub fn last_error(&self) -> Option<ConfigErrors> {
        self.state
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The file's policies as the registry holds them.
pub fn policies(file: &PolicyFile) -> Policies {
    Policies::from_file(file)
}
