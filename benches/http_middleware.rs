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

use criterion::Criterion;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use resilience::http::ResilienceMiddleware;

mod loopback;

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

/// The four cases, each answered by [`Canned`] under its middleware.
fn canned_cases() -> Vec<(&'static str, ClientWithMiddleware)> {
    let retry = ExponentialBackoff::builder().build_with_max_retries(3);
    vec![
        (
            "bare",
            ClientBuilder::new(loopback::client()).with(Canned).build(),
        ),
        (
            "reqwest_retry",
            ClientBuilder::new(loopback::client())
                .with(RetryTransientMiddleware::new_with_policy(retry))
                .with(Canned)
                .build(),
        ),
        (
            "resilience_retry",
            ClientBuilder::new(loopback::client())
                .with(ResilienceMiddleware::policy("bench-http-retry"))
                .with(Canned)
                .build(),
        ),
        (
            "resilience_full",
            ClientBuilder::new(loopback::client())
                .with(ResilienceMiddleware::policy("bench-http-full"))
                .with(Canned)
                .build(),
        ),
    ]
}

/// One request answered by [`Canned`].
async fn canned(client: &ClientWithMiddleware) {
    let response = client
        .get("http://127.0.0.1:1/")
        .send()
        .await
        .expect("canned");
    std::hint::black_box(response.status());
}

/// The same four cases, each answered by [`Canned`] under its middleware, in alternation.
fn overhead(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let cases = canned_cases();
    loopback::alternated(c, runtime, "http_middleware_overhead", &cases, canned);
}

/// `--count CASE N`: N requests of the overhead group's CASE and nothing else, for an
/// instruction count that does not move with the machine's load:
///
/// ```text
/// B=$(ls target/release/deps/http_middleware-* | grep -v '\.d$')
/// for n in 1000 11000; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n $B --count resilience_retry $n; done
/// # instructions per request: (total at 11000 - total at 1000) / 10000 (`callgrind_annotate`'s totals)
/// ```
fn count(case: &str, n: u64) {
    resilience::config::load_str(POLICIES).expect("policies");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cases = canned_cases();
    let Some((_, client)) = cases.iter().find(|(name, _)| *name == case) else {
        panic!("no case {case}: bare, reqwest_retry, resilience_retry or resilience_full");
    };
    runtime.block_on(async {
        for _ in 0..n {
            canned(client).await;
        }
    });
}

fn bench(c: &mut Criterion) {
    resilience::config::load_str(POLICIES).expect("policies");
    let url = loopback::server(ANSWER);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let retry = ExponentialBackoff::builder().build_with_max_retries(3);
    let cases: Vec<(&str, ClientWithMiddleware)> = vec![
        ("bare", ClientBuilder::new(loopback::client()).build()),
        (
            "reqwest_retry",
            ClientBuilder::new(loopback::client())
                .with(RetryTransientMiddleware::new_with_policy(retry))
                .build(),
        ),
        (
            "resilience_retry",
            ClientBuilder::new(loopback::client())
                .with(ResilienceMiddleware::policy("bench-http-retry"))
                .build(),
        ),
        (
            "resilience_full",
            ClientBuilder::new(loopback::client())
                .with(ResilienceMiddleware::policy("bench-http-full"))
                .build(),
        ),
    ];
    loopback::alternated(c, &runtime, "http_middleware", &cases, |client| {
        one(client, &url)
    });
    overhead(c, &runtime);
}

// What `criterion_group!` + `criterion_main!` expand to, written out so the generated
// `pub fn` does not trip the workspace's `missing_docs` lint.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--count") {
        let case = args.get(at + 1).map_or("resilience_retry", String::as_str);
        let n = args
            .get(at + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        count(case, n);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
