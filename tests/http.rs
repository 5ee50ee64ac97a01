//! `#[retry]` around real HTTP calls made with `reqwest`, against a tiny HTTP/1.1 server written
//! here that answers a scripted sequence of statuses and records when each request arrived.
//!
//! Run with `cargo test --all-features --test http`. The tests run on tokio's paused clock: the
//! loopback sockets are always ready when the runtime looks, so the clock only jumps while the
//! retry sleeps, and request times are exact.

#![cfg(feature = "reqwest")]

mod common;

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use resilience::{ErrorClass, HttpError, classify_error, retry};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn offsets(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|&n| ms(n)).collect()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// The scripted server
// ---------------------------------------------------------------------------------------------

/// One scripted answer.
#[derive(Clone)]
struct Reply {
    status: u16,
    retry_after: Option<&'static str>,
    body: &'static str,
}

fn status(status: u16) -> Reply {
    Reply {
        status,
        retry_after: None,
        body: "",
    }
}

fn ok(body: &'static str) -> Reply {
    Reply {
        status: 200,
        retry_after: None,
        body,
    }
}

fn retry_after(status: u16, value: &'static str) -> Reply {
    Reply {
        status,
        retry_after: Some(value),
        body: "",
    }
}

/// A server on 127.0.0.1 answering each request with the next reply of its script (the last
/// one again once the script is spent), then closing the connection.
struct Server {
    url: String,
    start: Instant,
    requests: Arc<Mutex<Vec<Duration>>>,
}

impl Server {
    async fn start(script: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr: {e}"))
            .port();
        let start = Instant::now();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = {
                    let mut seen = lock(&seen);
                    seen.push(start.elapsed());
                    seen.len() - 1
                };
                let reply = script.get(n).or(script.last()).cloned();
                if let Some(reply) = reply {
                    tokio::spawn(answer(stream, reply));
                }
            }
        });
        Server {
            url: format!("http://127.0.0.1:{port}/resource"),
            start,
            requests,
        }
    }

    /// When each request arrived, relative to the server's start.
    fn requests(&self) -> Vec<Duration> {
        lock(&self.requests).clone()
    }

    fn count(&self) -> usize {
        lock(&self.requests).len()
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Reads one request head and writes `reply` with `Connection: close`.
async fn answer(mut stream: TcpStream, reply: Reply) {
    if common::read_head(&mut stream).await.is_none() {
        return;
    }
    let reason = if reply.status == 200 {
        "OK"
    } else {
        "Scripted"
    };
    let mut response = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    if let Some(value) = reply.retry_after {
        response.push_str(&format!("Retry-After: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(reply.body);
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A client that never goes through a proxy from the environment.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The annotated calls
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum MyError {
    Status(HttpError),
    Transport(reqwest::Error),
}

impl From<HttpError> for MyError {
    fn from(error: HttpError) -> Self {
        MyError::Status(error)
    }
}

impl From<reqwest::Error> for MyError {
    fn from(error: reqwest::Error) -> Self {
        MyError::Transport(error)
    }
}

impl fmt::Display for MyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MyError::Status(_) => f.write_str("the server refused"),
            MyError::Transport(_) => f.write_str("the request failed"),
        }
    }
}

impl Error for MyError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            MyError::Status(error) => Some(error),
            MyError::Transport(error) => Some(error),
        }
    }
}

impl MyError {
    fn status(&self) -> Option<&HttpError> {
        match self {
            MyError::Status(error) => Some(error),
            MyError::Transport(_) => None,
        }
    }
}

#[retry(base = "10ms")]
async fn get(client: &reqwest::Client, url: &str) -> Result<String, MyError> {
    let resp = client.get(url).send().await?;
    let resp = resilience::http::error_for_status(resp)?;
    Ok(resp.text().await?)
}

/// [`get`] counting its tries, for a server that cannot count (there is none).
#[retry(attempts = 4, base = "10ms")]
async fn get_counted(
    client: &reqwest::Client,
    url: &str,
    tries: &AtomicU32,
) -> Result<String, MyError> {
    tries.fetch_add(1, Ordering::SeqCst);
    let resp = client.get(url).send().await?;
    let resp = resilience::http::error_for_status(resp)?;
    Ok(resp.text().await?)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn transient_503s_then_success() {
    let server = Server::start(vec![status(503), status(503), ok("hello")]).await;
    let result = get(&client(), &server.url).await.map_err(|e| e.to_string());
    assert_eq!(result, Ok("hello".to_string()));
    assert_eq!(server.count(), 3);
    assert_eq!(server.requests(), offsets(&[0, 10, 30]));
}

#[tokio::test(start_paused = true)]
async fn persistent_503_returns_the_last_status_after_all_attempts() {
    let server = Server::start(vec![status(502), status(504), status(503), ok("late")]).await;
    let error = get(&client(), &server.url).await.err();
    let error = error.as_ref().and_then(MyError::status);
    assert_eq!(error.map(HttpError::status), Some(503), "the 3rd answer");
    assert_eq!(error.and_then(HttpError::url), Some(server.url.as_str()));
    assert_eq!(server.requests(), offsets(&[0, 10, 30]));
}

#[tokio::test(start_paused = true)]
async fn not_found_is_returned_after_one_request() {
    let server = Server::start(vec![status(404), ok("never")]).await;
    let error = get(&client(), &server.url).await.err();
    assert_eq!(
        error
            .as_ref()
            .and_then(MyError::status)
            .map(HttpError::status),
        Some(404)
    );
    assert_eq!(server.count(), 1);
    assert_eq!(server.elapsed(), ms(0), "no sleep");
}

/// `Retry-After: 1` (seconds) replaces the 10ms backoff: the second request comes 1s later.
#[tokio::test(start_paused = true)]
async fn retry_after_seconds_sets_the_wait() {
    let server = Server::start(vec![retry_after(429, "1"), ok("done")]).await;
    let result = get(&client(), &server.url).await.map_err(|e| e.to_string());
    assert_eq!(result, Ok("done".to_string()));
    assert_eq!(server.requests(), offsets(&[0, 1000]));
}

/// An HTTP-date Retry-After in the past means "now": the retry follows at once.
#[tokio::test(start_paused = true)]
async fn retry_after_date_in_the_past_means_now() {
    let server = Server::start(vec![
        retry_after(503, "Wed, 21 Oct 2015 07:28:00 GMT"),
        ok("done"),
    ])
    .await;
    let result = get(&client(), &server.url).await.map_err(|e| e.to_string());
    assert_eq!(result, Ok("done".to_string()));
    assert_eq!(server.requests(), offsets(&[0, 0]));
}

/// A Retry-After longer than `max_delay` (10s by default) is returned at once, carrying it.
#[tokio::test(start_paused = true)]
async fn retry_after_over_max_delay_gives_up() {
    let server = Server::start(vec![retry_after(429, "30"), ok("never")]).await;
    let error = get(&client(), &server.url).await.err();
    let error = error.as_ref().and_then(MyError::status);
    assert_eq!(error.map(HttpError::status), Some(429));
    assert_eq!(
        error.and_then(HttpError::retry_after),
        Some(Duration::from_secs(30))
    );
    assert_eq!(server.count(), 1);
    assert_eq!(server.elapsed(), ms(0));
}

/// A refused connection is a `reqwest::Error` classified `Connect`, retried up to `attempts`.
#[tokio::test(start_paused = true)]
async fn connection_refused_is_retried_as_connect() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr: {e}"))
            .port()
    };
    let url = format!("http://127.0.0.1:{port}/");
    let tries = AtomicU32::new(0);
    let start = Instant::now();
    let error = get_counted(&client(), &url, &tries).await.err();
    assert!(
        matches!(error, Some(MyError::Transport(ref e)) if e.is_connect()),
        "{error:?}"
    );
    assert_eq!(
        error.as_ref().map(|e| classify_error(e).class),
        Some(ErrorClass::Connect)
    );
    assert_eq!(tries.load(Ordering::SeqCst), 4);
    assert_eq!(start.elapsed(), ms(10 + 20 + 40), "three backoff sleeps");
}
