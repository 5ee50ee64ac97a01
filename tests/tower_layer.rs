//! `resilience::tower::ResilienceLayer`: in front of an axum handler it sheds load with 503s
//! (no request waits past the bulkhead's `max_wait`, every request gets a status); around a
//! client service it retries what is safe for the method.
//!
//! Run with `cargo test --all-features --test tower_layer`.

#![cfg(feature = "tower")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, Response, StatusCode};
use resilience::tower::{Error, ResilienceLayer};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

const POLICIES: &str = "
policies:
  tw-shed:
    bulkhead: { max_concurrent: 10, max_wait: 100ms }
  tw-shed-real:
    bulkhead: { max_concurrent: 10, max_wait: 50ms }
  tw-limit:
    rate_limit: { calls: 1, period: 10s, mode: reject }
  tw-client:
    retry: { attempts: 3, backoff: constant, base: 10ms }
";

fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        resilience::config::load_str(POLICIES).unwrap_or_else(|errors| panic!("{errors}"));
    });
}

/// Calls in the handler now, and the most there ever were.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl InFlight {
    async fn hold(&self, for_: Duration) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(for_).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

fn app(policy: &str, in_flight: Arc<InFlight>, work: Duration) -> Router {
    Router::new()
        .route(
            "/",
            get(move || async move {
                in_flight.hold(work).await;
                "ok"
            }),
        )
        .layer(ResilienceLayer::policy(policy).shed_load())
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_answers_503_after_max_wait_and_loses_no_request() {
    install();
    let in_flight = Arc::new(InFlight::default());
    let app = app("tw-shed", Arc::clone(&in_flight), Duration::from_secs(1));
    let start = Instant::now();
    let calls = (0..200).map(|_| {
        let app = app.clone();
        async move {
            let response = app
                .oneshot(Request::get("/").body(Body::empty()).expect("request"))
                .await
                .expect("infallible");
            (response.status(), start.elapsed())
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let ok: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    let shed: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(ok.len(), 10, "the bulkhead's ten slots");
    assert_eq!(shed.len(), 190, "every other request gets a status");
    assert!(ok.iter().all(|(_, at)| *at == Duration::from_secs(1)));
    assert!(
        shed.iter().all(|(_, at)| *at == Duration::from_millis(100)),
        "refused after max_wait, not later"
    );
    assert_eq!(in_flight.most.load(Ordering::SeqCst), 10);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_answers_429_with_retry_after() {
    install();
    let app = app("tw-limit", Arc::default(), Duration::ZERO);
    let first = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(first.status(), StatusCode::OK);
    let second = app
        .oneshot(Request::get("/").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()["retry-after"], "10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_over_loopback_all_get_a_status() {
    install();
    let in_flight = Arc::new(InFlight::default());
    let app = app(
        "tw-shed-real",
        Arc::clone(&in_flight),
        Duration::from_millis(200),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let calls = (0..200).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move { client.get(&url).send().await.map(|r| r.status()) })
    });
    let mut counts = (0, 0);
    for call in futures_util::future::join_all(calls).await {
        match call.expect("task").expect("every request gets an answer") {
            reqwest::StatusCode::OK => counts.0 += 1,
            reqwest::StatusCode::SERVICE_UNAVAILABLE => counts.1 += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(counts.0 + counts.1, 200);
    assert!(counts.0 >= 10 && counts.1 > 0, "{counts:?}");
    assert!(in_flight.most.load(Ordering::SeqCst) <= 10);
    server.abort();
}

/// A client-side service answering from a script of statuses, counting its calls.
fn scripted(
    statuses: &'static [u16],
    calls: Arc<AtomicUsize>,
) -> impl tower::Service<
    Request<String>,
    Response = Response<String>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_request: Request<String>| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let status = statuses[n.min(statuses.len() - 1)];
        async move {
            let mut response = Response::new(String::new());
            *response.status_mut() = StatusCode::from_u16(status).expect("status");
            Ok::<_, std::io::Error>(response)
        }
    })
}

#[tokio::test(start_paused = true)]
async fn the_client_layer_retries_get_and_not_post() {
    install();
    let layer = ResilienceLayer::policy("tw-client");
    let calls = Arc::new(AtomicUsize::new(0));
    let service = layer.layer(scripted(&[503, 503, 200], Arc::clone(&calls)));
    let response = service
        .clone()
        .oneshot(Request::get("/").body(String::new()).expect("request"))
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.swap(0, Ordering::SeqCst), 3);

    let service = layer.layer(scripted(&[503, 200], Arc::clone(&calls)));
    let response = service
        .oneshot(Request::post("/").body("x".to_string()).expect("request"))
        .await
        .expect("answer");
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "returned as is"
    );
    assert_eq!(calls.swap(0, Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_client_layer_retries_a_refused_post() {
    install();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let refused = tower::service_fn(move |_request: Request<String>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            Err::<Response<String>, _>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
        }
    });
    let service = ResilienceLayer::policy("tw-client").layer(refused);
    let error = service
        .oneshot(Request::post("/").body("x".to_string()).expect("request"))
        .await
        .expect_err("refused");
    assert!(matches!(error, Error::Inner(_)));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "never sent: safe to retry");
}
