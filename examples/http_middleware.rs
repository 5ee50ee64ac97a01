//! `ResilienceMiddleware` on a reqwest-middleware client, against a flaky server on loopback:
//! a GET answered 503, 503, then 200 is retried to its answer; a POST answered 503 is sent
//! once (it is not idempotent); the same POST with an `Idempotency-Key` is retried.
//!
//! ```sh
//! cargo run --example http_middleware --features reqwest-middleware
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest_middleware::ClientBuilder;
use resilience::http::ResilienceMiddleware;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const POLICIES: &str = "
policies:
  user-api:
    retry: { attempts: 4, base: 50ms, jitter: 0.2 }
    timeout: { connect: 1s, read: 2s, total: 10s }
";

/// A server on 127.0.0.1 that answers 503 to the first two requests of every three, then
/// 200, and counts what it saw.
async fn flaky_server(seen: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                // One request per connection, read up to the end of its head (bounded).
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => head.extend_from_slice(&buf[..read]),
                    }
                }
                let (status, body) = if n % 3 == 2 {
                    (200, "ok")
                } else {
                    (503, "busy")
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    url
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    resilience::config::load_str(POLICIES)?;
    let seen = Arc::new(AtomicUsize::new(0));
    let url = flaky_server(Arc::clone(&seen)).await;
    let client = ClientBuilder::new(resilience::http::client_builder("user-api").build()?)
        .with(ResilienceMiddleware::policy("user-api"))
        .build();

    let tries = |label: &str, status: reqwest::StatusCode| {
        let sent = seen.swap(0, Ordering::SeqCst);
        println!("{label:<32} -> {status} after {sent} request(s)");
        sent
    };

    // GET is idempotent: 503, 503, then 200.
    let get = client.get(format!("{url}/users/1")).send().await?;
    assert_eq!(tries("GET /users/1", get.status()), 3);

    // POST is not: the 503 comes back as it is, after one request.
    let post = client
        .post(format!("{url}/orders"))
        .body("{}")
        .send()
        .await?;
    assert_eq!(tries("POST /orders", post.status()), 1);

    // With an Idempotency-Key the server answers a repeat as the first: retried.
    let keyed = client
        .post(format!("{url}/orders"))
        .header("Idempotency-Key", "order-42")
        .body("{}")
        .send()
        .await?;
    assert_eq!(tries("POST /orders + Idempotency-Key", keyed.status()), 3);
    Ok(())
}
