//! Model-based test of [`Breaker`]: random sequences of calls, held permits, reports, drops
//! and clock advances, run against the real breaker on tokio's paused clock and against a
//! small model of the documented state machine (DESIGN.md, "circuit breaker"):
//!
//! - closed: the outcomes of the last `window` calls; it opens when at least `min_calls` were
//!   recorded and failures / recorded >= `failure_rate`, with at least one failure (so
//!   `failure_rate = 0.0` opens on the first failure, not on successes);
//! - open: refuses at once, with the exact time left until `open_for` has elapsed;
//! - half-open (entered by the first acquire once `open_for` has elapsed, although `state()`
//!   reports it from that instant on): lets `half_open_calls` trials through, refusing others
//!   with a zero wait; closes with a fresh window when all of them succeed, reopens for
//!   `open_for` when one fails; a trial dropped unreported gives its place back.
//!
//! Every permit belongs to the generation (the state, counted by transitions) it was granted
//! in, and an outcome reported or a permit dropped in a later generation changes nothing.
//!
//! After every step the breaker's `state()` and `transitions()` must equal the model's, and
//! every `try_acquire` must agree with the model on admission and on the refusal's duration.

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use resilience_core::breaker::{Breaker, BreakerSpec, BreakerState, Permit};

/// The breaker's values, with `failure_rate` in quarters so the model's rate test is exact.
#[derive(Debug, Clone, Copy)]
struct Params {
    /// `failure_rate` = `rate_quarters` / 4.
    rate_quarters: u32,
    min_calls: u32,
    window: u32,
    open_for_ms: u64,
    half_open_calls: u32,
}

impl Params {
    fn spec(self) -> BreakerSpec {
        BreakerSpec::DEFAULT
            .failure_rate(f64::from(self.rate_quarters) / 4.0)
            .min_calls(self.min_calls)
            .window(self.window)
            .open_for(Duration::from_millis(self.open_for_ms))
            .half_open_calls(self.half_open_calls)
    }
}

/// One step of a scenario.
#[derive(Debug, Clone)]
enum Op {
    /// Acquire, and report the outcome at once if admitted.
    Call { failed: bool },
    /// Move the paused clock forward this many milliseconds.
    Advance(u64),
    /// Acquire, and keep the permit (a call in flight).
    AcquireHold,
    /// Report the outcome of one held permit.
    ReportHeld { index: Index, failed: bool },
    /// Drop one held permit without reporting (a cancelled call).
    DropHeld { index: Index },
}

/// The model's phase.
#[derive(Debug, Clone)]
enum Phase {
    /// The outcomes of the last `window` calls, oldest first (`true`: failed).
    Closed(VecDeque<bool>),
    /// Refusing until `until` (milliseconds on the paused clock since the start).
    Open { until: u64 },
    /// Trials let through and not given back, and trials that succeeded.
    HalfOpen { granted: u32, passed: u32 },
}

/// The documented state machine, on a millisecond clock.
#[derive(Debug)]
struct Model {
    params: Params,
    phase: Phase,
    /// Milliseconds since the start.
    now: u64,
    /// Transitions so far; also the generation a permit granted now belongs to.
    transitions: u64,
}

impl Model {
    fn new(params: Params) -> Self {
        Model {
            params,
            phase: Phase::Closed(VecDeque::new()),
            now: 0,
            transitions: 0,
        }
    }

    fn state(&self) -> BreakerState {
        match self.phase {
            Phase::Closed(_) => BreakerState::Closed,
            Phase::Open { until } if self.now < until => BreakerState::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    fn transit(&mut self, phase: Phase) {
        self.phase = phase;
        self.transitions += 1;
    }

    fn open(&mut self) {
        let until = self.now + self.params.open_for_ms;
        self.transit(Phase::Open { until });
    }

    /// Admits a call (`Ok` with the permit's generation) or refuses it with the wait.
    fn acquire(&mut self) -> Result<u64, Duration> {
        if let Phase::Open { until } = self.phase {
            if self.now < until {
                return Err(Duration::from_millis(until - self.now));
            }
            self.transit(Phase::HalfOpen {
                granted: 0,
                passed: 0,
            });
        }
        let generation = self.transitions;
        match &mut self.phase {
            Phase::Closed(_) => Ok(generation),
            Phase::HalfOpen { granted, .. } if *granted < self.params.half_open_calls => {
                *granted += 1;
                Ok(generation)
            }
            Phase::HalfOpen { .. } => Err(Duration::ZERO),
            Phase::Open { .. } => unreachable!("left above"),
        }
    }

    /// The documented rule: a failure, at least `min_calls` recorded, and failures / recorded
    /// >= `failure_rate` (exact: the rate is a number of quarters).
    fn should_open(&self, recorded: usize, failures: usize) -> bool {
        failures > 0
            && recorded >= self.params.min_calls as usize
            && failures * 4 >= self.params.rate_quarters as usize * recorded
    }

    fn record(&mut self, generation: u64, failed: bool) {
        if generation != self.transitions {
            return; // granted in an earlier state: ignored
        }
        match &mut self.phase {
            Phase::Closed(outcomes) => {
                if outcomes.len() == self.params.window as usize {
                    outcomes.pop_front();
                }
                outcomes.push_back(failed);
                let recorded = outcomes.len();
                let failures = outcomes.iter().filter(|&&f| f).count();
                if self.should_open(recorded, failures) {
                    self.open();
                }
            }
            Phase::HalfOpen { .. } if failed => self.open(),
            Phase::HalfOpen { passed, .. } => {
                *passed += 1;
                if *passed >= self.params.half_open_calls {
                    self.transit(Phase::Closed(VecDeque::new()));
                }
            }
            Phase::Open { .. } => unreachable!("no permit is granted while open"),
        }
    }

    fn drop_unreported(&mut self, generation: u64) {
        if generation != self.transitions {
            return;
        }
        if let Phase::HalfOpen { granted, .. } = &mut self.phase {
            *granted -= 1;
        }
    }
}

/// Runs `ops` against a fresh breaker and a fresh model on a paused clock, checking that they
/// agree after every step.
fn check(params: Params, ops: &[Op]) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        // Created inside the runtime, so the breaker's clock is the paused one.
        let breaker = Breaker::new(params.spec());
        let mut model = Model::new(params);
        // The permits in flight, each with its generation in the model.
        let mut held: Vec<(Permit<'_>, u64)> = Vec::new();
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Call { failed } => {
                    let real = breaker.try_acquire();
                    let expected = model.acquire();
                    prop_assert_eq!(
                        real.as_ref().map(|_| ()).map_err(|&wait| wait),
                        expected.map(|_| ()),
                        "step {}: {:?}",
                        step,
                        op
                    );
                    if let (Ok(permit), Ok(generation)) = (real, expected) {
                        permit.record(*failed);
                        model.record(generation, *failed);
                    }
                }
                Op::Advance(ms) => {
                    tokio::time::advance(Duration::from_millis(*ms)).await;
                    model.now += ms;
                }
                Op::AcquireHold => {
                    let real = breaker.try_acquire();
                    let expected = model.acquire();
                    prop_assert_eq!(
                        real.as_ref().map(|_| ()).map_err(|&wait| wait),
                        expected.map(|_| ()),
                        "step {}: {:?}",
                        step,
                        op
                    );
                    if let (Ok(permit), Ok(generation)) = (real, expected) {
                        held.push((permit, generation));
                    }
                }
                Op::ReportHeld { index, failed } => {
                    if !held.is_empty() {
                        let (permit, generation) = held.swap_remove(index.index(held.len()));
                        permit.record(*failed);
                        model.record(generation, *failed);
                    }
                }
                Op::DropHeld { index } => {
                    if !held.is_empty() {
                        let (permit, generation) = held.swap_remove(index.index(held.len()));
                        drop(permit);
                        model.drop_unreported(generation);
                    }
                }
            }
            prop_assert_eq!(breaker.state(), model.state(), "step {}: {:?}", step, op);
            prop_assert_eq!(
                breaker.transitions(),
                model.transitions,
                "step {}: {:?}",
                step,
                op
            );
        }
        prop_assert_eq!(breaker.transitions(), model.transitions, "at the end");
        Ok(())
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<bool>().prop_map(|failed| Op::Call { failed }),
        3 => (0u64..=60).prop_map(Op::Advance),
        2 => Just(Op::AcquireHold),
        2 => (any::<Index>(), any::<bool>())
            .prop_map(|(index, failed)| Op::ReportHeld { index, failed }),
        1 => any::<Index>().prop_map(|index| Op::DropHeld { index }),
    ]
}

/// Breaker values with the failure rate drawn from `rates` (in quarters).
fn params(rates: Vec<u32>) -> impl Strategy<Value = Params> {
    (1u32..=8)
        .prop_flat_map(|window| (Just(window), 1..=window))
        .prop_flat_map(move |(window, min_calls)| {
            (
                prop::sample::select(rates.clone()),
                Just(min_calls),
                Just(window),
                1u64..=50,
                1u32..=3,
            )
        })
        .prop_map(
            |(rate_quarters, min_calls, window, open_for_ms, half_open_calls)| Params {
                rate_quarters,
                min_calls,
                window,
                open_for_ms,
                half_open_calls,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        // No regression file beside this one: a failure prints its shrunk input.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every failure rate, 0.0 included (a breaker never opens without a failure).
    #[test]
    fn breaker_matches_model(
        params in params(vec![0, 1, 2, 3, 4]),
        ops in prop::collection::vec(op(), 0..=60),
    ) {
        check(params, &ops)?;
    }
}
