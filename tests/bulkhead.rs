//! Behaviour of `#[bulkhead]` through the facade, on tokio's paused clock: how many calls are in
//! flight at once (an atomic gauge in the body), when each call starts and ends relative to the
//! test's start, and when a refused call learns it was refused, all asserted exactly.
//!
//! Each test uses its own functions and its own policy names: a site is a `static`, shared by
//! every test of this binary.

mod common;

use common::{ApiError, lock, ms};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::bulkhead::BulkheadPatch;
use resilience::registry::{self, NamedPolicy};
use resilience::{HttpError, Rejected, bulkhead, retry};
use tokio::time::{Instant, sleep};

// ---------------------------------------------------------------------------------------------
// Recording calls in flight
// ---------------------------------------------------------------------------------------------

/// Calls in flight now and at most, and when each call (by id) ran.
struct Gauge {
    start: Instant,
    now: AtomicUsize,
    max: AtomicUsize,
    /// (id, started, finished), offsets from `start`.
    calls: Mutex<Vec<(usize, Duration, Duration)>>,
}

impl Gauge {
    fn new() -> Arc<Self> {
        Arc::new(Gauge {
            start: Instant::now(),
            now: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
            calls: Mutex::new(Vec::new()),
        })
    }

    /// The body of a call: in flight for `hold`, recorded under `id`.
    async fn run(&self, id: usize, hold: Duration) {
        let started = self.start.elapsed();
        let in_flight = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(in_flight, Ordering::SeqCst);
        sleep(hold).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        lock(&self.calls).push((id, started, self.start.elapsed()));
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    fn in_flight(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    /// The recorded calls, sorted by id.
    fn calls(&self) -> Vec<(usize, Duration, Duration)> {
        let mut calls = lock(&self.calls).clone();
        calls.sort();
        calls
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

const FULL: Result<(), ApiError> = Err(ApiError::Rejected(Rejected::BulkheadFull));

/// Runs `call` and returns its result with the offset at which it returned.
async fn timed<F: Future<Output = Result<(), ApiError>>>(
    gauge: &Gauge,
    call: F,
) -> (Result<(), ApiError>, Duration) {
    let result = call.await;
    (result, gauge.elapsed())
}

/// Adds one policy to the registry, keeping the other tests' policies.
fn install_bulkhead(name: &str, patch: BulkheadPatch) {
    registry::set(name, NamedPolicy::with_bulkhead(patch));
}

// ---------------------------------------------------------------------------------------------
// Concurrency bound
// ---------------------------------------------------------------------------------------------

#[bulkhead(max_concurrent = 10, max_wait = "10s")]
async fn ten_at_a_time(gauge: Arc<Gauge>, id: usize) -> Result<(), ApiError> {
    gauge.run(id, ms(100)).await;
    Ok(())
}

/// 200 tasks at once through `max_concurrent = 10`, each in flight for 100ms: never more than
/// 10 in flight (and 10 reached), in 20 waves of 10 in arrival order, all done at exactly 2s.
#[tokio::test(start_paused = true)]
async fn two_hundred_tasks_run_ten_at_a_time_in_waves() {
    let gauge = Gauge::new();
    // A current-thread runtime polls spawned tasks in spawn order: task k queues k-th.
    let tasks: Vec<_> = (0..200)
        .map(|id| tokio::spawn(ten_at_a_time(Arc::clone(&gauge), id)))
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(()));
    }
    assert_eq!(gauge.max(), 10);
    assert_eq!(gauge.in_flight(), 0);
    let expected: Vec<(usize, Duration, Duration)> = (0..200)
        .map(|id| {
            let wave = (id / 10) as u64;
            (id, ms(100 * wave), ms(100 * (wave + 1)))
        })
        .collect();
    assert_eq!(gauge.calls(), expected);
    assert_eq!(gauge.elapsed(), ms(2000));
}

// ---------------------------------------------------------------------------------------------
// Refusals: max_wait
// ---------------------------------------------------------------------------------------------

#[bulkhead(max_concurrent = 2)]
async fn no_waiting(gauge: &Gauge, id: usize, hold: Duration) -> Result<(), ApiError> {
    gauge.run(id, hold).await;
    Ok(())
}

/// `max_wait` defaults to zero: a call that finds every slot taken is refused at once with
/// `Rejected::BulkheadFull`; once a slot is free, calls get in again.
#[tokio::test(start_paused = true)]
async fn full_bulkhead_refuses_at_once_by_default() {
    let gauge = Gauge::new();
    let (first, second, third) = tokio::join!(
        timed(&gauge, no_waiting(&gauge, 0, ms(1000))),
        timed(&gauge, no_waiting(&gauge, 1, ms(1000))),
        timed(&gauge, no_waiting(&gauge, 2, ms(1000))),
    );
    assert_eq!(first, (Ok(()), ms(1000)));
    assert_eq!(second, (Ok(()), ms(1000)));
    assert_eq!(third, (FULL, ms(0)), "refused without waiting");
    assert_eq!(gauge.max(), 2);

    assert_eq!(no_waiting(&gauge, 3, ms(0)).await, Ok(()));
    assert_eq!(
        gauge.calls(),
        vec![
            (0, ms(0), ms(1000)),
            (1, ms(0), ms(1000)),
            (3, ms(1000), ms(1000)),
        ]
    );
}

#[bulkhead(max_concurrent = 1, max_wait = "50ms")]
async fn short_wait(gauge: &Gauge, id: usize, hold: Duration) -> Result<(), ApiError> {
    gauge.run(id, hold).await;
    Ok(())
}

/// `max_wait = "50ms"`: a call waits for a slot up to 50ms, and is refused at exactly 50ms
/// if none frees up; a slot freed within the wait is taken at that instant.
#[tokio::test(start_paused = true)]
async fn full_bulkhead_refuses_after_exactly_max_wait() {
    let gauge = Gauge::new();
    let (holder, waiter) = tokio::join!(
        timed(&gauge, short_wait(&gauge, 0, ms(1000))),
        timed(&gauge, short_wait(&gauge, 1, ms(0))),
    );
    assert_eq!(holder, (Ok(()), ms(1000)));
    assert_eq!(waiter, (FULL, ms(50)));

    // From 1s: the slot is held for 30ms, within the waiter's 50ms.
    let (holder, waiter) = tokio::join!(
        timed(&gauge, short_wait(&gauge, 2, ms(30))),
        timed(&gauge, short_wait(&gauge, 3, ms(10))),
    );
    assert_eq!(holder, (Ok(()), ms(1030)));
    assert_eq!(waiter, (Ok(()), ms(1040)));
    assert_eq!(
        gauge.calls(),
        vec![
            (0, ms(0), ms(1000)),
            (2, ms(1000), ms(1030)),
            (3, ms(1030), ms(1040)),
        ]
    );
    assert_eq!(gauge.max(), 1);
}

// ---------------------------------------------------------------------------------------------
// Named bulkheads shared through `policy`
// ---------------------------------------------------------------------------------------------

#[bulkhead(max_concurrent = 3, policy = "bulkhead.shared")]
async fn shared_upload(gauge: &Gauge, id: usize, hold: Duration) -> Result<(), ApiError> {
    gauge.run(id, hold).await;
    Ok(())
}

#[bulkhead(max_concurrent = 3, policy = "bulkhead.shared")]
async fn shared_download(gauge: &Gauge, id: usize, hold: Duration) -> Result<(), ApiError> {
    gauge.run(id, hold).await;
    Ok(())
}

/// Two functions naming one policy share one set of 3 slots: with two uploads and one
/// download in flight, the next call of either is refused; once they finish, both get in.
#[tokio::test(start_paused = true)]
async fn two_functions_naming_a_policy_share_one_bulkhead() {
    let gauge = Gauge::new();
    let (a, b, c, d, e) = tokio::join!(
        timed(&gauge, shared_upload(&gauge, 0, ms(100))),
        timed(&gauge, shared_download(&gauge, 1, ms(100))),
        timed(&gauge, shared_upload(&gauge, 2, ms(100))),
        timed(&gauge, shared_download(&gauge, 3, ms(100))),
        timed(&gauge, shared_upload(&gauge, 4, ms(100))),
    );
    assert_eq!(a, (Ok(()), ms(100)));
    assert_eq!(b, (Ok(()), ms(100)));
    assert_eq!(c, (Ok(()), ms(100)));
    assert_eq!(d, (FULL, ms(0)));
    assert_eq!(e, (FULL, ms(0)));
    assert_eq!(gauge.max(), 3);

    let (f, g) = tokio::join!(
        timed(&gauge, shared_download(&gauge, 5, ms(0))),
        timed(&gauge, shared_upload(&gauge, 6, ms(0))),
    );
    assert_eq!((f, g), ((Ok(()), ms(100)), (Ok(()), ms(100))));
}

#[bulkhead(max_concurrent = 5, policy = "bulkhead.override")]
async fn overridden(gauge: &Gauge, id: usize, hold: Duration) -> Result<(), ApiError> {
    gauge.run(id, hold).await;
    Ok(())
}

/// An installed policy's `bulkhead` section overrides the inline `max_concurrent = 5` (2
/// slots), and a new install resizes the shared bulkhead in place (4 slots, and a `max_wait`).
#[tokio::test(start_paused = true)]
async fn installed_policy_overrides_and_resizes_the_bulkhead() {
    install_bulkhead(
        "bulkhead.override",
        BulkheadPatch {
            max_concurrent: Some(2),
            ..BulkheadPatch::default()
        },
    );
    let gauge = Gauge::new();
    let (a, b, c) = tokio::join!(
        timed(&gauge, overridden(&gauge, 0, ms(100))),
        timed(&gauge, overridden(&gauge, 1, ms(100))),
        timed(&gauge, overridden(&gauge, 2, ms(100))),
    );
    assert_eq!([a, b], [(Ok(()), ms(100)), (Ok(()), ms(100))]);
    assert_eq!(c, (FULL, ms(0)));

    install_bulkhead(
        "bulkhead.override",
        BulkheadPatch {
            max_concurrent: Some(4),
            max_wait: Some(ms(1000)),
        },
    );
    let (a, b, c, d, e) = tokio::join!(
        timed(&gauge, overridden(&gauge, 3, ms(100))),
        timed(&gauge, overridden(&gauge, 4, ms(100))),
        timed(&gauge, overridden(&gauge, 5, ms(100))),
        timed(&gauge, overridden(&gauge, 6, ms(100))),
        timed(&gauge, overridden(&gauge, 7, ms(100))),
    );
    // Four in flight from 100ms; the fifth waits (max_wait 1s now) and runs when one is done.
    assert_eq!(
        [a, b, c, d, e],
        [
            (Ok(()), ms(200)),
            (Ok(()), ms(200)),
            (Ok(()), ms(200)),
            (Ok(()), ms(200)),
            (Ok(()), ms(300)),
        ]
    );
    assert_eq!(gauge.max(), 4);
}

// ---------------------------------------------------------------------------------------------
// Stacking and blocking functions
// ---------------------------------------------------------------------------------------------

#[bulkhead(max_concurrent = 1)]
#[retry(attempts = 3, backoff = "constant", base = "1s")]
async fn slot_across_retries(gauge: &Gauge, id: usize, fail_first: bool) -> Result<(), ApiError> {
    gauge.run(id, ms(0)).await;
    let tries = lock(&gauge.calls).len();
    if fail_first && tries == 1 {
        return Err(ApiError::Http(HttpError::new(503)));
    }
    Ok(())
}

/// `#[bulkhead]` above `#[retry]` (the recommended order): a call keeps its slot while it
/// sleeps between tries, so another call arriving meanwhile is refused.
#[tokio::test(start_paused = true)]
async fn bulkhead_over_retry_holds_the_slot_during_backoff() {
    let gauge = Gauge::new();
    let (retried, refused) = tokio::join!(
        timed(&gauge, slot_across_retries(&gauge, 0, true)),
        timed(&gauge, async {
            sleep(ms(500)).await;
            slot_across_retries(&gauge, 1, false).await
        }),
    );
    assert_eq!(retried, (Ok(()), ms(1000)));
    assert_eq!(
        refused,
        (FULL, ms(500)),
        "the first call was in its backoff"
    );
    assert_eq!(
        gauge.calls(),
        vec![(0, ms(0), ms(0)), (0, ms(1000), ms(1000))]
    );
}

#[bulkhead(max_concurrent = 1)]
fn sync_nested(depth: u32) -> Result<u32, ApiError> {
    if depth == 0 {
        Ok(0)
    } else {
        sync_nested(depth - 1).map(|inner| inner + 1)
    }
}

/// A plain `fn` under `#[bulkhead]`: a call made while the only slot is held (here, by the
/// caller itself) is refused with `BulkheadFull`; the slot is released when the call returns.
#[test]
fn sync_fn_is_refused_while_the_slot_is_held() {
    assert_eq!(sync_nested(0), Ok(0));
    assert_eq!(
        sync_nested(1),
        Err(ApiError::Rejected(Rejected::BulkheadFull))
    );
    assert_eq!(sync_nested(0), Ok(0));
}
