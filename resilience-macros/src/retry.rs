//! `#[retry(...)]`: arguments -> a checked [`RetryArgs`].

use std::time::Duration;

use resilience_config::retry::{Backoff, Jitter};
use resilience_config::rules;
use syn::{Expr, Ident, Lit, LitStr};

use crate::args::{self, Arg, Args};
use crate::diag::Errors;

/// A checked `on` item.
pub(crate) enum OnItem {
    Timeout,
    Connect,
    Body,
    Transient,
    Status(u16),
    Class(u16),
}

/// Every key of `#[retry]`; `None` keeps the runtime default.
#[derive(Default)]
pub(crate) struct RetryArgs {
    pub(crate) attempts: Option<u32>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) base: Option<Duration>,
    pub(crate) factor: Option<f64>,
    pub(crate) max_delay: Option<Duration>,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) jitter: Option<Jitter>,
    pub(crate) on: Option<Vec<OnItem>>,
    pub(crate) retry_if: Option<syn::Path>,
    /// A `fn(&T) -> bool` deciding that an `Ok` value is retried.
    pub(crate) retry_if_ok: Option<syn::Path>,
    pub(crate) retry_after: Option<bool>,
    /// The retry budget the site draws on, by name.
    pub(crate) budget: Option<LitStr>,
    pub(crate) policy: Option<LitStr>,
    /// No retry until the policy's `retry` section applies (`#[resilient]` without `retry(...)`).
    pub(crate) off: bool,
}

impl RetryArgs {
    pub(crate) fn parse(args: Args, errors: &mut Errors) -> RetryArgs {
        let mut out = RetryArgs::default();
        let mut on_key: Option<Ident> = None;
        let mut retry_if_key: Option<Ident> = None;
        for Arg { key, value } in args.checked("retry", rules::RETRY_KEYS, errors) {
            let name = key.to_string();
            match name.as_str() {
                "attempts" => {
                    let checked = args::integer(&key, &value).and_then(|n| {
                        rules::check_attempts(n).map_err(|msg| syn::Error::new_spanned(&value, msg))
                    });
                    out.attempts = errors.take(checked);
                }
                "backoff" => out.backoff = errors.take(backoff(&key, &value)),
                "base" => out.base = errors.take(args::duration(&key, &value)),
                "max_delay" => out.max_delay = errors.take(args::duration(&key, &value)),
                "max_elapsed" => out.max_elapsed = errors.take(args::duration(&key, &value)),
                "factor" => {
                    let checked = args::number(&key, &value).and_then(|n| {
                        rules::check_factor(n).map_err(|msg| syn::Error::new_spanned(&value, msg))
                    });
                    out.factor = errors.take(checked);
                }
                "jitter" => out.jitter = errors.take(jitter(&key, &value)),
                "on" => {
                    out.on = Some(on_items(&value, errors));
                    on_key = Some(key);
                }
                "retry_if" => {
                    out.retry_if = errors.take(args::path(&key, &value));
                    retry_if_key = Some(key);
                }
                "retry_if_ok" => out.retry_if_ok = errors.take(args::path(&key, &value)),
                "retry_after" => out.retry_after = errors.take(args::boolean(&key, &value)),
                "budget" => out.budget = errors.take(args::policy(&key, &value)),
                "policy" => out.policy = errors.take(args::policy(&key, &value)),
                _ => {}
            }
        }
        if let (Some(_), Some(retry_if)) = (&on_key, &retry_if_key) {
            errors.error(
                retry_if,
                "`retry_if` replaces `on`; give one of them, not both",
            );
        }
        out
    }
}

fn backoff(key: &Ident, value: &Expr) -> syn::Result<Backoff> {
    let text = args::string(key, value)?;
    let name = text.value();
    match Backoff::from_name(&name) {
        Some(backoff) => Ok(backoff),
        None => {
            let hint = match rules::did_you_mean(&name, rules::BACKOFF_NAMES) {
                Some(close) => format!("; did you mean `\"{close}\"`?"),
                None => String::new(),
            };
            Err(syn::Error::new_spanned(
                &text,
                format!(
                    "unknown backoff `{name:?}`; expected `\"exp\"`, `\"linear\"` or `\"constant\"`{hint}"
                ),
            ))
        }
    }
}

fn jitter(key: &Ident, value: &Expr) -> syn::Result<Jitter> {
    if let Ok(text) = args::string(key, value) {
        let name = text.value();
        return match Jitter::from_name(&name) {
            Some(jitter) => Ok(jitter),
            None => {
                let hint = match rules::did_you_mean(&name, rules::JITTER_NAMES) {
                    Some(close) => format!("did you mean `\"{close}\"`?"),
                    None => "expected a fraction such as `0.2`, or `\"full\"`, `\"equal\"` or `\"decorrelated\"`"
                        .to_string(),
                };
                Err(syn::Error::new_spanned(
                    &text,
                    format!("unknown jitter `{name:?}`; {hint}"),
                ))
            }
        };
    }
    let fraction = args::number(key, value).map_err(|_| {
        syn::Error::new_spanned(
            value,
            "`jitter` expects a fraction such as `0.2`, or `\"full\"`, `\"equal\"` or `\"decorrelated\"`",
        )
    })?;
    rules::check_jitter(fraction)
        .map(Jitter::Fraction)
        .map_err(|msg| syn::Error::new_spanned(value, msg))
}

fn on_items(value: &Expr, errors: &mut Errors) -> Vec<OnItem> {
    let mut out = Vec::new();
    let items = args::items(value);
    if items.is_empty() {
        errors.push(syn::Error::new(
            args::span_of(value),
            "`on` is empty, so nothing would be retried; list error kinds such as `[Timeout, 503]`, or set `attempts = 1`",
        ));
    }
    for item in items {
        if let Some(checked) = errors.take(on_item(item)) {
            out.push(checked);
        }
    }
    out
}

fn on_item(item: &Expr) -> syn::Result<OnItem> {
    match item {
        Expr::Path(path) if path.qself.is_none() && path.path.get_ident().is_some() => {
            let ident = path
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match ident.as_str() {
                "Timeout" => Ok(OnItem::Timeout),
                "Connect" => Ok(OnItem::Connect),
                "Body" => Ok(OnItem::Body),
                "Transient" => Ok(OnItem::Transient),
                other => {
                    let hint = match rules::did_you_mean(other, rules::ERROR_KIND_NAMES) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => "expected `Timeout`, `Connect`, `Body`, `Transient`, a status code such as `503`, or a class such as `\"5xx\"`".to_string(),
                    };
                    Err(syn::Error::new_spanned(
                        item,
                        format!("unknown error kind `{other}` in `on`; {hint}"),
                    ))
                }
            }
        }
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => {
            let code = int.base10_parse::<u64>().unwrap_or(u64::MAX);
            rules::check_status(code)
                .map(OnItem::Status)
                .map_err(|msg| syn::Error::new_spanned(item, msg))
        }
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(text),
            ..
        }) => {
            let name = text.value();
            rules::status_class(&name).map(OnItem::Class).ok_or_else(|| {
                syn::Error::new_spanned(
                    item,
                    format!(
                        "unknown status class `{name:?}` in `on`; expected one of {}, or a status code such as `503`",
                        args::list(&["\"1xx\"", "\"2xx\"", "\"3xx\"", "\"4xx\"", "\"5xx\""])
                    ),
                )
            })
        }
        other => Err(syn::Error::new_spanned(
            other,
            "`on` expects `Timeout`, `Connect`, `Body`, `Transient`, a status code such as `503`, or a class such as `\"5xx\"`",
        )),
    }
}
