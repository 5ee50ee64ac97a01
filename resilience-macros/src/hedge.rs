//! `#[hedge(...)]`: arguments -> a checked [`HedgeArgs`].

use proc_macro2::TokenStream;
use resilience_config::hedge::HedgeAfter;
use resilience_config::rules;
use syn::LitStr;

use crate::args::{self, Arg, Args};
use crate::diag::Errors;

/// Every key of `#[hedge]`; `None` keeps the runtime default.
pub(crate) struct HedgeArgs {
    pub(crate) after: Option<HedgeAfter>,
    pub(crate) max: Option<u32>,
    pub(crate) budget: Option<LitStr>,
    pub(crate) policy: Option<LitStr>,
}

impl HedgeArgs {
    /// `place`: where to point when `idempotent = true` is missing.
    pub(crate) fn parse(args: Args, place: &TokenStream, errors: &mut Errors) -> HedgeArgs {
        let mut out = HedgeArgs {
            after: None,
            max: None,
            budget: None,
            policy: None,
        };
        // A misspelled `idempotent` counts as given: its own error says what to fix.
        let mut idempotent = args.meant(rules::HEDGE_KEYS).contains(&"idempotent");
        for Arg { key, value } in args.checked("hedge", rules::HEDGE_KEYS, errors) {
            match key.to_string().as_str() {
                "after" => out.after = errors.take(after(&key, &value)),
                "max" => {
                    let checked = args::integer(&key, &value).and_then(|n| {
                        rules::check_hedge_max(n)
                            .map_err(|msg| syn::Error::new_spanned(&value, msg))
                    });
                    out.max = errors.take(checked);
                }
                "idempotent" => match errors.take(args::boolean(&key, &value)) {
                    Some(true) | None => {}
                    Some(false) => {
                        errors.error(
                            &value,
                            "a hedged call is sent more than once at a time: only an idempotent call may be hedged; remove `#[hedge]`",
                        );
                    }
                },
                "budget" => out.budget = errors.take(args::policy(&key, &value)),
                "policy" => out.policy = errors.take(args::policy(&key, &value)),
                _ => {}
            }
            idempotent = idempotent || key == "idempotent";
        }
        if !idempotent {
            errors.error(
                place,
                "#[hedge] sends the call again while the first attempt may still run: add `idempotent = true` if doing the call twice is safe",
            );
        }
        out
    }
}

/// `"p95"` (a percentile of the site's latency) or a duration.
fn after(key: &syn::Ident, value: &syn::Expr) -> syn::Result<HedgeAfter> {
    let text = args::string(key, value)?;
    if let Some(after) = HedgeAfter::percentile(&text.value()) {
        return Ok(after);
    }
    if text.value().starts_with('p') {
        return Err(syn::Error::new_spanned(
            &text,
            format!(
                "unknown percentile `{}` for `after`; expected `\"p50\"` to `\"p99\"`, or a duration such as `\"100ms\"`",
                text.value()
            ),
        ));
    }
    let delay = args::duration(key, value)?;
    if delay.is_zero() {
        return Err(syn::Error::new_spanned(
            &text,
            "`after` must be longer than zero: a hedge sent at once is a second call; use a delay such as `\"100ms\"`",
        ));
    }
    Ok(HedgeAfter::Delay(delay))
}
