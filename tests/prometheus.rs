//! The metrics end to end, as an operator sees them: `metrics-exporter-prometheus` installed
//! as the global recorder and serving `/metrics` on a free loopback port, calls driven
//! through the macros (retries, a give-up, a rate-limit wait and refusal, a breaker opened,
//! a timeout, a full bulkhead, cache hits and misses), then one scrape checked: each family's
//! HELP and TYPE lines, and each family's labels on its series. The README's metrics table
//! is checked against the same list.
//!
//! One test: the recorder is the process's, installed once.

mod common;

use common::ApiError;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use resilience::{HttpError, bulkhead, cached, circuit_breaker, rate_limited, retry, timeout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every family a scrape must show after the workload: name, TYPE, the labels of its
/// series (histograms' `le` aside), and a series it must have.
const FAMILIES: &[(&str, &str, &[&str], &str)] = &[
    (
        "resilience_calls_total",
        "counter",
        &["outcome", "policy", "site"],
        r#"outcome="ok_after_retry""#,
    ),
    (
        "resilience_call_duration_seconds",
        "histogram",
        &["outcome", "policy", "site"],
        r#"outcome="error_after_retry""#,
    ),
    (
        "resilience_retries_total",
        "counter",
        &["class", "policy", "site"],
        r#"class="503""#,
    ),
    (
        "resilience_retry_give_ups_total",
        "counter",
        &["class", "policy", "site"],
        r#"site="prometheus::down""#,
    ),
    (
        "resilience_retry_wait_seconds",
        "histogram",
        &["policy", "site"],
        r#"site="prometheus::flaky""#,
    ),
    (
        "resilience_rate_limit_waits_total",
        "counter",
        &["policy", "site"],
        r#"site="prometheus::paced""#,
    ),
    (
        "resilience_rate_limit_wait_seconds",
        "histogram",
        &["policy", "site"],
        r#"site="prometheus::paced""#,
    ),
    (
        "resilience_rate_limit_rejections_total",
        "counter",
        &["policy", "site"],
        r#"site="prometheus::scarce""#,
    ),
    (
        "resilience_breaker_state",
        "gauge",
        &["breaker", "state"],
        r#"state="open""#,
    ),
    (
        "resilience_breaker_transitions_total",
        "counter",
        &["breaker", "to"],
        r#"to="open""#,
    ),
    (
        "resilience_breaker_refused_total",
        "counter",
        &["policy", "site"],
        r#"site="prometheus::fragile""#,
    ),
    (
        "resilience_timeouts_total",
        "counter",
        &["policy", "site"],
        r#"site="prometheus::slow""#,
    ),
    (
        "resilience_bulkhead_rejections_total",
        "counter",
        &["policy", "site"],
        r#"site="prometheus::narrow""#,
    ),
    (
        "resilience_cache_hits_total",
        "counter",
        &["site"],
        r#"site="prometheus::square""#,
    ),
    (
        "resilience_cache_misses_total",
        "counter",
        &["site"],
        r#"site="prometheus::square""#,
    ),
    (
        "resilience_cache_loads_total",
        "counter",
        &["site"],
        r#"site="prometheus::square""#,
    ),
    (
        "resilience_cache_load_duration_seconds",
        "histogram",
        &["site"],
        r#"site="prometheus::square""#,
    ),
];

/// Families the workload does not reach (a policy file, Redis, an alert), listed in the
/// README all the same.
const ELSEWHERE: &[&str] = &[
    "resilience_cache_stale_total",
    "resilience_cache_load_errors_total",
    "resilience_cache_evictions_total",
    "resilience_rate_limit_slowdowns_total",
    "resilience_rate_limit_server_pauses_total",
    "resilience_rate_limit_server_limits_total",
    "resilience_config_reloads_total",
    "resilience_policy_missing_total",
    "resilience_alerts_total",
    "resilience_alert_firing",
    "resilience_backend_errors_total",
];

static FLAKY: AtomicU32 = AtomicU32::new(0);

/// 503 on its first try, then 200: one retry, `ok_after_retry`.
#[retry(attempts = 3, base = "1ms")]
async fn flaky() -> Result<u32, HttpError> {
    match FLAKY.fetch_add(1, Ordering::Relaxed) {
        0 => Err(HttpError::new(503)),
        n => Ok(n),
    }
}

/// Always 503: one retry, then it gives up (`error_after_retry`).
#[retry(attempts = 2, base = "1ms")]
async fn down() -> Result<u32, HttpError> {
    Err(HttpError::new(503))
}

#[retry]
async fn fine() -> Result<u32, HttpError> {
    Ok(7)
}

#[rate_limited(calls = 1, period = "1h", mode = "reject")]
async fn scarce() -> Result<(), ApiError> {
    Ok(())
}

/// One call each 20 ms: the second call in a row waits.
#[rate_limited(calls = 50, period = "1s")]
async fn paced() -> Result<(), ApiError> {
    Ok(())
}

/// One failure in a window of one opens it.
#[circuit_breaker(min_calls = 1, window = 1, open_for = "1h")]
async fn fragile() -> Result<(), ApiError> {
    Err(ApiError::Http(HttpError::new(503)))
}

#[timeout("5ms")]
async fn slow() -> Result<(), ApiError> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(())
}

#[bulkhead(max_concurrent = 1)]
async fn narrow(hold: Duration) -> Result<(), ApiError> {
    tokio::time::sleep(hold).await;
    Ok(())
}

#[cached(ttl = "60s")]
async fn square(n: u64) -> u64 {
    n * n
}

/// Drives every family in [`FAMILIES`] at least once.
async fn workload() {
    assert_eq!(fine().await, Ok(7));
    assert_eq!(flaky().await, Ok(1));
    assert_eq!(down().await, Err(HttpError::new(503)));
    assert_eq!(scarce().await, Ok(()));
    assert!(matches!(
        scarce().await,
        Err(ApiError::Rejected(resilience::Rejected::RateLimited { .. }))
    ));
    assert_eq!(paced().await, Ok(()));
    assert_eq!(paced().await, Ok(()));
    assert!(fragile().await.is_err());
    assert!(matches!(
        fragile().await,
        Err(ApiError::Rejected(resilience::Rejected::CircuitOpen { .. }))
    ));
    assert!(matches!(
        slow().await,
        Err(ApiError::Rejected(resilience::Rejected::Timeout { .. }))
    ));
    let holder = tokio::spawn(narrow(Duration::from_millis(200)));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        narrow(Duration::ZERO).await,
        Err(ApiError::Rejected(resilience::Rejected::BulkheadFull))
    );
    assert_eq!(holder.await.ok(), Some(Ok(())));
    assert_eq!(square(3).await, 9);
    assert_eq!(square(3).await, 9);
    // Hands the caches' counts to the recorder (they are reported when read).
    let stats = resilience::stats();
    let counts = stats
        .site("prometheus::square")
        .and_then(|site| site.cache)
        .expect("the cache's counts");
    assert_eq!((counts.hits, counts.misses, counts.loads), (1, 1, 1));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}

/// `GET /metrics` over a plain TCP connection; the body.
async fn scrape(port: u16) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the exporter listens");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response read");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "scrape answered: {}",
        response.lines().next().unwrap_or_default()
    );
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default();
    body.to_string()
}

/// The label names of one series line (`le` aside).
fn label_names(line: &str) -> BTreeSet<String> {
    let Some((_, rest)) = line.split_once('{') else {
        return BTreeSet::new();
    };
    let labels = rest.rsplit_once('}').map_or(rest, |(labels, _)| labels);
    labels
        .split("\",")
        .filter_map(|pair| {
            pair.split_once('=')
                .map(|(name, _)| name.trim().to_string())
        })
        .filter(|name| name != "le")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_shows_every_family_with_help_type_and_labels() {
    let port = free_port();
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(([127, 0, 0, 1], port))
        // The alert rules read the bucket at 30 s (`ops/alerts.yml`).
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_string()),
            &[0.005, 0.05, 0.5, 1.0, 5.0, 30.0, 60.0],
        )
        .expect("buckets")
        .build()
        .expect("the exporter");
    metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");
    tokio::spawn(exporter);
    resilience::stats::enable_metrics();

    workload().await;

    let body = scrape(port).await;
    for &(name, kind, labels, series) in FAMILIES {
        let help = format!("# HELP {name} ");
        assert!(
            body.lines()
                .any(|line| line.starts_with(&help) && line.len() > help.len()),
            "no HELP line for {name} in:\n{body}"
        );
        assert!(
            body.lines()
                .any(|line| line == format!("# TYPE {name} {kind}")),
            "no `# TYPE {name} {kind}` in:\n{body}"
        );
        let sample = match kind {
            "histogram" => format!("{name}_bucket{{"),
            _ => format!("{name}{{"),
        };
        let lines: Vec<&str> = body
            .lines()
            .filter(|line| line.starts_with(&sample))
            .collect();
        assert!(!lines.is_empty(), "no series of {name} in:\n{body}");
        let expected: BTreeSet<String> = labels.iter().map(|label| label.to_string()).collect();
        for line in &lines {
            assert_eq!(label_names(line), expected, "labels of {line}");
        }
        assert!(
            lines.iter().any(|line| line.contains(series)),
            "no {name} series with {series} in:\n{}",
            lines.join("\n")
        );
    }

    // The exact values of what the workload did.
    let value = |series: &str| -> f64 {
        body.lines()
            .find(|line| line.starts_with(series))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in:\n{body}"))
    };
    let calls = |site: &str, outcome: &str| {
        value(&format!(
            r#"resilience_calls_total{{site="prometheus::{site}",policy="",outcome="{outcome}"}}"#
        ))
    };
    assert_eq!(calls("fine", "ok"), 1.0);
    assert_eq!(calls("flaky", "ok_after_retry"), 1.0);
    assert_eq!(calls("down", "error_after_retry"), 1.0);
    assert_eq!(
        value(r#"resilience_retries_total{site="prometheus::down",policy="",class="503"}"#),
        1.0
    );
    assert_eq!(
        value(r#"resilience_breaker_state{breaker="prometheus::fragile",state="open"}"#),
        1.0
    );
    assert_eq!(
        value(r#"resilience_breaker_state{breaker="prometheus::fragile",state="closed"}"#),
        0.0
    );
    assert_eq!(
        value(r#"resilience_cache_hits_total{site="prometheus::square"}"#),
        1.0
    );
    assert_eq!(
        value(r#"resilience_cache_misses_total{site="prometheus::square"}"#),
        1.0
    );

    // `ops/alerts.yml` counts the calls slower than 30 s from the bucket `le="30"`.
    assert!(
        body.lines().any(|line| line
            .starts_with(r#"resilience_call_duration_seconds_bucket{site="prometheus::down",policy="",outcome="error_after_retry",le="30"}"#)),
        "no bucket at 30 s in:\n{body}"
    );

    // The README's table lists every family, each once.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("the README");
    let names = FAMILIES
        .iter()
        .map(|family| family.0)
        .chain(ELSEWHERE.iter().copied());
    for name in names {
        let row = format!("| `{name}` |");
        assert_eq!(
            readme.matches(&row).count(),
            1,
            "the README's metrics table needs one row `{row} ...`"
        );
    }
}
