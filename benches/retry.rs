//! `#[retry]` on the happy path (the first try succeeds), side by side with the bare call and
//! the peer crates a user would pick instead: `backon` and `tokio-retry`.
//!
//! Every case runs on a current-thread tokio runtime through criterion's
//! `to_async(&rt).iter(..)`, so each iteration is one `.await` of the call under test.
//! The contract's target: `#[retry]` allocates nothing and costs at most 1.1x `bare`.
//!
//! ```text
//! cargo bench --bench retry -- --warm-up-time 1 --measurement-time 3
//! benches/table.sh            # the same, then a markdown table of medians relative to `bare`
//! ```

use std::fmt;
use std::hint::black_box;

use backon::{ExponentialBuilder, Retryable};
use criterion::Criterion;
use tokio_retry::Retry;
use tokio_retry::strategy::ExponentialBackoff;

/// The error type of every case. Never produced: the benchmarks measure the happy path.
#[derive(Debug)]
struct MyErr;

impl fmt::Display for MyErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("my error")
    }
}

impl std::error::Error for MyErr {}

/// The call under test, with nothing around it.
async fn op(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
}

/// `op` under `#[retry]` with every default.
#[resilience::retry]
async fn op_retry(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
}

/// `op` under `#[retry]` with several keys set.
#[resilience::retry(attempts = 5, jitter = 0.2, on = [Timeout, 503])]
async fn op_retry_keys(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
}

fn happy_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let x = 42_u64;
    let mut group = c.benchmark_group("retry_happy_path");

    group.bench_function("bare", |b| {
        b.to_async(&rt).iter(|| op(black_box(x)));
    });
    group.bench_function("resilience_retry", |b| {
        b.to_async(&rt).iter(|| op_retry(black_box(x)));
    });
    group.bench_function("resilience_retry_keys", |b| {
        b.to_async(&rt).iter(|| op_retry_keys(black_box(x)));
    });
    group.bench_function("backon", |b| {
        b.to_async(&rt).iter(|| {
            let x = black_box(x);
            (move || op(x)).retry(ExponentialBuilder::default())
        });
    });
    group.bench_function("tokio_retry", |b| {
        b.to_async(&rt).iter(|| {
            let x = black_box(x);
            Retry::start(ExponentialBackoff::from_millis(100).take(3), move || op(x))
        });
    });
    group.finish();
}

// What `criterion_group!` + `criterion_main!` expand to, written out so the generated
// `pub fn` does not trip the workspace's `missing_docs` lint.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    happy_path(&mut c);
    c.final_summary();
}
