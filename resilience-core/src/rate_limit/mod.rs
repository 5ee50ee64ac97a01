//! Rate limiting: a GCRA limiter ([`RateLimiter`]), its values as data ([`RateLimitSpec`]),
//! named limiters shared by every site naming a policy, and the executors `#[rate_limited]`
//! calls.

pub(crate) mod clock;
mod control;
mod gcra;
mod limiter;
mod named;
mod reschedule;
mod site;
mod spec;

pub use gcra::{Admission, Gcra};
pub use limiter::{Learned, RateLimiter, Verdict, key_hash};
pub use named::named;
pub(crate) use named::reconfigure_all;
pub use site::learn_from_server;
pub use site::{RateLimitSite, rate_limited_async, rate_limited_blocking};
pub use spec::{LimitMode, RateLimitPatch, RateLimitSpec};
