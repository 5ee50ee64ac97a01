//! The retry loops: [`RetrySite::retry_async`] (tokio's clock) and [`retry_blocking`] (the thread's).
//!
//! The happy path is one call and one match: the schedule, the clock (unless `max_elapsed`
//! is set), the random number generator and the logging are only touched after a failure.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::{Decision, GiveUp, RetryBudget, RetrySpec, Schedule};
use crate::clock::Stamp;
use crate::counters::{Call, PolicyCounters, SiteCell, SiteCounters};
use crate::error_class::{Classification, ErrorClass};
use crate::hooks::ErrorHooks;
use crate::observe::{CallMetrics, Outcome};
use crate::{families, observe, registry};

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

    /// [`verdict`](Self::verdict) of a try looked at again: an `Ok` value that `retry_if_ok`
    /// retries is retried (unless only unsent calls may be: it was answered), classed `Other`.
    fn verdict_of<T>(&self, retried: &Retried<T, E>, spec: &RetrySpec) -> (bool, Classification) {
        match retried {
            Retried::Err(error) => self.verdict(error, spec),
            Retried::Ok(_) => (!self.unsent_only, Classification::OTHER),
        }
    }
}

/// `retry_if_ok`: whether an `Ok` value is retried, when the site says.
pub(crate) type OkRetried<T> = Option<fn(&T) -> bool>;

/// A try the retry loop looks at again: an error, or an `Ok` value that `retry_if_ok` retries.
enum Retried<T, E> {
    Err(E),
    Ok(T),
}

impl<T, E> Retried<T, E> {
    /// What the call returns when no retry follows: the error, or the last `Ok` value.
    fn into_result(self) -> Result<T, E> {
        match self {
            Retried::Err(error) => Err(error),
            Retried::Ok(value) => Ok(value),
        }
    }
}

/// Whether a try's result is looked at again: an error, or an `Ok` value `retry_if_ok` retries.
#[inline(always)]
fn again<T, E>(result: &Result<T, E>, retry_if_ok: Option<fn(&T) -> bool>) -> bool {
    match result {
        Ok(value) => retry_if_ok.is_some_and(|retried| retried(value)),
        Err(_) => true,
    }
}

/// A try's result: `Ok` to return, or `Err` with what to look at again.
#[inline(always)]
fn judged<T, E>(
    result: Result<T, E>,
    retry_if_ok: Option<fn(&T) -> bool>,
) -> Result<T, Retried<T, E>> {
    match result {
        Err(error) => Err(Retried::Err(error)),
        Ok(value) if retry_if_ok.is_some_and(|retried| retried(&value)) => Err(Retried::Ok(value)),
        Ok(value) => Ok(value),
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
    /// The site's counters in [`crate::stats`], bumped after a failure; at a site naming a
    /// policy, on every call.
    counters: SiteCell,
    /// The policy's calls and retry rate, at a site naming a policy.
    policy_counters: OnceLock<Arc<PolicyCounters>>,
    /// Its `resilience_calls_total` and `resilience_call_duration_seconds` handles, made on
    /// the first call after [`enable_metrics`](crate::stats::enable_metrics).
    metrics: OnceLock<CallMetrics>,
    /// The retry budget it draws on (`#[retry(budget = "name")]`), by name.
    budget: Option<&'static str>,
    budget_cell: OnceLock<Arc<RetryBudget>>,
}

impl RetrySite {
    /// A site named `name` (conventionally `module::path::function`).
    pub const fn new(name: &'static str, policy: Option<&'static str>, spec: RetrySpec) -> Self {
        RetrySite {
            name,
            policy,
            spec,
            reported_missing: AtomicBool::new(false),
            counters: SiteCell::new(),
            policy_counters: OnceLock::new(),
            metrics: OnceLock::new(),
            budget: None,
            budget_cell: OnceLock::new(),
        }
    }

    /// This site drawing on the retry budget called `budget` (see [`RetryBudget`]): each call
    /// deposits into it, and each retry withdraws one or gives up.
    pub const fn with_budget(mut self, budget: &'static str) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The budget it draws on, if any.
    fn budget(&self) -> Option<&RetryBudget> {
        let name = self.budget?;
        Some(self.budget_cell.get_or_init(|| super::budget::named(name)))
    }

    /// The site's counters.
    #[inline]
    fn counted(&self) -> &SiteCounters {
        self.counters.get(self.name, self.policy)
    }

    /// The calls an alert judges: the policy's, at a site naming one; the site's own, at a
    /// site naming none while the `default` policy has an alert (see [`crate::alert`]).
    fn policy_counters(&self) -> Option<&PolicyCounters> {
        let counters = match self.policy {
            Some(policy) => self
                .policy_counters
                .get_or_init(|| crate::counters::policy(policy)),
            None if families::site_alerts() => self
                .policy_counters
                .get_or_init(|| crate::counters::site_window(self.name)),
            None => return None,
        };
        Some(counters)
    }

    /// When a call starts, if per-call metrics are on (one relaxed load when they are not).
    #[inline(always)]
    fn start(&self) -> Option<Stamp> {
        if families::per_call() {
            Some(Stamp::now())
        } else {
            None
        }
    }

    /// A call that `started` (see [`start`](Self::start)) ended with `outcome`.
    #[inline]
    fn finished(&self, started: Option<Stamp>, outcome: Outcome) {
        if let Some(started) = started {
            self.record(started, outcome);
        }
    }

    #[cold]
    #[inline(never)]
    fn record(&self, started: Stamp, outcome: Outcome) {
        if !families::metrics() {
            return;
        }
        self.metrics
            .get_or_init(|| CallMetrics::new(self.name, self.policy))
            .record(outcome, started.elapsed());
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

    /// [`spec`](Self::spec) from a policy already looked up (`None`: not loaded), for a
    /// caller that read the registry's snapshot once for every section.
    pub(crate) fn spec_from(&self, found: Option<&registry::NamedPolicy>) -> Cow<'_, RetrySpec> {
        match self.policy {
            None => Cow::Borrowed(&self.spec),
            Some(policy) => resolve_found(
                found.map(|named| named.retry),
                policy,
                &self.spec,
                &self.reported_missing,
                self.name,
            ),
        }
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
    resolve_found(
        registry::retry_patch(policy),
        policy,
        inline,
        reported_missing,
        site,
    )
}

/// The spec of a site naming `policy`, from what the registry holds for it: `None` when the
/// policy is not loaded (reported once), `Some(None)` when it has no `retry` section.
fn resolve_found<'a>(
    found: Option<Option<resilience_config::retry::RetryPatch>>,
    policy: &str,
    inline: &'a RetrySpec,
    reported_missing: &AtomicBool,
    site: &str,
) -> Cow<'a, RetrySpec> {
    match found {
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

    /// What `#[retry]` calls before the first try: the time, when per-call metrics are on
    /// (see [`enable_metrics`](crate::stats::enable_metrics)); else `None`, for one relaxed
    /// load.
    #[inline(always)]
    pub fn start(&self) -> Option<Stamp> {
        self.0.start()
    }

    /// What `#[retry]` calls when the first try succeeded: counts the call if it was timed
    /// (for the metrics, or for the `default` policy's alert).
    #[inline(always)]
    pub fn first_try_ok(&self, started: Option<Stamp>) {
        if started.is_some() {
            counted_first_try(&self.0);
        }
        self.0.finished(started, Outcome::Ok);
    }

    /// The retry loop after the first try at this site failed with `error`: what `#[retry]`
    /// on an `async fn` calls once the try it awaited itself (matched in the caller's own
    /// future, so the happy path adds no future around the try) has failed. The caller makes
    /// `hooks` in its failure arm, so the happy path never does; the loop is boxed, so the
    /// caller's future stays the size of its try. `started` is [`start`](Self::start)'s
    /// answer.
    pub fn after_first_failure<T, E, F, Fut>(
        &'static self,
        hooks: ErrorHooks<E>,
        op: F,
        error: E,
        started: Option<Stamp>,
    ) -> Pin<Box<impl Future<Output = Result<T, E>>>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        Box::pin(retry_inline_after_failure(
            &self.0, hooks, op, error, started,
        ))
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
    pub fn retry_async<T, E, F, Fut, H>(
        &'static self,
        hooks: H,
        op: F,
    ) -> impl Future<Output = Result<T, E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        H: FnOnce() -> ErrorHooks<E>,
    {
        self.run_site(hooks, None, op)
    }

    /// [`retry_async`](Self::retry_async), also retrying an `Ok` value for which
    /// `retry_if_ok` is true (`#[retry(retry_if_ok = ...)]`), on the same schedule as an
    /// error. When no retry follows (the attempts are spent, `max_elapsed` is reached, the
    /// budget refuses), the call returns the last `Ok` value.
    pub fn retry_async_if_ok<T, E, F, Fut, H>(
        &'static self,
        hooks: H,
        retry_if_ok: fn(&T) -> bool,
        op: F,
    ) -> impl Future<Output = Result<T, E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        H: FnOnce() -> ErrorHooks<E>,
    {
        self.run_site(hooks, Some(retry_if_ok), op)
    }

    fn run_site<T, E, F, Fut, H>(
        &'static self,
        hooks: H,
        retry_if_ok: Option<fn(&T) -> bool>,
        op: F,
    ) -> impl Future<Output = Result<T, E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        H: FnOnce() -> ErrorHooks<E>,
    {
        // Not an `async fn` awaiting the one below: the spec is read before the state
        // machine is made, so there is one state machine, not two nested ones.
        let spec = self.spec();
        let max_elapsed = spec.max_elapsed;
        self.retry_async_as(move || spec, max_elapsed, hooks, retry_if_ok, op)
    }

    /// [`retry_async`](Self::retry_async) with the values `spec` gives, read by the caller
    /// (the [`Pipeline`](crate::pipeline::Pipeline) reads every section from one snapshot)
    /// and only asked for after a failed first try: the happy path's future does not hold
    /// them. `max_elapsed` is theirs.
    pub(crate) async fn retry_async_as<T, E, F, Fut, H, S>(
        &'static self,
        spec: S,
        max_elapsed: Option<Duration>,
        hooks: H,
        retry_if_ok: Option<fn(&T) -> bool>,
        mut op: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        H: FnOnce() -> ErrorHooks<E>,
        S: FnOnce() -> Cow<'static, RetrySpec>,
    {
        // `run_async` written out rather than awaited: one state machine instead of two
        // nested ones, so the happy path stores its arguments once.
        let started = self.start();
        let budget = self.budget();
        if let Some(budget) = budget {
            budget.deposit();
        }
        let elapsed_from = max_elapsed.map(|_| Instant::now());
        let error = match judged(op().await, retry_if_ok) {
            Ok(value) => {
                counted_first_try(self);
                self.finished(started, Outcome::Ok);
                return Ok(value);
            }
            Err(error) => error,
        };
        // The spec and the hooks are made inside the box: held across its `.await` in this
        // future, they made it 648 bytes instead of 56, which every call moves.
        let counters = self.counted();
        let (result, call) = Box::pin(async move {
            let spec = spec();
            let hooks = hooks();
            retry_after_failure(
                counters,
                (&spec, budget),
                (&hooks, retry_if_ok),
                op,
                elapsed_from,
                error,
            )
            .await
        })
        .await;
        counted_call(self, call);
        self.finished(started, Outcome::of(result.is_ok(), call.retried));
        result
    }
}

/// A call that succeeded on its first try, at a site that counts every call.
#[inline]
fn counted_first_try(site: &RetrySite) {
    if let Some(policy) = site.policy_counters() {
        crate::counters::count_at(site.counted(), crate::counters::Event::OkFirstTry);
        crate::alert::count_call(policy, Call::default());
    }
}

/// A call that failed at least once, at a site that counts every call.
fn counted_call(site: &RetrySite, call: Call) {
    if let Some(policy) = site.policy_counters() {
        crate::alert::count_call(policy, call);
    }
}

/// The retry loop after a failed first try at an [`InlineRetrySite`], owning what it needs.
async fn retry_inline_after_failure<T, E, F, Fut>(
    site: &'static RetrySite,
    hooks: ErrorHooks<E>,
    op: F,
    error: E,
    started: Option<Stamp>,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let (result, call) = retry_after_failure(
        site.counted(),
        (&site.spec, None),
        (&hooks, None),
        op,
        None,
        Retried::Err(error),
    )
    .await;
    counted_call(site, call);
    site.finished(started, Outcome::of(result.is_ok(), call.retried));
    result
}

/// Runs `op` under `site`'s policy, sleeping the thread between tries. What `#[retry]` on a
/// plain `fn` calls.
pub fn retry_blocking<T, E, F>(
    site: &'static RetrySite,
    hooks: ErrorHooks<E>,
    op: F,
) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    retry_blocking_if_ok(site, hooks, None, op)
}

/// [`retry_blocking`], also retrying an `Ok` value for which `retry_if_ok` is true (see
/// [`RetrySite::retry_async_if_ok`]).
pub fn retry_blocking_if_ok<T, E, F>(
    site: &'static RetrySite,
    hooks: ErrorHooks<E>,
    retry_if_ok: Option<fn(&T) -> bool>,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    let spec = site.spec();
    let started = site.start();
    let budget = site.budget();
    if let Some(budget) = budget {
        budget.deposit();
    }
    let mut tries = 0u32;
    let mut first_failure = None;
    let result = run_blocking(
        &site.counters,
        (site.name, site.policy),
        (&spec, budget),
        (&hooks, retry_if_ok),
        || {
            tries = tries.saturating_add(1);
            let result = op();
            if tries == 1 && again(&result, retry_if_ok) {
                // An alert's `slow_call` reads how long a call retried.
                first_failure = Some(std::time::Instant::now());
            }
            result
        },
        &mut ThreadClock::start(&spec),
    );
    let retried = tries > 1;
    match (first_failure, &result) {
        (None, _) => counted_first_try(site),
        (Some(failed_at), result) => counted_call(
            site,
            Call {
                retried,
                failed: result.is_err(),
                retrying: failed_at.elapsed(),
            },
        ),
    }
    site.finished(started, Outcome::of(result.is_ok(), retried));
    result
}

/// The retry loop of a [`Retry`](super::Retry) builder: a value, not a `static`, so its
/// counters are looked up (in the list) after a first failure, and its per-call metrics
/// built for each call.
pub(crate) async fn run_async<T, E, F, Fut>(
    name: &'static str,
    policy: Option<&'static str>,
    spec: &RetrySpec,
    (hooks, retry_if_ok): (&ErrorHooks<E>, OkRetried<T>),
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = families::metrics().then(Stamp::now);
    let elapsed_from = spec.max_elapsed.map(|_| Instant::now());
    let (result, call) = match judged(op().await, retry_if_ok) {
        Ok(value) => (Ok(value), Call::default()),
        Err(error) => {
            let site = crate::counters::site(name, policy);
            // Boxed, as in `retry_async`: the loop's state stays out of a happy call's future.
            Box::pin(retry_after_failure(
                &site,
                (spec, None),
                (hooks, retry_if_ok),
                op,
                elapsed_from,
                error,
            ))
            .await
        }
    };
    if let Some(started) = started {
        let outcome = Outcome::of(result.is_ok(), call.retried);
        observe::call_finished(name, policy, outcome, Some(started.elapsed()));
    }
    result
}

/// Everything after a failed first try: kept out of [`run_async`]'s body so the happy path's
/// state machine stays small. Also says how the call went: whether it retried, failed, and
/// how long it spent retrying.
///
/// The rest of the call runs in one span (`resilience.call`, with the site and policy),
/// made here: the span, and the check whether a subscriber wants it, cost only a call that
/// failed once; a call that succeeds at once has no span of its own.
async fn retry_after_failure<T, E, F, Fut>(
    site: &SiteCounters,
    (spec, budget): (&RetrySpec, Option<&RetryBudget>),
    (hooks, retry_if_ok): (&ErrorHooks<E>, OkRetried<T>),
    mut op: F,
    started: Option<Instant>,
    mut error: Retried<T, E>,
) -> (Result<T, E>, Call)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    // An alert's `slow_call` reads how long a call retried; a clock read costs nothing next
    // to the failure that led here.
    let failed_at = Instant::now();
    let call = |retried, failed| Call {
        retried,
        failed,
        retrying: failed_at.elapsed(),
    };
    if spec.attempts == 0 {
        // `RetrySpec::OFF`: not a retry site until a policy says so.
        let result = error.into_result();
        if result.is_err() {
            crate::counters::count_at(site, crate::counters::Event::Failed);
        }
        let failed = result.is_err();
        return (result, call(false, failed));
    }
    let span = call_span(site);
    async move {
        let mut schedule = Schedule::new(*spec);
        let mut retried = false;
        loop {
            let elapsed = started.map_or(Duration::ZERO, |start| start.elapsed());
            let delay = match decide(site, &mut schedule, (hooks, budget), &error, elapsed) {
                Some(delay) => delay,
                None => {
                    let result = error.into_result();
                    let failed = result.is_err();
                    return (result, call(retried, failed));
                }
            };
            retried = true;
            tokio::time::sleep(delay).await;
            error = match judged(op().await, retry_if_ok) {
                Ok(value) => {
                    crate::counters::count_at(site, crate::counters::Event::OkAfterRetry);
                    return (Ok(value), call(true, false));
                }
                Err(error) => error,
            };
        }
    }
    .instrument(span)
    .await
}

/// The span of a call that failed once: its tries' events (and the events of the function
/// itself, on its later tries) land inside it.
fn call_span(site: &SiteCounters) -> tracing::Span {
    tracing::info_span!(
        target: "resilience::retry",
        "resilience.call",
        site = site.name,
        policy = site.policy,
    )
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

/// The blocking retry loop; `counters` is the site's cell for its counters, `name` and
/// `policy` what to look them up by after a failure.
pub(crate) fn run_blocking<T, E, F>(
    counters: &SiteCell,
    (name, policy): (&'static str, Option<&'static str>),
    (spec, budget): (&RetrySpec, Option<&RetryBudget>),
    (hooks, retry_if_ok): (&ErrorHooks<E>, OkRetried<T>),
    mut op: F,
    clock: &mut dyn BlockingClock,
) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
{
    let mut error = match judged(op(), retry_if_ok) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    let site = counters.get(name, policy);
    if spec.attempts == 0 {
        // `RetrySpec::OFF`: not a retry site until a policy says so.
        let result = error.into_result();
        if result.is_err() {
            crate::counters::count_at(site, crate::counters::Event::Failed);
        }
        return result;
    }
    let _span = call_span(site).entered();
    let mut schedule = Schedule::new(*spec);
    loop {
        let delay = match decide(
            site,
            &mut schedule,
            (hooks, budget),
            &error,
            clock.elapsed(),
        ) {
            Some(delay) => delay,
            None => return error.into_result(),
        };
        clock.sleep(delay);
        error = match judged(op(), retry_if_ok) {
            Ok(value) => {
                crate::counters::count_at(site, crate::counters::Event::OkAfterRetry);
                return Ok(value);
            }
            Err(error) => error,
        };
    }
}

/// One failure (or an `Ok` value `retry_if_ok` retries): classify, decide, log. `Some(delay)`
/// to retry after `delay`.
fn decide<T, E>(
    site: &SiteCounters,
    schedule: &mut Schedule,
    (hooks, budget): (&ErrorHooks<E>, Option<&RetryBudget>),
    error: &Retried<T, E>,
    elapsed: Duration,
) -> Option<Duration> {
    let (retryable, classification) = hooks.verdict_of(error, schedule.spec());
    let attempt = schedule.tries();
    let decision =
        super::rng::with(|rng| schedule.next(retryable, classification.retry_after, elapsed, rng));
    let shown = match error {
        Retried::Err(error) => Shown::Error(error, hooks.describe),
        Retried::Ok(_) => Shown::RetriedOk,
    };
    let event = observe::FailedTry {
        site,
        attempt,
        error: &shown,
        class: classification.class,
    };
    match decision {
        Decision::Retry(_) if budget.is_some_and(|budget| !budget.withdraw()) => {
            crate::counters::count_at(site, crate::counters::Event::BudgetRefusal);
            stopped(&event, error, Decision::GiveUp(GiveUp::BudgetSpent));
            None
        }
        Decision::Retry(delay) => {
            event.retrying(delay);
            super::observer::retrying();
            Some(delay)
        }
        decision => {
            stopped(&event, error, decision);
            None
        }
    }
}

/// A try after which no retry follows: an error is returned, or the last `Ok` value.
fn stopped<T, E>(event: &observe::FailedTry<'_>, error: &Retried<T, E>, decision: Decision) {
    match (error, decision) {
        (Retried::Err(_), Decision::GiveUp(reason)) => event.gave_up(reason),
        (Retried::Err(_), _) => event.not_retryable(),
        (Retried::Ok(_), Decision::GiveUp(reason)) => event.kept_ok(reason),
        (Retried::Ok(_), _) => event.kept_ok("only a call that was never sent may be retried"),
    }
}

/// A try as the logs show it.
enum Shown<'a, E> {
    Error(&'a E, fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result),
    RetriedOk,
}

impl<E> fmt::Display for Shown<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Error(error, describe) => describe(error, f),
            Shown::RetriedOk => f.write_str("an `Ok` value that `retry_if_ok` retries"),
        }
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
            &SiteCell::new(),
            ("test", None),
            (&spec, None),
            (&hooks, None),
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

    /// An `Ok` value `retry_if_ok` retries sleeps as an error does; the attempts spent, the
    /// last value is returned.
    #[test]
    fn blocking_retries_an_ok_value_and_returns_the_last() {
        let mut clock = FakeClock {
            now: Duration::ZERO,
            sleeps: Vec::new(),
        };
        let hooks = ErrorHooks::<HttpError>::classified();
        let mut calls = 0u32;
        let result = run_blocking(
            &SiteCell::new(),
            ("test", None),
            (&RetrySpec::DEFAULT.attempts(4), None),
            (&hooks, Some(|value: &u32| *value < 10)),
            || {
                calls += 1;
                match calls {
                    2 => Err(HttpError::new(503)),
                    _ => Ok(calls),
                }
            },
            &mut clock,
        );
        // Ok(1), a 503 and Ok(3) retried; Ok(4) on the last attempt is returned.
        assert_eq!(result, Ok(4));
        assert_eq!(clock.sleeps, [MS(100), MS(200), MS(400)]);
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
            &SiteCell::new(),
            ("test", None),
            (&RetrySpec::DEFAULT, None),
            (&hooks, None),
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
