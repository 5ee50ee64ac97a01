//! The README's first command: a flaky API call retried by `#[retry]`, no external service.
//!
//! `cargo run --example quickstart`

use std::sync::Mutex;
use std::time::{Duration, Instant};

use resilience::{HttpError, retry};

/// A pretend remote API: each call pops the next scripted answer.
static ANSWERS: Mutex<Vec<Result<&str, HttpError>>> = Mutex::new(Vec::new());
static STARTED: Mutex<Option<Instant>> = Mutex::new(None);

fn script(answers: Vec<Result<&'static str, HttpError>>) {
    let mut queue = ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
    *queue = answers.into_iter().rev().collect();
    *STARTED.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
}

fn since_start() -> Duration {
    STARTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .map_or(Duration::ZERO, |start| start.elapsed())
}

/// One HTTP call to the pretend API. `#[retry]` runs this body again on transient failures.
#[retry(attempts = 4, backoff = "exp", base = "200ms", jitter = 0.1)]
async fn fetch_user(id: u64) -> Result<String, HttpError> {
    let answer = ANSWERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop()
        .unwrap_or(Ok("ok"));
    let at = since_start().as_millis();
    match answer {
        Ok(_) => {
            println!("  +{at:>4}ms  GET /users/{id}  -> 200 OK");
            Ok(format!("user #{id}"))
        }
        Err(error) => {
            println!("  +{at:>4}ms  GET /users/{id}  -> {error}");
            Err(error)
        }
    }
}

async fn scenario(title: &str, id: u64, answers: Vec<Result<&'static str, HttpError>>) {
    println!("\n{title}");
    script(answers);
    let result = fetch_user(id).await;
    let took = since_start();
    match result {
        Ok(user) => println!("  => Ok({user:?}) after {:.1}s", took.as_secs_f64()),
        Err(error) => println!("  => Err({error}) after {:.1}s", took.as_secs_f64()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // The library reports each retry and each give-up as a `tracing` event; show them.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .without_time()
        .with_target(false)
        .compact()
        .init();
    println!("#[retry(attempts = 4, backoff = \"exp\", base = \"200ms\", jitter = 0.1)]");
    println!("async fn fetch_user(id: u64) -> Result<String, HttpError>");

    scenario(
        "1. Two 503s, then success: retried after ~200ms, then ~400ms (exponential, +-10% jitter).",
        1,
        vec![Err(HttpError::new(503)), Err(HttpError::new(503)), Ok("ok")],
    )
    .await;

    scenario(
        "2. 404 Not Found is the caller's mistake, not a transient failure: returned at once.",
        2,
        vec![Err(HttpError::new(404))],
    )
    .await;

    scenario(
        "3. 429 with Retry-After: 0.5s: the server's wait is honoured exactly instead of the backoff.",
        3,
        vec![
            Err(HttpError::new(429).with_retry_after(Duration::from_millis(500))),
            Ok("ok"),
        ],
    )
    .await;

    scenario(
        "4. The server keeps failing: after 4 attempts the last error is returned.",
        4,
        vec![
            Err(HttpError::new(502)),
            Err(HttpError::new(503)),
            Err(HttpError::new(504)),
            Err(HttpError::new(503)),
        ],
    )
    .await;

    println!("\nRetried: Timeout, Connect, 429, 502, 503, 504 (the default `on = [Transient]`).");
    println!("Never retried by default: 400, 401, 403, 404, 422 and unclassified errors.");
}
