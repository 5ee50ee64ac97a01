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
/// pause (0: an admission), all in microseconds. Returns {admitted (1/0), wait}.
const GCRA: &str = include_str!("gcra.lua");

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(GCRA));

fn micros(nanos: u64) -> i64 {
    i64::try_from(nanos.div_ceil(1000)).unwrap_or(i64::MAX)
}

/// An admission of a call taking `cost` permits: `Ok(wait)` admitted after `wait` (its
/// permits reserved), `Err(wait)` refused, a slot free after `wait`. A cost of 0 takes nothing
/// and is admitted at once, without a round trip. The capacity is the caller's to check.
pub(crate) async fn acquire(
    backend: &Backend,
    timeout: Duration,
    key: &str,
    interval: u64,
    tolerance: u64,
    max_wait: u64,
    cost: u64,
) -> Result<Result<Duration, Duration>, BackendError> {
    if cost == 0 {
        return Ok(Ok(Duration::ZERO));
    }
    // Rounded to microseconds once, for the whole cost: `ceil(n * interval)`, never less
    // than the permits' exact time.
    let step = interval.saturating_mul(cost);
    let max_wait = if max_wait == u64::MAX {
        -1
    } else {
        micros(max_wait)
    };
    let (admitted, wait): (i64, i64) = backend
        .run(timeout, |mut connection| async move {
            SCRIPT
                .key(key)
                .arg(micros(step))
                .arg(micros(tolerance))
                .arg(max_wait)
                .arg(0)
                .invoke_async(&mut connection)
                .await
        })
        .await?;
    let wait = Duration::from_micros(u64::try_from(wait).unwrap_or(0));
    Ok(if admitted == 1 { Ok(wait) } else { Err(wait) })
}

/// Admits nothing for `pause` (a server's 429 + Retry-After), for every instance.
pub(crate) async fn pause(
    backend: &Backend,
    timeout: Duration,
    key: &str,
    tolerance: u64,
    pause: Duration,
) -> Result<(), BackendError> {
    let pause = micros(u64::try_from(pause.as_nanos()).unwrap_or(u64::MAX)).max(1);
    let _: (i64, i64) = backend
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
