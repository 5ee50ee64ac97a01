//! [`Cacheable`]: what a function's return type stores in its cache, chosen by a mode, and
//! what it hands to the callers that waited on a load whose result is not stored.
//!
//! `#[cached]` picks the mode from the return type's last path segment: `Result` caches `Ok`
//! (`OkOnly`, or `OkCloneErr` when `E: Clone`: see below), or `Ok` and `Err` with
//! `negative_ttl` (`OkAndErr`, which needs `E: Clone`); `Option` caches `Some` (`SomeOnly`),
//! or `Some` and `None` (`SomeAndNone`); any other type is cached as it is (`AsIs`). A mode
//! is a type parameter, so the impls never overlap.
//!
//! A failure that is not stored (an `Err` or a `None` without `negative_ttl`) still ends its
//! load for every caller waiting on it: [`Cacheable::share`] makes a [`Failure`] of it, and
//! each waiter gets its own copy back through [`Cacheable::unshare`], so an outage costs one
//! load per key, not one per caller. A `None` is copied for free. An `Err(E)` is copied when
//! `E: Clone + Send + Sync + 'static`: `#[cached]` then picks `OkCloneErr` (it probes the type,
//! the function's signature stays as written). An `E` that is not `Clone` (`std::io::Error`,
//! `reqwest::Error`, `anyhow::Error`) cannot be handed on, and no waiter can get that error
//! without running the function: the waiters then each run their own load, all at once, as
//! soon as the leader's fails (two load times at worst, not one per waiter in turn). Wrap such
//! an error in an `Arc`, or make it `Clone`, to get one load per failure.

use std::any::Any;
use std::sync::Arc;

use super::Freshness;

/// A failed load's result on its way to the callers that waited on the same load: type-erased,
/// as a cache holds one stored type and not the function's error type.
#[derive(Clone)]
pub struct Failure(Arc<dyn Any + Send + Sync>);

impl Failure {
    /// `value`, to be handed to each waiter (as a clone, see [`Cacheable::unshare`]).
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Failure(Arc::new(value))
    }

    /// The value, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Failure(..)")
    }
}

/// How a return type is split into what the caller gets and what the cache stores.
pub trait Cacheable<Mode>: Sized {
    /// What the cache stores.
    type Stored: Clone + Send + Sync + 'static;

    /// The caller's value, and what to store with its freshness (`None`: store nothing).
    fn split(self) -> (Self, Option<(Self::Stored, Freshness)>);

    /// A stored value back as the return type.
    fn restore(stored: Self::Stored) -> Self;

    /// For a result [`split`](Self::split) stores nothing: what to hand to the callers waiting
    /// on the same load. `None` (the default): it cannot be copied, and each waiter runs its
    /// own load at once.
    fn share(&self) -> Option<Failure> {
        None
    }

    /// A waiter's copy of a failure made by [`share`](Self::share); `None` if it is not one.
    fn unshare(_failure: &Failure) -> Option<Self> {
        None
    }
}

/// `Result<T, E>`: cache `Ok(T)` only; an `Err` cannot be handed to waiters (they load again,
/// at once). `#[cached]` uses it when `E` is not `Clone`.
#[derive(Debug)]
pub enum OkOnly {}
/// `Result<T, E>` with `E: Clone`: cache `Ok(T)` only; an `Err` is cloned to every caller
/// that waited on the load.
#[derive(Debug)]
pub enum OkCloneErr {}
/// `Result<T, E>`: cache `Ok(T)`, and `Err(E)` as a failure (for `negative_ttl`).
#[derive(Debug)]
pub enum OkAndErr {}
/// `Option<T>`: cache `Some(T)` only.
#[derive(Debug)]
pub enum SomeOnly {}
/// `Option<T>`: cache `Some(T)`, and `None` as a failure (for `negative_ttl`).
#[derive(Debug)]
pub enum SomeAndNone {}
/// Any other type: cached as it is.
#[derive(Debug)]
pub enum AsIs {}

impl<T: Clone + Send + Sync + 'static, E> Cacheable<OkOnly> for Result<T, E> {
    type Stored = T;

    fn split(self) -> (Self, Option<(T, Freshness)>) {
        match self {
            Ok(value) => {
                let stored = value.clone();
                (Ok(value), Some((stored, Freshness::Positive)))
            }
            Err(error) => (Err(error), None),
        }
    }

    fn restore(stored: T) -> Self {
        Ok(stored)
    }
}

impl<T, E> Cacheable<OkCloneErr> for Result<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    type Stored = T;

    fn split(self) -> (Self, Option<(T, Freshness)>) {
        <Self as Cacheable<OkOnly>>::split(self)
    }

    fn restore(stored: T) -> Self {
        Ok(stored)
    }

    fn share(&self) -> Option<Failure> {
        self.as_ref().err().map(|error| Failure::new(error.clone()))
    }

    fn unshare(failure: &Failure) -> Option<Self> {
        failure.get::<E>().map(|error| Err(error.clone()))
    }
}

impl<T, E> Cacheable<OkAndErr> for Result<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    type Stored = Result<T, E>;

    fn split(self) -> (Self, Option<(Self, Freshness)>) {
        let freshness = if self.is_ok() {
            Freshness::Positive
        } else {
            Freshness::Negative
        };
        (self.clone(), Some((self, freshness)))
    }

    fn restore(stored: Self) -> Self {
        stored
    }
}

impl<T: Clone + Send + Sync + 'static> Cacheable<SomeOnly> for Option<T> {
    type Stored = T;

    fn split(self) -> (Self, Option<(T, Freshness)>) {
        match self {
            Some(value) => {
                let stored = value.clone();
                (Some(value), Some((stored, Freshness::Positive)))
            }
            None => (None, None),
        }
    }

    fn restore(stored: T) -> Self {
        Some(stored)
    }

    fn share(&self) -> Option<Failure> {
        self.is_none().then(|| Failure::new(()))
    }

    fn unshare(failure: &Failure) -> Option<Self> {
        failure.get::<()>().map(|()| None)
    }
}

impl<T: Clone + Send + Sync + 'static> Cacheable<SomeAndNone> for Option<T> {
    type Stored = Option<T>;

    fn split(self) -> (Self, Option<(Self, Freshness)>) {
        let freshness = if self.is_some() {
            Freshness::Positive
        } else {
            Freshness::Negative
        };
        (self.clone(), Some((self, freshness)))
    }

    fn restore(stored: Self) -> Self {
        stored
    }
}

impl<R: Clone + Send + Sync + 'static> Cacheable<AsIs> for R {
    type Stored = R;

    fn split(self) -> (Self, Option<(R, Freshness)>) {
        (self.clone(), Some((self, Freshness::Positive)))
    }

    fn restore(stored: R) -> Self {
        stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_stores_what_it_says() {
        let ok: Result<u8, String> = Ok(1);
        assert_eq!(
            <_ as Cacheable<OkOnly>>::split(ok),
            (Ok(1), Some((1, Freshness::Positive)))
        );
        let err: Result<u8, String> = Err("x".into());
        assert_eq!(
            <_ as Cacheable<OkOnly>>::split(err.clone()),
            (Err("x".into()), None)
        );
        assert_eq!(
            <_ as Cacheable<OkAndErr>>::split(err.clone()),
            (err.clone(), Some((err, Freshness::Negative)))
        );
        assert_eq!(
            <Option<u8> as Cacheable<SomeOnly>>::split(None),
            (None, None)
        );
        assert_eq!(
            <Option<u8> as Cacheable<SomeAndNone>>::split(None),
            (None, Some((None, Freshness::Negative)))
        );
        assert_eq!(
            <u8 as Cacheable<AsIs>>::split(3),
            (3, Some((3, Freshness::Positive)))
        );
        assert_eq!(<Result<u8, String> as Cacheable<OkOnly>>::restore(4), Ok(4));
        assert_eq!(<Option<u8> as Cacheable<SomeOnly>>::restore(4), Some(4));
    }
}
