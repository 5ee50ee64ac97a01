//! `#[resilient(policy = "name", retry(...), timeout = "2s", ...)]`: every section of a
//! policy, in the pipeline's fixed order, as layers of the ordinary stack.
//!
//! With a `policy`, every section but `cache` is a layer even when the attribute does not give
//! it: a layer the attribute leaves out does nothing (no retry, no limit, no breaker, no time
//! limit) until the YAML policy gives that section, and then applies from the next call.
//! `cache` puts bounds on the function (`Hash`/`Clone` arguments, a `Clone` value), so it is
//! a layer only when the attribute names it.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use resilience_config::rules;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, LitStr, Token};

use crate::args::{self, Args};
use crate::bulkhead::BulkheadArgs;
use crate::cached::CachedArgs;
use crate::circuit_breaker::BreakerArgs;
use crate::diag::Errors;
use crate::layer::Layer;
use crate::rate_limited::RateLimitArgs;
use crate::retry::RetryArgs;
use crate::timeout::TimeoutArgs;

/// One item: `key = value` or `section(arguments)`.
struct Item {
    key: Ident,
    value: Value,
}

enum Value {
    Assigned(syn::Expr),
    Section(TokenStream),
}

impl Parse for Item {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = input.call(Ident::parse_any)?;
        if input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            return Ok(Item {
                key,
                value: Value::Section(content.parse()?),
            });
        }
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `{key} = <value>` or `{key}(...)`"),
            ));
        }
        input.parse::<Token![=]>()?;
        Ok(Item {
            key,
            value: Value::Assigned(input.parse()?),
        })
    }
}

struct Items(Vec<Item>);

impl Parse for Items {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let list = Punctuated::<Item, Token![,]>::parse_terminated(input)?;
        Ok(Items(list.into_iter().collect()))
    }
}

/// The layers of `#[resilient(...)]`, outermost first: cache -> bulkhead -> rate limit ->
/// retry -> circuit breaker -> timeout. `place`: the attribute, for a missing policy.
pub(crate) fn layers(tokens: TokenStream, place: &TokenStream, errors: &mut Errors) -> Vec<Layer> {
    let Some(Items(items)) = errors.take(syn::parse2::<Items>(tokens)) else {
        return Vec::new();
    };
    let mut policy: Option<LitStr> = None;
    let mut sections: Vec<(String, Ident, Value)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for Item { key, value } in items {
        let name = key.unraw().to_string();
        if !rules::RESILIENT_KEYS.contains(&name.as_str()) {
            seen.push(name.clone());
            let hint = match rules::did_you_mean(&name, rules::RESILIENT_KEYS) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("expected one of {}", args::list(rules::RESILIENT_KEYS)),
            };
            errors.error(
                &key,
                format!("unknown `resilient` argument `{name}`; {hint}"),
            );
            continue;
        }
        if seen.contains(&name) {
            errors.error(&key, format!("duplicate `resilient` argument `{name}`"));
            continue;
        }
        seen.push(name.clone());
        match (name.as_str(), value) {
            ("policy", Value::Assigned(expr)) => policy = errors.take(args::policy(&key, &expr)),
            ("timeout", value) => sections.push((name, key, value)),
            ("policy", Value::Section(_)) => {
                errors.error(&key, "write `policy = \"name\"`");
            }
            (_, Value::Assigned(_)) => errors.error(
                &key,
                format!("write the `{name}` section as `{name}(key = value, ...)`, with the keys of its attribute"),
            ),
            (_, Value::Section(inner)) => sections.push((name, key, Value::Section(inner))),
        }
    }
    // A misspelt or malformed item was reported already: "needs a policy" would only repeat it.
    if policy.is_none() && sections.is_empty() && seen.is_empty() {
        errors.error(
            place,
            "#[resilient] needs `policy = \"...\"` (the YAML policy whose sections apply), or inline sections such as `retry(attempts = 3)`",
        );
        return Vec::new();
    }

    let mut layers = Vec::new();
    for order in [
        "cache",
        "bulkhead",
        "rate_limit",
        "retry",
        "circuit_breaker",
        "timeout",
    ] {
        let given = sections.iter().position(|(name, _, _)| name == order);
        let given = given.map(|index| sections.remove(index));
        if given.is_none() && (policy.is_none() || order == "cache") {
            continue;
        }
        let layer = match given {
            Some((_, key, Value::Section(inner))) => {
                section(order, &key, inner, policy.as_ref(), errors)
            }
            Some((_, key, Value::Assigned(expr))) => {
                timeout(&key, expr.to_token_stream(), policy.as_ref(), errors)
            }
            None => Some(off(order, policy.clone())),
        };
        layers.extend(layer);
    }
    layers
}

/// A section the attribute gives: its tokens, with the policy added, read by the section's
/// own attribute's parser.
fn section(
    name: &str,
    key: &Ident,
    tokens: TokenStream,
    policy: Option<&LitStr>,
    errors: &mut Errors,
) -> Option<Layer> {
    let parsed = errors.take(syn::parse2::<Args>(tokens.clone()))?;
    if let Some(arg) = parsed.0.iter().find(|arg| arg.key == "policy") {
        errors.error(
            &arg.key,
            "the `policy` of `#[resilient]` applies to every section; give it once, there",
        );
        return None;
    }
    if name == "timeout" {
        return timeout(key, tokens, policy, errors);
    }
    let with_policy = match policy {
        Some(policy) if tokens.is_empty() => quote!(policy = #policy),
        Some(policy) => quote!(#tokens, policy = #policy),
        None => tokens.clone(),
    };
    let args = errors.take(syn::parse2::<Args>(with_policy))?;
    let place = if tokens.is_empty() {
        key.to_token_stream()
    } else {
        tokens
    };
    Some(match name {
        "cache" => Layer::Cached(CachedArgs::parse(args, &place, errors)),
        "bulkhead" => Layer::Bulkhead(BulkheadArgs::parse(args, &place, errors)),
        "rate_limit" => Layer::RateLimited(RateLimitArgs::parse(args, &place, errors)),
        "retry" => Layer::Retry(RetryArgs::parse(args, errors)),
        _ => Layer::CircuitBreaker(BreakerArgs::parse(args, errors)),
    })
}

/// `timeout = "2s"` or `timeout("2s")` / `timeout(duration = "2s")`.
fn timeout(
    key: &Ident,
    tokens: TokenStream,
    policy: Option<&LitStr>,
    errors: &mut Errors,
) -> Option<Layer> {
    let mut args = TimeoutArgs::parse(tokens, &key.to_token_stream(), errors)?;
    args.policy = policy.cloned();
    Some(Layer::Timeout(args, key.to_token_stream()))
}

/// A section the attribute leaves out, under a policy: a layer that does nothing until the
/// policy gives the section.
fn off(name: &str, policy: Option<LitStr>) -> Layer {
    match name {
        "bulkhead" => Layer::Bulkhead(BulkheadArgs {
            max_concurrent: None,
            max_wait: None,
            policy,
        }),
        "rate_limit" => Layer::RateLimited(RateLimitArgs {
            calls: None,
            period: None,
            burst: None,
            mode: None,
            max_wait: None,
            key: None,
            cost: None,
            policy,
        }),
        "retry" => Layer::Retry(RetryArgs {
            policy,
            off: true,
            ..RetryArgs::default()
        }),
        "circuit_breaker" => Layer::CircuitBreaker(BreakerArgs {
            policy,
            off: true,
            ..BreakerArgs::default()
        }),
        _ => Layer::Timeout(
            TimeoutArgs {
                duration: None,
                policy,
                off: true,
            },
            TokenStream::new(),
        ),
    }
}
