//! Redis Cluster (`backend: redis+cluster://h1:p1,h2:p2,h3:p3`, feature `redis`): a cluster of
//! three `redis-server --cluster-enabled yes` on free loopback ports, joined by `redis-cli
//! --cluster create` and stopped by PID. The keys a script or a lock uses together carry the
//! policy's hash tag, so they live in one slot: a shared quota holds, concurrent misses on one
//! key load once (the entry and its lock in one script), and `invalidate_all_shared` finds the
//! function's keys on the node of their slot. A killed node costs a call `backend_timeout` at
//! most, and once it is back the quota holds again, no more.
#![cfg(feature = "redis")]

#[path = "support/redis_cluster.rs"]
mod redis_cluster;

use redis_cluster::{Cluster, cli};

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use resilience::{Rejected, cached, rate_limited};

#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    Refused,
}

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError::Refused
    }
}

#[rate_limited(policy = "cl-limit", calls = 1, period = "10s", burst = 2, mode = "reject", key = org)]
async fn list(org: &str) -> Result<(), ApiError> {
    let _ = org;
    Ok(())
}

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = "60s", policy = "cl-cache")]
async fn user(id: u32) -> Result<String, ApiError> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(format!("user {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_shares_quotas_and_entries_with_their_keys_in_one_slot() {
    let mut cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    // `deny`: a failing round trip (a `CROSSSLOT`, say) shows as a refusal, not a pass.
    let yaml = format!(
        "policies:\n  cl-limit:\n    backend: {url}\n    backend_timeout: 300ms\n    on_backend_error: deny\n  \
         cl-cache:\n    backend: {url}\n    backend_timeout: 1s\n    on_backend_error: deny\n",
        url = cluster.url()
    );
    resilience::config::load_str(&yaml).unwrap_or_else(|errors| panic!("{errors}"));

    // One quota per key value, kept in the cluster.
    for _ in 0..3 {
        assert_eq!(list("rust-lang").await, Ok(()));
    }
    assert_eq!(list("rust-lang").await, Err(ApiError::Refused));
    assert_eq!(list("tokio-rs").await, Ok(()));
    let key = format!(
        "resilience:rl:{{cl-limit}}:{:016x}",
        resilience::rate_limit::stable_hash("rust-lang")
    );
    assert_eq!(cluster.command(&["EXISTS", &key]), "1");

    // 20 concurrent misses on one key: one load, through the lock (the entry and its lock
    // in one script, so in one slot).
    let calls: Vec<_> = (0..20).map(|_| tokio::spawn(user(7))).collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), Ok("user 7".to_string()));
    }
    assert_eq!(LOADS.load(Ordering::SeqCst), 1);
    let entry = "resilience:cache:{cl-cache}:redis_cluster::user:[7]";
    assert_eq!(cluster.command(&["EXISTS", entry]), "1");
    assert_eq!(user(7).await, Ok("user 7".to_string()));
    assert_eq!(LOADS.load(Ordering::SeqCst), 1, "a hit from the cluster");

    // `invalidate_all_shared` finds the function's keys on the node of their slot.
    assert_eq!(user(8).await, Ok("user 8".to_string()));
    user_cache().invalidate_all_shared().await;
    assert_eq!(cluster.command(&["EXISTS", entry]), "0");
    assert_eq!(user(7).await, Ok("user 7".to_string()));
    assert_eq!(LOADS.load(Ordering::SeqCst), 3, "loaded again");

    // The node serving the quotas' slot dies: a call costs `backend_timeout` (300 ms) at most,
    // then `deny` refuses it; after three failures the cluster is skipped for a second.
    let owner = cluster
        .ports
        .iter()
        .position(|port| cli(*port, &["EXISTS", &key]).trim() == "1")
        .expect("one node serves the quotas' slot");
    cluster.kill(owner);
    for call in 0..4 {
        let started = Instant::now();
        assert_eq!(
            list("serde-rs").await,
            Err(ApiError::Refused),
            "call {call}"
        );
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(400),
            "call {call} took {took:?}"
        );
    }

    // The node comes back, empty: once the cluster is whole and the skip has passed, the
    // quota holds again (burst 2 + 1: three admitted, the fourth refused), no more.
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart(owner);
        cluster
    })
    .await
    .unwrap();
    let back = Instant::now();
    while list("serde-rs").await.is_err() {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "the cluster never used again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..2 {
        assert_eq!(list("serde-rs").await, Ok(()));
    }
    assert_eq!(list("serde-rs").await, Err(ApiError::Refused));
    drop(cluster);
    resilience::config::load_str("policies: {}\n").unwrap_or_else(|errors| panic!("{errors}"));
}
