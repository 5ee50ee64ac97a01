//! Typed events for code that must react to what the policies do: a retry, a circuit
//! breaker's change of state, a refusal, an alert firing or clearing.
//!
//! [`events()`] is the one place to listen: [`Events::subscribe`] hears every [`Event`], and
//! [`on_retry`](Events::on_retry), [`on_breaker_state`](Events::on_breaker_state),
//! [`on_rejected`](Events::on_rejected) and [`on_alert`](Events::on_alert) hear one kind
//! each. Each returns a [`Subscription`]: the listener is called until it is dropped (or
//! for the life of the process after [`Subscription::forever`]).
//!
//! Listeners are called synchronously, on the thread and in the task where the event
//! happens: a retry's listener runs before the retry's
//! sleep, a refusal's before the caller gets its error, each beside its log line and metrics. Keep them quick (count, set a flag,
//! send on a channel); a panic in a listener unwinds into the call that emitted the event.
//! Events borrow what they describe (the error of a failed try, the site's name), so a
//! listener copies what it keeps.
//!
//! Without a listener an event costs one relaxed atomic load where it would be emitted: no
//! event is built and nothing is allocated. Every event comes from the runtime's one
//! observation point of its kind (the same that logs it and counts it in metrics), so each
//! happens once: a retry inside a `Pipeline` is one [`RetryEvent`], a breaker shared by ten
//! sites opening is one [`StateChange`].
//!
//! ```
//! # use resilience_core as resilience;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//!
//! let retries = Arc::new(AtomicU32::new(0));
//! let counted = Arc::clone(&retries);
//! let subscription = resilience::events().on_retry(move |retry| {
//!     if retry.site == "fetch_user" {
//!         counted.fetch_add(1, Ordering::Relaxed);
//!     }
//! });
//! // ... calls ...
//! drop(subscription); // no longer called
//! # assert_eq!(retries.load(Ordering::Relaxed), 0);
//! ```

mod kinds;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

// The alert and the breaker's state are also where users know them (`resilience::Alert`,
// `resilience::breaker::BreakerState`); here, they sit beside the events that carry them.
pub use kinds::{Alert, AlertKind, BreakerState, Event, RejectionEvent, RetryEvent, StateChange};

/// A listener as stored: its id (for [`Subscription`]'s drop) and the function.
struct Listener {
    id: u64,
    call: Box<dyn Fn(&Event<'_>) + Send + Sync>,
}

/// Whether any listener is registered: the one load an emitting path pays without one.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The listeners, read lock-free by emitters; replaced as a whole by (un)subscribing, so a
/// listener may subscribe or drop a subscription from inside a call.
static LISTENERS: std::sync::LazyLock<ArcSwap<Vec<Arc<Listener>>>> =
    std::sync::LazyLock::new(ArcSwap::default);

/// Serialises (un)subscribing, so `ACTIVE` matches the list stored last.
static WRITER: Mutex<()> = Mutex::new(());

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The runtime's events: where listeners subscribe. Get it with [`events()`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Events;

/// The runtime's events (see the [module](self) docs).
///
/// ```
/// # use resilience_core as resilience;
/// use resilience::events::Event;
///
/// let _subscription = resilience::events().subscribe(|event| match event {
///     Event::Retry(retry) => eprintln!("{}: try {} failed, retrying in {:?}", retry.site, retry.attempt, retry.delay),
///     Event::StateChange(change) => eprintln!("breaker {} is now {:?}", change.breaker, change.state),
///     Event::Rejected(rejection) => eprintln!("{} refused: {}", rejection.site, rejection.rejected),
///     Event::Alert(alert) => eprintln!("{}: {} firing = {}", alert.policy, alert.kind.key(), alert.firing),
///     _ => {}
/// });
/// ```
pub fn events() -> &'static Events {
    static EVENTS: Events = Events;
    &EVENTS
}

impl Events {
    /// Calls `listener` with every event until the returned [`Subscription`] is dropped.
    #[must_use = "the listener is removed when the subscription is dropped; call `.forever()` to keep it"]
    pub fn subscribe(&self, listener: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Subscription {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let listener = Arc::new(Listener {
            id,
            call: Box::new(listener),
        });
        change(|listeners| listeners.push(Arc::clone(&listener)));
        Subscription { id }
    }

    /// Calls `listener` with each retry: a try failed and the call sleeps before the next.
    #[must_use = "the listener is removed when the subscription is dropped; call `.forever()` to keep it"]
    pub fn on_retry(
        &self,
        listener: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static,
    ) -> Subscription {
        self.subscribe(move |event| {
            if let Event::Retry(retry) = event {
                listener(retry);
            }
        })
    }

    /// Calls `listener` with each change of a circuit breaker's state.
    #[must_use = "the listener is removed when the subscription is dropped; call `.forever()` to keep it"]
    pub fn on_breaker_state(
        &self,
        listener: impl Fn(&StateChange<'_>) + Send + Sync + 'static,
    ) -> Subscription {
        self.subscribe(move |event| {
            if let Event::StateChange(change) = event {
                listener(change);
            }
        })
    }

    /// Calls `listener` with each call refused by a policy: rate limited, circuit open,
    /// bulkhead full, timed out, or costing more than its limiter admits.
    #[must_use = "the listener is removed when the subscription is dropped; call `.forever()` to keep it"]
    pub fn on_rejected(
        &self,
        listener: impl Fn(&RejectionEvent<'_>) + Send + Sync + 'static,
    ) -> Subscription {
        self.subscribe(move |event| {
            if let Event::Rejected(rejection) = event {
                listener(rejection);
            }
        })
    }

    /// Calls `listener` with each alert that fires or clears (what
    /// [`on_alert`](crate::on_alert) hooks also see, with a subscription to end it).
    #[must_use = "the listener is removed when the subscription is dropped; call `.forever()` to keep it"]
    pub fn on_alert(&self, listener: impl Fn(&Alert) + Send + Sync + 'static) -> Subscription {
        self.subscribe(move |event| {
            if let Event::Alert(alert) = event {
                listener(alert);
            }
        })
    }
}

/// A registered listener: dropping it removes the listener (a call of it already under way on
/// another thread finishes).
#[must_use = "the listener is removed when the subscription is dropped; call `.forever()` to keep it"]
pub struct Subscription {
    id: u64,
}

impl Subscription {
    /// Keeps the listener for the life of the process.
    pub fn forever(self) {
        std::mem::forget(self);
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let id = self.id;
        change(|listeners| listeners.retain(|listener| listener.id != id));
    }
}

/// Replaces the list with a changed copy, and `ACTIVE` with whether it is empty.
fn change(edit: impl FnOnce(&mut Vec<Arc<Listener>>)) {
    let _writer = WRITER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut listeners = Vec::clone(&LISTENERS.load());
    edit(&mut listeners);
    ACTIVE.store(!listeners.is_empty(), Ordering::Relaxed);
    LISTENERS.store(Arc::new(listeners));
}

/// Whether an event would reach anyone: what an emitting path checks before it builds one.
#[inline(always)]
pub(crate) fn listened() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Calls every listener with `event`. Callers check [`listened`] first, so a program without
/// listeners never builds the event.
#[cold]
#[inline(never)]
pub(crate) fn emit(event: &Event<'_>) {
    for listener in LISTENERS.load().iter() {
        (listener.call)(event);
    }
}

/// A retry at `site`: try `attempt` failed with `error`, the next starts after `delay`.
#[inline]
pub(crate) fn retry(
    site: &str,
    policy: Option<&str>,
    attempt: u32,
    delay: std::time::Duration,
    class: crate::error_class::ErrorClass,
    error: &dyn fmt::Display,
) {
    if listened() {
        emit(&Event::Retry(&RetryEvent {
            site,
            policy,
            attempt,
            delay,
            class,
            error,
        }));
    }
}

/// The breaker `breaker` moved to `state`.
#[inline]
pub(crate) fn state_change(breaker: &str, state: BreakerState) {
    if listened() {
        emit(&Event::StateChange(&StateChange { breaker, state }));
    }
}

/// `site` refused a call with `rejected`.
#[inline]
pub(crate) fn rejected(site: &str, policy: Option<&str>, rejected: crate::Rejected) {
    if listened() {
        emit(&Event::Rejected(&RejectionEvent {
            site,
            policy,
            rejected,
        }));
    }
}

/// A policy's alert fired or cleared.
#[inline]
pub(crate) fn alert(alert: &Alert) {
    if listened() {
        emit(&Event::Alert(alert));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rejected;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn a_listener_hears_until_its_subscription_drops() {
        let heard = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&heard);
        let subscription = events().on_rejected(move |rejection| {
            if rejection.site == "events-unit-drop" {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert!(listened());
        rejected("events-unit-drop", None, Rejected::BulkheadFull);
        rejected("another site", None, Rejected::BulkheadFull);
        assert_eq!(heard.load(Ordering::Relaxed), 1);
        drop(subscription);
        rejected("events-unit-drop", None, Rejected::BulkheadFull);
        assert_eq!(heard.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_listener_may_subscribe_and_unsubscribe_inside_a_call() {
        let inner: Arc<Mutex<Vec<Subscription>>> = Arc::default();
        let kept = Arc::clone(&inner);
        let outer = events().subscribe(move |event| {
            if matches!(event, Event::Rejected(r) if r.site == "events-unit-nested") {
                let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
                // Drops the one added by the previous event, adds a new one: no deadlock.
                kept.clear();
                kept.push(events().subscribe(|_| {}));
            }
        });
        rejected("events-unit-nested", None, Rejected::BulkheadFull);
        rejected("events-unit-nested", None, Rejected::BulkheadFull);
        assert_eq!(inner.lock().map(|kept| kept.len()).unwrap_or(0), 1);
        drop(outer);
    }
}
