//! [`Clock`]: the runtime's time (the rate limiter's, the caches', the breakers' and the
//! retry-rate ring's), tokio's clock where tests may pause it, a cheap counter clock
//! everywhere else.
//!
//! The clock read is most of the cost of an admitted check: `tokio::time::Instant::now()` is a
//! `clock_gettime` (about 20 ns here), while a calibrated TSC read through `quanta` costs about
//! half of that. Tests rely on tokio's paused clock (`start_paused`, `tokio::time::advance`)
//! for exact admission times, so the limiter reads tokio's clock whenever tokio's could be
//! paused, and `quanta`'s otherwise:
//!
//! 1. A tokio built without `test-util` cannot pause its clock at all (its `Instant::now()` is
//!    then `std::time::Instant::now()`), so every read goes to `quanta`. That is a release
//!    build: the answer is a constant, found at compile time (see [`TOKIO_CAN_PAUSE`]).
//! 2. With `test-util` (tests, and benches, which cargo builds with dev-dependencies), a paused
//!    clock belongs to a runtime and is only seen by code running inside that runtime's
//!    context, so a read inside any runtime context goes to tokio's clock, exactly as before,
//!    and a read outside one (a plain thread, where tokio's clock is the real one anyway) goes
//!    to `quanta`.
//!
//! Both sources count from the limiter's creation; while tokio's clock is not paused they
//! agree to within `quanta`'s calibration (which is how `governor` keeps time too).
//!
//! No thread keeps time: every read is a counter read (`rdtsc` on x86-64) where it is needed.
//! `quanta`'s "recent" time would make a cache hit's expiry check one load, but only with its
//! upkeep thread waking every millisecond for the life of the process, and a library starts no
//! thread its user did not ask for (moka 0.12 dropped its threads for the same reason).

use std::sync::LazyLock;
use std::time::Duration;

/// Whether the linked tokio has `test-util`, the feature that lets a runtime pause its clock.
///
/// `Builder::start_paused` is an inherent method of tokio's runtime builder only with
/// `test-util`. Method resolution prefers an inherent method to a trait method of the same
/// name, so the call below resolves to tokio's method when it exists and to [`NoPause`]'s
/// otherwise, and the return type tells which. The closure is never called: this is decided
/// by the type checker. Should tokio ever offer `start_paused` without `test-util`, this
/// reads `true`, the safe side (tokio's clock is read in runtime contexts, as before).
pub(crate) const TOKIO_CAN_PAUSE: bool =
    can_pause(|builder: &'static mut tokio::runtime::Builder| builder.start_paused(false));

/// The fallback `start_paused`, for a tokio without `test-util`.
trait NoPause {
    /// Never called; its return type marks that tokio has no `start_paused`.
    #[allow(dead_code)]
    fn start_paused(&mut self, start_paused: bool) -> Unpausable;
}

impl NoPause for tokio::runtime::Builder {
    fn start_paused(&mut self, _start_paused: bool) -> Unpausable {
        Unpausable
    }
}

/// Returned by [`NoPause::start_paused`].
struct Unpausable;

/// What a `start_paused` call returned: tokio's builder (`test-util`) or [`Unpausable`].
trait PauseProbe {
    const CAN_PAUSE: bool;
}

impl PauseProbe for &mut tokio::runtime::Builder {
    const CAN_PAUSE: bool = true;
}

impl PauseProbe for Unpausable {
    const CAN_PAUSE: bool = false;
}

const fn can_pause<T, F>(probe: F) -> bool
where
    T: PauseProbe,
    F: FnOnce(&'static mut tokio::runtime::Builder) -> T,
{
    std::mem::forget(probe);
    T::CAN_PAUSE
}

/// The process-wide counter clock (calibrated once, on first use).
static COUNTER: LazyLock<quanta::Clock> = LazyLock::new(quanta::Clock::new);

/// A limiter's time: nanoseconds since its creation.
#[derive(Debug)]
pub(crate) struct Clock {
    /// A copy of [`COUNTER`] (its calibration included), saving the lazy check on each read.
    counter: quanta::Clock,
    /// Creation, on tokio's clock (paused or not, as the creating context sees it).
    tokio_epoch: tokio::time::Instant,
    /// Creation, as a raw reading of [`COUNTER`].
    counter_epoch: u64,
}

impl Clock {
    /// A clock whose zero is now.
    pub(crate) fn new() -> Self {
        let counter = COUNTER.clone();
        Clock {
            tokio_epoch: tokio::time::Instant::now(),
            counter_epoch: counter.raw(),
            counter,
        }
    }

    /// Nanoseconds since creation; never decreases while one source is read.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        if TOKIO_CAN_PAUSE && tokio::runtime::Handle::try_current().is_ok() {
            self.tokio_now()
        } else {
            self.counter
                .delta_as_nanos(self.counter_epoch, self.counter.raw())
        }
    }

    /// Nanoseconds since creation on tokio's clock.
    #[cold]
    fn tokio_now(&self) -> u64 {
        nanos(tokio::time::Instant::now().saturating_duration_since(self.tokio_epoch))
    }
}

/// A cache's time: nanoseconds since its creation, read where a hit reads it, so as cheaply as
/// the platform allows. On Linux that is `CLOCK_MONOTONIC_COARSE` (a vDSO read of the time the
/// kernel keeps at each tick, about 5 ns here against 10 to 14 ns for the counter's `rdtsc` in
/// this virtual machine, where the TSC read is the hit's largest cost after the store's own
/// lookup). It lags the real time by up to one tick (`clock_getres`: 4 ms at 250 Hz), so it
/// reads that tick ahead: an entry expires up to a tick early, never late. Elsewhere, and on a
/// tokio clock that can pause, it is [`Clock`].
#[derive(Debug)]
pub(crate) struct TtlClock {
    clock: Clock,
    /// The coarse clock at creation, less its resolution.
    #[cfg(target_os = "linux")]
    coarse_epoch: u64,
}

#[cfg(target_os = "linux")]
fn coarse() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    u64::try_from(now.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(now.tv_nsec).unwrap_or(0))
}

impl TtlClock {
    /// A clock whose zero is now.
    pub(crate) fn new() -> Self {
        TtlClock {
            clock: Clock::new(),
            #[cfg(target_os = "linux")]
            coarse_epoch: {
                let resolution = rustix::time::clock_getres(rustix::time::ClockId::MonotonicCoarse);
                let resolution = u64::try_from(resolution.tv_nsec).unwrap_or(0);
                coarse().saturating_sub(resolution)
            },
        }
    }

    /// Nanoseconds since creation, at or ahead of the real time by at most a coarse tick.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        #[cfg(target_os = "linux")]
        if !(TOKIO_CAN_PAUSE && tokio::runtime::Handle::try_current().is_ok()) {
            return coarse().saturating_sub(self.coarse_epoch);
        }
        self.clock.now()
    }
}

/// A moment on the counter clock, for timing a call: one word (its niche makes an
/// `Option<Stamp>` one word too), so a timed call's future grows by 8 bytes, not an
/// `Instant`'s 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(std::num::NonZeroU64);

impl Stamp {
    /// Now.
    #[inline]
    pub(crate) fn now() -> Self {
        Stamp(std::num::NonZeroU64::MIN.saturating_add(COUNTER.raw()))
    }

    /// The time since this stamp.
    pub(crate) fn elapsed(self) -> Duration {
        let now = COUNTER.raw().saturating_add(1);
        Duration::from_nanos(COUNTER.delta_as_nanos(self.0.get(), now))
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_build_can_pause() {
        // resilience-core's dev-dependency on tokio enables `test-util`.
        const { assert!(TOKIO_CAN_PAUSE) };
    }

    #[test]
    fn counter_clock_advances_outside_a_runtime() {
        let clock = Clock::new();
        let before = clock.now();
        std::thread::sleep(Duration::from_millis(20));
        let after = clock.now();
        assert!(after >= before + 15_000_000, "{before} -> {after}");
    }

    #[tokio::test(start_paused = true)]
    async fn paused_runtime_reads_tokio_clock_exactly() {
        let clock = Clock::new();
        assert_eq!(clock.now(), 0);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.now(), 1_500_000_000);
    }
}
