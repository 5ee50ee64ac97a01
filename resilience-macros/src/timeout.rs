//! `#[timeout("3s")]` / `#[timeout(duration = "3s")]`: arguments -> a checked [`TimeoutArgs`].

use std::time::Duration;

use proc_macro2::TokenStream;
use resilience_config::rules;
use syn::LitStr;

use crate::args::{self, Arg, Args};
use crate::diag::Errors;

/// The keys of `#[timeout]`.
pub(crate) struct TimeoutArgs {
    pub(crate) duration: Option<Duration>,
    pub(crate) policy: Option<LitStr>,
    /// No limit until the policy gives one (`#[resilient]` without `timeout`).
    pub(crate) off: bool,
}

impl TimeoutArgs {
    /// `tokens`: the attribute's arguments, a lone duration string or `key = value` pairs.
    pub(crate) fn parse(
        tokens: TokenStream,
        place: &TokenStream,
        errors: &mut Errors,
    ) -> Option<TimeoutArgs> {
        if let Ok(literal) = syn::parse2::<LitStr>(tokens.clone()) {
            let duration =
                resilience_config::duration::parse_duration(&literal.value()).map_err(|_| {
                    syn::Error::new(
                        literal.span(),
                        format!(
                            "invalid duration `{:?}` for `#[timeout]`; {}",
                            literal.value(),
                            resilience_config::duration::DURATION_EXAMPLES
                        ),
                    )
                });
            let duration = errors.take(duration.and_then(|d| positive(d, &literal)))?;
            return Some(TimeoutArgs {
                duration: Some(duration),
                policy: None,
                off: false,
            });
        }
        let args = errors.take(syn::parse2::<Args>(tokens))?;
        let mut out = TimeoutArgs {
            duration: None,
            policy: None,
            off: false,
        };
        let meant = args.meant(rules::TIMEOUT_KEYS);
        let mut given = !meant.is_empty();
        for Arg { key, value } in args.checked("timeout", rules::TIMEOUT_KEYS, errors) {
            given = true;
            match key.to_string().as_str() {
                "duration" => {
                    let checked = args::duration(&key, &value).and_then(|d| {
                        if d.is_zero() {
                            Err(syn::Error::new_spanned(
                                &value,
                                "`#[timeout]` must be longer than zero",
                            ))
                        } else {
                            Ok(d)
                        }
                    });
                    out.duration = errors.take(checked);
                }
                "policy" => out.policy = errors.take(args::policy(&key, &value)),
                _ => {}
            }
        }
        if !given {
            errors.error(
                place,
                "#[timeout] needs a duration, e.g. `#[timeout(\"3s\")]`, or a `policy` that gives it",
            );
        }
        Some(out)
    }
}

fn positive(duration: Duration, literal: &LitStr) -> syn::Result<Duration> {
    if duration.is_zero() {
        Err(syn::Error::new(
            literal.span(),
            "`#[timeout]` must be longer than zero",
        ))
    } else {
        Ok(duration)
    }
}
