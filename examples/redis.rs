//! Redis backends (feature `redis`): two instances of a service share one rate-limit quota and
//! one cache through Redis; then Redis stops in the middle of the run, and `on_backend_error`
//! decides, within `backend_timeout`.
//!
//! `cargo run --features redis --example redis`
//!
//! With `REDIS_URL` set (`redis://127.0.0.1:6379/0`) the example uses that server, under keys
//! of its own prefix (they expire by themselves), and simulates the outage without touching
//! it. Otherwise it starts its own `redis-server` (which must be installed) on a free port,
//! freezes and kills it for the outage, and stops it at the end. The two "instances" are two
//! threads, each with a tokio runtime and a Redis connection of its own, as two processes
//! would have. It takes about three seconds.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::time::{Duration, Instant};

use resilience::{Rejected, cached, rate_limited};
use serde::{Deserialize, Serialize};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

// ---------------------------------------------------------------------------------------------
// The service: the functions every instance runs
// ---------------------------------------------------------------------------------------------

/// The service's error: here only the runtime's refusals.
#[derive(Debug)]
enum ApiError {
    Rejected(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Rejected(rejected) => write!(f, "{rejected}"),
        }
    }
}

/// One call to a rate-limited partner API, from instance A (the inline values are defaults;
/// the policy file sets the quota and the backend).
#[rate_limited(policy = "shared-api", calls = 100, period = "1s", mode = "reject")]
async fn call_partner_from_a(n: u32) -> Result<u32, ApiError> {
    Ok(n)
}

/// The same call, from instance B.
#[rate_limited(policy = "shared-api", calls = 100, period = "1s", mode = "reject")]
async fn call_partner_from_b(n: u32) -> Result<u32, ApiError> {
    Ok(n)
}

/// A user profile: serde types, so a policy's Redis backend can keep it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Profile {
    id: u32,
    name: String,
}

/// A slow database read, cached for every instance through the `shared-cache` policy.
#[cached(ttl = "60s", policy = "shared-cache")]
async fn profile(id: u32) -> Result<Profile, ApiError> {
    println!(
        "     {} reads profile {id} from the database (50 ms)",
        instance()
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(Profile {
        id,
        name: "Ada Lovelace".to_string(),
    })
}

/// An order sent to a partner whose quota the `outage` policy keeps in Redis.
#[rate_limited(policy = "outage", calls = 100, period = "1s", mode = "reject")]
async fn send_order(n: u32) -> Result<u32, ApiError> {
    Ok(n)
}

/// The instance a call runs on: its thread's name.
fn instance() -> String {
    std::thread::current().name().unwrap_or("main").to_string()
}

// ---------------------------------------------------------------------------------------------
// The policies an operator writes
// ---------------------------------------------------------------------------------------------

/// Every policy of the example: installing a file replaces them all.
fn policies(redis: &str, outage_redis: &str, prefix: &str, on_backend_error: &str) -> String {
    format!(
        "\
policies:
  shared-api:
    rate_limit: {{ calls: 10, period: 10s, burst: 9, mode: reject }}
    backend: {redis}
    key_prefix: \"{prefix}\"
  shared-cache:
    cache: {{ ttl: 60s }}
    backend: {redis}
    key_prefix: \"{prefix}\"
  outage:
    rate_limit: {{ calls: 3, period: 10s, burst: 2, mode: reject }}
    backend: {outage_redis}
    backend_timeout: 100ms
    on_backend_error: {on_backend_error}
    key_prefix: \"{prefix}\"
"
    )
}

fn install(yaml: &str) {
    if let Err(errors) = resilience::config::load_str(yaml) {
        panic!("the example's policies are refused: {errors}");
    }
}

// ---------------------------------------------------------------------------------------------
// Redis: the example's own server, or REDIS_URL
// ---------------------------------------------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|error| panic!("no free port on 127.0.0.1: {error}"))
}

/// The Redis the example talks to, and how it makes an outage of it.
enum Redis {
    /// A `redis-server` the example started: frozen with SIGSTOP, then killed (`None`).
    Own { child: Option<Child>, port: u16 },
    /// `REDIS_URL`: left alone; the outage is a listener that never answers (what a frozen
    /// Redis looks like to a client), then a port where nothing listens.
    External {
        url: String,
        black_hole: TcpListener,
    },
}

impl Redis {
    fn start() -> Self {
        if let Ok(url) = std::env::var("REDIS_URL") {
            let black_hole = TcpListener::bind("127.0.0.1:0")
                .unwrap_or_else(|error| panic!("no free port on 127.0.0.1: {error}"));
            return Redis::External { url, black_hole };
        }
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "set REDIS_URL, or install `redis-server` (`sudo apt-get install -y \
                     redis-server`, `brew install redis`) for the example to start its own: {error}"
                )
            });
        let redis = Redis::Own {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis.command("PING").is_none_or(|answer| answer != "+PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn url(&self) -> String {
        match self {
            Redis::Own { port, .. } => format!("redis://127.0.0.1:{port}/0"),
            Redis::External { url, .. } => url.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Redis::Own { .. } => format!("its own redis-server at {}", self.url()),
            Redis::External { .. } => format!("REDIS_URL={}", self.url()),
        }
    }

    /// `host:port` of the URL, for the raw commands that show what is stored.
    fn address(&self) -> String {
        let url = self.url();
        let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
        let host = rest.split('/').next().unwrap_or(rest);
        if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:6379")
        }
    }

    /// One inline command over a fresh connection; the first line of the answer.
    fn command(&self, command: &str) -> Option<String> {
        let mut stream = TcpStream::connect(self.address()).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
        let mut buffer = [0u8; 512];
        let read = stream.read(&mut buffer).ok()?;
        let answer = String::from_utf8_lossy(&buffer[..read]).into_owned();
        answer.lines().next().map(str::to_string)
    }

    /// `GET key`: the value's bytes, shown with the non-printable ones escaped.
    fn get(&self, key: &str) -> Option<String> {
        let mut stream = TcpStream::connect(self.address()).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        stream.write_all(format!("GET {key}\r\n").as_bytes()).ok()?;
        let mut buffer = [0u8; 512];
        let read = stream.read(&mut buffer).ok()?;
        let answer = &buffer[..read];
        let start = answer.windows(2).position(|pair| pair == b"\r\n")? + 2;
        let value = answer.get(start..answer.len().checked_sub(2)?)?;
        Some(value.escape_ascii().to_string())
    }

    /// The URL the `outage` policy should name while Redis is frozen.
    fn freeze(&self) -> String {
        match self {
            Redis::Own { child, .. } => {
                signal(child.as_ref(), "-STOP");
                self.url()
            }
            Redis::External { black_hole, .. } => black_hole
                .local_addr()
                .map(|address| format!("redis://{address}/0"))
                .unwrap_or_else(|error| panic!("the black hole has no address: {error}")),
        }
    }

    fn thaw(&self) -> String {
        if let Redis::Own { child, .. } = self {
            signal(child.as_ref(), "-CONT");
        }
        self.url()
    }

    /// The URL the `outage` policy should name once Redis is gone.
    fn kill(&mut self) -> String {
        match self {
            Redis::Own { child, .. } => {
                if let Some(mut child) = child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                self.url()
            }
            Redis::External { .. } => format!("redis://127.0.0.1:{}/0", free_port()),
        }
    }
}

/// Sends a signal to the example's own redis-server (by its process id), while it runs.
fn signal(child: Option<&Child>, signal: &str) {
    let Some(child) = child else {
        return;
    };
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    assert!(
        sent.is_ok_and(|status| status.success()),
        "`kill {signal}` of redis-server failed"
    );
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Redis::Own {
            child: Some(child), ..
        } = self
        {
            signal(Some(child), "-CONT");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the runtime logged about the backend, printed beside each call
// ---------------------------------------------------------------------------------------------

/// The messages of the runtime's `resilience::backend` events since the last [`take_events`].
static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A `tracing` layer keeping those messages (a service would log them; a WARN per failure).
struct KeepBackendEvents;

impl<S: tracing::Subscriber> Layer<S> for KeepBackendEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "resilience::backend" {
            let mut message = Message(String::new());
            event.record(&mut message);
            let level = event.metadata().level();
            EVENTS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!("{level} {}", message.0));
        }
    }
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

fn take_events() -> String {
    let events = std::mem::take(&mut *EVENTS.lock().unwrap_or_else(PoisonError::into_inner));
    events.join("; ")
}

// ---------------------------------------------------------------------------------------------
// The story
// ---------------------------------------------------------------------------------------------

/// Runs `work` on a new thread named `name` with a runtime of its own: one instance.
fn on_instance<T, Fut>(name: &str, work: impl FnOnce() -> Fut + Send + 'static) -> T
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    spawn_instance(name, work)
        .join()
        .unwrap_or_else(|_| panic!("{name} panicked"))
}

fn spawn_instance<T, Fut>(
    name: &str,
    work: impl FnOnce() -> Fut + Send + 'static,
) -> std::thread::JoinHandle<T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|error| panic!("no tokio runtime: {error}"));
            runtime.block_on(work())
        })
        .unwrap_or_else(|error| panic!("no thread: {error}"))
}

fn ms(duration: Duration) -> String {
    format!("{:6.1} ms", duration.as_secs_f64() * 1e3)
}

/// 1. Two instances draw from one quota.
fn shared_quota(redis: &Redis, prefix: &str) {
    println!("1. One quota for two instances");
    println!(
        "   policy `shared-api`: rate_limit {{ calls: 10, period: 10s, burst: 9, mode: reject }}: \
         10 calls at once, then one a second, for all instances together"
    );
    take_events();
    // Both start together, and both runtimes live until both are done (as two processes).
    let start = Arc::new(Barrier::new(2));
    let done = Arc::new(Barrier::new(2));
    let run = |name: &str, from_a: bool| {
        let (start, done) = (Arc::clone(&start), Arc::clone(&done));
        spawn_instance(name, move || async move {
            start.wait();
            let mut admitted = 0;
            let mut refused = None;
            for n in 0..15 {
                let result = if from_a {
                    call_partner_from_a(n).await
                } else {
                    call_partner_from_b(n).await
                };
                match result {
                    Ok(_) => admitted += 1,
                    Err(error) => refused = refused.or(Some(error)),
                }
            }
            done.wait();
            (admitted, refused)
        })
    };
    let (a, b) = (run("instance A", true), run("instance B", false));
    let mut total = 0;
    for (name, handle) in [("instance A", a), ("instance B", b)] {
        let (admitted, refused) = handle.join().unwrap_or_else(|_| panic!("{name} panicked"));
        total += admitted;
        let refused = refused.map_or(String::new(), |error| {
            format!(" (the first: {})", refusal(&error))
        });
        println!(
            "   {name}: 15 calls, {admitted:>2} admitted, {:>2} refused{refused}",
            15 - admitted
        );
    }
    // A round trip slower than `backend_timeout` (a loaded machine) is a backend error, and
    // the policy's `on_backend_error: allow` lets that call through unchecked: say so, so that
    // an 11th admission is not read as the shared quota leaking.
    let let_through = std::mem::take(&mut *EVENTS.lock().unwrap_or_else(PoisonError::into_inner))
        .iter()
        .filter(|event| event.ends_with("; allow"))
        .count();
    println!("   together: {total} admitted; the quota is 10");
    if let_through > 0 {
        println!(
            "   ({let_through} of them found Redis slower than backend_timeout (50 ms by default): \
             `on_backend_error: allow`, the default, let each through unchecked rather than \
             fail the call; `deny` would refuse it, `local` ask this instance's own limiter)"
        );
    }
    let key = format!("{prefix}rl:{{shared-api}}");
    if let Some(ttl) = redis.command(&format!("PTTL {key}")) {
        println!(
            "   the schedule is one Redis key, `{key}` (a GCRA time, kept by a Lua script on \
             Redis's clock), expiring in {} ms",
            ttl.trim_start_matches(':')
        );
    }
}

/// 2. A cached function's entries are shared: the second instance hits.
fn shared_cache(redis: &Redis, prefix: &str) {
    println!("\n2. One cache for two instances");
    println!("   policy `shared-cache`: cache {{ ttl: 60s }}, #[cached] on `profile(id: u32)`");
    let call = |name: &str| {
        on_instance(name, || async {
            let start = Instant::now();
            let profile = profile(7).await;
            (profile, start.elapsed())
        })
    };
    for (name, expected) in [
        ("instance A", "a miss: loaded, stored in Redis"),
        ("instance B", "a hit in Redis: no load"),
    ] {
        let (profile, took) = call(name);
        let name_read = profile.map_or_else(|error| error.to_string(), |profile| profile.name);
        println!(
            "   {name}: profile(7) = {name_read:?} in {} ({expected})",
            ms(took)
        );
    }
    let key = format!(
        "{prefix}cache:{{shared-cache}}:{}::profile:[7]",
        module_path!()
    );
    if let Some(bytes) = redis.get(&key) {
        println!(
            "   the entry: `{key}` = b\"{bytes}\" (format version 1, 0: a value, then JSON), \
             expiring with the ttl"
        );
    }
    let invalidated = on_instance("instance B", || async {
        profile_cache().invalidate_shared(&(7_u32,)).await
    });
    println!(
        "   instance B: the record changed: profile_cache().invalidate_shared(&(7,)) = {invalidated} \
         (deleted here and in Redis)"
    );
    let (_, took) = call("instance A");
    println!(
        "   instance A: profile(7) in {} (a miss again: loaded)",
        ms(took)
    );
}

/// A refusal in few words: `refused, next in 3.33 s`.
fn refusal(error: &ApiError) -> String {
    match error {
        ApiError::Rejected(Rejected::RateLimited { retry_after }) if retry_after.is_zero() => {
            "refused".to_string()
        }
        ApiError::Rejected(Rejected::RateLimited { retry_after }) => {
            format!("refused, next in {:.2} s", retry_after.as_secs_f64())
        }
        ApiError::Rejected(rejected) => format!("refused: {rejected}"),
    }
}

/// One call of `send_order`, printed with its latency, the decision and the runtime's events.
async fn order(n: u32) {
    let start = Instant::now();
    let result = send_order(n).await;
    let took = start.elapsed();
    let decision = match &result {
        Ok(_) => "admitted".to_string(),
        Err(error) => refusal(error),
    };
    let events = take_events();
    let events = if events.is_empty() {
        "(Redis answered)".to_string()
    } else {
        format!("log: {events}")
    };
    println!("     call {n}: {}  {decision:<24}  {events}", ms(took));
}

/// 3. Redis stops in the middle of the run.
async fn outage(redis: &mut Redis, prefix: &str) {
    let url = redis.url();
    let reload = |outage_url: &str, on_error: &str| {
        install(&policies(&url, outage_url, prefix, on_error));
        println!("   on_backend_error: {on_error}");
    };
    println!("\n3. Redis stops in the middle of the run");
    println!(
        "   policy `outage`: rate_limit {{ calls: 3, period: 10s, burst: 2, mode: reject }}, \
         backend_timeout: 100ms"
    );
    println!("   Redis up:");
    reload(&url, "allow");
    order(1).await;

    let frozen = redis.freeze();
    match redis {
        Redis::Own { .. } => println!(
            "   Redis frozen (SIGSTOP): connections are accepted and never answered, as in a \
             network partition"
        ),
        Redis::External { .. } => println!(
            "   Redis frozen (REDIS_URL is left alone: the policy now names a listener that \
             accepts connections and never answers, which is what a frozen Redis looks like)"
        ),
    }
    reload(&frozen, "allow");
    for n in 1..=5 {
        order(n).await;
    }
    println!("     (three failures in a row: Redis is skipped for 1 s, so calls pay no timeout)");
    reload(&frozen, "deny");
    for n in 1..=2 {
        order(n).await;
    }
    reload(&frozen, "local");
    println!("     (this process's in-memory limiter: 3 at once, then one per 3.3 s)");
    for n in 1..=4 {
        order(n).await;
    }
    println!("   1 s later the skip is over: one call tries Redis again, and waits the timeout");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    order(5).await;

    let thawed = redis.thaw();
    let own = matches!(redis, Redis::Own { .. });
    if own {
        println!("   Redis answers again (SIGCONT): the shared quota is back");
    } else {
        println!(
            "   Redis answers again (the policy names REDIS_URL again): the shared quota is back"
        );
    }
    reload(&thawed, "allow");
    for n in 1..=2 {
        order(n).await;
    }
    if own {
        println!(
            "     (a call that timed out may still have reached Redis: the first frozen call was \
             already written to the open connection; Redis ran it on waking, and it counts)"
        );
    }

    let gone = redis.kill();
    if own {
        println!(
            "   Redis killed: the open connection breaks at once; reconnecting is refused, and \
             each call still waits at most backend_timeout"
        );
    } else {
        println!(
            "   Redis gone (the policy names a port where nothing listens): reconnecting is \
             refused, and each call still waits at most backend_timeout"
        );
    }
    reload(&gone, "allow");
    for n in 1..=4 {
        order(n).await;
    }
}

fn main() {
    let subscriber = tracing_subscriber::registry().with(KeepBackendEvents);
    if let Err(error) = tracing::subscriber::set_global_default(subscriber) {
        panic!("a subscriber was already set: {error}");
    }
    let mut redis = Redis::start();
    // A prefix of this run's own: a server given by REDIS_URL may hold other keys, or an
    // earlier run's (they expire by themselves).
    let prefix = format!("resilience-example:{}:", std::process::id());
    let url = redis.url();
    install(&policies(&url, &url, &prefix, "allow"));
    println!("Redis: {}; keys prefixed `{prefix}`\n", redis.describe());
    let started = Instant::now();

    shared_quota(&redis, &prefix);
    shared_cache(&redis, &prefix);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("no tokio runtime: {error}"));
    runtime.block_on(outage(&mut redis, &prefix));

    println!(
        "\nEvery fallback above was also counted (`resilience_backend_errors_total{{policy, \
         fallback}}`) and logged (target `resilience::backend`). Done in {:.1} s.",
        started.elapsed().as_secs_f64()
    );
}
