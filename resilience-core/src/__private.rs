//! Support for macro-generated code. Not a public API: names and signatures change freely.

use std::error::Error;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

pub use crate::breaker::site::{BreakerSite, circuit_breaker_async, circuit_breaker_blocking};
pub use crate::breaker::{BreakerSpec, WindowType};
pub use crate::bulkhead::{BulkheadSite, BulkheadSpec};
pub use crate::cache::adapter::{
    AsIs, Cacheable, Failure, OkAndErr, OkCloneErr, OkOnly, SomeAndNone, SomeOnly,
};
pub use crate::cache::site::{
    AnyCache, Codec, cached_async, cached_async_refreshing, cached_blocking,
};
pub use crate::cache::weigh::weigh_any;
pub use crate::cache::{CacheSite, CacheSpec};
pub use crate::fallback::FallbackSite;
pub use crate::hedge::{HedgeAfter, HedgeSite, HedgeSpec, hedge_async};
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
/// `KeyProbe::of(&argument).key()`: autoderef specialisation (as [`CodecProbe`]) makes `key`
/// an inherent method of this type when the argument (or, for `&T`, its owned form) is a
/// [`KeyPart`], and of [`NotKeyPart`], which this type derefs to, always. That one is an
/// error on the argument with `KeyPart`'s message and returns a placeholder key, so the key
/// tuple is still a key and the cache call reports nothing more. Inherent methods need no
/// import, so the key is one expression in the generated code.
pub struct KeyProbe<'a, T: ?Sized>(NotKeyPart<'a, T>);

/// The fallback level of [`KeyProbe`]: the argument is not a key part.
pub struct NotKeyPart<'a, T: ?Sized>(&'a T);

impl<'a, T: ?Sized> KeyProbe<'a, T> {
    /// A probe of `argument` (`&arg` for an owned argument, `arg` for a borrowed one).
    #[inline(always)]
    pub fn of(argument: &'a T) -> Self {
        KeyProbe(NotKeyPart(argument))
    }
}

impl<'a, T: ?Sized> Deref for KeyProbe<'a, T> {
    type Target = NotKeyPart<'a, T>;
    #[inline(always)]
    fn deref(&self) -> &NotKeyPart<'a, T> {
        &self.0
    }
}

impl<T: ?Sized + ToOwned> KeyProbe<'_, T>
where
    T::Owned: KeyPart,
{
    /// The argument is a key part: a copy of it, owned (`&str` becomes `String`).
    #[inline(always)]
    pub fn key(&self) -> T::Owned {
        self.0.0.to_owned()
    }
}

impl<T> NotKeyPart<'_, T> {
    /// Never compiles: `T` is not a key part.
    pub fn key(&self) -> NotAKey
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
/// `CodecProbe::<_, Stored>::of(&key).codec()`, which gives the JSON [`Codec`] when both are
/// serde types and `None` otherwise, so only a function that can be shared is shared through
/// a Redis backend, and no function has to be. A key that can also be read back from JSON
/// gets a codec that can (a `local` tier needs it to drop the copy an invalidation message
/// names).
///
/// Autoderef specialisation (as [`Probe`]): `codec` is an inherent method of this type when
/// the key is `Serialize + DeserializeOwned`, of [`WriteOnlyCodec`] (which this type derefs to)
/// when it is `Serialize`, and of [`NoCodec`], which that derefs to, always.
pub struct CodecProbe<K, V>(WriteOnlyCodec<K, V>);

/// The middle level of [`CodecProbe`]: a key that is written to JSON, never read back.
pub struct WriteOnlyCodec<K, V>(NoCodec<K, V>);

/// The fallback level of [`CodecProbe`]: no codec.
pub struct NoCodec<K, V>(PhantomData<Types<K, V>>);

/// The probed types, without owning them (the probe is `Send + Sync` whatever they are).
type Types<K, V> = (fn(&K), fn(&V));

impl<K, V> CodecProbe<K, V> {
    /// A probe for the type of `key` and the stored value's type `V`.
    #[inline(always)]
    pub fn of(_key: &K, _value: PhantomData<V>) -> Self {
        CodecProbe(WriteOnlyCodec(NoCodec(PhantomData)))
    }
}

impl<K, V> Deref for CodecProbe<K, V> {
    type Target = WriteOnlyCodec<K, V>;
    #[inline(always)]
    fn deref(&self) -> &WriteOnlyCodec<K, V> {
        &self.0
    }
}

impl<K, V> Deref for WriteOnlyCodec<K, V> {
    type Target = NoCodec<K, V>;
    #[inline(always)]
    fn deref(&self) -> &NoCodec<K, V> {
        &self.0
    }
}

impl<K, V> CodecProbe<K, V>
where
    K: serde::Serialize + serde::de::DeserializeOwned,
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    /// Key and value are serde types, and the key reads back: the JSON codec, both ways.
    #[inline(always)]
    pub fn codec(&self) -> Option<Codec<K, V>> {
        Some(Codec::json().reading_keys())
    }
}

impl<K, V> WriteOnlyCodec<K, V>
where
    K: serde::Serialize,
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    /// Key and value are serde types: the JSON codec.
    #[inline(always)]
    pub fn codec(&self) -> Option<Codec<K, V>> {
        Some(Codec::json())
    }
}

impl<K, V> NoCodec<K, V> {
    /// Key or value is not a serde type: no codec.
    #[inline(always)]
    pub fn codec(&self) -> Option<Codec<K, V>> {
        None
    }
}

/// A cached function's `Result` return type, probed for a failure its waiters can share:
/// `#[cached]` (without `negative_ttl`) calls `ModeProbe::<R>::new().mode()`, which is
/// [`OkCloneErr`] when `E: Clone + Send + Sync + 'static` and [`OkOnly`] otherwise, and passes
/// it to [`cached_async_in`] and its siblings.
///
/// Autoderef specialisation (as [`CodecProbe`]): `mode` is an inherent method of this type
/// when the error can be cloned, and of [`PlainErr`], which this type derefs to, always.
pub struct ModeProbe<R>(PlainErr<R>);

/// The fallback level of [`ModeProbe`]: an error that is not `Clone`.
pub struct PlainErr<R>(PhantomData<fn() -> R>);

impl<R> ModeProbe<R> {
    /// A probe of the return type `R`.
    #[inline(always)]
    pub fn new() -> Self {
        ModeProbe(PlainErr(PhantomData))
    }
}

impl<R> Default for ModeProbe<R> {
    fn default() -> Self {
        ModeProbe::new()
    }
}

impl<R> Deref for ModeProbe<R> {
    type Target = PlainErr<R>;
    #[inline(always)]
    fn deref(&self) -> &PlainErr<R> {
        &self.0
    }
}

impl<R: Cacheable<OkCloneErr>> ModeProbe<R> {
    /// The error is `Clone`: a failure is cloned to every waiter.
    #[inline(always)]
    pub fn mode(&self) -> PhantomData<OkCloneErr> {
        PhantomData
    }
}

impl<R> PlainErr<R> {
    /// The error is not `Clone`: the waiters on a failure load at once.
    #[inline(always)]
    pub fn mode(&self) -> PhantomData<OkOnly> {
        PhantomData
    }
}

/// [`cached_async`] with its mode given as a value (a [`ModeProbe`]'s answer), and its codec
/// as a [`CodecProbe`] of the key and the stored value: a closure, type-checked after the
/// other arguments (closures are), so that it is given both types without generated code
/// naming them.
#[inline(always)]
pub fn cached_async_in<Mode, R, K, Fut>(
    _mode: PhantomData<Mode>,
    site: &'static CacheSite,
    key: K,
    load: impl FnOnce() -> Fut,
    codec: impl FnOnce(&K, PhantomData<R::Stored>) -> Option<Codec<K, R::Stored>>,
) -> impl Future<Output = R>
where
    R: Cacheable<Mode>,
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    Fut: Future<Output = R>,
{
    let codec = codec(&key, PhantomData);
    cached_async::<Mode, R, K, Fut>(site, codec, key, load)
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

pub use crate::clock::Stamp;
pub use crate::rate_limit::site::RateLimitSite;
pub use crate::rate_limit::{LimitMode, RateKey, RateLimitSpec, key_hash};
pub use crate::retry::ErrorHooks;
pub use crate::retry::executor::{
    InlineRetrySite, RetrySite, retry_blocking, retry_blocking_if_ok,
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

/// The `Ok` type of a function's `Result` return type: what `retry_if_ok` is given.
pub trait OkOf {
    /// `T` of `Result<T, E>`.
    type Ok;
}

impl<T, E> OkOf for Result<T, E> {
    type Ok = T;
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
pub use crate::rate_limit::site::{rate_limited_async, rate_limited_blocking};

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

/// Picks, at compile time, how to look at the errors of a function returning `R`: classify
/// them with its own [`Classify`] impl, else the `source()` chain of `std::error::Error`,
/// else not at all (`Other`); then describe them with `Display`, else `Debug`, else the type's
/// name. Generated code calls `Probe::<R>::new().classified().hooks()`.
///
/// Autoderef specialisation: each level of a `Deref` chain has its own inherent method, whose
/// impl's bounds say when it applies; method lookup takes the first level whose bounds hold
/// (an `E` that is a generic parameter without bounds falls through to the last). Inherent
/// methods need no trait in scope, so generated code imports nothing.
pub struct Probe<R>(ProbeError<R>);

/// The second level of [`Probe`]: the `source()` chain of a `std::error::Error`.
pub struct ProbeError<R>(ProbeOther<R>);

/// The last level of [`Probe`]: no way to look inside.
pub struct ProbeOther<R>(PhantomData<fn() -> R>);

impl<R> Probe<R> {
    /// A probe for return type `R`.
    #[allow(clippy::new_without_default)]
    #[inline(always)]
    pub const fn new() -> Self {
        Probe(ProbeError(ProbeOther(PhantomData)))
    }

    /// A value of the return type, for the line generated code puts first in an `async`
    /// block holding a function's body: `if false { return probe.output(); }` fixes the
    /// block's output type to the function's before the body is checked, so the body's
    /// `return`s coerce (`&String` to `&str`) as they did in the original function. Never
    /// called.
    #[allow(clippy::empty_loop)]
    pub fn output(&self) -> R {
        loop {}
    }
}

// By hand: derived impls would require `R: Copy`. Copied into each closure that uses it.
macro_rules! copy_without_bounds {
    ($($probe:ident),*) => {$(
        impl<R> Clone for $probe<R> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<R> Copy for $probe<R> {}
    )*};
}
copy_without_bounds!(Probe, ProbeError, ProbeOther);

impl<R> Deref for Probe<R> {
    type Target = ProbeError<R>;
    #[inline(always)]
    fn deref(&self) -> &ProbeError<R> {
        &self.0
    }
}

impl<R> Deref for ProbeError<R> {
    type Target = ProbeOther<R>;
    #[inline(always)]
    fn deref(&self) -> &ProbeOther<R> {
        &self.0
    }
}

impl<T, E: Classify> Probe<Result<T, E>> {
    /// The error's own [`Classify`] impl.
    #[inline(always)]
    pub fn classified(&self) -> Classified<E> {
        Classified::new(<E as Classify>::classification)
    }
}

impl<T, E: Error + 'static> ProbeError<Result<T, E>> {
    /// The `source()` chain of a `std::error::Error`.
    #[inline(always)]
    pub fn classified(&self) -> Classified<E> {
        Classified::new(|error| classify_error(error))
    }
}

impl<T, E> ProbeOther<Result<T, E>> {
    /// No way to look inside: `Other`.
    #[inline(always)]
    pub fn classified(&self) -> Classified<E> {
        Classified::new(|_| Classification::OTHER)
    }
}

/// A classifier found by [`Probe`], waiting for a describer: `hooks()` picks `Display`, else
/// `Debug` (through [`ClassifiedDebug`]), else the type's name (through [`ClassifiedName`]).
pub struct Classified<E>(ClassifiedDebug<E>);

/// The second level of [`Classified`]: described with `Debug`.
pub struct ClassifiedDebug<E>(ClassifiedName<E>);

/// The last level of [`Classified`]: described by its type's name.
pub struct ClassifiedName<E>(fn(&E) -> Classification);

impl<E> Classified<E> {
    #[inline(always)]
    fn new(classify: fn(&E) -> Classification) -> Self {
        Classified(ClassifiedDebug(ClassifiedName(classify)))
    }
}

impl<E> Deref for Classified<E> {
    type Target = ClassifiedDebug<E>;
    #[inline(always)]
    fn deref(&self) -> &ClassifiedDebug<E> {
        &self.0
    }
}

impl<E> Deref for ClassifiedDebug<E> {
    type Target = ClassifiedName<E>;
    #[inline(always)]
    fn deref(&self) -> &ClassifiedName<E> {
        &self.0
    }
}

impl<E: fmt::Display> Classified<E> {
    /// The hooks, describing with `Display`.
    #[inline(always)]
    pub fn hooks(&self) -> ErrorHooks<E> {
        ErrorHooks::new(self.0.0.0, <E as fmt::Display>::fmt)
    }
}

impl<E: fmt::Debug> ClassifiedDebug<E> {
    /// The hooks, describing with `Debug`.
    #[inline(always)]
    pub fn hooks(&self) -> ErrorHooks<E> {
        ErrorHooks::new(self.0.0, <E as fmt::Debug>::fmt)
    }
}

impl<E> ClassifiedName<E> {
    /// The hooks, describing by the type's name.
    #[inline(always)]
    pub fn hooks(&self) -> ErrorHooks<E> {
        ErrorHooks::new(self.0, |_, f| f.write_str(std::any::type_name::<E>()))
    }
}

/// [`fallback_async`](crate::fallback::fallback_async) of a function returning `R`, given
/// first (as the probe) so that the fallback is checked against the function's `T` and `E`:
/// a fallback of another signature is one error on its path, naming both.
#[inline(always)]
pub fn fallback_async<T, E, F, Fut, H, M>(
    _probe: Probe<Result<T, E>>,
    site: &'static crate::fallback::FallbackSite,
    fallback: H,
    call: F,
) -> impl Future<Output = Result<T, E>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    H: crate::fallback::Recover<E, Result<T, E>, M>,
{
    crate::fallback::fallback_async(site, fallback, call)
}

/// [`fallback_blocking`](crate::fallback::fallback_blocking), its types given first (see
/// [`fallback_async`]).
#[inline(always)]
pub fn fallback_blocking<T, E, F, H>(
    _probe: Probe<Result<T, E>>,
    site: &'static crate::fallback::FallbackSite,
    fallback: H,
    call: F,
) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E>,
    H: crate::fallback::RecoverBlocking<E, Result<T, E>>,
{
    crate::fallback::fallback_blocking(site, fallback, call)
}

/// Turns the counting of events behind `resilience::stats()` on or off, for the failure-path
/// benchmark (`benches/failure_path.rs`) to measure what counting costs. On by default.
pub fn set_counting(on: bool) {
    crate::counters::set_counting(on);
}

/// The inline values of a `#[bulkhead]` site without `max_concurrent` (its policy gives it):
/// unbounded until then.
pub const UNBOUNDED_BULKHEAD: BulkheadSpec = BulkheadSpec::new(BulkheadSpec::UNBOUNDED);

/// The inline limit of a `#[timeout]` site without a duration (its policy gives it, or
/// `#[resilient]` has no `timeout`): no limit until then.
pub const NO_TIME_LIMIT: Duration = Duration::MAX;

/// The inline ttl of a `#[cached]` site without `ttl` (its policy gives it): the site stores
/// nothing until then.
pub const NO_TTL: Duration = Duration::ZERO;

#[cfg(test)]
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

    struct Shown<E>(E, ErrorHooks<E>);
    impl<E> fmt::Display for Shown<E> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.1.describe(&self.0, f)
        }
    }

    #[test]
    fn probe_prefers_classify_then_error_then_nothing() {
        let custom = Probe::<Result<(), Custom>>::new().classified().hooks();
        assert_eq!(custom.classify(&Custom).class, ErrorClass::Status(418));
        let chained = Probe::<Result<(), Chained>>::new().classified().hooks();
        assert_eq!(
            chained.classify(&Chained(HttpError::new(502))).class,
            ErrorClass::Status(502)
        );
        let both = Probe::<Result<(), Both>>::new().classified().hooks();
        assert_eq!(
            both.classify(&Both).class,
            ErrorClass::Status(418),
            "Classify wins over source()"
        );
        let plain = Probe::<Result<(), Plain>>::new().classified().hooks();
        assert_eq!(plain.classify(&Plain).class, ErrorClass::Other);
    }

    #[test]
    fn probe_describes_with_display_then_debug_then_type_name() {
        let display = Probe::<Result<(), Chained>>::new().classified().hooks();
        assert_eq!(
            Shown(Chained(HttpError::new(502)), display).to_string(),
            "chained"
        );
        let debug = Probe::<Result<(), Plain>>::new().classified().hooks();
        assert_eq!(Shown(Plain, debug).to_string(), "Plain");
        let name = Probe::<Result<(), Custom>>::new().classified().hooks();
        assert!(Shown(Custom, name).to_string().ends_with("tests::Custom"));
    }
}
