//! The cost per request of `resilience::http::ResilienceMiddleware` against a loopback HTTP
//! server, beside a bare `reqwest_middleware` client and reqwest-retry's
//! `RetryTransientMiddleware` (the middleware a user would pick instead). Every request
//! succeeds at its first try, so what differs is each middleware's own work: copying the
//! request for a possible retry, and (ours) the policy's sections and reading the answer's
//! status and quota headers.
//!
//! The server is a keep-alive HTTP/1.1 responder on its own thread and runtime (a fixed
//! `200 OK` with a 2-byte body); the clients run on a current-thread runtime through
//! criterion's `to_async`, one request and its body per iteration, on one pooled connection.
//! The cases of group `http_middleware`:
//!
//! - `bare`: `reqwest_middleware::ClientBuilder::new(client).build()`, no middleware;
//! - `reqwest_retry`: `RetryTransientMiddleware` with `ExponentialBackoff` of 3 retries;
//! - `resilience_retry`: `ResilienceMiddleware::policy` of a policy with only
//!   `retry: { attempts: 3 }`;
//! - `resilience_full`: a policy with every section: bulkhead (10^6), rate limit (10^9 per
//!   second), retry, circuit breaker and `timeout: 3s`.
//!
//! ```text
//! cargo bench -p resilience-benches --bench http_middleware -- --warm-up-time 1 --measurement-time 5
//! benches/table.sh http   # the same, then the medians and their ratios to `bare` and to `reqwest_retry`
//! ```
//!
//! The group `http_middleware_overhead` runs the same four cases with the transport replaced by
//! a middleware that answers at once (no socket): the middlewares' own cost per request.
//!
//! A loopback round trip costs tens of microseconds and moves with the machine's load, so the
//! cases run in alternation per sample (criterion's order would put minutes between them).

use std::time::Duration;

use criterion::Criterion;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use resilience::http::ResilienceMiddleware;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const POLICIES: &str = "
policies:
  bench-http-retry:
    retry: { attempts: 3 }
  bench-http-full:
    bulkhead: { max_concurrent: 1000000 }
    rate_limit: { calls: 1000000000, period: 1s }
    retry: { attempts: 3 }
    circuit_breaker: { failure_rate: 0.5, min_calls: 10, window: 20, open_for: 30s }
    timeout: 3s
";

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Starts the server on its own thread; its URL.
fn server() -> String {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/", std_listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(keep_alive(stream));
            }
        });
    });
    url
}

/// Answers every request head on the connection until the client closes it.
async fn keep_alive(mut stream: tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let (mut pending, mut buf) = (Vec::new(), [0u8; 4096]);
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            if stream.write_all(ANSWER).await.is_err() {
                return;
            }
        }
    }
}

fn inner() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn one(client: &ClientWithMiddleware, url: &str) {
    let response = client.get(url).send().await.expect("answer");
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await.expect("body");
}

/// Answers every request itself, in place of the transport: the `overhead` group measures the
/// middlewares' own work without a round trip.
struct Canned;

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Canned {
    async fn handle(
        &self,
        _: reqwest::Request,
        _: &mut http::Extensions,
        _: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        Ok(reqwest::Response::from(http::Response::new("ok")))
    }
}

/// The same four cases, each answered by [`Canned`] under its middleware, in alternation.
fn overhead(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let retry = ExponentialBackoff::builder().build_with_max_retries(3);
    let cases: Vec<(&str, ClientWithMiddleware)> = vec![
        ("bare", ClientBuilder::new(inner()).with(Canned).build()),
        (
            "reqwest_retry",
            ClientBuilder::new(inner())
                .with(RetryTransientMiddleware::new_with_policy(retry))
                .with(Canned)
                .build(),
        ),
        (
            "resilience_retry",
            ClientBuilder::new(inner())
                .with(ResilienceMiddleware::policy("bench-http-retry"))
                .with(Canned)
                .build(),
        ),
        (
            "resilience_full",
            ClientBuilder::new(inner())
                .with(ResilienceMiddleware::policy("bench-http-full"))
                .with(Canned)
                .build(),
        ),
    ];
    alternated(
        c,
        runtime,
        "http_middleware_overhead",
        &cases,
        |client| async move {
            let response = client
                .get("http://127.0.0.1:1/")
                .send()
                .await
                .expect("canned");
            std::hint::black_box(response.status());
        },
    );
}

/// Times `one` on every case in alternation: each sample of each case is a batch timed by
/// hand, the cases taking turns, so a change in the machine's load reaches them all alike.
/// The median batch of each case goes to `target/criterion/<group>/alternated.json`.
fn alternated<'a, F, Fut>(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    group: &str,
    cases: &'a [(&str, ClientWithMiddleware)],
    one: F,
) where
    F: Fn(&'a ClientWithMiddleware) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut batches: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut bench = c.benchmark_group(group);
    bench.bench_function("alternated", |b| {
        b.iter_custom(|iterations| {
            let mut totals = vec![Duration::ZERO; cases.len()];
            runtime.block_on(async {
                for iteration in 0..iterations {
                    // Each round starts with the next case, so none always follows another.
                    for turn in 0..cases.len() {
                        let index = (turn + iteration as usize) % cases.len();
                        let start = std::time::Instant::now();
                        one(&cases[index].1).await;
                        totals[index] += start.elapsed();
                    }
                }
            });
            for (batch, total) in batches.iter_mut().zip(&totals) {
                batch.push(total.as_nanos() as f64 / iterations.max(1) as f64);
            }
            totals.iter().sum()
        })
    });
    bench.finish();
    report(group, cases, &batches);
}
fn bench(c: &mut Criterion) {
    resilience::config::load_str(POLICIES).expect("policies");
    let url = server();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let retry = ExponentialBackoff::builder().build_with_max_retries(3);
    let cases: Vec<(&str, ClientWithMiddleware)> = vec![
        ("bare", ClientBuilder::new(inner()).build()),
        (
            "reqwest_retry",
            ClientBuilder::new(inner())
                .with(RetryTransientMiddleware::new_with_policy(retry))
                .build(),
        ),
        (
            "resilience_retry",
            ClientBuilder::new(inner())
                .with(ResilienceMiddleware::policy("bench-http-retry"))
                .build(),
        ),
        (
            "resilience_full",
            ClientBuilder::new(inner())
                .with(ResilienceMiddleware::policy("bench-http-full"))
                .build(),
        ),
    ];
    // Warm each client's pooled connection.
    for (_, client) in &cases {
        runtime.block_on(one(client, &url));
    }
    alternated(c, &runtime, "http_middleware", &cases, |client| {
        one(client, &url)
    });
    overhead(c, &runtime);
}

/// The median batch of each case, written to `target/criterion/<group>/alternated.json` for
/// `benches/table.sh http`.
fn report(group: &str, cases: &[(&str, ClientWithMiddleware)], batches: &[Vec<f64>]) {
    let medians: Vec<(String, f64)> = cases
        .iter()
        .zip(batches)
        .map(|((name, _), batch)| {
            let mut sorted = batch.clone();
            sorted.sort_by(f64::total_cmp);
            (
                name.to_string(),
                sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN),
            )
        })
        .collect();
    let json = serde_json::to_string_pretty(&medians).expect("json");
    // cargo runs a bench in its package's directory: the workspace's target is beside it.
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    let dir = std::path::Path::new(&target).join("criterion").join(group);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("alternated.json"), &json);
    for (name, median) in &medians {
        println!("{group}/{name}: {median:.0} ns per request");
    }
}

// What `criterion_group!` + `criterion_main!` expand to, written out so the generated
// `pub fn` does not trip the workspace's `missing_docs` lint.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
