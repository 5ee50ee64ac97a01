//! `#[retry]`: a `RetrySite` and a call of `retry_async` / `retry_blocking`, which own the
//! first try and the loop after it.

use proc_macro2::Span;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;
use syn::spanned::Spanned;

use super::{Cx, Part};
use crate::item::Reuse;
use resilience_config::retry::{Backoff, Jitter};

use crate::retry::{OnItem, RetryArgs};

pub(super) fn expand(
    args: &RetryArgs,
    cx: &Cx<'_>,
    site: &Ident,
    inner: TokenStream,
    outermost: bool,
) -> Part {
    let (name, policy, spec) = (&cx.name, super::policy(args.policy.as_ref()), spec(args));
    // Known now: a site of an `async fn` with no policy and no `max_elapsed` keeps nothing
    // but the try in its call's future (see `InlineRetrySite::after_first_failure`); a
    // budget counts every call, and `retry_if_ok` looks at every `Ok` value, so their sites
    // are `RetrySite`s.
    let inline = cx.is_async
        && args.policy.is_none()
        && args.max_elapsed.is_none()
        && args.budget.is_none()
        && args.retry_if_ok.is_none();
    let (ty, value) = match inline {
        true => (
            "InlineRetrySite",
            quote!(__resilience_rt::InlineRetrySite::new(#name, #spec)),
        ),
        false => {
            let budget = args
                .budget
                .as_ref()
                .map(|budget| quote!(.with_budget(#budget)));
            (
                "RetrySite",
                quote!(__resilience_rt::RetrySite::new(#name, #policy, #spec)#budget),
            )
        }
    };
    let hooks = match &args.retry_if {
        Some(path) => {
            let (hooks, retry_if) = (cx.hooks(), super::predicate(Some(path)));
            quote!(#hooks.with_retry_if(#retry_if))
        }
        None => cx.hooks(),
    };
    let rebinds = rebinds(cx.reuse);
    let mut ready = false;
    let call = if inline {
        // The first try is awaited in the caller's own future and matched on, so the happy
        // path adds no future around the try; only a failure builds the retry loop (boxed).
        // In the runtime instead, the try sits in a nested future: 88 bytes instead of 40
        // and 3.1 ns instead of 2.4 on the happy path (`benches/retry.rs`), as an `async
        // fn` or written out. Outermost, these statements end the fn's own body.
        // `started` is `None` (one relaxed load) unless per-call metrics are on.
        let (op, error, ok, started) = (
            format_ident!("__resilience_op", span = Span::mixed_site()),
            format_ident!("__resilience_error", span = Span::mixed_site()),
            format_ident!("__resilience_ok", span = Span::mixed_site()),
            format_ident!("__resilience_started", span = Span::mixed_site()),
        );
        let statements = quote! {
            let mut #op = move || { #rebinds #inner };
            let #started = #site.start();
            match #op().await {
                ::core::result::Result::Err(#error) =>
                    #site.after_first_failure(#hooks, #op, #error, #started).await,
                #ok => {
                    #site.first_try_ok(#started);
                    #ok
                }
            }
        };
        ready = outermost;
        match outermost {
            true => statements,
            false => quote!(async move { #statements }),
        }
    } else if let Some(path) = &args.retry_if_ok {
        let retry_if_ok = ok_predicate(path, cx.output);
        match cx.is_async {
            true => quote! {
                #site.retry_async_if_ok(move || #hooks, #retry_if_ok, move || { #rebinds #inner })
            },
            false => {
                let output = cx.output;
                quote! {
                    __resilience_rt::retry_blocking_if_ok(&#site, #hooks, __resilience_rt::Some(#retry_if_ok), move || -> #output {
                        #rebinds
                        #inner
                    })
                }
            }
        }
    } else if cx.is_async {
        // A closure: the runtime makes the hooks only after a failure.
        quote! {
            #site.retry_async(move || #hooks, move || { #rebinds #inner })
        }
    } else {
        let output = cx.output;
        quote! {
            __resilience_rt::retry_blocking(&#site, #hooks, move || -> #output {
                #rebinds
                #inner
            })
        }
    };
    Part {
        site: super::site(site, ty, value),
        call,
        cache: None,
        ready,
    }
}

/// `retry_if_ok = path` as a `fn(&T) -> bool` of the return type's `T`, typed on the path's
/// span: a function of another signature is one error there, naming the type it must take.
fn ok_predicate(path: &syn::Path, output: &syn::Type) -> TokenStream {
    let binding = format_ident!("__resilience_retry_if_ok", span = Span::mixed_site());
    let fn_type =
        quote::quote_spanned!(path.span()=> fn(&<#output as __resilience_rt::OkOf>::Ok) -> bool);
    quote! {{
        let #binding: #fn_type = #path;
        #binding
    }}
}

/// The statement that gives each try its own bindings of the arguments: one `let` of a tuple.
/// No `allow`: a binding the body does not use (or a `mut` it does not need) is warned about
/// on the parameter, as it is without the attribute.
pub(super) fn rebinds(reuse: &[Reuse]) -> TokenStream {
    if reuse.is_empty() {
        return TokenStream::new();
    }
    let (names, values): (Vec<_>, Vec<_>) = reuse.iter().map(Reuse::rebind).unzip();
    let (names, values) = match (names.as_slice(), values.as_slice()) {
        ([name], [value]) => (name.clone(), value.clone()),
        _ => (quote!((#(#names),*)), quote!((#(#values),*))),
    };
    quote!(let #names = #values;)
}

/// The `RetrySpec` constant: the runtime defaults with each given key set.
fn spec(args: &RetryArgs) -> TokenStream {
    let mut tokens = if args.off {
        quote!(__resilience_rt::RetrySpec::OFF)
    } else {
        quote!(__resilience_rt::RetrySpec::DEFAULT)
    };
    super::set(&mut tokens, "attempts", args.attempts);
    if let Some(backoff) = args.backoff {
        let variant = match backoff {
            Backoff::Exponential => quote!(Exponential),
            Backoff::Linear => quote!(Linear),
            Backoff::Constant => quote!(Constant),
        };
        tokens.extend(quote!(.backoff(__resilience_rt::Backoff::#variant)));
    }
    super::set(&mut tokens, "base", args.base.map(super::duration));
    super::set(&mut tokens, "factor", args.factor);
    super::set(
        &mut tokens,
        "max_delay",
        args.max_delay.map(super::duration),
    );
    super::set(
        &mut tokens,
        "max_elapsed",
        args.max_elapsed.map(super::some_duration),
    );
    if let Some(jitter) = &args.jitter {
        let jitter = match jitter {
            Jitter::None => quote!(None),
            Jitter::Fraction(fraction) => quote!(Fraction(#fraction)),
            Jitter::Full => quote!(Full),
            Jitter::Equal => quote!(Equal),
            Jitter::Decorrelated => quote!(Decorrelated),
        };
        tokens.extend(quote!(.jitter(__resilience_rt::Jitter::#jitter)));
    }
    if let Some(on) = &args.on {
        let mut set = quote!(__resilience_rt::RetryOn::NONE);
        for item in on {
            set.extend(match item {
                OnItem::Timeout => quote!(.timeout()),
                OnItem::Connect => quote!(.connect()),
                OnItem::Body => quote!(.body()),
                OnItem::Transient => quote!(.transient()),
                OnItem::Status(code) => quote!(.status(#code)),
                OnItem::Class(hundreds) => quote!(.class(#hundreds)),
            });
        }
        tokens.extend(quote!(.on(#set)));
    }
    super::set(&mut tokens, "retry_after", args.retry_after);
    tokens
}
