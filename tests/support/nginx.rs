//! A real `nginx` of the test's own: `limit_req` in front of an upstream the test gives, on
//! 127.0.0.1 and a free port, from a temporary directory, stopped on drop by its PID.
//!
//! nginx is looked up on the PATH and at `/usr/sbin/nginx` (Debian installs it there, which
//! is not on every user's PATH). When it is missing, the helper installs it once with
//! `apt-get install -y nginx` (a `policy-rc.d` that returns 101 keeps Debian's postinst from
//! starting a system nginx on port 80, and is removed again), and fails with the install
//! command when that is not possible: never a silent skip.
//!
//! The server runs in the foreground (`daemon off; master_process off;`, one process), with
//! its pid file, error log, access log and temporary paths in the temporary directory. The
//! access log has one line per request: `<status> <request_uri>`.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `limit_req` of the server: `rate=<rate>r/s`, and `burst=<burst> nodelay` when
/// `burst > 0`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitReq {
    pub(crate) rate: u32,
    pub(crate) burst: u32,
}

pub(crate) struct Nginx {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

const CANDIDATES: [&str; 2] = ["nginx", "/usr/sbin/nginx"];

fn works(program: &str) -> bool {
    Command::new(program)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn find() -> Option<&'static str> {
    CANDIDATES.into_iter().find(|program| works(program))
}

/// `apt-get install -y nginx` without starting the service: a temporary `policy-rc.d`
/// that denies every start (exit 101), unless the machine has one already.
fn apt_install() {
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists() && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok();
    if ours {
        let _ = Command::new("chmod")
            .args(["+x", "/usr/sbin/policy-rc.d"])
            .status();
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "nginx"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !install() {
        // A fresh machine may have no package lists yet.
        let _ = Command::new("apt-get")
            .args(["update", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        install();
    }
    if ours {
        let _ = std::fs::remove_file(policy);
    }
}

/// The nginx binary, installed once if missing.
fn program() -> &'static str {
    static PROGRAM: OnceLock<Option<&'static str>> = OnceLock::new();
    let found = PROGRAM.get_or_init(|| {
        find().or_else(|| {
            apt_install();
            find()
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "these tests need `nginx`; install it with `sudo apt-get install -y nginx` \
             (Debian/Ubuntu) or `brew install nginx` (macOS)"
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}

fn config(dir: &Path, port: u16, limit: LimitReq, upstream: &str) -> String {
    let d = dir.display();
    let upstream = upstream.trim_start_matches("http://").trim_end_matches('/');
    let burst = if limit.burst > 0 {
        format!(" burst={} nodelay", limit.burst)
    } else {
        String::new()
    };
    format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format test '$status $request_uri';
  access_log {d}/access.log test;
  client_body_temp_path {d}/client_body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  keepalive_requests 100000;
  limit_req_zone $binary_remote_addr zone=api:1m rate={rate}r/s;
  limit_req_status 429;
  limit_req_log_level info;
  upstream test_upstream {{
    server {upstream};
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      limit_req zone=api{burst};
      proxy_pass http://test_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }}
  }}
}}
",
        rate = limit.rate,
    )
}

impl Nginx {
    /// A fresh nginx on a free port with `limit`, proxying every request to `upstream`
    /// (`http://127.0.0.1:<port>`), accepting connections when this returns.
    pub(crate) fn start(limit: LimitReq, upstream: &str) -> Self {
        let program = program();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let file = dir.path().join("nginx.conf");
        std::fs::write(&file, config(dir.path(), port, limit, upstream))
            .expect("nginx.conf written");
        let child = Command::new(program)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} does not start: {e}"));
        let mut nginx = Nginx {
            child: Some(child),
            dir,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            let exited = nginx
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "nginx did not accept on 127.0.0.1:{port} within 10 s (exit: {exited:?}); \
                     error.log:\n{}",
                    nginx.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The temporary directory holding the config and the logs.
    pub(crate) fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Every request so far, as (status, request URI), in the order nginx logged them.
    pub(crate) fn access_log(&self) -> Vec<(u16, String)> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let (status, uri) = line.split_once(' ')?;
                Some((status.parse().ok()?, uri.to_string()))
            })
            .collect()
    }

    /// How many requests nginx answered with `status`.
    pub(crate) fn count(&self, status: u16) -> usize {
        self.access_log()
            .iter()
            .filter(|(logged, _)| *logged == status)
            .count()
    }

    /// The error log, for a failure message.
    pub(crate) fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// SIGTERM by PID, then SIGKILL after 2 s.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}
