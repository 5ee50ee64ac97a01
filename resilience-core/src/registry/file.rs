//! Policies from a checked policy file: the conversion of `resilience-config`'s documents
//! into the registry's sections, and installing them. Both `config::load` and the first use
//! of a named policy (`RESILIENCE_CONFIG`) come through here.

use std::path::Path;

use resilience_config::{
    BackoffName, ConfigErrors, JitterValue, ModeName, OnItem, PolicyDoc, PolicyFile, RetryDoc,
};

use super::{NamedPolicy, Policies, install};
use crate::bulkhead::BulkheadPatch;
use crate::cache::CachePatch;
use crate::rate_limit::{LimitMode, RateLimitPatch};
use crate::retry::{Backoff, Jitter, RetryOn, RetryPatch};

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
        retry: doc.retry.as_ref().map(retry),
        rate_limit: doc.rate_limit.as_ref().map(|doc| RateLimitPatch {
            calls: doc.calls,
            period: doc.period,
            burst: doc.burst,
            mode: doc.mode.map(|mode| match mode {
                ModeName::Wait => LimitMode::Wait,
                ModeName::Reject => LimitMode::Reject,
            }),
            max_wait: doc.max_wait,
            cost: doc.cost,
        }),
        bulkhead: doc.bulkhead.as_ref().map(|doc| BulkheadPatch {
            max_concurrent: doc.max_concurrent,
            max_wait: doc.max_wait,
        }),
        cache: doc.cache.as_ref().map(|doc| CachePatch {
            ttl: doc.ttl,
            max_entries: doc.max_entries,
            ttl_jitter: doc.ttl_jitter,
            negative_ttl: doc.negative_ttl,
            stale_while_revalidate: doc.stale_while_revalidate,
            enabled: doc.enabled,
        }),
        circuit_breaker: doc.circuit_breaker.clone(),
        timeout: doc.timeout,
        alert: doc.alert.clone(),
        backend: crate::backend::BackendSpec::from_doc(doc).map(std::sync::Arc::new),
    }
}

fn retry(doc: &RetryDoc) -> RetryPatch {
    RetryPatch {
        attempts: doc.attempts,
        backoff: doc.backoff.map(|backoff| match backoff {
            BackoffName::Exp => Backoff::Exponential,
            BackoffName::Linear => Backoff::Linear,
            BackoffName::Constant => Backoff::Constant,
        }),
        base: doc.base,
        factor: doc.factor,
        max_delay: doc.max_delay,
        max_elapsed: doc.max_elapsed,
        jitter: doc.jitter.map(|jitter| match jitter {
            JitterValue::Fraction(fraction) => Jitter::Fraction(fraction),
            JitterValue::Full => Jitter::Full,
            JitterValue::Equal => Jitter::Equal,
            JitterValue::Decorrelated => Jitter::Decorrelated,
        }),
        on: doc.on.as_ref().map(|items| {
            items.iter().fold(RetryOn::NONE, |on, item| match *item {
                OnItem::Timeout => on.timeout(),
                OnItem::Connect => on.connect(),
                OnItem::Transient => on.transient(),
                OnItem::Status(code) => on.status(code),
                OnItem::Class(hundreds) => on.class(hundreds),
            })
        }),
        retry_after: doc.retry_after,
    }
}
