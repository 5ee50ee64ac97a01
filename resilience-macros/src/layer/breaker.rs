//! `#[circuit_breaker]`: a `BreakerSite` and a call of `circuit_breaker_async` /
//! `circuit_breaker_blocking`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::{Cx, Part};
use crate::circuit_breaker::BreakerArgs;

pub(super) fn expand(args: &BreakerArgs, cx: &Cx<'_>, site: &Ident, inner: TokenStream) -> Part {
    let (name, policy, spec) = (&cx.name, super::policy(args.policy.as_ref()), spec(args));
    let value = quote!(::resilience::__private::BreakerSite::new(#name, #policy, #spec));
    let failure_if = super::predicate(args.failure_if.as_ref());
    let (entry, hooks, reject, once) = (
        cx.entry("circuit_breaker"),
        cx.hooks(),
        &cx.reject,
        cx.once(&inner),
    );
    Part {
        site: super::site(site, "BreakerSite", value),
        call: quote!(#entry(&#site, #hooks, #failure_if, #reject, #once)),
        cache: None,
        ready: false,
    }
}

/// The `BreakerSpec` constant: the runtime defaults with each given key set.
fn spec(args: &BreakerArgs) -> TokenStream {
    let mut tokens = if args.off {
        quote!(::resilience::__private::BreakerSpec::OFF)
    } else {
        quote!(::resilience::__private::BreakerSpec::DEFAULT)
    };
    if let Some(rate) = args.failure_rate {
        tokens.extend(quote!(.failure_rate(#rate)));
    }
    if let Some(min_calls) = args.min_calls {
        tokens.extend(quote!(.min_calls(#min_calls)));
    }
    if let Some(window) = args.window {
        tokens.extend(quote!(.window(#window)));
    }
    if let Some(open_for) = args.open_for {
        let open_for = super::duration(open_for);
        tokens.extend(quote!(.open_for(#open_for)));
    }
    if let Some(trials) = args.half_open_calls {
        tokens.extend(quote!(.half_open_calls(#trials)));
    }
    tokens
}
