//! The pipeline on the happy path (every call admitted, the first try succeeds): the closed
//! `#[circuit_breaker]`, `#[timeout]`, and the full `#[resilient]` stack, each side by side
//! with the bare call and with what a user would write instead (`tokio::time::timeout`; the
//! same stack built from `tower` 0.5 layers around a `tower::Service`).
//!
//! Every case runs on a current-thread tokio runtime through criterion's `to_async(&rt)`, so
//! each iteration is one `.await` of the call under test. The callee is trivial
//! (`Ok(black_box(x))`), as in `retry.rs`'s first fixture, so every instruction a wrapper adds
//! shows. The groups:
//!
//! - `pipeline_breaker`: `bare`, and the same fn under
//!   `#[circuit_breaker(failure_rate = 0.5, min_calls = 10, window = 20, open_for = "30s")]`,
//!   which stays closed (every call succeeds).
//! - `pipeline_timeout`: `bare`, the fn under `#[timeout("3s")]`, and `tokio::time::timeout`
//!   written by hand around the bare call (what `#[timeout]` runs underneath).
//! - `pipeline_stack`: retry (3 attempts, 100 ms base) + rate limit (10^9 calls per second:
//!   every call admitted at once) + circuit breaker + timeout (3 s), in the pipeline's order
//!   rate limit -> retry -> breaker -> timeout:
//!   - `resilience_resilient`: inline `#[resilient(retry(..), rate_limit(..),
//!     circuit_breaker(..), timeout = "3s")]`, no policy;
//!   - `resilience_resilient_policy_off`: `#[resilient(policy = "bench")]` with no policy
//!     loaded: every section (bulkhead included) is in place and does nothing;
//!   - `resilience_resilient_policy_loaded`: the same fn after `resilience::config::load_str`
//!     installed a `bench` policy with `retry`, `rate_limit`, `circuit_breaker` and `timeout`
//!     sections of the inline stack's values (measured after the `_off` case: the policy
//!     stays installed for the rest of the process);
//!   - `tower`: `ServiceBuilder` with `rate_limit` (10^9 per second), `retry` (a `Policy`
//!     giving 3 attempts with a doubling 100 ms sleep), `concurrency_limit` (10^6, in place of
//!     a breaker, which tower lacks) and `timeout` (3 s) around `service_fn` of the bare fn;
//!     each iteration is `ready().await` then `call(x).await`, on one service built per
//!     sample outside the timing (`RateLimit` is not `Clone`, so a user keeps one service
//!     and calls it through `&mut`; a `Buffer` would add a channel and a task per call). The
//!     layers are in the pipeline's order too: `Retry` clones its inner service on every
//!     call, so it cannot sit outside the non-`Clone` `RateLimit` without a `Buffer`.
//!
//! ```text
//! cargo bench -p resilience-benches --bench pipeline -- --warm-up-time 1 --measurement-time 3
//! benches/table.sh pipeline   # the same, then markdown tables of medians relative to `bare`
//! ```
//!
//! Before measuring, the bench prints the size of each case's future (`size_of_val`).

use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use resilience::Rejected;
use tower::retry::Policy;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// The error type of every case: it can carry a refusal, as `#[resilient]` needs. Never
/// produced: the benchmarks measure the happy path.
#[derive(Debug)]
struct MyErr;

impl fmt::Display for MyErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("my error")
    }
}

impl std::error::Error for MyErr {}

impl From<Rejected> for MyErr {
    fn from(_: Rejected) -> Self {
        MyErr
    }
}

/// The `bench` policy of `resilience_resilient_policy_loaded`: the inline stack's values.
const POLICY: &str = "\
policies:
  bench:
    retry: { attempts: 3, base: 100ms }
    rate_limit: { calls: 1000000000, period: 1s }
    circuit_breaker: { min_calls: 10, window: 20 }
    timeout: 3s
";

// ---------------------------------------------------------------------------------------------
// The functions
// ---------------------------------------------------------------------------------------------

/// The call under test, with nothing around it.
async fn op(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
}

/// `op` under a closed `#[circuit_breaker]`.
#[resilience::circuit_breaker(failure_rate = 0.5, min_calls = 10, window = 20, open_for = "30s")]
async fn op_breaker(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
}

/// `op` under `#[timeout]`.
#[resilience::timeout("3s")]
async fn op_timeout(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
}

/// `op` under the full inline stack (no policy, no cache).
#[resilience::resilient(
    retry(attempts = 3, base = "100ms"),
    rate_limit(calls = 1_000_000_000, period = "1s"),
    circuit_breaker(min_calls = 10, window = 20),
    timeout = "3s"
)]
async fn op_resilient(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
}

/// `op` under `#[resilient]` naming the `bench` policy: every section in place, off until
/// the policy is loaded.
#[resilience::resilient(policy = "bench")]
async fn op_policy(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
}

/// `op` under `tokio::time::timeout`, written by hand.
async fn op_tokio_timeout(x: u64) -> Result<u64, MyErr> {
    match tokio::time::timeout(Duration::from_secs(3), op(x)).await {
        Ok(result) => result,
        Err(_) => Err(MyErr),
    }
}

// ---------------------------------------------------------------------------------------------
// The tower stack
// ---------------------------------------------------------------------------------------------

/// tower's retry policy of the stack: retries any error, 3 attempts in all, sleeping 100 ms,
/// then 200 ms. `Retry` clones the policy for each request, so the count starts afresh.
#[derive(Debug, Clone)]
struct Attempts {
    retries_left: u32,
    delay: Duration,
}

impl<Res, E> Policy<u64, Res, E> for Attempts {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _req: &mut u64, result: &mut Result<Res, E>) -> Option<Self::Future> {
        if result.is_ok() || self.retries_left == 0 {
            return None;
        }
        self.retries_left -= 1;
        let sleep = tokio::time::sleep(self.delay);
        self.delay *= 2;
        Some(sleep)
    }

    fn clone_request(&mut self, req: &u64) -> Option<u64> {
        Some(*req)
    }
}

/// The stack as tower layers, outermost first, around `op`.
fn tower_stack() -> impl Service<u64, Response = u64, Error = BoxError> {
    ServiceBuilder::new()
        .rate_limit(1_000_000_000, Duration::from_secs(1))
        .retry(Attempts {
            retries_left: 2,
            delay: Duration::from_millis(100),
        })
        .concurrency_limit(1_000_000)
        .timeout(Duration::from_secs(3))
        .service_fn(op)
}

/// `iters` calls through a fresh tower stack, each `ready().await` then `call(x).await`, as
/// criterion's `iter` times a loop of awaits; returns the time of the loop.
async fn tower_loop(iters: u64, x: u64) -> Duration {
    let mut service = tower_stack();
    let start = Instant::now();
    for _ in 0..iters {
        let result = match service.ready().await {
            Ok(ready) => ready.call(black_box(x)).await,
            Err(error) => Err(error),
        };
        black_box(result.ok());
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------------------------
// The groups
// ---------------------------------------------------------------------------------------------

fn breaker(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let x = 42_u64;
    let mut group = c.benchmark_group("pipeline_breaker");
    group.bench_function("bare", |b| {
        b.to_async(rt).iter(|| op(black_box(x)));
    });
    group.bench_function("resilience_circuit_breaker", |b| {
        b.to_async(rt).iter(|| op_breaker(black_box(x)));
    });
    group.finish();
}

fn timeout(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let x = 42_u64;
    let mut group = c.benchmark_group("pipeline_timeout");
    group.bench_function("bare", |b| {
        b.to_async(rt).iter(|| op(black_box(x)));
    });
    group.bench_function("resilience_timeout", |b| {
        b.to_async(rt).iter(|| op_timeout(black_box(x)));
    });
    group.bench_function("tokio_timeout", |b| {
        b.to_async(rt).iter(|| op_tokio_timeout(black_box(x)));
    });
    group.finish();
}

fn stack(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let x = 42_u64;
    let mut group = c.benchmark_group("pipeline_stack");
    group.bench_function("bare", |b| {
        b.to_async(rt).iter(|| op(black_box(x)));
    });
    group.bench_function("resilience_resilient", |b| {
        b.to_async(rt).iter(|| op_resilient(black_box(x)));
    });
    group.bench_function("resilience_resilient_policy_off", |b| {
        b.to_async(rt).iter(|| op_policy(black_box(x)));
    });
    if let Err(errors) = resilience::config::load_str(POLICY) {
        panic!("the `bench` policy is refused: {errors}");
    }
    group.bench_function("resilience_resilient_policy_loaded", |b| {
        b.to_async(rt).iter(|| op_policy(black_box(x)));
    });
    group.bench_function("tower", |b| {
        b.to_async(rt).iter_custom(|iters| tower_loop(iters, x));
    });
    group.finish();
}

/// The size of the response future of `service`.
fn response_future_size<S: Service<u64>>(_service: &S) -> usize {
    size_of::<S::Future>()
}

/// The size in bytes of each case's future, printed once before measuring.
fn future_sizes(rt: &tokio::runtime::Runtime) {
    let x = 42_u64;
    // `RateLimit::new` arms a tokio sleep: it needs the runtime's context.
    let tower = rt.block_on(async { response_future_size(&tower_stack()) });
    let sizes = [
        ("bare", size_of_val(&op(x))),
        ("resilience_circuit_breaker", size_of_val(&op_breaker(x))),
        ("resilience_timeout", size_of_val(&op_timeout(x))),
        ("tokio_timeout", size_of_val(&op_tokio_timeout(x))),
        ("resilience_resilient", size_of_val(&op_resilient(x))),
        ("resilience_resilient_policy", size_of_val(&op_policy(x))),
        ("tower (the call's future)", tower),
    ];
    eprintln!("future sizes in bytes:");
    for (name, size) in sizes {
        eprintln!("  {name:<28} {size:>4}");
    }
}

// What `criterion_group!` + `criterion_main!` expand to, written out so the generated
// `pub fn` does not trip the workspace's `missing_docs` lint.
fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    future_sizes(&rt);
    let mut c = Criterion::default().configure_from_args();
    breaker(&mut c, &rt);
    timeout(&mut c, &rt);
    stack(&mut c, &rt);
    c.final_summary();
}
