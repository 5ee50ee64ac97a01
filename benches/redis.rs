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
//! - `redis_cache_hit`: a hit on a primed entry (`{"id":7,"name":"Reykjavik"}`, 27 bytes of
//!   JSON, 29 with the format's two header bytes).
//!   - `floor_get`: `GET` of that very entry on a `ConnectionManager` (the floor);
//!   - `raw_get_decode`: the same `GET`, then the header check and `serde_json` decoding into
//!     the value type, by hand;
//!   - `resilience_cached`: `#[cached(ttl = "1h", policy = "bench-cache")]` on an `async fn`
//!     whose key and value are serde types.
//!
//! ```text
//! cargo bench -p resilience-benches --bench redis -- --warm-up-time 1 --measurement-time 3
//! benches/table.sh redis     # the same, then a markdown table of the ratios to the floors
//! ```

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use redis::aio::ConnectionManager;
use resilience::Rejected;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
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

/// The two policies: Redis backends, a failure refused (and counted) rather than hidden.
fn policies(url: &str) -> String {
    format!(
        "policies:\n  bench:\n    backend: {url}\n    backend_timeout: 1s\n    on_backend_error: deny\n  \
         bench-cache:\n    backend: {url}\n    backend_timeout: 1s\n    on_backend_error: deny\n"
    )
}

/// Every call admitted: 10^9 per second is one admission per nanosecond (one per
/// microsecond in Redis, which counts in microseconds), far more than one round trip allows.
#[resilience::rate_limited(policy = "bench", calls = 1000000000, period = "1s")]
async fn limited(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
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

/// The runtime's GCRA script (`resilience-core/src/redis/limiter.rs`), copied to measure what
/// Redis spends in it apart from what the runtime spends around it.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local pause = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if pause > 0 then
  if now + pause + tolerance > tat then tat = now + pause + tolerance end
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
  return {1, 0}
end
local wait = tat - now - tolerance
if wait < 0 then wait = 0 end
if max_wait >= 0 and wait > max_wait then return {0, wait} end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
return {1, wait}
";

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

fn rate_limit(c: &mut Criterion, rt: &tokio::runtime::Runtime, connection: &ConnectionManager) {
    let script = redis::Script::new(GCRA);
    let mut group = c.benchmark_group("redis_rate_limit");
    group.bench_function("floor_ping", |b| {
        b.to_async(rt).iter(|| {
            let mut connection = connection.clone();
            async move {
                let pong: redis::RedisResult<()> =
                    redis::cmd("PING").query_async(&mut connection).await;
                count_failure(pong);
            }
        });
    });
    group.bench_function("raw_gcra_script", |b| {
        b.to_async(rt).iter(|| {
            let mut connection = connection.clone();
            let script = &script;
            async move {
                let answer: redis::RedisResult<(i64, i64)> = script
                    .key("bench:rl:raw")
                    .arg(1)
                    .arg(0)
                    .arg(-1)
                    .arg(0)
                    .invoke_async(&mut connection)
                    .await;
                count_failure(answer);
            }
        });
    });
    group.bench_function("resilience_rate_limited", |b| {
        b.to_async(rt)
            .iter(|| async { count_failure(limited(black_box(42)).await) });
    });
    group.finish();
}

fn cache_hit(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    connection: &ConnectionManager,
    entry: &str,
) {
    let mut group = c.benchmark_group("redis_cache_hit");
    group.bench_function("floor_get", |b| {
        b.to_async(rt).iter(|| {
            let mut connection = connection.clone();
            async move {
                let bytes: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
                    .arg(entry)
                    .query_async(&mut connection)
                    .await;
                count_failure(bytes.map(black_box));
            }
        });
    });
    group.bench_function("raw_get_decode", |b| {
        b.to_async(rt).iter(|| {
            let mut connection = connection.clone();
            async move {
                let bytes: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
                    .arg(entry)
                    .query_async(&mut connection)
                    .await;
                let city = match bytes.as_ref().map(Option::as_deref) {
                    Ok(Some([1, 0, json @ ..])) => serde_json::from_slice::<City>(json).ok(),
                    _ => None,
                };
                count_failure(city.map(black_box).ok_or(()));
            }
        });
    });
    group.bench_function("resilience_cached", |b| {
        b.to_async(rt)
            .iter(|| async { count_failure(city(black_box(7)).await.map(black_box)) });
    });
    group.finish();
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    if let Err(errors) = resilience::config::load_str(&policies(&server.url())) {
        panic!("the bench policies are refused: {errors}");
    }
    let (connection, entry) = rt.block_on(async {
        let client = redis::Client::open(server.url()).expect("a valid Redis URL");
        let mut connection = ConnectionManager::new(client)
            .await
            .expect("a connection to the bench's redis-server");
        // Both paths go through Redis: the limiter's key and the primed entry are there.
        assert!(limited(1).await.is_ok(), "an admitted check through Redis");
        assert!(city(7).await.is_ok(), "the entry is primed");
        assert!(city(7).await.is_ok(), "and then a hit");
        let limiter_keys: Vec<String> = redis::cmd("KEYS")
            .arg("resilience:rl:bench*")
            .query_async(&mut connection)
            .await
            .expect("KEYS is answered");
        assert_eq!(
            limiter_keys,
            ["resilience:rl:bench"],
            "the limiter lives in Redis"
        );
        let entries: Vec<String> = redis::cmd("KEYS")
            .arg("resilience:cache:*")
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
    let mut c = Criterion::default().configure_from_args();
    rt.block_on(server_time(&connection, false));
    rate_limit(&mut c, &rt, &connection);
    cache_hit(&mut c, &rt, &connection, &entry);
    c.final_summary();
    rt.block_on(server_time(&connection, true));
    let failed = FAILED.load(Ordering::Relaxed);
    let loads = CITY_LOADS.load(Ordering::Relaxed);
    eprintln!(
        "calls that failed: {failed}; loads of the cached function: {loads} (1: the priming)"
    );
    assert!(
        failed == 0 && loads == 1,
        "a round trip failed during the measurement: the figures include fallbacks"
    );
    drop(rt);
    drop(server);
}
