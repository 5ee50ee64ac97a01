//! [`Retry`]: the builder API, for retrying a closure without the macro.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::executor::{ThreadClock, resolve, run_async, run_blocking};
use super::{Backoff, Jitter, RetryOn, RetrySpec};
use crate::error_class::Classify;
use crate::hooks::ErrorHooks;

/// Retries a closure: the same executor as `#[retry]`, configured in code.
///
/// Every setter has the macro key's name and default. A value the macro and YAML refuse is
/// not refused by its setter (a chain of setters cannot fail); [`Retry::validate`] says what
/// is wrong, and the first run logs it once (`error` level, target `resilience::retry`).
/// Meanwhile each bad value is read as the nearest allowed one: `attempts(0)` as 1, a jitter
/// fraction clamped to `0.0..=1.0` (NaN as 0.0), a `factor` clamped to `1.0..=1e6` (NaN as
/// the default 2.0).
///
/// ```
/// # use resilience_core as resilience;
/// use resilience::Retry;
///
/// let retry = Retry::new().factor(f64::NAN);
/// assert_eq!(
///     retry.validate().unwrap_err(),
///     "`factor` must be between 1.0 and 1000000.0, found NaN"
/// );
/// ```
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::Duration;
/// use resilience::{HttpError, Jitter, Retry};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # tokio::time::pause();
/// let retry = Retry::new()
///     .attempts(4)
///     .base(Duration::from_millis(50))
///     .jitter(Jitter::Fraction(0.2));
///
/// let mut calls = 0;
/// let result = retry
///     .run(|| {
///         calls += 1;
///         let outcome = if calls < 3 { Err(HttpError::new(503)) } else { Ok(calls) };
///         async move { outcome }
///     })
///     .await;
/// assert_eq!(result, Ok(3));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Retry {
    name: &'static str,
    policy: Option<&'static str>,
    spec: RetrySpec,
    reported_missing: Arc<AtomicBool>,
    reported_invalid: Arc<AtomicBool>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry::new()
    }
}

impl Retry {
    /// The contract's defaults ([`RetrySpec::DEFAULT`]).
    pub fn new() -> Self {
        Retry::from_spec(RetrySpec::DEFAULT)
    }

    /// A retry with these values.
    pub fn from_spec(spec: RetrySpec) -> Self {
        Retry {
            name: "retry",
            policy: None,
            spec,
            reported_missing: Arc::new(AtomicBool::new(false)),
            reported_invalid: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The name used in log events and metrics (default `"retry"`).
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// A named policy whose `retry` section overrides these values at each call.
    pub fn policy(mut self, policy: &'static str) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Total tries, the first included.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.spec.attempts = attempts;
        self
    }

    /// How delays grow.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.spec.backoff = backoff;
        self
    }

    /// The first delay.
    pub fn base(mut self, base: Duration) -> Self {
        self.spec.base = base;
        self
    }

    /// Growth per retry of exponential backoff: finite, in `1.0..=1e6` (see [`Retry::validate`]).
    pub fn factor(mut self, factor: f64) -> Self {
        self.spec.factor = factor;
        self
    }

    /// Cap on one sleep.
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.spec.max_delay = max_delay;
        self
    }

    /// Give up when the next sleep would end past this much time after the first try began.
    pub fn max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.spec.max_elapsed = Some(max_elapsed);
        self
    }

    /// Randomisation of each sleep.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.spec.jitter = jitter;
        self
    }

    /// Which error classes are retried.
    pub fn on(mut self, on: RetryOn) -> Self {
        self.spec.on = on;
        self
    }

    /// Whether to honour a server's Retry-After.
    pub fn retry_after(mut self, honour: bool) -> Self {
        self.spec.retry_after = honour;
        self
    }

    /// The inline values.
    pub fn spec(&self) -> &RetrySpec {
        &self.spec
    }

    /// Checks the values set against the rules of `#[retry]` and YAML (`attempts >= 1`,
    /// `factor` finite in 1.0..=1e6, a jitter fraction in 0.0..=1.0): the first problem, in
    /// their words.
    pub fn validate(&self) -> Result<(), crate::InvalidValue> {
        self.spec.validate()
    }

    fn effective(&self) -> Cow<'_, RetrySpec> {
        if !self.reported_invalid.load(Ordering::Relaxed) {
            if let Err(problem) = self.spec.validate() {
                if !self.reported_invalid.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        target: "resilience::retry",
                        site = self.name,
                        "retry `{}` was built with a bad value: {problem}; using the nearest allowed value",
                        self.name,
                    );
                }
            }
        }
        resolve(self.policy, &self.spec, &self.reported_missing, self.name)
    }

    /// Runs `op` (called once per try) until it succeeds, fails with an error that is not
    /// retryable, or the policy is spent; returns the last result.
    pub async fn run<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        E: Classify + fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_with(ErrorHooks::classified(), op).await
    }

    /// [`Retry::run`] with explicit [`ErrorHooks`], for error types without [`Classify`]
    /// (for example `classify_error` on any `std::error::Error`) or with a `retry_if`.
    ///
    /// ```
    /// # use resilience_core as resilience;
    /// use std::fmt;
    /// use resilience::{classify_error, ErrorHooks, Retry};
    ///
    /// #[derive(Debug)]
    /// struct MyError(std::io::Error);
    /// impl fmt::Display for MyError {
    ///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, "my error") }
    /// }
    /// impl std::error::Error for MyError {
    ///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> { Some(&self.0) }
    /// }
    ///
    /// let hooks = ErrorHooks::<MyError>::new(|e| classify_error(e), |e, f| fmt::Display::fmt(e, f));
    /// let result: Result<(), MyError> = Retry::new().attempts(1).run_blocking_with(hooks, || {
    ///     Err(MyError(std::io::ErrorKind::TimedOut.into()))
    /// });
    /// assert!(result.is_err());
    /// ```
    pub async fn run_with<T, E, F, Fut>(&self, hooks: ErrorHooks<E>, op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let spec = self.effective();
        run_async(self.name, self.policy, &spec, (&hooks, None), op).await
    }

    /// [`Retry::run_with`], also retrying an `Ok` value for which `retry_if_ok` is true
    /// (what `#[retry(retry_if_ok = ...)]` does): on the same schedule as an error, and when
    /// no retry follows (the attempts are spent, `max_elapsed` is reached) the last `Ok`
    /// value is returned.
    ///
    /// ```
    /// # use resilience_core as resilience;
    /// use resilience::{ErrorHooks, HttpError, Retry};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut polls = 0;
    /// let status = Retry::new()
    ///     .attempts(5)
    ///     .run_with_if_ok(ErrorHooks::<HttpError>::classified(), |status: &&str| *status == "pending", || {
    ///         polls += 1;
    ///         let status = if polls < 3 { "pending" } else { "done" };
    ///         async move { Ok(status) }
    ///     })
    ///     .await;
    /// assert_eq!((status, polls), (Ok("done"), 3));
    /// # }
    /// ```
    pub async fn run_with_if_ok<T, E, F, Fut>(
        &self,
        hooks: ErrorHooks<E>,
        retry_if_ok: fn(&T) -> bool,
        op: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let spec = self.effective();
        run_async(
            self.name,
            self.policy,
            &spec,
            (&hooks, Some(retry_if_ok)),
            op,
        )
        .await
    }

    /// Runs a blocking `op`, sleeping the thread between tries.
    pub fn run_blocking<T, E, F>(&self, op: F) -> Result<T, E>
    where
        E: Classify + fmt::Display,
        F: FnMut() -> Result<T, E>,
    {
        self.run_blocking_with(ErrorHooks::classified(), op)
    }

    /// [`Retry::run_blocking`] with explicit [`ErrorHooks`].
    pub fn run_blocking_with<T, E, F>(&self, hooks: ErrorHooks<E>, op: F) -> Result<T, E>
    where
        F: FnMut() -> Result<T, E>,
    {
        self.blocking(hooks, None, op)
    }

    /// [`Retry::run_blocking_with`], also retrying an `Ok` value for which `retry_if_ok` is
    /// true (see [`Retry::run_with_if_ok`]).
    pub fn run_blocking_with_if_ok<T, E, F>(
        &self,
        hooks: ErrorHooks<E>,
        retry_if_ok: fn(&T) -> bool,
        op: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Result<T, E>,
    {
        self.blocking(hooks, Some(retry_if_ok), op)
    }

    fn blocking<T, E, F>(
        &self,
        hooks: ErrorHooks<E>,
        retry_if_ok: Option<fn(&T) -> bool>,
        op: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Result<T, E>,
    {
        let spec = self.effective();
        let mut clock = ThreadClock::start(&spec);
        // A builder is a value, not a `static`: its counters are looked up after a failure.
        let counters = crate::counters::SiteCell::new();
        let started = crate::families::metrics().then(crate::clock::Stamp::now);
        let mut op = op;
        let mut tries = 0u32;
        let result = run_blocking(
            &counters,
            (self.name, self.policy),
            (&spec, None),
            (&hooks, retry_if_ok),
            || {
                tries = tries.saturating_add(1);
                op()
            },
            &mut clock,
        );
        if let Some(started) = started {
            let outcome = crate::observe::Outcome::of(result.is_ok(), tries > 1);
            crate::observe::call_finished(self.name, self.policy, outcome, Some(started.elapsed()));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HttpError;

    /// `factor(NaN)` made every retry sleep `max_delay` (10 s, then 10 s); it is reported by
    /// `validate` and read as the default 2.0 (100 ms, then 200 ms).
    #[tokio::test(start_paused = true)]
    async fn a_bad_factor_is_reported_and_read_as_the_nearest_allowed_one() {
        for (factor, found, slept) in [
            (f64::NAN, "NaN", 300),
            (-2.0, "-2.0", 200),
            (f64::INFINITY, "inf", 10_100),
        ] {
            let retry = Retry::new().attempts(3).factor(factor);
            assert_eq!(
                retry.validate().map_err(|e| e.to_string()),
                Err(format!(
                    "`factor` must be between 1.0 and 1000000.0, found {found}"
                ))
            );
            let started = tokio::time::Instant::now();
            let result: Result<(), HttpError> =
                retry.run(|| async { Err(HttpError::new(503)) }).await;
            assert_eq!(result, Err(HttpError::new(503)));
            assert_eq!(started.elapsed(), Duration::from_millis(slept), "{factor}");
        }
    }

    #[test]
    fn the_other_float_arguments_are_checked_the_same_way() {
        assert_eq!(
            Retry::new()
                .jitter(Jitter::Fraction(f64::NAN))
                .validate()
                .map_err(|e| e.to_string()),
            Err("`jitter` must be between 0.0 and 1.0, found NaN".to_string())
        );
        assert_eq!(
            Retry::new()
                .jitter(Jitter::Fraction(-0.5))
                .validate()
                .map_err(|e| e.to_string()),
            Err("`jitter` must be between 0.0 and 1.0, found -0.5".to_string())
        );
        assert_eq!(
            Retry::new()
                .attempts(0)
                .validate()
                .map_err(|e| e.to_string()),
            Err("`attempts` must be at least 1 (it counts the first try), found 0".to_string())
        );
        assert_eq!(Retry::new().factor(1.5).validate(), Ok(()));
    }
}
