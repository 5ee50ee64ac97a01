#![doc = include_str!("../README.md")]

pub use resilience_core::*;
pub use resilience_macros::retry;

#[doc(hidden)]
pub use resilience_core::__private;
