//! The policy simulator: what would this policy do against a server that fails like this?
//!
//! A [`Simulation`] plays named policies (YAML text through [`policies`], or any
//! [`Policies`]) against a modelled [`Server`] (its latency, its failure rate per status, its
//! quota, its outages) for N calls from C concurrent callers, and reports, per policy, the
//! success rate, the mean and 99th-percentile time of a call, the tries sent, the tries wasted
//! and the 429s received, as a Markdown table ([`Report`]).
//!
//! The policy is played by the library itself: each call goes through the same
//! [`Pipeline`] a service would use (bulkhead, rate limit, retry,
//! circuit breaker, timeout, with their shared state and server feedback), on tokio's paused
//! clock, where a sleep costs no real time. So 10,000 calls that would take minutes take a
//! fraction of a second, and what the simulator says is what the runtime does.
//!
//! - **Deterministic**: the server draws its latencies and failures from a generator seeded
//!   with [`Simulation::seed`], and each caller jitters its retries with one of its own
//!   (seeded from it), on a single-threaded runtime: the same seed gives the same report.
//! - **Isolated**: each policy plays in a fresh runtime, on a thread of its own (joined before
//!   [`Simulation::play`] returns, so it can be called from `main`, a test or an async task),
//!   under a name of its own (`sim-<run>-<policy>`, installed with
//!   [`registry::set`](crate::registry::set)): its limiter, breaker and bulkhead start empty,
//!   and share nothing with the program's policies or another run. What the runtime keeps per
//!   policy name (that entry, the sites' counters in [`stats()`](crate::stats())) stays for
//!   the life of the process, a few hundred bytes per policy played.
//! - **Closed loop**: each caller starts its next call when the last one returned, until N
//!   calls were made. A call's time runs from its start to its result, retries, waits and
//!   refusals included; a failed call's time counts in the mean and the P99 too.
//! - **Quiet**: the simulation's thread logs nothing and records no metric (tracing's and
//!   `metrics`' no-op recorders are its defaults), and a policy's `alert` is not played, so no
//!   hook or pager hears of it. Listeners of [`events()`](crate::events()) do hear its
//!   retries and refusals (at the site `resilience::sim`) and its breaker's changes (named
//!   `sim-<run>-<policy>`), and [`stats()`](crate::stats()) counts that site's calls. A
//!   policy's `backend` is not played either: the simulated state is in this process.
//! - Tries are counted by the server: `sent` is every try that reached it (a try the
//!   breaker or the limiter refused never does), `wasted` those that did not give a call its
//!   result (failed answers, and answers a timeout stopped waiting for).
//!
//! Feature `sim` (it enables tokio's `test-util`, which pausing the clock needs).
//!
//! ```
//! # use resilience_core as resilience;
//! use std::time::Duration;
//! use resilience::sim::{self, Latency, Quota, Server, Simulation};
//!
//! let policies = sim::policies(
//!     "policies:\n  once: {}\n  exp: { retry: { attempts: 4, base: 100ms, jitter: 0.2 } }\n",
//! ).unwrap();
//! let server = Server::new(Latency::fixed(Duration::from_millis(50)))
//!     .fail(503, 0.2)
//!     .quota(Quota::fixed_window(100, Duration::from_secs(1)));
//! let report = Simulation::new(server)
//!     .calls(1_000)
//!     .concurrency(4)
//!     .seed(7)
//!     .play(&policies, &["once", "exp"])
//!     .unwrap();
//! println!("{report}");
//! let (once, exp) = (&report.outcomes[0], &report.outcomes[1]);
//! assert_eq!(once.sent, 1_000);
//! assert!(once.success_rate() < 0.85, "one 503 in five, not retried");
//! assert!(exp.success_rate() > 0.99, "four tries: one call in 625 fails them all");
//! ```

mod report;
mod server;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::Instant;

use crate::config::{ConfigErrors, NamedPolicy, Policies};
use crate::error_class::Classify;
use crate::hooks::ErrorHooks;
use crate::http_error::HttpError;
use crate::pipeline::Pipeline;
use crate::rejected::Rejected;

use report::Tally;
pub use report::{Outcome, Report, Try};
use server::Running;
pub use server::{Answer, Latency, Quota, Server};

/// The most calls one policy plays (each keeps its time until the report is made).
pub const MAX_CALLS: u32 = 10_000_000;

/// The most concurrent callers.
pub const MAX_CONCURRENCY: u32 = 100_000;

/// Reads and checks policies written as YAML text (a policy file's `policies:` document),
/// without installing them: what [`Simulation::play`] plays.
pub fn policies(yaml: &str) -> Result<Policies, ConfigErrors> {
    Ok(Policies::from_file(&resilience_config::load_str(yaml)?))
}

/// A simulation: a server model, how many calls, from how many callers, with which seed.
/// See the [module](self) docs.
#[derive(Debug, Clone)]
pub struct Simulation {
    server: Server,
    calls: u32,
    concurrency: u32,
    seed: u64,
    trace: bool,
}

impl Simulation {
    /// 1,000 calls from 10 callers, seed 0, against `server`.
    pub fn new(server: Server) -> Self {
        Simulation {
            server,
            calls: 1_000,
            concurrency: 10,
            seed: 0,
            trace: false,
        }
    }

    /// How many calls each policy makes (at most [`MAX_CALLS`]).
    pub fn calls(mut self, calls: u32) -> Self {
        self.calls = calls;
        self
    }

    /// How many callers make them at once (1 to [`MAX_CONCURRENCY`]).
    pub fn concurrency(mut self, callers: u32) -> Self {
        self.concurrency = callers;
        self
    }

    /// The seed of the server's draws and of the callers' jitter.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Records every try in [`Outcome::tries`] (off by default).
    pub fn trace(mut self, trace: bool) -> Self {
        self.trace = trace;
        self
    }

    /// Plays the policies called `names` from `policies`, one after the other, each against a
    /// fresh server with the same seed: one row of the report each, in this order.
    pub fn play(&self, policies: &Policies, names: &[&str]) -> Result<Report, SimError> {
        self.check()?;
        let mut outcomes = Vec::with_capacity(names.len());
        for &name in names {
            let policy = policies
                .get(name)
                .ok_or_else(|| SimError::UnknownPolicy(name.to_string()))?;
            outcomes.push(self.play_one(name, policy)?);
        }
        Ok(Report { outcomes })
    }

    /// Plays every policy of the YAML text, in the order of their names.
    pub fn play_yaml(&self, yaml: &str) -> Result<Report, SimError> {
        let policies = policies(yaml).map_err(SimError::Config)?;
        let mut names: Vec<&str> = policies.names().collect();
        names.sort_unstable();
        self.play(&policies, &names)
    }

    fn check(&self) -> Result<(), SimError> {
        self.server.check().map_err(SimError::Server)?;
        if self.calls > MAX_CALLS {
            return Err(SimError::Budget(format!(
                "{} calls, above the {MAX_CALLS} a simulation plays",
                self.calls
            )));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(SimError::Budget(format!(
                "{} callers; the concurrency is 1 to {MAX_CONCURRENCY}",
                self.concurrency
            )));
        }
        Ok(())
    }

    /// One policy, under a name of its own, in a runtime of its own on a thread of its own.
    fn play_one(&self, name: &str, policy: &NamedPolicy) -> Result<Outcome, SimError> {
        static RUNS: AtomicU64 = AtomicU64::new(1);
        let unique = format!("sim-{}-{name}", RUNS.fetch_add(1, Ordering::Relaxed));
        // A first use of a named policy reads `RESILIENCE_CONFIG`: let it happen before this
        // policy is set, as it would have without the simulation.
        crate::registry::named_use();
        crate::registry::set(unique.clone(), in_process(policy));
        let (tally, elapsed) = std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name("resilience-sim".to_string())
                .spawn_scoped(scope, || self.run(&unique))
                .map_err(SimError::Runtime)?;
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })?;
        Ok(tally.outcome(name, elapsed))
    }

    /// The calls of one policy on a fresh current-thread runtime, its clock paused.
    fn run(&self, policy: &str) -> Result<(Tally, Duration), SimError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .map_err(SimError::Runtime)?;
        let local = tokio::task::LocalSet::new();
        let play = || local.block_on(&runtime, self.callers(Pipeline::site(SITE, policy)));
        // Silent on this thread: no log line or metric of the service is about a simulation.
        let silent = tracing::subscriber::NoSubscriber::default();
        Ok(tracing::subscriber::with_default(silent, || {
            metrics::with_local_recorder(&metrics::NoopRecorder, play)
        }))
    }

    /// The run's tally, and its length on the virtual clock.
    async fn callers(&self, pipeline: Pipeline) -> (Tally, Duration) {
        let run = Rc::new(Run {
            pipeline,
            start: Instant::now(),
            calls: self.calls,
            trace: self.trace,
            next: Cell::new(0),
            server: RefCell::new(Running::new(
                self.server.clone(),
                StdRng::seed_from_u64(self.seed),
            )),
            tally: RefCell::default(),
        });
        let callers: Vec<_> = (0..self.concurrency.min(self.calls))
            .map(|caller| {
                let seed = caller_seed(self.seed, caller);
                let run = Rc::clone(&run);
                tokio::task::spawn_local(crate::retry::rng::seeded(seed, run.caller()))
            })
            .collect();
        for caller in callers {
            if let Err(error) = caller.await {
                if error.is_panic() {
                    std::panic::resume_unwind(error.into_panic());
                }
            }
        }
        let elapsed = run.start.elapsed();
        (run.tally.take(), elapsed)
    }
}

/// The site of every simulated call, in [`stats()`](crate::stats()) and in events.
const SITE: &str = "resilience::sim";

/// The policy as the simulation plays it: its state in this process (no `backend`), and no
/// `alert` (a simulated call must not page anyone).
fn in_process(policy: &NamedPolicy) -> NamedPolicy {
    let mut policy = policy.clone();
    policy.backend = None;
    policy.alert = None;
    policy
}

/// Each caller's jitter seed: distinct per caller, fixed by the simulation's seed.
fn caller_seed(seed: u64, caller: u32) -> u64 {
    // SplitMix64's increment: neighbouring callers get unrelated streams from StdRng.
    seed ^ u64::from(caller)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// What the callers of one run share (one thread: `Rc` and cells).
struct Run {
    pipeline: Pipeline,
    start: Instant,
    calls: u32,
    trace: bool,
    /// The next call's number.
    next: Cell<u32>,
    server: RefCell<Running>,
    tally: RefCell<Tally>,
}

impl Run {
    /// One caller: calls until the run's calls are made.
    async fn caller(self: Rc<Self>) {
        loop {
            let call = self.next.get();
            if call >= self.calls {
                return;
            }
            self.next.set(call + 1);
            let began = Instant::now();
            let result = self
                .pipeline
                .run_with(HOOKS, || Rc::clone(&self).try_once(call))
                .await;
            let mut tally = self.tally.borrow_mut();
            tally.times.push(began.elapsed());
            match result {
                Ok(()) => tally.succeeded += 1,
                Err(Failure::Rejected(Rejected::Timeout { .. }) | Failure::Http(_)) => {}
                Err(Failure::Rejected(_)) => tally.refused += 1,
            }
        }
    }

    /// One try: the server's answer, after its latency. The server counts it when it is
    /// first polled, which a try the breaker refuses never is.
    async fn try_once(self: Rc<Self>, call: u32) -> Result<(), Failure> {
        let at = self.start.elapsed();
        let (answer, latency) = self.server.borrow_mut().arrive(at);
        {
            let mut tally = self.tally.borrow_mut();
            tally.sent += 1;
            if matches!(answer, Answer::Status(429, _)) {
                tally.too_many += 1;
            }
            if self.trace {
                tally.tries.push(Try { call, at, answer });
            }
        }
        tokio::time::sleep(latency).await;
        match answer {
            Answer::Ok => Ok(()),
            Answer::Status(status, retry_after) => {
                let error = HttpError::new(status);
                Err(Failure::Http(match retry_after {
                    Some(wait) => error.with_retry_after(wait),
                    None => error,
                }))
            }
        }
    }
}

/// A simulated call's error: the server's status, or the policy's refusal.
#[derive(Debug)]
enum Failure {
    Http(HttpError),
    Rejected(Rejected),
}

impl From<Rejected> for Failure {
    fn from(rejected: Rejected) -> Self {
        Failure::Rejected(rejected)
    }
}

const HOOKS: ErrorHooks<Failure> = ErrorHooks::new(
    |failure| match failure {
        Failure::Http(error) => error.classification(),
        Failure::Rejected(rejected) => rejected.classification(),
    },
    |failure, f| match failure {
        Failure::Http(error) => fmt::Display::fmt(error, f),
        Failure::Rejected(rejected) => fmt::Display::fmt(rejected, f),
    },
);

/// Why a simulation could not be played.
#[derive(Debug)]
#[non_exhaustive]
pub enum SimError {
    /// The YAML text was refused.
    Config(ConfigErrors),
    /// A policy named to play is not in the policies.
    UnknownPolicy(String),
    /// A value of the server model is out of its range.
    Server(String),
    /// Too many calls or callers, or none.
    Budget(String),
    /// The simulation's thread or runtime could not be started.
    Runtime(std::io::Error),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Config(errors) => write!(f, "{errors}"),
            SimError::UnknownPolicy(name) => write!(f, "no policy `{name}` to play"),
            SimError::Server(problem) => write!(f, "server model: {problem}"),
            SimError::Budget(problem) => write!(f, "simulation: {problem}"),
            SimError::Runtime(error) => write!(f, "the simulation's runtime: {error}"),
        }
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SimError::Config(errors) => Some(errors),
            SimError::Runtime(error) => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn budgets_and_names_are_checked_before_anything_runs() {
        let policies = policies("policies:\n  p: {}\n").unwrap_or_default();
        let sim = Simulation::new(Server::new(Latency::fixed(MS(1))));
        let refused = |sim: Simulation, names: &[&str]| {
            sim.play(&policies, names).err().map(|e| e.to_string())
        };
        assert_eq!(
            refused(sim.clone(), &["q"]),
            Some("no policy `q` to play".to_string())
        );
        assert_eq!(
            refused(sim.clone().concurrency(0), &["p"]),
            Some("simulation: 0 callers; the concurrency is 1 to 100000".to_string())
        );
        assert_eq!(
            refused(sim.clone().calls(MAX_CALLS + 1), &["p"]),
            Some("simulation: 10000001 calls, above the 10000000 a simulation plays".to_string())
        );
        assert!(refused(sim.calls(0), &["p"]).is_none());
    }
}
