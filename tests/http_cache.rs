//! A policy's `cache: { http: true }` under `resilience::http::ResilienceMiddleware`: responses
//! cached by HTTP's rules, against a server on loopback that counts the requests it gets.
//!
//! The server runs on its own thread with blocking sockets (real time); the clients run on
//! tokio's paused clock, which is the cache's clock, so freshness is exact: `advance` moves
//! time, and nothing else does (the clients keep no pooled connection, whose idle timer would
//! let a paused clock jump).
//!
//! Run with `cargo test --all-features --test http_cache`.

#![cfg(feature = "reqwest-middleware")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use resilience::http::ResilienceMiddleware;
use tokio::time::advance;

const POLICIES: &str = "
policies:
  hc:
    cache: { http: true }
  hc-one:
    cache: { http: true, max_entries: 1 }
  hc-readme:
    cache: { http: true, max_entries: 10000, max_bytes: 64MiB }
    retry: { attempts: 3 }
";

fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        resilience::config::load_str(POLICIES).unwrap_or_else(|errors| panic!("{errors}"));
    });
}

/// One answer of the server's script.
#[derive(Clone, Copy)]
struct Reply {
    status: u16,
    headers: &'static str,
    body: &'static str,
    /// Wait for [`Server::release`] before answering.
    hold: bool,
}

fn reply(status: u16, headers: &'static str, body: &'static str) -> Reply {
    Reply {
        status,
        headers,
        body,
        hold: false,
    }
}

/// A server on 127.0.0.1 answering each request (one per connection) by the next reply of its
/// script (the last one again once the script is spent), keeping every request head it read.
struct Server {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
    release: Sender<()>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(script: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (release, released) = channel::<()>();
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopping) = (Arc::clone(&heads), Arc::clone(&stop));
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let Some(head) = read_head(&mut stream) else {
                    continue;
                };
                kept.lock().expect("heads").push(head.to_ascii_lowercase());
                let Some(&reply) = script.get(n).or(script.last()) else {
                    return;
                };
                if reply.hold && released.recv_timeout(Duration::from_secs(10)).is_err() {
                    return;
                }
                let answer = format!(
                    "HTTP/1.1 {} X\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                    reply.status,
                    reply.headers,
                    reply.body.len(),
                    reply.body
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Server {
            url,
            heads,
            release,
            stop,
        }
    }

    /// The requests it got so far.
    fn count(&self) -> usize {
        self.heads.lock().expect("heads").len()
    }

    /// The head of its `n`-th request (lower-cased).
    fn head(&self, n: usize) -> String {
        self.heads.lock().expect("heads")[n].clone()
    }

    /// Closes its port: connecting is refused from now on.
    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        // The accept loop sees the flag on this connection and returns, dropping the listener.
        for _ in 0..1000 {
            if TcpStream::connect(self.url.trim_start_matches("http://")).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("the server did not stop");
    }

    /// Yields to the runtime (which sends the requests) until `n` requests arrived, for at
    /// most 10 s of real time. No timer: a paused clock does not move meanwhile.
    async fn arrived(&self, n: usize) {
        let start = std::time::Instant::now();
        while self.count() < n {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no request arrived"
            );
            tokio::task::yield_now().await;
        }
    }
}

fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8(head).ok()
}

fn client(policy: &str) -> ClientWithMiddleware {
    install();
    let inner = reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(None)
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    ClientBuilder::new(inner)
        .with(ResilienceMiddleware::policy(policy))
        .build()
}

/// GET `url` with `headers`: the status and the body.
async fn get(client: &ClientWithMiddleware, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

fn ok(body: &str) -> (u16, String) {
    (200, body.to_string())
}

#[tokio::test(start_paused = true)]
async fn a_repeat_within_max_age_sends_nothing() {
    let server = Server::start(vec![
        reply(200, "Cache-Control: max-age=60\r\n", "one"),
        reply(200, "Cache-Control: max-age=60\r\n", "two"),
    ]);
    let client = client("hc");
    let url = format!("{}/users/1", server.url);
    assert_eq!(get(&client, &url, &[]).await, ok("one"));
    advance(Duration::from_secs(59)).await;
    assert_eq!(get(&client, &url, &[]).await, ok("one"));
    assert_eq!(server.count(), 1, "fresh for 60 s");
    advance(Duration::from_secs(1)).await;
    assert_eq!(get(&client, &url, &[]).await, ok("two"));
    assert_eq!(server.count(), 2, "stale at 60 s: fetched again");
}

#[tokio::test(start_paused = true)]
async fn s_maxage_wins_over_max_age_in_a_shared_cache() {
    let server = Server::start(vec![reply(
        200,
        "Cache-Control: max-age=1, s-maxage=30\r\n",
        "shared",
    )]);
    let client = client("hc");
    let url = format!("{}/s", server.url);
    assert_eq!(get(&client, &url, &[]).await, ok("shared"));
    advance(Duration::from_secs(29)).await;
    assert_eq!(get(&client, &url, &[]).await, ok("shared"));
    assert_eq!(server.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn after_max_age_one_conditional_request_answered_304_keeps_the_body() {
    let server = Server::start(vec![
        reply(
            200,
            "Cache-Control: max-age=10\r\nETag: \"v1\"\r\n",
            "hello",
        ),
        reply(304, "Cache-Control: max-age=10\r\nETag: \"v1\"\r\n", ""),
    ]);
    let client = client("hc");
    let url = format!("{}/doc", server.url);
    assert_eq!(get(&client, &url, &[]).await, ok("hello"));
    advance(Duration::from_secs(10)).await;
    assert_eq!(get(&client, &url, &[]).await, ok("hello"));
    assert_eq!(server.count(), 2, "one conditional request");
    assert!(
        server.head(1).contains("if-none-match: \"v1\""),
        "{}",
        server.head(1)
    );
    // The 304 refreshed the entry: fresh for 10 s more.
    advance(Duration::from_secs(9)).await;
    assert_eq!(get(&client, &url, &[]).await, ok("hello"));
    assert_eq!(server.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn last_modified_is_revalidated_with_if_modified_since() {
    let server = Server::start(vec![
        reply(
            200,
            "Cache-Control: max-age=5\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n",
            "dated",
        ),
        reply(304, "Cache-Control: max-age=5\r\n", ""),
    ]);
    let client = client("hc");
    let url = format!("{}/dated", server.url);
    assert_eq!(get(&client, &url, &[]).await, ok("dated"));
    advance(Duration::from_secs(5)).await;
    assert_eq!(get(&client, &url, &[]).await, ok("dated"));
    assert_eq!(server.count(), 2);
    assert!(
        server
            .head(1)
            .contains("if-modified-since: wed, 21 oct 2015 07:28:00 gmt"),
        "{}",
        server.head(1)
    );
}

#[tokio::test(start_paused = true)]
async fn no_store_and_private_answers_are_never_stored() {
    for (path, cache_control) in [
        ("no-store", "Cache-Control: no-store\r\n"),
        ("private", "Cache-Control: private, max-age=60\r\n"),
    ] {
        let server = Server::start(vec![reply(200, cache_control, "mine")]);
        let client = client("hc");
        let url = format!("{}/{path}", server.url);
        assert_eq!(get(&client, &url, &[]).await, ok("mine"));
        assert_eq!(get(&client, &url, &[]).await, ok("mine"));
        assert_eq!(server.count(), 2, "{path}");
    }
}

#[tokio::test(start_paused = true)]
async fn vary_keeps_one_entry_per_value() {
    let vary = "Cache-Control: max-age=60\r\nVary: Accept\r\n";
    let server = Server::start(vec![reply(200, vary, "json"), reply(200, vary, "html")]);
    let client = client("hc");
    let url = format!("{}/page", server.url);
    let json = [("accept", "application/json")];
    let html = [("accept", "text/html")];
    assert_eq!(get(&client, &url, &json).await, ok("json"));
    assert_eq!(get(&client, &url, &html).await, ok("html"));
    assert_eq!(server.count(), 2, "another Accept: another entry");
    assert_eq!(get(&client, &url, &json).await, ok("json"));
    assert_eq!(get(&client, &url, &html).await, ok("html"));
    assert_eq!(server.count(), 2, "each from its own entry");
}

#[tokio::test(start_paused = true)]
async fn query_parameters_in_another_order_share_an_entry() {
    let server = Server::start(vec![reply(200, "Cache-Control: max-age=60\r\n", "found")]);
    let client = client("hc");
    assert_eq!(
        get(&client, &format!("{}/search?b=2&a=1", server.url), &[]).await,
        ok("found")
    );
    assert_eq!(
        get(&client, &format!("{}/search?a=1&b=2", server.url), &[]).await,
        ok("found")
    );
    assert_eq!(server.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn only_get_and_head_are_cached() {
    let server = Server::start(vec![reply(200, "Cache-Control: max-age=60\r\n", "made")]);
    let client = client("hc");
    let url = format!("{}/orders", server.url);
    for _ in 0..2 {
        let response = client.post(&url).body("{}").send().await.expect("answer");
        assert_eq!(response.text().await.expect("body"), "made");
    }
    assert_eq!(server.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_serves_the_stale_body_on_a_503_within_its_window() {
    let server = Server::start(vec![
        reply(
            200,
            "Cache-Control: max-age=10, stale-if-error=60\r\n",
            "old",
        ),
        reply(503, "", "busy"),
    ]);
    let client = client("hc");
    let url = format!("{}/feed", server.url);
    assert_eq!(get(&client, &url, &[]).await, ok("old"));
    advance(Duration::from_secs(10)).await;
    assert_eq!(
        get(&client, &url, &[]).await,
        ok("old"),
        "503: the stale body"
    );
    advance(Duration::from_secs(59)).await;
    assert_eq!(
        get(&client, &url, &[]).await,
        ok("old"),
        "stale for 59 s of 60"
    );
    advance(Duration::from_secs(1)).await;
    assert_eq!(
        get(&client, &url, &[]).await,
        (503, "busy".to_string()),
        "past the window: the error"
    );
    assert_eq!(server.count(), 4);
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_serves_the_stale_body_when_the_server_is_gone() {
    let server = Server::start(vec![reply(
        200,
        "Cache-Control: max-age=10, stale-if-error=60\r\n",
        "kept",
    )]);
    let client = client("hc");
    let url = format!("{}/kept", server.url);
    assert_eq!(get(&client, &url, &[]).await, ok("kept"));
    server.stop();
    advance(Duration::from_secs(30)).await;
    assert_eq!(
        get(&client, &url, &[]).await,
        ok("kept"),
        "refused: the stale body"
    );
    advance(Duration::from_secs(40)).await;
    let refused = client.get(&url).send().await;
    assert!(refused.is_err(), "past the window: the connect error");
}

#[tokio::test(start_paused = true)]
async fn stale_while_revalidate_serves_the_others_while_one_refreshes() {
    let server = Server::start(vec![
        reply(
            200,
            "Cache-Control: max-age=10, stale-while-revalidate=60\r\n",
            "old",
        ),
        Reply {
            hold: true,
            ..reply(200, "Cache-Control: max-age=10\r\n", "new")
        },
    ]);
    let client = client("hc");
    let url = format!("{}/news", server.url);
    assert_eq!(get(&client, &url, &[]).await, ok("old"));
    advance(Duration::from_secs(10)).await;
    // The first caller past freshness revalidates; the server holds its answer.
    let refresh = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { get(&client, &url, &[]).await }
    });
    server.arrived(2).await;
    // Meanwhile another caller gets the stale answer at once, with no request.
    assert_eq!(get(&client, &url, &[]).await, ok("old"));
    assert_eq!(server.count(), 2);
    server.release.send(()).expect("release");
    assert_eq!(refresh.await.expect("task"), ok("new"));
    assert_eq!(get(&client, &url, &[]).await, ok("new"));
    assert_eq!(server.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn max_entries_bounds_the_store() {
    let server = Server::start(vec![reply(200, "Cache-Control: max-age=60\r\n", "x")]);
    let client = client("hc-one");
    for path in ["a", "b", "a", "a"] {
        assert_eq!(
            get(&client, &format!("{}/{path}", server.url), &[]).await,
            ok("x")
        );
    }
    assert_eq!(
        server.count(),
        3,
        "one entry: `b` took `a`'s place, then `a` took `b`'s"
    );
}
