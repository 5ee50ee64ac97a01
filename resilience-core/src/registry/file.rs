//! Policies from a checked policy file: `resilience-config`'s documents as the registry's
//! sections (the same types: the patches), and installing them. Both `config::load` and the first use
//! of a named policy (`RESILIENCE_CONFIG`) come through here.

use std::path::Path;

use resilience_config::{ConfigErrors, PolicyDoc, PolicyFile};

use super::{NamedPolicy, Policies, install};

/// Reads and checks the policy file at `path` and installs its policies; a refused file is
/// logged and counted, and changes nothing.
pub(crate) fn load_file(path: &Path) -> Result<Policies, ConfigErrors> {
    let file = resilience_config::load(path)
        .inspect_err(|errors| crate::observe::config_failed(Some(path), errors))?;
    Ok(install_file(&file, Some(path)))
}

/// Installs the file's policies and reports it (`path`: `None` for YAML text).
pub(crate) fn install_file(file: &PolicyFile, path: Option<&Path>) -> Policies {
    let policies = Policies::from_file(file);
    install(policies.clone());
    crate::observe::config_loaded(path, file.policies.len());
    policies
}

impl Policies {
    /// The file's policies as the registry holds them.
    pub(crate) fn from_file(file: &PolicyFile) -> Policies {
        let mut policies = Policies::new();
        for (name, doc) in &file.policies {
            policies.insert(name.clone(), policy(doc));
        }
        policies
    }
}

fn policy(doc: &PolicyDoc) -> NamedPolicy {
    NamedPolicy {
        retry: doc.retry,
        rate_limit: doc.rate_limit,
        bulkhead: doc.bulkhead,
        cache: doc.cache,
        circuit_breaker: doc.circuit_breaker,
        timeout: doc.timeout,
        http_timeouts: doc.http_timeouts,
        alert: doc.alert.clone(),
        backend: doc.backend_spec().map(std::sync::Arc::new),
    }
}
