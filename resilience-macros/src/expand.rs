//! Checked arguments + the function -> tokens. Never fails.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;

use crate::bulkhead::BulkheadArgs;
use crate::cached::CachedArgs;
use crate::circuit_breaker::BreakerArgs;
use crate::item::FnItem;
use crate::rate_limited::{Cost, RateLimitArgs};
use crate::retry::{JitterArg, OnItem, RetryArgs};
use crate::stack::Layer;

fn duration(value: Duration) -> TokenStream {
    let secs = value.as_secs();
    let nanos = value.subsec_nanos();
    quote!(::resilience::__private::Duration::new(#secs, #nanos))
}

/// The `RetrySpec` constant: the runtime defaults with each given key set.
fn retry_spec(args: &RetryArgs) -> TokenStream {
    let mut tokens = if args.off {
        quote!(::resilience::__private::RetrySpec::OFF)
    } else {
        quote!(::resilience::__private::RetrySpec::DEFAULT)
    };
    if let Some(attempts) = args.attempts {
        tokens.extend(quote!(.attempts(#attempts)));
    }
    if let Some(backoff) = args.backoff {
        let variant = match backoff {
            "linear" => quote!(Linear),
            "constant" => quote!(Constant),
            _ => quote!(Exponential),
        };
        tokens.extend(quote!(.backoff(::resilience::__private::Backoff::#variant)));
    }
    if let Some(base) = args.base {
        let base = duration(base);
        tokens.extend(quote!(.base(#base)));
    }
    if let Some(factor) = args.factor {
        tokens.extend(quote!(.factor(#factor)));
    }
    if let Some(max_delay) = args.max_delay {
        let max_delay = duration(max_delay);
        tokens.extend(quote!(.max_delay(#max_delay)));
    }
    if let Some(max_elapsed) = args.max_elapsed {
        let max_elapsed = duration(max_elapsed);
        tokens.extend(quote!(.max_elapsed(::core::option::Option::Some(#max_elapsed))));
    }
    if let Some(jitter) = &args.jitter {
        let jitter = match jitter {
            JitterArg::Fraction(fraction) => quote!(Fraction(#fraction)),
            JitterArg::Named("full") => quote!(Full),
            JitterArg::Named("equal") => quote!(Equal),
            JitterArg::Named(_) => quote!(Decorrelated),
        };
        tokens.extend(quote!(.jitter(::resilience::__private::Jitter::#jitter)));
    }
    if let Some(on) = &args.on {
        let mut set = quote!(::resilience::__private::RetryOn::NONE);
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
    if let Some(retry_after) = args.retry_after {
        tokens.extend(quote!(.retry_after(#retry_after)));
    }
    tokens
}

/// The `RateLimitSpec` constant. Without `calls` (a `policy` gives it) the inline value is
/// `RateLimitSpec::UNLIMITED` until the policy says otherwise.
fn rate_limit_spec(args: &RateLimitArgs) -> TokenStream {
    let mut tokens = match args.calls {
        Some(calls) => {
            let period = duration(args.period.unwrap_or(Duration::from_secs(1)));
            quote!(::resilience::__private::RateLimitSpec::new(#calls, #period))
        }
        None => quote!(::resilience::__private::RateLimitSpec::UNLIMITED),
    };
    if let Some(burst) = args.burst {
        tokens.extend(quote!(.burst(#burst)));
    }
    if args.reject == Some(true) {
        tokens.extend(quote!(.mode(::resilience::__private::LimitMode::Reject)));
    }
    if let Some(max_wait) = args.max_wait {
        let max_wait = duration(max_wait);
        tokens.extend(quote!(.max_wait(::core::option::Option::Some(#max_wait))));
    }
    tokens
}

/// The `BulkheadSpec` constant. Without `max_concurrent` (a `policy` gives it) the inline
/// value is unbounded until the policy says otherwise.
fn bulkhead_spec(args: &BulkheadArgs) -> TokenStream {
    let max_concurrent = args.max_concurrent.unwrap_or(u32::MAX >> 3); // BulkheadSpec::UNBOUNDED
    let mut tokens = quote!(::resilience::__private::BulkheadSpec::new(#max_concurrent));
    if let Some(max_wait) = args.max_wait {
        let max_wait = duration(max_wait);
        tokens.extend(quote!(.max_wait(#max_wait)));
    }
    tokens
}

/// The `CacheSpec` constant. Without `ttl` (a `policy` gives it) the inline ttl is zero: the
/// site stores nothing until the policy says how long.
fn cache_spec(args: &CachedArgs) -> TokenStream {
    let ttl = duration(args.ttl.unwrap_or(Duration::ZERO));
    let mut tokens = quote!(::resilience::__private::CacheSpec::new(#ttl));
    if let Some(max_entries) = args.max_entries {
        tokens.extend(quote!(.max_entries(#max_entries)));
    }
    if let Some(jitter) = args.ttl_jitter {
        tokens.extend(quote!(.ttl_jitter(#jitter)));
    }
    if let Some(negative_ttl) = args.negative_ttl {
        let negative_ttl = duration(negative_ttl);
        tokens.extend(quote!(.negative_ttl(::core::option::Option::Some(#negative_ttl))));
    }
    if let Some(window) = args.stale_while_revalidate {
        let window = duration(window);
        tokens.extend(quote!(.stale_while_revalidate(::core::option::Option::Some(#window))));
    }
    tokens
}

/// What the return type stores: by its last path segment, and whether failures are cached.
/// The mode as a type (for the stored type) and as a value (for the call): a `Result`
/// without `negative_ttl` is probed, so that an `E: Clone` is handed to the waiters of a
/// failed load (`OkCloneErr`) and any other `E` is not (`OkOnly`; both store `T`).
fn cache_mode(output: &syn::Type, args: &CachedArgs) -> (TokenStream, TokenStream) {
    let negative = args.negative_ttl.is_some();
    let segment = crate::item::last_segment(output);
    let mode = match (segment.as_deref(), negative) {
        (Some("Result"), false) => "OkOnly",
        (Some("Result"), true) => "OkAndErr",
        (Some("Option"), false) => "SomeOnly",
        (Some("Option"), true) => "SomeAndNone",
        _ => "AsIs",
    };
    // On the return type's span: a bound the mode puts on the type (`Clone`) is reported there.
    let mode = syn::Ident::new(mode, output.span());
    let ty = quote::quote_spanned!(output.span()=> ::resilience::__private::#mode);
    let value = if (segment.as_deref(), negative) == (Some("Result"), false) {
        quote::quote_spanned! {output.span()=> {
            #[allow(unused_imports)]
            use ::resilience::__private::{ViaCloneErr as _, ViaPlainErr as _};
            (&&::resilience::__private::ModeProbe::<#output>::new()).mode()
        }}
    } else {
        quote::quote_spanned!(output.span()=> ::core::marker::PhantomData::<#ty>)
    };
    (ty, value)
}

/// The cache key: the `key` expression, or every argument but `self`, owned, in a tuple.
/// Each argument goes through a `KeyProbe` on its own span, so an argument that cannot be
/// part of the key is one error, on that argument.
fn cache_key(args: &CachedArgs, sig: &syn::Signature) -> TokenStream {
    if let Some(key) = &args.key {
        return quote!(::resilience::__private::key_value(#key));
    }
    let parts = sig.inputs.iter().filter_map(|input| match input {
        syn::FnArg::Typed(typed) => match (&*typed.pat, &*typed.ty) {
            (syn::Pat::Ident(ident), syn::Type::Reference(_)) => {
                let name = &ident.ident;
                Some(quote::quote_spanned! {name.span()=>
                    (&&::resilience::__private::KeyProbe::of(#name)).key()
                })
            }
            (syn::Pat::Ident(ident), _) => {
                let name = &ident.ident;
                Some(quote::quote_spanned! {name.span()=>
                    (&&::resilience::__private::KeyProbe::of(&#name)).key()
                })
            }
            _ => None,
        },
        syn::FnArg::Receiver(_) => None,
    });
    quote! {{
        #[allow(unused_imports)]
        use ::resilience::__private::{ViaKeyPart as _, ViaNotKeyPart as _};
        (#(#parts,)*)
    }}
}

/// The `BreakerSpec` constant: the runtime defaults with each given key set.
fn breaker_spec(args: &BreakerArgs) -> TokenStream {
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
        let open_for = duration(open_for);
        tokens.extend(quote!(.open_for(#open_for)));
    }
    if let Some(trials) = args.half_open_calls {
        tokens.extend(quote!(.half_open_calls(#trials)));
    }
    tokens
}

/// A predicate path as `Option<fn(&E) -> bool>`, typed on the path's span: a function of the
/// wrong signature is one "expected fn pointer" error on the path.
fn predicate(path: Option<&syn::Path>) -> TokenStream {
    match path {
        Some(path) => {
            let binding = quote::format_ident!("__resilience_predicate", span = Span::mixed_site());
            let fn_type = quote::quote_spanned!(path.span()=> fn(&_) -> bool);
            quote! {{
                let #binding: #fn_type = #path;
                ::core::option::Option::Some(#binding)
            }}
        }
        None => quote!(::core::option::Option::None),
    }
}

fn policy(policy: Option<&syn::LitStr>) -> TokenStream {
    match policy {
        Some(policy) => quote!(::core::option::Option::Some(#policy)),
        None => quote!(::core::option::Option::None),
    }
}

fn retry_if(args: &RetryArgs) -> TokenStream {
    predicate(args.retry_if.as_ref())
}

/// What the layers built so far (from the body outwards) amount to.
enum Inner {
    /// The function body itself, not yet wrapped.
    Body,
    /// An async fn: an expression of a future of the return type.
    /// A blocking fn: an expression of the return type, evaluated where it stands.
    Wrapped(TokenStream),
    /// An async fn: an expression of the return type, to be evaluated in the fn's own body
    /// (it awaits); only ever the outermost layer.
    Awaited(TokenStream),
}

/// The function with its block replaced by one `static` site per layer and one nested call
/// into `::resilience::__private`; `layers` are outermost first.
pub(crate) fn stack(layers: &[Layer], function: FnItem) -> TokenStream {
    let FnItem {
        item,
        is_async,
        reuse,
        output,
    } = function;
    let syn::ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item;
    let name = sig.ident.to_string();
    let stmts = &block.stmts;
    let fake = quote::format_ident!("__resilience_output", span = Span::mixed_site());
    // The body as a future, with its output type fixed before the body is checked, so the
    // body coerces (`&String` to `&str`) as it did in the original fn.
    let body_future = quote! {
        async move {
            #[allow(
                unknown_lints,
                unreachable_code,
                clippy::diverging_sub_expression,
                clippy::empty_loop,
                clippy::let_unit_value,
                clippy::needless_return,
                clippy::unreachable
            )]
            if false {
                let #fake: #output = loop {};
                return #fake;
            }
            #(#stmts)*
        }
    };
    let body_closure = quote!(|| -> #output { #(#stmts)* });
    let hooks =
        |retry_if: TokenStream| quote!(::resilience::__private::error_hooks!(#output, #retry_if));
    // How a refusal becomes the error type, checked once on the return type's span, so a
    // missing `From<Rejected>` is one error, there.
    let reject = quote::format_ident!("__resilience_reject", span = Span::mixed_site());
    let refuses = layers.iter().any(|layer| {
        matches!(
            layer,
            Layer::RateLimited(_)
                | Layer::Bulkhead(_)
                | Layer::CircuitBreaker(_)
                | Layer::Timeout(..)
        )
    });
    let reject_check = refuses.then(|| {
        quote::quote_spanned! {output.span()=>
            let #reject = ::resilience::__private::rejecter::<#output>();
        }
    });

    let cache_id = quote! {
        ::core::concat!(::core::module_path!(), "::", #name, "#", ::core::line!(), ":", ::core::column!())
    };
    let mut handle = None;
    let mut statics = Vec::new();
    let mut inner = Inner::Body;
    for (index, layer) in layers.iter().enumerate().rev() {
        let site = quote::format_ident!("__RESILIENCE_SITE_{}", index, span = Span::mixed_site());
        let site_name = quote!(::core::concat!(::core::module_path!(), "::", #name));
        let (site_type, site_value, call) = match layer {
            Layer::Retry(args) => {
                let spec = retry_spec(args);
                let policy = policy(args.policy.as_ref());
                let hooks = hooks(retry_if(args));
                let rebinds = reuse.iter().map(|binding| binding.rebind());
                let inline_site = args.policy.is_none() && args.max_elapsed.is_none();
                let call = if is_async && inline_site {
                    // A site known to name no policy and set no `max_elapsed`: the first try
                    // runs here and is matched on, so the happy path adds no future around
                    // the try; only a failure builds the retry loop (boxed). `site` and
                    // `hooks` are closures called after a failure. Outermost, this block is
                    // the fn's own body; under another layer it is an `async` block.
                    let future = match &inner {
                        Inner::Body => &body_future,
                        Inner::Wrapped(future) | Inner::Awaited(future) => future,
                    };
                    let op = quote::format_ident!("__resilience_op", span = Span::mixed_site());
                    let error =
                        quote::format_ident!("__resilience_error", span = Span::mixed_site());
                    let ok = quote::format_ident!("__resilience_ok", span = Span::mixed_site());
                    let first_try = quote! {{
                        #[allow(unused_mut)]
                        let mut #op = move || {
                            #(#rebinds)*
                            #future
                        };
                        match #op().await {
                            ::core::result::Result::Err(#error) => {
                                ::resilience::__private::retry_after_first_failure(
                                    || &#site,
                                    || #hooks,
                                    #op,
                                    #error,
                                )
                                .await
                            }
                            #ok => #ok,
                        }
                    }};
                    statics.push(quote! {
                        static #site: ::resilience::__private::RetrySite =
                            ::resilience::__private::RetrySite::new(#site_name, #policy, #spec);
                    });
                    inner = if index == 0 {
                        Inner::Awaited(first_try)
                    } else {
                        Inner::Wrapped(quote!(async move #first_try))
                    };
                    continue;
                } else if is_async {
                    let future = match &inner {
                        Inner::Body => &body_future,
                        Inner::Wrapped(future) | Inner::Awaited(future) => future,
                    };
                    quote! {
                        ::resilience::__private::retry_async(
                            &#site,
                            || #hooks,
                            move || {
                                #(#rebinds)*
                                #future
                            },
                        )
                    }
                } else {
                    let value = match &inner {
                        Inner::Body => quote!(#(#stmts)*),
                        Inner::Wrapped(value) | Inner::Awaited(value) => value.clone(),
                    };
                    quote! {
                        ::resilience::__private::retry_blocking(
                            &#site,
                            #hooks,
                            move || -> #output {
                                #(#rebinds)*
                                #value
                            },
                        )
                    }
                };
                (
                    quote!(RetrySite),
                    quote!(::resilience::__private::RetrySite::new(#site_name, #policy, #spec)),
                    call,
                )
            }
            Layer::RateLimited(args) => {
                let spec = rate_limit_spec(args);
                let policy = policy(args.policy.as_ref());
                let hooks = hooks(quote!(::core::option::Option::None));
                // A site naming a policy may have its schedule in Redis: its key also gets the
                // hash every instance agrees on.
                let hashed = match &args.policy {
                    Some(_) => quote!(shared),
                    None => quote!(local),
                };
                let key = match &args.key {
                    Some(key) => quote! {
                        ::core::option::Option::Some(
                            ::resilience::__private::RateKey::#hashed(&(#key)),
                        )
                    },
                    None => quote!(::core::option::Option::None),
                };
                let cost = match &args.cost {
                    Some(Cost::Literal(cost)) => quote!(::core::option::Option::Some(#cost)),
                    // On the expression's span: a value of a type that is not an unsigned
                    // integer is one error, there, naming `cost`.
                    Some(Cost::Expr(cost)) => quote::quote_spanned! {cost.span()=>
                        ::resilience::__private::cost(&(#cost))
                    },
                    None => quote!(::core::option::Option::None),
                };
                let (entry, inner) =
                    wrapped(is_async, &inner, &body_future, &body_closure, &output);
                let entry = quote::format_ident!("rate_limited_{}", entry);
                let call = quote! {
                    ::resilience::__private::#entry(&#site, #key, #cost, #hooks, #reject, #inner)
                };
                (
                    quote!(RateLimitSite),
                    quote!(::resilience::__private::RateLimitSite::new(#site_name, #policy, #spec)),
                    call,
                )
            }
            Layer::Cached(args) => {
                let spec = cache_spec(args);
                let policy = policy(args.policy.as_ref());
                let (mode, mode_value) = cache_mode(&output, args);
                let key = cache_key(args, &sig);
                let (entry, inner) =
                    wrapped(is_async, &inner, &body_future, &body_closure, &output);
                let background = args
                    .stale_key
                    .filter(|_| crate::item::owns_its_arguments(&sig));
                let call = if let (Some(span), "async") = (background, entry) {
                    let refreshing = quote::quote_spanned! {span=>
                        ::resilience::__private::cached_async_refreshing_in
                    };
                    quote! {
                        #refreshing(#mode_value, &#site, #key, #inner)
                    }
                } else if entry == "async" {
                    // The key is bound first so the codec probe can see its type: a Redis
                    // backend is used only for serde keys and values.
                    let bound = quote::format_ident!("__resilience_key", span = Span::mixed_site());
                    let output = &output;
                    // On the return type's span: a value (or, with `negative_ttl`, an error)
                    // that is not `Clone` is reported there, once.
                    let stored = quote::quote_spanned! {output.span()=>
                        <#output as ::resilience::__private::Cacheable<#mode>>::Stored
                    };
                    let codec =
                        quote::format_ident!("__resilience_codec", span = Span::mixed_site());
                    let call = quote::quote_spanned! {output.span()=>
                        ::resilience::__private::cached_async_in(
                            #mode_value, &#site, #bound, #codec, #inner,
                        )
                    };
                    let call = quote::quote_spanned! {output.span()=> {
                        let #bound = #key;
                        #[allow(unused_imports)]
                        use ::resilience::__private::{ViaNoSerde as _, ViaSerde as _};
                        let #codec =
                            (&&::resilience::__private::CodecProbe::<_, #stored>::of(&#bound))
                                .codec();
                        #call
                    }};
                    if index == 0 {
                        call
                    } else {
                        // Under another layer, awaited in a block of its own on the return
                        // type's span: the outer layer then sees a plain `async` block, and
                        // a bound of the cache is not reported again at its attribute.
                        quote::quote_spanned! {output.span()=> async move { #call.await }}
                    }
                } else {
                    let output = &output;
                    quote::quote_spanned! {output.span()=>
                        ::resilience::__private::cached_blocking_in(#mode_value, &#site, #key, #inner)
                    }
                };
                let site_value = quote!(::resilience::__private::CacheSite::new(#cache_id, #site_name, #policy, #spec));
                handle = Some((site_value.clone(), args.policy.is_some()));
                (quote!(CacheSite), site_value, call)
            }
            Layer::CircuitBreaker(args) => {
                let spec = breaker_spec(args);
                let policy = policy(args.policy.as_ref());
                let hooks = hooks(quote!(::core::option::Option::None));
                let failure_if = predicate(args.failure_if.as_ref());
                let (entry, inner) =
                    wrapped(is_async, &inner, &body_future, &body_closure, &output);
                let entry = quote::format_ident!("circuit_breaker_{}", entry);
                let call = quote! {
                    ::resilience::__private::#entry(&#site, #hooks, #failure_if, #reject, #inner)
                };
                (
                    quote!(BreakerSite),
                    quote!(::resilience::__private::BreakerSite::new(#site_name, #policy, #spec)),
                    call,
                )
            }
            Layer::Timeout(args, _) => {
                let limit = duration(args.duration.unwrap_or(Duration::MAX));
                let policy = policy(args.policy.as_ref());
                // Only reached for an `async fn` (a blocking one is refused before).
                let (_, inner) = wrapped(is_async, &inner, &body_future, &body_closure, &output);
                let call = quote! {
                    ::resilience::__private::timeout_async(&#site, #reject, #inner)
                };
                (
                    quote!(TimeoutSite),
                    quote!(::resilience::__private::TimeoutSite::new(#site_name, #policy, #limit)),
                    call,
                )
            }
            Layer::Bulkhead(args) => {
                let spec = bulkhead_spec(args);
                let policy = policy(args.policy.as_ref());
                let (entry, inner) =
                    wrapped(is_async, &inner, &body_future, &body_closure, &output);
                let entry = quote::format_ident!("bulkhead_{}", entry);
                let call = quote! {
                    ::resilience::__private::#entry(&#site, #reject, #inner)
                };
                (
                    quote!(BulkheadSite),
                    quote!(::resilience::__private::BulkheadSite::new(#site_name, #policy, #spec)),
                    call,
                )
            }
        };
        statics.push(quote! {
            static #site: ::resilience::__private::#site_type = #site_value;
        });
        inner = Inner::Wrapped(call);
    }
    let call = match inner {
        Inner::Wrapped(call) if is_async => quote::quote_spanned!(output.span()=> #call.await),
        Inner::Wrapped(call) | Inner::Awaited(call) => call,
        // No layer: not reachable (every attribute is a layer); keep the body as it was.
        Inner::Body => quote!(#(#stmts)*),
    };
    statics.reverse();
    // The invalidation handle: an item of its own beside the function (a free fn, or an
    // associated fn in an impl), reaching the same cache through the site id.
    let handle = handle.map(|(site_value, _)| {
        let handle_name = quote::format_ident!("{}_cache", sig.ident);
        let site = quote::format_ident!("__RESILIENCE_CACHE", span = Span::mixed_site());
        let doc = format!(
            "The cache of `{name}`: `invalidate(&key)` removes one entry (the key is the tuple of \
             the owned arguments, or the `key` expression's value), `invalidate_all()` every \
             entry, and `counts()` reads its counters."
        );
        quote! {
            #[doc = #doc]
            #[allow(dead_code)]
            #vis fn #handle_name() -> &'static ::resilience::__private::CacheSite {
                static #site: ::resilience::__private::CacheSite = #site_value;
                &#site
            }
        }
    });
    quote! {
        #(#attrs)*
        #vis #sig {
            #(#statics)*
            #reject_check
            #call
        }
        #handle
    }
}

/// The inner layers as the argument of a wrapping layer (a closure called once, making the
/// future or the value), and the suffix of the entry point (`async` or `blocking`).
fn wrapped(
    is_async: bool,
    inner: &Inner,
    body_future: &TokenStream,
    body_closure: &TokenStream,
    output: &syn::Type,
) -> (&'static str, TokenStream) {
    match (is_async, inner) {
        // A closure making the future: the runtime's executors take one (see `timeout_async`).
        (true, Inner::Body) => ("async", quote!(move || #body_future)),
        (true, Inner::Wrapped(future) | Inner::Awaited(future)) => {
            ("async", quote!(move || #future))
        }
        (false, Inner::Body) => ("blocking", body_closure.clone()),
        (false, Inner::Wrapped(value) | Inner::Awaited(value)) => {
            ("blocking", quote!(|| -> #output { #value }))
        }
    }
}
