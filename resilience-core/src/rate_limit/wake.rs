//! Waking a caller at its slot to within tens of microseconds, not tokio's millisecond.
//!
//! tokio's timer counts whole milliseconds and rounds every deadline up, so a caller asleep
//! until its slot wakes 0.1 to 1.5 ms after it. A limiter that spaces sends by the actual time
//! of the last one (as it must for a server that counts the milliseconds between two requests,
//! nginx `limit_req` without `burst`) pays that on every send: 20 ms slots became 21.1 ms on
//! average against strict nginx in the quota lab (1.109 of N/qps), where `governor`, whose
//! `futures-timer` thread sleeps to the microsecond, kept 20.3 ms (1.064).
//!
//! So the last stretch of a wait (under [`LEAD`]) is slept on a thread of the runtime's own
//! blocking pool (`spawn_blocking`), whose `nanosleep` wakes within about 60 us, and the caller
//! is woken from there. The library starts no thread of its own: the pool is tokio's, it is
//! the one reqwest already uses for DNS, and its threads leave after ten idle seconds; at most
//! a few are busy at once, each for under [`LEAD`]. (A Linux `timerfd` on tokio's reactor
//! would need no thread at all, but registering one panics in a runtime built without its I/O
//! driver, and tokio offers no way to ask first.) The bulk of a wait stays on tokio's timer,
//! which is cheaper and moves with `tokio::time::pause()`; and all of it does whenever tokio's
//! clock is not the real one (a paused test runtime), so paused-clock tests keep their exact
//! schedules.

use std::time::Duration;

/// How long before the deadline tokio's timer hands over to the precise one: tokio's timer
/// may be up to about a millisecond and a half late, and the hand-over must come before the
/// deadline.
const LEAD: Duration = Duration::from_millis(2);

/// Sleeps `wait` for a limiter whose admissions are `interval` apart: to within
/// tens of microseconds while tokio's clock is the real one and the interval is at least
/// [`LEAD`], on tokio's timer otherwise. Below that interval a millisecond of lateness is
/// within the burst any server must allow at such a rate, and handing every wait's last stretch
/// to the pool would keep `rate * LEAD` of its threads asleep (20 at 10,000/s).
pub(crate) async fn sleep(wait: Duration, interval: Duration) {
    if wait.is_zero() {
        return;
    }
    if !precise(interval) {
        tokio::time::sleep(wait).await;
        return;
    }
    let deadline = std::time::Instant::now() + wait;
    if let Some(bulk) = wait.checked_sub(LEAD) {
        tokio::time::sleep(bulk).await;
    }
    if std::time::Instant::now() >= deadline {
        return;
    }
    let last_stretch = tokio::task::spawn_blocking(move || {
        std::thread::sleep(deadline.saturating_duration_since(std::time::Instant::now()));
    });
    if last_stretch.await.is_err() {
        // The runtime is shutting down (or the pool refused): tokio's timer will do.
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
    }
}

/// Whether a limiter whose admissions are `interval` apart is woken precisely by [`sleep`]
/// (so its releases need no slack for tokio's rounding).
pub(super) fn precise(interval: Duration) -> bool {
    interval >= LEAD && clock_is_real()
}

/// Whether tokio's clock reads the real time: always without tokio's `test-util`, and with it
/// unless a runtime has paused (or paused and resumed) it. A clock that reads real time lands
/// between two real reads taken around it; a paused one holds a past or an advanced instant.
fn clock_is_real() -> bool {
    if !crate::clock::TOKIO_CAN_PAUSE {
        return true;
    }
    let before = std::time::Instant::now();
    let tokio_now = tokio::time::Instant::now().into_std();
    let after = std::time::Instant::now();
    before <= tokio_now && tokio_now <= after
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_keeps_tokio_s_exact_timer() {
        assert!(!clock_is_real());
        let start = tokio::time::Instant::now();
        sleep(Duration::from_millis(7), Duration::from_millis(20)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(7));
    }

    #[test]
    fn only_a_real_clock_and_an_interval_of_two_ms_or_more_wake_precisely() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(precise(Duration::from_millis(20)));
            assert!(precise(LEAD));
            assert!(!precise(Duration::from_micros(1_999)));
            tokio::time::pause();
            assert!(!precise(Duration::from_millis(20)));
        });
    }

    #[test]
    fn a_real_clock_wakes_at_the_deadline_not_before() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(clock_is_real());
            for wait in [300, 2_500, 5_100] {
                let wait = Duration::from_micros(wait);
                let start = std::time::Instant::now();
                sleep(wait, Duration::from_millis(20)).await;
                // Never early; how late is the lab's business, not an assert's.
                assert!(start.elapsed() >= wait, "{:?} < {wait:?}", start.elapsed());
            }
        });
    }
}
