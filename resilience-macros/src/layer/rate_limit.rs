//! `#[rate_limited]`: a `RateLimitSite` and a call of `rate_limited_async` /
//! `rate_limited_blocking`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;
use syn::spanned::Spanned;

use super::{Cx, Part};
use resilience_config::rate_limit::LimitMode;

use crate::rate_limited::{Cost, RateLimitArgs};

pub(super) fn expand(args: &RateLimitArgs, cx: &Cx<'_>, site: &Ident, inner: TokenStream) -> Part {
    let (name, policy, spec) = (&cx.name, super::policy(args.policy.as_ref()), spec(args));
    let value = quote!(__resilience_rt::RateLimitSite::new(#name, #policy, #spec));
    // A site naming a policy may have its schedule in Redis: its key also gets the hash
    // every instance agrees on.
    let hashed = match &args.policy {
        Some(_) => quote!(shared),
        None => quote!(local),
    };
    let key = match &args.key {
        Some(key) => quote! {
            __resilience_rt::Some(__resilience_rt::RateKey::#hashed(&(#key)))
        },
        None => quote!(__resilience_rt::None),
    };
    let cost = match &args.cost {
        Some(Cost::Literal(cost)) => quote!(__resilience_rt::Some(#cost)),
        // On the expression's span: a value of a type that is not an unsigned integer is one
        // error, there, naming `cost`.
        Some(Cost::Expr(cost)) => quote::quote_spanned! {cost.span()=>
            __resilience_rt::cost(&(#cost))
        },
        None => quote!(__resilience_rt::None),
    };
    let (entry, hooks, reject, once) = (
        cx.entry("rate_limited"),
        cx.hooks(),
        &cx.reject,
        cx.once(&inner),
    );
    Part {
        site: super::site(site, "RateLimitSite", value),
        call: quote!(#entry(&#site, #key, #cost, #hooks, #reject, #once)),
        cache: None,
        ready: false,
    }
}

/// The `RateLimitSpec` constant. Without `calls` and `period` (a `policy` gives them) the
/// inline value is `RateLimitSpec::UNLIMITED` until the policy says otherwise.
fn spec(args: &RateLimitArgs) -> TokenStream {
    let mut tokens = match (args.calls, args.period) {
        (Some(calls), Some(period)) => {
            let period = super::duration(period);
            quote!(__resilience_rt::RateLimitSpec::new(#calls, #period))
        }
        _ => quote!(__resilience_rt::RateLimitSpec::UNLIMITED),
    };
    super::set(&mut tokens, "burst", args.burst);
    if args.mode == Some(LimitMode::Reject) {
        tokens.extend(quote!(.mode(__resilience_rt::LimitMode::Reject)));
    }
    super::set(
        &mut tokens,
        "max_wait",
        args.max_wait.map(super::some_duration),
    );
    tokens
}
