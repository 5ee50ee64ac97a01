//! [`Cacheable`]: what a function's return type stores in its cache, chosen by a mode.
//!
//! `#[cached]` picks the mode from the return type's last path segment: `Result` caches `Ok`
//! (`OkOnly`), or `Ok` and `Err` with `negative_ttl` (`OkAndErr`, which needs `E: Clone`);
//! `Option` caches `Some` (`SomeOnly`), or `Some` and `None` (`SomeAndNone`); any other type
//! is cached as it is (`AsIs`). A mode is a type parameter, so the impls never overlap.

use super::Freshness;

/// How a return type is split into what the caller gets and what the cache stores.
pub trait Cacheable<Mode>: Sized {
    /// What the cache stores.
    type Stored: Clone + Send + Sync + 'static;

    /// The caller's value, and what to store with its freshness (`None`: store nothing).
    fn split(self) -> (Self, Option<(Self::Stored, Freshness)>);

    /// A stored value back as the return type.
    fn restore(stored: Self::Stored) -> Self;
}

/// `Result<T, E>`: cache `Ok(T)` only.
#[derive(Debug)]
pub enum OkOnly {}
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
