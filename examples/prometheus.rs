//! Prometheus end to end: `/metrics` served on loopback while a small workload runs.
//!
//! `cargo run --example prometheus` (then `curl http://127.0.0.1:9898/metrics`; another
//! port with `PORT=9899`). It runs for 20 seconds (`RUN_SECONDS=120` for longer), then prints the
//! library's series from one scrape of its own and exits.
//!
//! The workload: a backend that answers 503 to one call in four (`#[retry]` retries it), a
//! rate limit of 20 calls a second in front of it, and a cache of lookups. Point a Prometheus
//! at the port and load `ops/alerts.yml` and `ops/dashboard.json` to see the alerts and the
//! dashboard the crate ships.
//!
//! The exporter is `metrics-exporter-prometheus` (the library itself emits through the
//! `metrics` facade only). Histograms need buckets (without them the exporter renders
//! summaries); the alert rules read the bucket at 30 s, so keep one there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use resilience::{HttpError, Rejected, cached, rate_limited, retry};

/// The errors of the backend and of the library's own refusals.
#[derive(Debug)]
enum BackendError {
    Http(HttpError),
    Refused(Rejected),
}

impl From<Rejected> for BackendError {
    fn from(rejected: Rejected) -> Self {
        BackendError::Refused(rejected)
    }
}

impl resilience::Classify for BackendError {
    fn class(&self) -> resilience::ErrorClass {
        self.classification().class
    }
    fn classification(&self) -> resilience::Classification {
        match self {
            BackendError::Http(error) => error.classification(),
            BackendError::Refused(rejected) => rejected.classification(),
        }
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Http(error) => write!(f, "{error}"),
            BackendError::Refused(rejected) => write!(f, "{rejected}"),
        }
    }
}

static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// The backend: one request in four answers 503.
#[rate_limited(calls = 20, period = "1s")]
#[retry(attempts = 3, base = "20ms")]
async fn fetch_order(id: u64) -> Result<u64, BackendError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    match REQUESTS.fetch_add(1, Ordering::Relaxed) % 4 {
        3 => Err(BackendError::Http(HttpError::new(503))),
        _ => Ok(id),
    }
}

/// A lookup worth caching: 16 keys, so most calls hit.
#[cached(ttl = "5s")]
async fn region(id: u64) -> String {
    tokio::time::sleep(Duration::from_millis(2)).await;
    format!("region-{id}")
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = u16::try_from(env_number("PORT", 9898))?;
    let run_for = Duration::from_secs(env_number("RUN_SECONDS", 20));
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(([127, 0, 0, 1], port))
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_string()),
            &[0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0],
        )?
        .build()?;
    metrics::set_global_recorder(recorder)?;
    tokio::spawn(exporter);
    // After the recorder: HELP texts, and the per-call families.
    resilience::stats::enable_metrics();
    println!("serving http://127.0.0.1:{port}/metrics for {run_for:?}");

    let started = Instant::now();
    let mut id = 0u64;
    while started.elapsed() < run_for {
        id += 1;
        if let Err(error) = fetch_order(id).await {
            println!("order {id}: {error}");
        }
        region(id % 16).await;
    }

    // One scrape of our own: the library's series.
    let body = scrape(port).await?;
    for line in body.lines().filter(|line| {
        line.starts_with("resilience_") && !line.contains("_bucket{") || line.starts_with("# HELP")
    }) {
        println!("{line}");
    }
    Ok(())
}

async fn scrape(port: u16) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default())
}
