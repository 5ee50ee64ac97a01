//! `#[timeout]`: a `TimeoutSite` and a call of `timeout_async` (only an `async fn` can be
//! timed out: a blocking one is refused before expansion).

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::{Cx, Part};
use crate::timeout::TimeoutArgs;

pub(super) fn expand(args: &TimeoutArgs, cx: &Cx<'_>, site: &Ident, inner: TokenStream) -> Part {
    let (name, policy) = (&cx.name, super::policy(args.policy.as_ref()));
    let limit = match args.duration {
        Some(limit) => super::duration(limit),
        None => quote!(__resilience_rt::NO_TIME_LIMIT),
    };
    let value = quote!(__resilience_rt::TimeoutSite::new(#name, #policy, #limit));
    let (entry, reject, once) = (cx.entry("timeout"), &cx.reject, cx.once(&inner));
    Part {
        site: super::site(site, "TimeoutSite", value),
        call: quote!(#entry(&#site, #reject, #once)),
        cache: None,
        ready: false,
    }
}
