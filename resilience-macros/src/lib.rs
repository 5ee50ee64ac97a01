//! Attribute macros of [`resilience`](https://docs.rs/resilience). Depend on `resilience` and
//! use them from there: the generated code calls `::resilience::__private`.

use proc_macro::TokenStream;

mod args;
mod diag;
mod expand;
mod item;
mod retry;

// The value rules and the duration syntax are the runtime's own files, compiled here too, so
// a value is refused with the same words at compile time and at YAML load time.
#[allow(dead_code, unreachable_pub)]
#[path = "../../resilience-core/src/duration.rs"]
mod duration;
#[allow(dead_code, unreachable_pub)]
#[path = "../../resilience-core/src/rules.rs"]
mod rules;

/// Retries a function that returns `Result<T, E>` when it fails with a transient error,
/// with exponential backoff and jitter. See the `resilience` crate docs for the full guide.
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
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    let original = proc_macro2::TokenStream::from(item.clone());
    diag::or_original(original, expand_retry(args.into(), item.into())).into()
}

fn expand_retry(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let mut errors = diag::Errors::default();
    let parsed = errors.take(syn::parse2::<args::Args>(args));
    let function = errors.take(syn::parse2::<syn::ItemFn>(item).map_err(|error| {
        syn::Error::new(
            error.span(),
            "#[retry] can only be applied to a function with a body",
        )
    }));
    let spec = parsed.map(|parsed| retry::RetryArgs::parse(parsed, &mut errors));
    let function = function.and_then(|f| item::FnItem::analyze(f, "retry", &mut errors));
    errors.finish()?;
    match (spec, function) {
        (Some(spec), Some(function)) => Ok(expand::retry(&spec, function)),
        _ => Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[retry] could not read its arguments",
        )),
    }
}
