//! `#[resilient]`: every section of a YAML policy in the pipeline's fixed order, inline
//! defaults overridden field by field, and sections the YAML adds at run time applying from
//! the next call. Paused tokio time, exact times and exact call counts.

mod common;

use common::{ApiError, ms};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use resilience::{HttpError, Rejected, resilient};
use tokio::time::{Instant, sleep};

/// Held by every test: installing policies replaces them all.
static POLICIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn install(yaml: &str) {
    resilience::config::load_str(yaml).unwrap_or_else(|errors| panic!("{errors}"));
}

struct Calls(AtomicUsize);

impl Calls {
    const fn new() -> Self {
        Calls(AtomicUsize::new(0))
    }
    fn run(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

static DRIVEN: Calls = Calls::new();

/// Fails with 503 until `ok_from` tries have run; sleeps `delay` first.
#[resilient(policy = "res-driven")]
async fn driven(ok_from: usize, delay: Duration) -> Result<usize, ApiError> {
    let run = DRIVEN.run();
    sleep(delay).await;
    if run >= ok_from {
        Ok(run)
    } else {
        Err(ApiError::Http(HttpError::new(503)))
    }
}

#[tokio::test(start_paused = true)]
async fn sections_the_yaml_adds_apply_from_the_next_call() {
    let _policies = POLICIES.lock().await;
    install("policies:\n  res-driven: {}\n");
    // No section: no retry, no limit, no breaker, no time limit.
    let start = Instant::now();
    assert!(driven(3, ms(5000)).await.is_err());
    assert_eq!(DRIVEN.take(), 1, "one try");
    assert_eq!(start.elapsed(), ms(5000), "no time limit");

    install(
        "policies:\n  res-driven:\n    retry: { attempts: 3, base: 100ms, backoff: constant }\n",
    );
    let start = Instant::now();
    assert_eq!(driven(3, Duration::ZERO).await.ok(), Some(3));
    assert_eq!(DRIVEN.take(), 3);
    assert_eq!(start.elapsed(), ms(200));

    install(
        "policies:\n  res-driven:\n    retry: { attempts: 3, base: 100ms, backoff: constant }\n    timeout: 50ms\n",
    );
    // The timeout is inside the retry: each try is cut at 50 ms and retried.
    let start = Instant::now();
    assert_eq!(
        driven(1, ms(1000)).await,
        Err(ApiError::Rejected(Rejected::Timeout { after: ms(50) }))
    );
    assert_eq!(DRIVEN.take(), 3);
    assert_eq!(start.elapsed(), ms(50 + 100 + 50 + 100 + 50));

    install("policies:\n  res-driven:\n    rate_limit: { calls: 1, period: 1s }\n");
    let start = Instant::now();
    assert!(driven(1, Duration::ZERO).await.is_ok());
    assert!(driven(1, Duration::ZERO).await.is_ok());
    assert_eq!(
        start.elapsed(),
        ms(1000),
        "the second call waited for its slot"
    );
    DRIVEN.take();

    install(
        "policies:\n  res-driven:\n    circuit_breaker: { min_calls: 2, window: 2, open_for: 10s }\n",
    );
    sleep(ms(1000)).await;
    assert!(driven(usize::MAX, Duration::ZERO).await.is_err());
    assert!(driven(usize::MAX, Duration::ZERO).await.is_err());
    assert_eq!(
        driven(usize::MAX, Duration::ZERO).await,
        Err(ApiError::Rejected(Rejected::CircuitOpen {
            retry_after: ms(10_000)
        }))
    );
    assert_eq!(DRIVEN.take(), 2, "refused without calling");

    install("policies:\n  res-driven:\n    bulkhead: { max_concurrent: 1 }\n");
    let (first, second) = tokio::join!(driven(1, ms(10)), driven(1, ms(10)));
    assert!(first.is_ok());
    assert_eq!(second, Err(ApiError::Rejected(Rejected::BulkheadFull)));
    install("policies: {}\n");
}

static INLINE: Calls = Calls::new();

#[resilient(
    policy = "res-inline",
    retry(attempts = 2, base = "10ms", backoff = "constant"),
    timeout = "1s"
)]
async fn inline_defaults() -> Result<usize, ApiError> {
    INLINE.run();
    Err(ApiError::Http(HttpError::new(502)))
}

#[tokio::test(start_paused = true)]
async fn the_yaml_overrides_inline_sections_field_by_field() {
    let _policies = POLICIES.lock().await;
    install("policies: {}\n");
    let start = Instant::now();
    assert!(inline_defaults().await.is_err());
    assert_eq!(INLINE.take(), 2, "the inline attempts");
    assert_eq!(start.elapsed(), ms(10));

    install("policies:\n  res-inline:\n    retry: { attempts: 4 }\n");
    let start = Instant::now();
    assert!(inline_defaults().await.is_err());
    assert_eq!(INLINE.take(), 4, "the policy's attempts");
    assert_eq!(start.elapsed(), ms(30), "the inline base and backoff");
    install("policies: {}\n");
}

static NO_POLICY: Calls = Calls::new();

/// Without a policy, only the inline sections apply.
#[resilient(
    retry(attempts = 3, base = "1ms"),
    circuit_breaker(min_calls = 10, window = 10)
)]
async fn no_policy() -> Result<usize, ApiError> {
    NO_POLICY.run();
    Err(ApiError::Http(HttpError::new(503)))
}

#[tokio::test(start_paused = true)]
async fn inline_sections_alone() {
    assert!(no_policy().await.is_err());
    assert_eq!(NO_POLICY.take(), 3);
}

static BLOCKING: Calls = Calls::new();

#[resilient(policy = "res-blocking")]
fn blocking(fail: bool) -> Result<usize, ApiError> {
    BLOCKING.run();
    if fail {
        Err(ApiError::Http(HttpError::new(503)))
    } else {
        Ok(1)
    }
}

#[tokio::test(start_paused = true)]
async fn a_blocking_function_takes_every_section_but_the_timeout() {
    let _policies = POLICIES.lock().await;
    install("policies:\n  res-blocking:\n    retry: { attempts: 2, base: 1ms }\n");
    assert!(blocking(true).is_err());
    assert_eq!(BLOCKING.take(), 2);
    assert_eq!(blocking(false).ok(), Some(1));
    install("policies: {}\n");
}

static CACHED: Calls = Calls::new();

#[resilient(policy = "res-cached", cache(ttl = "60s"))]
async fn cached_too(id: u32) -> Result<usize, ApiError> {
    Ok(CACHED.run() + id as usize)
}

#[tokio::test(start_paused = true)]
async fn cache_applies_when_the_attribute_names_it() {
    let _policies = POLICIES.lock().await;
    install("policies: {}\n");
    assert_eq!(cached_too(10).await.ok(), Some(11));
    assert_eq!(cached_too(10).await.ok(), Some(11), "cached");
    install("policies:\n  res-cached:\n    cache: { enabled: false }\n");
    assert_eq!(
        cached_too(10).await.ok(),
        Some(12),
        "the policy switched it off"
    );
    install("policies: {}\n");
}
