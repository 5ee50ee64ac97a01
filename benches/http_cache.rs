//! A hit of the HTTP middleware's response cache (a policy's `cache: { http: true }`) against a
//! hit of http-cache-reqwest (the middleware a user would pick instead, with its in-memory moka
//! manager), on the same loopback server. Both clients are reqwest 0.13 with
//! reqwest-middleware 0.5.
//!
//! The server answers every request `200 OK` with `Cache-Control: max-age=3600` and a 1 KiB
//! body; each client stores that answer on its first request, so every timed request is a
//! fresh hit: the request built, looked up, and the stored answer rebuilt with its body read.
//! `bare` is the same request with no cache (a loopback round trip), for scale. The cases run
//! in alternation per sample.
//!
//! ```text
//! cargo bench -p resilience-benches --bench http_cache -- --warm-up-time 1 --measurement-time 5
//! benches/table.sh http_cache   # the same, then the medians and their ratios
//! ```

use criterion::Criterion;
use http_cache_reqwest::{Cache, CacheMode, HttpCache, HttpCacheOptions, MokaManager};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use resilience::http::ResilienceMiddleware;

mod loopback;

const POLICIES: &str = "
policies:
  bench-http-cache:
    cache: { http: true }
";

/// `200 OK`, fresh for an hour, with a 1 KiB body.
fn answer() -> &'static [u8] {
    let body = "x".repeat(1024);
    let answer = format!(
        "HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    Box::leak(answer.into_bytes().into_boxed_slice())
}

async fn one(client: &ClientWithMiddleware, url: &str) {
    let response = client.get(url).send().await.expect("answer");
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.expect("body");
    assert_eq!(body.len(), 1024);
}

fn bench(c: &mut Criterion) {
    resilience::config::load_str(POLICIES).expect("policies");
    let url = loopback::server(answer());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cases: Vec<(&str, ClientWithMiddleware)> = vec![
        ("bare", ClientBuilder::new(loopback::client()).build()),
        (
            "http_cache_reqwest",
            ClientBuilder::new(loopback::client())
                .with(Cache(HttpCache {
                    mode: CacheMode::Default,
                    manager: MokaManager::default(),
                    options: HttpCacheOptions::default(),
                }))
                .build(),
        ),
        (
            "resilience",
            ClientBuilder::new(loopback::client())
                .with(ResilienceMiddleware::policy("bench-http-cache"))
                .build(),
        ),
    ];
    loopback::alternated(c, &runtime, "http_cache_hit", &cases, |client| {
        one(client, &url)
    });
}

// What `criterion_group!` + `criterion_main!` expand to, written out so the generated
// `pub fn` does not trip the workspace's `missing_docs` lint.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
