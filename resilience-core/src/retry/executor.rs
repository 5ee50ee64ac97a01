//! The retry loops: [`RetrySite::retry_async`] (tokio's clock) and [`retry_blocking`] (the thread's).
//!
//! The happy path is one call and one match: the schedule, the clock (unless `max_elapsed`
//! is set), the random number generator and the logging are only touched after a failure.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Decision, RetrySpec, Schedule};
use crate::error_class::{Classification, ErrorClass};
use crate::hooks::ErrorHooks;
use crate::{observe, registry};

impl<E> ErrorHooks<E> {
    /// Whether the error is retried (by `retry_if`, else by the spec's `on` set), and what it is.
    fn verdict(&self, error: &E, spec: &RetrySpec) -> (bool, Classification) {
        let classification = (self.classify)(error);
        let retryable = match self.retry_if {
            _ if self.unsent_only && classification.class != ErrorClass::Connect => false,
            Some(predicate) => predicate(error),
            None => spec.on.matches(classification.class),
        };
        (retryable, classification)
    }
}

/// One annotated function: its name, the policy it names, and its inline retry values.
/// Built by `#[retry]` as a `static`.
#[derive(Debug)]
pub struct RetrySite {
    name: &'static str,
    policy: Option<&'static str>,
    spec: RetrySpec,
    reported_missing: AtomicBool,
    /// A site naming a policy counts every call (see [`crate::stats`]).
    counters: std::sync::OnceLock<Counters>,
}

/// The site's and its policy's counters.
type Counters = (
    std::sync::Arc<crate::counters::SiteCounters>,
    std::sync::Arc<crate::counters::PolicyCounters>,
);

impl RetrySite {
    /// A site named `name` (conventionally `module::path::function`).
    pub const fn new(name: &'static str, policy: Option<&'static str>, spec: RetrySpec) -> Self {
        RetrySite {
            name,
            policy,
            spec,
            reported_missing: AtomicBool::new(false),
            counters: std::sync::OnceLock::new(),
        }
    }

    /// The counters of a site naming a policy.
    fn counters(&self) -> Option<&Counters> {
        let policy = self.policy?;
        Some(self.counters.get_or_init(|| {
            (
                crate::counters::site(self.name, Some(policy)),
                crate::counters::policy(policy),
            )
        }))
    }

    /// The site's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The named policy, if any.
    pub fn policy(&self) -> Option<&'static str> {
        self.policy
    }

    /// The inline values, before any named policy.
    pub fn inline_spec(&self) -> &RetrySpec {
        &self.spec
    }

    /// The values a call starting now uses: the inline ones, overridden field by field by the
    /// named policy's `retry` section when the policy is loaded.
    #[inline]
    pub fn spec(&self) -> Cow<'_, RetrySpec> {
        resolve(self.policy, &self.spec, &self.reported_missing, self.name)
    }
}

/// The spec a call uses. Inlined so that a site without a policy (known at the call site)
/// reduces to a borrow; the registry lookup stays out of line.
#[inline]
pub(crate) fn resolve<'a>(
    policy: Option<&str>,
    inline: &'a RetrySpec,
    reported_missing: &AtomicBool,
    site: &str,
) -> Cow<'a, RetrySpec> {
    match policy {
        None => Cow::Borrowed(inline),
        Some(policy) => resolve_named(policy, inline, reported_missing, site),
    }
}

#[inline(never)]
fn resolve_named<'a>(
    policy: &str,
    inline: &'a RetrySpec,
    reported_missing: &AtomicBool,
    site: &str,
) -> Cow<'a, RetrySpec> {
    match registry::retry_patch(policy) {
        Some(Some(patch)) => {
            let mut spec = patch.apply(*inline);
            if spec.attempts == 0 {
                // `RetrySpec::OFF` under a `retry` section: the section turns retrying on.
                spec.attempts = RetrySpec::DEFAULT.attempts;
            }
            Cow::Owned(spec)
        }
        Some(None) => Cow::Borrowed(inline),
        None => {
            if !reported_missing.swap(true, Ordering::Relaxed) {
                observe::policy_missing(site, policy);
            }
            Cow::Borrowed(inline)
        }
    }
}

/// A [`RetrySite`] that names no policy and sets no `max_elapsed`, known when `#[retry]`
/// expands: its calls keep nothing but the try until one fails.
#[derive(Debug)]
pub struct InlineRetrySite(RetrySite);

impl InlineRetrySite {
    /// A site named `name` with the values `spec`, whose `max_elapsed` must be `None` (else
    /// it is ignored).
    pub const fn new(name: &'static str, spec: RetrySpec) -> Self {
        InlineRetrySite(RetrySite::new(name, None, spec))
    }

    /// The retry loop after the first try at this site failed with `error`: what `#[retry]`
    /// on an `async fn` calls once the try it awaited itself (matched in the caller's own
    /// future, so the happy path adds no future around the try) has failed. The caller makes
    /// `hooks` in its failure arm, so the happy path never does; the loop is boxed, so the
    /// caller's future stays the size of its try.
    pub fn after_first_failure<T, E, F, Fut>(
        &'static self,
        hooks: ErrorHooks<E>,
        op: F,
        error: E,
    ) -> Pin<Box<impl Future<Output = Result<T, E>>>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        Box::pin(retry_inline_after_failure(&self.0, hooks, op, error))
    }
}

impl RetrySite {
    /// Runs `op` under the site's policy on tokio's clock: what `#[retry]` on an `async fn`
    /// calls (an [`InlineRetrySite`] when the attribute names no policy and sets no
    /// `max_elapsed`). `hooks` is only called after a failure.
    ///
    /// The happy path is one call and one match; the retry loop's state (schedule, sleep,
    /// next try) is boxed, after a failure: it would otherwise make every call's future
    /// several times larger, and a happy call pays for moving it around.
    pub async fn retry_async<T, E, F, Fut, H>(&'static self, hooks: H, mut op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        H: FnOnce() -> ErrorHooks<E>,
    {
        // `run_async` written out rather than awaited: one state machine instead of two
        // nested ones, so the happy path stores its arguments once.
        let spec = self.spec();
        let started = spec.max_elapsed.map(|_| tokio::time::Instant::now());
        let error = match op().await {
            Ok(value) => {
                counted_first_try(self);
                return Ok(value);
            }
            Err(error) => error,
        };
        let (result, retried) = Box::pin(retry_after_failure(
            self.name,
            self.policy,
            &spec,
            &hooks(),
            op,
            started,
            error,
        ))
        .await;
        counted_call(self, retried);
        result
    }
}

/// A call that succeeded on its first try, at a site that counts every call.
#[inline]
fn counted_first_try(site: &RetrySite) {
    if let Some((counters, policy)) = site.counters() {
        crate::counters::count_at(counters, crate::counters::Event::OkFirstTry);
        crate::alert::count_call(policy, false);
    }
}

/// A call that failed at least once, at a site that counts every call.
fn counted_call(site: &RetrySite, retried: bool) {
    if let Some((_, policy)) = site.counters() {
        crate::alert::count_call(policy, retried);
    }
}

/// The retry loop after a failed first try at an [`InlineRetrySite`], owning what it needs.
async fn retry_inline_after_failure<T, E, F, Fut>(
    site: &'static RetrySite,
    hooks: ErrorHooks<E>,
    op: F,
    error: E,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retry_after_failure(site.name, site.policy, &site.spec, &hooks, op, None, error)
        .await
        .0
}

/// Runs `op` under `site`'s policy, sleeping the thread between tries. What `#[retry]` on a
/// plain `fn` calls.
pub fn retry_blocking<T, E, F>(
    site: &'static RetrySite,
    hooks: ErrorHooks<E>,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    let spec = site.spec();
    let mut tries = 0;
    let result = run_blocking(
        site.name,
        site.policy,
        &spec,
        &hooks,
        || {
            tries += 1;
            op()
        },
        &mut ThreadClock::start(&spec),
    );
    match (tries, &result) {
        (1, Ok(_)) => counted_first_try(site),
        (tries, _) => counted_call(site, tries > 1),
    }
    result
}

pub(crate) async fn run_async<T, E, F, Fut>(
    name: &str,
    policy: Option<&str>,
    spec: &RetrySpec,
    hooks: &ErrorHooks<E>,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = spec.max_elapsed.map(|_| tokio::time::Instant::now());
    let error = match op().await {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    // Boxed, as in `retry_async`: the loop's state stays out of a happy call's future.
    Box::pin(retry_after_failure(
        name, policy, spec, hooks, op, started, error,
    ))
    .await
    .0
}

/// Everything after a failed first try: kept out of [`run_async`]'s body so the happy path's
/// state machine stays small. Also says whether it retried.
async fn retry_after_failure<T, E, F, Fut>(
    name: &str,
    policy: Option<&str>,
    spec: &RetrySpec,
    hooks: &ErrorHooks<E>,
    mut op: F,
    started: Option<tokio::time::Instant>,
    mut error: E,
) -> (Result<T, E>, bool)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    if spec.attempts == 0 {
        // `RetrySpec::OFF`: not a retry site until a policy says so.
        crate::counters::count(name, policy, crate::counters::Event::Failed);
        return (Err(error), false);
    }
    let mut schedule = Schedule::new(*spec);
    let mut retried = false;
    loop {
        let elapsed = started.map_or(Duration::ZERO, |start| start.elapsed());
        let delay = match decide(name, policy, &mut schedule, hooks, &error, elapsed) {
            Some(delay) => delay,
            None => return (Err(error), retried),
        };
        retried = true;
        tokio::time::sleep(delay).await;
        error = match op().await {
            Ok(value) => {
                crate::counters::count(name, policy, crate::counters::Event::OkAfterRetry);
                return (Ok(value), true);
            }
            Err(error) => error,
        };
    }
}

/// The blocking loop's view of time, so tests can replace the thread's clock.
pub(crate) trait BlockingClock {
    fn elapsed(&self) -> Duration;
    fn sleep(&mut self, duration: Duration);
}

pub(crate) struct ThreadClock(Option<std::time::Instant>);

impl ThreadClock {
    pub(crate) fn start(spec: &RetrySpec) -> Self {
        ThreadClock(spec.max_elapsed.map(|_| std::time::Instant::now()))
    }
}

impl BlockingClock for ThreadClock {
    fn elapsed(&self) -> Duration {
        self.0.map_or(Duration::ZERO, |start| start.elapsed())
    }
    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

pub(crate) fn run_blocking<T, E, F>(
    name: &str,
    policy: Option<&str>,
    spec: &RetrySpec,
    hooks: &ErrorHooks<E>,
    mut op: F,
    clock: &mut dyn BlockingClock,
) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    let mut error = match op() {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    if spec.attempts == 0 {
        // `RetrySpec::OFF`: not a retry site until a policy says so.
        crate::counters::count(name, policy, crate::counters::Event::Failed);
        return Err(error);
    }
    let mut schedule = Schedule::new(*spec);
    loop {
        let delay = match decide(name, policy, &mut schedule, hooks, &error, clock.elapsed()) {
            Some(delay) => delay,
            None => return Err(error),
        };
        clock.sleep(delay);
        error = match op() {
            Ok(value) => {
                crate::counters::count(name, policy, crate::counters::Event::OkAfterRetry);
                return Ok(value);
            }
            Err(error) => error,
        };
    }
}

/// One failure: classify, decide, log. `Some(delay)` to retry after `delay`.
fn decide<E>(
    name: &str,
    policy: Option<&str>,
    schedule: &mut Schedule,
    hooks: &ErrorHooks<E>,
    error: &E,
    elapsed: Duration,
) -> Option<Duration> {
    let (retryable, classification) = hooks.verdict(error, schedule.spec());
    let attempt = schedule.tries();
    let decision = schedule.next(
        retryable,
        classification.retry_after,
        elapsed,
        &mut rand::rng(),
    );
    let event = observe::RetryEvent {
        site: name,
        policy,
        attempt,
        error: &Shown(error, hooks.describe),
        class: classification.class,
    };
    match decision {
        Decision::Retry(delay) => {
            event.retrying(delay);
            super::observer::retrying();
            Some(delay)
        }
        Decision::Return => {
            event.not_retryable();
            None
        }
        Decision::GiveUp(reason) => {
            event.gave_up(reason);
            None
        }
    }
}

struct Shown<'a, E>(&'a E, fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result);

impl<E> fmt::Display for Shown<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.1)(self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backoff, ErrorClass, HttpError};

    const MS: fn(u64) -> Duration = Duration::from_millis;

    struct FakeClock {
        now: Duration,
        sleeps: Vec<Duration>,
    }

    impl BlockingClock for FakeClock {
        fn elapsed(&self) -> Duration {
            self.now
        }
        fn sleep(&mut self, duration: Duration) {
            self.now += duration;
            self.sleeps.push(duration);
        }
    }

    fn run(spec: RetrySpec, errors: &[u16]) -> (Result<u32, HttpError>, Vec<Duration>, u32) {
        let mut clock = FakeClock {
            now: Duration::ZERO,
            sleeps: Vec::new(),
        };
        let mut calls = 0;
        let hooks = ErrorHooks::<HttpError>::classified();
        let result = run_blocking(
            "test",
            None,
            &spec,
            &hooks,
            || {
                calls += 1;
                match errors.get(calls as usize - 1) {
                    Some(code) => Err(HttpError::new(*code)),
                    None => Ok(calls),
                }
            },
            &mut clock,
        );
        (result, clock.sleeps, calls)
    }

    #[test]
    fn blocking_follows_the_schedule() {
        let spec = RetrySpec::DEFAULT.attempts(4).backoff(Backoff::Linear);
        let (result, sleeps, calls) = run(spec, &[503, 502, 504]);
        assert_eq!(result, Ok(4));
        assert_eq!(sleeps, [MS(100), MS(200), MS(300)]);
        assert_eq!(calls, 4);
    }

    #[test]
    fn blocking_returns_the_last_error() {
        let (result, sleeps, calls) = run(RetrySpec::DEFAULT, &[503, 502, 504, 500]);
        assert_eq!(result, Err(HttpError::new(504)));
        assert_eq!(sleeps, [MS(100), MS(200)]);
        assert_eq!(calls, 3);
    }

    #[test]
    fn blocking_stops_on_non_retryable() {
        let (result, sleeps, calls) = run(RetrySpec::DEFAULT, &[404]);
        assert_eq!(result, Err(HttpError::new(404)));
        assert!(sleeps.is_empty());
        assert_eq!(calls, 1);
    }

    #[test]
    fn blocking_max_elapsed_uses_the_clock() {
        let spec = RetrySpec::DEFAULT.attempts(10).max_elapsed(Some(MS(700)));
        let (result, sleeps, calls) = run(spec, &[503; 10]);
        assert_eq!(result, Err(HttpError::new(503)));
        assert_eq!(sleeps, [MS(100), MS(200), MS(400)]);
        assert_eq!(calls, 4);
    }

    #[test]
    fn retry_if_replaces_on() {
        let mut clock = FakeClock {
            now: Duration::ZERO,
            sleeps: Vec::new(),
        };
        let hooks = ErrorHooks::<HttpError>::classified().retry_if(|e| e.status() == 404);
        let mut calls = 0;
        let result: Result<(), HttpError> = run_blocking(
            "test",
            None,
            &RetrySpec::DEFAULT,
            &hooks,
            || {
                calls += 1;
                Err(HttpError::new(if calls == 1 { 404 } else { 503 }))
            },
            &mut clock,
        );
        assert_eq!(result, Err(HttpError::new(503)));
        assert_eq!(calls, 2, "404 retried by the predicate, 503 refused by it");
        assert_eq!(
            hooks
                .verdict(&HttpError::new(404), &RetrySpec::DEFAULT)
                .1
                .class,
            ErrorClass::Status(404)
        );
    }
}
