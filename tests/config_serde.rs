//! `resilience::config::Policies` as a serde type: a service keeps its `policies:` block in
//! its own configuration, deserializes it with the rest, and installs it; a bad value is
//! refused with the path and the words a policy file gets; writing it back gives the same
//! policies.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::config::{self, Policies};
use resilience::{HttpError, registry, retry};
use serde::{Deserialize, Serialize};

/// A service's own configuration, with the library's policies inside it.
#[derive(Debug, PartialEq, Deserialize, Serialize)]
struct ServiceConfig {
    listen: String,
    workers: u32,
    policies: Policies,
}

const SERVICE_YAML: &str = "\
listen: 127.0.0.1:8080
workers: 4
policies:
  serde.user-api:
    retry: { attempts: 4, backoff: constant, base: 1m30s, max_delay: 2m, jitter: 0.0, on: [Timeout, Connect, 429, 5xx] }
    rate_limit: { calls: 50, period: 1s, burst: 5, mode: wait, max_wait: 5s, cost: 2 }
    cache: { enabled: true, ttl: 60s, ttl_jitter: 0.1, max_entries: 10000, negative_ttl: ~ }
    circuit_breaker: { failure_rate: 0.5, min_calls: 10, window: 20, open_for: 30s, half_open_calls: 3 }
    timeout: 1500ms
    bulkhead: { max_concurrent: 20, max_wait: 250ms }
    alert: { retry_rate: 0.2, window: 5m }
  serde.search:
    retry: { attempts: 2, jitter: full, retry_after: false, max_elapsed: 10s }
    backend: redis://127.0.0.1:6379/0
    backend_timeout: 20ms
    on_backend_error: local
    key_prefix: \"svc:\"
";

static CALLS: AtomicU32 = AtomicU32::new(0);

/// Inline: one try. The installed policy says four, one and a half minutes apart.
#[retry(attempts = 1, policy = "serde.user-api")]
async fn user(id: u64) -> Result<u64, HttpError> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    let _ = id;
    Err(HttpError::new(503))
}

#[tokio::test(start_paused = true)]
async fn a_policies_block_in_a_service_config_is_read_installed_and_followed() {
    let service: ServiceConfig = serde_yaml::from_str(SERVICE_YAML).expect("a valid config");
    assert_eq!(
        (service.listen.as_str(), service.workers),
        ("127.0.0.1:8080", 4)
    );
    // The same policies as the file loader reads from the block alone.
    let block = SERVICE_YAML.split_once("policies:\n").expect("a block").1;
    let from_file = config::load_str(&format!("policies:\n{block}")).expect("the same block");
    assert_eq!(service.policies, from_file);

    config::install(service.policies);
    let installed = registry::current();
    let policy = installed.get("serde.user-api").expect("installed");
    assert_eq!(policy.retry.and_then(|retry| retry.attempts), Some(4));
    assert_eq!(policy.timeout, Some(Duration::from_millis(1500)));
    let backend = installed.get("serde.search").and_then(|p| p.backend_spec());
    assert_eq!(backend.map(|b| b.key_prefix), Some("svc:".to_string()));

    let started = tokio::time::Instant::now();
    assert_eq!(user(7).await, Err(HttpError::new(503)));
    assert_eq!(CALLS.load(Ordering::SeqCst), 4);
    assert_eq!(started.elapsed(), Duration::from_secs(3 * 90));
}

#[test]
fn policies_written_back_read_as_the_same_policies() {
    let service: ServiceConfig = serde_yaml::from_str(SERVICE_YAML).expect("a valid config");

    let yaml = serde_yaml::to_string(&service).expect("serializable");
    let again: ServiceConfig = serde_yaml::from_str(&yaml).expect("reads back");
    assert_eq!(again, service, "{yaml}");

    let json = serde_json::to_string(&service).expect("serializable");
    let again: ServiceConfig = serde_json::from_str(&json).expect("reads back");
    assert_eq!(again, service, "{json}");

    // Values are written as a policy file writes them.
    for written in [
        "base: 90s",
        "max_delay: 2m",
        "- 5xx",
        "- 429",
        "backoff: constant",
        "jitter: full",
        "negative_ttl: null",
        "on_backend_error: local",
        "timeout: 1500ms",
    ] {
        assert!(yaml.contains(written), "{written} in\n{yaml}");
    }
}

#[test]
fn a_bad_value_in_the_block_is_refused_with_its_path_and_the_rule() {
    let with = |policy: &str| format!("listen: x\nworkers: 1\npolicies:\n  api:\n    {policy}\n");
    let refused = |policy: &str| {
        serde_yaml::from_str::<ServiceConfig>(&with(policy))
            .expect_err("refused")
            .to_string()
    };
    let message = refused("retry: { jitter: 1.5 }");
    assert!(
        message
            .contains("policies.api.retry.jitter: `jitter` must be between 0.0 and 1.0, found 1.5"),
        "{message}"
    );
    let message = refused("retry: { attemps: 3 }");
    assert!(
        message.contains(
            "policies.api.retry.attemps: unknown `retry` key `attemps`; did you mean `attempts`?"
        ),
        "{message}"
    );
    let message = refused("rate_limit: { calls: 0, period: 10x }");
    assert!(
        message.contains("policies.api.rate_limit.calls: `calls` must be at least 1, found 0"),
        "{message}"
    );
    assert!(
        message.contains("policies.api.rate_limit.period: invalid duration `10x` for `period`"),
        "every problem is reported: {message}"
    );

    let json = r#"{"listen": "x", "workers": 1, "policies": {"api": {"timeout": 3}}}"#;
    let message = serde_json::from_str::<ServiceConfig>(json)
        .expect_err("refused")
        .to_string();
    assert!(
        message.starts_with(
            "policies.api.timeout: `timeout` needs a unit: `3` alone is ambiguous; write `3s` or `3ms`"
        ),
        "{message}"
    );
}
