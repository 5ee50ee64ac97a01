//! `resilience::sim`: the simulator plays the library's own runtime, so a schedule it
//! reports is the one a paused-clock test of the real stack measures, to the try; the same
//! seed gives the same report.

#![cfg(feature = "sim")]

mod common;

use common::{ApiError, lock, ms};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::pipeline::Pipeline;
use resilience::sim::{self, Answer, Latency, Quota, Server, Simulation, Try};
use resilience::{Classify, ErrorHooks, HttpError};
use tokio::time::{Instant, sleep};

/// Retries 503s and 429s (with their Retry-After) at 100 ms, 200 ms, 400 ms...
const RETRYING: &str =
    "policies:\n  retrying: { retry: { attempts: 5, backoff: exp, base: 100ms, jitter: 0.0 } }\n";

/// The scripted server of both runs: 10 ms per answer; down (503) for the first 300 ms; then
/// at most 2 tries per second, counted in fixed windows from the start, a 429 telling the
/// time left in the window.
fn scripted() -> Server {
    Server::new(Latency::fixed(ms(10)))
        .outage(Duration::ZERO, ms(300))
        .quota(Quota::fixed_window(2, ms(1000)))
}

/// The same server, written out for the real stack: the answer to a try arriving at `at`.
fn answer(at: Duration, windows: &mut Vec<u32>) -> Answer {
    if at < ms(300) {
        return Answer::Status(503, None);
    }
    let window = usize::try_from(at.as_millis() / 1000).expect("a short run");
    windows.resize(windows.len().max(window + 1), 0);
    if windows[window] < 2 {
        windows[window] += 1;
        return Answer::Ok;
    }
    let end = ms(1000) * (u32::try_from(window).expect("a short run") + 1);
    Answer::Status(429, Some(end - at))
}

const HOOKS: ErrorHooks<ApiError> =
    ErrorHooks::new(Classify::classification, |error, f| write!(f, "{error:?}"));

#[tokio::test(start_paused = true)]
async fn the_simulator_plays_the_schedule_the_real_stack_measures() {
    // The real stack: the policy's pipeline around the scripted server, four calls in a row.
    let policies = sim::policies(RETRYING).expect("valid YAML");
    let policy = policies.get("retrying").expect("in the text").clone();
    resilience::registry::set("sim-test-real-stack", policy);
    let pipeline = Pipeline::policy("sim-test-real-stack");
    let start = Instant::now();
    let measured: Arc<Mutex<Vec<Try>>> = Arc::default();
    let windows = Arc::new(Mutex::new(Vec::new()));
    for call in 0..4 {
        let result = pipeline
            .run_with(HOOKS, || {
                let (measured, windows) = (Arc::clone(&measured), Arc::clone(&windows));
                async move {
                    let at = start.elapsed();
                    let answer = answer(at, &mut lock(&windows));
                    lock(&measured).push(Try { call, at, answer });
                    sleep(ms(10)).await;
                    match answer {
                        Answer::Status(status, retry_after) => {
                            let error = HttpError::new(status);
                            Err(ApiError::Http(match retry_after {
                                Some(wait) => error.with_retry_after(wait),
                                None => error,
                            }))
                        }
                        _ => Ok(()),
                    }
                }
            })
            .await;
        assert!(result.is_ok(), "call {call}: {result:?}");
    }
    let measured = lock(&measured).clone();
    let tried = |call, at, answer| Try {
        call,
        at: ms(at),
        answer,
    };
    let (down, ok) = (Answer::Status(503, None), Answer::Ok);
    assert_eq!(
        measured,
        [
            // Two 503s of the outage, 100 ms then 200 ms of backoff after each 10 ms answer.
            tried(0, 0, down),
            tried(0, 110, down),
            tried(0, 320, ok),
            tried(1, 330, ok),
            // The window's third try: 429, retry after the 660 ms left in it.
            tried(2, 340, Answer::Status(429, Some(ms(660)))),
            tried(2, 1010, ok),
            tried(3, 1020, ok),
        ]
    );

    // The simulator, one caller making the same four calls: the same tries at the same times.
    let report = Simulation::new(scripted())
        .calls(4)
        .concurrency(1)
        .trace(true)
        .play(&policies, &["retrying"])
        .expect("plays");
    let played = &report.outcomes[0];
    assert_eq!(played.tries, measured);
    assert_eq!(
        (
            played.succeeded,
            played.sent,
            played.wasted,
            played.too_many
        ),
        (4, 7, 3, 1)
    );
    assert_eq!(played.elapsed, ms(1030));
    // Call times 330, 10, 680 and 10 ms: the P99 is the slowest, the mean their average.
    assert_eq!(
        (played.p99, played.mean),
        (ms(680), ms(257) + Duration::from_micros(500))
    );
}

/// The five strategies of the README's table.
const STRATEGIES: &str = "\
policies:
  no-retry: {}
  fixed: { retry: { attempts: 5, backoff: constant, base: 1s, jitter: 0.0 } }
  linear: { retry: { attempts: 5, backoff: linear, base: 500ms, jitter: 0.0 } }
  exponential: { retry: { attempts: 5, backoff: exp, base: 500ms, max_delay: 30s, jitter: 0.0 } }
  exponential-jitter: { retry: { attempts: 5, backoff: exp, base: 500ms, max_delay: 30s, jitter: full } }
";

fn ai_api() -> Server {
    Server::new(Latency::log_normal(ms(400), ms(2000)))
        .fail(503, 0.05)
        .fail(500, 0.02)
        .quota(Quota::token_bucket(50, 50, ms(1000)))
        .outage(Duration::from_secs(60), Duration::from_secs(15))
}

#[test]
fn the_same_seed_gives_the_same_report() {
    // The strategies, and one with every stateful section: a limiter (paced by the 429s it
    // hears), a bulkhead, a breaker and a timeout around a jittered retry.
    let paced = "  paced: { rate_limit: { calls: 50, period: 1s }, bulkhead: { max_concurrent: 40, max_wait: 1s }, circuit_breaker: { failure_rate: 0.5, min_calls: 20, window: 40, open_for: 5s }, timeout: 1500ms, retry: { attempts: 4, base: 200ms, jitter: full } }\n";
    let policies = sim::policies(&format!("{STRATEGIES}{paced}")).expect("valid YAML");
    let names = ["no-retry", "fixed", "exponential-jitter", "paced"];
    let play = |seed| {
        Simulation::new(ai_api())
            .calls(2_000)
            .concurrency(50)
            .seed(seed)
            .trace(true)
            .play(&policies, &names)
            .expect("plays")
    };
    let first = play(1);
    assert_eq!(play(1), first);
    assert_ne!(play(2), first);
    for outcome in &first.outcomes {
        assert_eq!(outcome.calls, 2_000);
        assert_eq!(outcome.sent, outcome.tries.len() as u64);
        assert_eq!(outcome.sent, u64::from(outcome.succeeded) + outcome.wasted);
    }
    let no_retry = first.outcome("no-retry").expect("played");
    assert_eq!(
        no_retry.sent, 2_000,
        "one try per call without a retry section"
    );
    let jitter = first.outcome("exponential-jitter").expect("played");
    assert!(jitter.success_rate() > no_retry.success_rate());
}

#[test]
fn a_refusal_of_the_policy_never_reaches_the_server() {
    // Down for 10 s; the breaker opens after 5 failures of 5 and refuses the rest at once
    // (a refused call takes no time, so the 95 others are refused at 50 ms).
    let yaml = "policies:\n  guarded: { circuit_breaker: { failure_rate: 0.5, min_calls: 5, window: 5, open_for: 30s } }\n";
    let server =
        Server::new(Latency::fixed(ms(10))).outage(Duration::ZERO, Duration::from_secs(10));
    let report = Simulation::new(server)
        .calls(100)
        .concurrency(1)
        .play_yaml(yaml)
        .expect("plays");
    let guarded = &report.outcomes[0];
    assert_eq!(
        (
            guarded.sent,
            guarded.wasted,
            guarded.refused,
            guarded.succeeded
        ),
        (5, 5, 95, 0)
    );
    assert_eq!(guarded.elapsed, ms(50));
}

#[test]
fn a_timeout_wastes_the_tries_it_stops_waiting_for() {
    // Every answer takes 1.5 s; each try is cut at 1 s, retried once after 100 ms, cut again.
    let yaml = "policies:\n  impatient: { timeout: 1s, retry: { attempts: 2, base: 100ms, jitter: 0.0 } }\n";
    let server = Server::new(Latency::fixed(ms(1500)));
    let report = Simulation::new(server)
        .calls(100)
        .concurrency(10)
        .play_yaml(yaml)
        .expect("plays");
    let impatient = &report.outcomes[0];
    assert_eq!(
        (
            impatient.sent,
            impatient.wasted,
            impatient.succeeded,
            impatient.refused
        ),
        (200, 200, 0, 0)
    );
    assert_eq!((impatient.mean, impatient.p99), (ms(2100), ms(2100)));
    assert_eq!(
        impatient.elapsed,
        ms(10 * 2100),
        "10 calls in a row per caller"
    );
}

#[test]
fn bad_models_and_unknown_policies_are_errors() {
    let policies = sim::policies(STRATEGIES).expect("valid YAML");
    let server = Server::new(Latency::fixed(ms(1))).fail(503, 1.5);
    let error = Simulation::new(server)
        .play(&policies, &["fixed"])
        .expect_err("refused");
    assert_eq!(
        error.to_string(),
        "server model: fail: the rate of 503 must be between 0.0 and 1.0, found 1.5"
    );
    let error = Simulation::new(ai_api())
        .play_yaml("policies:\n  p: { retry: { attemps: 2 } }\n")
        .expect_err("refused");
    assert!(
        error.to_string().contains("did you mean `attempts`?"),
        "{error}"
    );
}
