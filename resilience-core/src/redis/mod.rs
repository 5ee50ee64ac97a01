//! Redis backends (feature `redis`): state shared by every instance of a service.
//!
//! [`connection`] keeps one multiplexed, reconnecting connection per URL and bounds every
//! round trip; [`limiter`] is GCRA in one Lua script on the Redis server's clock.

pub(crate) mod cache;
pub(crate) mod connection;
pub(crate) mod limiter;
