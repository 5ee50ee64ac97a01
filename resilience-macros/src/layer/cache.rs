//! `#[cached]`: a `CacheSite` and a call of `cached_async_in` (or `cached_async_refreshing_in`,
//! or `cached_blocking_in`), keyed by the arguments or the `key` expression, with the mode the
//! return type stores in.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

use super::{Cx, Part};
use crate::cached::CachedArgs;
use crate::item::Returns;

pub(super) fn expand(
    args: &CachedArgs,
    cx: &Cx<'_>,
    site: &Ident,
    inner: TokenStream,
    outermost: bool,
) -> Part {
    let (name, policy, spec) = (&cx.name, super::policy(args.policy.as_ref()), spec(args));
    let function = cx.sig.ident.to_string();
    let id = quote! {
        ::core::concat!(::core::module_path!(), "::", #function, "#", ::core::line!(), ":", ::core::column!())
    };
    let mut value = quote!(__resilience_rt::CacheSite::new(#id, #name, #policy, #spec));
    let (output, probed, key) = (cx.output, mode(cx, args), key(cx, args));
    if args.max_bytes.is_some() {
        // On the return type's span: a stored value that is not `Weigh` is reported there.
        let mode = Ident::new(mode_name(cx, args), output.span());
        value.extend(quote_spanned! {output.span()=>
            .weighed(__resilience_rt::weigh_any::<<#output as __resilience_rt::Cacheable<__resilience_rt::#mode>>::Stored>)
        });
    }
    let once = cx.once(&inner);
    let background = args
        .stale_key
        .filter(|_| cx.is_async && crate::item::owns_its_arguments(cx.sig));
    let call = if !cx.is_async {
        quote_spanned! {output.span()=>
            __resilience_rt::cached_blocking_in(#probed, &#site, #key, #once)
        }
    } else if let Some(span) = background {
        let refreshing = quote_spanned! {span=>
            __resilience_rt::cached_async_refreshing_in
        };
        quote!(#refreshing(#probed, &#site, #key, #once))
    } else {
        // The codec probe is given the key's and the stored value's types through its
        // closure's arguments: a Redis backend is used only for serde keys and values. On the
        // return type's span: a value (or, with `negative_ttl`, an error) that is not `Clone`
        // is reported there, once.
        let (key_ref, stored) = (
            format_ident!("__resilience_key", span = Span::mixed_site()),
            format_ident!("__resilience_stored", span = Span::mixed_site()),
        );
        let call = quote_spanned! {output.span()=>
            __resilience_rt::cached_async_in(#probed, &#site, #key, #once,
                |#key_ref, #stored| __resilience_rt::CodecProbe::of(#key_ref, #stored).codec())
        };
        if outermost {
            call
        } else {
            // Under another layer, awaited in a block of its own on the return type's span:
            // the outer layer then sees a plain `async` block, and a bound of the cache is
            // not reported again at its attribute.
            quote_spanned! {output.span()=> async move { #call.await }}
        }
    };
    Part {
        site: super::site(site, "CacheSite", value.clone()),
        call,
        cache: Some(value),
        ready: false,
    }
}

/// The `CacheSpec` constant. Without `ttl` (a `policy` gives it) the inline ttl is
/// `NO_TTL`: the site stores nothing until the policy says how long.
fn spec(args: &CachedArgs) -> TokenStream {
    let ttl = match args.ttl {
        Some(ttl) => super::duration(ttl),
        None => quote!(__resilience_rt::NO_TTL),
    };
    let mut tokens = quote!(__resilience_rt::CacheSpec::new(#ttl));
    super::set(&mut tokens, "max_entries", args.max_entries);
    let max_bytes = args
        .max_bytes
        .map(|bytes| quote!(__resilience_rt::Some(#bytes)));
    super::set(&mut tokens, "max_bytes", max_bytes);
    super::set(&mut tokens, "ttl_jitter", args.ttl_jitter);
    let negative_ttl = args.negative_ttl.map(super::some_duration);
    super::set(&mut tokens, "negative_ttl", negative_ttl);
    let window = args.stale_while_revalidate.map(super::some_duration);
    super::set(&mut tokens, "stale_while_revalidate", window);
    super::set(&mut tokens, "early_refresh", args.early_refresh);
    tokens
}

/// What the return type stores, and whether failures are cached: a mode type of the
/// runtime, as a value on the return type's span (a bound the mode puts on the type, `Clone`,
/// is reported there). A `Result` without `negative_ttl` is probed, so that an `E: Clone` is
/// handed to the waiters of a failed load (`OkCloneErr`) and any other `E` is not (`OkOnly`).
fn mode(cx: &Cx<'_>, args: &CachedArgs) -> TokenStream {
    let (span, output) = (cx.output.span(), cx.output);
    if let (Returns::Result, None) = (Returns::of(output), args.negative_ttl) {
        return quote_spanned!(span=> __resilience_rt::ModeProbe::<#output>::new().mode());
    }
    let mode = Ident::new(mode_name(cx, args), span);
    quote_spanned!(span=> ::core::marker::PhantomData::<__resilience_rt::#mode>)
}

/// The mode type's name; a `Result` without `negative_ttl` is `OkOnly`, whose stored type
/// (`T`) the probed `OkCloneErr` shares.
fn mode_name(cx: &Cx<'_>, args: &CachedArgs) -> &'static str {
    match (Returns::of(cx.output), args.negative_ttl.is_some()) {
        (Returns::Result, false) => "OkOnly",
        (Returns::Result, true) => "OkAndErr",
        (Returns::Option, false) => "SomeOnly",
        (Returns::Option, true) => "SomeAndNone",
        (Returns::Other, _) => "AsIs",
    }
}

/// The cache key: the `key` expression, or every argument but `self`, owned, in a tuple.
/// Each argument goes through a `KeyProbe` on its own span, so an argument that cannot be
/// part of the key is one error, on that argument.
fn key(cx: &Cx<'_>, args: &CachedArgs) -> TokenStream {
    if let Some(key) = &args.key {
        return quote!(__resilience_rt::key_value(#key));
    }
    let parts = cx.sig.inputs.iter().filter_map(|input| match input {
        syn::FnArg::Typed(typed) => match (&*typed.pat, &*typed.ty) {
            (syn::Pat::Ident(ident), syn::Type::Reference(_)) => {
                let name = &ident.ident;
                Some(quote_spanned! {name.span()=>
                    __resilience_rt::KeyProbe::of(#name).key()
                })
            }
            (syn::Pat::Ident(ident), _) => {
                let name = &ident.ident;
                Some(quote_spanned! {name.span()=>
                    __resilience_rt::KeyProbe::of(&#name).key()
                })
            }
            _ => None,
        },
        syn::FnArg::Receiver(_) => None,
    });
    quote!((#(#parts,)*))
}
