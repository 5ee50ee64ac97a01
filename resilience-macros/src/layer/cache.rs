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
    let (output, (mode, probed), key) = (cx.output, mode(cx, args), key(cx, args));
    let mut value = quote!(::resilience::__private::CacheSite::new(#id, #name, #policy, #spec));
    if args.max_bytes.is_some() {
        // On the return type's span: a stored value that is not `Weigh` is reported there.
        value.extend(quote_spanned! {output.span()=>
            .weighed(::resilience::__private::weigh_any::<<#output as ::resilience::__private::Cacheable<#mode>>::Stored>)
        });
    }
    let once = cx.once(&inner);
    let background = args
        .stale_key
        .filter(|_| cx.is_async && crate::item::owns_its_arguments(cx.sig));
    let call = if !cx.is_async {
        quote_spanned! {output.span()=>
            ::resilience::__private::cached_blocking_in(#probed, &#site, #key, #once)
        }
    } else if let Some(span) = background {
        let refreshing = quote_spanned! {span=>
            ::resilience::__private::cached_async_refreshing_in
        };
        quote!(#refreshing(#probed, &#site, #key, #once))
    } else {
        // The key is bound first so the codec probe can see its type: a Redis backend is
        // used only for serde keys and values. On the return type's span: a value (or, with
        // `negative_ttl`, an error) that is not `Clone` is reported there, once.
        let bound = format_ident!("__resilience_key", span = Span::mixed_site());
        let stored = quote_spanned! {output.span()=>
            <#output as ::resilience::__private::Cacheable<#mode>>::Stored
        };
        let call = quote_spanned! {output.span()=> {
            let #bound = #key;
            ::resilience::__private::cached_async_in(
                #probed,
                &#site,
                ::resilience::__private::CodecProbe::<_, #stored>::of(&#bound).codec(),
                #bound,
                #once,
            )
        }};
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
        None => quote!(::resilience::__private::NO_TTL),
    };
    let mut tokens = quote!(::resilience::__private::CacheSpec::new(#ttl));
    super::set(&mut tokens, "max_entries", args.max_entries);
    let max_bytes = args
        .max_bytes
        .map(|bytes| quote!(::resilience::__private::Some(#bytes)));
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
/// runtime, on the return type's span (a bound the mode puts on the type, `Clone`, is
/// reported there), and the mode as the call's value. A `Result` without `negative_ttl` is
/// probed, so that an `E: Clone` is handed to the waiters of a failed load (`OkCloneErr`)
/// and any other `E` is not (`OkOnly`); both store `T`, so the type stays `OkOnly`.
fn mode(cx: &Cx<'_>, args: &CachedArgs) -> (TokenStream, TokenStream) {
    let negative = args.negative_ttl.is_some();
    let returns = Returns::of(cx.output);
    let probe = matches!((returns, negative), (Returns::Result, false));
    let mode = match (returns, negative) {
        (Returns::Result, false) => "OkOnly",
        (Returns::Result, true) => "OkAndErr",
        (Returns::Option, false) => "SomeOnly",
        (Returns::Option, true) => "SomeAndNone",
        (Returns::Other, _) => "AsIs",
    };
    let (span, output) = (cx.output.span(), cx.output);
    let mode = Ident::new(mode, span);
    let ty = quote_spanned!(span=> ::resilience::__private::#mode);
    let value = if probe {
        quote_spanned!(span=> ::resilience::__private::ModeProbe::<#output>::new().mode())
    } else {
        quote_spanned!(span=> ::core::marker::PhantomData::<#ty>)
    };
    (ty, value)
}

/// The cache key: the `key` expression, or every argument but `self`, owned, in a tuple.
/// Each argument goes through a `KeyProbe` on its own span, so an argument that cannot be
/// part of the key is one error, on that argument.
fn key(cx: &Cx<'_>, args: &CachedArgs) -> TokenStream {
    if let Some(key) = &args.key {
        return quote!(::resilience::__private::key_value(#key));
    }
    let parts = cx.sig.inputs.iter().filter_map(|input| match input {
        syn::FnArg::Typed(typed) => match (&*typed.pat, &*typed.ty) {
            (syn::Pat::Ident(ident), syn::Type::Reference(_)) => {
                let name = &ident.ident;
                Some(quote_spanned! {name.span()=>
                    (&&::resilience::__private::KeyProbe::of(#name)).key()
                })
            }
            (syn::Pat::Ident(ident), _) => {
                let name = &ident.ident;
                Some(quote_spanned! {name.span()=>
                    (&&::resilience::__private::KeyProbe::of(&#name)).key()
                })
            }
            _ => None,
        },
        syn::FnArg::Receiver(_) => None,
    });
    quote! {{
        #[allow(unused_imports)]
        use ::resilience::__private::key_probe::*;
        (#(#parts,)*)
    }}
}
