//! Stacked attributes: the first resilience attribute to expand builds the whole stack.
//!
//! Attribute macros expand outermost first, and each sees the function with the attributes
//! beneath it still attached. If each wrapped the body it sees, `#[retry] #[rate_limited]`
//! would put the limiter around the whole retry loop: the reverse of the order written. So
//! the first one reads the resilience attributes beneath it, applies all of them in the
//! written order (outermost first) in one expansion, and leaves them marked as applied (so
//! their imports stay used and they expand to the function unchanged).

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Attribute, ItemFn, Meta};

use crate::args::Args;
use crate::bulkhead::BulkheadArgs;
use crate::diag::{self, Errors};
use crate::item::FnItem;
use crate::rate_limited::RateLimitArgs;
use crate::retry::RetryArgs;

/// The argument an applied attribute is left with.
const APPLIED: &str = "__resilience_applied";

/// One of the crate's attributes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Retry,
    RateLimited,
    Bulkhead,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Retry => "retry",
            Kind::RateLimited => "rate_limited",
            Kind::Bulkhead => "bulkhead",
        }
    }

    /// The kind of an attribute, by the last segment of its path (`retry`,
    /// `resilience::retry`).
    fn of(attribute: &Attribute) -> Option<Kind> {
        let last = attribute.path().segments.last()?;
        [Kind::Retry, Kind::RateLimited, Kind::Bulkhead]
            .into_iter()
            .find(|kind| last.ident == kind.name())
    }
}

/// One layer of the stack, outermost first.
pub(crate) enum Layer {
    Retry(RetryArgs),
    RateLimited(RateLimitArgs),
    Bulkhead(BulkheadArgs),
}

/// The expansion of one attribute: the whole stack, or the item unchanged if an outer
/// attribute already applied this one.
pub(crate) fn attribute(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    if args.to_string() == APPLIED {
        return item;
    }
    diag::or_original(item.clone(), expand(kind, args, item))
}

fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let mut function = match syn::parse2::<ItemFn>(item) {
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
            let _ = layer(kind, args, Span::call_site(), &mut errors);
            return Err(errors
                .finish()
                .err()
                .unwrap_or_else(|| syn::Error::new(Span::call_site(), "expected a function")));
        }
    };
    let mut layers = Vec::new();
    layers.extend(layer(kind, args, Span::call_site(), &mut errors));
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
        layers.extend(layer(inner, args, attribute.span(), &mut errors));
        let path = attribute.path().clone();
        let marker = syn::Ident::new(APPLIED, Span::call_site());
        *attribute = syn::parse_quote!(#[#path(#marker)]);
    }
    let retried = layers.iter().any(|layer| matches!(layer, Layer::Retry(_)));
    let function = FnItem::analyze(function, kind.name(), retried, &mut errors);
    errors.finish()?;
    match function {
        Some(function) => Ok(crate::expand::stack(&layers, function)),
        None => Err(syn::Error::new(Span::call_site(), "expected a function")),
    }
}

fn layer(kind: Kind, args: TokenStream, span: Span, errors: &mut Errors) -> Option<Layer> {
    let span = if args.is_empty() { span } else { args.span() };
    let args = errors.take(syn::parse2::<Args>(args))?;
    Some(match kind {
        Kind::Retry => Layer::Retry(RetryArgs::parse(args, errors)),
        Kind::RateLimited => Layer::RateLimited(RateLimitArgs::parse(args, span, errors)),
        Kind::Bulkhead => Layer::Bulkhead(BulkheadArgs::parse(args, span, errors)),
    })
}
