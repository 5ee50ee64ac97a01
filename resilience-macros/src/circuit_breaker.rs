//! `#[circuit_breaker(...)]`: arguments -> a checked [`BreakerArgs`].

use std::time::Duration;

use resilience_config::rules;
use syn::LitStr;

use crate::args::{self, Arg, Args};
use crate::diag::Errors;

/// Every key of `#[circuit_breaker]`; all optional (the defaults are the runtime's).
#[derive(Default)]
pub(crate) struct BreakerArgs {
    pub(crate) failure_rate: Option<f64>,
    pub(crate) min_calls: Option<u32>,
    pub(crate) window: Option<u32>,
    pub(crate) open_for: Option<Duration>,
    pub(crate) half_open_calls: Option<u32>,
    pub(crate) failure_if: Option<syn::Path>,
    pub(crate) policy: Option<LitStr>,
    /// No breaker until the policy's section applies (`#[resilient]` without one).
    pub(crate) off: bool,
}

impl BreakerArgs {
    pub(crate) fn parse(args: Args, errors: &mut Errors) -> BreakerArgs {
        let mut out = BreakerArgs {
            failure_rate: None,
            min_calls: None,
            window: None,
            open_for: None,
            half_open_calls: None,
            failure_if: None,
            policy: None,
            off: false,
        };
        let mut min_calls_value = None;
        for Arg { key, value } in
            args.checked("circuit_breaker", rules::CIRCUIT_BREAKER_KEYS, errors)
        {
            let name = key.to_string();
            let count = |errors: &mut Errors| {
                let checked = args::integer(&key, &value).and_then(|n| {
                    rules::check_count(&name, n).map_err(|msg| syn::Error::new_spanned(&value, msg))
                });
                errors.take(checked)
            };
            match name.as_str() {
                "failure_rate" => {
                    let checked = args::number(&key, &value).and_then(|n| {
                        rules::check_fraction("failure_rate", n)
                            .map_err(|msg| syn::Error::new_spanned(&value, msg))
                    });
                    out.failure_rate = errors.take(checked);
                }
                "min_calls" => {
                    out.min_calls = count(errors);
                    min_calls_value = Some(value.clone());
                }
                "window" => out.window = count(errors),
                "half_open_calls" => out.half_open_calls = count(errors),
                "open_for" => {
                    let checked = args::duration(&key, &value).and_then(|open_for| {
                        if open_for.is_zero() {
                            Err(syn::Error::new_spanned(
                                &value,
                                "`open_for` must be longer than zero",
                            ))
                        } else {
                            Ok(open_for)
                        }
                    });
                    out.open_for = errors.take(checked);
                }
                "failure_if" => out.failure_if = errors.take(args::path(&key, &value)),
                "policy" => out.policy = errors.take(args::policy(&key, &value)),
                _ => {}
            }
        }
        let window = out.window.unwrap_or(20);
        if let (Some(min_calls), Some(value)) = (out.min_calls, &min_calls_value) {
            if min_calls > window {
                errors.error(
                    value,
                    format!(
                        "`min_calls` ({min_calls}) cannot be more than `window` ({window}): the breaker would never open"
                    ),
                );
            }
        }
        out
    }
}
