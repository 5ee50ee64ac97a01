//! Permit leasing on a rate limit kept in Redis (issue 21): `lease: off` is one round trip per
//! check; an idle instance takes no lease; a busy one spends leases locally; and K instances
//! hammering one quota stay within the documented bound (`calls + burst` in any window of
//! `period`, plus the permits the instances held when it began: at most K leases). Against a
//! real `redis-server` on 127.0.0.1; real time (Redis keeps its own clock), so the asserts are
//! on counts.
//!
//! The bound of `resilience_core::redis::lease` (in docs/redis.md): in any window of one
//! period, `calls + burst + (K + 1) × cap` for K instances leasing `cap` permits at most.
#![cfg(feature = "redis")]

mod common;
#[path = "support/redis_server.rs"]
mod redis_server;

use common::ApiError;
use redis_server::RedisServer;

use std::io::{Read, Write};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use resilience::rate_limited;

/// Held by every test: installing policies replaces them all.
static POLICIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn install(yaml: &str) {
    resilience::config::load_str(yaml).unwrap_or_else(|errors| panic!("{errors}"));
}

fn policy(url: &str, rate_limit: &str) -> String {
    format!(
        "policies:\n  lease:\n    rate_limit: {{ {rate_limit} }}\n    backend: {url}\n    backend_timeout: 1s\n    on_backend_error: deny\n"
    )
}

#[rate_limited(policy = "lease", calls = 1, period = "1s", mode = "reject")]
async fn call() -> Result<(), ApiError> {
    Ok(())
}

/// The whole reply to one command (a bulk string read to its length).
fn reply(port: u16, command: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("redis answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("a timeout");
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .expect("sent");
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer).unwrap_or(0);
        text.extend_from_slice(&buffer[..read]);
        let done = match text.iter().position(|byte| *byte == b'\n') {
            Some(end) if text.first() == Some(&b'$') => {
                let length: usize = String::from_utf8_lossy(&text[1..end])
                    .trim()
                    .parse()
                    .unwrap_or(0);
                text.len() >= end + 1 + length
            }
            Some(_) => true,
            None => false,
        };
        if read == 0 || done {
            return String::from_utf8_lossy(&text).into_owned();
        }
    }
}

/// `EVALSHA` calls since the last `CONFIG RESETSTAT`: the limiter's round trips.
fn round_trips(port: u16) -> u64 {
    reply(port, "INFO commandstats")
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0)
}

fn reset_stats(port: u16) {
    assert!(reply(port, "CONFIG RESETSTAT").starts_with("+OK"));
}

/// How far ahead of Redis's clock the schedule's TAT is, in microseconds.
fn tat_ahead(port: u16) -> i64 {
    let tat: i64 = reply(port, "GET resilience:rl:{lease}")
        .lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .expect("a TAT");
    let time = reply(port, "TIME");
    let mut lines = time.lines().filter(|line| !line.starts_with(['*', '$']));
    let seconds: i64 = lines.next().and_then(|s| s.parse().ok()).expect("seconds");
    let micros: i64 = lines.next().and_then(|s| s.parse().ok()).expect("micros");
    tat - (seconds * 1_000_000 + micros)
}

/// `lease: off` is today's behaviour: one round trip (one script call) per check, however
/// hot; the default (`auto`) on the same quota makes far fewer.
#[tokio::test]
async fn lease_off_makes_one_round_trip_per_check_and_auto_far_fewer() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    for (lease, checks) in [("off", 500), ("auto", 500)] {
        install(&policy(
            &redis.url(),
            &format!("calls: 100000, period: 1s, burst: 1000, lease: {lease}"),
        ));
        // The script loaded (a first `EVALSHA` may meet `NOSCRIPT`), then counted afresh.
        assert!(call().await.is_ok());
        reset_stats(redis.port());
        for _ in 0..checks {
            assert!(call().await.is_ok(), "within the burst");
        }
        let trips = round_trips(redis.port());
        if lease == "off" {
            assert_eq!(trips, checks, "lease: off");
        } else {
            // 1% of 100,000 is the cap (256 at most, 1000 here): a few leases after the
            // first calls size it.
            assert!(trips <= checks / 10, "lease: auto made {trips} round trips");
        }
        assert!(redis.command("FLUSHALL").unwrap().starts_with("+OK"));
    }
    install("policies: {}\n");
}

/// An instance that calls less often than once a lease's lifetime (a tenth of the period, at
/// most 100 ms) takes no lease: each call is one round trip, and the shared schedule is one
/// interval ahead, not a lease's worth. The same instance, busy, takes leases.
#[tokio::test]
async fn an_idle_instance_takes_no_lease_and_a_busy_one_does() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    // One per millisecond, a burst of 100: `auto` leases up to 10 permits (1% of `calls`).
    install(&policy(
        &redis.url(),
        "calls: 1000, period: 1s, burst: 100, lease: auto",
    ));
    assert!(call().await.is_ok());
    reset_stats(redis.port());
    for trip in 1..=3 {
        // Two lifetimes (200 ms) idle: this instance's recent use is forgotten.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(call().await.is_ok());
        assert_eq!(round_trips(redis.port()), trip, "one round trip per call");
        let ahead = tat_ahead(redis.port());
        assert!(ahead <= 1_000, "one permit taken, not a lease: {ahead} us");
    }
    reset_stats(redis.port());
    for _ in 0..40 {
        assert!(call().await.is_ok(), "within the burst");
    }
    let trips = round_trips(redis.port());
    assert!(
        trips < 40,
        "busy: leases spent locally, {trips} round trips"
    );
    assert!(
        tat_ahead(redis.port()) > 1_000,
        "a lease's permits are taken in the shared schedule"
    );
    install("policies: {}\n");
}

/// The quota of the bound test: 2000 per second with a burst of 100, leased by `auto` (20 at
/// most per lease).
const CALLS: usize = 2000;
const BURST: usize = 100;
const LEASE_CAP: usize = CALLS / 100;
const INSTANCES: usize = 4;
const RUN: Duration = Duration::from_millis(2500);

/// One instance: a runtime and a connection of its own (so a lease of its own), calling as
/// fast as it can for `RUN`; returns when each admitted call was let through.
fn hammer(start: Arc<Barrier>) -> std::thread::JoinHandle<Vec<Instant>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            // Connected before the start, so that every instance starts at once.
            let _ = call().await;
            start.wait();
            let deadline = Instant::now() + RUN;
            let mut admitted = Vec::new();
            while Instant::now() < deadline {
                if call().await.is_ok() {
                    admitted.push(Instant::now());
                }
            }
            admitted
        })
    })
}

/// K instances (each a runtime and a Redis connection of its own, as separate processes
/// would be) hammer one leased quota: in every window of one period the admissions stay
/// within `calls + burst + (K + 1) × cap`, and over the run within `calls` per period started
/// plus that bound's allowance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_hammering_one_leased_quota_stay_within_the_bound() {
    let _policies = POLICIES.lock().await;
    let redis = RedisServer::start();
    install(&policy(
        &redis.url(),
        &format!("calls: {CALLS}, period: 1s, burst: {BURST}, mode: reject, lease: auto"),
    ));
    let start = Arc::new(Barrier::new(INSTANCES));
    let handles: Vec<_> = (0..INSTANCES).map(|_| hammer(Arc::clone(&start))).collect();
    // The warm-up calls took permits too: counted from here on, they come first.
    let mut admitted: Vec<Instant> = Vec::new();
    for handle in handles {
        admitted.extend(handle.join().expect("an instance"));
    }
    admitted.sort();
    let bound = CALLS + BURST + (INSTANCES + 1) * LEASE_CAP;
    let mut worst = 0;
    for (first, at) in admitted.iter().enumerate() {
        let within = admitted[first..]
            .iter()
            .take_while(|later| later.duration_since(*at) < Duration::from_secs(1))
            .count();
        worst = worst.max(within);
    }
    let windows = RUN.as_secs_f64().ceil() as usize;
    eprintln!(
        "admitted {} in {RUN:?} by {INSTANCES} instances; at most {worst} in one period \
         (bound {bound})",
        admitted.len()
    );
    assert!(worst <= bound, "{worst} in one period, bound {bound}");
    assert!(
        admitted.len() <= CALLS * windows + BURST + (INSTANCES + 1) * LEASE_CAP,
        "{} in all",
        admitted.len()
    );
    // The quota was used, not starved by the leases: at least the first period's worth.
    assert!(admitted.len() >= CALLS, "{} in all", admitted.len());
    install("policies: {}\n");
}

/// Redis frozen (`SIGSTOP`, a stalled host: round trips time out) and then killed mid-run under
/// a leased quota, then restarted (empty, as a failed-over node without persistence comes
/// back): while it is down each call costs at most
/// `backend_timeout` (200 ms, plus 100 ms of scheduling margin) and only the lease held when
/// it died is spent (`deny` refuses the rest); once it answers again the quota holds: the
/// admissions in the period after recovery stay within `calls + burst + 2 × cap` (K = 1).
#[tokio::test]
async fn a_redis_down_mid_run_costs_one_timeout_per_call_and_no_over_admission_after() {
    let _policies = POLICIES.lock().await;
    let mut redis = RedisServer::start();
    const QUOTA: usize = 1000;
    const CAP: usize = QUOTA / 100;
    install(&format!(
        "policies:\n  lease:\n    rate_limit: {{ calls: {QUOTA}, period: 1s, mode: reject, lease: auto }}\n    backend: {}\n    backend_timeout: 200ms\n    on_backend_error: deny\n",
        redis.url()
    ));
    let start = Instant::now();
    let mut before = 0;
    while start.elapsed() < Duration::from_millis(500) {
        if call().await.is_ok() {
            before += 1;
        }
    }
    redis.freeze();
    let (mut during, mut slowest) = (0, Duration::ZERO);
    let down = Instant::now();
    while down.elapsed() < Duration::from_millis(1500) {
        if down.elapsed() >= Duration::from_millis(700) {
            redis.kill();
        }
        let started = Instant::now();
        if call().await.is_ok() {
            during += 1;
        }
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest >= Duration::from_millis(200) && slowest < Duration::from_millis(300),
        "the slowest call with Redis down took {slowest:?}: one backend_timeout"
    );
    assert!(
        during <= CAP,
        "{during} admitted with Redis down, lease cap {CAP}"
    );
    redis.resume();
    // The skip after three failures lasts a second; then Redis is tried again.
    let back = Instant::now();
    while call().await.is_err() {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "Redis never used again"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let recovered = Instant::now();
    let mut after = 1;
    while recovered.elapsed() < Duration::from_secs(1) {
        if call().await.is_ok() {
            after += 1;
        }
    }
    eprintln!(
        "admitted: {before} before the kill, {during} while down (slowest call {slowest:?}), \
         {after} in the period after recovery"
    );
    assert!(
        after <= QUOTA + 2 * CAP,
        "{after} in the period after recovery"
    );
    assert!(after >= QUOTA / 2, "Redis used again: {after}");
    install("policies: {}\n");
}
