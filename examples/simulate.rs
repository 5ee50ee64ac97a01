//! The five retry strategies of an AI API client (no retry; fixed; linear; exponential;
//! exponential with full jitter) played by `resilience::sim` against a modelled AI API: a
//! long-tailed latency, 5% of 503s and 2% of 500s, a token bucket of 50 requests a second
//! whose 429s carry a Retry-After, and a 15-second outage a minute in. 10,000 calls from 50
//! callers per strategy, on tokio's paused clock: the whole table takes a fraction of a
//! second.
//!
//! ```text
//! cargo run --release --features sim --example simulate                       # seed 1
//! cargo run --release --features sim --example simulate -- 7                  # another seed
//! cargo run --release --features sim --example simulate -- 1 --no-retry-after # bare 429s
//! ```

use std::time::Duration;

use resilience::sim::{self, Latency, Quota, Server, Simulation};

/// The strategies, as a policy file would write them.
const STRATEGIES: &str = "\
policies:
  no-retry: {}
  fixed: { retry: { attempts: 5, backoff: constant, base: 1s, jitter: 0.0 } }
  linear: { retry: { attempts: 5, backoff: linear, base: 500ms, jitter: 0.0 } }
  exponential: { retry: { attempts: 5, backoff: exp, base: 500ms, max_delay: 30s, jitter: 0.0 } }
  exponential-jitter: { retry: { attempts: 5, backoff: exp, base: 500ms, max_delay: 30s, jitter: full } }
";

const ORDER: [&str; 5] = [
    "no-retry",
    "fixed",
    "linear",
    "exponential",
    "exponential-jitter",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed = match args.iter().find(|arg| !arg.starts_with("--")) {
        Some(seed) => seed.parse()?,
        None => 1,
    };
    let mut quota = Quota::token_bucket(50, 50, Duration::from_secs(1));
    if args.iter().any(|arg| arg == "--no-retry-after") {
        quota = quota.without_retry_after();
    }
    let server = Server::new(Latency::log_normal(
        Duration::from_millis(400),
        Duration::from_secs(2),
    ))
    .fail(503, 0.05)
    .fail(500, 0.02)
    .quota(quota)
    .outage(Duration::from_secs(60), Duration::from_secs(15));

    let policies = sim::policies(STRATEGIES)?;
    let (calls, callers) = (10_000, 50);
    let started = std::time::Instant::now();
    let report = Simulation::new(server.clone())
        .calls(calls)
        .concurrency(callers)
        .seed(seed)
        .play(&policies, &ORDER)?;
    println!("{calls} calls from {callers} callers, seed {seed}; server: {server}\n");
    print!("{report}");
    eprintln!(
        "\n{} calls simulated in {:.0?} of real time",
        u64::from(calls) * ORDER.len() as u64,
        started.elapsed()
    );
    Ok(())
}
