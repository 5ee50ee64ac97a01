//! `#[bulkhead]`: a `BulkheadSite` and a call of `bulkhead_async` / `bulkhead_blocking`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::{Cx, Part};
use crate::bulkhead::BulkheadArgs;

pub(super) fn expand(args: &BulkheadArgs, cx: &Cx<'_>, site: &Ident, inner: TokenStream) -> Part {
    let (name, policy, spec) = (&cx.name, super::policy(args.policy.as_ref()), spec(args));
    let value = quote!(::resilience::__private::BulkheadSite::new(#name, #policy, #spec));
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
        Some(max_concurrent) => quote!(::resilience::__private::BulkheadSpec::new(#max_concurrent)),
        None => quote!(::resilience::__private::UNBOUNDED_BULKHEAD),
    };
    if let Some(max_wait) = args.max_wait {
        let max_wait = super::duration(max_wait);
        tokens.extend(quote!(.max_wait(#max_wait)));
    }
    tokens
}
