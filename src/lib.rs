#![doc = include_str!("../README.md")]

pub use resilience_core::*;
/// Retries a function that returns `Result<T, E>` when it fails with a transient error,
/// with exponential backoff and jitter, honouring the server's Retry-After.
///
/// # Arguments
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `attempts` | integer >= 1 | `3` | total tries, the first included |
/// | `backoff` | `"exp"`, `"linear"`, `"constant"` | `"exp"` | `exp`: the n-th retry sleeps `base * factor^(n-1)`; `linear`: `base * n`; `constant`: `base` |
/// | `base` | duration | `"100ms"` | first delay |
/// | `factor` | number >= 1.0 | `2.0` | growth for `exp` |
/// | `max_delay` | duration | `"10s"` | cap on one sleep |
/// | `max_elapsed` | duration | none | give up when the next sleep would end past this total |
/// | `jitter` | fraction 0.0..=1.0, or `"full"`, `"equal"`, `"decorrelated"` | `0.0` | a fraction `j` makes each sleep uniform in `[d*(1-j), d*(1+j)]` |
/// | `on` | list of `Timeout`, `Connect`, `Transient`, status codes (`503`), classes (`"5xx"`) | `[Transient]` | what to retry; `Transient` is Timeout, Connect, 429, 502, 503, 504 |
/// | `retry_if` | path to `fn(&E) -> bool` | none | replaces `on` |
/// | `retry_after` | bool | `true` | wait the server's Retry-After; give up at once when it exceeds `max_delay` |
/// | `policy` | string | none | a named policy whose `retry` section overrides these values |
///
/// Durations are strings: `"250ms"`, `"1.5s"`, `"10s"`, `"2m"`, `"1h"`.
///
/// The function body runs once per try. Arguments taken by value are cloned for each try
/// (so they must be `Clone`); `&T` arguments are reused as they are; a blocking `fn` reborrows
/// `&mut` arguments and `&mut self`. An `async fn` cannot take `&mut` arguments or `&mut self`
/// (each try's future would need the exclusive borrow again), nor `self` by value.
///
/// # Examples
///
/// ```
/// use resilience::{retry, HttpError};
///
/// #[retry(attempts = 3, backoff = "exp", jitter = 0.2, on = [Timeout, 502, 503])]
/// async fn fetch_user(id: u64) -> Result<String, HttpError> {
///     Ok(format!("user {id}"))
/// }
/// ```
///
/// # Errors
///
/// A bad key, value or target is a compile error on the offending token: an unknown key
/// (with a "did you mean" hint), a duplicate, a value of the wrong type or out of range, a
/// malformed duration, a function not returning `Result`, an argument that cannot be reused.
#[doc(inline)]
pub use resilience_macros::retry;

#[doc(inline)]
pub use resilience_macros::{bulkhead, rate_limited};

#[doc(hidden)]
pub use resilience_core::__private;
