//! `#[hedge]`: a `HedgeSite` and a call of `hedge_async`, which sends the attempts.

use proc_macro2::TokenStream;
use quote::quote;
use resilience_config::hedge::HedgeAfter;
use syn::Ident;

use super::{Cx, Part};
use crate::hedge::HedgeArgs;

pub(super) fn expand(args: &HedgeArgs, cx: &Cx<'_>, site: &Ident, inner: TokenStream) -> Part {
    let (name, policy) = (&cx.name, super::policy(args.policy.as_ref()));
    let mut spec = quote!(__resilience_rt::HedgeSpec::DEFAULT);
    if let Some(after) = args.after {
        let after = match after {
            HedgeAfter::Delay(delay) => {
                let delay = super::duration(delay);
                quote!(__resilience_rt::HedgeAfter::Delay(#delay))
            }
            HedgeAfter::Percentile(p) => quote!(__resilience_rt::HedgeAfter::Percentile(#p)),
        };
        spec.extend(quote!(.after(#after)));
    }
    super::set(&mut spec, "max", args.max);
    let budget = args
        .budget
        .as_ref()
        .map(|budget| quote!(.with_budget(#budget)));
    let value = quote!(__resilience_rt::HedgeSite::new(#name, #policy, #spec)#budget);
    // Each attempt gets its own bindings of the arguments, as each try of a retry does.
    let rebinds = super::retry::rebinds(cx.reuse);
    Part {
        site: super::site(site, "HedgeSite", value),
        call: quote!(__resilience_rt::hedge_async(&#site, move || { #rebinds #inner })),
        cache: None,
        ready: false,
    }
}
