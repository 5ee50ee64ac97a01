//! Retrying: the policy as plain data ([`RetrySpec`]), the backoff and jitter maths, the
//! decision of what to do after each failure, and the executors.
//!
//! Use [`Retry`] to retry a closure, or `#[retry(...)]` on a function; both run the same
//! executor.

mod budget;
mod builder;
// What `#[retry]` expands to: `__private` re-exports it from here.
pub(crate) mod executor;
mod observer;
// Jitter's random numbers: the thread's, or a simulated caller's seeded ones.
pub(crate) mod rng;
mod schedule;

pub use crate::hooks::ErrorHooks;
pub use budget::{RetryBudget, RetryBudgetPatch, RetryBudgetSpec, named as budget};
pub use builder::Retry;
pub(crate) use observer::counting_retries;
// Plain data, shared with the macros and YAML.
pub use resilience_config::retry::{Backoff, Jitter, RetryOn, RetryPatch, RetrySpec};
pub use schedule::{Decision, GiveUp, Schedule};
