//! A Redis Cluster of the test's own: three `redis-server --cluster-enabled yes` on free
//! loopback ports, joined by `redis-cli --cluster create`, stopped by PID on drop.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Three masters, no replicas, each in a directory of its own under the temp dir.
pub(crate) struct Cluster {
    nodes: Vec<Child>,
    pub(crate) ports: Vec<u16>,
    dir: std::path::PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}

/// `redis-cli -p port args..`'s answer.
pub(crate) fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl Cluster {
    pub(crate) fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("resilience-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the nodes' files");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            ports: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            let port = free_port();
            cluster.nodes.push(node(port, &cluster.dir));
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
        cluster.wait_ok(Duration::from_secs(20));
        cluster
    }

    /// Returns once every node sees the cluster ok, within `limit`.
    fn wait_ok(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for port in &self.ports {
            while !cli(*port, &["CLUSTER", "INFO"]).contains("cluster_state:ok") {
                assert!(
                    Instant::now() < deadline,
                    "node {port} never saw the cluster ok"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub(crate) fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// A command through the cluster (`redis-cli -c` follows `MOVED`).
    pub(crate) fn command(&self, args: &[&str]) -> String {
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
    pub(crate) fn kill(&mut self, index: usize) {
        let _ = self.nodes[index].kill();
        let _ = self.nodes[index].wait();
    }

    /// Starts the node `index` again on its port, empty (no persistence), from its cluster
    /// config file, so it rejoins with its slots; returns once every node sees the cluster ok.
    pub(crate) fn restart(&mut self, index: usize) {
        let port = self.ports[index];
        self.nodes[index] = node(port, &self.dir);
        self.wait_ok(Duration::from_secs(30));
    }
}

/// A cluster-enabled `redis-server` on `port`, its files in `dir`.
fn node(port: u16, dir: &std::path::Path) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
        .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts")
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
