//! Single-flight: concurrent misses on one key run one load; the others wait for its result.
//!
//! The leader holds a [`Leader`] guard. When it stores a value, every waiter gets a clone.
//! When its load fails and the failure is not stored, it [`fail`](Leader::fail)s the flight:
//! every waiter gets the failure (when the function's result can be copied, see
//! [`Cacheable::share`](super::Cacheable::share)) or is told to load on its own at once, so a
//! failure never has the waiters load one after another. When the leader ends without a
//! result (its future was dropped or it panicked), the guard's drop marks the flight
//! abandoned and wakes the waiters; they go round again, and exactly one of them becomes the
//! next leader. A panic therefore reaches only the caller whose load panicked, and no waiter
//! is left hanging.

use std::hash::Hash;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use tokio::sync::Notify;

use super::Failure;

enum State<V> {
    Loading,
    Done(V),
    Failed(Option<Failure>),
    Abandoned,
}

/// What a waiter gets when the flight ends.
pub(crate) enum Handed<V> {
    /// The leader's value.
    Value(V),
    /// The leader's failure, to be copied for this waiter.
    Failure(Failure),
    /// The leader failed with a result that cannot be copied: load now, without a flight.
    LoadAlone,
    /// The leader was cancelled or panicked: go round again (one waiter takes over).
    Abandoned,
}

/// One load in progress for one key.
pub(crate) struct Flight<V> {
    state: Mutex<State<V>>,
    done: Notify,
}

/// The in-flight loads of one cache.
pub(crate) struct Flights<K, V> {
    by_key: DashMap<K, Arc<Flight<V>>>,
}

/// What a caller that missed should do.
pub(crate) enum Role<'a, K: Hash + Eq, V> {
    /// Run the load and [`Leader::finish`] with its value.
    Lead(Leader<'a, K, V>),
    /// Another caller is loading: wait on it.
    Follow(Arc<Flight<V>>),
}

/// The duty of running one key's load. Dropped without [`Leader::finish`], it abandons the
/// flight and wakes the waiters so one of them takes over.
pub(crate) struct Leader<'a, K: Hash + Eq, V> {
    flights: &'a Flights<K, V>,
    key: Option<K>,
    flight: Arc<Flight<V>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    pub(crate) fn new() -> Self {
        Flights {
            by_key: DashMap::new(),
        }
    }

    /// Joins the flight for `key`, or starts one.
    pub(crate) fn join(&self, key: &K) -> Role<'_, K, V> {
        // Straight to `entry`: a caller gets here on a miss, which usually starts a flight,
        // and a `get` first would hash and lock the shard twice.
        match self.by_key.entry(key.clone()) {
            dashmap::Entry::Occupied(entry) => Role::Follow(Arc::clone(entry.get())),
            dashmap::Entry::Vacant(entry) => {
                let flight = Arc::new(Flight {
                    state: Mutex::new(State::Loading),
                    done: Notify::new(),
                });
                entry.insert(Arc::clone(&flight));
                Role::Lead(Leader {
                    flights: self,
                    key: Some(key.clone()),
                    flight,
                })
            }
        }
    }

    /// Whether a load for `key` is running (a refresh need not start another).
    pub(crate) fn is_loading(&self, key: &K) -> bool {
        self.by_key.contains_key(key)
    }
}

impl<V: Clone> Flight<V> {
    /// How the flight ended for this waiter.
    pub(crate) async fn wait(&self) -> Handed<V> {
        loop {
            // Registered before the state is read, so a `finish` in between is not missed.
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match &*self
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
            {
                State::Done(value) => return Handed::Value(value.clone()),
                State::Failed(Some(failure)) => return Handed::Failure(failure.clone()),
                State::Failed(None) => return Handed::LoadAlone,
                State::Abandoned => return Handed::Abandoned,
                State::Loading => {}
            }
            notified.await;
        }
    }
}

impl<K: Hash + Eq, V> Leader<'_, K, V> {
    /// Shares `value` with every waiter and ends the flight.
    pub(crate) fn finish(mut self, value: V) {
        self.end(State::Done(value));
    }

    /// Ends the flight with a failure that is not stored: each waiter gets `failure`, or (with
    /// none) runs its own load at once.
    pub(crate) fn fail(mut self, failure: Option<Failure>) {
        self.end(State::Failed(failure));
    }

    fn end(&mut self, state: State<V>) {
        if let Some(key) = self.key.take() {
            self.flights.by_key.remove(&key);
            // Out of the map, the flight can gain no waiter: with none holding it, there is
            // no one to tell (the usual miss, which then skips the lock and the wake-up).
            if Arc::strong_count(&self.flight) == 1 {
                return;
            }
            *self
                .flight
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = state;
            self.flight.done.notify_waiters();
        }
    }
}

impl<K: Hash + Eq, V> Drop for Leader<'_, K, V> {
    fn drop(&mut self) {
        self.end(State::Abandoned);
    }
}
