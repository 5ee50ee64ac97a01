//! Many instances on one quota (issue 21): 8 processes (this test binary runs itself 8 times)
//! share one rate limit through Redis (one server, then a cluster of three) and call a loopback HTTP server that enforces that
//! quota. The server answers 429 to a request beyond its token bucket; the instances
//! together must provoke none, and no call may fail.
//!
//! The server's bucket refills at the quota's rate (400/s) and holds the headroom
//! `docs/redis.md` says a server enforcing the quota should leave: the leases (`(K + 1) × cap`,
//! 9 × 4 with `lease: auto` at 400/s) plus 50 ms of the quota for the instances' scheduling
//! on a shared machine (a request reaches the server some time after its admission, and that
//! time varies).
#![cfg(feature = "redis")]

mod common;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use common::ApiError;
use redis_server::{RedisServer, counter_at, redis_at};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use resilience::rate_limited;

/// Held by each test: 16 processes at once on a 2-core machine would measure the machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const INSTANCES: u64 = 8;
const CALLS: u64 = 400;
/// The most permits a lease holds at `CALLS` per second under `lease: auto`: 1% of them.
const CAP: u64 = CALLS / 100;
/// Calls in flight in each instance.
const TASKS: usize = 4;
/// How long each instance calls.
const RUN: Duration = Duration::from_secs(2);

#[rate_limited(policy = "many", calls = 1, period = "1s")]
async fn fetch(stream: &mut TcpStream) -> Result<u16, ApiError> {
    // 0: no answer (counted as a failure).
    if stream
        .write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .is_err()
    {
        return Ok(0);
    }
    let Some(head) = common::read_head(stream).await else {
        return Ok(0);
    };
    Ok(String::from_utf8_lossy(&head)
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0))
}

fn policy(backend: &str) -> String {
    format!(
        "policies:\n  many:\n    rate_limit: {{ calls: {CALLS}, period: 1s, lease: auto }}\n    backend: {backend}\n    backend_timeout: 1s\n    on_backend_error: deny\n"
    )
}

/// One instance (a child process): `TASKS` connections to the server, each calling `fetch`
/// for `RUN` after the parent's go; counts its answers in the Redis on `redis_port` (the
/// parent's, whatever `backend` keeps the quota).
async fn instance(redis_port: u16, http_port: u16, backend: &str) {
    resilience::config::load_str(&policy(backend)).unwrap_or_else(|errors| panic!("{errors}"));
    redis_at(redis_port, "INCR ready");
    let deadline = Instant::now() + Duration::from_secs(20);
    while counter_at(redis_port, "go") == 0 {
        assert!(Instant::now() < deadline, "the parent never said go");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let end = Instant::now() + RUN;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(("127.0.0.1", http_port))
                    .await
                    .expect("the server accepts");
                let (mut ok, mut limited, mut failed) = (0u64, 0u64, 0u64);
                while Instant::now() < end {
                    match fetch(&mut stream).await {
                        Ok(200) => ok += 1,
                        Ok(429) => limited += 1,
                        _ => failed += 1,
                    }
                }
                (ok, limited, failed)
            })
        })
        .collect();
    for task in tasks {
        let (ok, limited, failed) = task.await.expect("a task");
        redis_at(redis_port, &format!("INCRBY ok {ok}"));
        redis_at(redis_port, &format!("INCRBY limited {limited}"));
        redis_at(redis_port, &format!("INCRBY failed {failed}"));
    }
}

/// A token bucket of `capacity` refilled at `CALLS` per second, starting full.
struct Bucket {
    tokens: f64,
    at: Instant,
    capacity: f64,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * CALLS as f64;
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The loopback server: HTTP/1.1 with keep-alive, 200 while the bucket has a token, else 429.
/// Returns its port and its counts (served, refused).
async fn quota_server(capacity: u64) -> (u16, Arc<Mutex<(u64, u64)>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let port = listener.local_addr().expect("an address").port();
    let bucket = Arc::new(Mutex::new(Bucket {
        tokens: capacity as f64,
        at: Instant::now(),
        capacity: capacity as f64,
    }));
    let counts = Arc::new(Mutex::new((0u64, 0u64)));
    let seen = Arc::clone(&counts);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (bucket, counts) = (Arc::clone(&bucket), Arc::clone(&counts));
            tokio::spawn(async move {
                while common::read_head(&mut stream).await.is_some() {
                    let served = common::lock(&bucket).take();
                    {
                        let mut counts = common::lock(&counts);
                        if served {
                            counts.0 += 1;
                        } else {
                            counts.1 += 1;
                        }
                    }
                    let answer: &[u8] = if served {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                    } else {
                        b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n"
                    };
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// The child's part, when this binary runs as one: `Some(())` once done.
async fn as_child() -> Option<()> {
    let ports = std::env::var("RESILIENCE_TEST_MANY_PORTS").ok()?;
    let backend = std::env::var("RESILIENCE_TEST_MANY_BACKEND").ok()?;
    let (redis_port, http_port) = ports.split_once(':').expect("two ports");
    instance(
        redis_port.parse().expect("a port"),
        http_port.parse().expect("a port"),
        &backend,
    )
    .await;
    Some(())
}

/// `INSTANCES` processes (this test, `name`, run as children) on one quota kept by `backend`
/// (`None`: the coordinating server itself), against a server enforcing it: no 429, no
/// failure, and the quota used.
async fn many_processes(name: &str, backend: Option<String>) {
    let _one = ONE_AT_A_TIME.lock().await;
    let redis = RedisServer::start();
    let elsewhere = backend.is_some();
    let backend = backend.unwrap_or_else(|| redis.url());
    let headroom = (INSTANCES + 1) * CAP + CALLS / 20;
    let (http_port, counts) = quota_server(headroom).await;
    let children: Vec<_> = (0..INSTANCES)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().expect("this test"))
                .args(["--exact", name, "--test-threads", "1"])
                .env(
                    "RESILIENCE_TEST_MANY_PORTS",
                    format!("{}:{http_port}", redis.port()),
                )
                .env("RESILIENCE_TEST_MANY_BACKEND", &backend)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("a child")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while counter_at(redis.port(), "ready") < INSTANCES {
        assert!(Instant::now() < deadline, "the instances never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    redis.command("SET go 1").expect("go");
    for child in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("joined")
            .expect("waited");
        assert!(output.status.success(), "an instance failed");
    }
    let (served, refused) = *common::lock(&counts);
    let (ok, limited, failed) = (
        counter_at(redis.port(), "ok"),
        counter_at(redis.port(), "limited"),
        counter_at(redis.port(), "failed"),
    );
    eprintln!(
        "{INSTANCES} instances on {backend}: {ok} served, {limited} 429s, {failed} failed; the \
         server served {served} and refused {refused} (bucket of {headroom} at {CALLS}/s)"
    );
    assert_eq!((refused, limited, failed), (0, 0, 0), "no 429, no failure");
    assert_eq!(ok, served, "every answer counted");
    if elsewhere {
        assert_eq!(
            redis.command("EXISTS resilience:rl:{many}").as_deref(),
            Some(":0\r\n"),
            "the quota is the backend's, not the coordinating server's"
        );
    }
    // The quota was used: at least 90% of what `RUN` allows.
    let floor = CALLS * RUN.as_millis() as u64 / 1000 * 9 / 10;
    assert!(served >= floor, "{served} served, under {floor}");
}

/// 8 processes, one quota of 400/s in one Redis server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_share_one_quota_without_a_429() {
    if as_child().await.is_some() {
        return;
    }
    many_processes("eight_processes_share_one_quota_without_a_429", None).await;
}

/// The same through a Redis Cluster of three nodes (the quota's key on the node of its slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_share_one_quota_through_a_cluster_without_a_429() {
    if as_child().await.is_some() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(redis_cluster::Cluster::start)
        .await
        .expect("a cluster");
    many_processes(
        "eight_processes_share_one_quota_through_a_cluster_without_a_429",
        Some(cluster.url()),
    )
    .await;
}
