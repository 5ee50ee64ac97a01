//! A retry policy as plain data: [`RetrySpec`], its parts ([`Backoff`], [`Jitter`],
//! [`RetryOn`]) and [`RetryPatch`], the fields a named policy overrides. The retry loop that
//! runs them is the runtime's.

mod backoff;
mod jitter;
mod on;
mod spec;

pub use backoff::Backoff;
pub use jitter::Jitter;
pub use on::RetryOn;
pub use spec::{RetryPatch, RetrySpec};
