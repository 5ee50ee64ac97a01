//! `#[circuit_breaker(...)]`: arguments -> a checked [`BreakerArgs`].

use std::time::Duration;

use resilience_config::breaker::{BreakerSpec, WindowType};
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
    pub(crate) window_type: Option<WindowType>,
    pub(crate) open_for: Option<Duration>,
    pub(crate) backoff: Option<f64>,
    pub(crate) max_open_for: Option<Duration>,
    pub(crate) slow_call: Option<Duration>,
    pub(crate) slow_call_rate: Option<f64>,
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
            window_type: None,
            open_for: None,
            backoff: None,
            max_open_for: None,
            slow_call: None,
            slow_call_rate: None,
            half_open_calls: None,
            failure_if: None,
            policy: None,
            off: false,
        };
        let (mut min_calls_value, mut max_open_for_value) = (None, None);
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
            let number = |errors: &mut Errors, rule: fn(&str, f64) -> Result<f64, String>| {
                let checked = args::number(&key, &value).and_then(|n| {
                    rule(&name, n).map_err(|msg| syn::Error::new_spanned(&value, msg))
                });
                errors.take(checked)
            };
            let positive = |errors: &mut Errors| {
                let checked = args::duration(&key, &value).and_then(|duration| {
                    if duration.is_zero() {
                        Err(syn::Error::new_spanned(
                            &value,
                            format!("`{name}` must be longer than zero"),
                        ))
                    } else {
                        Ok(duration)
                    }
                });
                errors.take(checked)
            };
            match name.as_str() {
                "failure_rate" | "slow_call_rate" => {
                    let rate = number(errors, rules::check_fraction);
                    *if name == "failure_rate" {
                        &mut out.failure_rate
                    } else {
                        &mut out.slow_call_rate
                    } = rate;
                }
                "backoff" => out.backoff = number(errors, rules::check_growth),
                "window_type" => {
                    let checked = args::name(&key, &value, rules::WINDOW_TYPE_NAMES, "window type");
                    out.window_type = errors.take(checked).and_then(WindowType::from_name);
                }
                "slow_call" => out.slow_call = positive(errors),
                "max_open_for" => {
                    out.max_open_for = positive(errors);
                    max_open_for_value = Some(value.clone());
                }
                "min_calls" => {
                    out.min_calls = count(errors);
                    min_calls_value = Some(value.clone());
                }
                "window" => out.window = count(errors),
                "half_open_calls" => out.half_open_calls = count(errors),
                "open_for" => out.open_for = positive(errors),
                "failure_if" => out.failure_if = errors.take(args::path(&key, &value)),
                "policy" => out.policy = errors.take(args::policy(&key, &value)),
                _ => {}
            }
        }
        let window = out.window.unwrap_or(20);
        // A time window counts seconds, not calls: any `min_calls` can be reached in it.
        let counts_calls = out.window_type != Some(WindowType::Time);
        if let (Some(min_calls), Some(value), true) =
            (out.min_calls, &min_calls_value, counts_calls)
        {
            if min_calls > window {
                errors.error(
                    value,
                    format!(
                        "`min_calls` ({min_calls}) cannot be more than `window` ({window}): the breaker would never open"
                    ),
                );
            }
        }
        // With a policy and no `open_for` here, the policy may set the `open_for` it caps.
        let open_for = out.open_for.or(out
            .policy
            .is_none()
            .then_some(BreakerSpec::DEFAULT.open_for));
        if let (Some(open_for), Some(max_open_for), Some(value)) =
            (open_for, out.max_open_for, &max_open_for_value)
        {
            if let Err(message) = rules::check_max_open_for(open_for, max_open_for) {
                errors.error(value, message);
            }
        }
        out
    }
}
