//! A `redis-server` of the test's own on 127.0.0.1 and a free port, stopped on drop.
//!
//! When the binary is missing, the helper installs it once with `apt-get install -y
//! redis-server` (so the README's test command works on a fresh Debian machine), and fails
//! with the install command when that is not possible: never a silent skip.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

pub(crate) struct RedisServer {
    child: Option<Child>,
    port: u16,
}

fn installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn ensure_installed() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if !installed() {
            let _ = Command::new("apt-get")
                .args(["install", "-y", "-q", "redis-server"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    });
    assert!(
        installed(),
        "these tests need `redis-server`; install it with `sudo apt-get install -y redis-server` \
         (Debian/Ubuntu) or `brew install redis` (macOS)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}

impl RedisServer {
    /// A fresh server on a free port, answering PING.
    pub(crate) fn start() -> Self {
        ensure_installed();
        let mut server = RedisServer {
            child: None,
            port: free_port(),
        };
        server.resume();
        server
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (as an outage would).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing is persisted).
    pub(crate) fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .command("PING")
                .is_some_and(|answer| answer.starts_with("+PONG"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} did not answer PING within 10 s",
            self.port
        );
    }

    /// `SET key value` with a binary value (RESP), for entries written "by another instance".
    pub(crate) fn set_raw(&self, key: &str, value: &[u8]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut request = format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n",
            key.len(),
            value.len()
        )
        .into_bytes();
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
        stream.write_all(&request).ok()?;
        let mut buffer = [0u8; 64];
        let read = stream.read(&mut buffer).ok()?;
        Some(String::from_utf8_lossy(&buffer[..read]).into_owned())
    }

    /// Freezes the server (`SIGSTOP`): connections stay open and nothing is answered, as a
    /// server stalled by the OS or a long `DEBUG SLEEP` would behave. [`thaw`](Self::thaw)
    /// resumes it; dropping a frozen server kills it all the same.
    pub(crate) fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Resumes a [`freeze`](Self::freeze)d server (`SIGCONT`).
    pub(crate) fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        signal_pid(self.pid(), signal);
    }

    /// The server's process id, for a test that signals it from elsewhere ([`signal_pid`]).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Sends one inline command and returns the first reply line.
    pub(crate) fn command(&self, command: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
        let mut buffer = [0u8; 512];
        let read = stream.read(&mut buffer).ok()?;
        Some(String::from_utf8_lossy(&buffer[..read]).into_owned())
    }
}

/// Sends `signal` (`-STOP`, `-CONT`) to the process `pid` (a server of this test's own).
pub(crate) fn signal_pid(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("`kill` runs");
    assert!(status.success(), "kill {signal} {pid}");
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends one inline command to the Redis on `port` and returns its reply ("" if none): for
/// child processes of a test, which share a Redis but no connection type.
pub(crate) fn redis_at(port: u16, command: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.write_all(format!("{command}\r\n").as_bytes());
    let mut buffer = [0u8; 256];
    let read = stream.read(&mut buffer).unwrap_or(0);
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}

/// The integer value of `counter` on the Redis on `port` (0 when absent).
pub(crate) fn counter_at(port: u16, counter: &str) -> u64 {
    // `$1\r\n3\r\n`, or `$-1` when never set.
    redis_at(port, &format!("GET {counter}"))
        .lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or(0)
}
