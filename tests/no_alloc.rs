//! The contract's first performance rule: `#[retry]` allocates nothing on the happy path.
//!
//! A counting global allocator (`stats_alloc`, so this file needs no `unsafe`) wraps the
//! system one; the test calls annotated functions whose first try succeeds 1000 times and
//! asserts that not one allocation happened; then a refused call, which emits an event, with
//! and without a listener (`resilience::events()`). The file holds a single `#[test]` so no other
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

/// The error of the refused calls below.
#[derive(Debug)]
struct Refused;

impl From<resilience::Rejected> for Refused {
    fn from(_: resilience::Rejected) -> Self {
        Refused
    }
}

/// Admits one call an hour: every later call is refused, an event's path.
#[resilience::rate_limited(calls = 1, period = "1h", mode = "reject")]
fn hourly() -> Result<(), Refused> {
    Ok(())
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

    // A refusal emits an event (`resilience::events()`): without a listener it is one
    // relaxed load, and no event is built. The refusal's own path allocates one thing, the
    // label list of its `metrics` counter (the facade builds a key even with no recorder):
    // measured alone first, it is all a refusal allocates.
    let site = black_box("no_alloc::hourly");
    let (labels, _) = allocations(|| {
        for _ in 0..CALLS {
            metrics::counter!("resilience_probe_total", "site" => site, "policy" => "")
                .increment(1);
        }
        0
    });
    assert_eq!(labels, CALLS as usize, "one label list per counted refusal");
    assert!(hourly().is_ok());
    assert!(hourly().is_err());
    let refusals = || (0..CALLS).map(|_| u64::from(hourly().is_err())).sum();
    let (count, refused) = allocations(refusals);
    assert_eq!(refused, CALLS);
    assert_eq!(
        count, labels,
        "a refusal without a listener allocated for its event"
    );

    // With a listener, the event is built on the stack and lent to it: still nothing.
    let heard = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = std::sync::Arc::clone(&heard);
    let subscription = resilience::events().on_rejected(move |_| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    assert!(hourly().is_err()); // the listener list's first read on this thread
    let (count, refused) = allocations(refusals);
    assert_eq!(refused, CALLS);
    assert_eq!(heard.load(std::sync::atomic::Ordering::Relaxed), CALLS + 1);
    assert_eq!(
        count, labels,
        "a refusal told to a listener allocated for its event"
    );
    drop(subscription);

    // The counter works: one boxed value is one allocation.
    let (count, _) = allocations(|| *black_box(Box::new(1_u64)));
    assert_eq!(count, 1);
}
