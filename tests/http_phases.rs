//! The phase of an HTTP failure decides its class, against real servers on loopback through
//! `reqwest`: never sent is `Connect`, sent without an answer is `Timeout`, an answer whose body
//! failed is `Body`. `Body` is not `Transient`: a default `#[retry]` returns it at once, and
//! `on = [Body]` opts in. The servers count their accepts, so a retry shows as a new connection.
//!
//! Run with `cargo test --all-features --test http_phases`. The tests run on tokio's paused
//! clock: reqwest's timeouts and the retry sleeps take no real time.

#![cfg(feature = "reqwest")]

mod common;

use std::error::Error;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use resilience::{ErrorClass, classify_error, retry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one connection, after reading the request head.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Headers announcing 10 bytes, 5 of them, then a reset (RST).
    CutBody,
    /// Headers announcing 10 bytes, 5 of them, then nothing while the connection stays open.
    StallBody,
    /// No answer at all; the connection stays open.
    Silent,
    /// A reset without any answer.
    Reset,
    /// The whole answer, `Connection: close`.
    Answer(&'static str),
}

/// A server on 127.0.0.1 acting on each connection by the next act of its script (the last
/// one again once the script is spent).
struct Server {
    url: String,
    accepts: Arc<AtomicUsize>,
}

impl Server {
    async fn start(script: Vec<Act>) -> Server {
        let listener = bind().await;
        let url = format!("http://{}/stream", local_addr(&listener));
        let accepts = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&accepts);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                if let Some(&act) = script.get(n).or(script.last()) {
                    tokio::spawn(serve(stream, act));
                }
            }
        });
        Server { url, accepts }
    }

    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"))
}

fn local_addr(listener: &TcpListener) -> std::net::SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"))
}

const HALF_BODY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";

async fn serve(mut stream: TcpStream, act: Act) {
    if common::read_head(&mut stream).await.is_none() {
        return;
    }
    match act {
        Act::CutBody => {
            let _ = stream.write_all(HALF_BODY).await;
            reset(stream);
        }
        Act::StallBody => {
            let _ = stream.write_all(HALF_BODY).await;
            hold(stream).await;
        }
        Act::Silent => hold(stream).await,
        Act::Reset => reset(stream),
        Act::Answer(body) => {
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}

/// Closes with an RST instead of a FIN: the peer reads `ConnectionReset`.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Keeps the connection open until the client closes it.
async fn hold(mut stream: TcpStream) {
    let mut buf = [0u8; 64];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// A client that never goes through a proxy from the environment, with a read timeout.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .read_timeout(Duration::from_secs(1))
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"))
}

/// Whether an io error of this kind lies somewhere below `error`.
fn has_io_kind(error: &(dyn Error + 'static), kind: io::ErrorKind) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.downcast_ref::<io::Error>().map(io::Error::kind) == Some(kind) {
            return true;
        }
        current = error.source();
    }
    false
}

// ---------------------------------------------------------------------------------------------
// The annotated calls: the whole answer is read inside the retried function
// ---------------------------------------------------------------------------------------------

/// The default `on`: `Transient`.
#[retry(base = "10ms")]
async fn get(client: &reqwest::Client, url: &str) -> Result<String, reqwest::Error> {
    client.get(url).send().await?.text().await
}

/// Only `Body`.
#[retry(base = "10ms", on = [Body])]
async fn get_streams_too(client: &reqwest::Client, url: &str) -> Result<String, reqwest::Error> {
    client.get(url).send().await?.text().await
}

/// The `retry` section of the YAML policy `phases.streams` applies.
#[retry(base = "10ms", policy = "phases.streams")]
async fn get_by_policy(client: &reqwest::Client, url: &str) -> Result<String, reqwest::Error> {
    client.get(url).send().await?.text().await
}

/// [`get`] counting its tries, for a port where no server counts accepts.
#[retry(attempts = 4, base = "10ms")]
async fn get_counted(
    client: &reqwest::Client,
    url: &str,
    tries: &AtomicU32,
) -> Result<String, reqwest::Error> {
    tries.fetch_add(1, Ordering::SeqCst);
    client.get(url).send().await?.text().await
}

/// [`get`] against a server acting `act` on every connection: the error, its class, and the
/// connections the server accepted.
async fn get_failing(act: Act) -> (reqwest::Error, ErrorClass, usize) {
    let server = Server::start(vec![act]).await;
    let result = get(&client(), &server.url).await;
    let Err(error) = result else {
        panic!("{act:?} answered: {result:?}");
    };
    let class = classify_error(&error).class;
    (error, class, server.accepts())
}

fn class(result: &Result<String, reqwest::Error>) -> Option<ErrorClass> {
    result.as_ref().err().map(|e| classify_error(e).class)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// A reset after half the body is `Body`, although a reset alone (a bare io error) is
/// `Connect`: the phase, known to reqwest, wins. A default `#[retry]` does not retry it.
#[tokio::test(start_paused = true)]
async fn a_body_cut_by_a_reset_is_body_and_not_retried() {
    let (error, class, accepts) = get_failing(Act::CutBody).await;
    assert!(error.is_decode(), "{error:?}");
    assert!(
        has_io_kind(&error, io::ErrorKind::ConnectionReset),
        "a reset below the body error: {error:?}"
    );
    assert_eq!(class, ErrorClass::Body);
    assert_eq!(accepts, 1, "not retried");
}

/// `on = [Body]` retries a cut body: two cuts, then the whole answer on the third connection.
#[tokio::test(start_paused = true)]
async fn on_body_retries_a_cut_body() {
    let server = Server::start(vec![Act::CutBody, Act::CutBody, Act::Answer("whole")]).await;
    let result = get_streams_too(&client(), &server.url).await;
    assert_eq!(result.map_err(|e| e.to_string()), Ok("whole".to_string()));
    assert_eq!(server.accepts(), 3);
}

/// YAML's `on: [Body]` opts in as the macro's `on = [Body]` does.
#[tokio::test(start_paused = true)]
async fn yaml_on_body_retries_a_cut_body() {
    let yaml = "policies:\n  phases.streams:\n    retry: { attempts: 2, on: [Body] }\n";
    if let Err(errors) = resilience::config::load_str(yaml) {
        panic!("the test's YAML is refused:\n{errors}");
    }
    let server = Server::start(vec![Act::CutBody, Act::Answer("whole")]).await;
    let result = get_by_policy(&client(), &server.url).await;
    assert_eq!(result.map_err(|e| e.to_string()), Ok("whole".to_string()));
    assert_eq!(server.accepts(), 2);
}

/// A read timeout while the body arrives is `Body` too, not `Timeout`: the answer had begun.
#[tokio::test(start_paused = true)]
async fn a_read_timeout_mid_body_is_body() {
    let (error, class, accepts) = get_failing(Act::StallBody).await;
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(class, ErrorClass::Body);
    assert_eq!(accepts, 1, "not retried");
}

/// A server that accepts and never answers: reqwest's read timeout is `Timeout` (sent, no
/// answer), retried by default on a new connection each time.
#[tokio::test(start_paused = true)]
async fn no_answer_is_timeout_and_retried() {
    let (error, class, accepts) = get_failing(Act::Silent).await;
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(class, ErrorClass::Timeout);
    assert_eq!(accepts, 3, "all attempts");
}

/// A reset after the request was read and before any answer is `Timeout`, not `Connect`:
/// the connection was made, so the request may have reached the server.
#[tokio::test(start_paused = true)]
async fn a_reset_before_any_answer_is_timeout() {
    let server = Server::start(vec![Act::Reset, Act::Answer("second")]).await;
    let result = get(&client(), &server.url).await;
    assert_eq!(result.map_err(|e| e.to_string()), Ok("second".to_string()));
    assert_eq!(server.accepts(), 2, "retried once");

    let server = Server::start(vec![Act::Reset]).await;
    let result = client()
        .get(&server.url)
        .send()
        .await
        .map(|_| String::new());
    assert_eq!(class(&result), Some(ErrorClass::Timeout), "{result:?}");
}

/// A refused port: never sent, `Connect`, retried up to `attempts`.
#[tokio::test(start_paused = true)]
async fn a_refused_port_is_connect_and_retried() {
    // Bound, then closed: a port on which nothing listens.
    let url = format!("http://{}/", local_addr(&bind().await));
    let tries = AtomicU32::new(0);
    let result = get_counted(&client(), &url, &tries).await;
    assert!(
        result
            .as_ref()
            .err()
            .is_some_and(reqwest::Error::is_connect),
        "{result:?}"
    );
    assert_eq!(class(&result), Some(ErrorClass::Connect));
    assert_eq!(tries.load(Ordering::SeqCst), 4);
}
