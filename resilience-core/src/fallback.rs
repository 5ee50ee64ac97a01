//! Fallback: a function called with the final error when everything inside it failed, whose
//! answer is the call's (`#[fallback(path)]`, or [`Retry::fallback`] / [`Pipeline::fallback`]
//! in code).
//!
//! The fallback takes the error by value and returns the function's own `Result<T, E>`, as
//! resilience4j's fallback method returns the method's type and Polly's `FallbackAction` an
//! outcome: it may answer (`Ok(a cached value)`, `Ok(a default)`) or fail in its turn (an
//! error that says more, or the same one). For an `async fn` it may be an `async fn` too.
//! A call that succeeds never calls it.

use std::fmt;
use std::future::{Future, Ready, ready};

use crate::error_class::Classify;
use crate::hooks::ErrorHooks;
use crate::pipeline::Pipeline;
use crate::rejected::Rejected;
use crate::retry::Retry;

/// A fallback that answers at once: `fn(E) -> Result<T, E>`.
#[derive(Debug)]
pub enum Answers {}

/// A fallback whose answer is awaited: `async fn(E) -> Result<T, E>`.
#[derive(Debug)]
pub enum Awaits {}

/// A function that can stand in for a failed call: called with its error `E`, it gives the
/// call's result `R` (the function's `Result<T, E>`), at once or as a future (`M` is
/// [`Answers`] or [`Awaits`], inferred from the function).
#[diagnostic::on_unimplemented(
    message = "a fallback must take the error `{E}` and return `{R}`",
    label = "called with the final error when the call fails",
    note = "write e.g. `fn fallback(error: {E}) -> {R}` (an `async fn` too, for an `async fn`)"
)]
pub trait Recover<E, R, M> {
    /// The answer, as a future.
    type Answer: Future<Output = R>;

    /// The answer to the failure `error`.
    fn recover(self, error: E) -> Self::Answer;
}

impl<F, E, R> Recover<E, R, Answers> for F
where
    F: FnOnce(E) -> R,
{
    type Answer = Ready<R>;

    fn recover(self, error: E) -> Ready<R> {
        ready(self(error))
    }
}

impl<F, E, R, Fut> Recover<E, R, Awaits> for F
where
    F: FnOnce(E) -> Fut,
    Fut: Future<Output = R>,
{
    type Answer = Fut;

    fn recover(self, error: E) -> Fut {
        self(error)
    }
}

/// A function that can stand in for a failed blocking call: called with its error `E`, it
/// returns the call's result `R` (the function's `Result<T, E>`).
#[diagnostic::on_unimplemented(
    message = "a fallback of a blocking `fn` must take the error `{E}` and return `{R}`",
    label = "called with the final error when the call fails",
    note = "write e.g. `fn fallback(error: {E}) -> {R}`; an `async fn` fallback needs an `async fn` to stand in for"
)]
pub trait RecoverBlocking<E, R> {
    /// The answer to the failure `error`.
    fn recover(self, error: E) -> R;
}

impl<F, E, R> RecoverBlocking<E, R> for F
where
    F: FnOnce(E) -> R,
{
    fn recover(self, error: E) -> R {
        self(error)
    }
}

/// One function with a fallback: its name, in the event a fallback logs. Built by
/// `#[fallback]` as a `static`.
#[derive(Debug)]
pub struct FallbackSite {
    name: &'static str,
}

impl FallbackSite {
    /// A site named `name` (conventionally `module::path::function`).
    pub const fn new(name: &'static str) -> Self {
        FallbackSite { name }
    }

    /// The site's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The call failed and its fallback answers instead: one `info` event (target
/// `resilience::fallback`); the failure itself was logged by the layer that gave up.
#[cold]
fn falling_back(site: &'static str) {
    tracing::info!(
        target: "resilience::fallback",
        site,
        "the call failed; its fallback answers"
    );
}

/// Runs `call`; if it fails, `fallback` is called with its error and its answer is returned.
/// What `#[fallback]` on an `async fn` calls.
pub async fn fallback_async<T, E, F, Fut, H, M>(
    site: &'static FallbackSite,
    fallback: H,
    call: F,
) -> Result<T, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    H: Recover<E, Result<T, E>, M>,
{
    match call().await {
        Ok(value) => Ok(value),
        Err(error) => {
            falling_back(site.name);
            fallback.recover(error).await
        }
    }
}

/// [`fallback_async`] for a blocking `fn`.
pub fn fallback_blocking<T, E, F, H>(
    site: &'static FallbackSite,
    fallback: H,
    call: F,
) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E>,
    H: RecoverBlocking<E, Result<T, E>>,
{
    match call() {
        Ok(value) => Ok(value),
        Err(error) => {
            falling_back(site.name);
            fallback.recover(error)
        }
    }
}

/// A [`Retry`] or a [`Pipeline`] with a fallback: what [`Retry::fallback`] and
/// [`Pipeline::fallback`] return. Its `run` methods are those of the policy, and when a call
/// fails (its last error, once every retry is spent) the fallback is called with the error
/// and its answer returned.
///
/// ```
/// # use resilience_core as resilience;
/// use resilience::{HttpError, Retry};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let retry = Retry::new()
///     .attempts(2)
///     .fallback(|error: HttpError| if error.status() == 503 { Ok("cached") } else { Err(error) });
/// let answer = retry.run(|| async { Err(HttpError::new(503)) }).await;
/// assert_eq!(answer, Ok("cached"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct WithFallback<P, H> {
    policy: P,
    fallback: H,
}

// Here rather than beside `Retry` and `Pipeline`: imports point down, and this module
// stands on theirs.
impl Retry {
    /// This retry with a fallback: when a call fails (its last error, once the retries are
    /// spent), `fallback` is called with the error and its `Result` returned instead. It is
    /// a closure or fn `Fn(E) -> Result<T, E>`, or for [`run`](WithFallback::run) one
    /// returning a future of it (see [`WithFallback`]).
    pub fn fallback<H>(self, fallback: H) -> WithFallback<Self, H> {
        WithFallback {
            policy: self,
            fallback,
        }
    }
}

impl Pipeline {
    /// This pipeline with a fallback: when a call fails (its last error once the retries are
    /// spent, or a refusal), `fallback` is called with the error and its `Result` returned
    /// instead (see [`WithFallback`]).
    pub fn fallback<H>(self, fallback: H) -> WithFallback<Self, H> {
        WithFallback {
            policy: self,
            fallback,
        }
    }
}

impl<P, H> WithFallback<P, H> {
    /// The failure's answer: the fallback's (the function may be called for every call, so
    /// it is taken by reference; an `async` closure or fn answers with a future).
    async fn answer<T, E, M>(&self, result: Result<T, E>) -> Result<T, E>
    where
        for<'a> &'a H: Recover<E, Result<T, E>, M>,
    {
        match result {
            Ok(value) => Ok(value),
            Err(error) => (&self.fallback).recover(error).await,
        }
    }

    fn answer_blocking<T, E>(&self, result: Result<T, E>) -> Result<T, E>
    where
        for<'a> &'a H: RecoverBlocking<E, Result<T, E>>,
    {
        result.or_else(|error| (&self.fallback).recover(error))
    }
}

impl<H> WithFallback<Retry, H> {
    /// [`Retry::run`], then the fallback on failure.
    pub async fn run<T, E, F, Fut, M>(&self, op: F) -> Result<T, E>
    where
        E: Classify + fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        for<'a> &'a H: Recover<E, Result<T, E>, M>,
    {
        self.answer(self.policy.run(op).await).await
    }

    /// [`Retry::run_with`], then the fallback on failure.
    pub async fn run_with<T, E, F, Fut, M>(&self, hooks: ErrorHooks<E>, op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        for<'a> &'a H: Recover<E, Result<T, E>, M>,
    {
        self.answer(self.policy.run_with(hooks, op).await).await
    }

    /// [`Retry::run_blocking`], then the fallback on failure.
    pub fn run_blocking<T, E, F>(&self, op: F) -> Result<T, E>
    where
        E: Classify + fmt::Display,
        F: FnMut() -> Result<T, E>,
        for<'a> &'a H: RecoverBlocking<E, Result<T, E>>,
    {
        self.answer_blocking(self.policy.run_blocking(op))
    }

    /// [`Retry::run_blocking_with`], then the fallback on failure.
    pub fn run_blocking_with<T, E, F>(&self, hooks: ErrorHooks<E>, op: F) -> Result<T, E>
    where
        F: FnMut() -> Result<T, E>,
        for<'a> &'a H: RecoverBlocking<E, Result<T, E>>,
    {
        self.answer_blocking(self.policy.run_blocking_with(hooks, op))
    }
}

impl<H> WithFallback<Pipeline, H> {
    /// [`Pipeline::run`], then the fallback on failure (a refusal included).
    pub async fn run<T, E, F, Fut, M>(&self, op: F) -> Result<T, E>
    where
        E: Classify + fmt::Display + From<Rejected>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        for<'a> &'a H: Recover<E, Result<T, E>, M>,
    {
        self.answer(self.policy.run(op).await).await
    }

    /// [`Pipeline::run_with`], then the fallback on failure (a refusal included).
    pub async fn run_with<T, E, F, Fut, M>(&self, hooks: ErrorHooks<E>, op: F) -> Result<T, E>
    where
        E: From<Rejected>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        for<'a> &'a H: Recover<E, Result<T, E>, M>,
    {
        self.answer(self.policy.run_with(hooks, op).await).await
    }
}
