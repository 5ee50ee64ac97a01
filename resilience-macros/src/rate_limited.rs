//! `#[rate_limited(...)]`: arguments -> a checked [`RateLimitArgs`].

use std::time::Duration;

use proc_macro2::TokenStream;
use resilience_config::rate_limit::LimitMode;
use resilience_config::rules;
use syn::{Expr, ExprLit, Ident, Lit, LitStr};

use crate::args::{self, Arg, Args};
use crate::diag::Errors;

/// Every key of `#[rate_limited]`.
pub(crate) struct RateLimitArgs {
    pub(crate) calls: Option<u32>,
    pub(crate) period: Option<Duration>,
    pub(crate) burst: Option<u32>,
    pub(crate) mode: Option<LimitMode>,
    pub(crate) max_wait: Option<Duration>,
    pub(crate) key: Option<Expr>,
    pub(crate) cost: Option<Cost>,
    pub(crate) policy: Option<LitStr>,
}

/// `cost = ...`: a literal, checked here, or an expression over the arguments, converted at
/// run time (an unsigned integer type, else an error on the expression).
pub(crate) enum Cost {
    Literal(u64),
    Expr(Expr),
}

impl RateLimitArgs {
    /// `place`: where to point when a required key is missing (the attribute's arguments, or
    /// the attribute when it has none).
    pub(crate) fn parse(args: Args, place: &TokenStream, errors: &mut Errors) -> RateLimitArgs {
        let mut out = RateLimitArgs {
            calls: None,
            period: None,
            burst: None,
            mode: None,
            max_wait: None,
            key: None,
            cost: None,
            policy: None,
        };
        let mut cost_value: Option<Expr> = None;
        let mut calls_key: Option<Ident> = None;
        let mut period_key: Option<Ident> = None;
        let mut max_wait_key: Option<Ident> = None;
        let mut policy_given = false;
        let meant = args.meant(rules::RATE_LIMIT_KEYS);
        for Arg { key, value } in args.checked("rate_limited", rules::RATE_LIMIT_KEYS, errors) {
            match key.to_string().as_str() {
                "calls" => {
                    out.calls = errors.take(count(&key, &value, rules::check_count));
                    calls_key = Some(key);
                }
                "burst" => out.burst = errors.take(count(&key, &value, rules::check_u32)),
                "period" => {
                    let checked = args::duration(&key, &value).and_then(|period| {
                        rules::check_period(period)
                            .map_err(|msg| syn::Error::new_spanned(&value, msg))
                    });
                    out.period = errors.take(checked);
                    period_key = Some(key);
                }
                "max_wait" => {
                    out.max_wait = errors.take(args::duration(&key, &value));
                    max_wait_key = Some(key);
                }
                "mode" => out.mode = errors.take(mode(&key, &value)),
                "key" => out.key = Some(value),
                "cost" => {
                    out.cost = errors.take(cost(&value));
                    cost_value = Some(value);
                }
                "policy" => {
                    out.policy = errors.take(args::policy(&key, &value));
                    policy_given = true;
                }
                _ => {}
            }
        }
        // A misspelled key (`cals`) counts as given here: its own error says what to fix.
        let calls_given = calls_key.is_some() || meant.contains(&"calls");
        let period_given = period_key.is_some() || meant.contains(&"period");
        let policy_given = policy_given || meant.contains(&"policy");
        match (&calls_key, &period_key) {
            (Some(calls), None) if !period_given => errors.error(
                calls,
                "`calls` needs a `period`, e.g. `period = \"1s\"`",
            ),
            (None, Some(period)) if !calls_given => {
                errors.error(period, "`period` needs `calls`, e.g. `calls = 20`")
            }
            (None, None) if !calls_given && !period_given && !policy_given => errors.error(
                place,
                "#[rate_limited] needs `calls` and `period` (e.g. `calls = 20, period = \"10s\"`), or a `policy` that gives them",
            ),
            _ => {}
        }
        // A constant cost above what the inline limit admits per period, when no policy can
        // change the limit.
        if let (Some(Cost::Literal(cost)), Some(calls), Some(value), false) =
            (&out.cost, out.calls, &cost_value, policy_given)
        {
            let fits = rules::check_cost_fits(*cost, calls, out.burst.unwrap_or(0));
            if let Err(message) = fits {
                errors.error(value, message);
            }
        }
        if let (Some(LimitMode::Reject), Some(max_wait)) = (out.mode, &max_wait_key) {
            errors.error(
                max_wait,
                "`max_wait` applies to `mode = \"wait\"`; in reject mode a call without a permit is refused at once",
            );
        }
        out
    }
}

fn count(
    key: &Ident,
    value: &Expr,
    check: fn(&str, u64) -> Result<u32, String>,
) -> syn::Result<u32> {
    let number = args::integer(key, value)?;
    check(&key.to_string(), number).map_err(|msg| syn::Error::new_spanned(value, msg))
}

/// A literal cost is checked now (at least 1, no float, no sign); any other expression is
/// left to the type checker.
fn cost(value: &Expr) -> syn::Result<Cost> {
    let negated = match value {
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => Some(&**expr),
        _ => None,
    };
    match literal(negated.unwrap_or(value)) {
        Some(Lit::Int(int)) if negated.is_some() => Err(syn::Error::new_spanned(
            value,
            format!("`cost` must be at least 1, found -{int}"),
        )),
        Some(Lit::Int(int)) => {
            let number = int.base10_parse::<u64>().map_err(|_| {
                syn::Error::new_spanned(value, format!("`cost` is too large, found {int}"))
            })?;
            rules::check_cost(number)
                .map(Cost::Literal)
                .map_err(|msg| syn::Error::new_spanned(value, msg))
        }
        Some(Lit::Float(float)) => Err(syn::Error::new_spanned(
            value,
            format!("`cost` must be a whole number of permits, found {float}"),
        )),
        Some(other) => Err(syn::Error::new_spanned(
            value,
            format!(
                "`cost` must be an unsigned integer: a literal such as `3`, or an expression over the arguments such as `prompt.len()`, found `{}`",
                quote::ToTokens::to_token_stream(other)
            ),
        )),
        None => Ok(Cost::Expr(value.clone())),
    }
}

fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => literal(&group.expr),
        Expr::Paren(paren) => literal(&paren.expr),
        _ => None,
    }
}

fn mode(key: &Ident, value: &Expr) -> syn::Result<LimitMode> {
    let name = args::name(key, value, rules::LIMIT_MODE_NAMES, "mode")?;
    Ok(LimitMode::from_name(name).unwrap_or_default())
}
