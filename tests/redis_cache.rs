//! Caches kept in Redis (feature `redis`): one copy of each entry for every instance, TTL and
//! negative entries expiring in Redis, invalidation reaching Redis, the `enabled` switch, the
//! format's version byte, and one load per key across instances (two processes: this test
//! binary runs itself as the second instance). Against a real `redis-server` on 127.0.0.1.
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
    let ttl = redis.command("PTTL t:cache:redis_cache::city:[1]").unwrap();
    let ttl: i64 = ttl.trim_start_matches(':').trim().parse().unwrap();
    assert!(
        (1..=1000).contains(&ttl),
        "expires with the policy's ttl: {ttl}"
    );

    // Written by "another instance": served from Redis, not loaded.
    let mut frame = vec![1u8, 0u8];
    frame.extend_from_slice(br#"{"id":7,"name":"from another instance"}"#);
    redis
        .set_raw("t:cache:redis_cache::city:[7]", &frame)
        .unwrap();
    assert_eq!(city(7).await.unwrap().name, "from another instance");
    assert_eq!(loads(&redis, "loads:city"), 1);

    // Another format version is a miss, never misread.
    let mut future_format = vec![2u8, 0u8];
    future_format.extend_from_slice(br#"{"id":8,"name":"v2"}"#);
    redis
        .set_raw("t:cache:redis_cache::city:[8]", &future_format)
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
            .command("EXISTS t:cache:redis_cache::city:[1]")
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
        .command("GET t:cache:redis_cache::missing:[1]")
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
