//! What a simulation measured: one [`Outcome`] per policy played, and the [`Report`] table.

use std::fmt;
use std::time::Duration;

use super::server::Answer;

/// One try that reached the server (recorded with [`Simulation::trace`](super::Simulation::trace)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Try {
    /// The call it belongs to, numbered from 0 in the order the calls started.
    pub call: u32,
    /// When it reached the server, since the start of the run.
    pub at: Duration,
    /// What the server answered (the caller may have stopped waiting: a timeout).
    pub answer: Answer,
}

/// What one policy did against the server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Outcome {
    /// The policy's name.
    pub policy: String,
    /// Calls made.
    pub calls: u32,
    /// Calls that returned `Ok`.
    pub succeeded: u32,
    /// Mean time of a call, from its start to its result, failed calls included.
    pub mean: Duration,
    /// 99th percentile (nearest rank) of the same times.
    pub p99: Duration,
    /// Tries that reached the server.
    pub sent: u64,
    /// Tries sent that did not give a call its result: failed ones, and ones the caller
    /// stopped waiting for.
    pub wasted: u64,
    /// Tries the server answered 429.
    pub too_many: u64,
    /// Calls the policy refused without reaching the server (its rate limit, breaker,
    /// bulkhead), as the caller's final result.
    pub refused: u32,
    /// The run's length on the virtual clock, from the first call to the last result.
    pub elapsed: Duration,
    /// Each try, in the order they reached the server, when traced.
    pub tries: Vec<Try>,
}

impl Outcome {
    /// The share of calls that returned `Ok`.
    pub fn success_rate(&self) -> f64 {
        if self.calls == 0 {
            return 0.0;
        }
        f64::from(self.succeeded) / f64::from(self.calls)
    }
}

/// The outcomes of every policy played, one row each; `Display` writes the Markdown table.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// In the order played.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// The outcome of the policy called `policy`.
    pub fn outcome(&self, policy: &str) -> Option<&Outcome> {
        self.outcomes
            .iter()
            .find(|outcome| outcome.policy == policy)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| policy | success | mean | p99 | sent | wasted | 429s | refused | time |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for o in &self.outcomes {
            writeln!(
                f,
                "| `{}` | {:.1}% | {} | {} | {} | {} | {} | {} | {} |",
                o.policy,
                o.success_rate() * 100.0,
                Short(o.mean),
                Short(o.p99),
                o.sent,
                o.wasted,
                o.too_many,
                o.refused,
                Short(o.elapsed),
            )?;
        }
        Ok(())
    }
}

/// A time for a table: `85 ms`, `1.25 s`, `3.2 min`.
struct Short(Duration);

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.as_secs_f64();
        if seconds < 1.0 {
            write!(f, "{:.0} ms", seconds * 1000.0)
        } else if seconds < 120.0 {
            write!(f, "{seconds:.2} s")
        } else {
            write!(f, "{:.1} min", seconds / 60.0)
        }
    }
}

/// What each call came to, gathered while the run goes.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) times: Vec<Duration>,
    pub(crate) succeeded: u32,
    pub(crate) refused: u32,
    pub(crate) sent: u64,
    pub(crate) too_many: u64,
    pub(crate) tries: Vec<Try>,
}

impl Tally {
    pub(crate) fn outcome(mut self, policy: &str, elapsed: Duration) -> Outcome {
        self.times.sort_unstable();
        let calls = u32::try_from(self.times.len()).unwrap_or(u32::MAX);
        let total: u128 = self.times.iter().map(Duration::as_nanos).sum();
        let mean = total
            .checked_div(self.times.len() as u128)
            .map_or(Duration::ZERO, |nanos| {
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            });
        // Nearest rank: the smallest time at least 99% of the calls took no longer than.
        let rank = (self.times.len() * 99).div_ceil(100);
        let p99 = self
            .times
            .get(rank.saturating_sub(1))
            .copied()
            .unwrap_or_default();
        Outcome {
            policy: policy.to_string(),
            calls,
            succeeded: self.succeeded,
            mean,
            p99,
            sent: self.sent,
            wasted: self.sent.saturating_sub(u64::from(self.succeeded)),
            too_many: self.too_many,
            refused: self.refused,
            elapsed,
            tries: self.tries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_rounds_for_people_and_p99_is_a_nearest_rank() {
        let tally = Tally {
            times: (1..=200).map(Duration::from_millis).collect(),
            succeeded: 150,
            refused: 3,
            sent: 260,
            too_many: 40,
            tries: Vec::new(),
        };
        let outcome = tally.outcome("exp", Duration::from_secs(150));
        assert_eq!(outcome.p99, Duration::from_millis(198));
        assert_eq!(outcome.mean, Duration::from_micros(100_500));
        assert_eq!(outcome.wasted, 110);
        let report = Report {
            outcomes: vec![outcome],
        };
        assert_eq!(
            report.to_string().lines().nth(2),
            Some("| `exp` | 75.0% | 100 ms | 198 ms | 260 | 110 | 40 | 3 | 2.5 min |")
        );
    }
}
