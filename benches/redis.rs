//! The Redis backends (feature `redis`) on their happy path, each beside its physical floor:
//! one round trip to the same `redis-server` on a `redis::aio::ConnectionManager` of the kind
//! the runtime uses. Over loopback a round trip is tens of microseconds, so what the runtime
//! adds (the policy lookup, the key, the script's arguments, single-flight, JSON) shows as
//! the ratio to that floor.
//!
//! The bench starts its own `redis-server` (it must be on the `PATH`) on 127.0.0.1 and a free
//! port, without persistence, and stops it at the end. It installs two policies with
//! `resilience::config::load_str` naming `backend: redis://127.0.0.1:<port>/0` and
//! `on_backend_error: deny`, so that a failing round trip shows as an error the bench counts
//! (and reports) rather than as a fast local fallback that would flatter the figures. Every
//! case runs on one current-thread tokio runtime through criterion's `to_async(&rt)`: each
//! iteration is one `.await`, one round trip at a time.
//!
//! - `redis_rate_limit`: an admitted check.
//!   - `floor_ping`: `PING` on a `ConnectionManager` (the floor);
//!   - `raw_gcra_script`: the runtime's GCRA Lua script invoked by hand through
//!     `redis::Script` (`EVALSHA` with the same key and arguments): the floor plus the work
//!     Redis does in the script (`TIME`, `GET`, `SET .. PX`), without the runtime around it;
//!   - `resilience_rate_limited`: `#[rate_limited(policy = "bench", calls = 1000000000,
//!     period = "1s")]` on a trivial `async fn`, the policy's backend being Redis.
//!   - `resilience_rate_limited_cluster`: the same check on a three-node Redis Cluster the
//!     bench starts too (`redis+cluster://`, through the redis crate's cluster client; the
//!     policy's keys share one slot), against `floor_ping` on the single server: what a
//!     cluster costs a check.
//! - `redis_cache_hit`: a hit on a primed entry (`{"id":7,"name":"Reykjavik"}`, 27 bytes of
//!   JSON, 29 with the format's two header bytes).
//!   - `floor_get`: `GET` of that very entry on a `ConnectionManager` (the floor);
//!   - `raw_get_decode`: the same `GET`, then the header check and `serde_json` decoding into
//!     the value type, by hand;
//!   - `resilience_cached`: `#[cached(ttl = "1h", policy = "bench-cache")]` on an `async fn`
//!     whose key and value are serde types.
//!
//! - `redis_local_hit`: a hit of a local tier in front of a Redis cache (`cache: { local: {
//!   max_entries: 1000, ttl: 1h } }`), no round trip, beside the same function cached in memory.
//!   - `memory_cached`: `#[cached(ttl = "1h")]`, in memory only;
//!   - `local_tier_cached`: `#[cached(ttl = "1h", policy = "bench-near")]`, its entry in Redis
//!     and a copy in the local tier.
//!
//! - `redis_lease`: checks of one hot shared quota from 4 instances at once (4 threads, each a
//!   runtime and a Redis connection of its own, as 4 processes would be), per check over all
//!   four: `#[rate_limited(calls = 1000000, period = "1s")]` with a burst of 1,000,000 and
//!   `mode: reject`, the schedule reset before each sample so that no check is refused.
//!   - `lease_off`: `lease: off`, one round trip per check;
//!   - `lease_auto`: `lease: auto`, leases of up to 256 permits spent locally.
//!
//!   Then, for the bound, each runs one second against 200,000 per second (no burst): the
//!   checks made, the calls admitted, and the bound `calls + burst + (K + 1) × cap` of
//!   `docs/redis.md` (printed, and written to `target/criterion/redis_lease.json`).
//!
//! After criterion, the bench prints the time Redis itself spent per command (`INFO
//! commandstats`: `PING`, `EVALSHA`, `GET`), then measures each case against its floor once
//! more, call for call in alternation (15 rounds of 1000 calls of each), and writes those
//! ratios to `target/criterion/redis_alternated.json`. On a shared virtual machine the round
//! trip itself moves with the machine's load (from about 60 µs on an idle one to under 20 µs
//! on a busy one, where the vCPUs need not wake from a halt), and criterion measures the cases
//! one after the other: alternated calls see the same round trip, so their ratio is the one to
//! trust when the two disagree.
//!
//! ```text
//! cargo bench -p resilience-benches --bench redis -- --warm-up-time 1 --measurement-time 3
//! benches/table.sh redis     # the same, then markdown tables of the ratios to the floors
//! ```

use std::future::Future;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use redis::aio::ConnectionManager;
use resilience::Rejected;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
/// A three-node Redis Cluster for the `resilience_rate_limited_cluster` case: the tests'
/// starter, shared as a file (this package is not published).
#[path = "../tests/support/redis_cluster.rs"]
mod redis_cluster;

// A redis-server of the bench's own
// ---------------------------------------------------------------------------------------------

/// A `redis-server` on 127.0.0.1 and a free port, killed on drop (the approach of the tests'
/// `tests/support/redis_server.rs`, without the test helpers).
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts one and waits until it answers `PING`.
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port on 127.0.0.1");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "this bench starts its own `redis-server` ({error}); install it with \
                     `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis`"
                )
            });
        let server = RedisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if server.pong() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {port} did not answer PING within 10 s");
    }

    fn pong(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buffer = [0u8; 16];
        stream.write_all(b"PING\r\n").is_ok()
            && stream
                .read(&mut buffer)
                .is_ok_and(|read| buffer[..read].starts_with(b"+PONG"))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The functions
// ---------------------------------------------------------------------------------------------

/// The error type of both functions: it can carry a refusal, as `#[rate_limited]` needs.
#[derive(Debug)]
struct MyErr;

impl From<Rejected> for MyErr {
    fn from(_: Rejected) -> Self {
        MyErr
    }
}

/// The policies: Redis backends, a failure refused (and counted) rather than hidden; the rate
/// limit unleased (`lease: off`), so that each check is the round trip measured; the last one
/// with a local tier in front of its Redis cache.
fn policies(url: &str, cluster: &str) -> String {
    format!(
        "policies:\n  bench:\n    rate_limit: {{ lease: off }}\n    backend: {url}\n    backend_timeout: 1s\n    on_backend_error: deny\n  \
         bench-cluster:\n    rate_limit: {{ lease: off }}\n    backend: {cluster}\n    backend_timeout: 1s\n    on_backend_error: deny\n  \
         bench-cache:\n    backend: {url}\n    backend_timeout: 1s\n    on_backend_error: deny\n  \
         bench-near:\n    cache: {{ local: {{ max_entries: 1000, ttl: 1h }} }}\n    backend: {url}\n    \
         backend_timeout: 1s\n    on_backend_error: deny\n{}",
        hot_policies(url, HOT_CALLS, HOT_CALLS)
    )
}

/// The hot quota of `redis_lease`: one second of it in the burst, so no sample is refused.
const HOT_CALLS: u32 = 1_000_000;
/// The instances of `redis_lease`.
const HOT_INSTANCES: usize = 4;

/// The two policies of `redis_lease`, leased and not, at `calls` per second and `burst`.
fn hot_policies(url: &str, calls: u32, burst: u32) -> String {
    ["off", "auto"]
        .map(|lease| {
            format!(
                "  bench-lease-{lease}:\n    rate_limit: {{ calls: {calls}, period: 1s, burst: {burst}, \
                 mode: reject, lease: {lease} }}\n    backend: {url}\n    backend_timeout: 1s\n    \
                 on_backend_error: deny\n"
            )
        })
        .concat()
}

/// Every call admitted: 10^9 per second is one admission per nanosecond (one per
/// microsecond in Redis, which counts in microseconds), far more than one round trip allows.
#[resilience::rate_limited(policy = "bench", calls = 1000000000, period = "1s")]
async fn limited(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
}

/// The same check on a three-node cluster (the policy's keys hash-tagged to one slot).
#[resilience::rate_limited(policy = "bench-cluster", calls = 1000000000, period = "1s")]
async fn cluster_limited(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
}

/// One hot shared quota, unleased.
#[resilience::rate_limited(policy = "bench-lease-off", calls = 1000000, period = "1s")]
async fn hot_off() -> Result<(), MyErr> {
    Ok(())
}

/// The same quota, leased.
#[resilience::rate_limited(policy = "bench-lease-auto", calls = 1000000, period = "1s")]
async fn hot_auto() -> Result<(), MyErr> {
    Ok(())
}

/// The cached value: serde, so the policy's Redis backend keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct City {
    id: u32,
    name: String,
}

/// Loads of `city` (its body's runs): one to prime the entry, then none.
static CITY_LOADS: AtomicU64 = AtomicU64::new(0);

#[resilience::cached(ttl = "1h", policy = "bench-cache")]
async fn city(id: u32) -> Result<City, MyErr> {
    CITY_LOADS.fetch_add(1, Ordering::Relaxed);
    Ok(City {
        id,
        name: "Reykjavik".to_string(),
    })
}

/// `city` again, its Redis cache behind a local tier (`local: { max_entries: 1000, ttl: 1h }`).
#[resilience::cached(ttl = "1h", policy = "bench-near")]
async fn near_city(id: u32) -> Result<City, MyErr> {
    CITY_LOADS.fetch_add(1, Ordering::Relaxed);
    Ok(City {
        id,
        name: "Reykjavik".to_string(),
    })
}

/// `city` once more, cached in memory only: what a local-tier hit is measured against.
#[resilience::cached(ttl = "1h")]
async fn memory_city(id: u32) -> Result<City, MyErr> {
    Ok(City {
        id,
        name: "Reykjavik".to_string(),
    })
}

/// The runtime's GCRA script itself, to measure what Redis spends in it apart from what the
/// runtime spends around it.
const GCRA: &str = include_str!("../resilience-core/src/redis/gcra.lua");

/// Results of the `resilience_*` cases that were not what the happy path gives.
static FAILED: AtomicU64 = AtomicU64::new(0);

fn count_failure<T, E>(result: Result<T, E>) {
    if result.is_err() {
        FAILED.fetch_add(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// The groups
// ---------------------------------------------------------------------------------------------

/// One call of each case, the connection cloned per call as a user holding a
/// `ConnectionManager` in a shared struct would (an `Arc` clone).
#[derive(Clone)]
struct Cases {
    connection: ConnectionManager,
    script: Arc<redis::Script>,
    entry: Arc<str>,
}

impl Cases {
    async fn floor_ping(&self) {
        let mut connection = self.connection.clone();
        let pong: redis::RedisResult<()> = redis::cmd("PING").query_async(&mut connection).await;
        count_failure(pong);
    }

    async fn raw_gcra_script(&self) {
        let mut connection = self.connection.clone();
        let answer: redis::RedisResult<(i64, i64, i64)> = self
            .script
            .key("bench:rl:raw")
            .arg(1)
            .arg(0)
            .arg(-1)
            .arg(0)
            .invoke_async(&mut connection)
            .await;
        count_failure(answer);
    }

    async fn resilience_rate_limited(&self) {
        count_failure(limited(black_box(42)).await);
    }

    async fn resilience_rate_limited_cluster(&self) {
        count_failure(cluster_limited(black_box(42)).await);
    }

    async fn floor_get(&self) {
        let mut connection = self.connection.clone();
        let bytes: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
            .arg(&*self.entry)
            .query_async(&mut connection)
            .await;
        count_failure(bytes.map(black_box));
    }

    async fn raw_get_decode(&self) {
        let mut connection = self.connection.clone();
        let bytes: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
            .arg(&*self.entry)
            .query_async(&mut connection)
            .await;
        let city = match bytes.as_ref().map(Option::as_deref) {
            Ok(Some([1, 0, json @ ..])) => serde_json::from_slice::<City>(json).ok(),
            _ => None,
        };
        count_failure(city.map(black_box).ok_or(()));
    }

    async fn resilience_cached(&self) {
        count_failure(city(black_box(7)).await.map(black_box));
    }

    async fn memory_cached(&self) {
        count_failure(memory_city(black_box(7)).await.map(black_box));
    }

    async fn local_tier_cached(&self) {
        count_failure(near_city(black_box(7)).await.map(black_box));
    }
}

fn rate_limit(c: &mut Criterion, rt: &tokio::runtime::Runtime, cases: &Cases) {
    let mut group = c.benchmark_group("redis_rate_limit");
    group.bench_function("floor_ping", |b| {
        b.to_async(rt).iter(|| cases.floor_ping());
    });
    group.bench_function("raw_gcra_script", |b| {
        b.to_async(rt).iter(|| cases.raw_gcra_script());
    });
    group.bench_function("resilience_rate_limited", |b| {
        b.to_async(rt).iter(|| cases.resilience_rate_limited());
    });
    group.bench_function("resilience_rate_limited_cluster", |b| {
        b.to_async(rt)
            .iter(|| cases.resilience_rate_limited_cluster());
    });
    group.finish();
}

/// How long the instances of a [`HotInstances::run`] check.
#[derive(Clone, Copy)]
enum Run {
    /// This many checks in all.
    Checks(u64),
    /// For this long.
    For(Duration),
}

/// One job of a hot instance: what to check, for how long, and the common start.
type HotJob = (fn() -> HotCall, Run, Arc<std::sync::Barrier>);

/// `HOT_INSTANCES` instances: threads with a runtime, so a Redis connection and a lease, of
/// their own, kept for the whole bench (a runtime per sample would leave a connection behind
/// each time).
struct HotInstances {
    jobs: Vec<std::sync::mpsc::Sender<HotJob>>,
    results: std::sync::mpsc::Receiver<(u64, u64)>,
}

impl HotInstances {
    fn start() -> Self {
        let (report, results) = std::sync::mpsc::channel();
        let jobs = (0..HOT_INSTANCES)
            .map(|_| {
                let (send, jobs) = std::sync::mpsc::channel::<HotJob>();
                let report = report.clone();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime");
                    for (check, run, start) in jobs {
                        let counts = rt.block_on(hot_instance(check, run, start));
                        if report.send(counts).is_err() {
                            return;
                        }
                    }
                });
                send
            })
            .collect();
        HotInstances { jobs, results }
    }

    /// Every instance checking `check` at once: the wall time from their common start to the
    /// last one's end, the checks made and the calls admitted.
    fn run(&self, check: fn() -> HotCall, run: Run) -> (Duration, u64, u64) {
        let start = Arc::new(std::sync::Barrier::new(HOT_INSTANCES + 1));
        for jobs in &self.jobs {
            jobs.send((check, run, Arc::clone(&start)))
                .expect("an instance");
        }
        start.wait();
        let began = Instant::now();
        let (mut checks, mut admitted) = (0, 0);
        for _ in 0..HOT_INSTANCES {
            let (made, let_through) = self.results.recv().expect("an instance");
            checks += made;
            admitted += let_through;
        }
        (began.elapsed(), checks, admitted)
    }
}

/// One instance's share of a run: its checks made and calls admitted.
async fn hot_instance(
    check: fn() -> HotCall,
    run: Run,
    start: Arc<std::sync::Barrier>,
) -> (u64, u64) {
    // Connected before the start: the first check of a runtime connects.
    let _ = check().await;
    start.wait();
    let (mut checks, mut admitted) = (0u64, 0u64);
    let deadline = match run {
        Run::For(duration) => Some(Instant::now() + duration),
        Run::Checks(_) => None,
    };
    loop {
        let more = match (run, deadline) {
            (Run::Checks(total), _) => checks < total / HOT_INSTANCES as u64,
            (_, Some(deadline)) => Instant::now() < deadline,
            _ => false,
        };
        if !more {
            return (checks, admitted);
        }
        checks += 1;
        if check().await.is_ok() {
            admitted += 1;
        }
    }
}

type HotCall = std::pin::Pin<Box<dyn Future<Output = Result<(), MyErr>>>>;

fn hot_off_call() -> HotCall {
    Box::pin(hot_off())
}

fn hot_auto_call() -> HotCall {
    Box::pin(hot_auto())
}

/// Deletes the hot policies' schedules, so that a sample starts with the whole burst.
fn reset_hot(rt: &tokio::runtime::Runtime, connection: &ConnectionManager) {
    let mut connection = connection.clone();
    let _: redis::RedisResult<()> = rt.block_on(
        redis::cmd("DEL")
            .arg("resilience:rl:{bench-lease-off}")
            .arg("resilience:rl:{bench-lease-auto}")
            .query_async(&mut connection),
    );
}

fn lease(c: &mut Criterion, rt: &tokio::runtime::Runtime, cases: &Cases, hot: &HotInstances) {
    let mut group = c.benchmark_group("redis_lease");
    for (name, check) in [
        ("lease_off", hot_off_call as fn() -> HotCall),
        ("lease_auto", hot_auto_call),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                reset_hot(rt, &cases.connection);
                let (elapsed, checks, admitted) = hot.run(check, Run::Checks(iters.max(4)));
                if admitted != checks {
                    FAILED.fetch_add(checks - admitted, Ordering::Relaxed);
                }
                // Per check asked for (the instances split them evenly).
                elapsed.mul_f64(iters as f64 / checks.max(1) as f64)
            });
        });
    }
    group.finish();
}

/// One second of each hot function against 200,000 per second with no burst: checks per
/// second, admissions, and the bound of `docs/redis.md` for them.
fn lease_bound(url: &str, rt: &tokio::runtime::Runtime, cases: &Cases, hot: &HotInstances) {
    const CALLS: u32 = 200_000;
    let cap = u64::from(resilience::rate_limit::Lease::Auto.cap(CALLS));
    let yaml = format!("policies:\n{}", hot_policies(url, CALLS, 0));
    if let Err(errors) = resilience::config::load_str(&yaml) {
        panic!("the bound policies are refused: {errors}");
    }
    let mut rows = Vec::new();
    eprintln!(
        "one hot quota of {CALLS}/s, no burst, from {HOT_INSTANCES} instances for 1 s \
         (bound: calls + (K + 1) x cap):"
    );
    for (name, check, cap) in [
        ("lease_off", hot_off_call as fn() -> HotCall, 1),
        ("lease_auto", hot_auto_call, cap),
    ] {
        reset_hot(rt, &cases.connection);
        let (elapsed, checks, admitted) = hot.run(check, Run::For(Duration::from_secs(1)));
        let bound = u64::from(CALLS) + (HOT_INSTANCES as u64 + 1) * cap;
        let per_second = checks as f64 / elapsed.as_secs_f64();
        eprintln!(
            "  {name:<10} {per_second:>10.0} checks/s, {admitted} admitted in {elapsed:.2?} \
             (bound {bound}{})",
            if admitted <= bound { "" } else { ": EXCEEDED" }
        );
        rows.push(format!(
            "\"{name}\": {{\"checks_per_second\": {per_second:.0}, \"admitted\": {admitted}, \
             \"seconds\": {:.3}, \"bound\": {bound}}}",
            elapsed.as_secs_f64()
        ));
        if admitted > bound {
            FAILED.fetch_add(1, Ordering::Relaxed);
        }
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = std::path::Path::new(&target).join("criterion/redis_lease.json");
    let _ = std::fs::write(&path, format!("{{{}}}\n", rows.join(", ")));
}

fn cache_hit(c: &mut Criterion, rt: &tokio::runtime::Runtime, cases: &Cases) {
    let mut group = c.benchmark_group("redis_cache_hit");
    group.bench_function("floor_get", |b| {
        b.to_async(rt).iter(|| cases.floor_get());
    });
    group.bench_function("raw_get_decode", |b| {
        b.to_async(rt).iter(|| cases.raw_get_decode());
    });
    group.bench_function("resilience_cached", |b| {
        b.to_async(rt).iter(|| cases.resilience_cached());
    });
    group.finish();
}

/// A hit of the local tier in front of a Redis cache beside a hit of the same function
/// cached in memory only: no round trip either way.
fn local_hit(c: &mut Criterion, rt: &tokio::runtime::Runtime, cases: &Cases) {
    let mut group = c.benchmark_group("redis_local_hit");
    group.bench_function("memory_cached", |b| {
        b.to_async(rt).iter(|| cases.memory_cached());
    });
    group.bench_function("local_tier_cached", |b| {
        b.to_async(rt).iter(|| cases.local_tier_cached());
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// The same ratios, measured in alternation
// ---------------------------------------------------------------------------------------------

/// Rounds of the alternated measurement, and calls of each side per round.
const ROUNDS: usize = 15;
const PER_ROUND: u32 = 1000;

/// The time of one call.
async fn timed(call: impl Future<Output = ()>) -> Duration {
    let start = Instant::now();
    call.await;
    start.elapsed()
}

/// A case against its floor, call for call: each round alternates them (floor first on even
/// calls, the case first on odd ones) and gives one ratio of their summed times. On a shared
/// virtual machine the round trip itself changes by a factor of three with the load (an idle
/// vCPU that halts takes longer to wake than a busy one), which moves criterion's cases,
/// measured one after the other, apart; alternated calls see the same round trip.
async fn alternated<F, C>(floor: impl Fn() -> F, case: impl Fn() -> C) -> Alternated
where
    F: Future<Output = ()>,
    C: Future<Output = ()>,
{
    // (floor in µs per call, ratio) of each round
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let (mut floor_time, mut case_time) = (Duration::ZERO, Duration::ZERO);
        for call in 0..PER_ROUND {
            if call % 2 == 0 {
                floor_time += timed(floor()).await;
                case_time += timed(case()).await;
            } else {
                case_time += timed(case()).await;
                floor_time += timed(floor()).await;
            }
        }
        rounds.push((
            floor_time.as_secs_f64() * 1e6 / f64::from(PER_ROUND),
            case_time.as_secs_f64() / floor_time.as_secs_f64(),
        ));
    }
    let mut ratios: Vec<f64> = rounds.iter().map(|&(_, ratio)| ratio).collect();
    let mut floors: Vec<f64> = rounds.iter().map(|&(floor, _)| floor).collect();
    ratios.sort_by(f64::total_cmp);
    floors.sort_by(f64::total_cmp);
    let fastest = rounds
        .iter()
        .copied()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or_default();
    Alternated {
        ratio: ratios[ROUNDS / 2],
        low: ratios[0],
        high: ratios[ROUNDS - 1],
        floor_us: floors[ROUNDS / 2],
        fastest_floor_us: fastest.0,
        ratio_at_fastest: fastest.1,
    }
}

/// What [`alternated`] found.
struct Alternated {
    /// The median ratio of the rounds, and the lowest and highest.
    ratio: f64,
    low: f64,
    high: f64,
    /// The median floor, µs per call.
    floor_us: f64,
    /// The round with the shortest round trip: its floor and its ratio.
    fastest_floor_us: f64,
    ratio_at_fastest: f64,
}

/// Measures every case against its floor in alternation, prints the ratios and writes them
/// to `target/criterion/redis_alternated.json` for `benches/table.sh redis`.
async fn alternated_ratios(cases: &Cases) {
    let pairs = [
        (
            "raw_gcra_script",
            "floor_ping",
            alternated(|| cases.floor_ping(), || cases.raw_gcra_script()).await,
        ),
        (
            "resilience_rate_limited",
            "floor_ping",
            alternated(|| cases.floor_ping(), || cases.resilience_rate_limited()).await,
        ),
        (
            "raw_get_decode",
            "floor_get",
            alternated(|| cases.floor_get(), || cases.raw_get_decode()).await,
        ),
        (
            "resilience_cached",
            "floor_get",
            alternated(|| cases.floor_get(), || cases.resilience_cached()).await,
        ),
    ];
    eprintln!(
        "in alternation ({ROUNDS} rounds of {PER_ROUND} calls each): median ratio [lowest, \
         highest], median floor; the round with the shortest round trip"
    );
    let mut json = Vec::new();
    for (case, floor, found) in pairs {
        let Alternated {
            ratio,
            low,
            high,
            floor_us,
            fastest_floor_us,
            ratio_at_fastest,
        } = found;
        eprintln!(
            "  {case:<24} / {floor:<10} {ratio:.3}x [{low:.3}x, {high:.3}x], {floor_us:.1} µs; \
             {ratio_at_fastest:.3}x at {fastest_floor_us:.1} µs"
        );
        json.push(format!(
            "\"{case}\": {{\"floor\": \"{floor}\", \"ratio\": {ratio}, \"low\": {low}, \
             \"high\": {high}, \"floor_us\": {floor_us}, \"fastest_floor_us\": \
             {fastest_floor_us}, \"ratio_at_fastest\": {ratio_at_fastest}}}"
        ));
    }
    // cargo runs a bench in its package's directory: the workspace's target is beside it.
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    let dir = std::path::Path::new(&target).join("criterion");
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            dir.join("redis_alternated.json"),
            format!("{{{}}}\n", json.join(", ")),
        )
    });
    if let Err(error) = written {
        eprintln!("could not write {}: {error}", dir.display());
    }
}

/// Redis's own time per command (`INFO commandstats`): resets the counters before the
/// measurement, and prints them after it, so that the server's share of each floor and case
/// shows (`EVALSHA` is the GCRA script; `GET` serves the three cache cases).
async fn server_time(connection: &ConnectionManager, print: bool) {
    let mut connection = connection.clone();
    if !print {
        let _: redis::RedisResult<()> = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut connection)
            .await;
        return;
    }
    let info: String = match redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
    {
        Ok(info) => info,
        Err(error) => {
            eprintln!("INFO commandstats failed: {error}");
            return;
        }
    };
    eprintln!("time inside redis-server per command (INFO commandstats):");
    for line in info.lines() {
        let Some((command, stats)) = line.split_once(':') else {
            continue;
        };
        let command = command.trim_start_matches("cmdstat_");
        if !["ping", "evalsha", "get"].contains(&command) {
            continue;
        }
        let per_call = stats
            .split(',')
            .find_map(|field| field.strip_prefix("usec_per_call="))
            .unwrap_or("?");
        eprintln!("  {command:<8} {per_call:>6} µs");
    }
}

// What `criterion_group!` + `criterion_main!` expand to, written out so the generated
// `pub fn` does not trip the workspace's `missing_docs` lint.
fn main() {
    let server = RedisServer::start();
    let cluster = redis_cluster::Cluster::start();
    let cluster_url = format!(
        "redis+cluster://{}",
        cluster
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    if let Err(errors) = resilience::config::load_str(&policies(&server.url(), &cluster_url)) {
        panic!("the bench policies are refused: {errors}");
    }
    let (connection, entry) = rt.block_on(async {
        let client = redis::Client::open(server.url()).expect("a valid Redis URL");
        let mut connection = ConnectionManager::new(client)
            .await
            .expect("a connection to the bench's redis-server");
        // Both paths go through Redis: the limiter's key and the primed entry are there.
        assert!(limited(1).await.is_ok(), "an admitted check through Redis");
        assert!(
            cluster_limited(1).await.is_ok(),
            "an admitted check through the cluster"
        );
        assert!(city(7).await.is_ok(), "the entry is primed");
        assert!(city(7).await.is_ok(), "and then a hit");
        // The local tier keeps a copy once its invalidation subscriber is subscribed.
        assert!(
            memory_city(7).await.is_ok(),
            "the in-memory entry is primed"
        );
        assert!(near_city(7).await.is_ok(), "the shared entry is primed");
        let deadline = Instant::now() + Duration::from_secs(5);
        while near_city_cache().is_empty() {
            assert!(
                Instant::now() < deadline,
                "the local tier never kept a copy"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert!(near_city(7).await.is_ok(), "a hit");
        }
        let limiter_keys: Vec<String> = redis::cmd("KEYS")
            .arg("resilience:rl:{bench}*")
            .query_async(&mut connection)
            .await
            .expect("KEYS is answered");
        assert_eq!(
            limiter_keys,
            ["resilience:rl:{bench}"],
            "the limiter lives in Redis"
        );
        let entries: Vec<String> = redis::cmd("KEYS")
            .arg("resilience:cache:{bench-cache}:*")
            .query_async(&mut connection)
            .await
            .expect("KEYS is answered");
        assert_eq!(entries.len(), 1, "one entry in Redis: {entries:?}");
        let bytes: Vec<u8> = redis::cmd("GET")
            .arg(&entries[0])
            .query_async(&mut connection)
            .await
            .expect("the entry is read");
        eprintln!(
            "redis-server on port {}; entry `{}`: {} bytes",
            server.port,
            entries[0],
            bytes.len()
        );
        (connection, entries[0].clone())
    });
    let cases = Cases {
        connection,
        script: Arc::new(redis::Script::new(GCRA)),
        entry: entry.into(),
    };
    // Criterion's own modes (`--list`, `--test`, `--profile-time`) skip the alternated run.
    let criterion_mode =
        std::env::args().any(|arg| matches!(arg.as_str(), "--list" | "--test" | "--profile-time"));
    let mut c = Criterion::default().configure_from_args();
    rt.block_on(server_time(&cases.connection, false));
    rate_limit(&mut c, &rt, &cases);
    cache_hit(&mut c, &rt, &cases);
    local_hit(&mut c, &rt, &cases);
    let hot = HotInstances::start();
    lease(&mut c, &rt, &cases, &hot);
    c.final_summary();
    if !criterion_mode {
        rt.block_on(server_time(&cases.connection, true));
        rt.block_on(alternated_ratios(&cases));
    }
    let failed = FAILED.load(Ordering::Relaxed);
    let loads = CITY_LOADS.load(Ordering::Relaxed);
    eprintln!(
        "calls that failed: {failed}; loads of the cached functions: {loads} (2: the priming)"
    );
    assert!(
        failed == 0 && loads == 2 && near_city_cache().len() == 1,
        "a round trip failed during the measurement: the figures include fallbacks"
    );
    if !criterion_mode {
        // Last: it installs policies of its own (and so drops the caches above).
        lease_bound(&server.url(), &rt, &cases, &hot);
        assert_eq!(
            FAILED.load(Ordering::Relaxed),
            0,
            "the bound of docs/redis.md was exceeded"
        );
    }
    drop(rt);
    drop(server);
}
