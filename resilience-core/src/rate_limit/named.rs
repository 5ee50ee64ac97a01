//! Named limiters: one [`RateLimiter`] per policy name, shared by every site naming it, and
//! reconfigured in place when the policies change.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::{RateLimitSpec, RateLimiter};
use crate::registry::{self, Policies};

struct Entry {
    limiter: Arc<RateLimiter>,
    /// The inline values of the first site that named the policy: what remains when the
    /// loaded policies stop setting some field.
    inline: RateLimitSpec,
}

static NAMED: LazyLock<Mutex<HashMap<String, Entry>>> = LazyLock::new(Default::default);

/// The limiter shared by every site naming `policy`, created on first use with `inline`
/// values overridden by the loaded policy's `rate_limit` section.
///
/// The first site to name a policy gives the inline values; when two sites name one policy
/// with different inline values, the policy's own values (YAML) are what make them agree.
pub fn named(policy: &str, inline: RateLimitSpec) -> Arc<RateLimiter> {
    let mut named = NAMED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(entry) = named.get(policy) {
        return Arc::clone(&entry.limiter);
    }
    let spec = effective(&registry::current(), policy, inline);
    let limiter = Arc::new(RateLimiter::new(spec));
    named.insert(
        policy.to_string(),
        Entry {
            limiter: Arc::clone(&limiter),
            inline,
        },
    );
    limiter
}

fn effective(policies: &Policies, policy: &str, inline: RateLimitSpec) -> RateLimitSpec {
    match policies.get(policy).and_then(|p| p.rate_limit) {
        Some(patch) => patch.apply(inline),
        None => inline,
    }
}

/// Applies newly installed policies to every named limiter already in use.
pub(crate) fn reconfigure_all(policies: &Policies) {
    let named = NAMED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for (name, entry) in named.iter() {
        entry
            .limiter
            .configure(effective(policies, name, entry.inline));
    }
}
