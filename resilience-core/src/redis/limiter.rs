//! GCRA in one Lua script, on the Redis server's clock (`TIME`), so instances with skewed
//! clocks still share one schedule. The theoretical arrival time (TAT) of a limiter (or of one
//! key value) is one Redis string, in microseconds, expiring when the limiter is back to full
//! capacity. `redis::Script` sends `EVALSHA` and reloads the script after `NOSCRIPT` (a
//! restarted server, or `SCRIPT FLUSH`).

use std::sync::LazyLock;
use std::time::Duration;

use super::connection::{Backend, BackendError};

/// KEYS[1]: the TAT. ARGV: step (the interval times the call's cost: the TAT moves by it, so
/// the script takes the call's permits in one atomic step), tolerance, max wait (-1: none),
/// pause (0: an admission), all in microseconds; then, for a lease, the most extra permits to
/// take and the interval of one. Returns {admitted (1/0), wait, extra permits granted}.
const GCRA: &str = include_str!("gcra.lua");

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(GCRA));

fn micros(nanos: u64) -> i64 {
    i64::try_from(nanos.div_ceil(1000)).unwrap_or(i64::MAX)
}

/// What one check asks of the shared schedule.
pub(crate) struct Ask {
    /// The emission interval, nanoseconds.
    pub(crate) interval: u64,
    /// The tolerance (the burst's time), nanoseconds.
    pub(crate) tolerance: u64,
    /// The longest wait admitted, nanoseconds (`u64::MAX`: none).
    pub(crate) max_wait: u64,
    /// The call's permits.
    pub(crate) cost: u64,
    /// The most permits to take beyond the call's own, for a lease (0: none). Granted only
    /// when the call is admitted at once, and only those the schedule would admit at once too.
    pub(crate) extra: u64,
}

/// An admission of a call taking `ask.cost` permits: `Ok((wait, extra))` admitted after `wait`
/// (its permits reserved, and `extra` more taken for a lease), `Err(wait)` refused, a slot
/// free after `wait`. A cost of 0 takes nothing and is admitted at once, without a round
/// trip. The capacity is the caller's to check.
pub(crate) async fn acquire(
    backend: &Backend,
    timeout: Duration,
    key: &str,
    ask: Ask,
) -> Result<Result<(Duration, u64), Duration>, BackendError> {
    let Ask {
        interval,
        tolerance,
        max_wait,
        cost,
        extra,
    } = ask;
    if cost == 0 {
        return Ok(Ok((Duration::ZERO, 0)));
    }
    // Rounded to microseconds once, for the whole cost: `ceil(n * interval)`, never less
    // than the permits' exact time.
    let step = interval.saturating_mul(cost);
    let max_wait = if max_wait == u64::MAX {
        -1
    } else {
        micros(max_wait)
    };
    let (admitted, wait, granted): (i64, i64, i64) = backend
        .run(timeout, |mut connection| async move {
            let mut invocation = SCRIPT.key(key);
            invocation
                .arg(micros(step))
                .arg(micros(tolerance))
                .arg(max_wait)
                .arg(0);
            if extra > 0 {
                invocation
                    .arg(i64::try_from(extra).unwrap_or(i64::MAX))
                    .arg(micros(interval));
            }
            invocation.invoke_async(&mut connection).await
        })
        .await?;
    let wait = Duration::from_micros(u64::try_from(wait).unwrap_or(0));
    let granted = u64::try_from(granted).unwrap_or(0).min(extra);
    Ok(if admitted == 1 {
        Ok((wait, granted))
    } else {
        Err(wait)
    })
}

/// Admits nothing for `pause` (a server's 429 + Retry-After), for every instance; this
/// instance's lease on the schedule, if any, is dropped.
pub(crate) async fn pause(
    backend: &Backend,
    timeout: Duration,
    key: &str,
    tolerance: u64,
    pause: Duration,
) -> Result<(), BackendError> {
    backend.drop_lease(key);
    let pause = micros(u64::try_from(pause.as_nanos()).unwrap_or(u64::MAX)).max(1);
    let _: (i64, i64, i64) = backend
        .run(timeout, |mut connection| async move {
            SCRIPT
                .key(key)
                .arg(0)
                .arg(micros(tolerance))
                .arg(-1)
                .arg(pause)
                .invoke_async(&mut connection)
                .await
        })
        .await?;
    Ok(())
}
