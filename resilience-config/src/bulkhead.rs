//! [`BulkheadSpec`]: a bulkhead as plain data, and [`BulkheadPatch`], a partial override.

use std::time::Duration;

use crate::declare::patch;

/// A bulkhead as plain data.
///
/// `max_wait` defaults to zero: a call that finds every slot taken is refused at once, as in
/// resilience4j and Polly; give a `max_wait` to queue instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BulkheadSpec {
    /// Calls allowed in flight at once (>= 1).
    pub max_concurrent: u32,
    /// How long a call may wait for a slot. Default zero.
    pub max_wait: Duration,
}

impl BulkheadSpec {
    /// No bound: what a site naming a policy without `max_concurrent` has until the policy
    /// gives one.
    pub const UNBOUNDED: u32 = u32::MAX >> 3;

    /// `max_concurrent` slots, no waiting.
    pub const fn new(max_concurrent: u32) -> Self {
        BulkheadSpec {
            max_concurrent,
            max_wait: Duration::ZERO,
        }
    }
}

patch! {
    /// A partial [`BulkheadSpec`]: the fields a named policy sets (a policy's `bulkhead`
    /// section).
    #[derive(Eq)]
    BulkheadPatch for BulkheadSpec {
        /// Overrides `max_concurrent`.
        max_concurrent: u32,
    }
    with setters {
        /// Overrides `max_wait`.
        max_wait: Duration,
    }
}

impl BulkheadPatch {
    /// `spec` with every field this patch sets replaced.
    pub fn apply(&self, mut spec: BulkheadSpec) -> BulkheadSpec {
        self.set(&mut spec);
        spec
    }
}
