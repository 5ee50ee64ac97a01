//! `resilience::pipeline::Pipeline`: a named policy around a closure, in `#[resilient]`'s
//! order, with a per-call veto on retrying anything but unsent failures. Paused tokio time,
//! exact times and exact try counts.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use resilience::pipeline::Pipeline;
use resilience::{Classification, Classify, ErrorClass, ErrorHooks, Rejected};
use tokio::time::{Instant, sleep};

/// Held by every test: installing policies replaces them all.
static POLICIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn install(yaml: &str) {
    resilience::config::load_str(yaml).unwrap_or_else(|errors| panic!("{errors}"));
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug, PartialEq)]
enum Failure {
    /// A failure of this class from the call itself.
    Call(ErrorClass),
    Rejected(Rejected),
}

impl From<Rejected> for Failure {
    fn from(rejected: Rejected) -> Self {
        Failure::Rejected(rejected)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl Classify for Failure {
    fn class(&self) -> ErrorClass {
        self.classification().class
    }
    fn classification(&self) -> Classification {
        match self {
            Failure::Call(class) => Classification::new(*class),
            Failure::Rejected(rejected) => rejected.classification(),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn timeout_is_per_try_inside_the_retry() {
    let _policies = POLICIES.lock().await;
    install(
        "policies:\n  pb-order:\n    retry: { attempts: 3, backoff: constant, base: 100ms }\n    timeout: 1s\n",
    );
    let tries = AtomicUsize::new(0);
    let start = Instant::now();
    let result = Pipeline::policy("pb-order")
        .run(|| {
            let try_ = tries.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if try_ < 3 {
                    sleep(ms(5000)).await;
                }
                Ok::<_, Failure>(try_)
            }
        })
        .await;
    assert_eq!(result, Ok(3));
    // Two tries cut at 1s, two sleeps of 100ms, a third try that answers at once.
    assert_eq!(start.elapsed(), ms(2200));
}

#[tokio::test(start_paused = true)]
async fn unsent_only_retries_connect_and_nothing_else() {
    let _policies = POLICIES.lock().await;
    install(
        "policies:\n  pb-unsent:\n    retry: { attempts: 3, backoff: constant, base: 100ms, on: [Timeout, Connect, 503] }\n",
    );
    let pipeline = Pipeline::policy("pb-unsent");
    for (class, unsent_only, expected) in [
        (ErrorClass::Timeout, false, 3),
        (ErrorClass::Timeout, true, 1),
        (ErrorClass::Status(503), true, 1),
        (ErrorClass::Connect, true, 3),
        (ErrorClass::Connect, false, 3),
    ] {
        let tries = AtomicUsize::new(0);
        let hooks = match unsent_only {
            true => ErrorHooks::classified().unsent_only(),
            false => ErrorHooks::classified(),
        };
        let result: Result<(), Failure> = pipeline
            .run_with(hooks, || {
                tries.fetch_add(1, Ordering::SeqCst);
                async move { Err(Failure::Call(class)) }
            })
            .await;
        assert_eq!(result, Err(Failure::Call(class)));
        assert_eq!(
            tries.load(Ordering::SeqCst),
            expected,
            "{class:?}, unsent_only: {unsent_only}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_bulkhead_is_outside_the_retry_and_refuses_without_calling() {
    let _policies = POLICIES.lock().await;
    install(
        "policies:\n  pb-bulkhead:\n    bulkhead: { max_concurrent: 1 }\n    retry: { attempts: 2, backoff: constant, base: 100ms }\n",
    );
    let pipeline = Pipeline::policy("pb-bulkhead");
    let tries = AtomicUsize::new(0);
    let call = || {
        pipeline.run(|| {
            let try_ = tries.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                sleep(ms(1000)).await;
                match try_ {
                    1 => Err(Failure::Call(ErrorClass::Timeout)),
                    _ => Ok(try_),
                }
            }
        })
    };
    let start = Instant::now();
    let (first, second) = tokio::join!(call(), async {
        sleep(ms(1050)).await; // during the first call's backoff: its slot is still held
        call().await
    });
    assert_eq!(first, Ok(2));
    assert_eq!(second, Err(Failure::Rejected(Rejected::BulkheadFull)));
    assert_eq!(
        tries.load(Ordering::SeqCst),
        2,
        "the refused call never ran"
    );
    assert_eq!(start.elapsed(), ms(2100));
}

#[tokio::test(start_paused = true)]
async fn a_policy_without_sections_runs_the_call_once() {
    let _policies = POLICIES.lock().await;
    install("policies:\n  pb-empty: {}\n");
    let tries = AtomicUsize::new(0);
    let result: Result<(), Failure> = Pipeline::policy("pb-empty")
        .run(|| {
            tries.fetch_add(1, Ordering::SeqCst);
            async { Err(Failure::Call(ErrorClass::Timeout)) }
        })
        .await;
    assert!(result.is_err());
    assert_eq!(tries.load(Ordering::SeqCst), 1);
}
