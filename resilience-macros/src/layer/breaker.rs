//! `#[circuit_breaker]`: a `BreakerSite` and a call of `circuit_breaker_async` /
//! `circuit_breaker_blocking`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::{Cx, Part};
use crate::circuit_breaker::BreakerArgs;
use resilience_config::breaker::WindowType;

pub(super) fn expand(args: &BreakerArgs, cx: &Cx<'_>, site: &Ident, inner: TokenStream) -> Part {
    let (name, policy, spec) = (&cx.name, super::policy(args.policy.as_ref()), spec(args));
    let value = quote!(__resilience_rt::BreakerSite::new(#name, #policy, #spec));
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
        quote!(__resilience_rt::BreakerSpec::OFF)
    } else {
        quote!(__resilience_rt::BreakerSpec::DEFAULT)
    };
    super::set(&mut tokens, "failure_rate", args.failure_rate);
    super::set(&mut tokens, "min_calls", args.min_calls);
    super::set(&mut tokens, "window", args.window);
    super::set(&mut tokens, "open_for", args.open_for.map(super::duration));
    super::set(&mut tokens, "half_open_calls", args.half_open_calls);
    if args.window_type == Some(WindowType::Time) {
        tokens.extend(quote!(.window_type(__resilience_rt::WindowType::Time)));
    }
    super::set(&mut tokens, "backoff", args.backoff);
    super::set(
        &mut tokens,
        "max_open_for",
        args.max_open_for.map(super::some_duration),
    );
    super::set(
        &mut tokens,
        "slow_call",
        args.slow_call.map(super::some_duration),
    );
    super::set(&mut tokens, "slow_call_rate", args.slow_call_rate);
    tokens
}
