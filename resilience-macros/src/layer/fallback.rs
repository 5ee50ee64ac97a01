//! `#[fallback]`: a `FallbackSite` and a call of `fallback_async` / `fallback_blocking`, which
//! call the path with the error when the inner layers fail.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::{Cx, Part};
use crate::fallback::FallbackArgs;

pub(super) fn expand(args: &FallbackArgs, cx: &Cx<'_>, site: &Ident, inner: TokenStream) -> Part {
    let name = &cx.name;
    let value = quote!(__resilience_rt::FallbackSite::new(#name));
    // The path as it was written: a function of the wrong signature is an error on it.
    // The probe first fixes the function's `T` and `E`, so that a function of the wrong
    // signature is one error on the path, naming both.
    let (entry, probe) = (cx.entry("fallback"), cx.probe());
    let (path, once) = (&args.path, cx.once(&inner));
    Part {
        site: super::site(site, "FallbackSite", value),
        call: quote!(#entry(#probe, &#site, #path, #once)),
        cache: None,
        ready: false,
    }
}
