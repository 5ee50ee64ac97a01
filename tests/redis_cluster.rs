//! Redis Cluster (`backend: redis+cluster://h1:p1,h2:p2,h3:p3`, feature `redis`): a cluster of
//! three `redis-server --cluster-enabled yes` on free loopback ports, joined by `redis-cli
//! --cluster create` and stopped by PID. The keys a script or a lock uses together carry the
//! policy's hash tag, so they live in one slot: a shared quota holds, concurrent misses on one
//! key load once (the entry and its lock in one script), and `invalidate_all_shared` finds the
//! function's keys on the node of their slot. A killed node costs a call `backend_timeout` at
//! most.
#![cfg(feature = "redis")]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use resilience::{Rejected, cached, rate_limited};

/// Three masters, no replicas, each in a directory of its own under the temp dir.
struct Cluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    dir: std::path::PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}

/// `redis-cli -p port args..`'s answer.
fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl Cluster {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("resilience-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the nodes' files");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            ports: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            let port = free_port();
            let node = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .arg("--dir")
                .arg(&cluster.dir)
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            cluster.nodes.push(node);
            cluster.ports.push(port);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in &cluster.ports {
            while !cli(*port, &["PING"]).starts_with("PONG") {
                assert!(Instant::now() < deadline, "node {port} never answered");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(created.success(), "the cluster is created");
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in &cluster.ports {
            while !cli(*port, &["CLUSTER", "INFO"]).contains("cluster_state:ok") {
                assert!(
                    Instant::now() < deadline,
                    "node {port} never saw the cluster ok"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        cluster
    }

    fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// A command through the cluster (`redis-cli -c` follows `MOVED`).
    fn command(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-c", "-p", &self.ports[0].to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

impl Cluster {
    /// Kills the node `index` (stopped by its PID).
    fn kill(&mut self, index: usize) {
        let _ = self.nodes[index].kill();
        let _ = self.nodes[index].wait();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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
    resilience::config::load_str("policies: {}\n").unwrap_or_else(|errors| panic!("{errors}"));
}
