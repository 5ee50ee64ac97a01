//! [`ErrorHooks`]: how the runtime looks at a caller's error type. The retry loop, the rate
//! limiter (a 429 it learns from) and the circuit breaker (what counts as a failure) all ask
//! the same hooks, so they live here, below each of them.

use std::fmt;

use crate::error_class::{Classification, Classify};

/// How the executor looks at an error of type `E`: classify it, describe it in logs, and
/// optionally a `retry_if` predicate that replaces the `on` set.
///
/// `#[retry]` builds these from the error type (using [`Classify`] when implemented, else the
/// `source()` chain for `std::error::Error` types, else `Other`); with [`Retry`](crate::Retry)
/// use [`ErrorHooks::classified`] or [`ErrorHooks::new`].
pub struct ErrorHooks<E> {
    pub(crate) classify: fn(&E) -> Classification,
    pub(crate) describe: fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result,
    pub(crate) retry_if: Option<fn(&E) -> bool>,
    /// Only failures before sending (`Connect`) may be retried: see [`Self::unsent_only`].
    pub(crate) unsent_only: bool,
}

impl<E> Clone for ErrorHooks<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for ErrorHooks<E> {}

impl<E> fmt::Debug for ErrorHooks<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorHooks")
            .field("retry_if", &self.retry_if.is_some())
            .field("unsent_only", &self.unsent_only)
            .finish_non_exhaustive()
    }
}

impl<E> ErrorHooks<E> {
    /// Hooks from a classifier and a describer (used in log events).
    ///
    /// ```
    /// # use resilience_core as resilience;
    /// use resilience::{Classification, ErrorClass, ErrorHooks};
    ///
    /// let hooks: ErrorHooks<String> = ErrorHooks::new(
    ///     |e| if e.contains("timeout") { Classification::new(ErrorClass::Timeout) } else { Classification::OTHER },
    ///     |e, f| f.write_str(e),
    /// );
    /// # let _ = hooks;
    /// ```
    pub const fn new(
        classify: fn(&E) -> Classification,
        describe: fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result,
    ) -> Self {
        ErrorHooks {
            classify,
            describe,
            retry_if: None,
            unsent_only: false,
        }
    }

    /// Retries exactly the errors for which `predicate` is true, instead of the `on` set.
    /// Retry-After is still honoured.
    pub const fn retry_if(mut self, predicate: fn(&E) -> bool) -> Self {
        self.retry_if = Some(predicate);
        self
    }

    /// The same hooks with an optional `retry_if` (what `#[retry(retry_if = ...)]` passes).
    pub const fn with_retry_if(mut self, predicate: Option<fn(&E) -> bool>) -> Self {
        self.retry_if = predicate;
        self
    }

    /// Retries only the failures classified `Connect` (the call was never sent), whatever
    /// `on` or `retry_if` say: for one call that is not safe to repeat once it has reached the
    /// server, such as a POST without an idempotency key. The other layers still see every
    /// error as it is classified (a breaker counts a timeout, a limiter learns from a 429).
    ///
    /// ```
    /// # use resilience_core as resilience;
    /// use resilience::{ErrorHooks, HttpError};
    ///
    /// let hooks = ErrorHooks::<HttpError>::classified().unsent_only();
    /// # let _ = hooks;
    /// ```
    pub const fn unsent_only(mut self) -> Self {
        self.unsent_only = true;
        self
    }

    /// What the error is, by this hook's classifier.
    pub(crate) fn classify(&self, error: &E) -> Classification {
        (self.classify)(error)
    }

    /// The error as the logs show it, by this hook's describer.
    #[cfg(test)]
    pub(crate) fn describe(&self, error: &E, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.describe)(error, f)
    }
}

impl<E: Classify + fmt::Display> ErrorHooks<E> {
    /// Hooks for an error type that implements [`Classify`] and `Display`.
    pub const fn classified() -> Self {
        ErrorHooks::new(<E as Classify>::classification, <E as fmt::Display>::fmt)
    }
}
