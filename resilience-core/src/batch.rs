//! [`batch`]: run an async function over many inputs with a concurrency cap, and get a report
//! instead of stopping at the first failure.
//!
//! The input is consumed lazily: at most `concurrency` calls are in flight and at most that many
//! inputs have been taken from the iterator beyond those finished, so a 1,000,000-item iterator
//! runs in bounded memory (keep `keep_successes(false)` for that, or the successes themselves
//! grow with the input). Dropping the batch's future stops it: the calls in flight are
//! dropped and nothing more is taken from the input.
//!
//! Failed inputs become [`DeadLetter`]s (the input, the last error, the tries it took). They
//! can be written as JSON lines ([`write_dead_letters`]) and read back ([`read_dead_letters`])
//! so that a later run replays only what failed.
//!
//! ```
//! # use resilience_core as resilience;
//! use resilience::batch;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! async fn square(n: u32) -> Result<u32, String> {
//!     if n == 3 { Err("three is unlucky".to_string()) } else { Ok(n * n) }
//! }
//!
//! let report = batch(1..=5, square).concurrency(2).ordered(true).await;
//! assert_eq!(report.succeeded, 4);
//! assert_eq!(report.successes.iter().map(|s| s.output).collect::<Vec<_>>(), [1, 4, 16, 25]);
//! assert_eq!(report.dead_letters[0].input, 3);
//! # }
//! ```

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io::{self, BufRead, Write};
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

/// Where a batch is, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Inputs finished (succeeded or failed).
    pub done: usize,
    /// All inputs, when the iterator knows its length.
    pub total: Option<usize>,
    /// Of `done`, those that failed.
    pub failed: usize,
}

/// One input that succeeded, and its output.
#[derive(Debug, Clone, PartialEq)]
pub struct Success<I, T> {
    /// Its position in the input.
    pub index: usize,
    /// The input.
    pub input: I,
    /// What the function returned.
    pub output: T,
}

/// One input that failed: the input, the last error, and how many tries it took.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter<I, E> {
    /// Its position in the input.
    pub index: usize,
    /// The input.
    pub input: I,
    /// The last error.
    pub error: E,
    /// Tries made (1 when it was not retried).
    pub tries: u32,
}

/// What a batch did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchReport<I, T, E> {
    /// The inputs that succeeded, with their outputs: in input order when the batch was
    /// `ordered`, else in completion order. Empty with `keep_successes(false)`.
    pub successes: Vec<Success<I, T>>,
    /// The inputs that failed, in input order.
    pub dead_letters: Vec<DeadLetter<I, E>>,
    /// How many succeeded.
    pub succeeded: usize,
    /// How many failed.
    pub failed: usize,
    /// How long the batch took.
    pub elapsed: Duration,
}

type OnProgress<'a> = Box<dyn FnMut(Progress) + Send + 'a>;

/// A batch being set up; `.await` it (or call [`run`](Batch::run)) to run it.
#[must_use = "a batch does nothing until awaited"]
pub struct Batch<'a, Inputs, F> {
    inputs: Inputs,
    call: F,
    concurrency: usize,
    ordered: bool,
    keep_successes: bool,
    on_progress: Option<OnProgress<'a>>,
}

impl<Inputs, F> fmt::Debug for Batch<'_, Inputs, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("concurrency", &self.concurrency)
            .field("ordered", &self.ordered)
            .field("keep_successes", &self.keep_successes)
            .finish_non_exhaustive()
    }
}

/// A batch running `call` over every input, 16 at a time until told otherwise.
pub fn batch<'a, Inputs, I, F, Fut, T, E>(inputs: Inputs, call: F) -> Batch<'a, Inputs::IntoIter, F>
where
    Inputs: IntoIterator<Item = I>,
    I: Clone,
    F: FnMut(I) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    Batch {
        inputs: inputs.into_iter(),
        call,
        concurrency: 16,
        ordered: false,
        keep_successes: true,
        on_progress: None,
    }
}

impl<'a, Inputs, I, F, Fut, T, E> Batch<'a, Inputs, F>
where
    Inputs: Iterator<Item = I>,
    I: Clone,
    F: FnMut(I) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    /// At most this many calls in flight at once (at least 1).
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// Report the successes in input order (sorted at the end) instead of completion order.
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// Keep the successes in the report (default); `false` keeps only counts and dead
    /// letters, for inputs too long to hold every output.
    pub fn keep_successes(mut self, keep: bool) -> Self {
        self.keep_successes = keep;
        self
    }

    /// Called after each input finishes, with where the batch is.
    pub fn on_progress(mut self, on_progress: impl FnMut(Progress) + Send + 'a) -> Self {
        self.on_progress = Some(Box::new(on_progress));
        self
    }

    /// Runs the batch.
    pub async fn run(self) -> BatchReport<I, T, E> {
        let started = tokio::time::Instant::now();
        let Batch {
            inputs,
            mut call,
            concurrency,
            ordered,
            keep_successes,
            mut on_progress,
        } = self;
        let total = match inputs.size_hint() {
            (low, Some(high)) if low == high => Some(low),
            _ => None,
        };
        let mut report = BatchReport {
            successes: Vec::new(),
            dead_letters: Vec::new(),
            succeeded: 0,
            failed: 0,
            elapsed: Duration::ZERO,
        };
        let mut running = futures_util::stream::iter(inputs.enumerate())
            .map(|(index, input)| {
                let future = call(input.clone());
                async move {
                    let (result, retries) = crate::retry::counting_retries(future).await;
                    (index, input, result, retries.saturating_add(1))
                }
            })
            .buffer_unordered(concurrency);
        while let Some((index, input, result, tries)) = running.next().await {
            match result {
                Ok(output) => {
                    report.succeeded += 1;
                    if keep_successes {
                        report.successes.push(Success {
                            index,
                            input,
                            output,
                        });
                    }
                }
                Err(error) => {
                    report.failed += 1;
                    report.dead_letters.push(DeadLetter {
                        index,
                        input,
                        error,
                        tries,
                    });
                }
            }
            if let Some(on_progress) = &mut on_progress {
                on_progress(Progress {
                    done: report.succeeded + report.failed,
                    total,
                    failed: report.failed,
                });
            }
        }
        if ordered {
            report.successes.sort_by_key(|success| success.index);
        }
        report.dead_letters.sort_by_key(|dead| dead.index);
        report.elapsed = started.elapsed();
        report
    }
}

impl<'a, Inputs, I, F, Fut, T, E> IntoFuture for Batch<'a, Inputs, F>
where
    Inputs: Iterator<Item = I> + 'a,
    I: Clone + 'a,
    F: FnMut(I) -> Fut + 'a,
    Fut: Future<Output = Result<T, E>> + 'a,
    T: 'a,
    E: 'a,
{
    type Output = BatchReport<I, T, E>;
    type IntoFuture = Pin<Box<dyn Future<Output = BatchReport<I, T, E>> + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// A dead letter as written to a JSON line: the input, the last error as text, the tries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterRecord<I> {
    /// The input.
    pub input: I,
    /// The last error, as its `Display` wrote it.
    pub error: String,
    /// Tries made.
    pub tries: u32,
}

/// Writes each dead letter as one JSON line (`{"input":...,"error":"...","tries":3}`).
pub fn write_dead_letters<I, E, W>(writer: W, dead_letters: &[DeadLetter<I, E>]) -> io::Result<()>
where
    I: Serialize + Clone,
    E: fmt::Display,
    W: Write,
{
    let mut writer = io::BufWriter::new(writer);
    for dead in dead_letters {
        let record = DeadLetterRecord {
            input: dead.input.clone(),
            error: dead.error.to_string(),
            tries: dead.tries,
        };
        serde_json::to_writer(&mut writer, &record)?;
        writer.write_all(b"\n")?;
    }
    writer.flush()
}

/// Reads dead letters written by [`write_dead_letters`]; `batch(records.into_iter().map(|r|
/// r.input), ...)` replays them. Blank lines are skipped; a malformed line is an error naming
/// its line number.
pub fn read_dead_letters<I, R>(reader: R) -> io::Result<Vec<DeadLetterRecord<I>>>
where
    I: for<'de> Deserialize<'de>,
    R: io::Read,
{
    let mut records = Vec::new();
    for (number, line) in io::BufReader::new(reader).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("dead letter on line {}: {error}", number + 1),
            )
        })?;
        records.push(record);
    }
    Ok(records)
}
