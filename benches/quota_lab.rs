//! The quota lab: how close a batch of N calls to a rate-limited API comes to the fastest
//! schedule the server's rule allows, with nothing lost, for the library's recommended stack
//! and for the peer stack a user would pick instead (`governor` + `backon`).
//!
//! ```text
//! cargo bench -p resilience-benches --bench quota_lab                   # N = 1000, every server
//! cargo bench -p resilience-benches --bench quota_lab -- --quick        # N = 200
//! cargo bench -p resilience-benches --bench quota_lab -- --server fixed # one server (repeatable)
//! ```
//!
//! A default run takes 5 to 6 minutes (12 cells of 21 s to 45 s: N / 50 s at best, N / 40 s
//! at the `learned` server, more where a client loses time); `--quick` about 1 minute. Each client run has a hard timeout of
//! 3 x (N / the server's rate) + 30 s, after which its cell says "not done" and how many ids
//! were fetched. The table is printed at the end and written to `quota_lab.md` in the target
//! directory (`$CARGO_TARGET_DIR`, else the `target/` the bench executable was built in).
//! Other flags: `--n <count>` (ids per run), `--client resilience|governor+backon`.
//!
//! # The scenario
//!
//! Every cell fetches ids `0..N` with 30 calls in flight, from a fresh server on 127.0.0.1
//! (HTTP/1.1, keep-alive) whose quota is 50 requests per second. A request the quota refuses
//! is answered 429 at once; a served request (one the quota admitted) is answered after 20 ms,
//! with 503 for 5% of them: the server decides by hashing (id, how many times it has served
//! that id before), so both clients meet the same failures, and a served 503 took its share of
//! the quota like any other served request.
//!
//! # The servers
//!
//! - `sliding`: a sliding 1 s window log of 50: a request is admitted when fewer than 50
//!   admitted requests arrived in the last second (refused ones are not logged). A 429 carries
//!   `Retry-After` (whole seconds until the oldest logged request leaves the window, rounded
//!   up, at least 1) and `X-RateLimit-Limit: 50`, `-Remaining: 0`, `-Reset` (the same
//!   seconds); a served answer carries no quota header.
//! - `learned`: the same log at a true limit of 40/s, with `X-RateLimit-Limit: 40`,
//!   `-Remaining` (slots left in the window after this request) and `-Reset` on every answer;
//!   the clients are still configured for 50/s, so this measures learning the advertised limit.
//! - `bucket`: a token bucket of capacity 50 refilled continuously at 50/s, full at the start;
//!   429 + `Retry-After` (whole seconds until a token is back, at least 1); every answer
//!   carries the AI-API dialect: `x-ratelimit-limit-requests: 50`,
//!   `x-ratelimit-remaining-requests` (whole tokens left) and `x-ratelimit-reset-requests`
//!   (time until the bucket is full, as a Go duration: `0s`, `120ms`, `1s`).
//! - `fixed`: a fixed window of 50 that resets at every wall-clock second; 429 +
//!   `Retry-After: 1`; every answer carries the IETF fields `RateLimit-Limit: 50`,
//!   `RateLimit-Remaining`, `RateLimit-Reset` (seconds to the next boundary, rounded up) and
//!   `RateLimit-Policy: 50;w=1`.
//! - `nginx-strict`: a real nginx (`limit_req zone=api;` at `rate=50r/s`, no burst,
//!   `limit_req_status 429;`) in front of a loopback upstream of the lab's that adds the 20 ms
//!   and the 503s; nginx sends no quota header and no `Retry-After`. Its rule is a leaky
//!   bucket: one request per 20 ms, a request arriving sooner than 20 ms after the last
//!   admitted one is refused. `nginx-burst`: the same with `burst=10 nodelay` (11 at once,
//!   then one per 20 ms). These rows need `nginx` on the PATH (or `/usr/sbin/nginx`);
//!   without it they say "nginx not installed". Requests and 429s are counted from nginx's
//!   access log; nginx runs in the foreground (`daemon off; master_process off;`) from a
//!   temporary directory and is stopped by its PID.
//!
//! # The clients
//!
//! - `resilience`: the recommended stack, exactly: `fetch` below, `#[retry(attempts = 5,
//!   base = "100ms", max_delay = "5s", jitter = 0.2)]` above `#[rate_limited(calls = 50,
//!   period = "1s", policy = "api")]`, every response through
//!   `resilience::http::error_for_status`, inside `resilience::batch(0..n, ..)
//!   .concurrency(30)`.
//! - `governor+backon`: a `governor` direct limiter at 50/s with a burst of 1, awaited
//!   (`until_ready`) before each try; `backon`'s exponential retry (5 tries, 100 ms base,
//!   5 s cap, jitter) on 429, 502, 503, 504 and transport errors, whose delay is replaced by
//!   the server's `Retry-After` when the answer has one (`adjust`); run by the same
//!   `resilience::batch(..).concurrency(30)`.
//!
//! Each cell runs in a child process (this executable again, with a hidden `--cell
//! server,client --url URL` flag) so the process-global limiter named "api" starts fresh;
//! the parent runs the servers and counts what they see.
//!
//! # The columns
//!
//! - `wall`: the batch's own elapsed time in the child;
//! - `floor`: the fastest any client could finish given the requests it had to have served:
//!   with S = the requests the server served in that run (everything but 429s: 200s and
//!   503s), the instant an ideal client, sending each request at the earliest instant the
//!   server's rule admits it, would have its S-th request admitted, plus one service latency
//!   (20 ms). Per rule: sliding log of L: `floor((S - 1) / L)` s; token bucket:
//!   `max(0, (S - 50) / 50)` s; fixed window: the first 50 at once, then 50 at each
//!   wall-clock second, measured from the run's first request (whose phase in its second is
//!   the simulation's start); nginx: `max(0, S - 1 - burst) x 20 ms`;
//! - `wall/floor`, and `wall/(N/qps)` with qps the server's true rate (40 for `learned`);
//! - `429s` and `sent` (every request, 429s included) as the server counted them;
//!   `failed`: ids not fetched (the batch's dead letters; on a timeout, N minus the ids the
//!   server answered 200).

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backon::{ExponentialBuilder, Retryable as _};
use resilience::{
    Classification, Classify, ErrorClass, HttpError, Rejected, batch, rate_limited, retry,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------------

/// The quota every client is configured for, and every server's but `learned`'s.
const QPS: u32 = 50;
/// The `learned` server's true limit.
const LEARNED_QPS: u32 = 40;
/// Calls in flight at once.
const CONCURRENCY: usize = 30;
/// A served request's service time.
const LATENCY: Duration = Duration::from_millis(20);
/// Of the served requests, these per 10 000 are answered 503.
const FAIL_PER_10K: u64 = 500;
/// The seed of the 503 pattern.
const SEED: u64 = 0x5eed_f1ab;
/// Ids per run, by default and with `--quick`.
const N_DEFAULT: u64 = 1000;
const N_QUICK: u64 = 200;
/// nginx-burst's `burst`.
const NGINX_BURST: u32 = 10;
/// The first line of a child's report.
const CELL_LINE: &str = "quota_lab-cell";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The servers, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerKind {
    Sliding,
    Learned,
    Bucket,
    Fixed,
    NginxStrict,
    NginxBurst,
}

impl ServerKind {
    const ALL: [ServerKind; 6] = [
        ServerKind::Sliding,
        ServerKind::Learned,
        ServerKind::Bucket,
        ServerKind::Fixed,
        ServerKind::NginxStrict,
        ServerKind::NginxBurst,
    ];

    fn name(self) -> &'static str {
        match self {
            ServerKind::Sliding => "sliding",
            ServerKind::Learned => "learned",
            ServerKind::Bucket => "bucket",
            ServerKind::Fixed => "fixed",
            ServerKind::NginxStrict => "nginx-strict",
            ServerKind::NginxBurst => "nginx-burst",
        }
    }

    fn parse(name: &str) -> Option<ServerKind> {
        ServerKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The server's true rate per second.
    fn qps(self) -> u32 {
        match self {
            ServerKind::Learned => LEARNED_QPS,
            _ => QPS,
        }
    }

    /// nginx's `burst`, or `None` for the lab's own servers.
    fn nginx_burst(self) -> Option<u32> {
        match self {
            ServerKind::NginxStrict => Some(0),
            ServerKind::NginxBurst => Some(NGINX_BURST),
            _ => None,
        }
    }

    /// The time an ideal client has its `served`-th request admitted, plus one latency.
    /// `phase` is where in its wall-clock second the run's first request arrived (the fixed
    /// window's boundaries).
    fn floor(self, served: u64, phase: f64) -> Duration {
        if served == 0 {
            return Duration::ZERO;
        }
        let k = served - 1; // the last request's 0-based index
        let admitted_at = match self {
            ServerKind::Sliding | ServerKind::Learned => (k / u64::from(self.qps())) as f64,
            ServerKind::Bucket => {
                let rate = f64::from(QPS);
                ((k as f64 + 1.0 - rate) / rate).max(0.0)
            }
            ServerKind::Fixed => {
                let windows = k / u64::from(QPS);
                if windows == 0 {
                    0.0
                } else {
                    (1.0 - phase) + (windows - 1) as f64
                }
            }
            ServerKind::NginxStrict | ServerKind::NginxBurst => {
                let burst = u64::from(self.nginx_burst().unwrap_or(0));
                k.saturating_sub(burst) as f64 / f64::from(QPS)
            }
        };
        Duration::from_secs_f64(admitted_at) + LATENCY
    }
}

/// The clients, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientKind {
    Resilience,
    GovernorBackon,
}

impl ClientKind {
    const ALL: [ClientKind; 2] = [ClientKind::Resilience, ClientKind::GovernorBackon];

    fn name(self) -> &'static str {
        match self {
            ClientKind::Resilience => "resilience",
            ClientKind::GovernorBackon => "governor+backon",
        }
    }

    fn parse(name: &str) -> Option<ClientKind> {
        ClientKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

// ---------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------

const USAGE: &str = "\
usage: quota_lab [--quick] [--n 1000] [--server NAME]... [--client NAME]...

  --quick    N = 200 instead of 1000
  --n        ids per run
  --server   sliding, learned, bucket, fixed, nginx-strict, nginx-burst (default: all)
  --client   resilience, governor+backon (default: both)";

#[derive(Debug)]
struct Flags {
    n: u64,
    servers: Vec<ServerKind>,
    clients: Vec<ClientKind>,
    /// Hidden: this process runs one cell's client against `url`.
    cell: Option<Cell>,
}

#[derive(Debug)]
struct Cell {
    server: ServerKind,
    client: ClientKind,
    url: String,
    timeout: Duration,
}

impl Flags {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Flags, String> {
        let mut n = None;
        let mut quick = false;
        let mut servers = Vec::new();
        let mut clients = Vec::new();
        let mut cell = None;
        let mut url = None;
        let mut timeout = None;
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // `cargo bench` passes `--bench` to a bench without the libtest harness.
                "--bench" => continue,
                "--quick" => {
                    quick = true;
                    continue;
                }
                "--help" | "-h" => return Err(USAGE.to_string()),
                _ => {}
            }
            let Some(value) = args.next() else {
                return Err(format!("`{arg}` needs a value\n\n{USAGE}"));
            };
            let bad = || format!("invalid value `{value}` for `{arg}`\n\n{USAGE}");
            match arg.as_str() {
                "--n" => n = Some(value.parse().ok().filter(|n| *n >= 1).ok_or_else(bad)?),
                "--server" => servers.push(ServerKind::parse(&value).ok_or_else(bad)?),
                "--client" => clients.push(ClientKind::parse(&value).ok_or_else(bad)?),
                "--cell" => {
                    let (server, client) = value.split_once(',').ok_or_else(bad)?;
                    cell = Some((
                        ServerKind::parse(server).ok_or_else(bad)?,
                        ClientKind::parse(client).ok_or_else(bad)?,
                    ));
                }
                "--url" => url = Some(value),
                "--timeout-ms" => {
                    timeout = Some(Duration::from_millis(value.parse().map_err(|_| bad())?));
                }
                _ => return Err(format!("unknown flag `{arg}`\n\n{USAGE}")),
            }
        }
        if servers.is_empty() {
            servers = ServerKind::ALL.to_vec();
        }
        if clients.is_empty() {
            clients = ClientKind::ALL.to_vec();
        }
        let n = n.unwrap_or(if quick { N_QUICK } else { N_DEFAULT });
        let cell = match (cell, url) {
            (Some((server, client)), Some(url)) => Some(Cell {
                server,
                client,
                url,
                timeout: timeout.unwrap_or_else(|| hard_timeout(server, n)),
            }),
            (None, None) => None,
            _ => return Err("`--cell` and `--url` go together".to_string()),
        };
        Ok(Flags {
            n,
            servers,
            clients,
            cell,
        })
    }
}

/// A client run's hard timeout: 3 x (N / the server's rate) + 30 s.
fn hard_timeout(server: ServerKind, n: u64) -> Duration {
    Duration::from_secs_f64(3.0 * n as f64 / f64::from(server.qps())) + Duration::from_secs(30)
}

// ---------------------------------------------------------------------------------------------
// The servers' rules
// ---------------------------------------------------------------------------------------------

/// A sliding 1 s window log of the admitted requests' arrivals.
#[derive(Debug)]
struct SlidingLog {
    limit: u32,
    log: VecDeque<Instant>,
}

/// A token bucket of `QPS` tokens refilled continuously at `QPS`/s, full at the start.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A fixed window of `QPS` per wall-clock second.
#[derive(Debug)]
struct FixedWindow {
    second: u64,
    count: u32,
}

/// What a server does with a request before serving it.
#[derive(Debug)]
enum Rule {
    /// `sliding` (headers on 429s only) and `learned` (headers on every answer).
    Sliding {
        log: SlidingLog,
        headers_always: bool,
    },
    Bucket(Bucket),
    Fixed(FixedWindow),
    /// nginx's upstream: everything is served.
    Open,
}

/// The verdict on one request: admitted or not, and the quota header lines to send.
struct Verdict {
    admitted: bool,
    retry_after_secs: u64,
    headers: String,
}

const WINDOW: Duration = Duration::from_secs(1);

/// Whole seconds, rounded up.
fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// A duration as Go's `time.Duration.String()` writes it (`0s`, `120ms`, `1.5s`, `6m0s`), to
/// the millisecond.
fn go_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (minutes, ms) = (ms / 60_000, ms % 60_000);
    let mut seconds = format!("{}", ms / 1000);
    if ms % 1000 != 0 {
        seconds = format!("{}.{:03}", ms / 1000, ms % 1000)
            .trim_end_matches('0')
            .to_string();
    }
    if minutes == 0 {
        format!("{seconds}s")
    } else if minutes < 60 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{}h{}m{seconds}s", minutes / 60, minutes % 60)
    }
}

impl Rule {
    fn new(kind: ServerKind, now: Instant) -> Rule {
        match kind {
            ServerKind::Sliding | ServerKind::Learned => Rule::Sliding {
                log: SlidingLog {
                    limit: kind.qps(),
                    log: VecDeque::new(),
                },
                headers_always: kind == ServerKind::Learned,
            },
            ServerKind::Bucket => Rule::Bucket(Bucket {
                tokens: f64::from(QPS),
                at: now,
            }),
            ServerKind::Fixed => Rule::Fixed(FixedWindow {
                second: 0,
                count: 0,
            }),
            ServerKind::NginxStrict | ServerKind::NginxBurst => Rule::Open,
        }
    }

    fn judge(&mut self, now: Instant, wall: SystemTime) -> Verdict {
        match self {
            Rule::Sliding {
                log,
                headers_always,
            } => {
                while log
                    .log
                    .front()
                    .is_some_and(|at| now.saturating_duration_since(*at) >= WINDOW)
                {
                    log.log.pop_front();
                }
                let admitted = log.log.len() < log.limit as usize;
                if admitted {
                    log.log.push_back(now);
                }
                // Until the oldest logged request leaves the window: a slot frees then.
                let reset = log.log.front().map_or(Duration::ZERO, |at| {
                    WINDOW.saturating_sub(now.saturating_duration_since(*at))
                });
                let retry_after_secs = ceil_secs(reset).max(1);
                let remaining = (log.limit as usize).saturating_sub(log.log.len());
                let headers = if *headers_always || !admitted {
                    let reset_secs = if admitted {
                        ceil_secs(reset)
                    } else {
                        retry_after_secs
                    };
                    format!(
                        "X-RateLimit-Limit: {}\r\nX-RateLimit-Remaining: {remaining}\r\n\
                         X-RateLimit-Reset: {reset_secs}\r\n",
                        log.limit
                    )
                } else {
                    String::new()
                };
                Verdict {
                    admitted,
                    retry_after_secs,
                    headers,
                }
            }
            Rule::Bucket(bucket) => {
                let rate = f64::from(QPS);
                let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
                bucket.tokens = (bucket.tokens + refill).min(rate);
                bucket.at = now;
                let admitted = bucket.tokens >= 1.0;
                if admitted {
                    bucket.tokens -= 1.0;
                }
                let until_full = Duration::from_secs_f64((rate - bucket.tokens) / rate);
                let retry_after_secs = ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64;
                Verdict {
                    admitted,
                    retry_after_secs,
                    headers: format!(
                        "x-ratelimit-limit-requests: {QPS}\r\n\
                         x-ratelimit-remaining-requests: {}\r\n\
                         x-ratelimit-reset-requests: {}\r\n",
                        bucket.tokens.floor() as u64,
                        go_duration(until_full),
                    ),
                }
            }
            Rule::Fixed(window) => {
                let since_epoch = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
                let second = since_epoch.as_secs();
                if second != window.second {
                    window.second = second;
                    window.count = 0;
                }
                let admitted = window.count < QPS;
                if admitted {
                    window.count += 1;
                }
                let to_boundary = Duration::from_secs(1)
                    .saturating_sub(Duration::from_nanos(u64::from(since_epoch.subsec_nanos())));
                Verdict {
                    admitted,
                    retry_after_secs: 1,
                    headers: format!(
                        "RateLimit-Limit: {QPS}\r\nRateLimit-Remaining: {}\r\n\
                         RateLimit-Reset: {}\r\nRateLimit-Policy: {QPS};w=1\r\n",
                        QPS - window.count,
                        ceil_secs(to_boundary),
                    ),
                }
            }
            Rule::Open => Verdict {
                admitted: true,
                retry_after_secs: 0,
                headers: String::new(),
            },
        }
    }
}

/// Whether the server answers 503 to the `served`-th time (from 0) it serves `id`.
fn fails(id: u64, served: u32) -> bool {
    // splitmix64
    let mut z = SEED ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (u64::from(served) << 48);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z % 10_000 < FAIL_PER_10K
}

// ---------------------------------------------------------------------------------------------
// The server: HTTP/1.1 with keep-alive on 127.0.0.1
// ---------------------------------------------------------------------------------------------

/// What the server saw, and the rule's state.
#[derive(Debug)]
struct Ledger {
    rule: Rule,
    requests: u64,
    too_many: u64,
    served: u64,
    unavailable: u64,
    /// Per id: times served, and whether it was answered 200.
    served_per_id: Vec<u32>,
    fetched: Vec<bool>,
    first_request: Option<SystemTime>,
}

/// What the parent reads from a server after a run.
#[derive(Debug, Clone, Copy)]
struct Seen {
    requests: u64,
    too_many: u64,
    served: u64,
    unavailable: u64,
    fetched: u64,
    /// Where in its wall-clock second the first request arrived (0..1).
    phase: f64,
}

struct Server {
    url: String,
    ledger: Arc<Mutex<Ledger>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(kind: ServerKind, n: u64) -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let ids = usize::try_from(n).unwrap_or(usize::MAX);
        let ledger = Arc::new(Mutex::new(Ledger {
            rule: Rule::new(kind, Instant::now()),
            requests: 0,
            too_many: 0,
            served: 0,
            unavailable: 0,
            served_per_id: vec![0; ids],
            fetched: vec![false; ids],
            first_request: None,
        }));
        let shared = Arc::clone(&ledger);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, Arc::clone(&shared)));
            }
        });
        Ok(Server {
            url: format!("http://{addr}"),
            ledger,
            task,
        })
    }

    fn seen(&self) -> Seen {
        let ledger = lock(&self.ledger);
        let phase = ledger
            .first_request
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |at| f64::from(at.subsec_nanos()) / 1e9);
        Seen {
            requests: ledger.requests,
            too_many: ledger.too_many,
            served: ledger.served,
            unavailable: ledger.unavailable,
            fetched: ledger.fetched.iter().filter(|done| **done).count() as u64,
            phase,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers requests on one connection until the client closes it.
async fn connection(mut stream: TcpStream, ledger: Arc<Mutex<Ledger>>) {
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
        while buffer.len() < head_end + request.body_len {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..head_end + request.body_len);
        let response = answer(&ledger, &request).await;
        if stream.write_all(response.as_bytes()).await.is_err() || request.close {
            return;
        }
    }
}

/// The rule first (a 429 is answered at once), then the latency, then 503 or 200.
async fn answer(ledger: &Mutex<Ledger>, request: &Request) -> String {
    let id = request
        .path
        .rsplit('/')
        .next()
        .and_then(|id| id.parse::<usize>().ok());
    let (verdict, fail) = {
        let mut ledger = lock(ledger);
        let wall = SystemTime::now();
        ledger.first_request.get_or_insert(wall);
        ledger.requests += 1;
        let verdict = ledger.rule.judge(Instant::now(), wall);
        let mut fail = false;
        if verdict.admitted {
            ledger.served += 1;
            if let Some(id) = id {
                if let Some(count) = ledger.served_per_id.get_mut(id) {
                    fail = fails(id as u64, *count);
                    *count += 1;
                }
            }
            if fail {
                ledger.unavailable += 1;
            }
        } else {
            ledger.too_many += 1;
        }
        (verdict, fail)
    };
    let (status, body) = if !verdict.admitted {
        ("429 Too Many Requests", String::new())
    } else {
        tokio::time::sleep(LATENCY).await;
        let known = || {
            let id = id?;
            *lock(ledger).fetched.get_mut(id)? = true;
            Some(id)
        };
        if fail {
            ("503 Service Unavailable", String::new())
        } else if let Some(id) = known() {
            ("200 OK", format!("item {id}\n"))
        } else {
            ("404 Not Found", String::new())
        }
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}",
        body.len(),
        verdict.headers,
    );
    if !verdict.admitted {
        let _ = write!(response, "Retry-After: {}\r\n", verdict.retry_after_secs);
    }
    if request.close {
        response.push_str("Connection: close\r\n");
    }
    response.push_str("\r\n");
    response.push_str(&body);
    response
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
        let mut parts = lines.next().unwrap_or_default().split(' ');
        let path = parts.nth(1).unwrap_or("/").to_string();
        let close = parts.next() == Some("HTTP/1.0");
        let mut request = Request {
            path,
            body_len: 0,
            close,
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
// nginx
// ---------------------------------------------------------------------------------------------

/// `nginx` on the PATH, else `/usr/sbin/nginx`.
fn find_nginx() -> Option<PathBuf> {
    let works = |program: &Path| {
        std::process::Command::new(program)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    [PathBuf::from("nginx"), PathBuf::from("/usr/sbin/nginx")]
        .into_iter()
        .find(|program| works(program))
}

/// A real nginx with `limit_req` in front of an upstream, from a temporary directory, stopped
/// by its PID on drop.
struct Nginx {
    child: Option<std::process::Child>,
    dir: PathBuf,
    port: u16,
}

impl Nginx {
    fn start(program: &Path, upstream: &str, burst: u32) -> Result<Nginx, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let dir =
            std::env::temp_dir().join(format!("quota-lab-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let upstream = upstream.trim_start_matches("http://");
        let burst = if burst > 0 {
            format!(" burst={burst} nodelay")
        } else {
            String::new()
        };
        let d = dir.display();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
             \x20 log_format lab '$status $request_uri';\n\
             \x20 access_log {d}/access.log lab;\n\
             \x20 client_body_temp_path {d}/client_body;\n\
             \x20 proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n\
             \x20 uwsgi_temp_path {d}/uwsgi;\n\
             \x20 scgi_temp_path {d}/scgi;\n\
             \x20 keepalive_requests 100000;\n\
             \x20 keepalive_timeout 75s;\n\
             \x20 limit_req_zone $binary_remote_addr zone=api:1m rate={QPS}r/s;\n\
             \x20 limit_req_status 429;\n\
             \x20 limit_req_log_level info;\n\
             \x20 upstream lab_upstream {{ server {upstream}; keepalive 64; }}\n\
             \x20 server {{\n\
             \x20   listen 127.0.0.1:{port};\n\
             \x20   location / {{\n\
             \x20     limit_req zone=api{burst};\n\
             \x20     proxy_pass http://lab_upstream;\n\
             \x20     proxy_http_version 1.1;\n\
             \x20     proxy_set_header Connection \"\";\n\
             \x20   }}\n\
             \x20 }}\n\
             }}\n"
        );
        let file = dir.join("nginx.conf");
        std::fs::write(&file, config).map_err(|e| format!("{}: {e}", file.display()))?;
        let child = std::process::Command::new(program)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{} does not start: {e}", program.display()))?;
        let mut nginx = Nginx {
            child: Some(child),
            dir,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(nginx);
            }
            let exited = nginx
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
                return Err(format!(
                    "nginx did not listen on 127.0.0.1:{port} ({exited:?}); error.log:\n{log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (requests, 429s) from the access log.
    fn counts(&self) -> (u64, u64) {
        let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        let mut requests = 0;
        let mut too_many = 0;
        for line in log.lines() {
            requests += 1;
            if line.starts_with("429 ") {
                too_many += 1;
            }
        }
        (requests, too_many)
    }

    /// SIGTERM, then SIGKILL after 2 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// The clients (in the child process)
// ---------------------------------------------------------------------------------------------

/// What a fetch can fail with.
#[derive(Debug)]
enum ApiError {
    /// A non-2xx answer, with its Retry-After.
    Http(HttpError),
    /// No answer: refused, reset, timed out, unreadable body.
    Transport(reqwest::Error),
    /// The local limiter refused (only in reject mode or past a `max_wait`).
    Refused(Rejected),
}

impl From<HttpError> for ApiError {
    fn from(error: HttpError) -> Self {
        ApiError::Http(error)
    }
}

impl From<reqwest::Error> for ApiError {
    fn from(error: reqwest::Error) -> Self {
        ApiError::Transport(error)
    }
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Refused(rejected)
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
            ApiError::Transport(error) => error.classification(),
            ApiError::Refused(rejected) => rejected.classification(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Http(error) => error.fmt(f),
            ApiError::Transport(error) => error.fmt(f),
            ApiError::Refused(rejected) => rejected.fmt(f),
        }
    }
}

impl std::error::Error for ApiError {}

/// The recommended stack: each try waits for the limiter named "api"; every response goes
/// through `error_for_status`, which feeds its quota headers and 429s to that limiter.
#[retry(attempts = 5, base = "100ms", max_delay = "5s", jitter = 0.2)]
#[rate_limited(calls = 50, period = "1s", policy = "api")]
async fn fetch(client: &reqwest::Client, url: &str, id: u64) -> Result<String, ApiError> {
    let response = client.get(format!("{url}/items/{id}")).send().await?;
    let response = resilience::http::error_for_status(response)?;
    Ok(response.text().await?)
}

/// One try of the peer stack: plain reqwest, the status and Retry-After kept.
async fn fetch_once(client: &reqwest::Client, url: &str, id: u64) -> Result<String, ApiError> {
    let response = client.get(format!("{url}/items/{id}")).send().await?;
    let status = response.status();
    if status.is_success() {
        return Ok(response.text().await?);
    }
    let mut error = HttpError::new(status.as_u16());
    if let Some(wait) = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
    {
        error = error.with_retry_after(Duration::from_secs(wait));
    }
    Err(error.into())
}

/// Whether the peer stack retries an error: 429, 502, 503, 504, connect and timeouts.
fn transient(error: &ApiError) -> bool {
    matches!(
        error.class(),
        ErrorClass::Status(429 | 502 | 503 | 504) | ErrorClass::Connect | ErrorClass::Timeout
    )
}

type Governor = governor::DefaultDirectRateLimiter;

/// The peer stack: `governor` before each try, `backon`'s exponential retry, honouring the
/// server's Retry-After through `adjust`.
async fn fetch_peer(
    limiter: &Governor,
    client: &reqwest::Client,
    url: &str,
    id: u64,
) -> Result<String, ApiError> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(4)
        .with_jitter();
    (|| async {
        limiter.until_ready().await;
        fetch_once(client, url, id).await
    })
    .retry(backoff)
    .when(transient)
    .adjust(|error, delay| {
        // `None` means the retries are spent: keep it so.
        delay.map(|delay| error.retry_after().unwrap_or(delay))
    })
    .await
}

/// A child: runs one cell's client and prints one line for the parent.
async fn run_cell(cell: &Cell, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONCURRENCY)
        .timeout(Duration::from_secs(10))
        .build()?;
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let on_progress = {
        let (done, failed) = (Arc::clone(&done), Arc::clone(&failed));
        move |progress: resilience::batch::Progress| {
            done.store(progress.done, Ordering::Relaxed);
            failed.store(progress.failed, Ordering::Relaxed);
        }
    };
    let started = Instant::now();
    let url = cell.url.as_str();
    let http = &http;
    let outcome = match cell.client {
        ClientKind::Resilience => {
            let run = batch(0..n, |id| fetch(http, url, id))
                .concurrency(CONCURRENCY)
                .keep_successes(false)
                .on_progress(on_progress);
            tokio::time::timeout(cell.timeout, run)
                .await
                .map(|report| (report.elapsed, report.failed, first_error(&report)))
        }
        ClientKind::GovernorBackon => {
            let quota = governor::Quota::per_second(NonZeroU32::MIN.saturating_add(QPS - 1))
                .allow_burst(NonZeroU32::MIN);
            let limiter = Governor::direct(quota);
            let limiter = &limiter;
            let run = batch(0..n, |id| fetch_peer(limiter, http, url, id))
                .concurrency(CONCURRENCY)
                .keep_successes(false)
                .on_progress(on_progress);
            tokio::time::timeout(cell.timeout, run)
                .await
                .map(|report| (report.elapsed, report.failed, first_error(&report)))
        }
    };
    match outcome {
        Ok((elapsed, failed, error)) => println!(
            "{CELL_LINE} cell={},{} done=1 failed={failed} wall_ms={} first_error={error}",
            cell.server.name(),
            cell.client.name(),
            elapsed.as_millis()
        ),
        Err(_) => println!(
            "{CELL_LINE} cell={},{} done=0 failed={} wall_ms={} finished={} first_error=timeout",
            cell.server.name(),
            cell.client.name(),
            failed.load(Ordering::Relaxed),
            started.elapsed().as_millis(),
            done.load(Ordering::Relaxed),
        ),
    }
    Ok(())
}

/// The first dead letter's error, without spaces, for the report line. (Its `tries` are
/// the ones the batch saw: `backon`'s retries happen inside one call, so a 1 is left out.)
fn first_error<T>(report: &resilience::batch::BatchReport<u64, T, ApiError>) -> String {
    report.dead_letters.first().map_or("-".to_string(), |dead| {
        let tries = if dead.tries > 1 {
            format!(":{}tries", dead.tries)
        } else {
            String::new()
        };
        format!("id{}:{}{tries}", dead.input, dead.error).replace(' ', "_")
    })
}

// ---------------------------------------------------------------------------------------------
// The parent: servers, children, the table
// ---------------------------------------------------------------------------------------------

/// One cell's result.
#[derive(Debug, Clone)]
enum Outcome {
    Measured(Measured),
    /// The row cannot run (nginx missing) or the cell broke: the reason.
    Skipped(String),
}

#[derive(Debug, Clone)]
struct Measured {
    done: bool,
    wall: Duration,
    floor: Duration,
    /// The server's true N / qps.
    quota_time: Duration,
    too_many: u64,
    failed: u64,
    sent: u64,
    unavailable: u64,
    fetched: u64,
    first_error: String,
}

/// The fields of a child's report line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
}

/// Runs one client in a child process against `url`; returns its report line.
async fn run_child(
    server: ServerKind,
    client: ClientKind,
    url: &str,
    n: u64,
) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let timeout = hard_timeout(server, n);
    let child = tokio::process::Command::new(exe)
        .args(["--cell", &format!("{},{}", server.name(), client.name())])
        .args(["--url", url])
        .args(["--n", &n.to_string()])
        .args(["--timeout-ms", &timeout.as_millis().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("the child does not start: {e}"))?;
    // The child stops itself at `timeout`; this is the backstop.
    let output = tokio::time::timeout(timeout + Duration::from_secs(15), child.wait_with_output())
        .await
        .map_err(|_| "the child did not stop by itself; killed".to_string())?
        .map_err(|e| format!("the child: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find(|line| line.starts_with(CELL_LINE))
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "the child ({}) printed no report: {stdout:?}",
                output.status
            )
        })
}

async fn run_cell_in_child(
    server: ServerKind,
    client: ClientKind,
    n: u64,
    nginx: Option<&Path>,
) -> Outcome {
    let upstream = match Server::start(server, n).await {
        Ok(upstream) => upstream,
        Err(e) => return Outcome::Skipped(format!("server: {e}")),
    };
    let front = match (server.nginx_burst(), nginx) {
        (None, _) => None,
        (Some(_), None) => return Outcome::Skipped("nginx not installed".to_string()),
        (Some(burst), Some(program)) => match Nginx::start(program, &upstream.url, burst) {
            Ok(front) => Some(front),
            Err(e) => return Outcome::Skipped(e),
        },
    };
    let url = front.as_ref().map_or(upstream.url.clone(), Nginx::url);
    let line = match run_child(server, client, &url, n).await {
        Ok(line) => line,
        Err(e) => return Outcome::Skipped(e),
    };
    let seen = upstream.seen();
    let (sent, too_many) = match &front {
        Some(front) => front.counts(),
        None => (seen.requests, seen.too_many),
    };
    drop(front);
    let done = field(&line, "done") == Some("1");
    let wall = Duration::from_millis(
        field(&line, "wall_ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    let failed = if done {
        field(&line, "failed")
            .and_then(|v| v.parse().ok())
            .unwrap_or(n)
    } else {
        n.saturating_sub(seen.fetched)
    };
    Outcome::Measured(Measured {
        done,
        wall,
        floor: server.floor(seen.served, seen.phase),
        quota_time: Duration::from_secs_f64(n as f64 / f64::from(server.qps())),
        too_many,
        failed,
        sent,
        unavailable: seen.unavailable,
        fetched: seen.fetched,
        first_error: field(&line, "first_error").unwrap_or("-").to_string(),
    })
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// One cell as table columns: wall, floor, wall/floor, wall/(N/qps), 429s, failed, sent.
fn columns(outcome: &Outcome) -> [String; 7] {
    match outcome {
        Outcome::Skipped(reason) => {
            let short = reason.lines().next().unwrap_or_default().to_string();
            [
                short,
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
            ]
        }
        Outcome::Measured(m) => {
            let wall = if m.done {
                format!("{:.2}", secs(m.wall))
            } else {
                format!("not done ({} fetched)", m.fetched)
            };
            [
                wall,
                format!("{:.2}", secs(m.floor)),
                format!("{:.3}", secs(m.wall) / secs(m.floor).max(1e-9)),
                format!("{:.3}", secs(m.wall) / secs(m.quota_time).max(1e-9)),
                m.too_many.to_string(),
                m.failed.to_string(),
                m.sent.to_string(),
            ]
        }
    }
}

fn print_cell(server: ServerKind, client: ClientKind, outcome: &Outcome) {
    match outcome {
        Outcome::Skipped(reason) => {
            println!("{:<13} {:<16} {reason}", server.name(), client.name());
        }
        Outcome::Measured(m) => {
            let [wall, floor, ratio, quota, too_many, failed, sent] = columns(outcome);
            println!(
                "{:<13} {:<16} wall {wall}s  floor {floor}s  wall/floor {ratio}  \
                 wall/(N/qps) {quota}  429s {too_many}  failed {failed}  sent {sent}  \
                 503s {}  first error {}",
                server.name(),
                client.name(),
                m.unavailable,
                m.first_error,
            );
        }
    }
}

fn table(n: u64, clients: &[ClientKind], rows: &[(ServerKind, Vec<Outcome>)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "quota lab: N = {n}, quota {QPS}/s (learned: {LEARNED_QPS}/s), concurrency \
         {CONCURRENCY}, {} ms latency, {}% 503s; wall and floor in seconds\n",
        LATENCY.as_millis(),
        FAIL_PER_10K / 100,
    );
    let mut header = "| server |".to_string();
    let mut rule = "|---|".to_string();
    for client in clients {
        for column in [
            "wall",
            "floor",
            "wall/floor",
            "wall/(N/qps)",
            "429s",
            "failed",
            "sent",
        ] {
            let _ = write!(header, " {}: {column} |", client.name());
            rule.push_str("---:|");
        }
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for (server, outcomes) in rows {
        let mut line = format!("| {} |", server.name());
        for outcome in outcomes {
            for column in columns(outcome) {
                let _ = write!(line, " {column} |");
            }
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

/// `$CARGO_TARGET_DIR`, else the `target/` this executable was built in
/// (`target/release/deps/quota_lab-..`), else `target`.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("target"))
}

async fn run_lab(flags: &Flags) -> Result<(), Box<dyn std::error::Error>> {
    let nginx = find_nginx();
    println!(
        "quota lab: N = {}, {} server(s) x {} client(s); nginx: {}",
        flags.n,
        flags.servers.len(),
        flags.clients.len(),
        nginx
            .as_deref()
            .map_or("not installed".to_string(), |p| p.display().to_string())
    );
    let mut rows = Vec::new();
    for &server in &flags.servers {
        let mut outcomes = Vec::new();
        for &client in &flags.clients {
            let outcome = run_cell_in_child(server, client, flags.n, nginx.as_deref()).await;
            print_cell(server, client, &outcome);
            outcomes.push(outcome);
        }
        rows.push((server, outcomes));
    }
    let table = table(flags.n, &flags.clients, &rows);
    println!("\n{table}");
    let dir = target_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("quota_lab.md");
    std::fs::write(&path, &table)?;
    println!("written to {}", path.display());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(flags) => flags,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match &flags.cell {
        Some(cell) => runtime.block_on(run_cell(cell, flags.n)),
        None => runtime.block_on(run_lab(&flags)),
    }
}
