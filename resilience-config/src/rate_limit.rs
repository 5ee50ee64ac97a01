//! [`RateLimitSpec`]: a rate limit as plain data.

use std::time::Duration;

use crate::InvalidValue;
use crate::declare::patch;

/// What a rate-limited call does when no permit is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LimitMode {
    /// Sleep until the reserved slot (callers are admitted in arrival order).
    #[default]
    Wait,
    /// Return `Rejected::RateLimited { retry_after }` at once.
    Reject,
}

impl LimitMode {
    /// Parses the macro / YAML name: `"wait"` or `"reject"`.
    pub fn from_name(name: &str) -> Option<LimitMode> {
        match name {
            "wait" => Some(LimitMode::Wait),
            "reject" => Some(LimitMode::Reject),
            _ => None,
        }
    }
}

/// Whether an instance sharing a rate limit through Redis takes permits in batches (a
/// policy's `rate_limit: { lease: auto | N | off }`, YAML only). See the runtime's
/// `docs/redis.md`, *Permit leasing*, for what a lease is and the bound it puts on
/// over-admission.
///
/// A lease is a batch of permits one round trip takes from the shared schedule and this
/// instance spends locally, without a round trip, until they run out or expire. The batch is
/// sized from the permits this instance used in the lease's lifetime just before (a tenth of
/// `period`, at most 100 ms), at most [`cap`](Lease::cap) permits; an instance that used one
/// permit or none in that span takes no lease (a refill would serve no second check), so an
/// idle instance holds none. Permits left when the lifetime ends are dropped, never used late.
///
/// **Over-admission bound.** The lease is taken by the script call of the check that asks for
/// it, only when that check is admitted at once, as if it cost the lease's permits too: the
/// shared schedule stays a strict GCRA. A leased permit is used later than a strict schedule
/// would let it start, never more of them: in any window of `period`, K instances whose
/// leases hold at most `cap` permits start at most `calls + burst + (K + 1) × cap` calls of
/// one permit (the strict schedule's `calls + burst`, one lease of look-ahead at the window's
/// end, and the K leases held when it opens). With `cap` 1 (`off`, or `auto` under 200
/// `calls`) that is the strict schedule's own bound.
///
/// ```
/// # use resilience_config as resilience;
/// use resilience::rate_limit::Lease;
///
/// assert_eq!(Lease::Auto.cap(5000), 50); // 1% of `calls`
/// assert_eq!(Lease::Auto.cap(100), 1); // a small quota: one round trip per check
/// assert_eq!(Lease::Max(8).cap(100), 8);
/// assert_eq!(Lease::Off.cap(1_000_000), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lease {
    /// One round trip per check, as without leasing.
    Off,
    /// Leases of at most 1% of `calls`, and at most [`Lease::AUTO_CAP`]: none below
    /// [`Lease::AUTO_MIN_CALLS`] calls per period, where a lease would be a single permit.
    #[default]
    Auto,
    /// Leases of at most this many permits (1: no leasing).
    Max(u32),
}

impl Lease {
    /// The largest lease `auto` takes, whatever `calls`.
    pub const AUTO_CAP: u32 = 256;
    /// The smallest `calls` with which `auto` leases: below it 1% of `calls` is one permit.
    pub const AUTO_MIN_CALLS: u32 = 200;

    /// The most permits one lease holds under a limit of `calls` per period (1: no leasing,
    /// each check its own round trip).
    pub const fn cap(&self, calls: u32) -> u32 {
        match self {
            Lease::Off => 1,
            Lease::Auto => {
                let share = calls / 100;
                if share > Lease::AUTO_CAP {
                    Lease::AUTO_CAP
                } else if share == 0 {
                    1
                } else {
                    share
                }
            }
            Lease::Max(0) => 1,
            Lease::Max(most) => *most,
        }
    }
}

/// A rate limit as plain data: at most `calls` admissions in any window of length `period`
/// (plus `burst` after idle time), smoothly spaced by GCRA, one every `period / calls`.
///
/// An admission is a slot, the instant a call may start. In wait mode the caller starts when
/// tokio's timer wakes it, on a whole millisecond and never early, so the starts in a window
/// can include the slots of up to a tick before it (at 1000/s, a few starts beyond `calls` in
/// some one-second windows): leave a server that counts starts to the exact limit that tick of
/// headroom.
///
/// ```
/// # use resilience_config as resilience;
/// use std::time::Duration;
/// use resilience::rate_limit::{LimitMode, RateLimitSpec};
///
/// const GITHUB: RateLimitSpec = RateLimitSpec::new(20, Duration::from_secs(10))
///     .burst(5)
///     .mode(LimitMode::Reject);
/// assert_eq!(GITHUB.interval(), Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RateLimitSpec {
    /// Admissions per `period` (>= 1).
    pub calls: u32,
    /// The window length (> 0).
    pub period: Duration,
    /// Extra admissions allowed at once after idle time. Default 0.
    pub burst: u32,
    /// Wait for a permit or reject. Default wait.
    pub mode: LimitMode,
    /// In wait mode, reject at once when the wait would be longer than this. Default none.
    pub max_wait: Option<Duration>,
    /// The permits every call takes, whatever its site computes (a policy's `cost`). Default
    /// none: the site's `cost` expression, or 1.
    pub cost: Option<u64>,
    /// With a Redis backend, whether an instance takes permits in batches ([`Lease`]). Default
    /// `auto`; nothing without a backend.
    pub lease: Lease,
    /// No limit at all ([`UNLIMITED`](Self::UNLIMITED)): a state of its own rather than a
    /// value of `calls`, since every `calls` a user can write is a limit (`u32::MAX` per
    /// 100,000 h is 11.9/s).
    unlimited: bool,
}

impl RateLimitSpec {
    /// No limit: what a site that names a policy without giving a rate has until the policy
    /// gives one. Every call is admitted at once (a server's 429 + Retry-After still pauses
    /// it).
    pub const UNLIMITED: RateLimitSpec = RateLimitSpec {
        unlimited: true,
        ..RateLimitSpec::new(u32::MAX, Duration::from_secs(1))
    };

    /// `calls` per `period`, no burst, wait mode, no `max_wait`.
    pub const fn new(calls: u32, period: Duration) -> Self {
        RateLimitSpec {
            calls,
            period,
            burst: 0,
            mode: LimitMode::Wait,
            max_wait: None,
            cost: None,
            lease: Lease::Auto,
            unlimited: false,
        }
    }

    /// Whether this is [`UNLIMITED`](Self::UNLIMITED): no limit until a policy gives
    /// `calls` and `period`.
    pub const fn is_unlimited(&self) -> bool {
        self.unlimited
    }

    /// Sets `cost`: the permits every call takes.
    pub const fn cost(mut self, cost: Option<u64>) -> Self {
        self.cost = cost;
        self
    }

    /// The emission interval `period / calls`, rounded up to the nanosecond so that rounding can
    /// never admit more than `calls` per `period`. `calls = 0` is read as 1, a zero `period`
    /// as a nanosecond (both refused by [`validate`](Self::validate)), and
    /// [`UNLIMITED`](Self::UNLIMITED) is a zero interval: no limit.
    pub const fn interval(&self) -> Duration {
        if self.unlimited {
            return Duration::ZERO;
        }
        let calls = if self.calls == 0 {
            1
        } else {
            self.calls as u128
        };
        let nanos = self.period.as_nanos().div_ceil(calls);
        // At least a nanosecond: a zero interval is the unlimited state only.
        let nanos = if nanos == 0 {
            1
        } else if nanos > u64::MAX as u128 {
            u64::MAX
        } else {
            nanos as u64
        };
        Duration::from_nanos(nanos)
    }

    /// Checks `calls >= 1` and `period > 0`, the rules the macro and YAML front ends enforce.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.calls == 0 {
            return Err("`calls` must be at least 1, found 0".to_string().into());
        }
        if self.period.is_zero() {
            return Err("`period` must be longer than zero".to_string().into());
        }
        Ok(())
    }
}

patch! {
    /// A partial [`RateLimitSpec`]: the fields a named policy sets (a policy's `rate_limit`
    /// section).
    #[derive(Eq)]
    RateLimitPatch for RateLimitSpec {
        /// Overrides `calls`.
        calls: u32,
        /// Overrides `period`.
        period: Duration,
        /// Overrides `cost`: every call takes this many permits, whatever its site computes.
        cost: u64 => Some,
    }
    with setters {
        /// Overrides `burst`.
        burst: u32,
        /// Overrides `mode`.
        mode: LimitMode,
        /// Overrides `max_wait` (`Some(None)` removes an inline limit).
        max_wait: Option<Duration>,
        /// Overrides `lease`.
        lease: Lease,
    }
}

impl RateLimitPatch {
    /// `spec` with every field this patch sets replaced. A patch that sets `calls` or
    /// `period` makes an [`UNLIMITED`](RateLimitSpec::UNLIMITED) spec a limit.
    pub fn apply(&self, mut spec: RateLimitSpec) -> RateLimitSpec {
        if self.calls.is_some() || self.period.is_some() {
            spec.unlimited = false;
        }
        self.set(&mut spec);
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_rounds_up() {
        let third = RateLimitSpec::new(3, Duration::from_secs(10));
        assert_eq!(third.interval(), Duration::from_nanos(3_333_333_334));
        assert_eq!(
            RateLimitSpec::new(0, Duration::from_secs(1)).interval(),
            Duration::from_secs(1)
        );
        assert_eq!(
            RateLimitSpec::new(1, Duration::MAX).interval(),
            Duration::from_nanos(u64::MAX)
        );
        assert!(
            RateLimitSpec::new(0, Duration::from_secs(1))
                .validate()
                .is_err()
        );
        assert!(RateLimitSpec::new(1, Duration::ZERO).validate().is_err());
        assert_eq!(
            RateLimitSpec::new(1, Duration::ZERO).interval(),
            Duration::from_nanos(1)
        );
    }

    #[test]
    fn the_auto_lease_is_one_percent_of_calls_within_bounds() {
        assert_eq!(Lease::Auto.cap(Lease::AUTO_MIN_CALLS - 1), 1);
        assert_eq!(Lease::Auto.cap(Lease::AUTO_MIN_CALLS), 2);
        assert_eq!(Lease::Auto.cap(u32::MAX), Lease::AUTO_CAP);
        assert_eq!(Lease::Auto.cap(1), 1);
        assert_eq!(Lease::Max(0).cap(1000), 1);
        assert_eq!(Lease::Max(u32::MAX).cap(1), u32::MAX);
        assert_eq!(
            RateLimitSpec::new(1, Duration::from_secs(1)).lease,
            Lease::Auto
        );
    }

    /// Every `calls` a user can write is a limit; only `UNLIMITED` is none, until a policy
    /// gives a rate.
    #[test]
    fn the_largest_calls_is_a_limit_and_unlimited_is_a_state() {
        let slow = RateLimitSpec::new(u32::MAX, Duration::from_secs(100_000 * 3600));
        assert!(!slow.is_unlimited());
        assert_eq!(slow.interval(), Duration::from_nanos(83_819_032)); // 11.9/s
        assert!(RateLimitSpec::UNLIMITED.is_unlimited());
        assert_eq!(RateLimitSpec::UNLIMITED.interval(), Duration::ZERO);
        let given = RateLimitPatch {
            calls: Some(10),
            ..RateLimitPatch::default()
        }
        .apply(RateLimitSpec::UNLIMITED);
        assert!(!given.is_unlimited());
        assert_eq!(given.interval(), Duration::from_millis(100));
        // a patch of other fields leaves it unlimited
        let burst = RateLimitPatch {
            burst: Some(3),
            ..RateLimitPatch::default()
        }
        .apply(RateLimitSpec::UNLIMITED);
        assert!(burst.is_unlimited());
    }
}
