//! Attribute macros of [`resilience`](https://docs.rs/resilience). Depend on `resilience` and
//! use them from there: the generated code calls `::resilience::__private`.

use proc_macro::TokenStream;

mod args;
mod bulkhead;
mod cached;
mod circuit_breaker;
mod diag;
mod expand;
mod item;
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

/// Applies every section of a named policy in the pipeline's fixed order. Use it as
/// `resilience::resilient`, whose documentation has the arguments, examples and errors.
#[proc_macro_attribute]
pub fn resilient(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(stack::Kind::Resilient, args.into(), item.into()).into()
}
