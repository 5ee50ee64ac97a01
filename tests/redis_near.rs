//! A local tier in front of a Redis cache (`cache: { local: { max_entries, ttl } }`), against a
//! real `redis-server` on 127.0.0.1: two instances in this process (two sites of one function,
//! each on its own tokio runtime, so each with its own connection and its own invalidation
//! subscriber). A local hit makes no round trip (Redis's `total_commands_processed`); an
//! invalidation or a new value on one instance reaches the other's local tier within 50 ms;
//! the tier holds its bound; a lost message is served for the tier's `ttl` at most, and a
//! broken subscription empties the tier.
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use redis_server::RedisServer;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use resilience::__private::{CacheSite, CacheSpec, Codec, OkCloneErr, cached_async};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct City {
    id: u32,
    version: u32,
}

/// Every load of every instance, numbered: a value's `version` says which load made it.
static LOADS: AtomicU32 = AtomicU32::new(0);

/// Held by every test: installing policies replaces them all.
static POLICIES: std::sync::Mutex<()> = std::sync::Mutex::new(());

const MINUTE: Duration = Duration::from_secs(60);

/// The one function both instances cache: two sites with one name, as two processes of one
/// service would have.
async fn city(site: &'static CacheSite, id: u32) -> Result<City, String> {
    let codec = Codec::json().reading_keys();
    cached_async::<OkCloneErr, _, _, _>(site, Some(codec), (id,), || async move {
        let version = LOADS.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(City { id, version })
    })
    .await
}

/// One instance: a site on a runtime of its own (a worker thread runs its subscriber).
struct Instance {
    runtime: tokio::runtime::Runtime,
    site: &'static CacheSite,
}

impl Instance {
    fn new(site: &'static CacheSite) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        Instance { runtime, site }
    }

    fn city(&self, id: u32) -> City {
        self.runtime
            .block_on(city(self.site, id))
            .expect("the load never fails")
    }
}

fn install(yaml: &str) {
    resilience::config::load_str(yaml).unwrap_or_else(|errors| panic!("{errors}"));
}

fn policy(name: &str, redis: &RedisServer, local: &str) -> String {
    format!(
        "policies:\n  {name}:\n    cache: {{ ttl: 60s, local: {local} }}\n    backend: {}\n    backend_timeout: 1s\n    key_prefix: \"n:\"\n",
        redis.url()
    )
}

/// Commands Redis has run so far (`INFO stats`; each `INFO` counts itself in the next one).
fn commands(redis: &RedisServer) -> u64 {
    let info = redis.command("INFO stats").expect("INFO is answered");
    info.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("INFO stats has total_commands_processed")
}

/// Waits (10 s at most) until `subscribers` connections listen for invalidations, then a
/// little more: a subscriber marks itself subscribed just after Redis confirms it.
fn wait_for_subscribers(redis: &RedisServer, subscribers: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = redis
            .command("PUBSUB NUMSUB n:cache:invalidate")
            .unwrap_or_default();
        // `*2`, the channel's length and name, then `:count`.
        let count = answer
            .lines()
            .nth(3)
            .and_then(|line| line.trim_start_matches(':').trim().parse::<u32>().ok());
        if count == Some(subscribers) {
            std::thread::sleep(Duration::from_millis(20));
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{subscribers} subscribers expected: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Calls `city(id)` on `instance` every millisecond until it gives a version other than
/// `old`; how long that took (at most 2 s).
fn until_changed(instance: &Instance, id: u32, old: u32) -> (City, Duration) {
    let started = Instant::now();
    loop {
        let city = instance.city(id);
        if city.version != old || started.elapsed() > Duration::from_secs(2) {
            return (city, started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

static A: CacheSite = CacheSite::new(
    "redis_near::a#1:1",
    "redis_near::city",
    Some("near"),
    CacheSpec::new(MINUTE),
);
static B: CacheSite = CacheSite::new(
    "redis_near::b#1:1",
    "redis_near::city",
    Some("near"),
    CacheSpec::new(MINUTE),
);

#[test]
fn two_instances_keep_their_local_tiers_coherent() {
    let _policies = POLICIES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let redis = RedisServer::start();
    install(&policy("near", &redis, "{ max_entries: 100, ttl: 10s }"));
    let (a, b) = (Instance::new(&A), Instance::new(&B));

    // A loads and stores; B gets it from Redis. The first use starts each subscriber.
    let first = a.city(1);
    assert_eq!(b.city(1), first, "B is served A's value from Redis");
    wait_for_subscribers(&redis, 2);
    assert_eq!(b.city(1), first);

    // B's copy: 100 hits, no round trip (the one command counted is the first `INFO`).
    let before = commands(&redis);
    for _ in 0..100 {
        assert_eq!(b.city(1), first);
    }
    assert_eq!(
        commands(&redis) - before,
        1,
        "a local hit makes no round trip"
    );

    // A invalidates: B's copy goes with the entry, within 50 ms.
    a.runtime.block_on(A.invalidate_shared(&(1u32,)));
    let (reloaded, took) = until_changed(&b, 1, first.version);
    assert_eq!(reloaded.version, first.version + 1, "B loads it again");
    assert!(took < Duration::from_millis(50), "seen after {took:?}");

    // A stores a new value (its entry deleted behind everyone's back): B drops its copy.
    assert_eq!(a.city(1), reloaded, "A's copy came from Redis");
    redis
        .command("DEL n:cache:{near}:redis_near::city:[1]")
        .unwrap();
    A.invalidate(&(1u32,));
    let newer = a.city(1);
    assert_eq!(newer.version, reloaded.version + 1);
    let (seen, took) = until_changed(&b, 1, reloaded.version);
    assert_eq!(seen, newer, "B reads A's new value");
    assert!(took < Duration::from_millis(50), "seen after {took:?}");

    // `invalidate_all_shared` on B empties A's tier.
    assert_eq!(a.city(2).id, 2);
    let kept = a.city(2);
    b.runtime.block_on(B.invalidate_all_shared());
    let (again, took) = until_changed(&a, 2, kept.version);
    assert!(again.version > kept.version);
    assert!(took < Duration::from_millis(50), "seen after {took:?}");

    // The tier's bound holds: 1000 keys through B, at most 100 copies.
    for id in 100..1100 {
        b.city(id);
    }
    assert!(B.len() <= 100, "{} copies", B.len());
    assert!(B.len() >= 50, "{} copies", B.len());
    install("policies: {}\n");
}

static C: CacheSite = CacheSite::new(
    "redis_near::c#1:1",
    "redis_near::town",
    Some("near-short"),
    CacheSpec::new(MINUTE),
);

#[test]
fn a_lost_message_is_served_for_the_local_ttl_at_most_and_a_broken_subscription_empties_the_tier() {
    let _policies = POLICIES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let redis = RedisServer::start();
    // The cache section's own `backend`: the brief form, `cache: { backend, local }`.
    install(&format!(
        "policies:\n  near-short:\n    cache: {{ ttl: 60s, backend: \"{}\", local: {{ ttl: 300ms }} }}\n    backend_timeout: 1s\n    key_prefix: \"n:\"\n",
        redis.url()
    ));
    let c = Instance::new(&C);
    let first = c.city(1);
    wait_for_subscribers(&redis, 1);
    let kept_at = Instant::now();
    assert_eq!(c.city(1), first, "from Redis, and kept");

    // Another writer that announces nothing (a lost message): the copy is served until the
    // tier's ttl, then Redis is read again.
    let written = City {
        id: 1,
        version: 1_000,
    };
    let mut frame = vec![1u8, 0u8];
    frame.extend_from_slice(&serde_json::to_vec(&written).unwrap());
    redis
        .set_raw("n:cache:{near-short}:redis_near::town:[1]", &frame)
        .unwrap();
    assert_eq!(c.city(1), first, "the copy, until its ttl");
    // The copy was kept within a round trip of `kept_at`: 20 ms of slack for that.
    std::thread::sleep(Duration::from_millis(320).saturating_sub(kept_at.elapsed()));
    assert_eq!(c.city(1), written, "read again once the copy's ttl is over");

    // A broken subscription: the tier is emptied, so a write it missed is read at once.
    assert_eq!(c.city(1), written);
    let missed = City {
        id: 1,
        version: 2_000,
    };
    let mut frame = vec![1u8, 0u8];
    frame.extend_from_slice(&serde_json::to_vec(&missed).unwrap());
    redis
        .set_raw("n:cache:{near-short}:redis_near::town:[1]", &frame)
        .unwrap();
    redis.command("CLIENT KILL TYPE pubsub").unwrap();
    wait_for_subscribers(&redis, 0);
    wait_for_subscribers(&redis, 1);
    assert_eq!(c.city(1), missed, "no copy survives a lost subscription");
    install("policies: {}\n");
}
