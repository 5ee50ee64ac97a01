//! Policies from a checked policy file: `resilience-config`'s documents as the registry's
//! sections (the same types: the patches), and installing them. Both `config::load` and the first use
//! of a named policy (`RESILIENCE_CONFIG`) come through here.

use std::collections::BTreeMap;
use std::path::Path;

use resilience_config::{BackendName, ConfigErrors, PolicyDoc, PolicyFile};

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

/// A policy as its file would say it: the backend's spec as its four keys.
fn doc(policy: &NamedPolicy) -> PolicyDoc {
    let mut doc = PolicyDoc::default();
    doc.retry = policy.retry;
    doc.rate_limit = policy.rate_limit;
    doc.bulkhead = policy.bulkhead;
    doc.cache = policy.cache;
    doc.circuit_breaker = policy.circuit_breaker;
    doc.timeout = policy.timeout;
    doc.alert = policy.alert.clone();
    if let Some(backend) = &policy.backend {
        doc.backend = Some(BackendName::Redis(backend.url.clone()));
        doc.backend_timeout = Some(backend.timeout);
        doc.on_backend_error = Some(backend.on_error);
        doc.key_prefix = Some(backend.key_prefix.clone());
    }
    doc
}

/// Written as a policy file's `policies:` block: each policy under its name, each value as
/// YAML writes it, so that reading it back gives the same policies.
impl serde::Serialize for Policies {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let sorted: BTreeMap<&str, PolicyDoc> = self
            .by_name
            .iter()
            .map(|(name, policy)| (name.as_str(), doc(policy)))
            .collect();
        sorted.serialize(serializer)
    }
}

/// Read as a policy file's `policies:` block, from any self-describing format, with every check
/// a policy file gets ([`resilience_config::deserialize_policies`]): a bad value is an error.
impl<'de> serde::Deserialize<'de> for Policies {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let policies = resilience_config::deserialize_policies(deserializer)?;
        Ok(Policies::from_file(&PolicyFile { policies }))
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
        cache_backend: doc.cache_backend_spec().map(std::sync::Arc::new),
    }
}
