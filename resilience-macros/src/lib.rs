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

/// Retries a function that returns `Result<T, E>` on transient failures. Use it as
/// `resilience::retry`, whose documentation has the arguments, examples and errors.
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
