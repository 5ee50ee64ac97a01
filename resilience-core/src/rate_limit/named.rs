//! Named limiters: one [`RateLimiter`] per policy name, shared by every site naming it, and
//! reconfigured in place when the policies change.

use std::sync::Arc;

use super::{RateLimitSpec, RateLimiter};
use crate::registry::SharedByName;

static NAMED: SharedByName<RateLimiter, RateLimitSpec> = SharedByName::new(
    "a shared rate limiter",
    |_, spec| RateLimiter::new(spec),
    RateLimiter::configure,
    |policy, inline| policy.rate_limit.map(|patch| patch.apply(inline)),
);

/// The limiter shared by every site naming `policy`, created on first use with `inline`
/// values overridden by the loaded policy's `rate_limit` section.
///
/// The first site to name a policy gives the inline values; when two sites name one policy
/// with different inline values, the policy's own values (YAML) are what make them agree.
pub fn named(policy: &str, inline: RateLimitSpec) -> Arc<RateLimiter> {
    NAMED.get_or_create(policy, inline)
}
