//! Stacked attributes: the first resilience attribute to expand builds the whole stack.
//!
//! Attribute macros expand outermost first, and each sees the function with the attributes
//! beneath it still attached. If each wrapped the body it sees, `#[retry] #[rate_limited]`
//! would put the limiter around the whole retry loop: the reverse of the order written. So
//! the first one reads the resilience attributes beneath it, applies all of them in the
//! written order (outermost first) in one expansion, and leaves them marked as applied (so
//! their imports stay used and they expand to the function unchanged).

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{Attribute, ItemFn, Meta};

use crate::args::Args;
use crate::bulkhead::BulkheadArgs;
use crate::cached::CachedArgs;
use crate::circuit_breaker::BreakerArgs;
use crate::diag::{self, Errors};
use crate::fallback::FallbackArgs;
use crate::hedge::HedgeArgs;
use crate::item::FnItem;
use crate::layer::Layer;
use crate::rate_limited::RateLimitArgs;
use crate::retry::RetryArgs;
use crate::timeout::TimeoutArgs;

/// The argument an applied attribute is left with.
const APPLIED: &str = "__resilience_applied";

/// One of the crate's attributes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Cached,
    Fallback,
    Retry,
    RateLimited,
    Bulkhead,
    CircuitBreaker,
    Timeout,
    Hedge,
    Resilient,
}

impl Kind {
    const ALL: [Kind; 9] = [
        Kind::Cached,
        Kind::Fallback,
        Kind::Retry,
        Kind::RateLimited,
        Kind::Bulkhead,
        Kind::CircuitBreaker,
        Kind::Timeout,
        Kind::Hedge,
        Kind::Resilient,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Cached => "cached",
            Kind::Fallback => "fallback",
            Kind::Retry => "retry",
            Kind::RateLimited => "rate_limited",
            Kind::Bulkhead => "bulkhead",
            Kind::CircuitBreaker => "circuit_breaker",
            Kind::Timeout => "timeout",
            Kind::Hedge => "hedge",
            Kind::Resilient => "resilient",
        }
    }

    /// The kind of an attribute, by its whole path: the name alone (imported, `use
    /// resilience::retry`), or under the facade or this crate (`resilience::retry`,
    /// `::resilience_macros::retry`). Another crate's attribute of the same name
    /// (`cached::proc_macro::cached`) is not one of ours.
    fn of(attribute: &Attribute) -> Option<Kind> {
        let path = attribute.path();
        let mut segments = path.segments.iter().map(|segment| &segment.ident);
        let name = match (segments.next(), segments.next(), segments.next()) {
            (Some(name), None, None) if path.leading_colon.is_none() => name,
            (Some(krate), Some(name), None)
                if krate == "resilience" || krate == "resilience_macros" =>
            {
                name
            }
            _ => return None,
        };
        Kind::ALL.into_iter().find(|kind| name == kind.name())
    }
}

/// The expansion of one attribute: the whole stack, or the item unchanged if an outer
/// attribute already applied this one.
pub(crate) fn attribute(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    if args.to_string() == APPLIED {
        return item;
    }
    match expand(kind, args, item) {
        Ok(tokens) => tokens,
        Err((error, item)) => diag::or_original(item, Err(error)),
    }
}

/// On error, also the item to emit beside it: the original, with the attributes beneath
/// marked as applied, so they do not expand again and repeat the errors already reported.
fn expand(
    kind: Kind,
    args: TokenStream,
    item: TokenStream,
) -> Result<TokenStream, (syn::Error, TokenStream)> {
    let mut errors = Errors::default();
    let mut function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(error) => {
            errors.push(syn::Error::new(
                error.span(),
                format!(
                    "#[{}] can only be applied to a function with a body",
                    kind.name()
                ),
            ));
            // Still check the arguments, so every problem shows in one build.
            let _ = layer(kind, args, TokenStream::new(), &mut errors);
            let error = errors
                .finish()
                .err()
                .unwrap_or_else(|| syn::Error::new(Span::call_site(), "expected a function"));
            return Err((error, item));
        }
    };
    let mut layers = Vec::new();
    // This attribute's own tokens are not in the item: an empty place points at the whole
    // attribute (the call site).
    layers.extend(
        layer(kind, args, TokenStream::new(), &mut errors)
            .into_iter()
            .flatten(),
    );
    for attribute in &mut function.attrs {
        let Some(inner) = Kind::of(attribute) else {
            continue;
        };
        let args = match &attribute.meta {
            Meta::Path(_) => TokenStream::new(),
            Meta::List(list) => list.tokens.clone(),
            Meta::NameValue(name_value) => {
                errors.error(
                    name_value.eq_token,
                    format!("write `#[{}(key = value, ...)]`", inner.name()),
                );
                continue;
            }
        };
        if args.to_string() == APPLIED {
            continue;
        }
        layers.extend(
            layer(inner, args, attribute.to_token_stream(), &mut errors)
                .into_iter()
                .flatten(),
        );
        let path = attribute.path().clone();
        let marker = syn::Ident::new(APPLIED, Span::call_site());
        *attribute = syn::parse_quote!(#[#path(#marker)]);
    }
    let marked = function.to_token_stream();
    // A retry or a hedge calls the body more than once: its arguments are reused.
    let retried = layers
        .iter()
        .any(|layer| matches!(layer, Layer::Retry(_) | Layer::Hedge(..)));
    let keyed_by_arguments = layers
        .iter()
        .any(|layer| matches!(layer, Layer::Cached(args) if args.key.is_none()));
    if keyed_by_arguments {
        for input in &function.sig.inputs {
            if let syn::FnArg::Typed(typed) = input {
                if !matches!(&*typed.pat, syn::Pat::Ident(_)) {
                    errors.error(
                        &typed.pat,
                        "`#[cached]` keys the cache by every argument by name; give this argument a plain name, or write `key = ...`",
                    );
                }
            }
        }
    }
    if function.sig.asyncness.is_none() {
        // `#[resilient]` on a blocking fn: no time limit unless one is asked for.
        layers.retain(|layer| !matches!(layer, Layer::Timeout(args, _) if args.off));
        for layer in &layers {
            if let Layer::Hedge(_, place) = layer {
                errors.error(
                    place,
                    "only an `async fn` can be hedged: its attempts run at once in one task; make the function `async`",
                );
            }
            if let Layer::Timeout(_, place) = layer {
                errors.error(
                    place,
                    "only an `async fn` can be timed out: a blocking call cannot be stopped from outside; make the function `async`, or put the limit on the blocking I/O itself",
                );
            }
        }
    }
    let any_return = layers.iter().all(|layer| matches!(layer, Layer::Cached(_)));
    let function = FnItem::analyze(function, kind.name(), retried, any_return, &mut errors);
    if let Err(error) = errors.finish() {
        return Err((error, marked));
    }
    match function {
        Some(function) => Ok(crate::expand::stack(&layers, function)),
        None => Err((
            syn::Error::new(Span::call_site(), "expected a function"),
            marked,
        )),
    }
}

/// `attribute`: the whole attribute, where a missing key is reported when it has no
/// arguments (empty: the call site); otherwise that error points at the arguments, first to
/// last token (`Span::join` only keeps the first token on stable).
fn layer(
    kind: Kind,
    args: TokenStream,
    attribute: TokenStream,
    errors: &mut Errors,
) -> Option<Vec<Layer>> {
    let place = if args.is_empty() {
        attribute.clone()
    } else {
        args.clone()
    };
    // Every kind but `timeout` (a lone duration) and `resilient` (sections) reads
    // `key = value` pairs.
    let pairs = |tokens, errors: &mut Errors| errors.take(syn::parse2::<Args>(tokens));
    let layer = match kind {
        Kind::Resilient => return Some(crate::resilient::layers(args, &place, errors)),
        Kind::Timeout => Layer::Timeout(TimeoutArgs::parse(args, &place, errors)?, attribute),
        Kind::Cached => Layer::Cached(CachedArgs::parse(pairs(args, errors)?, &place, errors)),
        Kind::Fallback => Layer::Fallback(FallbackArgs::parse(args, &place, errors)?),
        Kind::Retry => Layer::Retry(RetryArgs::parse(pairs(args, errors)?, errors)),
        Kind::RateLimited => {
            Layer::RateLimited(RateLimitArgs::parse(pairs(args, errors)?, &place, errors))
        }
        Kind::Bulkhead => {
            Layer::Bulkhead(BulkheadArgs::parse(pairs(args, errors)?, &place, errors))
        }
        Kind::CircuitBreaker => {
            Layer::CircuitBreaker(BreakerArgs::parse(pairs(args, errors)?, errors))
        }
        Kind::Hedge => Layer::Hedge(
            HedgeArgs::parse(pairs(args, errors)?, &place, errors),
            attribute,
        ),
    };
    Some(vec![layer])
}
