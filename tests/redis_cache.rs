//! Caches kept in Redis (feature `redis`): one copy of each entry for every instance, TTL and
//! negative entries expiring in Redis, invalidation reaching Redis, the `enabled` switch, the
//! format's version byte, and one load per key across instances (two processes: this test
//! binary runs itself as the second instance), the load lock released on every ending and
//! renewed while its load runs, and faults (a frozen server, `CLIENT PAUSE`) each costing a
//! miss one `backend_timeout`. Against a real `redis-server` on 127.0.0.1; the latency bounds
//! leave 100 ms of margin over the expected time for scheduling on a busy machine.
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use redis_server::RedisServer;

use std::time::Duration;

use resilience::{Rejected, cached};
use serde::{Deserialize, Serialize};

/// Held by every test: installing policies replaces them all.
static POLICIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn install(yaml: &str) {
    resilience::config::load_str(yaml).unwrap_or_else(|errors| panic!("{errors}"));
}

fn policy(name: &str, redis: &RedisServer, cache: &str) -> String {
    format!(
        "policies:\n  {name}:\n    cache: {cache}\n    backend: {}\n    backend_timeout: 1s\n    key_prefix: \"t:\"\n",
        redis.url()
    )
}

/// Loads counted in Redis, so that two processes count together.
fn count_load(redis_port: u16, counter: &str) {
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", redis_port)).expect("Redis accepts");
    use std::io::{Read, Write};
    stream
        .write_all(format!("INCR {counter}\r\n").as_bytes())
        .expect("INCR is sent");
    let mut buffer = [0u8; 32];
    let _ = stream.read(&mut buffer).expect("INCR is answered");
}

fn loads(redis: &RedisServer, counter: &str) -> u64 {
    loads_at(redis.port(), counter)
}

fn loads_at(port: u16, counter: &str) -> u64 {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = stream.write_all(format!("GET {counter}\r\n").as_bytes());
    let mut buffer = [0u8; 64];
    let read = stream.read(&mut buffer).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buffer[..read]).into_owned();
    // `$1\r\n3\r\n` or `$-1` (never counted).
    answer
        .lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct City {
    id: u32,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum ApiError {
    NotFound,
    Refused(String),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Refused(rejected.to_string())
    }
}

static PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

fn port() -> u16 {
    PORT.load(std::sync::atomic::Ordering::SeqCst)
}

#[cached(ttl = "60s", policy = "redis-city")]
async fn city(id: u32) -> Result<City, ApiError> {
    count_load(port(), "loads:city");
    Ok(City {
        id,
        name: format!("city {id}"),
    })
}

#[tokio::test]
async fn entries_live_in_redis_with_their_ttl_and_are_shared() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    PORT.store(redis.port(), std::sync::atomic::Ordering::SeqCst);
    install(&policy("redis-city", &redis, "{ ttl: 1s }"));

    assert_eq!(city(1).await.unwrap().name, "city 1");
    assert_eq!(city(1).await.unwrap().name, "city 1");
    assert_eq!(
        loads(&redis, "loads:city"),
        1,
        "the second call was a Redis hit"
    );
    let ttl = redis
        .command("PTTL t:cache:{redis-city}:redis_cache::city:[1]")
        .unwrap();
    let ttl: i64 = ttl.trim_start_matches(':').trim().parse().unwrap();
    assert!(
        (1..=1000).contains(&ttl),
        "expires with the policy's ttl: {ttl}"
    );

    // Written by "another instance": served from Redis, not loaded.
    let mut frame = vec![1u8, 0u8];
    frame.extend_from_slice(br#"{"id":7,"name":"from another instance"}"#);
    redis
        .set_raw("t:cache:{redis-city}:redis_cache::city:[7]", &frame)
        .unwrap();
    assert_eq!(city(7).await.unwrap().name, "from another instance");
    assert_eq!(loads(&redis, "loads:city"), 1);

    // Another format version is a miss, never misread.
    let mut future_format = vec![9u8, 0u8];
    future_format.extend_from_slice(br#"{"id":8,"name":"v2"}"#);
    redis
        .set_raw("t:cache:{redis-city}:redis_cache::city:[8]", &future_format)
        .unwrap();
    assert_eq!(city(8).await.unwrap().name, "city 8");
    assert_eq!(loads(&redis, "loads:city"), 2);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(city(1).await.unwrap().name, "city 1");
    assert_eq!(
        loads(&redis, "loads:city"),
        3,
        "expired in Redis: loaded again"
    );

    // Invalidation reaches Redis.
    assert!(city_cache().invalidate_shared(&(1u32,)).await);
    assert_eq!(
        redis
            .command("EXISTS t:cache:{redis-city}:redis_cache::city:[1]")
            .unwrap()
            .trim(),
        ":0"
    );
    city(1).await.unwrap();
    assert_eq!(loads(&redis, "loads:city"), 4);
    city(2).await.unwrap();
    city_cache().invalidate_all_shared().await;
    assert!(redis.command("KEYS t:cache:*").unwrap().starts_with("*0"));

    // `enabled: false`: every call loads, nothing is written.
    install(&policy(
        "redis-city",
        &redis,
        "{ ttl: 60s, enabled: false }",
    ));
    city(3).await.unwrap();
    city(3).await.unwrap();
    assert_eq!(loads(&redis, "loads:city"), 7);
    assert!(redis.command("KEYS t:cache:*").unwrap().starts_with("*0"));
    install("policies: {}\n");
}

static MISSING: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[cached(ttl = "60s", negative_ttl = "1s", policy = "redis-negative")]
async fn missing(id: u32) -> Result<City, ApiError> {
    MISSING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let _ = id;
    Err(ApiError::NotFound)
}

#[tokio::test]
async fn failures_are_cached_in_redis_for_negative_ttl() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&policy(
        "redis-negative",
        &redis,
        "{ ttl: 60s, negative_ttl: 1s }",
    ));
    assert_eq!(missing(1).await, Err(ApiError::NotFound));
    assert_eq!(missing(1).await, Err(ApiError::NotFound));
    assert_eq!(MISSING.load(std::sync::atomic::Ordering::SeqCst), 1);
    let entry = redis
        .command("GET t:cache:{redis-negative}:redis_cache::missing:[1]")
        .unwrap();
    assert!(entry.contains("NotFound"), "{entry}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(missing(1).await, Err(ApiError::NotFound));
    assert_eq!(MISSING.load(std::sync::atomic::Ordering::SeqCst), 2);
    install("policies: {}\n");
}

#[cached(ttl = "60s", policy = "redis-hot")]
async fn hot(id: u32) -> Result<String, ApiError> {
    count_load(port(), "loads:hot");
    tokio::time::sleep(Duration::from_millis(400)).await;
    Ok(format!("hot {id}"))
}

/// 100 concurrent misses in each of two processes: one load in all.
async fn hundred_misses() -> usize {
    let calls: Vec<_> = (0..100).map(|_| tokio::spawn(hot(42))).collect();
    let mut served = 0;
    for call in calls {
        if call.await.expect("no panic").as_deref() == Ok("hot 42") {
            served += 1;
        }
    }
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_with_a_hundred_misses_each_load_once() {
    if let Ok(url) = std::env::var("RESILIENCE_TEST_INSTANCE_B") {
        // The second instance: this same test, run by the first one as a child process.
        let port: u16 = std::env::var("RESILIENCE_TEST_PORT")
            .unwrap()
            .parse()
            .unwrap();
        PORT.store(port, std::sync::atomic::Ordering::SeqCst);
        install(&format!(
            "policies:\n  redis-hot:\n    cache: {{ ttl: 60s }}\n    backend: {url}\n    backend_timeout: 1s\n    key_prefix: \"t:\"\n"
        ));
        // Start together with the first instance: it says `go` once this one is ready.
        count_load(port, "ready");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while loads_at(port, "go") == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(hundred_misses().await, 100);
        return;
    }
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    PORT.store(redis.port(), std::sync::atomic::Ordering::SeqCst);
    install(&policy("redis-hot", &redis, "{ ttl: 60s }"));
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "two_instances_with_a_hundred_misses_each_load_once",
            "--test-threads",
            "1",
        ])
        .env("RESILIENCE_TEST_INSTANCE_B", redis.url())
        .env("RESILIENCE_TEST_PORT", redis.port().to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = tokio::task::spawn_blocking(move || child.wait_with_output());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while loads(&redis, "ready") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the second instance never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    count_load(redis.port(), "go");
    // Both instances miss within milliseconds of each other; the load takes 400 ms.
    assert_eq!(hundred_misses().await, 100);
    let output = child.await.unwrap().unwrap();
    assert!(output.status.success(), "the second instance failed");
    assert_eq!(
        loads(&redis, "loads:hot"),
        1,
        "one load for 200 misses in two processes"
    );
    install("policies: {}\n");
}

static FROZEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[cached(ttl = "60s", policy = "redis-frozen")]
async fn frozen(id: u32) -> Result<String, ApiError> {
    FROZEN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Ok(format!("frozen {id}"))
}

/// Redis frozen (`SIGSTOP`) when a miss comes: the miss pays one `backend_timeout` (200 ms)
/// before it falls back (`allow`: the function runs uncached), not one per round trip.
#[tokio::test]
async fn a_miss_on_a_frozen_redis_costs_one_backend_timeout() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&format!(
        "policies:\n  redis-frozen:\n    cache: {{ ttl: 60s }}\n    backend: {}\n    backend_timeout: 200ms\n    key_prefix: \"t:\"\n",
        redis.url()
    ));
    // Connected and warm: the freeze, not the first connection, is what is measured.
    assert_eq!(frozen(1).await.unwrap(), "frozen 1");
    redis.freeze();
    let start = std::time::Instant::now();
    let result = frozen(2).await;
    let elapsed = start.elapsed();
    redis.thaw();
    assert_eq!(result.unwrap(), "frozen 2", "allow: loaded uncached");
    eprintln!("a miss on a frozen Redis took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(300),
        "one backend_timeout (200 ms) and a 100 ms margin for the load and scheduling: {elapsed:?}"
    );
    install("policies: {}\n");
}

/// Whether the lock of `entry` is in Redis (`EXISTS`).
fn locked(redis: &RedisServer, entry: &str) -> bool {
    redis
        .command(&format!("EXISTS {entry}:lock"))
        .unwrap_or_default()
        .trim()
        == ":1"
}

/// Waits (20 ms polls, at most 1 s) for the lock of `entry` to go: a cancelled or panicking
/// load releases it from a spawned task. Returns how long that took.
async fn released(redis: &RedisServer, entry: &str) -> Duration {
    let start = std::time::Instant::now();
    for _ in 0..50 {
        if !locked(redis, entry) {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the lock of {entry} was not released within 1 s");
}

/// A miss whose load runs at once: its latency is a few round trips on loopback, where a
/// leftover lock made it poll until the lock expired (5,019 ms measured).
const AT_ONCE: Duration = Duration::from_millis(150);

static FAILING: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[cached(ttl = "60s", policy = "redis-failing")]
async fn failing(id: u32) -> Result<City, ApiError> {
    let _ = id;
    FAILING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Err(ApiError::NotFound)
}

/// An `Err` without `negative_ttl` is not stored, and its load releases the lock: the next
/// caller (of any instance) takes it and loads at once.
#[tokio::test]
async fn a_failed_load_that_is_not_stored_releases_the_lock() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&policy("redis-failing", &redis, "{ ttl: 60s }"));
    let entry = "t:cache:{redis-failing}:redis_cache::failing:[1]";
    assert_eq!(failing(1).await, Err(ApiError::NotFound));
    assert!(!locked(&redis, entry), "released with the result");
    assert_eq!(
        redis.command(&format!("EXISTS {entry}")).unwrap().trim(),
        ":0",
        "and nothing stored"
    );
    let start = std::time::Instant::now();
    assert_eq!(failing(1).await, Err(ApiError::NotFound));
    let elapsed = start.elapsed();
    eprintln!("the next caller after a failed load took {elapsed:?}");
    assert!(elapsed < AT_ONCE, "loaded at once: {elapsed:?}");
    assert_eq!(FAILING.load(std::sync::atomic::Ordering::SeqCst), 2);
    install("policies: {}\n");
}

/// Starts 10 callers of one key at once and checks each one's result; how long until the last
/// was done.
async fn ten_callers<R, Fut>(call: fn() -> Fut, check: fn(R)) -> Duration
where
    R: Send + 'static,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let start = std::time::Instant::now();
    let callers: Vec<_> = (0..10).map(|_| tokio::spawn(call())).collect();
    for caller in callers {
        check(caller.await.expect("a caller panicked"));
    }
    start.elapsed()
}

static OUTAGE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[cached(ttl = "60s", policy = "redis-outage")]
async fn outage(id: u32) -> Result<City, ApiError> {
    let _ = id;
    OUTAGE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Err(ApiError::NotFound)
}

/// The outage over a Redis cache: 10 callers of one key in this process, a backend failing
/// after 300 ms. The error is `Clone`, so the one load's error reaches every caller: one load,
/// all done at about 300 ms (not 10 loads one after another).
#[tokio::test]
async fn a_failed_load_is_handed_to_every_waiter_of_this_instance() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&policy("redis-outage", &redis, "{ ttl: 60s }"));
    let elapsed = ten_callers(
        || outage(1),
        |result| assert_eq!(result, Err(ApiError::NotFound)),
    )
    .await;
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(300) + AT_ONCE,
        "all done with the one load: {elapsed:?}"
    );
    assert_eq!(OUTAGE.load(std::sync::atomic::Ordering::SeqCst), 1);
    install("policies: {}\n");
}

static OUTAGE_IO: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[cached(ttl = "60s", policy = "redis-outage-io")]
async fn outage_io(id: u32) -> Result<City, std::io::Error> {
    let _ = id;
    OUTAGE_IO.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Err(std::io::Error::other("down"))
}

/// The outage with an error that is not `Clone`: the waiters load at once when the leader's
/// load fails, past the Redis lock (not one after another through it): all done at about
/// 600 ms.
#[tokio::test]
async fn a_failure_that_is_not_clone_has_the_waiters_load_at_once_past_the_lock() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&policy("redis-outage-io", &redis, "{ ttl: 60s }"));
    let elapsed = ten_callers(|| outage_io(1), |result| assert!(result.is_err())).await;
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_millis(600) + AT_ONCE,
        "two load times: {elapsed:?}"
    );
    assert_eq!(OUTAGE_IO.load(std::sync::atomic::Ordering::SeqCst), 10);
    install("policies: {}\n");
}

static STALLING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

#[cached(ttl = "60s", policy = "redis-cancelled")]
async fn stalling(id: u32) -> Result<String, ApiError> {
    if STALLING.load(std::sync::atomic::Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    Ok(format!("loaded {id}"))
}

/// A caller cancelled mid-load (its future dropped, as a `#[timeout]` does) releases the lock.
#[tokio::test]
async fn a_cancelled_load_releases_the_lock() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&policy("redis-cancelled", &redis, "{ ttl: 60s }"));
    let entry = "t:cache:{redis-cancelled}:redis_cache::stalling:[1]";
    assert!(
        tokio::time::timeout(Duration::from_millis(100), stalling(1))
            .await
            .is_err()
    );
    let release = released(&redis, entry).await;
    eprintln!("a cancelled load's lock was gone {release:?} after the cancel");
    STALLING.store(false, std::sync::atomic::Ordering::SeqCst);
    let start = std::time::Instant::now();
    assert_eq!(stalling(1).await.unwrap(), "loaded 1");
    let elapsed = start.elapsed();
    eprintln!("the next caller after a cancelled load took {elapsed:?}");
    assert!(elapsed < AT_ONCE, "loaded at once: {elapsed:?}");
    install("policies: {}\n");
}

static PANICKING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

#[cached(ttl = "60s", policy = "redis-panicking")]
async fn panicking(id: u32) -> Result<String, ApiError> {
    tokio::task::yield_now().await;
    if PANICKING.load(std::sync::atomic::Ordering::SeqCst) {
        panic!("the load panicked");
    }
    Ok(format!("loaded {id}"))
}

/// A load that panics releases the lock as its future unwinds.
#[tokio::test]
async fn a_panicking_load_releases_the_lock() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&policy("redis-panicking", &redis, "{ ttl: 60s }"));
    let entry = "t:cache:{redis-panicking}:redis_cache::panicking:[1]";
    let outcome = tokio::spawn(panicking(1)).await;
    assert!(outcome.unwrap_err().is_panic());
    let release = released(&redis, entry).await;
    eprintln!("a panicking load's lock was gone {release:?} after the panic");
    PANICKING.store(false, std::sync::atomic::Ordering::SeqCst);
    let start = std::time::Instant::now();
    assert_eq!(panicking(1).await.unwrap(), "loaded 1");
    let elapsed = start.elapsed();
    eprintln!("the next caller after a panicking load took {elapsed:?}");
    assert!(elapsed < AT_ONCE, "loaded at once: {elapsed:?}");
    install("policies: {}\n");
}

static SLOW: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[cached(ttl = "60s", policy = "redis-slow")]
async fn slow(id: u32) -> Result<String, ApiError> {
    SLOW.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    Ok(format!("slow {id}"))
}

/// The lock lives as long as its load: a load of 1 s under a lease of 300 ms
/// (`backend_timeout: 100ms`) keeps it by renewing, and a lock left by a holder that stopped
/// renewing (a crashed instance, written here by hand) holds a caller back for what is left
/// of its lease, not more.
#[tokio::test]
async fn the_lock_lives_as_long_as_its_load_and_a_dead_holder_s_lease_bounds_the_wait() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&format!(
        "policies:\n  redis-slow:\n    cache: {{ ttl: 60s }}\n    backend: {}\n    backend_timeout: 100ms\n    key_prefix: \"t:\"\n",
        redis.url()
    ));
    let entry = "t:cache:{redis-slow}:redis_cache::slow:[1]";
    let load = tokio::spawn(slow(1));
    // Three lease lengths into the load, the lock is still there (renewed), and it is the
    // load's own: its lifetime is at most one lease.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(locked(&redis, entry), "renewed while the load runs");
    let ttl = redis.command(&format!("PTTL {entry}:lock")).unwrap();
    let ttl: i64 = ttl.trim().trim_start_matches(':').parse().unwrap();
    assert!((1..=300).contains(&ttl), "a lease of 300 ms: {ttl}");
    assert_eq!(load.await.unwrap().unwrap(), "slow 1");
    assert!(!locked(&redis, entry), "released with the stored value");

    // Another instance's lock, 300 ms from its end, never renewed: this one waits for it to
    // lapse, then loads.
    assert!(
        redis
            .command(&format!(
                "SET {entry_2}:lock someone-else PX 300",
                entry_2 = "t:cache:{redis-slow}:redis_cache::slow:[2]"
            ))
            .unwrap()
            .starts_with("+OK")
    );
    let start = std::time::Instant::now();
    assert_eq!(slow(2).await.unwrap(), "slow 2");
    let waited = start.elapsed() - Duration::from_millis(1000);
    eprintln!("a dead holder's lock held the next caller {waited:?}");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(450),
        "what was left of the lease (300 ms), then the load: {waited:?}"
    );
    assert_eq!(SLOW.load(std::sync::atomic::Ordering::SeqCst), 2);
    install("policies: {}\n");
}

static FREEZING: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static LOADED_AT: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

#[cached(ttl = "60s", policy = "redis-freezing")]
async fn freezing(id: u32) -> Result<String, ApiError> {
    // Redis freezes while the load runs (the server's PID, set by the test).
    let pid = FREEZING.swap(0, std::sync::atomic::Ordering::SeqCst);
    if pid != 0 {
        redis_server::signal_pid(pid, "-STOP");
    }
    *LOADED_AT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
    Ok(format!("freezing {id}"))
}

/// Redis freezes during a miss's load: storing the value (and releasing the lock) costs one
/// `backend_timeout` (200 ms), not one per round trip.
#[tokio::test]
async fn a_redis_that_freezes_during_a_load_costs_one_backend_timeout() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&format!(
        "policies:\n  redis-freezing:\n    cache: {{ ttl: 60s }}\n    backend: {}\n    backend_timeout: 200ms\n    key_prefix: \"t:\"\n",
        redis.url()
    ));
    assert_eq!(freezing(1).await.unwrap(), "freezing 1");
    FREEZING.store(redis.pid(), std::sync::atomic::Ordering::SeqCst);
    let result = freezing(2).await;
    let after_load = LOADED_AT.lock().unwrap().take().unwrap().elapsed();
    redis.thaw();
    assert_eq!(result.unwrap(), "freezing 2");
    eprintln!("a freeze during the load added {after_load:?}");
    assert!(
        after_load >= Duration::from_millis(200) && after_load < Duration::from_millis(300),
        "one backend_timeout (200 ms) and a 100 ms margin: {after_load:?}"
    );
    install("policies: {}\n");
}

static PAUSED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[cached(ttl = "60s", policy = "redis-paused")]
async fn paused(id: u32) -> Result<String, ApiError> {
    PAUSED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Ok(format!("paused {id}"))
}

/// `CLIENT PAUSE ... WRITE`: reads are answered, writes (the lock) wait. A miss's `GET` and
/// lock share one `backend_timeout` (200 ms), then `allow` loads uncached; once the pause
/// ends the entry is loaded and stored again, once.
#[tokio::test]
async fn a_write_pause_costs_a_miss_one_backend_timeout() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&format!(
        "policies:\n  redis-paused:\n    cache: {{ ttl: 60s }}\n    backend: {}\n    backend_timeout: 200ms\n    key_prefix: \"t:\"\n",
        redis.url()
    ));
    assert_eq!(paused(1).await.unwrap(), "paused 1");
    assert!(
        redis
            .command("CLIENT PAUSE 1000 WRITE")
            .unwrap()
            .starts_with("+OK")
    );
    let start = std::time::Instant::now();
    assert_eq!(paused(2).await.unwrap(), "paused 2");
    let elapsed = start.elapsed();
    eprintln!("a miss under CLIENT PAUSE WRITE took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(300),
        "one backend_timeout (200 ms) and a 100 ms margin: {elapsed:?}"
    );
    assert!(redis.command("CLIENT UNPAUSE").unwrap().starts_with("+OK"));
    // A hit on the entry stored before the pause, and the paused miss stored once now.
    assert_eq!(paused(1).await.unwrap(), "paused 1");
    assert_eq!(paused(2).await.unwrap(), "paused 2");
    assert_eq!(paused(2).await.unwrap(), "paused 2");
    assert_eq!(PAUSED.load(std::sync::atomic::Ordering::SeqCst), 3);
    install("policies: {}\n");
}

static KILLED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[cached(ttl = "60s", policy = "redis-killed")]
async fn killed(id: u32) -> Result<String, ApiError> {
    KILLED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Ok(format!("killed {id}"))
}

/// Redis killed mid-run: each miss falls back (`allow`: loaded uncached) within one
/// `backend_timeout` (200 ms), and once restarted (and the one-second skip over) Redis keeps
/// the entries again.
#[tokio::test]
async fn a_killed_redis_falls_back_within_the_bound_and_a_restarted_one_is_used_again() {
    let _policies = POLICIES.lock().await;
    let mut redis = RedisServer::start();
    install(&format!(
        "policies:\n  redis-killed:\n    cache: {{ ttl: 60s }}\n    backend: {}\n    backend_timeout: 200ms\n    key_prefix: \"t:\"\n",
        redis.url()
    ));
    assert_eq!(killed(1).await.unwrap(), "killed 1");
    redis.kill();
    for _ in 0..4 {
        let start = std::time::Instant::now();
        assert_eq!(killed(2).await.unwrap(), "killed 2");
        assert!(
            start.elapsed() < Duration::from_millis(300),
            "one backend_timeout at most: {:?}",
            start.elapsed()
        );
    }
    assert_eq!(
        KILLED.load(std::sync::atomic::Ordering::SeqCst),
        5,
        "uncached"
    );
    redis.resume();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(killed(3).await.unwrap(), "killed 3");
    assert_eq!(killed(3).await.unwrap(), "killed 3");
    assert_eq!(
        KILLED.load(std::sync::atomic::Ordering::SeqCst),
        6,
        "stored in Redis again"
    );
    install("policies: {}\n");
}

static REFRESHES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static REFRESH_STARTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

#[cached(ttl = "60s", policy = "redis-swr")]
async fn refreshed(id: u32) -> Result<String, ApiError> {
    let version = REFRESHES.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    if version > 1 {
        REFRESH_STARTED.notify_one();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(format!("v{version} of {id}"))
}

/// `stale_while_revalidate` on a Redis cache: an entry past its ttl is served to everyone at
/// once while one caller refreshes it, and not refreshed here while another instance holds
/// its lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_redis_entry_is_served_while_one_caller_refreshes_it() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&policy(
        "redis-swr",
        &redis,
        "{ ttl: 200ms, stale_while_revalidate: 10s }",
    ));
    assert_eq!(refreshed(1).await.unwrap(), "v1 of 1");
    let entry = "t:cache:{redis-swr}:redis_cache::refreshed:[1]";
    let ttl: i64 = redis
        .command(&format!("PTTL {entry}"))
        .unwrap()
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(
        (10_000..=10_200).contains(&ttl),
        "lives ttl + the window: {ttl}"
    );
    assert_eq!(refreshed(1).await.unwrap(), "v1 of 1", "fresh: no load");
    tokio::time::sleep(Duration::from_millis(250)).await;

    // Another instance holds the refresh: served stale, nothing loaded here.
    redis
        .command(&format!("SET {entry}:lock other PX 5000"))
        .unwrap();
    assert_eq!(refreshed(1).await.unwrap(), "v1 of 1");
    assert_eq!(REFRESHES.load(std::sync::atomic::Ordering::SeqCst), 1);
    redis.command(&format!("DEL {entry}:lock")).unwrap();

    // Here: the first caller refreshes (300 ms), the others are served stale at once (had
    // they waited for the refresh, they would have its value).
    let refresher = tokio::spawn(refreshed(1));
    REFRESH_STARTED.notified().await;
    for _ in 0..10 {
        assert_eq!(refreshed(1).await.unwrap(), "v1 of 1");
    }
    assert_eq!(refresher.await.unwrap().unwrap(), "v2 of 1");
    assert_eq!(refreshed(1).await.unwrap(), "v2 of 1", "fresh again");
    assert_eq!(REFRESHES.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        refreshed_cache().counts().stale,
        12,
        "found stale: with the lock held elsewhere, by the refresher, by ten during the refresh"
    );
    install("policies: {}\n");
}
