//! `#[bulkhead]`: a `BulkheadSite` and a call of `bulkhead_async` / `bulkhead_blocking`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::{Cx, Part};
use crate::bulkhead::BulkheadArgs;

pub(super) fn expand(args: &BulkheadArgs, cx: &Cx<'_>, site: &Ident, inner: TokenStream) -> Part {
    let (name, policy, spec) = (&cx.name, super::policy(args.policy.as_ref()), spec(args));
    let value = quote!(__resilience_rt::BulkheadSite::new(#name, #policy, #spec));
    let (entry, reject, once) = (cx.entry("bulkhead"), &cx.reject, cx.once(&inner));
    Part {
        site: super::site(site, "BulkheadSite", value),
        call: quote!(#entry(&#site, #reject, #once)),
        cache: None,
        ready: false,
    }
}

/// The `BulkheadSpec` constant. Without `max_concurrent` (a `policy` gives it) the inline
/// value is unbounded until the policy says otherwise.
fn spec(args: &BulkheadArgs) -> TokenStream {
    let mut tokens = match args.max_concurrent {
        Some(max_concurrent) => quote!(__resilience_rt::BulkheadSpec::new(#max_concurrent)),
        None => quote!(__resilience_rt::UNBOUNDED_BULKHEAD),
    };
    super::set(&mut tokens, "max_wait", args.max_wait.map(super::duration));
    tokens
}
