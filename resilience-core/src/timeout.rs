//! Time limits: a call that runs past its limit is dropped and returns
//! `Rejected::Timeout { after }`, which `#[retry]` classifies as `Timeout`.
//!
//! [`TimeoutSite`] and [`timeout_async`] are what `#[timeout]` expands to. Only an `async fn`
//! can be timed out: a blocking call cannot be interrupted from outside.

use std::future::Future;
use std::time::Duration;

use crate::Rejected;

/// One `#[timeout]` function: its name, policy and inline limit.
#[derive(Debug)]
pub struct TimeoutSite {
    name: &'static str,
    policy: Option<&'static str>,
    limit: Duration,
    counters: crate::counters::SiteCell,
}

impl TimeoutSite {
    /// A site named `name` with the inline limit `limit`.
    pub const fn new(name: &'static str, policy: Option<&'static str>, limit: Duration) -> Self {
        TimeoutSite {
            name,
            policy,
            limit,
            counters: crate::counters::SiteCell::new(),
        }
    }

    /// The site's counters in [`stats()`](crate::stats()), looked up once.
    #[inline]
    pub(crate) fn counted(&self) -> &crate::counters::SiteCounters {
        self.counters.get(self.name, self.policy)
    }

    /// The limit a call starting now gets: the policy's `timeout` when it sets one, else the
    /// inline limit. `Duration::MAX` means no limit.
    pub fn limit(&self) -> Duration {
        match self.policy {
            Some(policy) => crate::registry::timeout(policy).unwrap_or(self.limit),
            None => self.limit,
        }
    }
}

/// Runs the future `call` makes for at most `site`'s limit, on tokio's clock; past it the call
/// is dropped and `Err(reject(Rejected::Timeout { after }))` returned. `reject` is usually
/// `E::from`.
///
/// `call` makes the future (it is not the future itself): an `async fn` keeps an argument it
/// awaits twice in its state, once as the argument and once as the awaited value, so layers
/// nested five deep that each took their inner future doubled it at every level (a
/// `#[resilient(policy = ..)]` fn's future measured 5.3 kB; a closure costs its captures).
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::Duration;
/// use resilience::Rejected;
/// use resilience::__private::{TimeoutSite, timeout_async};
///
/// static SITE: TimeoutSite = TimeoutSite::new("slow", None, Duration::from_millis(50));
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let slow = async {
///     tokio::time::sleep(Duration::from_secs(1)).await;
///     Ok::<_, Rejected>(())
/// };
/// let result = timeout_async(&SITE, |rejected| rejected, || slow).await;
/// assert_eq!(result, Err(Rejected::Timeout { after: Duration::from_millis(50) }));
/// # }
/// ```
pub async fn timeout_async<T, E, F, Fut>(
    site: &'static TimeoutSite,
    reject: fn(Rejected) -> E,
    call: F,
) -> Result<T, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let limit = site.limit();
    if limit == Duration::MAX {
        // No limit (`#[resilient]` without a timeout, until a policy gives one).
        return call().await;
    }
    // A call ready at its first poll needs no timer: the clock is read (and the timer
    // registered) only when it has to wait.
    let mut call = std::pin::pin!(call());
    if let std::task::Poll::Ready(result) =
        std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx))).await
    {
        return result;
    }
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => {
            crate::observe::timed_out(site.counted(), limit);
            Err(reject(Rejected::Timeout { after: limit }))
        }
    }
}
