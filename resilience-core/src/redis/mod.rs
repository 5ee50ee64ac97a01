//! Redis backends (feature `redis`): state shared by every instance of a service.
//!
//! [`connection`] keeps one multiplexed, reconnecting connection per URL and bounds every
//! round trip; [`invalidation`] keeps the local tiers in front of Redis caches coherent;
//! [`limiter`] is GCRA in one Lua script on the Redis server's clock, and [`lease`] lets an
//! instance take permits from it in batches.

pub(crate) mod cache;
pub(crate) mod connection;
pub(crate) mod invalidation;
pub(crate) mod keys;
pub(crate) mod lease;
pub(crate) mod limiter;
