//! What the HTTP benches share: a loopback server, and timing their cases in alternation (the
//! machine is shared: a change in its load must reach every case alike).

use std::time::Duration;

use criterion::Criterion;
use reqwest_middleware::ClientWithMiddleware;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Starts a keep-alive HTTP/1.1 server on 127.0.0.1, on its own thread and runtime, answering
/// every request with `answer`; its URL.
pub(crate) fn server(answer: &'static [u8]) -> String {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/", std_listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(keep_alive(stream, answer));
            }
        });
    });
    url
}

/// Answers every request head on the connection with `answer` until the client closes it.
async fn keep_alive(mut stream: tokio::net::TcpStream, answer: &[u8]) {
    let _ = stream.set_nodelay(true);
    let (mut pending, mut buf) = (Vec::new(), [0u8; 4096]);
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            if stream.write_all(answer).await.is_err() {
                return;
            }
        }
    }
}

/// A reqwest client for the loopback server (no proxy).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// Times `one` on every case in alternation, after one untimed call of each (which opens its
/// pooled connection, and stores the answer of a caching client): each sample of each case is
/// a batch timed by hand, the cases taking turns, so a change in the machine's load reaches
/// them all alike.
/// The median batch of each case goes to `target/criterion/<group>/alternated.json`.
pub(crate) fn alternated<'a, F, Fut>(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    group: &str,
    cases: &'a [(&str, ClientWithMiddleware)],
    one: F,
) where
    F: Fn(&'a ClientWithMiddleware) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    runtime.block_on(async {
        for (_, client) in cases {
            one(client).await;
        }
    });
    let mut batches: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut bench = c.benchmark_group(group);
    bench.bench_function("alternated", |b| {
        b.iter_custom(|iterations| {
            let mut totals = vec![Duration::ZERO; cases.len()];
            runtime.block_on(async {
                for iteration in 0..iterations {
                    // Each round starts with the next case, so none always follows another.
                    for turn in 0..cases.len() {
                        let index = (turn + iteration as usize) % cases.len();
                        let start = std::time::Instant::now();
                        one(&cases[index].1).await;
                        totals[index] += start.elapsed();
                    }
                }
            });
            for (batch, total) in batches.iter_mut().zip(&totals) {
                batch.push(total.as_nanos() as f64 / iterations.max(1) as f64);
            }
            totals.iter().sum()
        })
    });
    bench.finish();
    report(group, cases, &batches);
}
/// The median batch of each case, written to `target/criterion/<group>/alternated.json` for
/// `benches/table.sh http`.
fn report(group: &str, cases: &[(&str, ClientWithMiddleware)], batches: &[Vec<f64>]) {
    let medians: Vec<(String, f64)> = cases
        .iter()
        .zip(batches)
        .map(|((name, _), batch)| {
            let mut sorted = batch.clone();
            sorted.sort_by(f64::total_cmp);
            (
                name.to_string(),
                sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN),
            )
        })
        .collect();
    let json = serde_json::to_string_pretty(&medians).expect("json");
    // cargo runs a bench in its package's directory: the workspace's target is beside it.
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    let dir = std::path::Path::new(&target).join("criterion").join(group);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("alternated.json"), &json);
    for (name, median) in &medians {
        println!("{group}/{name}: {median:.0} ns per request");
    }
}
