//! Rate limits kept in Redis (feature `redis`): one quota across instances (threads, and two
//! processes for a keyed limit: this test binary runs itself as the second), keyed limits, the
//! script surviving `SCRIPT FLUSH`, and what an outage does under `on_backend_error`. Against
//! a real `redis-server` on 127.0.0.1; real time (Redis keeps its own clock), so the asserts
//! are on counts, with time only as a generous bound.
#![cfg(feature = "redis")]

mod common;
#[path = "support/redis_server.rs"]
mod redis_server;

use common::ApiError;
use redis_server::{RedisServer, counter_at, redis_at};

use std::time::{Duration, Instant};

use resilience::rate_limit::stable_hash;
use resilience::{Rejected, rate_limited};

/// Held by every test: installing policies replaces them all.
static POLICIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn install(yaml: &str) {
    resilience::config::load_str(yaml).unwrap_or_else(|errors| panic!("{errors}"));
}

#[rate_limited(policy = "redis-shared", calls = 1000, period = "1s", mode = "reject")]
async fn instance_a() -> Result<(), ApiError> {
    Ok(())
}

#[rate_limited(policy = "redis-shared", calls = 1000, period = "1s", mode = "reject")]
async fn instance_b() -> Result<(), ApiError> {
    Ok(())
}

fn admitted(results: &[Result<(), ApiError>]) -> usize {
    results.iter().filter(|result| result.is_ok()).count()
}

/// One "instance": 20 calls of `call` on a runtime of its own, in a thread of its own, kept
/// alive until every instance is done.
fn instance<F>(
    call: fn() -> F,
    done: std::sync::Arc<std::sync::Barrier>,
) -> std::thread::JoinHandle<Vec<Result<(), ApiError>>>
where
    F: std::future::Future<Output = Result<(), ApiError>> + 'static,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let results = runtime.block_on(async {
            let mut results = Vec::new();
            for _ in 0..20 {
                results.push(call().await);
            }
            results
        });
        done.wait();
        results
    })
}

/// Two "instances" (two sites, each on a runtime of its own, in its own thread) share one
/// quota through Redis: 10 per second with a burst of 9, so 10 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_never_admit_more_than_the_quota_together() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&format!(
        "policies:\n  redis-shared:\n    rate_limit: {{ calls: 10, period: 10s, burst: 9, mode: reject }}\n    backend: {}\n    backend_timeout: 1s\n",
        redis.url()
    ));
    let start = Instant::now();
    // Both runtimes live until both instances are done (as two processes would).
    let done = std::sync::Arc::new(std::sync::Barrier::new(2));
    let a = instance(instance_a, std::sync::Arc::clone(&done));
    let b = instance(instance_b, done);
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "one interval is 1 s"
    );
    assert_eq!(admitted(&a) + admitted(&b), 10, "the burst of 10, shared");
    // The sites name one policy, so they share an in-memory limiter too: the schedule must be
    // Redis's for this test to say anything.
    assert_eq!(
        redis
            .command("EXISTS resilience:rl:{redis-shared}")
            .unwrap()
            .trim(),
        ":1"
    );
    // However the two interleave (one may take the whole burst before the other starts),
    // the second instance is refused what the first spent: one quota.
    let refused = a.iter().chain(&b).find(|result| result.is_err()).unwrap();
    assert!(matches!(
        refused,
        Err(ApiError::Rejected(Rejected::RateLimited { retry_after })) if *retry_after > Duration::from_millis(900)
    ));
    install("policies: {}\n");
}

#[rate_limited(policy = "redis-keyed", calls = 1000, period = "1s", mode = "reject", key = tenant)]
async fn keyed(tenant: &str) -> Result<(), ApiError> {
    let _ = tenant;
    Ok(())
}

#[tokio::test]
async fn each_key_value_has_its_own_quota_and_key_in_redis() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&format!(
        "policies:\n  redis-keyed:\n    rate_limit: {{ calls: 1, period: 10s, mode: reject }}\n    backend: {}\n    backend_timeout: 1s\n    key_prefix: \"test:\"\n",
        redis.url()
    ));
    assert!(keyed("a").await.is_ok());
    assert!(keyed("a").await.is_err());
    assert!(keyed("b").await.is_ok(), "another key value, another quota");
    let keys = redis.command("KEYS test:rl:{redis-keyed}:*").unwrap();
    assert!(keys.starts_with("*2"), "two keys, one per value: {keys}");
    // Named by the stable hash of the value (FNV-1a), the same in every process.
    for value in ["a", "b"] {
        let key = format!("test:rl:{{redis-keyed}}:{:016x}", stable_hash(value));
        assert_eq!(
            redis.command(&format!("EXISTS {key}")).unwrap().trim(),
            ":1"
        );
    }
    let ttl = redis
        .command("PTTL test:rl:{redis-keyed}")
        .unwrap_or_default();
    assert!(ttl.starts_with(":-2"), "no unkeyed key: {ttl}");
    install("policies: {}\n");
}

#[rate_limited(policy = "redis-flush", calls = 1000, period = "1s", mode = "reject")]
async fn flushed() -> Result<(), ApiError> {
    Ok(())
}

#[tokio::test]
async fn the_script_survives_script_flush() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&format!(
        "policies:\n  redis-flush:\n    rate_limit: {{ calls: 2, period: 10s, burst: 1, mode: reject }}\n    backend: {}\n    backend_timeout: 1s\n",
        redis.url()
    ));
    assert!(flushed().await.is_ok());
    assert!(redis.command("SCRIPT FLUSH").unwrap().starts_with("+OK"));
    assert!(flushed().await.is_ok(), "reloaded after NOSCRIPT");
    assert!(flushed().await.is_err(), "and the schedule was kept");
    assert_eq!(
        redis
            .command("EXISTS resilience:rl:{redis-flush}")
            .unwrap()
            .trim(),
        ":1",
        "the schedule is Redis's"
    );
    install("policies: {}\n");
}

#[rate_limited(policy = "redis-outage", calls = 1000, period = "1s", mode = "reject")]
async fn during_outage() -> Result<(), ApiError> {
    Ok(())
}

/// Redis killed mid-run: each call costs at most `backend_timeout`, then `on_backend_error`
/// decides; after three failures Redis is skipped (no timeout at all) and, once back, used
/// again.
#[tokio::test]
async fn an_outage_falls_back_within_the_bound_and_redis_is_used_again() {
    let _policies = POLICIES.lock().await;
    let mut redis = RedisServer::start();
    let url = redis.url();
    let yaml = |on_error: &str| {
        format!(
            "policies:\n  redis-outage:\n    rate_limit: {{ calls: 1, period: 10s, mode: reject }}\n    backend: {url}\n    backend_timeout: 200ms\n    on_backend_error: {on_error}\n",
        )
    };
    install(&yaml("allow"));
    assert!(during_outage().await.is_ok());
    assert!(during_outage().await.is_err(), "Redis keeps the quota");

    redis.kill();
    for _ in 0..5 {
        let start = Instant::now();
        assert!(
            during_outage().await.is_ok(),
            "allow: the call goes through"
        );
        assert!(
            start.elapsed() < Duration::from_millis(400),
            "bounded by backend_timeout"
        );
    }

    install(&yaml("deny"));
    assert!(matches!(
        during_outage().await,
        Err(ApiError::Rejected(Rejected::RateLimited { .. }))
    ));

    install(&yaml("local"));
    // In memory: one per 10 s for this process.
    let local: Vec<_> = [during_outage().await, during_outage().await].into();
    assert_eq!(admitted(&local), 1, "local: the in-memory limiter decides");

    redis.resume();
    install(&yaml("allow"));
    // The skip lasts 1 s after the third failure in a row; then Redis is tried again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(during_outage().await.is_ok(), "Redis is back, and empty");
    assert!(during_outage().await.is_err(), "and keeps the quota again");
    install("policies: {}\n");
}

#[rate_limited(policy = "redis-weighted", calls = 1000, period = "1s", mode = "reject", cost = tokens)]
async fn weighted(tokens: u32) -> Result<(), ApiError> {
    let _ = tokens;
    Ok(())
}

/// A call's cost is taken in Redis in one step: 4 permits of 1 s each hold the next call of any
/// cost about 4 s; a cost above `calls + burst` is refused before any round trip.
#[tokio::test]
async fn a_weighted_call_takes_its_permits_in_redis_at_once() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&format!(
        "policies:\n  redis-weighted:\n    rate_limit: {{ calls: 10, period: 10s, mode: reject }}\n    backend: {}\n    backend_timeout: 1s\n",
        redis.url()
    ));
    assert!(weighted(4).await.is_ok());
    match weighted(1).await {
        Err(ApiError::Rejected(Rejected::RateLimited { retry_after })) => {
            assert!(
                retry_after > Duration::from_millis(3_900),
                "{retry_after:?}"
            );
            assert!(retry_after <= Duration::from_secs(4), "{retry_after:?}");
        }
        other => panic!("expected a rate-limit refusal, got {other:?}"),
    }
    // The schedule is Redis's: its TAT is 4 s ahead (and expires a second after that).
    let ttl = redis
        .command("PTTL resilience:rl:{redis-weighted}")
        .unwrap();
    let ttl: u64 = ttl.trim().trim_start_matches(':').parse().unwrap();
    assert!((4_000..=5_000).contains(&ttl), "{ttl}");
    assert_eq!(
        weighted(11).await,
        Err(ApiError::Rejected(Rejected::CostTooHigh {
            cost: 11,
            capacity: 10,
            period: Duration::from_secs(10),
        }))
    );
    // Nothing to take: at once, without asking Redis.
    assert!(weighted(0).await.is_ok());
    install("policies: {}\n");
}

#[rate_limited(policy = "redis-org", calls = 1000, period = "1s", mode = "reject", key = org)]
async fn per_org(org: &str) -> Result<(), ApiError> {
    let _ = org;
    Ok(())
}

fn org_policy(url: &str) -> String {
    // 10 at once (a burst of 9), then one per 10 s: the test runs within one interval.
    format!(
        "policies:\n  redis-org:\n    rate_limit: {{ calls: 10, period: 100s, burst: 9, mode: reject }}\n    backend: {url}\n    backend_timeout: 1s\n    key_prefix: \"test:\"\n"
    )
}

/// Ten calls for the key value `org`: how many were admitted.
async fn ten_for_org() -> u64 {
    let mut admitted = 0;
    for _ in 0..10 {
        if per_org("org").await.is_ok() {
            admitted += 1;
        }
    }
    admitted
}

/// Two processes (this test binary runs itself as the second) admit calls for one key value
/// of a keyed limiter in Redis: one quota between them, 10, not 10 in each. The Redis key was
/// named by an in-process hash with a random seed, so each process kept its own (10 + 10).
#[tokio::test]
async fn two_processes_share_the_quota_of_one_key_value() {
    if let Ok(port) = std::env::var("RESILIENCE_TEST_ORG_PORT") {
        // The second process: this same test, run by the first one.
        let port: u16 = port.parse().unwrap();
        install(&org_policy(&format!("redis://127.0.0.1:{port}/0")));
        redis_at(port, "INCR ready");
        let deadline = Instant::now() + Duration::from_secs(10);
        while counter_at(port, "go") == 0 {
            assert!(Instant::now() < deadline, "the first process never said go");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let admitted = ten_for_org().await;
        redis_at(port, &format!("INCRBY admitted:b {admitted}"));
        return;
    }
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&org_policy(&redis.url()));
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "two_processes_share_the_quota_of_one_key_value",
            "--test-threads",
            "1",
        ])
        .env("RESILIENCE_TEST_ORG_PORT", redis.port().to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = tokio::task::spawn_blocking(move || child.wait_with_output());
    let deadline = Instant::now() + Duration::from_secs(20);
    while counter_at(redis.port(), "ready") == 0 {
        assert!(
            Instant::now() < deadline,
            "the second process never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    redis.command("SET go 1").unwrap();
    let here = ten_for_org().await;
    let output = child.await.unwrap().unwrap();
    assert!(output.status.success(), "the second process failed");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "within one interval (10 s)"
    );
    let there = counter_at(redis.port(), "admitted:b");
    eprintln!("admitted for `org`: {here} here, {there} in the other process");
    assert_eq!(here + there, 10, "one quota for `org`: {here} + {there}");
    let keys = redis.command("KEYS test:rl:{redis-org}:*").unwrap();
    assert!(keys.starts_with("*1"), "one Redis key for `org`: {keys}");
    install("policies: {}\n");
}

#[rate_limited(policy = "redis-frozen", calls = 1000, period = "1s", mode = "reject")]
async fn during_freeze() -> Result<(), ApiError> {
    Ok(())
}

/// A call under `allow` while Redis cannot answer: let through after one `backend_timeout`
/// (200 ms; 100 ms of margin for scheduling). Returns how long it took.
async fn let_through_after_one_timeout() -> Duration {
    let start = Instant::now();
    assert!(
        during_freeze().await.is_ok(),
        "allow: the call goes through"
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(300),
        "one backend_timeout: {elapsed:?}"
    );
    elapsed
}

/// Redis frozen (`SIGSTOP`, as a stalled host) and then paused (`CLIENT PAUSE`): each call
/// costs one `backend_timeout`, and once Redis answers again the quota still holds (nothing
/// over-admitted: the spent permit is still spent).
#[tokio::test]
async fn a_frozen_or_paused_redis_costs_one_timeout_and_the_quota_holds_after() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&format!(
        "policies:\n  redis-frozen:\n    rate_limit: {{ calls: 1, period: 10s, mode: reject }}\n    backend: {}\n    backend_timeout: 200ms\n    on_backend_error: allow\n",
        redis.url()
    ));
    assert!(during_freeze().await.is_ok());
    assert!(during_freeze().await.is_err(), "Redis keeps the quota");

    redis.freeze();
    let frozen = let_through_after_one_timeout().await;
    redis.thaw();
    assert!(
        during_freeze().await.is_err(),
        "thawed: the quota still holds"
    );

    assert!(
        redis
            .command("CLIENT PAUSE 1000 ALL")
            .unwrap()
            .starts_with("+OK")
    );
    let paused = let_through_after_one_timeout().await;
    assert!(redis.command("CLIENT UNPAUSE").unwrap().starts_with("+OK"));
    assert!(
        during_freeze().await.is_err(),
        "unpaused: the quota still holds"
    );
    eprintln!("frozen: {frozen:?}, paused: {paused:?}");
    install("policies: {}\n");
}
