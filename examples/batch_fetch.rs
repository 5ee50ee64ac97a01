//! A thousand HTTP fetches from a flaky, rate-limited server, done three ways with
//! `resilience::batch`, and a table of what each way cost.
//!
//! `cargo run --release --features reqwest --example batch_fetch` (about 45 s; add flags after
//! `--`, e.g. `-- --n 200 --qps 20`)
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--n` | `1000` | ids to fetch |
//! | `--latency` | `20ms` | the server's time to answer a request it serves |
//! | `--fail-rate` | `0.05` | fraction of served requests answered 503 |
//! | `--qps` | `50` | the server's quota: a token bucket of `qps` tokens refilled at `qps`/s |
//! | `--concurrency` | `30` | calls in flight at once in ways (b) and (c) |
//! | `--burst` | `0` | the `burst` of way (c)'s limiter (client side) |
//! | `--instances` | `1` | processes that run way (c) together, each on its share of the ids |
//! | `--backend` | none (in memory) | way (c)'s limiter in Redis: `redis://host:port/db`, or `redis` for a `redis-server` of the example's own on a free port (needs `--features redis,reqwest`) |
//!
//! **Several instances** (`--instances 2 --backend redis`): way (c) is then run by N processes
//! at once against one server. This process starts the server, then N - 1 copies of its own
//! executable (a hidden `--child --server URL --shard i/N` flag set), each fetching the ids
//! with `id % N == i` through the same `fetch_paced`, and fetches shard 0 itself. With
//! `--backend` every process installs the policy "api" with `resilience::config::load_str`,
//! naming `backend: <url>` and `backend_timeout: 200ms`, so they all draw from one schedule in
//! Redis; without it each process has its own limiter (and together they ask for N times the
//! quota). Each child prints one summary line (`batch_fetch-child shard=i/N succeeded=..
//! failed=.. elapsed_s=..`) that this process reads; row (c) reports the whole: wall time from
//! before the first child starts to the last one done, the failures of all, and the requests
//! and 429s the server counted. Its dead letters are one file per shard.
//!
//! **The server** (started here, on 127.0.0.1, a fresh one for each way) speaks HTTP/1.1 with
//! keep-alive (the `conns` column shows reqwest reusing its connections). Each request takes a
//! token from the bucket, which starts full; when it is empty the answer is 429 at once, with
//! `Retry-After` (whole seconds until a token is back, at least 1). Otherwise the server
//! waits `--latency`, then answers 503 with probability `--fail-rate`, else 200. Every answer
//! carries `X-RateLimit-Limit` (qps), `X-RateLimit-Remaining` (tokens left, rounded down) and
//! `X-RateLimit-Reset` (seconds until the bucket is full, rounded up), computed when the
//! request arrives. A 503 is a served request: it took its token.
//!
//! **The three ways**, each `batch(0..n, fetch)` with `keep_successes(false)`:
//!
//! - (a) serial (`concurrency(1)`), plain reqwest: a non-2xx answer fails the id;
//! - (b) `concurrency(30)`, plain reqwest, no retry, no limiter;
//! - (c) `concurrency(30)` and `fetch_paced`: `#[retry(attempts = 5, base = "100ms",
//!   jitter = 0.2)]` above `#[rate_limited(calls = 100, period = "1s", policy = "api")]`, with
//!   `resilience::http::error_for_status` on every response, so the limiter named "api"
//!   learns `X-RateLimit-Limit`, and a 429 slows it down (see `#[rate_limited]`'s control
//!   loop in the README).
//!
//! **Client choices** (the server's rules are the ones above, whatever the numbers):
//!
//! - the limiter's `calls` is twice the server's quota on purpose, to show it following the
//!   advertised limit down: `main` sets the policy "api" to `calls = 2 * --qps` before the
//!   first call (`registry::set`), so the inline `calls = 100` is that value for the default;
//! - `burst = 0` (the attribute's default) and `concurrency = 30`: the calls admitted at the
//!   guessed 100/s before the first response are spread out to the advertised pace when it
//!   arrives;
//! - one `reqwest::Client` per way, `pool_max_idle_per_host(concurrency)`, a 10 s timeout.
//!
//! **What bounds row (c).** The limiter follows the advertised limit from the first response
//! on. Every 503 is retried and takes a token, so (c) sends about N / (1 - fail_rate) = 1053
//! requests, 21.05 s of quota at 50/s; only the bucket's initial 50 tokens can bring the wall
//! time below that (the floor the example prints). The quota lab
//! (`cargo bench -p resilience-benches --bench quota_lab`) measures the same stack against
//! other limiter shapes and real nginx, beside `governor` + `backon`.
//!
//! Dead letters (input, last error, tries) of each way are written as JSON lines under the
//! temporary directory, whose path is printed; `resilience::batch::read_dead_letters` reads
//! them back for a replay.

use std::fmt;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use resilience::batch::{BatchReport, Progress, write_dead_letters};
use resilience::rate_limit::RateLimitPatch;
use resilience::registry::{self, NamedPolicy};
use resilience::{
    Classification, Classify, ErrorClass, HttpError, Rejected, batch, rate_limited, retry,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------

const USAGE: &str = "\
usage: batch_fetch [--n 1000] [--latency 20ms] [--fail-rate 0.05] [--qps 50] [--concurrency 30]
                   [--burst 0] [--instances 1] [--backend redis://host:port/db | redis]

  --n            ids to fetch
  --latency      the server's time to answer a request it serves
  --fail-rate    fraction of served requests answered 503
  --qps          the server's quota: a token bucket of qps tokens refilled at qps per second
  --concurrency  calls in flight at once in ways (b) and (c)
  --burst        the client limiter's `burst` in way (c)
  --instances    processes that run way (c) together, each on its share of the ids
  --backend      way (c)'s limiter in Redis (feature `redis`): a redis:// URL, or `redis`
                 for a redis-server of the example's own on a free port";

/// What the command line asked for.
#[derive(Debug, Clone)]
struct Flags {
    n: u64,
    latency: Duration,
    fail_rate: f64,
    qps: u32,
    concurrency: usize,
    burst: u32,
    instances: u64,
    /// `--backend`: a Redis URL, or `redis` for a server of the example's own.
    backend: Option<String>,
    /// Hidden: this process is a child running one shard of way (c).
    child: Option<ChildFlags>,
}

/// The hidden flags of a child process (`--child --server URL --shard i/N --key-prefix P
/// --dir D`).
#[derive(Debug, Clone, Default)]
struct ChildFlags {
    server: String,
    shard: u64,
    key_prefix: String,
    dir: PathBuf,
}

impl Flags {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Flags, String> {
        let mut flags = Flags {
            n: 1000,
            latency: Duration::from_millis(20),
            fail_rate: 0.05,
            qps: 50,
            concurrency: 30,
            burst: 0,
            instances: 1,
            backend: None,
            child: None,
        };
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Err(USAGE.to_string());
            }
            if arg == "--child" {
                flags.child.get_or_insert_with(ChildFlags::default);
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (arg, None),
            };
            let Some(value) = inline.or_else(|| args.next()) else {
                return Err(format!("`{name}` needs a value\n\n{USAGE}"));
            };
            let bad = |expected: &str| format!("invalid value `{value}` for `{name}`: {expected}");
            match name.as_str() {
                "--n" => flags.n = value.parse().map_err(|_| bad("expected a count"))?,
                "--latency" => {
                    flags.latency = resilience::parse_duration(&value)
                        .map_err(|_| bad("expected a duration such as `20ms`"))?;
                }
                "--fail-rate" => {
                    flags.fail_rate = value
                        .parse()
                        .ok()
                        .filter(|rate| (0.0..=1.0).contains(rate))
                        .ok_or_else(|| bad("expected a fraction between 0.0 and 1.0"))?;
                }
                "--qps" => {
                    flags.qps = value
                        .parse()
                        .ok()
                        .filter(|qps| (1..=1_000_000).contains(qps))
                        .ok_or_else(|| bad("expected a rate between 1 and 1000000"))?;
                }
                "--concurrency" => {
                    flags.concurrency = value
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad("expected a count >= 1"))?;
                }
                "--burst" => flags.burst = value.parse().map_err(|_| bad("expected a count"))?,
                "--instances" => {
                    flags.instances = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or_else(|| bad("expected a count between 1 and 64"))?;
                }
                "--backend" => {
                    if value != "redis" && !value.starts_with("redis://") {
                        return Err(bad("expected `redis` or a redis:// URL"));
                    }
                    flags.backend = Some(value);
                }
                // The hidden flags of a child.
                "--server" => flags.child.get_or_insert_with(ChildFlags::default).server = value,
                "--shard" => {
                    let (shard, of) = value
                        .split_once('/')
                        .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)))
                        .filter(|(i, n): &(u64, u64)| i < n)
                        .ok_or_else(|| bad("expected i/N"))?;
                    flags.child.get_or_insert_with(ChildFlags::default).shard = shard;
                    flags.instances = of;
                }
                "--key-prefix" => {
                    flags
                        .child
                        .get_or_insert_with(ChildFlags::default)
                        .key_prefix = value;
                }
                "--dir" => flags.child.get_or_insert_with(ChildFlags::default).dir = value.into(),
                _ => return Err(format!("unknown flag `{name}`\n\n{USAGE}")),
            }
        }
        Ok(flags)
    }

    /// The time the server's quota alone needs for N requests at its refill rate.
    fn quota_time(&self) -> Duration {
        Duration::from_secs_f64(self.n as f64 / f64::from(self.qps))
    }
}

// ---------------------------------------------------------------------------------------------
// The flaky server
// ---------------------------------------------------------------------------------------------

/// How the server treats each request.
#[derive(Debug, Clone, Copy)]
struct Rules {
    latency: Duration,
    fail_rate: f64,
    qps: u32,
}

/// What the server saw.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    requests: AtomicU64,
    too_many: AtomicU64,
    unavailable: AtomicU64,
}

/// The server's quota: a token bucket of `qps` tokens, refilled at `qps` per second, full at
/// the start.
#[derive(Debug)]
struct Bucket {
    capacity: f64,
    tokens: f64,
    at: Instant,
}

/// The quota headers of one answer.
#[derive(Debug, Clone, Copy)]
struct Quota {
    admitted: bool,
    limit: u32,
    remaining: u64,
    reset_secs: u64,
    retry_after_secs: u64,
}

impl Bucket {
    fn new(qps: u32) -> Self {
        Bucket {
            capacity: f64::from(qps),
            tokens: f64::from(qps),
            at: Instant::now(),
        }
    }

    /// Takes a token if there is one, and says what the headers advertise.
    fn take(&mut self, now: Instant) -> Quota {
        let rate = self.capacity;
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * rate;
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.at = now;
        let admitted = self.tokens >= 1.0;
        if admitted {
            self.tokens -= 1.0;
        }
        Quota {
            admitted,
            limit: rate as u32,
            remaining: self.tokens.floor() as u64,
            reset_secs: ((self.capacity - self.tokens) / rate).ceil() as u64,
            retry_after_secs: (((1.0 - self.tokens) / rate).ceil() as u64).max(1),
        }
    }
}

/// A server on 127.0.0.1: HTTP/1.1 with keep-alive, one task per connection.
struct Server {
    url: String,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(rules: Rules) -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let bucket = Arc::new(Mutex::new(Bucket::new(rules.qps)));
        let seen = Arc::clone(&counters);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                seen.connections.fetch_add(1, Ordering::Relaxed);
                let state = State {
                    rules,
                    counters: Arc::clone(&seen),
                    bucket: Arc::clone(&bucket),
                };
                tokio::spawn(state.connection(stream));
            }
        });
        Ok(Server {
            url: format!("http://{addr}"),
            counters,
            task,
        })
    }

    fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }

    fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }

    fn too_many(&self) -> u64 {
        self.counters.too_many.load(Ordering::Relaxed)
    }

    fn unavailable(&self) -> u64 {
        self.counters.unavailable.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What one connection's task needs.
struct State {
    rules: Rules,
    counters: Arc<Counters>,
    bucket: Arc<Mutex<Bucket>>,
}

impl State {
    /// Answers requests on one connection until the client closes it or asks to.
    async fn connection(self, mut stream: TcpStream) {
        let mut buffer = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let head_end = loop {
                if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
            let request = Request::parse(&head);
            // Skip the body, if any (a GET has none).
            while buffer.len() < head_end + request.body_len {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            buffer.drain(..head_end + request.body_len);
            let response = self.answer(&request.path, request.close).await;
            if stream.write_all(response.as_bytes()).await.is_err() || request.close {
                return;
            }
        }
    }

    /// The quota first (a 429 is answered at once, as rate limiters at the edge do), then the
    /// latency, then 503 at the configured rate, else 200.
    async fn answer(&self, path: &str, close: bool) -> String {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let quota = self
            .bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(Instant::now());
        let (status, body) = if !quota.admitted {
            self.counters.too_many.fetch_add(1, Ordering::Relaxed);
            ("429 Too Many Requests", String::new())
        } else {
            tokio::time::sleep(self.rules.latency).await;
            if rand::random::<f64>() < self.rules.fail_rate {
                self.counters.unavailable.fetch_add(1, Ordering::Relaxed);
                ("503 Service Unavailable", String::new())
            } else {
                (
                    "200 OK",
                    format!("item {}\n", path.rsplit('/').next().unwrap_or("")),
                )
            }
        };
        let mut response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             X-RateLimit-Limit: {}\r\nX-RateLimit-Remaining: {}\r\nX-RateLimit-Reset: {}\r\n",
            body.len(),
            quota.limit,
            quota.remaining,
            quota.reset_secs,
        );
        if !quota.admitted {
            response.push_str(&format!("Retry-After: {}\r\n", quota.retry_after_secs));
        }
        if close {
            response.push_str("Connection: close\r\n");
        }
        response.push_str("\r\n");
        response.push_str(&body);
        response
    }
}

/// The parts of a request head the server uses.
struct Request {
    path: String,
    body_len: usize,
    close: bool,
}

impl Request {
    fn parse(head: &str) -> Request {
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let path = parts.nth(1).unwrap_or("/").to_string();
        let http_10 = parts.next() == Some("HTTP/1.0");
        let mut request = Request {
            path,
            body_len: 0,
            close: http_10,
        };
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim().to_ascii_lowercase();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => request.body_len = value.parse().unwrap_or(0),
                "connection" if value == "close" => request.close = true,
                "connection" if value == "keep-alive" => request.close = false,
                _ => {}
            }
        }
        request
    }
}

// ---------------------------------------------------------------------------------------------
// The client: plain reqwest (ways a and b), and the resilient call (way c)
// ---------------------------------------------------------------------------------------------

/// One fetch, plain reqwest: any non-2xx answer is an error, nothing is retried.
async fn fetch_plain(
    client: &reqwest::Client,
    base: &str,
    id: u64,
) -> Result<String, reqwest::Error> {
    let response = client.get(format!("{base}/items/{id}")).send().await?;
    response.error_for_status()?.text().await
}

/// One fetch, resilient: every try takes a permit of the limiter named "api" (`#[retry]`
/// above `#[rate_limited]`), and `error_for_status` hands every response's quota headers to
/// that limiter. `calls = 100` is twice the server's default quota, on purpose: the limiter
/// learns the real one from `X-RateLimit-Limit`. (`main` sets the policy "api" to twice
/// `--qps`, so other `--qps` values keep it twice too generous.)
#[retry(attempts = 5, base = "100ms", jitter = 0.2)]
#[rate_limited(calls = 100, period = "1s", policy = "api")]
async fn fetch_paced(client: &reqwest::Client, base: &str, id: u64) -> Result<String, FetchError> {
    let response = client.get(format!("{base}/items/{id}")).send().await?;
    let response = resilience::http::error_for_status(response)?;
    Ok(response.text().await?)
}

/// What a resilient fetch can fail with.
#[derive(Debug)]
enum FetchError {
    /// The server answered with a non-2xx status.
    Http(HttpError),
    /// No answer: connection refused or reset, timeout, unreadable body.
    Transport(reqwest::Error),
    /// The local limiter refused (only in reject mode or past a `max_wait`).
    Refused(Rejected),
}

impl From<HttpError> for FetchError {
    fn from(error: HttpError) -> Self {
        FetchError::Http(error)
    }
}

impl From<reqwest::Error> for FetchError {
    fn from(error: reqwest::Error) -> Self {
        FetchError::Transport(error)
    }
}

impl From<Rejected> for FetchError {
    fn from(rejected: Rejected) -> Self {
        FetchError::Refused(rejected)
    }
}

impl Classify for FetchError {
    fn class(&self) -> ErrorClass {
        self.classification().class
    }
    fn retry_after(&self) -> Option<Duration> {
        self.classification().retry_after
    }
    fn classification(&self) -> Classification {
        match self {
            FetchError::Http(error) => error.classification(),
            FetchError::Transport(error) => error.classification(),
            FetchError::Refused(rejected) => rejected.classification(),
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Http(error) => error.fmt(f),
            FetchError::Transport(error) => error.fmt(f),
            FetchError::Refused(rejected) => rejected.fmt(f),
        }
    }
}

impl std::error::Error for FetchError {}

// ---------------------------------------------------------------------------------------------
// Progress, dead letters, the table
// ---------------------------------------------------------------------------------------------

/// Progress of one way: an `indicatif` bar on a terminal, a line every 10% otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
}

impl Reporter {
    fn new(label: &'static str, total: u64) -> (Reporter, impl FnMut(Progress) + Send + 'static) {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
            let style = ProgressStyle::with_template(
                "{prefix:<32} [{bar:30}] {pos:>5}/{len} {elapsed_precise} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label);
            bar
        });
        let started = Instant::now();
        let step = (total / 10).max(1) as usize;
        let mut next_line = step;
        let shown = bar.clone();
        let on_progress = move |progress: Progress| match &shown {
            Some(bar) => {
                bar.set_position(progress.done as u64);
                bar.set_message(format!("{} failed", progress.failed));
            }
            None => {
                if progress.done >= next_line || Some(progress.done) == progress.total {
                    next_line = progress.done + step;
                    println!(
                        "  {label}: {:>5}/{total} done, {:>4} failed, {:>5.1}s",
                        progress.done,
                        progress.failed,
                        started.elapsed().as_secs_f64(),
                    );
                }
            }
        };
        (Reporter { bar }, on_progress)
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish();
        }
    }
}

/// One line of the table.
struct Row {
    way: String,
    wall: Duration,
    failed: usize,
    requests: u64,
    too_many: u64,
    unavailable: u64,
    connections: u64,
    dead_letters: PathBuf,
}

/// Writes the dead letters of a way and makes its row.
fn row<T, E: fmt::Display>(
    way: String,
    file: &str,
    dir: &Path,
    report: &BatchReport<u64, T, E>,
    server: &Server,
) -> std::io::Result<Row> {
    let path = dir.join(file);
    write_dead_letters(std::fs::File::create(&path)?, &report.dead_letters)?;
    Ok(Row {
        way,
        wall: report.elapsed,
        failed: report.failed,
        requests: server.requests(),
        too_many: server.too_many(),
        unavailable: server.unavailable(),
        connections: server.connections(),
        dead_letters: path,
    })
}

/// The table, then where each way's dead letters were written.
fn print_results(flags: &Flags, rows: &[Row]) {
    print_table(flags, rows);
    println!("\ndead letters (JSON lines: input, last error, tries):");
    for row in rows {
        println!("  {:<42} {}", row.way, row.dead_letters.display());
    }
}

fn print_table(flags: &Flags, rows: &[Row]) {
    let quota_time = flags.quota_time().as_secs_f64();
    println!();
    println!(
        "{:<40} {:>7} {:>13} {:>7} {:>9} {:>6} {:>6} {:>6}",
        "way", "wall", "wall/(N/qps)", "failed", "requests", "429s", "503s", "conns"
    );
    for row in rows {
        let wall = row.wall.as_secs_f64();
        println!(
            "{:<40} {:>6.2}s {:>13.3} {:>7} {:>9} {:>6} {:>6} {:>6}",
            row.way,
            wall,
            wall / quota_time,
            row.failed,
            row.requests,
            row.too_many,
            row.unavailable,
            row.connections,
        );
    }
    // The server serves at most qps + qps * T requests in T seconds (its bucket starts full),
    // and a request answered 503 was served: it took a token like any other.
    if let Some(row) = rows.last() {
        let qps = f64::from(flags.qps);
        let served = row.requests.saturating_sub(row.too_many) as f64;
        let floor = ((served - qps) / qps).max(0.0);
        println!(
            "
floor for {}: its {} served requests (503s included) need >= ({} - {}) / {} = \
             {floor:.2}s from this server = {:.3} x N/qps",
            &row.way[..3],
            served,
            served,
            flags.qps,
            flags.qps,
            floor / quota_time,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The three ways
// ---------------------------------------------------------------------------------------------

fn client(concurrency: usize) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(10))
        .build()
}

// ---------------------------------------------------------------------------------------------
// Several instances: the policy, Redis, the children
// ---------------------------------------------------------------------------------------------

/// Installs the policy "api" of way (c): `calls = 2 * qps` (twice the quota, on purpose), in
/// this process (`registry::set`) or, with a backend, in Redis (`config::load_str`).
fn install_api_policy(
    flags: &Flags,
    backend: Option<&str>,
    key_prefix: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    match backend {
        None => registry::set(
            "api",
            NamedPolicy::with_rate_limit(RateLimitPatch {
                calls: Some(flags.qps.saturating_mul(2)),
                period: Some(Duration::from_secs(1)),
                burst: Some(flags.burst),
                ..RateLimitPatch::default()
            }),
        ),
        Some(url) => {
            let yaml = format!(
                "policies:\n  api:\n    rate_limit: {{ calls: {}, period: 1s, burst: {} }}\n    \
                 backend: {url}\n    backend_timeout: 200ms\n    key_prefix: \"{key_prefix}\"\n",
                flags.qps.saturating_mul(2),
                flags.burst,
            );
            resilience::config::load_str(&yaml)
                .map_err(|errors| format!("the policy \"api\" is refused: {errors}"))?;
        }
    }
    Ok(())
}

/// The ids of shard `shard` of `instances`.
fn shard_ids(n: u64, shard: u64, instances: u64) -> impl Iterator<Item = u64> {
    (0..n).filter(move |id| id % instances == shard)
}

/// A child: fetches its shard through `fetch_paced`, writes its dead letters, and prints one
/// summary line for the parent.
async fn run_child(flags: &Flags, child: &ChildFlags) -> Result<(), Box<dyn std::error::Error>> {
    install_api_policy(flags, flags.backend.as_deref(), &child.key_prefix)?;
    let http = client(flags.concurrency)?;
    let ids = shard_ids(flags.n, child.shard, flags.instances);
    let report = batch(ids, |id| fetch_paced(&http, &child.server, id))
        .concurrency(flags.concurrency)
        .keep_successes(false)
        .await;
    let path = child
        .dir
        .join(format!("c-paced-shard-{}.jsonl", child.shard));
    write_dead_letters(std::fs::File::create(&path)?, &report.dead_letters)?;
    println!(
        "{CHILD_LINE} shard={}/{} succeeded={} failed={} elapsed_s={:.3}",
        child.shard,
        flags.instances,
        report.succeeded,
        report.failed,
        report.elapsed.as_secs_f64(),
    );
    Ok(())
}

/// The start of a child's summary line.
const CHILD_LINE: &str = "batch_fetch-child";

/// What a child's summary line says: (succeeded, failed, elapsed).
fn parse_child_line(stdout: &str) -> Option<(usize, usize, Duration)> {
    let line = stdout.lines().find(|line| line.starts_with(CHILD_LINE))?;
    let field = |name: &str| {
        line.split(' ')
            .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
    };
    Some((
        field("succeeded")?.parse().ok()?,
        field("failed")?.parse().ok()?,
        Duration::try_from_secs_f64(field("elapsed_s")?.parse().ok()?).ok()?,
    ))
}

/// Way (c) run by `--instances` processes: this one (shard 0) and N - 1 children.
async fn paced_instances(
    flags: &Flags,
    backend: Option<&str>,
    dir: &Path,
) -> Result<Row, Box<dyn std::error::Error>> {
    let (n, c, instances) = (flags.n, flags.concurrency, flags.instances);
    let key_prefix = format!("resilience-batch-fetch:{}:", std::process::id());
    install_api_policy(flags, backend, &key_prefix)?;
    let server = Server::start(Rules {
        latency: flags.latency,
        fail_rate: flags.fail_rate,
        qps: flags.qps,
    })
    .await?;
    let started = Instant::now();
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for shard in 1..instances {
        let mut command = std::process::Command::new(&exe);
        command
            .arg("--child")
            .args(["--server", &server.url])
            .args(["--shard", &format!("{shard}/{instances}")])
            .args(["--n", &n.to_string()])
            .args(["--qps", &flags.qps.to_string()])
            .args(["--concurrency", &c.to_string()])
            .args(["--burst", &flags.burst.to_string()])
            .args(["--key-prefix", &key_prefix])
            .arg("--dir")
            .arg(dir);
        if let Some(url) = backend {
            command.args(["--backend", url]);
        }
        let child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()?;
        children.push((shard, child));
    }
    let http = client(c)?;
    let total = shard_ids(n, 0, instances).count() as u64;
    let (reporter, on_progress) = Reporter::new("(c) shard 0 (this process)", total);
    let report = batch(shard_ids(n, 0, instances), |id| {
        fetch_paced(&http, &server.url, id)
    })
    .concurrency(c)
    .keep_successes(false)
    .on_progress(on_progress)
    .await;
    reporter.finish();
    let path = dir.join("c-paced-shard-0.jsonl");
    write_dead_letters(std::fs::File::create(&path)?, &report.dead_letters)?;
    println!(
        "  shard 0/{instances} (this process): {} succeeded, {} failed, {:.2}s",
        report.succeeded,
        report.failed,
        report.elapsed.as_secs_f64()
    );
    let mut failed = report.failed;
    for (shard, child) in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some((succeeded, child_failed, elapsed)) = parse_child_line(&stdout) else {
            return Err(format!(
                "child {shard}/{instances} ({}) printed no summary line: {stdout:?}",
                output.status
            )
            .into());
        };
        println!(
            "  shard {shard}/{instances} (child process): {succeeded} succeeded, {child_failed} \
             failed, {:.2}s",
            elapsed.as_secs_f64()
        );
        failed += child_failed;
    }
    let wall = started.elapsed();
    let limiter = match backend {
        Some(_) => "Redis limit",
        None => "own limits",
    };
    Ok(Row {
        way: format!("(c) {instances} procs x {c} + retry + {limiter}"),
        wall,
        failed,
        requests: server.requests(),
        too_many: server.too_many(),
        unavailable: server.unavailable(),
        connections: server.connections(),
        dead_letters: dir.join("c-paced-shard-*.jsonl"),
    })
}

/// A `redis-server` of the example's own (`--backend redis`), on a free port, stopped on drop.
#[cfg(feature = "redis")]
struct OwnRedis {
    child: std::process::Child,
    port: u16,
}

#[cfg(feature = "redis")]
impl OwnRedis {
    fn start() -> Result<OwnRedis, Box<dyn std::error::Error>> {
        use std::io::{Read as _, Write as _};
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|error| {
                format!(
                    "`--backend redis` starts a `redis-server`, which must be installed \
                     (or give `--backend redis://host:port/db`): {error}"
                )
            })?;
        let redis = OwnRedis { child, port };
        let ping = || -> std::io::Result<bool> {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
            stream.set_read_timeout(Some(Duration::from_secs(1)))?;
            stream.write_all(b"PING\r\n")?;
            let mut answer = [0u8; 16];
            let read = stream.read(&mut answer)?;
            Ok(answer[..read].starts_with(b"+PONG"))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ping().unwrap_or(false) {
            if Instant::now() > deadline {
                return Err("redis-server did not answer within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

#[cfg(feature = "redis")]
impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(flags) => flags,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if cfg!(not(feature = "redis")) && flags.backend.is_some() {
        eprintln!(
            "`--backend` keeps the limiter in Redis, which needs feature `redis`: \
             `cargo run --release --features redis,reqwest --example batch_fetch -- --backend ...`"
        );
        std::process::exit(2);
    }
    if let Some(child) = &flags.child {
        return run_child(&flags, child).await;
    }
    // `--backend redis`: a redis-server of our own, for as long as the example runs.
    #[cfg(feature = "redis")]
    let own_redis = match flags.backend.as_deref() {
        Some("redis") => Some(OwnRedis::start()?),
        _ => None,
    };
    #[cfg(feature = "redis")]
    let backend = match &own_redis {
        Some(redis) => Some(redis.url()),
        None => flags.backend.clone(),
    };
    #[cfg(not(feature = "redis"))]
    let backend: Option<String> = None;
    let rules = Rules {
        latency: flags.latency,
        fail_rate: flags.fail_rate,
        qps: flags.qps,
    };
    let n = flags.n;
    let c = flags.concurrency;
    let dir = std::env::temp_dir().join(format!("resilience-batch-fetch-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    println!(
        "{n} ids from a local server: {} ms latency, {:.0}% answered 503, a quota of {} requests/s \
         (a bucket of {} that refills at {}/s; 429 + Retry-After when empty).",
        flags.latency.as_millis(),
        flags.fail_rate * 100.0,
        flags.qps,
        flags.qps,
        flags.qps,
    );
    println!(
        "N/qps = {:.1}s. Each way runs against a fresh server (a full bucket).\n",
        flags.quota_time().as_secs_f64()
    );

    let mut rows = Vec::new();

    // (a) serial: one request at a time, plain reqwest, no retry.
    let server = Server::start(rules).await?;
    let http = client(1)?;
    let (reporter, on_progress) = Reporter::new("(a) serial", n);
    let report = batch(0..n, |id| fetch_plain(&http, &server.url, id))
        .concurrency(1)
        .keep_successes(false)
        .on_progress(on_progress)
        .await;
    reporter.finish();
    rows.push(row(
        "(a) serial, no retry".to_string(),
        "a-serial.jsonl",
        &dir,
        &report,
        &server,
    )?);
    drop(server);

    // (b) concurrency only: plain reqwest, no retry, no limiter.
    let server = Server::start(rules).await?;
    let http = client(c)?;
    let (reporter, on_progress) = Reporter::new("(b) concurrent", n);
    let report = batch(0..n, |id| fetch_plain(&http, &server.url, id))
        .concurrency(c)
        .keep_successes(false)
        .on_progress(on_progress)
        .await;
    reporter.finish();
    let way = format!("(b) concurrency {c}, no retry, no limit");
    rows.push(row(way, "b-concurrent.jsonl", &dir, &report, &server)?);
    drop(server);

    // (c) by several processes, or with the limiter in Redis.
    if flags.instances > 1 || backend.is_some() {
        if let Some(url) = &backend {
            println!(
                "(c) runs in {} processes; policy \"api\" in Redis at {url}",
                flags.instances
            );
        } else {
            println!(
                "(c) runs in {} processes, each with a limiter of its own (no --backend)",
                flags.instances
            );
        }
        rows.push(paced_instances(&flags, backend.as_deref(), &dir).await?);
        print_results(&flags, &rows);
        return Ok(());
    }

    // (c) concurrency, `#[retry]` over `#[rate_limited(policy = "api")]`, `error_for_status`.
    registry::set(
        "api",
        NamedPolicy::with_rate_limit(RateLimitPatch {
            calls: Some(flags.qps.saturating_mul(2)),
            period: Some(Duration::from_secs(1)),
            burst: Some(flags.burst),
            ..RateLimitPatch::default()
        }),
    );
    let server = Server::start(rules).await?;
    let http = client(c)?;
    let (reporter, on_progress) = Reporter::new("(c) concurrent + retry + limiter", n);
    let report = batch(0..n, |id| fetch_paced(&http, &server.url, id))
        .concurrency(c)
        .keep_successes(false)
        .on_progress(on_progress)
        .await;
    reporter.finish();
    let way = format!("(c) concurrency {c} + retry + limiter");
    rows.push(row(way, "c-paced.jsonl", &dir, &report, &server)?);
    drop(server);

    print_results(&flags, &rows);
    Ok(())
}
