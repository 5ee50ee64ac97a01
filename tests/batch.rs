//! Behaviour of `resilience::batch` on tokio's paused clock: what the report holds (successes,
//! dead letters with their last error and exact tries), the concurrency cap, the progress
//! callback, cancellation by dropping the batch, bounded input consumption on a long lazy
//! iterator, and the dead-letter file round trip (write, read back, replay).
//!
//! Under a paused clock every sleep ends exactly on time and a slot freed at `t` is refilled at
//! `t`, so the batch's wall time is the list schedule of the inputs' durations: exact.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use resilience::batch::{DeadLetter, DeadLetterRecord, Progress, Success};
use resilience::batch::{read_dead_letters, write_dead_letters};
use resilience::{HttpError, retry};
use tokio::time::sleep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The wall time of running jobs of these durations, in input order, `slots` at a time, each
/// new job starting the moment a slot frees (what a batch does on a paused clock).
fn list_schedule(durations: impl IntoIterator<Item = Duration>, slots: usize) -> Duration {
    let mut free_at: BinaryHeap<Reverse<Duration>> =
        (0..slots).map(|_| Reverse(Duration::ZERO)).collect();
    let mut end = Duration::ZERO;
    for duration in durations {
        let Reverse(start) = free_at.pop().unwrap_or(Reverse(Duration::ZERO));
        end = end.max(start + duration);
        free_at.push(Reverse(start + duration));
    }
    end
}

/// How many tries each input has had, so a function can fail differently per try.
#[derive(Default)]
struct Tries(Mutex<HashMap<u32, u32>>);

impl Tries {
    /// Counts one more try of `input`; returns its number (1 for the first).
    fn next(&self, input: u32) -> u32 {
        let mut tries = lock(&self.0);
        let count = tries.entry(input).or_insert(0);
        *count += 1;
        *count
    }
}

fn url(input: u32, attempt: u32) -> String {
    format!("http://test/{input}?try={attempt}")
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

/// By input `n`: `n % 3 == 0` succeeds with `n * 10` (input 6 after one 503), `n % 3 == 1`
/// always answers 503 (retryable), `n % 3 == 2` answers 404 (not retryable). Each error names
/// its try in its URL, so the report shows which error was the last.
#[retry(attempts = 3, base = "10ms")]
async fn mixed(n: u32, tries: &Tries) -> Result<u32, HttpError> {
    let attempt = tries.next(n);
    match n % 3 {
        0 if n == 6 && attempt == 1 => Err(HttpError::new(503).with_url(url(n, attempt))),
        0 => Ok(n * 10),
        1 => Err(HttpError::new(503).with_url(url(n, attempt))),
        _ => Err(HttpError::new(404).with_url(url(n, attempt))),
    }
}

fn dead(input: u32, status: u16, tries: u32) -> DeadLetter<u32, HttpError> {
    DeadLetter {
        index: input as usize,
        input,
        error: HttpError::new(status).with_url(url(input, tries)),
        tries,
    }
}

#[tokio::test(start_paused = true)]
async fn report_holds_successes_in_order_and_dead_letters_with_last_error_and_tries() {
    let tries = Tries::default();
    let report = resilience::batch(0..10u32, |n| mixed(n, &tries))
        .concurrency(3)
        .ordered(true)
        .await;

    let successes: Vec<Success<u32, u32>> = [0, 3, 6, 9]
        .into_iter()
        .map(|n| Success {
            index: n as usize,
            input: n,
            output: n * 10,
        })
        .collect();
    assert_eq!(report.successes, successes);
    assert_eq!(
        report.dead_letters,
        [
            dead(1, 503, 3), // retryable: all 3 attempts, the last error is the 3rd try's
            dead(2, 404, 1), // not retryable: returned at once
            dead(4, 503, 3),
            dead(5, 404, 1),
            dead(7, 503, 3),
            dead(8, 404, 1),
        ]
    );
    assert_eq!((report.succeeded, report.failed), (4, 6));
    // durations 0, 30 (10ms + 20ms backoff), 0, 0, 30, 0, 10 (one 10ms backoff), 30, 0, 0:
    // inputs 1, 4 and 6 hold the 3 slots from 0; 7 starts when 6 ends at 10 and ends at 40
    assert_eq!(report.elapsed, ms(40));
    assert_eq!(
        report.elapsed,
        list_schedule([0, 30, 0, 0, 30, 0, 10, 30, 0, 0].map(ms), 3)
    );
}

/// Without `ordered`, successes come in completion order; dead letters are in input order
/// either way.
#[tokio::test(start_paused = true)]
async fn unordered_successes_come_in_completion_order() {
    let delays = [30u64, 10, 20, 5];
    let report = resilience::batch(delays, |delay| async move {
        sleep(ms(delay)).await;
        if delay == 5 {
            Err("too quick")
        } else {
            Ok(delay * 2)
        }
    })
    .concurrency(4)
    .await;
    let order: Vec<(usize, u64, u64)> = report
        .successes
        .iter()
        .map(|s| (s.index, s.input, s.output))
        .collect();
    assert_eq!(order, [(1, 10, 20), (2, 20, 40), (0, 30, 60)]);
    assert_eq!(
        report.dead_letters,
        [DeadLetter {
            index: 3,
            input: 5,
            error: "too quick",
            tries: 1,
        }]
    );
    assert_eq!(report.elapsed, ms(30));
}

#[tokio::test(start_paused = true)]
async fn an_empty_input_is_an_empty_report() {
    let mut progress = Vec::new();
    let report = resilience::batch(Vec::<u32>::new(), |n| async move { Ok::<_, Infallible>(n) })
        .on_progress(|p| progress.push(p))
        .await;
    assert!(report.successes.is_empty());
    assert!(report.dead_letters.is_empty());
    assert_eq!((report.succeeded, report.failed), (0, 0));
    assert_eq!(report.elapsed, Duration::ZERO);
    assert!(progress.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Concurrency and progress
// ---------------------------------------------------------------------------------------------

/// Calls in flight now, and the most seen at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
    /// Whether each call failed, in the order the calls returned.
    failures: Mutex<Vec<bool>>,
}

impl InFlight {
    /// Runs one call of `n`: sleeps 1..=5 ms by input, fails every 10th input.
    async fn call(&self, n: u32) -> Result<u32, String> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        sleep(duration_of(n)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        lock(&self.failures).push(n % 10 == 9);
        if n % 10 == 9 {
            Err(format!("input {n} failed"))
        } else {
            Ok(n)
        }
    }
}

fn duration_of(n: u32) -> Duration {
    ms(1 + u64::from(n % 5))
}

#[tokio::test(start_paused = true)]
async fn at_most_concurrency_calls_run_at_once() {
    const CAP: usize = 7;
    let in_flight = InFlight::default();
    let report = resilience::batch(0..500u32, |n| in_flight.call(n))
        .concurrency(CAP)
        .keep_successes(false)
        .await;
    assert_eq!(in_flight.max.load(Ordering::SeqCst), CAP);
    assert_eq!(in_flight.now.load(Ordering::SeqCst), 0);
    assert_eq!((report.succeeded, report.failed), (450, 50));
    assert!(report.successes.is_empty(), "keep_successes(false)");
    assert_eq!(report.dead_letters.len(), 50);
    // the slots never idle while inputs remain
    assert_eq!(
        report.elapsed,
        list_schedule((0..500).map(duration_of), CAP)
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_zero_means_one() {
    let in_flight = InFlight::default();
    let report = resilience::batch(0..20u32, |n| in_flight.call(n))
        .concurrency(0)
        .await;
    assert_eq!(in_flight.max.load(Ordering::SeqCst), 1);
    assert_eq!(report.succeeded + report.failed, 20);
    assert_eq!(report.elapsed, (0..20).map(duration_of).sum::<Duration>());
}

/// Runs 500 calls of [`InFlight::call`] over `inputs` with a progress callback; returns every
/// progress seen, and whether each call failed in the order they returned.
async fn progress_of(inputs: impl IntoIterator<Item = u32>) -> (Vec<Progress>, Vec<bool>) {
    let in_flight = InFlight::default();
    let mut seen = Vec::new();
    let report = resilience::batch(inputs, |n| in_flight.call(n))
        .concurrency(7)
        .on_progress(|progress| seen.push(progress))
        .await;
    assert_eq!((report.succeeded, report.failed), (450, 50));
    let failures = lock(&in_flight.failures).clone();
    (seen, failures)
}

/// Checks that `seen` counts 1, 2, ... 500 with `total`, and counts each of the 50 failures
/// in the report that follows it.
fn assert_complete((seen, failures): &(Vec<Progress>, Vec<bool>), total: Option<usize>) {
    assert_eq!(seen.len(), 500);
    assert_eq!(failures.len(), 500);
    let mut failed_so_far = 0;
    for (i, progress) in seen.iter().enumerate() {
        let Progress {
            done,
            total: seen_total,
            failed,
            ..
        } = *progress;
        assert_eq!(done, i + 1, "done goes up by one at each call");
        assert_eq!(seen_total, total);
        failed_so_far += usize::from(failures[i]);
        assert_eq!(failed, failed_so_far, "at done = {done}");
    }
    assert_eq!(seen.last().map(|p| (p.done, p.failed)), Some((500, 50)));
}

#[tokio::test(start_paused = true)]
async fn progress_counts_each_input_once_with_the_total_when_known() {
    let from_vec = progress_of((0..500).collect::<Vec<u32>>()).await;
    assert_complete(&from_vec, Some(500));

    let from_range = progress_of(0..500).await;
    assert_complete(&from_range, Some(500));

    // `filter` cannot know its length in advance
    let filtered = progress_of((0..1000).filter(|n| n % 2 == 0).map(|n| n / 2)).await;
    assert_complete(&filtered, None);
}

// ---------------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------------

/// Counts calls started, finished and dropped before finishing.
#[derive(Default)]
struct Calls {
    pulled: AtomicUsize,
    started: AtomicUsize,
    finished: AtomicUsize,
    dropped: AtomicUsize,
}

/// Counts a call as dropped unless it was disarmed (finished).
struct DropGuard<'a>(&'a AtomicUsize, bool);

impl Drop for DropGuard<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Calls {
    async fn call(&self, n: u32) -> Result<u32, Infallible> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut guard = DropGuard(&self.dropped, true);
        sleep(ms(100)).await;
        guard.1 = false;
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(n)
    }

    fn counts(&self) -> [usize; 4] {
        [&self.pulled, &self.started, &self.finished, &self.dropped]
            .map(|c| c.load(Ordering::SeqCst))
    }
}

/// Calls of 100ms, 4 at a time, cancelled at 250ms: 3 rounds started (at 0, 100 and 200), two
/// finished; dropping the batch drops the 4 calls in flight, and nothing starts later.
#[tokio::test(start_paused = true)]
async fn dropping_the_batch_stops_it() {
    let calls = Calls::default();
    let inputs = (0..100u32).inspect(|_| {
        calls.pulled.fetch_add(1, Ordering::SeqCst);
    });
    let mut last = None;
    let running = resilience::batch(inputs, |n| calls.call(n))
        .concurrency(4)
        .on_progress(|progress| last = Some(progress.done))
        .run();
    let outcome = tokio::time::timeout(ms(250), running).await;
    assert!(outcome.is_err(), "the batch was still running");
    assert_eq!(last, Some(8));
    // [pulled, started, finished, dropped]
    assert_eq!(calls.counts(), [12, 12, 8, 4]);
    sleep(Duration::from_secs(10)).await;
    assert_eq!(calls.counts(), [12, 12, 8, 4], "nothing ran after the drop");
}

/// The same through `select!`, cancelling from outside when a signal arrives.
#[tokio::test(start_paused = true)]
async fn a_select_that_abandons_the_batch_stops_it() {
    let calls = Calls::default();
    let stop = sleep(ms(150));
    tokio::select! {
        _ = resilience::batch(0..100u32, |n| calls.call(n)).concurrency(3) => {
            panic!("the batch cannot finish in 150ms")
        }
        () = stop => {}
    }
    // [pulled (not counted here), started, finished, dropped]
    assert_eq!(calls.counts(), [0, 6, 3, 3]);
    sleep(Duration::from_secs(10)).await;
    assert_eq!(calls.counts(), [0, 6, 3, 3]);
}

// ---------------------------------------------------------------------------------------------
// Bounded consumption of a long lazy input
// ---------------------------------------------------------------------------------------------

async fn noop(_: u64) -> Result<(), Infallible> {
    Ok(())
}

/// A million lazily produced inputs: the batch takes an input only when a slot is free, so at
/// each progress report at most `concurrency` inputs have been taken beyond those finished
/// (the module docs' promise). The full million runs in about 0.6 s in a debug build.
#[tokio::test(start_paused = true)]
async fn a_long_lazy_input_is_consumed_as_slots_free() {
    const N: u64 = 1_000_000;
    const CAP: usize = 8;
    let pulled = AtomicUsize::new(0);
    let inputs = (0..N).inspect(|_| {
        pulled.fetch_add(1, Ordering::Relaxed);
    });
    let mut ahead_max = 0;
    let mut reports = 0usize;
    let report = resilience::batch(inputs, noop)
        .concurrency(CAP)
        .keep_successes(false)
        .on_progress(|progress| {
            let ahead = pulled.load(Ordering::Relaxed) - progress.done;
            ahead_max = ahead_max.max(ahead);
            reports += 1;
        })
        .await;
    assert_eq!(reports, 1_000_000);
    assert!(
        ahead_max <= CAP,
        "{ahead_max} inputs taken beyond those done"
    );
    assert_eq!(pulled.load(Ordering::Relaxed), 1_000_000);
    assert_eq!((report.succeeded, report.failed), (1_000_000, 0));
    assert!(report.successes.is_empty());
    assert!(report.dead_letters.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Dead letters: write, read back, replay
// ---------------------------------------------------------------------------------------------

/// Users whose name ends in an odd digit fail with 503 while `down` holds (3 tries), those
/// ending in 8 with 404 (1 try); everything succeeds once `down` is cleared.
#[retry(attempts = 3, base = "10ms")]
async fn fetch_user(name: String, down: &AtomicBool, tries: &Tries) -> Result<usize, HttpError> {
    let digit = name.bytes().last().map_or(0, |b| u32::from(b - b'0'));
    let attempt = tries.next(digit);
    if down.load(Ordering::SeqCst) {
        let status = match digit {
            8 => 404,
            d if d % 2 == 1 => 503,
            _ => return Ok(name.len()),
        };
        return Err(HttpError::new(status).with_url(format!("http://test/{name}?try={attempt}")));
    }
    Ok(name.len())
}

#[tokio::test(start_paused = true)]
async fn dead_letters_round_trip_and_replay() {
    let names: Vec<String> = (0..10).map(|n| format!("user-{n}")).collect();
    let down = AtomicBool::new(true);
    let tries = Tries::default();
    let first = resilience::batch(names, |name| fetch_user(name, &down, &tries))
        .concurrency(4)
        .ordered(true)
        .await;
    assert_eq!((first.succeeded, first.failed), (4, 6));

    let mut file = Vec::new();
    write_dead_letters(&mut file, &first.dead_letters).unwrap();
    let text = String::from_utf8(file.clone()).unwrap();
    let line = |n: u32, text: &str, tries: u32| {
        format!(
            r#"{{"input":"user-{n}","error":"{text} from http://test/user-{n}?try={tries}","tries":{tries}}}"#
        )
    };
    let expected: Vec<String> = vec![
        line(1, "HTTP 503 Service Unavailable", 3),
        line(3, "HTTP 503 Service Unavailable", 3),
        line(5, "HTTP 503 Service Unavailable", 3),
        line(7, "HTTP 503 Service Unavailable", 3),
        line(8, "HTTP 404 Not Found", 1),
        line(9, "HTTP 503 Service Unavailable", 3),
    ];
    assert_eq!(text, expected.join("\n") + "\n");

    let records: Vec<DeadLetterRecord<String>> = read_dead_letters(&file[..]).unwrap();
    let from_report: Vec<DeadLetterRecord<String>> = first
        .dead_letters
        .iter()
        .map(|dead| DeadLetterRecord {
            input: dead.input.clone(),
            error: dead.error.to_string(),
            tries: dead.tries,
        })
        .collect();
    assert_eq!(records, from_report);

    // the service is back: replaying the dead letters succeeds for each of them
    down.store(false, Ordering::SeqCst);
    let replay = resilience::batch(records.into_iter().map(|r| r.input), |name| {
        fetch_user(name, &down, &tries)
    })
    .ordered(true)
    .await;
    assert_eq!((replay.succeeded, replay.failed), (6, 0));
    assert!(replay.dead_letters.is_empty());
    let replayed: Vec<(usize, String, usize)> = replay
        .successes
        .into_iter()
        .map(|s| (s.index, s.input, s.output))
        .collect();
    let expected: Vec<(usize, String, usize)> = [1, 3, 5, 7, 8, 9]
        .into_iter()
        .enumerate()
        .map(|(index, n)| (index, format!("user-{n}"), 6))
        .collect();
    assert_eq!(replayed, expected);
}

#[test]
fn no_dead_letters_write_nothing() {
    let mut file = Vec::new();
    write_dead_letters::<u32, HttpError, _>(&mut file, &[]).unwrap();
    assert!(file.is_empty());
    let records: Vec<DeadLetterRecord<u32>> = read_dead_letters(&file[..]).unwrap();
    assert!(records.is_empty());
}

/// Blank lines are skipped but counted: the malformed line is reported by its number in the file.
#[test]
fn a_malformed_line_is_reported_with_its_line_number() {
    let file = concat!(
        r#"{"input":1,"error":"HTTP 503","tries":3}"#,
        "\n\n",
        r#"{"input":2,"error":"HTTP 503","tries":3}"#,
        "\n",
        r#"{"input":3,"tries":1}"#,
        "\n",
    );
    let error = read_dead_letters::<u32, _>(file.as_bytes()).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    let message = error.to_string();
    assert!(
        message.starts_with("dead letter on line 4: missing field `error`"),
        "{message}"
    );

    // an input of the wrong type is malformed too
    let error = read_dead_letters::<u32, _>(&br#"{"input":"user-1","error":"x","tries":1}"#[..])
        .unwrap_err();
    assert!(
        error.to_string().starts_with("dead letter on line 1: "),
        "{error}"
    );

    // and text that is not JSON at all
    let error = read_dead_letters::<u32, _>(&b"\n\nnot json\n"[..]).unwrap_err();
    assert!(
        error.to_string().starts_with("dead letter on line 3: "),
        "{error}"
    );
}
