//! Attribute macros of [`resilience`](https://docs.rs/resilience). Depend on `resilience` and
//! use them from there: the generated code calls `::resilience::__private`.
//!
//! Each attribute is parsed into checked arguments (`retry.rs`, `rate_limited.rs`, ...), the
//! stack of attributes on one function is read once (`stack.rs`), and each layer expands to
//! its `static` site and one call (`layer/`, one module per kind), nested by `expand.rs`. All
//! logic lives in the runtime; the one thing generated beyond a call is the match on a
//! `#[retry]`'s first try (below).
//!
//! # Generated size
//!
//! Lines of the expanded function (signature and braces included): before code generation
//! was split per layer, after the split, and now that the body names the runtime through one
//! `use ::resilience::__private as __resilience_rt;` (every path written out was 25
//! characters, and rustc's printing wraps at 78 columns), the cache's key and codec probes
//! need no block of their own, and an outermost `#[retry]` adds no block:
//!
//! | function (`async fn f(x: u64) -> Result<u64, E>`) | before | split | now |
//! |---|---|---|---|
//! | `#[retry]` | 60 | 24 | 20 |
//! | `#[retry(attempts = 5, jitter = 0.2, on = [Timeout, 503])]` | 50 | 24 | 20 |
//! | `#[retry(policy = "p")]` | 40 | 16 | 15 |
//! | `#[retry]` on a blocking `fn` | 27 | 12 | 11 |
//! | `#[rate_limited(calls = 10, period = "1s")]` | 39 | 20 | 19 |
//! | `#[cached(ttl = "60s")]` (plus its `f_cache()` handle: 8, 7, 8) | 41 | 25 | 17 |
//! | `#[timeout("1s")]` | 24 | 18 | 16 |
//! | `#[circuit_breaker]` | 37 | 19 | 17 |
//! | `#[bulkhead(max_concurrent = 4)]` | 24 | 18 | 15 |
//! | `#[retry] #[rate_limited(..)] #[circuit_breaker] #[timeout("1s")]` | 101 | 55 | 48 |
//! | `#[resilient(policy = "p")]` (five layers) | 98 | 50 | 43 |
//!
//! A `#[retry]` with no `policy` and no `max_elapsed` on an `async fn` still awaits its first
//! try in the function's own future and matches on it (six of those lines): with that
//! match in the runtime, the try sat in a nested future, 88 bytes instead of 40 for a leaf
//! call, and the happy path went from 1.18x to about 1.6x a bare call (`benches/retry.rs`),
//! whether the runtime's future was an `async fn` or written out by hand. The four-attribute
//! stack stays above the 40 lines aimed at: its four `static` sites take 15 lines and the
//! three nested calls (each with its site, error hooks and refusal conversion) 24.
//!
//! To measure, put such functions in a file under `examples/` (the ui pass cases in
//! `tests/ui/pass` are good sources) and count the lines of each function in
//! `RUSTC_BOOTSTRAP=1 cargo rustc --example NAME -- -Zunpretty=expanded`. The count is
//! rustc's pretty-printing, so long paths and names add lines; the site name is the module
//! path, here a short one.

use proc_macro::TokenStream;

mod args;
mod bulkhead;
mod cached;
mod circuit_breaker;
mod diag;
mod expand;
mod fallback;
mod hedge;
mod item;
mod layer;
mod rate_limited;
mod resilient;
mod retry;
mod stack;
mod timeout;

/// Caches a function's results by its arguments, with TTL and single-flight loads. Use it as
/// `resilience::cached`, whose documentation has the arguments, examples and errors.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(stack::Kind::Cached, args.into(), item.into()).into()
}

/// Retries a function that returns `Result<T, E>` on transient failures. Use it as
/// `resilience::retry`, whose documentation has the arguments, examples and errors.
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(stack::Kind::Retry, args.into(), item.into()).into()
}

/// Limits the rate of calls to a function (GCRA), each call taking one permit or its `cost`
/// (an expression over the arguments). Use it as `resilience::rate_limited`, whose
/// documentation has the arguments, examples and errors.
#[proc_macro_attribute]
pub fn rate_limited(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(stack::Kind::RateLimited, args.into(), item.into()).into()
}

/// Caps the calls of a function in flight at once. Use it as `resilience::bulkhead`, whose
/// documentation has the arguments, examples and errors.
#[proc_macro_attribute]
pub fn bulkhead(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(stack::Kind::Bulkhead, args.into(), item.into()).into()
}

/// Stops calling a failing dependency for a while (a count-based circuit breaker). Use it as
/// `resilience::circuit_breaker`, whose documentation has the arguments, examples and errors.
#[proc_macro_attribute]
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(stack::Kind::CircuitBreaker, args.into(), item.into()).into()
}

/// Drops a call that runs past a time limit. Use it as `resilience::timeout`, whose
/// documentation has the arguments, examples and errors.
#[proc_macro_attribute]
pub fn timeout(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(stack::Kind::Timeout, args.into(), item.into()).into()
}

/// Sends an idempotent call again when it has not answered in time; the first `Ok` wins. Use
/// it as `resilience::hedge`, whose documentation has the arguments, examples and errors.
#[proc_macro_attribute]
pub fn hedge(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(stack::Kind::Hedge, args.into(), item.into()).into()
}

/// Calls a function with the final error when everything inside it failed, and returns its
/// answer. Use it as `resilience::fallback`, whose documentation has the arguments, examples
/// and errors.
#[proc_macro_attribute]
pub fn fallback(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(stack::Kind::Fallback, args.into(), item.into()).into()
}

/// Applies every section of a named policy in the pipeline's fixed order. Use it as
/// `resilience::resilient`, whose documentation has the arguments, examples and errors.
#[proc_macro_attribute]
pub fn resilient(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(stack::Kind::Resilient, args.into(), item.into()).into()
}
