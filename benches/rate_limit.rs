//! The rate limiter's admitted check, side by side with `governor` 0.10, the peer crate a user
//! would pick instead.
//!
//! Groups (each has a `resilience` and a `governor` case; the quota is so large that every
//! check is admitted, so each case measures the admitted path: the clock read and one CAS):
//!
//! - `rate_limit_check`: one thread, one direct limiter (`RateLimiter::check_verdict(None)`
//!   against governor's `RateLimiter::direct(..).check()`; also our `check(None)`, whose
//!   `Result<Duration, Duration>` costs `black_box` two more stores per check).
//! - `rate_limit_2_threads`: two threads hammering one shared limiter; the time reported is
//!   wall time divided by the checks of both threads, so checks/s in total is 1 / time.
//! - `rate_limit_keyed_1000`: one thread cycling through 1000 `u64` keys. Our case hashes the
//!   key with `key_hash` inside the measured loop, as governor hashes the key itself.
//! - `rate_limit_clock`: what one clock read costs (std, tokio, and governor's quanta clock),
//!   for reference: the clock read is most of a check.
//!
//! ```text
//! cargo bench -p resilience-benches --bench rate_limit -- --warm-up-time 1 --measurement-time 3
//! benches/table.sh rate_limit     # the same, then a markdown table of ours / governor
//! ```

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::Criterion;
use governor::clock::{Clock, QuantaClock};
use governor::{Quota, RateLimiter as Governor};
use resilience::rate_limit::{LimitMode, RateLimitSpec, RateLimiter, key_hash};

/// Number of distinct keys of the keyed group.
const KEYS: u64 = 1000;

/// Our limiter with a quota that admits every check at once.
fn ours() -> RateLimiter {
    RateLimiter::new(
        // 10^9 per second (a 1 ns interval) and a burst of 4.3 s worth: every check is
        // admitted and reserves with a CAS, as governor's does. (`u32::MAX` calls would be
        // the unlimited limiter, which reserves nothing.)
        RateLimitSpec::new(1_000_000_000, Duration::from_secs(1))
            .burst(u32::MAX)
            .mode(LimitMode::Reject),
    )
}

/// governor's quota that admits every check at once.
fn quota() -> Quota {
    Quota::per_second(NonZeroU32::MAX)
}

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit_check");
    let limiter = ours();
    group.bench_function("resilience", |b| {
        b.iter(|| black_box(limiter.check_verdict(black_box(None))));
    });
    // The same check through `check`, whose `Result<Duration, Duration>` is three words for
    // `black_box` to write where a `Verdict` (and governor's `Ok(())`) is one.
    group.bench_function("resilience_check_duration", |b| {
        b.iter(|| black_box(limiter.check(black_box(None))));
    });
    let governor = Governor::direct(quota());
    group.bench_function("governor", |b| {
        b.iter(|| black_box(governor.check()));
    });
    group.finish();
}

/// Runs `check` `iters` times in total, split over two threads started together; returns the
/// wall time. Panics if a check was refused (the benchmark would then measure another path).
fn two_threads(iters: u64, check: &(impl Fn() -> bool + Sync)) -> Duration {
    let start_line = Barrier::new(3);
    let per_thread = iters.div_ceil(2);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let start_line = &start_line;
                scope.spawn(move || {
                    start_line.wait();
                    let mut admitted = 0u64;
                    for _ in 0..per_thread {
                        admitted += u64::from(check());
                    }
                    admitted
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        for worker in workers {
            let admitted = worker.join().expect("a benchmark thread panicked");
            assert_eq!(admitted, per_thread, "a check was refused");
        }
        start.elapsed()
    })
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit_2_threads");
    let limiter = ours();
    group.bench_function("resilience", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                black_box(limiter.check_verdict(None)).is_admitted()
            })
        });
    });
    let governor = Governor::direct(quota());
    group.bench_function("governor", |b| {
        b.iter_custom(|iters| two_threads(iters, &|| black_box(governor.check()).is_ok()));
    });
    group.finish();
}

fn keyed(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit_keyed_1000");
    let limiter = ours();
    let mut key = 0u64;
    group.bench_function("resilience", |b| {
        b.iter(|| {
            key = if key + 1 == KEYS { 0 } else { key + 1 };
            black_box(limiter.check_verdict(Some(key_hash(&black_box(key)))))
        });
    });
    let governor = Governor::keyed(quota());
    let mut key = 0u64;
    group.bench_function("governor", |b| {
        b.iter(|| {
            key = if key + 1 == KEYS { 0 } else { key + 1 };
            black_box(governor.check_key(&black_box(key)))
        });
    });
    group.finish();
    assert_eq!(limiter.tracked_keys(), KEYS as usize);
    assert_eq!(governor.len(), KEYS as usize);
}

fn clocks(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit_clock");
    group.bench_function("std_instant_now", |b| b.iter(Instant::now));
    group.bench_function("tokio_instant_now", |b| b.iter(tokio::time::Instant::now));
    let quanta = QuantaClock::default();
    group.bench_function("quanta_now", |b| b.iter(|| quanta.now()));
    group.finish();
}

// What `criterion_group!` + `criterion_main!` expand to, written out so the generated
// `pub fn` does not trip the workspace's `missing_docs` lint.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    uncontended(&mut c);
    contended(&mut c);
    keyed(&mut c);
    clocks(&mut c);
    c.final_summary();
}
