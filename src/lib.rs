#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The public API, listed: every item a user names (README, examples, tests). Whole modules
// where the module is the natural path (`resilience::cache::Cache`), so an item added to one
// appears here without editing this list; what only generated code calls is in `__private`.

/// Errors and their classification: what a policy reads from a failure.
pub use resilience_core::{
    Classification, Classify, ErrorClass, ErrorHooks, HttpError, Rejected, classify_error,
};

/// The plain builder API of `#[retry]`, and a retry policy as data.
pub use resilience_core::{
    Backoff, Decision, GiveUp, Jitter, Retry, RetryOn, RetryPatch, RetrySpec, Schedule,
};

/// Durations as the macros and YAML write them, and a policy value outside its rule.
pub use resilience_core::{DurationError, InvalidValue, parse_duration};

/// A policy's `alert` fired or cleared, and the hook that is told (a webhook, a pager).
pub use resilience_core::{Alert, AlertKind, on_alert};

// `events` is a module and a function of that name (`resilience::events().on_retry(..)`,
// `resilience::events::Event`): one `use` brings both.
pub use resilience_core::events;

// `batch` and `stats` are each a module and a function of that name (`resilience::batch(..)`,
// `resilience::stats()`): one `use` brings both.
pub use resilience_core::{
    backend, batch, breaker, bulkhead, cache, config, fallback, http, pipeline, rate_limit,
    registry, retry, stats,
};

/// Plays YAML policies against a modelled server on tokio's paused clock.
#[cfg(feature = "sim")]
pub use resilience_core::sim;

/// A named policy as a `tower::Layer`, for clients and servers.
#[cfg(feature = "tower")]
pub use resilience_core::tower;

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
/// | `on` | list of `Timeout`, `Connect`, `Body`, `Transient`, status codes (`503`), classes (`"5xx"`) | `[Transient]` | what to retry; `Transient` is Timeout, Connect, 429, 502, 503, 504; `Body` (an answer whose body failed midway) is retried only when listed |
/// | `retry_if` | path to `fn(&E) -> bool` | none | replaces `on` |
/// | `retry_if_ok` | path to `fn(&T) -> bool` | none | an `Ok` value for which it is true is retried on the same schedule as an error; when no retry follows, the last `Ok` value is returned |
/// | `retry_after` | bool | `true` | wait the server's Retry-After; give up at once when it exceeds `max_delay` |
/// | `budget` | string | none | the retry budget the site draws on (a policy's `retry_budget` section): a retry it refuses gives up at once |
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

/// Caches a function's results by its arguments: one load per key per `ttl`, however many
/// callers miss together.
///
/// # Arguments
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `ttl` | duration | required unless `policy` gives it | how long an entry is fresh |
/// | `max_entries` | integer >= 1 | `10_000` | bound; the least valuable entries are evicted (S3-FIFO) |
/// | `ttl_jitter` | fraction 0.0..=1.0 | `0.0` | each entry's ttl is uniform in `[ttl*(1-j), ttl]` |
/// | `negative_ttl` | duration | none | also cache `Err` (needs `E: Clone`) and `None` for this long |
/// | `key` | expression over the arguments | every argument but `self` | the cache key (`Hash + Eq + Clone + Send + Sync + 'static`) |
/// | `stale_while_revalidate` | duration | none | serve an expired value for this long while one refresh runs |
/// | `max_bytes` | size: `"64MiB"`, `"10 MB"`, or bytes | none | a bound on the stored values' weight (they implement `resilience::cache::Weigh`), beside `max_entries` |
/// | `early_refresh` | number 0.0..=100.0 | `0.0` (off) | XFetch's `beta`: a value whose load took `d` is refreshed by the first caller after `expiry - d * beta * E` (`E` exponential of mean 1, drawn once per stored value), in the background as a stale one is, while every caller keeps getting it |
/// | `policy` | string | none | a named policy whose `cache` section overrides these values; `enabled: false` there bypasses the cache |
///
/// `Result<T, E>` caches `Ok`, `Option<T>` caches `Some`, other return types are cached as
/// they are; the cached value must be `Clone`. By default the key is the tuple of every
/// argument (borrowed ones owned: `&str` becomes `String`); a method's `self` is not part of
/// the key, so every instance shares the cache. Concurrent misses on one key run the function
/// once and every waiter gets its result, a failure included: a `None`, or an `Err(E)` with
/// `E: Clone + Send + Sync + 'static`, is cloned to every waiter (one load per failure); an
/// `Err(E)` whose `E` is not `Clone` cannot be, so each waiter then runs its own load at once.
/// When the load is cancelled or panics, exactly one waiter loads in its turn. No thread is
/// started (see `resilience::cache::spawn_reporter` for an opt-in metrics reporter).
///
/// With `stale_while_revalidate`, a stale entry is served to every caller at once while one
/// refresh runs in a spawned tokio task, for an `async fn` whose future owns what it uses (no
/// `self`, no generics, no borrowed argument, a `Send` body). Other functions refresh in the
/// first caller to find the entry stale, while everyone else gets the stale value.
///
/// Each cached function gets a handle beside it, named `<function>_cache()` (an associated
/// function for a method), with `invalidate(&key)`, `invalidate_all()` and `counts()`. A trait
/// impl has no room for that handle, so a trait method is cached by delegating to a cached
/// inherent method (the README shows how).
///
/// # Examples
///
/// ```
/// use resilience::cached;
///
/// #[cached(ttl = "60s", max_entries = 1_000)]
/// async fn city_list(country: String) -> Result<Vec<String>, std::io::Error> {
///     Ok(vec![format!("capital of {country}")])
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cities = city_list("FR".to_string()).await.unwrap();
/// assert_eq!(city_list("FR".to_string()).await.unwrap(), cities); // served from the cache
/// assert_eq!(city_list_cache().counts().loads, 1);
/// city_list_cache().invalidate(&("FR".to_string(),)); // the record changed
/// # }
/// ```
///
/// # Errors
///
/// A compile error on the offending token for an unknown or duplicate key, a malformed
/// duration, `max_entries = 0`, `ttl_jitter` outside 0.0..=1.0, a missing `ttl` without
/// `policy`, and an argument that cannot be part of the key; a value (or, with
/// `negative_ttl`, an error) that is not `Clone` is reported at the return type (with a
/// background `stale_while_revalidate` refresh, at that key and the attribute as well).
#[doc(inline)]
pub use resilience_macros::cached;

/// Limits the rate of calls to a function: at most `calls` in any window of length `period`,
/// smoothly spaced (GCRA, one admission every `period / calls`).
///
/// # Arguments
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `calls` | integer >= 1 | required unless `policy` gives it | admissions per `period` |
/// | `period` | duration | required unless `policy` gives it | the window length |
/// | `burst` | integer | `0` | extra calls allowed at once after idle time |
/// | `mode` | `"wait"` or `"reject"` | `"wait"` | sleep until admitted, or refuse at once |
/// | `max_wait` | duration | none | in wait mode, refuse at once when the wait would be longer |
/// | `key` | expression over the arguments (`Hash`) | none | one limiter per key value |
/// | `cost` | expression over the arguments (an unsigned integer) | `1` | how many permits one call takes (tokens, bytes); a cost above `calls + burst` is refused with a clear error |
/// | `policy` | string | none | a named limiter shared by every site naming it |
///
/// A refused call returns `Err(E::from(Rejected::RateLimited { retry_after }))`, so the error
/// type must implement `From<resilience::Rejected>`. A call with a `cost` is admitted when a
/// one-permit call would be, and the calls after it wait for its permits; a cost above
/// `calls + burst` (the values in force) is `Rejected::CostTooHigh` at once, never retried. A
/// policy's `cost` replaces the expression. A call that fails with a 429 carrying a
/// Retry-After makes the limiter admit nothing until then. With `policy` and no inline `calls`
/// and `period`, the site is unlimited until the policy gives a rate.
///
/// # Examples
///
/// ```
/// use resilience::{rate_limited, Rejected};
///
/// #[derive(Debug)]
/// struct ApiError(String);
///
/// impl From<Rejected> for ApiError {
///     fn from(rejected: Rejected) -> Self {
///         ApiError(rejected.to_string())
///     }
/// }
///
/// #[rate_limited(calls = 20, period = "10s", key = org)]
/// async fn list_repos(org: &str) -> Result<Vec<String>, ApiError> {
///     Ok(vec![format!("{org}/resilience")])
/// }
///
/// #[rate_limited(calls = 1, period = "1h", mode = "reject")]
/// fn ping() -> Result<(), ApiError> {
///     Ok(())
/// }
///
/// assert!(ping().is_ok());
/// assert!(ping().is_err()); // the next permit is an hour away
///
/// /// An LLM call costing its token estimate, 90,000 tokens a minute.
/// #[rate_limited(calls = 90_000, period = "1m", cost = prompt.len() / 4 + max_tokens)]
/// async fn complete(prompt: &str, max_tokens: usize) -> Result<String, ApiError> {
///     Ok(format!("{prompt}..."))
/// }
///
/// #[rate_limited(calls = 90_000, period = "1m", mode = "reject", cost = tokens)]
/// fn embed(tokens: u64) -> Result<u64, ApiError> {
///     Ok(tokens)
/// }
///
/// assert!(embed(60_000).is_ok());
/// assert!(embed(1).is_err()); // waits for the 60,000 tokens: refused in reject mode
/// assert_eq!(
///     embed(120_000).unwrap_err().0,
///     "a call costing 120000 permits can never be admitted: the limiter admits at most 90000 per 1m (calls + burst)"
/// );
/// ```
///
/// # Errors
///
/// A compile error on the offending token for an unknown or duplicate key, `calls = 0`, a
/// `calls` without `period` (or the reverse), a malformed duration, an unknown `mode`,
/// `max_wait` with `mode = "reject"`, a function not returning `Result`, an error type
/// without `From<resilience::Rejected>`, a literal `cost` of 0, negative, fractional or above
/// the literal `calls + burst` (without a `policy`, which could raise them), and a `cost`
/// expression whose type is not an unsigned integer.
#[doc(inline)]
pub use resilience_macros::rate_limited;

/// Caps the calls of a function in flight at once.
///
/// # Arguments
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `max_concurrent` | integer >= 1 | required unless `policy` gives it | calls in flight at once |
/// | `max_wait` | duration | `"0s"` | how long a call may wait for a free slot |
/// | `policy` | string | none | a named bulkhead shared by every site naming it |
///
/// A call that finds no free slot within `max_wait` returns
/// `Err(E::from(Rejected::BulkheadFull))`.
///
/// # Examples
///
/// ```
/// use resilience::{bulkhead, Rejected};
///
/// #[derive(Debug)]
/// struct DbError(String);
///
/// impl From<Rejected> for DbError {
///     fn from(rejected: Rejected) -> Self {
///         DbError(rejected.to_string())
///     }
/// }
///
/// #[bulkhead(max_concurrent = 8, max_wait = "250ms")]
/// async fn query(sql: &str) -> Result<usize, DbError> {
///     Ok(sql.len())
/// }
/// ```
///
/// # Errors
///
/// A compile error on the offending token for an unknown or duplicate key,
/// `max_concurrent = 0` or missing, a malformed `max_wait`, a function not returning `Result`,
/// and an error type without `From<resilience::Rejected>`.
#[doc(inline)]
pub use resilience_macros::bulkhead;

/// Sends an idempotent call again when it has not answered in time: the first `Ok` wins and
/// the other attempts are dropped (cancelled). For calls with a long latency tail.
///
/// # Arguments
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `idempotent` | `true` | required | the promise that sending the call twice at once is safe |
/// | `after` | duration, or `"p50"` ..= `"p99"` | `"p95"` | how long the attempts in flight may stay silent before another is sent; a percentile follows the site's latency (no hedge until 20 calls have answered) |
/// | `max` | integer 1..=10 | `2` | attempts in flight at most, the first included |
/// | `budget` | string | none | the retry budget each hedge withdraws from (a refused hedge is not sent) |
/// | `policy` | string | none | a policy whose `hedge` section overrides `after` and `max` |
///
/// An attempt that fails waits for the others still in flight; when every attempt sent has
/// failed, the call returns the last error. Hedging is not retrying: put `#[retry]` above
/// `#[hedge]` for both. Only an `async fn` can be hedged; its attempts run at once in the
/// caller's task (no task is spawned).
///
/// # Examples
///
/// ```
/// use resilience::{hedge, HttpError};
///
/// #[hedge(after = "50ms", max = 2, idempotent = true)]
/// async fn price(sku: u64) -> Result<u64, HttpError> {
///     Ok(sku * 100)
/// }
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// assert_eq!(price(3).await, Ok(300));
/// # });
/// ```
///
/// # Errors
///
/// A compile error on the offending token for an unknown or duplicate key, a missing or
/// `false` `idempotent`, an `after` that is neither a duration longer than zero nor `"p50"` to
/// `"p99"`, a `max` outside 1..=10, a blocking `fn`, and a function not returning `Result`.
#[doc(inline)]
pub use resilience_macros::hedge;

/// Stops calling a failing or slow dependency for a while: a circuit breaker over the last
/// calls or the last seconds.
///
/// # Arguments
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `failure_rate` | fraction 0.0..=1.0 | `0.5` | opens when failures / recorded calls reaches this |
/// | `min_calls` | integer >= 1 | `10` | ... with at least this many of the last `window` calls recorded |
/// | `window` | integer >= 1 | `20` | the number of most recent calls counted, or of seconds with `window_type = "time"` |
/// | `window_type` | `"count"`, `"time"` | `"count"` | `time`: the calls of the last `window` seconds, in one-second buckets (resilience4j's time-based window) |
/// | `open_for` | duration | `"30s"` | how long it refuses calls before letting trials through |
/// | `backoff` | number 1.0..=1000000.0 | `1.0` | each failed trial in a row opens it `backoff` times longer than the time before; closing starts again at `open_for` |
/// | `max_open_for` | duration >= `open_for` | none | the cap on a growing `open_for` |
/// | `slow_call` | duration | none | a call taking longer than this is slow |
/// | `slow_call_rate` | fraction 0.0..=1.0 | `1.0` | opens when slow calls / recorded calls reaches this (with `min_calls` recorded) |
/// | `half_open_calls` | integer >= 1 | `3` | trial calls when half-open; all must succeed (and none be slow) to close |
/// | `failure_if` | path to `fn(&E) -> bool` | none | replaces the rule for what a failure is |
/// | `policy` | string | none | a named breaker shared by every site naming it, set by YAML |
///
/// Failures are errors classified Timeout, Connect, Body, 429 or 5xx, and unclassified errors;
/// other 4xx answers are not (the server answered; the request was wrong), nor are the
/// runtime's own refusals other than `Rejected::Timeout`. While open, a call is refused at
/// once, without calling the function, as `Err(E::from(Rejected::CircuitOpen { retry_after }))`
/// where `retry_after` is the time until it half-opens. After `open_for`, `half_open_calls`
/// trials go through (others are refused): all succeed => closed with a fresh window; one
/// fails or is slow => open again, for `open_for` times `backoff` per failed trial in a row
/// (at most `max_open_for`). Every transition is a `tracing` event and a metric
/// (`resilience_breaker_state`, `resilience_breaker_transitions_total`). A `policy`'s breaker
/// is controlled by hand through `resilience::breaker("name")` (`force_open()`, `disable()`,
/// `reset()`, `state()`).
///
/// # Examples
///
/// ```
/// use resilience::{circuit_breaker, HttpError, Rejected};
///
/// #[derive(Debug)]
/// enum ApiError {
///     Http(HttpError),
///     Refused(Rejected),
/// }
///
/// impl From<Rejected> for ApiError {
///     fn from(rejected: Rejected) -> Self {
///         ApiError::Refused(rejected)
///     }
/// }
///
/// #[circuit_breaker(failure_rate = 0.5, min_calls = 10, window = 20, open_for = "30s")]
/// async fn quote(symbol: &str) -> Result<u64, ApiError> {
///     if symbol.is_empty() { Err(ApiError::Http(HttpError::new(400))) } else { Ok(42) }
/// }
/// ```
///
/// # Errors
///
/// A compile error on the offending token for an unknown or duplicate key, a rate outside
/// 0.0..=1.0, a zero count, `open_for` or `slow_call`, an unknown `window_type`, a `backoff`
/// below 1.0, `max_open_for` below `open_for`, `min_calls` above a count `window`, a
/// `failure_if` that is
/// not a path, a function not returning `Result`, and an error type without
/// `From<resilience::Rejected>`.
#[doc(inline)]
pub use resilience_macros::circuit_breaker;

/// Drops a call that runs past a time limit: `#[timeout("3s")]` or
/// `#[timeout(duration = "3s", policy = "name")]`.
///
/// # Arguments
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `duration` (or the lone string) | duration | required unless `policy` gives it | the limit of one call |
/// | `policy` | string | none | a named policy whose `timeout` overrides the limit |
///
/// Past the limit the call's future is dropped and the function returns
/// `Err(E::from(Rejected::Timeout { after }))`, which `#[retry]` classifies as `Timeout`.
/// Stacked, `#[retry] #[timeout("1s")]` limits each try and `#[timeout("5s")] #[retry]`
/// limits the whole retry loop. Only an `async fn` can be timed out.
///
/// # Examples
///
/// ```
/// use resilience::{timeout, Rejected};
///
/// #[derive(Debug)]
/// struct Slow(Rejected);
///
/// impl From<Rejected> for Slow {
///     fn from(rejected: Rejected) -> Self {
///         Slow(rejected)
///     }
/// }
///
/// #[timeout("50ms")]
/// async fn lookup(id: u64) -> Result<u64, Slow> {
///     tokio::time::sleep(std::time::Duration::from_secs(1)).await;
///     Ok(id)
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// assert!(matches!(lookup(7).await, Err(Slow(Rejected::Timeout { .. }))));
/// # }
/// ```
///
/// # Errors
///
/// A compile error for a malformed or zero duration, an unknown key, a function that is not
/// `async`, a function not returning `Result`, and an error type without
/// `From<resilience::Rejected>`.
#[doc(inline)]
pub use resilience_macros::timeout;

/// Calls a function with the final error when everything inside it failed, and returns its
/// answer instead.
///
/// # Arguments
///
/// | argument | type | meaning |
/// |---|---|---|
/// | the lone path (`#[fallback(cached_user)]`) | path to `fn(E) -> Result<T, E>`, or to an `async fn` of that signature for an `async fn` | called with the error when the call fails; its result is the function's |
///
/// The fallback takes the function's error by value and returns the function's own
/// `Result<T, E>` (the shape of resilience4j's fallback method and Polly's
/// `FallbackAction`): it can answer (`Ok` with a cached value or a default) or fail in its
/// turn, with a better error or the same one. It is never called when the call succeeds.
///
/// Stacked, it applies in the written order, outermost first, as the other attributes do:
/// `#[fallback(f)] #[retry]` calls `f` once, with the last error, after every retry is spent;
/// above a `#[rate_limited]`, `#[circuit_breaker]`, `#[bulkhead]` or `#[timeout]` it also
/// answers their refusals (`E::from(Rejected)`). Each fallback logs one `info` event (target
/// `resilience::fallback`). Without the macro, `Retry::fallback` and
/// `pipeline::Pipeline::fallback` take a closure.
///
/// # Examples
///
/// ```
/// use resilience::{fallback, retry, HttpError};
///
/// fn cached_name(error: HttpError) -> Result<String, HttpError> {
///     match error.status() {
///         503 => Ok("(cached) Ada".to_string()),
///         _ => Err(error),
///     }
/// }
///
/// #[fallback(cached_name)]
/// #[retry(attempts = 3, base = "10ms")]
/// async fn user_name(id: u64) -> Result<String, HttpError> {
///     Err(HttpError::new(503))
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// assert_eq!(user_name(7).await, Ok("(cached) Ada".to_string()));
/// # }
/// ```
///
/// # Errors
///
/// A compile error for `#[fallback]` without a path, an argument that is not a path, a
/// function not returning `Result`, and a fallback of another signature (pointing at the
/// path, naming the error and return types it must take and return).
#[doc(inline)]
pub use resilience_macros::fallback;

/// Applies every section of a named policy, in the pipeline's fixed order:
/// cache -> bulkhead -> rate limit -> retry -> circuit breaker -> timeout -> call.
///
/// # Arguments
///
/// | key | meaning |
/// |---|---|
/// | `policy = "name"` | the YAML policy whose sections apply; each overrides the inline section field by field |
/// | `retry(...)` | inline retry values, with `#[retry]`'s keys |
/// | `rate_limit(...)` | inline rate limit, with `#[rate_limited]`'s keys |
/// | `bulkhead(...)` | inline bulkhead, with `#[bulkhead]`'s keys |
/// | `circuit_breaker(...)` | inline breaker, with `#[circuit_breaker]`'s keys |
/// | `timeout = "2s"` | inline time limit of each try |
/// | `cache(...)` | a cache, with `#[cached]`'s keys |
///
/// With a `policy`, every section but `cache` is in place even when the attribute leaves it
/// out: such a section does nothing (no retry, no limit, no breaker, no time limit) until the
/// YAML policy gives it, and a section the YAML adds while the service runs applies from the
/// next call. So the function's arguments must be `Clone` (a retry may come) and its error
/// type must implement `From<resilience::Rejected>`. `cache` puts `Hash`/`Clone` bounds on
/// the function, so it applies only when the attribute names it (`cache(ttl = "60s")`, or
/// `cache()` with the policy giving the values). Sections share state by policy name as the
/// single attributes do: one limiter, one bulkhead, one breaker per policy. On a blocking fn
/// there is no timeout layer unless one is given.
///
/// # Examples
///
/// ```
/// use resilience::{resilient, HttpError, Rejected};
///
/// #[derive(Debug)]
/// enum ApiError {
///     Http(HttpError),
///     Refused(Rejected),
/// }
///
/// impl From<Rejected> for ApiError {
///     fn from(rejected: Rejected) -> Self {
///         ApiError::Refused(rejected)
///     }
/// }
///
/// #[resilient(policy = "user-api", retry(attempts = 3), timeout = "2s")]
/// async fn fetch_user(id: u64) -> Result<String, ApiError> {
///     Ok(format!("user {id}"))
/// }
/// ```
///
/// # Errors
///
/// A compile error for `#[resilient]` with neither a policy nor a section, an unknown or
/// duplicate item, a section written as `key = value`, a `policy` inside a section, and every
/// error a section's own attribute reports for its keys.
#[doc(inline)]
pub use resilience_macros::resilient;

#[doc(hidden)]
pub use resilience_core::__private;

// The guides moved out of the README are doctested as it is: their examples compile and run.
#[cfg(doctest)]
#[doc = include_str!("../docs/batch.md")]
struct BatchGuide;

#[cfg(doctest)]
#[doc = include_str!("../docs/redis.md")]
struct RedisGuide;

#[cfg(doctest)]
#[doc = include_str!("../docs/performance.md")]
struct PerformanceGuide;
