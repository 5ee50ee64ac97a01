//! `ResilienceLayer` in front of an axum handler on loopback: a bulkhead of 4 slots with a
//! `max_wait` of 100 ms sheds load with 503s instead of queueing it. 40 requests arrive at
//! once at a handler that takes 300 ms: 4 are served, the other 36 are answered 503 after
//! 100 ms, and no request goes without a status.
//!
//! ```sh
//! cargo run --example tower_layer --features tower
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use resilience::tower::ResilienceLayer;

const POLICIES: &str = "
policies:
  checkout:
    bulkhead: { max_concurrent: 4, max_wait: 100ms }
    timeout: 2s
";

/// Requests in the handler now, and the most there ever were.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    resilience::config::load_str(POLICIES)?;
    let in_flight = Arc::new(InFlight::default());
    let counted = Arc::clone(&in_flight);
    let app = Router::new()
        .route(
            "/checkout",
            get(move || async move {
                let now = counted.now.fetch_add(1, Ordering::SeqCst) + 1;
                counted.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                counted.now.fetch_sub(1, Ordering::SeqCst);
                "done"
            }),
        )
        .layer(ResilienceLayer::policy("checkout").shed_load());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/checkout", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::builder().no_proxy().build()?;
    let start = Instant::now();
    let calls = (0..40).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let status = client.get(&url).send().await.map(|r| r.status());
            (status, start.elapsed())
        })
    });
    let (mut served, mut shed, mut slowest_shed) = (0, 0, Duration::ZERO);
    for call in futures_util::future::join_all(calls).await {
        let (status, after) = call?;
        match status? {
            reqwest::StatusCode::OK => served += 1,
            reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                shed += 1;
                slowest_shed = slowest_shed.max(after);
            }
            other => return Err(format!("unexpected status {other}").into()),
        }
    }
    server.abort();

    let most = in_flight.most.load(Ordering::SeqCst);
    println!("served 200:            {served}");
    println!("shed 503:              {shed} (the slowest answered after {slowest_shed:?})");
    println!("most in the handler:   {most}");
    assert_eq!(served + shed, 40, "every request gets a status");
    assert!(most <= 4, "the bulkhead holds");
    assert!(shed > 0, "the load beyond the bulkhead is shed");
    Ok(())
}
