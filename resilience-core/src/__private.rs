//! Support for macro-generated code. Not a public API: names and signatures change freely.

use std::error::Error;
use std::fmt;
use std::marker::PhantomData;

pub use crate::breaker::{
    BreakerSite, BreakerSpec, circuit_breaker_async, circuit_breaker_blocking,
};
pub use crate::bulkhead::{BulkheadSite, BulkheadSpec};
pub use crate::cache::{
    AsIs, CacheSite, CacheSpec, Cacheable, Codec, OkAndErr, OkCloneErr, OkOnly, SomeAndNone,
    SomeOnly, cached_async, cached_async_refreshing, cached_blocking,
};
pub use crate::timeout::{TimeoutSite, timeout_async};

/// What a cache key must be: stored in the cache and compared on every lookup.
#[diagnostic::on_unimplemented(
    message = "`#[cached]` keys the cache by this argument, so it must be `Hash + Eq + Clone + Send + Sync + 'static`, and `{Self}` is not",
    label = "part of the cache key",
    note = "leave it out of the key with `key = ...`, an expression over the other arguments"
)]
pub trait KeyPart: std::hash::Hash + Eq + Clone + Send + Sync + 'static {}

impl<T: std::hash::Hash + Eq + Clone + Send + Sync + 'static> KeyPart for T {}

/// An argument on its way into the cache key. `#[cached]` calls
/// `(&&KeyProbe::of(&argument)).key()`: autoref specialisation picks [`ViaKeyPart`] when the
/// argument (or, for `&T`, its owned form) is a [`KeyPart`], else [`ViaNotKeyPart`], whose
/// `key` is an error on the argument with `KeyPart`'s message and returns a placeholder key,
/// so the key tuple is still a key and the cache call reports nothing more.
pub struct KeyProbe<'a, T: ?Sized>(&'a T);

impl<'a, T: ?Sized> KeyProbe<'a, T> {
    /// A probe of `argument` (`&arg` for an owned argument, `arg` for a borrowed one).
    #[inline(always)]
    pub fn of(argument: &'a T) -> Self {
        KeyProbe(argument)
    }
}

/// The argument is a key part: the key holds it owned.
pub trait ViaKeyPart {
    /// The owned argument.
    type Key;
    /// A copy of the argument, owned (`&str` becomes `String`).
    fn key(&self) -> Self::Key;
}

impl<T: ?Sized + ToOwned> ViaKeyPart for &KeyProbe<'_, T>
where
    T::Owned: KeyPart,
{
    type Key = T::Owned;
    #[inline(always)]
    fn key(&self) -> T::Owned {
        self.0.to_owned()
    }
}

/// The argument is not a key part: a compile error, on the argument.
pub trait ViaNotKeyPart<T> {
    /// Never compiles: `T` is not a key part.
    fn key(&self) -> NotAKey
    where
        T: KeyPart;
}

impl<T> ViaNotKeyPart<T> for KeyProbe<'_, T> {
    fn key(&self) -> NotAKey
    where
        T: KeyPart,
    {
        NotAKey
    }
}

/// The placeholder key of an argument that is not a key part (never built in a program that
/// compiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotAKey;

/// A cached function's key and stored value, probed for serde: `#[cached]` calls
/// `(&&CodecProbe::<_, Stored>::of(&key)).codec()`, which gives the JSON [`Codec`] when both
/// are serde types ([`ViaSerde`]) and `None` otherwise ([`ViaNoSerde`]), so only a function
/// that can be shared is shared through a Redis backend, and no function has to be.
pub struct CodecProbe<K, V>(PhantomData<Types<K, V>>);

/// The probed types, without owning them (the probe is `Send + Sync` whatever they are).
type Types<K, V> = (fn(&K), fn(&V));

impl<K, V> CodecProbe<K, V> {
    /// A probe for the type of `key`.
    #[inline(always)]
    pub fn of(_key: &K) -> Self {
        CodecProbe(PhantomData)
    }
}

/// Key and value are serde types: the JSON codec.
pub trait ViaSerde<K, V> {
    /// The codec.
    fn codec(&self) -> Option<Codec<K, V>>;
}

impl<K, V> ViaSerde<K, V> for &CodecProbe<K, V>
where
    K: serde::Serialize,
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    #[inline(always)]
    fn codec(&self) -> Option<Codec<K, V>> {
        Some(Codec::json())
    }
}

/// Key or value is not a serde type: no codec.
pub trait ViaNoSerde<K, V> {
    /// No codec.
    fn codec(&self) -> Option<Codec<K, V>>;
}

impl<K, V> ViaNoSerde<K, V> for CodecProbe<K, V> {
    #[inline(always)]
    fn codec(&self) -> Option<Codec<K, V>> {
        None
    }
}

/// A cached function's `Result` return type, probed for a failure its waiters can share:
/// `#[cached]` (without `negative_ttl`) calls `(&&ModeProbe::<R>::new()).mode()`, which is
/// [`OkCloneErr`] when `E: Clone + Send + Sync + 'static` ([`ViaCloneErr`]) and [`OkOnly`]
/// otherwise ([`ViaPlainErr`]), and passes it to [`cached_async_in`] and its siblings.
pub struct ModeProbe<R>(PhantomData<fn() -> R>);

impl<R> ModeProbe<R> {
    /// A probe of the return type `R`.
    #[inline(always)]
    pub fn new() -> Self {
        ModeProbe(PhantomData)
    }
}

impl<R> Default for ModeProbe<R> {
    fn default() -> Self {
        ModeProbe::new()
    }
}

/// The error is `Clone`: a failure is cloned to every waiter.
pub trait ViaCloneErr {
    /// The mode.
    fn mode(&self) -> PhantomData<OkCloneErr>;
}

impl<R: Cacheable<OkCloneErr>> ViaCloneErr for &ModeProbe<R> {
    #[inline(always)]
    fn mode(&self) -> PhantomData<OkCloneErr> {
        PhantomData
    }
}

/// The error is not `Clone`: the waiters on a failure load at once.
pub trait ViaPlainErr {
    /// The mode.
    fn mode(&self) -> PhantomData<OkOnly>;
}

impl<R> ViaPlainErr for ModeProbe<R> {
    #[inline(always)]
    fn mode(&self) -> PhantomData<OkOnly> {
        PhantomData
    }
}

/// [`cached_async`] with its mode given as a value (a [`ModeProbe`]'s answer).
#[inline(always)]
pub fn cached_async_in<Mode, R, K, Fut>(
    _mode: PhantomData<Mode>,
    site: &'static CacheSite,
    key: K,
    codec: Option<Codec<K, R::Stored>>,
    load: impl FnOnce() -> Fut,
) -> impl Future<Output = R>
where
    R: Cacheable<Mode>,
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    Fut: Future<Output = R>,
{
    cached_async::<Mode, R, K, Fut>(site, key, codec, load)
}

/// [`cached_async_refreshing`] with its mode given as a value.
#[inline(always)]
pub fn cached_async_refreshing_in<Mode, R, K, F, Fut>(
    _mode: PhantomData<Mode>,
    site: &'static CacheSite,
    key: K,
    load: F,
) -> impl Future<Output = R>
where
    R: Cacheable<Mode> + Send + 'static,
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    cached_async_refreshing::<Mode, R, K, F, Fut>(site, key, load)
}

/// [`cached_blocking`] with its mode given as a value.
#[inline(always)]
pub fn cached_blocking_in<Mode, R, K>(
    _mode: PhantomData<Mode>,
    site: &'static CacheSite,
    key: K,
    load: impl FnOnce() -> R,
) -> R
where
    R: Cacheable<Mode>,
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
{
    cached_blocking::<Mode, R, K>(site, key, load)
}

/// A `key = expr` value as the key.
#[inline]
pub fn key_value<K: KeyPart>(key: K) -> K {
    key
}

pub use crate::rate_limit::{LimitMode, RateKey, RateLimitSite, RateLimitSpec, key_hash};
pub use crate::retry::{
    ErrorHooks, RetrySite, retry_after_first_failure, retry_async, retry_blocking,
};
pub use crate::{Backoff, Jitter, RetryOn, RetrySpec};
pub use core::option::Option::{None, Some};
pub use core::time::Duration;

use crate::classify::{Classification, Classify, classify_error};
use crate::rejected::Rejected;

/// How a refused call reaches the function's error type: `E::from(Rejected)`.
///
/// A trait of its own (rather than a `From<Rejected>` bound) so the error for a missing impl
/// says what to implement.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot carry a refused call: it does not implement `From<resilience::Rejected>`",
    label = "a rate limit, bulkhead, circuit breaker or timeout returns its refusals as `Err(E::from(resilience::Rejected))`",
    note = "add `impl From<resilience::Rejected> for {Self}`, for example a variant `Rejected(resilience::Rejected)`"
)]
pub trait FromRejected: Sized {
    /// `Self::from(rejected)`.
    fn from_rejected(rejected: Rejected) -> Self;
}

impl<E: From<Rejected>> FromRejected for E {
    #[inline]
    fn from_rejected(rejected: Rejected) -> Self {
        E::from(rejected)
    }
}

/// The error type of a function's return type, when it can carry a refused call.
pub trait RejectedInto {
    /// The function's error type.
    type Error;
}

impl<T, E: FromRejected> RejectedInto for Result<T, E> {
    type Error = E;
}

/// The conversion of a refusal into the error type of return type `R`. Generated code calls
/// it once, on the return type's span, so a missing `From<Rejected>` is one error, there.
#[inline]
pub fn rejecter<R>() -> fn(Rejected) -> <R as RejectedInto>::Error
where
    R: RejectedInto,
    <R as RejectedInto>::Error: FromRejected,
{
    <<R as RejectedInto>::Error as FromRejected>::from_rejected
}

pub use crate::bulkhead::{bulkhead_async, bulkhead_blocking};
pub use crate::rate_limit::{rate_limited_async, rate_limited_blocking};

/// What a `cost = expr` value may be: an unsigned integer, the permits one call takes.
///
/// A trait of its own (rather than `Into<u64>`) so that `usize` and `u128` are accepted and a
/// signed type is refused with a message that names `cost`.
#[diagnostic::on_unimplemented(
    message = "`cost` must be an unsigned integer (`u8`, `u16`, `u32`, `u64`, `u128` or `usize`), found `{Self}`",
    label = "the permits this call takes",
    note = "a signed value can be negative: convert it first and decide what a negative cost means, e.g. `u64::try_from(n).unwrap_or(0)`; an integer literal without a suffix is an `i32`, so write `3u32`"
)]
pub trait Cost {
    /// The permits, saturating at `u64::MAX` (far above any limiter's capacity, so refused).
    fn permits(&self) -> u64;
}

macro_rules! lossless_cost {
    ($($t:ty),*) => {$(
        impl Cost for $t {
            #[inline(always)]
            fn permits(&self) -> u64 {
                u64::from(*self)
            }
        }
    )*};
}
lossless_cost!(u8, u16, u32, u64);

impl Cost for usize {
    #[inline(always)]
    fn permits(&self) -> u64 {
        u64::try_from(*self).unwrap_or(u64::MAX)
    }
}

impl Cost for u128 {
    #[inline(always)]
    fn permits(&self) -> u64 {
        u64::try_from(*self).unwrap_or(u64::MAX)
    }
}

impl<T: Cost + ?Sized> Cost for &T {
    #[inline(always)]
    fn permits(&self) -> u64 {
        (**self).permits()
    }
}

/// A `cost = expr` value (taken by reference, as a `key` is) as the permits of one call.
#[inline(always)]
pub fn cost<C: Cost + ?Sized>(cost: &C) -> Option<u64> {
    Some(cost.permits())
}

/// Makes a fresh copy of an argument for each try.
///
/// A trait of its own (rather than `Clone` directly) so the error for a non-`Clone` argument
/// explains why `#[retry]` needs it.
#[diagnostic::on_unimplemented(
    message = "`#[retry]` calls the function again for each try, so this argument must be `Clone`, and `{Self}` is not",
    label = "this argument is cloned for each try",
    note = "take the argument by reference (`&{Self}`), or implement `Clone` for `{Self}`"
)]
pub trait Reuse {
    /// A copy for the next try.
    fn reuse(&self) -> Self;
}

impl<T: Clone> Reuse for T {
    #[inline(always)]
    fn reuse(&self) -> Self {
        self.clone()
    }
}

/// Picks, at compile time, the best way to look at the error type of a function returning
/// `R`: its own [`Classify`] impl, else the `source()` chain of `std::error::Error`, else
/// nothing (`Other`). Autoref specialisation: call `(&&&Probe::<R>::new()).classifier()`.
pub struct Probe<R>(PhantomData<fn() -> R>);

impl<R> Probe<R> {
    /// A probe for return type `R`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

/// The error's own [`Classify`] impl.
pub trait ViaClassify<E> {
    /// The classifier.
    fn classifier(&self) -> fn(&E) -> Classification;
}
impl<T, E: Classify> ViaClassify<E> for &&Probe<Result<T, E>> {
    fn classifier(&self) -> fn(&E) -> Classification {
        <E as Classify>::classification
    }
}

/// The `source()` chain of a `std::error::Error`.
pub trait ViaError<E> {
    /// The classifier.
    fn classifier(&self) -> fn(&E) -> Classification;
}
impl<T, E: Error + 'static> ViaError<E> for &Probe<Result<T, E>> {
    fn classifier(&self) -> fn(&E) -> Classification {
        |error| classify_error(error)
    }
}

/// No way to look inside: `Other`.
pub trait ViaNothing<E> {
    /// The classifier.
    fn classifier(&self) -> fn(&E) -> Classification;
}
impl<T, E> ViaNothing<E> for Probe<Result<T, E>> {
    fn classifier(&self) -> fn(&E) -> Classification {
        |_| Classification::OTHER
    }
}

/// Describes an error with `Display`.
pub trait ShowDisplay<E> {
    /// The describer.
    fn describer(&self) -> fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result;
}
impl<T, E: fmt::Display> ShowDisplay<E> for &&Probe<Result<T, E>> {
    fn describer(&self) -> fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result {
        <E as fmt::Display>::fmt
    }
}

/// Describes an error with `Debug`.
pub trait ShowDebug<E> {
    /// The describer.
    fn describer(&self) -> fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result;
}
impl<T, E: fmt::Debug> ShowDebug<E> for &Probe<Result<T, E>> {
    fn describer(&self) -> fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result {
        <E as fmt::Debug>::fmt
    }
}

/// Describes an error by its type name.
pub trait ShowTypeName<E> {
    /// The describer.
    fn describer(&self) -> fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result;
}
impl<T, E> ShowTypeName<E> for Probe<Result<T, E>> {
    fn describer(&self) -> fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result {
        |_, f| f.write_str(std::any::type_name::<E>())
    }
}

/// The [`ErrorHooks`] for a function returning `$ret`, chosen by the error type's traits.
#[macro_export]
#[doc(hidden)]
macro_rules! __error_hooks {
    ($ret:ty, $retry_if:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{
            ShowDebug as _, ShowDisplay as _, ShowTypeName as _, ViaClassify as _, ViaError as _,
            ViaNothing as _,
        };
        // The references are the specialisation: each one is a priority level.
        #[allow(clippy::needless_borrow)]
        let hooks = $crate::__private::ErrorHooks::new(
            (&&&$crate::__private::Probe::<$ret>::new()).classifier(),
            (&&&$crate::__private::Probe::<$ret>::new()).describer(),
        );
        hooks.with_retry_if($retry_if)
    }};
}

pub use crate::__error_hooks as error_hooks;

#[cfg(test)]
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;
    use crate::{ErrorClass, HttpError};

    #[derive(Debug)]
    struct Plain;

    struct Custom;
    impl Classify for Custom {
        fn class(&self) -> ErrorClass {
            ErrorClass::Status(418)
        }
    }

    #[derive(Debug)]
    struct Both;
    impl fmt::Display for Both {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("both")
        }
    }
    impl Error for Both {}
    impl Classify for Both {
        fn class(&self) -> ErrorClass {
            ErrorClass::Status(418)
        }
    }

    #[derive(Debug)]
    struct Chained(HttpError);
    impl fmt::Display for Chained {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("chained")
        }
    }
    impl Error for Chained {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    struct Shown<E>(E, fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result);
    impl<E> fmt::Display for Shown<E> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            (self.1)(&self.0, f)
        }
    }

    #[test]
    fn probe_prefers_classify_then_error_then_nothing() {
        let custom = (&&&Probe::<Result<(), Custom>>::new()).classifier();
        assert_eq!(custom(&Custom).class, ErrorClass::Status(418));
        let chained = (&&&Probe::<Result<(), Chained>>::new()).classifier();
        assert_eq!(
            chained(&Chained(HttpError::new(502))).class,
            ErrorClass::Status(502)
        );
        let both = (&&&Probe::<Result<(), Both>>::new()).classifier();
        assert_eq!(
            both(&Both).class,
            ErrorClass::Status(418),
            "Classify wins over source()"
        );
        let plain = (&&&Probe::<Result<(), Plain>>::new()).classifier();
        assert_eq!(plain(&Plain).class, ErrorClass::Other);
        let _hooks: ErrorHooks<Plain> = error_hooks!(Result<(), Plain>, None);
    }

    #[test]
    fn probe_describes_with_display_then_debug_then_type_name() {
        let display = (&&&Probe::<Result<(), Chained>>::new()).describer();
        assert_eq!(
            Shown(Chained(HttpError::new(502)), display).to_string(),
            "chained"
        );
        let debug = (&&&Probe::<Result<(), Plain>>::new()).describer();
        assert_eq!(Shown(Plain, debug).to_string(), "Plain");
        let name = (&&&Probe::<Result<(), Custom>>::new()).describer();
        assert!(Shown(Custom, name).to_string().ends_with("tests::Custom"));
    }
}
