//! `resilience::http::ResilienceMiddleware` against real servers on loopback: what is retried
//! follows the failure's phase and the request's method, Retry-After and quota headers are
//! honoured without any `error_for_status`, and the policy's `timeout: { read, total }` and
//! `client_builder`'s timeouts apply.
//!
//! Real sockets: the tries are counted exactly (a counting middleware under the policy's), and
//! timings are asserted only as lower bounds set by the server.
//!
//! Run with `cargo test --all-features --test http_middleware`.

#![cfg(feature = "reqwest-middleware")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use resilience::http::ResilienceMiddleware;
use resilience::{Classify, ErrorClass, Rejected};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const POLICIES: &str = "
policies:
  mw-default:
    retry: { attempts: 3, backoff: constant, base: 10ms }
  mw-body:
    retry: { attempts: 3, backoff: constant, base: 10ms, on: [Body] }
  mw-read:
    retry: { attempts: 2, backoff: constant, base: 10ms }
    timeout: { read: 200ms }
  mw-total:
    retry: { attempts: 5, backoff: constant, base: 10ms }
    timeout: { read: 10s, total: 300ms }
  mw-quota:
    retry: { attempts: 3, backoff: constant, base: 10ms, max_delay: 5s }
    rate_limit: { calls: 10, period: 1s }
  mw-client:
    timeout: { connect: 1s, read: 200ms }
";

fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        resilience::config::load_str(POLICIES).unwrap_or_else(|errors| panic!("{errors}"));
    });
}

/// What the server does with one request.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Headers announcing 10 bytes, 5 of them, then a reset (RST).
    CutBody,
    /// No answer; the connection stays open until the client leaves.
    Silent,
    /// This status, these extra header lines, this body; then the connection closes.
    Answer(u16, &'static str, &'static str),
}

/// A server on 127.0.0.1 acting on each connection by the next act of its script (the last
/// one again once the script is spent).
async fn serve(script: Vec<Act>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/thing", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            if let Some(&act) = script.get(n).or(script.last()) {
                tokio::spawn(answer(stream, act));
            }
            n += 1;
        }
    });
    url
}

async fn answer(mut stream: TcpStream, act: Act) {
    if common::read_head(&mut stream).await.is_none() {
        return;
    }
    match act {
        Act::CutBody => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
                .await;
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Act::Silent => {
            let mut buf = [0u8; 64];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    return;
                }
            }
        }
        Act::Answer(status, headers, body) => {
            let response = format!(
                "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}

/// A port nothing listens on: connecting is refused.
async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/thing")
}

/// Counts the tries that reach the transport (it sits under the policy's middleware).
#[derive(Clone, Default)]
struct Tries(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Middleware for Tries {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        self.0.fetch_add(1, Ordering::SeqCst);
        next.run(request, extensions).await
    }
}

impl Tries {
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

fn client(policy: &str) -> (ClientWithMiddleware, Tries) {
    install();
    let tries = Tries::default();
    let inner = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let client = ClientBuilder::new(inner)
        .with(ResilienceMiddleware::policy(policy))
        .with(tries.clone())
        .build();
    (client, tries)
}

#[tokio::test]
async fn a_body_cut_midway_is_not_retried_by_default() {
    let (client, tries) = client("mw-default");
    let url = serve(vec![Act::CutBody, Act::Answer(200, "", "0123456789")]).await;
    let response = client.get(&url).send().await.expect("the head arrived");
    let error = response.bytes().await.expect_err("the body is cut");
    assert_eq!(error.classification().class, ErrorClass::Body);
    assert_eq!(tries.take(), 1);
}

#[tokio::test]
async fn a_body_cut_midway_is_retried_with_on_body() {
    let (client, tries) = client("mw-body");
    let url = serve(vec![Act::CutBody, Act::Answer(200, "", "0123456789")]).await;
    let response = client.get(&url).send().await.expect("answered");
    assert_eq!(
        response.url().as_str(),
        url,
        "the buffered answer keeps its URL"
    );
    assert_eq!(response.bytes().await.expect("whole body"), "0123456789");
    assert_eq!(tries.take(), 2);
}

#[tokio::test]
async fn a_cut_body_of_a_post_is_not_retried_even_with_on_body() {
    let (client, tries) = client("mw-body");
    let url = serve(vec![Act::CutBody, Act::Answer(200, "", "0123456789")]).await;
    let error = client.post(&url).body("x").send().await.expect_err("cut");
    assert_eq!(error.classification().class, ErrorClass::Body);
    assert_eq!(tries.take(), 1);
}

#[tokio::test]
async fn no_answer_retries_get_and_keyed_post_but_not_post() {
    let (client, tries) = client("mw-read");
    let url = serve(vec![Act::Silent]).await;

    let error = client
        .post(&url)
        .body("x")
        .send()
        .await
        .expect_err("silent");
    assert_eq!(error.classification().class, ErrorClass::Timeout);
    assert_eq!(tries.take(), 1, "a POST that may have arrived is sent once");

    let error = client.get(&url).send().await.expect_err("silent");
    assert_eq!(error.classification().class, ErrorClass::Timeout);
    assert_eq!(tries.take(), 2, "a GET is retried");

    let keyed = client
        .post(&url)
        .header("Idempotency-Key", "order-42")
        .body("x")
        .send()
        .await;
    assert!(keyed.is_err());
    assert_eq!(tries.take(), 2, "a POST with an Idempotency-Key is retried");
}

#[tokio::test]
async fn a_refused_connection_is_retried_for_post_too() {
    let (client, tries) = client("mw-default");
    let url = refused_url().await;
    let error = client
        .post(&url)
        .body("x")
        .send()
        .await
        .expect_err("refused");
    assert_eq!(error.classification().class, ErrorClass::Connect);
    assert_eq!(tries.take(), 3);
}

#[tokio::test]
async fn a_streamed_body_is_sent_once() {
    let (client, tries) = client("mw-default");
    let url = refused_url().await;
    // A body reqwest cannot replay (`try_clone` is `None`), as a stream is.
    let body = reqwest::Body::wrap(http_body_util::Full::new(&b"x"[..]));
    let result = client.put(&url).body(body).send().await;
    assert!(result.is_err());
    assert_eq!(
        tries.take(),
        1,
        "a body that cannot be cloned cannot be sent again"
    );
}

#[tokio::test]
async fn the_last_503_is_returned_as_the_response() {
    let (client, tries) = client("mw-default");
    let url = serve(vec![Act::Answer(503, "", "busy")]).await;
    let response = client.get(&url).send().await.expect("an answer");
    assert_eq!(response.status(), 503);
    assert_eq!(response.text().await.expect("body"), "busy");
    assert_eq!(tries.take(), 3);
    // A 404 is an answer, not a failure to retry.
    let url = serve(vec![Act::Answer(404, "", "")]).await;
    assert_eq!(client.get(&url).send().await.expect("answer").status(), 404);
    assert_eq!(tries.take(), 1);
}

#[tokio::test]
async fn total_bounds_the_whole_call() {
    let (client, tries) = client("mw-total");
    let url = serve(vec![Act::Silent]).await;
    let error = client.get(&url).send().await.expect_err("silent");
    assert_eq!(
        error.classification(),
        Rejected::Timeout {
            after: Duration::from_millis(300)
        }
        .classification()
    );
    let rejected = match &error {
        reqwest_middleware::Error::Middleware(inner) => inner.downcast_ref::<Rejected>().cloned(),
        reqwest_middleware::Error::Reqwest(_) => None,
    };
    assert_eq!(
        rejected,
        Some(Rejected::Timeout {
            after: Duration::from_millis(300)
        })
    );
    assert_eq!(tries.take(), 1);
}

#[tokio::test]
async fn retry_after_is_waited_without_error_for_status() {
    let (client, tries) = client("mw-quota");
    let url = serve(vec![
        Act::Answer(429, "Retry-After: 1\r\n", ""),
        Act::Answer(200, "", "ok"),
    ])
    .await;
    let start = Instant::now();
    let response = client.get(&url).send().await.expect("answer");
    assert_eq!(response.status(), 200);
    assert_eq!(tries.take(), 2);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn quota_headers_pace_the_next_calls() {
    let (client, tries) = client("mw-quota");
    // The server says the quota is spent for the next 2 seconds (20 of the policy's slots).
    let url = serve(vec![
        Act::Answer(
            200,
            "X-RateLimit-Limit: 10\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 2\r\n",
            "ok",
        ),
        Act::Answer(200, "", "ok"),
    ])
    .await;
    assert_eq!(client.get(&url).send().await.expect("first").status(), 200);
    let start = Instant::now();
    assert_eq!(client.get(&url).send().await.expect("second").status(), 200);
    assert_eq!(tries.take(), 2);
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "held until the advertised reset: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn client_builder_sets_the_read_timeout() {
    install();
    let client = resilience::http::client_builder("mw-client")
        .no_proxy()
        .build()
        .expect("client");
    let url = serve(vec![Act::Silent]).await;
    // Without a read timeout this would hang: the bound below only keeps a broken build short.
    let result = tokio::time::timeout(Duration::from_secs(10), client.get(&url).send()).await;
    let error = result
        .expect("ended by the read timeout")
        .expect_err("silent");
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(error.classification().class, ErrorClass::Timeout);
}
