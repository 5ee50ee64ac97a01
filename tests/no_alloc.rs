//! The contract's first performance rule: `#[retry]` allocates nothing on the happy path.
//!
//! A counting global allocator (`stats_alloc`, so this file needs no `unsafe`) wraps the
//! system one; the test calls annotated functions whose first try succeeds 1000 times and
//! asserts that not one allocation happened. The file holds a single `#[test]` so no other
//! test thread allocates while it counts.

use std::alloc::System;
use std::fmt;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CALLS: u64 = 1000;

#[derive(Debug)]
struct MyErr;

impl fmt::Display for MyErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("my error")
    }
}

impl std::error::Error for MyErr {}

#[resilience::retry]
async fn async_defaults(x: u64, y: u64) -> Result<u64, MyErr> {
    Ok(black_box(x) + y)
}

#[resilience::retry(attempts = 5, jitter = 0.2, on = [Timeout, 503], max_elapsed = "10s")]
async fn async_keys(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
}

#[resilience::retry(attempts = 5, jitter = 0.2, on = [Timeout, 503])]
fn sync_keys(x: u64) -> Result<u64, MyErr> {
    Ok(black_box(x))
}

/// Polls `future` to completion on this thread. The futures here never return `Pending`.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// Allocations (and reallocations) made while running `calls`.
fn allocations(calls: impl FnOnce() -> u64) -> (usize, u64) {
    let region = Region::new(GLOBAL);
    let sum = calls();
    let change = region.change();
    (change.allocations + change.reallocations, sum)
}

#[test]
fn happy_path_allocates_nothing() {
    // A tokio runtime in context, as in a service; `max_elapsed` makes the async call read
    // tokio's clock, which needs it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let _guard = rt.enter();
    // Warm up: first calls may initialise lazily (thread locals, the policy registry).
    let _ = ready(async_defaults(1, 2));
    let _ = ready(async_keys(1));
    let _ = sync_keys(1);

    let (count, sum) = allocations(|| {
        (0..CALLS)
            .map(|i| ready(async_defaults(i, 1)).expect("first try succeeds"))
            .sum()
    });
    assert_eq!(sum, CALLS * (CALLS + 1) / 2);
    assert_eq!(
        count, 0,
        "#[retry] async fn (defaults) allocated on the happy path"
    );

    let (count, _) = allocations(|| {
        (0..CALLS)
            .map(|i| ready(async_keys(i)).expect("first try succeeds"))
            .sum()
    });
    assert_eq!(
        count, 0,
        "#[retry(...)] async fn allocated on the happy path"
    );

    let (count, _) = allocations(|| {
        (0..CALLS)
            .map(|i| sync_keys(i).expect("first try succeeds"))
            .sum()
    });
    assert_eq!(count, 0, "#[retry(...)] fn allocated on the happy path");

    // The counter works: one boxed value is one allocation.
    let (count, _) = allocations(|| *black_box(Box::new(1_u64)));
    assert_eq!(count, 1);
}
