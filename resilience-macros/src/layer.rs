//! One layer of the stack per attribute kind, each expanded by a small function of its own
//! module into its `static` site and its call into `::resilience::__private`.
//!
//! A call wraps the layers inside it: for an `async fn` it is an expression of a future and
//! takes the inner layers as a closure making theirs; for a blocking `fn` it is an expression
//! of the return type and takes the inner layers as a closure computing it. The runtime's
//! entry points are named `<kind>_async` and `<kind>_blocking` accordingly.

mod breaker;
mod bulkhead;
mod cache;
mod fallback;
mod hedge;
mod rate_limit;
mod retry;
mod timeout;

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Ident, Signature, Type};

use crate::bulkhead::BulkheadArgs;
use crate::cached::CachedArgs;
use crate::circuit_breaker::BreakerArgs;
use crate::fallback::FallbackArgs;
use crate::hedge::HedgeArgs;
use crate::item::Reuse;
use crate::rate_limited::RateLimitArgs;
use crate::retry::RetryArgs;
use crate::timeout::TimeoutArgs;

/// One layer of the stack, outermost first.
pub(crate) enum Layer {
    Cached(CachedArgs),
    Fallback(FallbackArgs),
    Retry(RetryArgs),
    RateLimited(RateLimitArgs),
    Bulkhead(BulkheadArgs),
    CircuitBreaker(BreakerArgs),
    Hedge(HedgeArgs, TokenStream),
    /// With where to point if the function is not `async`.
    Timeout(TimeoutArgs, TokenStream),
}

/// What a layer's code uses of the function, and the bindings the expansion makes once for
/// every layer (see [`Cx::preamble`]).
pub(crate) struct Cx<'a> {
    pub(crate) is_async: bool,
    /// The return type, checked to be a `Result` unless every layer is a cache.
    pub(crate) output: &'a Type,
    pub(crate) sig: &'a Signature,
    /// How each argument is handed to each try of a retry.
    pub(crate) reuse: &'a [Reuse],
    /// The site's name: `module::path::function`.
    pub(crate) name: TokenStream,
    /// The `Probe` of the return type: its error hooks, and a fake value of it.
    probe: Ident,
    /// The conversion of a refusal into the return type's error.
    reject: Ident,
}

/// One layer's share of the expansion.
pub(crate) struct Part {
    /// The `static` site the call refers to.
    pub(crate) site: TokenStream,
    /// The call, the inner layers inside it.
    pub(crate) call: TokenStream,
    /// A cache's site value, for the invalidation handle beside the function.
    pub(crate) cache: Option<TokenStream>,
    /// The call is the function's output already (a block that awaits inside), not a future
    /// to await: the retry's first try as the function's own body.
    pub(crate) ready: bool,
}

impl Layer {
    /// This layer's site, named `site`, and its call around `inner` (the inner layers, or the
    /// body); `outermost`: the call is the function's own body.
    pub(crate) fn expand(
        &self,
        cx: &Cx<'_>,
        site: &Ident,
        inner: TokenStream,
        outermost: bool,
    ) -> Part {
        match self {
            Layer::Cached(args) => cache::expand(args, cx, site, inner, outermost),
            Layer::Fallback(args) => fallback::expand(args, cx, site, inner),
            Layer::Retry(args) => retry::expand(args, cx, site, inner, outermost),
            Layer::RateLimited(args) => rate_limit::expand(args, cx, site, inner),
            Layer::Bulkhead(args) => bulkhead::expand(args, cx, site, inner),
            Layer::CircuitBreaker(args) => breaker::expand(args, cx, site, inner),
            Layer::Hedge(args, _) => hedge::expand(args, cx, site, inner),
            Layer::Timeout(args, _) => timeout::expand(args, cx, site, inner),
        }
    }

    /// Whether the layer looks at the function's errors (through the hooks).
    fn classifies(&self) -> bool {
        matches!(
            self,
            Layer::Retry(_) | Layer::RateLimited(_) | Layer::CircuitBreaker(_)
        )
    }

    /// Whether the layer's call takes the probe (to fix the function's types first).
    fn probes(&self) -> bool {
        matches!(self, Layer::Fallback(_))
    }

    /// Whether the layer can refuse a call (as `Err(E::from(Rejected))`).
    fn refuses(&self) -> bool {
        matches!(
            self,
            Layer::RateLimited(_)
                | Layer::Bulkhead(_)
                | Layer::CircuitBreaker(_)
                | Layer::Timeout(..)
        )
    }
}

impl<'a> Cx<'a> {
    pub(crate) fn new(
        is_async: bool,
        output: &'a Type,
        sig: &'a Signature,
        reuse: &'a [Reuse],
    ) -> Self {
        let name = sig.ident.to_string();
        Cx {
            is_async,
            output,
            sig,
            reuse,
            name: quote!(::core::concat!(::core::module_path!(), "::", #name)),
            probe: format_ident!("__resilience_probe", span = Span::mixed_site()),
            reject: format_ident!("__resilience_reject", span = Span::mixed_site()),
        }
    }

    /// The bindings every layer shares, made once before the outermost call: the return
    /// type's probe (a zero-sized value: the error hooks, the type of the body's future) and
    /// the refusal conversion, checked on the return type's span so that a missing
    /// `From<Rejected>` is one error, there.
    pub(crate) fn preamble(&self, layers: &[Layer]) -> TokenStream {
        let Cx {
            output,
            probe,
            reject,
            ..
        } = self;
        let mut tokens = TokenStream::new();
        if self.is_async
            || layers
                .iter()
                .any(|layer| layer.classifies() || layer.probes())
        {
            tokens.extend(quote! {
                let #probe = __resilience_rt::Probe::<#output>::new();
            });
        }
        if layers.iter().any(Layer::refuses) {
            tokens.extend(quote::quote_spanned! {output.span()=>
                let #reject = __resilience_rt::rejecter::<#output>();
            });
        }
        tokens
    }

    /// The function's body as the innermost layer: a future of the return type (its output
    /// type fixed before the body is checked, so the body coerces as it did in the original
    /// fn: `&String` to `&str`), or the body's statements.
    pub(crate) fn body(&self, stmts: &[syn::Stmt]) -> TokenStream {
        let probe = &self.probe;
        if self.is_async {
            quote! {
                async move {
                    if false {
                        return #probe.output();
                    }
                    #(#stmts)*
                }
            }
        } else {
            quote!(#(#stmts)*)
        }
    }

    /// The outermost call as the function's body.
    pub(crate) fn outermost(&self, call: TokenStream) -> TokenStream {
        if self.is_async {
            quote::quote_spanned!(self.output.span()=> #call.await)
        } else {
            call
        }
    }

    /// The inner layers as the argument of a wrapping layer: a closure called once, making
    /// the future or computing the value.
    fn once(&self, inner: &TokenStream) -> TokenStream {
        let output = self.output;
        if self.is_async {
            quote!(move || #inner)
        } else {
            quote!(|| -> #output { #inner })
        }
    }

    /// The runtime entry point of a layer kind: `<kind>_async` or `<kind>_blocking`.
    fn entry(&self, kind: &str) -> TokenStream {
        let entry = match self.is_async {
            true => format_ident!("{}_async", kind),
            false => format_ident!("{}_blocking", kind),
        };
        quote!(__resilience_rt::#entry)
    }

    /// The return type's probe.
    pub(crate) fn probe(&self) -> &Ident {
        &self.probe
    }

    /// The error hooks, made now.
    fn hooks(&self) -> TokenStream {
        let probe = &self.probe;
        quote!(#probe.classified().hooks())
    }
}

/// A `static` site of type `ty`.
fn site(name: &Ident, ty: &str, value: TokenStream) -> TokenStream {
    let ty = Ident::new(ty, Span::call_site());
    quote! {
        static #name: __resilience_rt::#ty = #value;
    }
}

/// A `Duration` constant, in the unit it was most likely written in.
/// `.method(value)` on the spec being built in `tokens`, when the attribute gave the value.
fn set(tokens: &mut TokenStream, method: &str, value: Option<impl quote::ToTokens>) {
    if let Some(value) = value {
        let method = format_ident!("{}", method);
        tokens.extend(quote!(.#method(#value)));
    }
}

fn duration(value: Duration) -> TokenStream {
    let (secs, nanos) = (value.as_secs(), value.subsec_nanos());
    let millis = u64::try_from(value.as_millis());
    match (nanos, millis) {
        (0, _) => quote!(__resilience_rt::Duration::from_secs(#secs)),
        (nanos, Ok(millis)) if nanos % 1_000_000 == 0 => {
            quote!(__resilience_rt::Duration::from_millis(#millis))
        }
        _ => quote!(__resilience_rt::Duration::new(#secs, #nanos)),
    }
}

fn some_duration(value: Duration) -> TokenStream {
    let value = duration(value);
    quote!(__resilience_rt::Some(#value))
}

fn policy(policy: Option<&syn::LitStr>) -> TokenStream {
    match policy {
        Some(policy) => quote!(__resilience_rt::Some(#policy)),
        None => quote!(__resilience_rt::None),
    }
}

/// A predicate path as `Option<fn(&E) -> bool>`, typed on the path's span: a function of the
/// wrong signature is one "expected fn pointer" error on the path.
fn predicate(path: Option<&syn::Path>) -> TokenStream {
    match path {
        Some(path) => {
            let binding = format_ident!("__resilience_predicate", span = Span::mixed_site());
            let fn_type = quote::quote_spanned!(path.span()=> fn(&_) -> bool);
            quote! {{
                let #binding: #fn_type = #path;
                __resilience_rt::Some(#binding)
            }}
        }
        None => quote!(__resilience_rt::None),
    }
}
