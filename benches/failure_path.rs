//! The failure paths under load: two threads calling one site whose every call fails, with
//! the counters behind `resilience::stats()` on (as shipped) and off, so the difference is
//! what counting costs exactly when a dependency is down and every call takes that path.
//!
//! Two sites, both plain `fn`s (no runtime in the measurement):
//!
//! - `rate_limit_refused`: `#[rate_limited(calls = 1, period = "1h", mode = "reject")]`, its
//!   one permit spent before measuring: every call is refused (a limiter check, the refusal's
//!   counter, a `metrics` counter, a DEBUG event nobody listens to).
//! - `retry_not_retryable`: `#[retry]` around a function answering 404: every call fails
//!   once, is classified, not retried, and counted as failed.
//!
//! No `metrics` recorder and no `tracing` subscriber are installed: the facade calls are
//! their no-op forms. The time reported is wall time divided by the calls of both threads.
//!
//! ```text
//! cargo bench -p resilience-benches --bench failure_path -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::Criterion;
use resilience::{HttpError, Rejected, rate_limited, retry};

#[rate_limited(calls = 1, period = "1h", mode = "reject")]
fn refused(x: u64) -> Result<u64, Rejected> {
    Ok(black_box(x))
}

#[retry]
fn not_found(x: u64) -> Result<u64, HttpError> {
    black_box(x);
    Err(HttpError::new(404))
}

/// Runs `call` `iters` times in all on two threads started together; the wall time. Every
/// call must fail.
fn on_two_threads<E>(iters: u64, call: fn(u64) -> Result<u64, E>) -> Duration {
    let each = iters.div_ceil(2);
    let go = Barrier::new(3);
    std::thread::scope(|scope| {
        let threads = [0, 1].map(|_| {
            scope.spawn(|| {
                go.wait();
                (0..each).filter(|&i| call(i).is_err()).count() as u64
            })
        });
        go.wait();
        let start = Instant::now();
        for thread in threads {
            let failed = thread.join().expect("a benchmark thread panicked");
            assert_eq!(failed, each, "a call succeeded");
        }
        start.elapsed()
    })
}

fn failure_path(c: &mut Criterion) {
    // The one permit, spent: from here on every call is refused.
    assert!(refused(0).is_ok());
    let mut group = c.benchmark_group("failure_path_2_threads");
    // Each case with counting on, then off, so the two stand side by side.
    for (counters, on) in [("counters_on", true), ("counters_off", false)] {
        resilience::__private::set_counting(on);
        group.bench_function(format!("rate_limit_refused/{counters}"), |b| {
            b.iter_custom(|iters| on_two_threads(iters, refused));
        });
    }
    for (counters, on) in [("counters_on", true), ("counters_off", false)] {
        resilience::__private::set_counting(on);
        group.bench_function(format!("retry_not_retryable/{counters}"), |b| {
            b.iter_custom(|iters| on_two_threads(iters, not_found));
        });
    }
    resilience::__private::set_counting(true);
    group.finish();
}

// Written out rather than `criterion_group!`, whose `pub fn` trips `missing_docs`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    failure_path(&mut c);
    c.final_summary();
}
