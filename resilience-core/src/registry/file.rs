//! Policies from a checked policy file, and installing them. Both `config::load` and the first
//! use of a named policy (`RESILIENCE_CONFIG`) come through here.

use std::collections::BTreeMap;
use std::path::Path;

use resilience_config::{ConfigErrors, NamedPolicy, PolicyFile};

use super::{Policies, install};

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
        for (name, policy) in &file.policies {
            policies.insert(name.clone(), policy.clone());
        }
        policies
    }
}

/// Written as a policy file's `policies:` block: each policy under its name, each value as
/// YAML writes it, so that reading it back gives the same policies.
impl serde::Serialize for Policies {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let sorted: BTreeMap<&str, &NamedPolicy> = self
            .names()
            .filter_map(|name| Some((name, self.get(name)?)))
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
