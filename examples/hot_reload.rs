//! Named policies in YAML, changed while the program runs: `resilience::config::watch` reloads
//! `policies.yaml`, and the next call of every function naming the policy uses the new values.
//!
//! `cargo run --example hot_reload`
//!
//! The program plays both parts: the service (one annotated function calling a pretend, flaky
//! backend) and the operator (who rewrites `policies.yaml` four times). No external service;
//! it takes about two seconds.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilience::config::Watch;
use resilience::{Classification, Classify, ErrorClass, HttpError, Rejected, rate_limited, retry};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// The service: one function, its values named by the policy "backend"
// ---------------------------------------------------------------------------------------------

/// One HTTP call to the pretend backend. Every try takes a permit of the shared limiter
/// (`#[retry]` above `#[rate_limited]`), then the backend answers.
#[retry(policy = "backend", attempts = 2, base = "10ms")]
#[rate_limited(policy = "backend", calls = 100, period = "1s")]
async fn get_order(id: u64) -> Result<String, ApiError> {
    backend(id)
}

/// How many tries of each request fail with 503 before one succeeds.
static FAILURES_PER_REQUEST: AtomicU32 = AtomicU32::new(3);

/// What the backend answered, per request: `503 503 200`.
static ANSWERS: Mutex<Vec<(u64, u16, Instant)>> = Mutex::new(Vec::new());

/// The pretend backend: the first tries of each request fail with 503, then it answers 200.
fn backend(id: u64) -> Result<String, ApiError> {
    let mut answers = ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
    let tries_so_far = answers
        .iter()
        .filter(|(request, ..)| *request == id)
        .count();
    let failing = tries_so_far < FAILURES_PER_REQUEST.load(Ordering::SeqCst) as usize;
    let status = if failing { 503 } else { 200 };
    answers.push((id, status, Instant::now()));
    if failing {
        Err(ApiError::Http(HttpError::new(503)))
    } else {
        Ok(format!("order #{id}"))
    }
}

/// The backend's answers to request `id`, and when each try started.
fn answers_to(id: u64) -> Vec<(u16, Instant)> {
    let answers = ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
    answers
        .iter()
        .filter(|(request, ..)| *request == id)
        .map(|&(_, status, at)| (status, at))
        .collect()
}

/// The service's error: the backend's answer, or the limiter's refusal.
#[derive(Debug)]
enum ApiError {
    Http(HttpError),
    Rejected(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        self.classification().class
    }
    fn retry_after(&self) -> Option<Duration> {
        self.classification().retry_after
    }
    fn classification(&self) -> Classification {
        match self {
            ApiError::Http(error) => error.classification(),
            ApiError::Rejected(rejected) => rejected.classification(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Http(error) => error.fmt(f),
            ApiError::Rejected(rejected) => rejected.fmt(f),
        }
    }
}

impl std::error::Error for ApiError {}

// ---------------------------------------------------------------------------------------------
// What the program shows
// ---------------------------------------------------------------------------------------------

/// Calls `get_order(id)` and prints every answer of the backend, then the outcome.
async fn request(id: u64) {
    let result = get_order(id).await;
    let answers = answers_to(id);
    let statuses: Vec<String> = answers
        .iter()
        .map(|(status, _)| status.to_string())
        .collect();
    let tries = answers.len();
    let outcome = match result {
        Ok(order) => format!("Ok({order:?})"),
        Err(error) => format!("Err({error})"),
    };
    println!(
        "    GET /orders/{id}  backend said {:<16} => {outcome}, {tries} tries",
        statuses.join(" "),
    );
}

/// Calls `get_order` `n` times in a row (the backend is healthy) and prints when each call
/// reached the backend, counted from the first one.
async fn burst(first_id: u64, n: u64) {
    for id in first_id..first_id + n {
        if let Err(error) = get_order(id).await {
            println!("    GET /orders/{id} failed: {error}");
        }
    }
    let reached: Vec<Instant> = (first_id..first_id + n)
        .filter_map(|id| answers_to(id).first().map(|&(_, at)| at))
        .collect();
    let Some(&first) = reached.first() else {
        return;
    };
    let offsets: Vec<String> = reached
        .iter()
        .map(|at| format!("{}", at.saturating_duration_since(first).as_millis()))
        .collect();
    println!(
        "    {n} calls reached the backend at +[{}] ms",
        offsets.join(", ")
    );
}

fn heading(title: &str) {
    println!("\n{title}");
}

/// Prints the policy file with line numbers, as an editor shows it.
fn show(yaml: &str) {
    for (number, line) in yaml.lines().enumerate() {
        println!("    {:>2} | {line}", number + 1);
    }
}

// ---------------------------------------------------------------------------------------------
// The operator: rewrites policies.yaml, then waits until the watch has read it
// ---------------------------------------------------------------------------------------------

const PHASE_1: &str = "\
policies:
  backend:
    retry: { attempts: 2 }
    rate_limit: { calls: 50, period: 1s }
";

const PHASE_2: &str = "\
policies:
  backend:
    retry: { attempts: 5 }
    rate_limit: { calls: 50, period: 1s }
";

const PHASE_3: &str = "\
policies:
  backend:
    retry: { attemps: 9 }
    rate_limit: { calls: 50, period: 1s }
";

const PHASE_4: &str = "\
policies:
  backend:
    retry: { attempts: 5 }
    rate_limit: { calls: 5, period: 1s }
";

/// What the watch made of an edit.
enum Outcome {
    Applied,
    Refused,
}

/// Writes `yaml` over the policy file in place, as `echo > policies.yaml` would.
fn write_in_place(path: &Path, yaml: &str) -> std::io::Result<()> {
    std::fs::write(path, yaml)
}

/// Writes `yaml` beside the policy file and renames it over the file, as editors and
/// configuration tools do (readers never see half a file).
fn write_and_rename(path: &Path, yaml: &str) -> std::io::Result<()> {
    let temporary = path.with_extension("yaml.tmp");
    std::fs::write(&temporary, yaml)?;
    std::fs::rename(&temporary, path)
}

/// Waits (at most 2 s) until the watch has applied or refused one more version of the file.
async fn next_reload(watch: &Watch) -> Result<Outcome, String> {
    let (applied, refused) = (watch.reloads(), watch.failed_reloads());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        if watch.reloads() > applied {
            return Ok(Outcome::Applied);
        }
        if watch.failed_reloads() > refused {
            return Ok(Outcome::Refused);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(format!(
        "no reload of {} seen within 2s",
        watch.path().display()
    ))
}

/// Rewrites the file with `write`, waits for the watch, and says how long the reload took.
async fn edit(
    watch: &Watch,
    yaml: &str,
    how: &str,
    write: fn(&Path, &str) -> std::io::Result<()>,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    println!("  the operator edits policies.yaml ({how}):");
    show(yaml);
    let started = Instant::now();
    write(watch.path(), yaml)?;
    let outcome = next_reload(watch).await?;
    let took = started.elapsed().as_millis();
    match outcome {
        Outcome::Applied => println!("  reloaded {took} ms after the write"),
        Outcome::Refused => println!("  refused {took} ms after the write"),
    }
    Ok(outcome)
}

fn policy_dir() -> PathBuf {
    std::env::temp_dir().join(format!("resilience-hot-reload-{}", std::process::id()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Show what an operator's log shows when an edit is refused (`resilience::config` at ERROR).
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .without_time()
                .with_target(false)
                .compact(),
        )
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_target("resilience::config", tracing::Level::ERROR),
        )
        .init();

    let dir = policy_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("policies.yaml");
    let result = run(&path).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("#[retry(policy = \"backend\", attempts = 2, base = \"10ms\")]");
    println!("#[rate_limited(policy = \"backend\", calls = 100, period = \"1s\")]");
    println!("async fn get_order(id: u64) -> Result<String, ApiError>");
    println!("The pretend backend fails the first 3 tries of every request with 503.");

    heading("1. Start-up: policies.yaml allows 2 tries, so every request gives up.");
    std::fs::write(path, PHASE_1)?;
    show(PHASE_1);
    let watch = resilience::config::watch(path)?;
    println!("  let _watch = resilience::config::watch(\"policies.yaml\")?;  // loaded");
    request(1).await;
    request(2).await;

    heading(
        "2. The operator raises attempts to 5: the same kind of request now succeeds on its 4th try.",
    );
    edit(&watch, PHASE_2, "written in place", write_in_place).await?;
    request(3).await;
    request(4).await;

    heading("3. A typo: the edit is refused, and the last good policy (attempts: 5) stays.");
    if let Outcome::Refused = edit(&watch, PHASE_3, "written in place", write_in_place).await? {
        println!("  (the ERROR line above is the library's own log of the refusal)");
        if let Some(errors) = watch.last_error() {
            for error in errors.errors() {
                println!(
                    "  Watch::last_error(): line {}, column {}:",
                    error.line, error.column
                );
                println!("    {error}");
            }
        }
        println!(
            "  reloads applied: {}, refused: {}",
            watch.reloads(),
            watch.failed_reloads()
        );
    }
    println!("  the next request still runs under attempts: 5:");
    request(5).await;

    heading("4. The backend recovers; the operator lowers the rate limit from 50/s to 5/s.");
    FAILURES_PER_REQUEST.store(0, Ordering::SeqCst);
    println!("  at 50 calls per second (one every 20 ms):");
    burst(100, 6).await;
    edit(
        &watch,
        PHASE_4,
        "written beside it, then renamed over it",
        write_and_rename,
    )
    .await?;
    println!("  at 5 calls per second (one every 200 ms), the next calls are spaced out:");
    burst(200, 6).await;

    println!("\nNo rebuild, no restart: every change applied to the next call.");
    Ok(())
}
