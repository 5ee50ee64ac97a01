//! Named limiters: one [`RateLimiter`] per policy name, shared by every site naming it, and
//! reconfigured in place when the policies change.

use std::sync::Arc;

use super::{RateLimitSpec, RateLimiter};
use crate::registry::{NamedPolicy, Policies, SharedByName, SharedState};

impl SharedState for RateLimiter {
    const KIND: &'static str = "a shared rate limiter";
    type Spec = RateLimitSpec;

    fn create(spec: RateLimitSpec) -> Self {
        RateLimiter::new(spec)
    }

    fn configure(&self, spec: RateLimitSpec) {
        RateLimiter::configure(self, spec);
    }

    fn effective(policy: Option<&NamedPolicy>, inline: RateLimitSpec) -> RateLimitSpec {
        match policy.and_then(|policy| policy.rate_limit) {
            Some(patch) => patch.apply(inline),
            None => inline,
        }
    }
}

static NAMED: SharedByName<RateLimiter> = SharedByName::new();

/// The limiter shared by every site naming `policy`, created on first use with `inline`
/// values overridden by the loaded policy's `rate_limit` section.
///
/// The first site to name a policy gives the inline values; when two sites name one policy
/// with different inline values, the policy's own values (YAML) are what make them agree.
pub fn named(policy: &str, inline: RateLimitSpec) -> Arc<RateLimiter> {
    NAMED.get_or_create(policy, inline)
}

/// Applies newly installed policies to every named limiter already in use.
pub(crate) fn reconfigure_all(policies: &Policies) {
    NAMED.reconfigure_all(policies);
}
