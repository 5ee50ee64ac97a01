//! `#[retry(retry_if_ok = ...)]`: an `Ok` value the predicate retries is retried on the
//! same schedule as an error, and the last one is returned when the attempts are spent.

use std::sync::Mutex;
use std::time::Duration;

use resilience::{HttpError, retry};
use tokio::time::Instant;

/// When each try of the function under test started, from the test's start.
static TRIES: Mutex<Vec<Duration>> = Mutex::new(Vec::new());

fn tried(started: Instant) -> usize {
    let mut tries = TRIES.lock().unwrap_or_else(|e| e.into_inner());
    tries.push(started.elapsed());
    tries.len()
}

fn take_tries() -> Vec<Duration> {
    std::mem::take(&mut *TRIES.lock().unwrap_or_else(|e| e.into_inner()))
}

#[derive(Debug, Clone, PartialEq)]
enum Job {
    Pending(usize),
    Done(usize),
}

fn is_pending(job: &Job) -> bool {
    matches!(job, Job::Pending(_))
}

/// Pending for the first `pending` tries, then done.
#[retry(attempts = 4, base = "100ms", retry_if_ok = is_pending)]
async fn poll(started: Instant, pending: usize) -> Result<Job, HttpError> {
    let try_number = tried(started);
    Ok(if try_number <= pending {
        Job::Pending(try_number)
    } else {
        Job::Done(try_number)
    })
}

/// A 503, then pending values, then done: errors and retried values share one schedule.
#[retry(attempts = 4, base = "10ms", retry_if_ok = is_pending)]
fn poll_blocking(tries: &mut Vec<usize>) -> Result<Job, HttpError> {
    tries.push(tries.len() + 1);
    match tries.len() {
        1 => Err(HttpError::new(503)),
        n @ 2..=3 => Ok(Job::Pending(n)),
        n => Ok(Job::Done(n)),
    }
}

const MS: fn(u64) -> Duration = Duration::from_millis;

// One test: the tries are recorded in one static.
#[tokio::test(start_paused = true)]
async fn an_ok_value_is_retried_on_the_schedule_and_the_last_is_returned() {
    // Retried twice, on the exponential schedule (100 ms, then 200 ms), then done.
    let started = Instant::now();
    assert_eq!(poll(started, 2).await, Ok(Job::Done(3)));
    assert_eq!(take_tries(), [MS(0), MS(100), MS(300)]);
    assert_eq!(started.elapsed(), MS(300));

    // Pending on every try: the four attempts are spent and the last value is returned.
    let started = Instant::now();
    assert_eq!(poll(started, 10).await, Ok(Job::Pending(4)));
    assert_eq!(take_tries(), [MS(0), MS(100), MS(300), MS(700)]);
    assert_eq!(started.elapsed(), MS(700));

    // A value the predicate does not retry is returned at once.
    let started = Instant::now();
    assert_eq!(poll(started, 0).await, Ok(Job::Done(1)));
    assert_eq!(take_tries(), [MS(0)]);
}

#[test]
fn a_blocking_fn_retries_errors_and_values_alike() {
    let mut tries = Vec::new();
    let started = std::time::Instant::now();
    assert_eq!(poll_blocking(&mut tries), Ok(Job::Done(4)));
    assert_eq!(tries, [1, 2, 3, 4]);
    // 10 + 20 + 40 ms of the thread's sleeps (their exact lengths: the executor's unit tests).
    assert!(started.elapsed() >= MS(70));
}
