//! `#[bulkhead(...)]`: arguments -> a checked [`BulkheadArgs`].

use std::time::Duration;

use proc_macro2::TokenStream;
use resilience_config::rules;
use syn::LitStr;

use crate::args::{self, Arg, Args};
use crate::diag::Errors;

/// Every key of `#[bulkhead]`.
pub(crate) struct BulkheadArgs {
    pub(crate) max_concurrent: Option<u32>,
    pub(crate) max_wait: Option<Duration>,
    pub(crate) policy: Option<LitStr>,
}

impl BulkheadArgs {
    /// `place`: where to point when a required key is missing (the attribute's arguments, or
    /// the attribute when it has none).
    pub(crate) fn parse(args: Args, place: &TokenStream, errors: &mut Errors) -> BulkheadArgs {
        let mut out = BulkheadArgs {
            max_concurrent: None,
            max_wait: None,
            policy: None,
        };
        // A misspelled key (`max_concurent`) counts as given: its own error says what to fix.
        let meant = args.meant(rules::BULKHEAD_KEYS);
        let mut given_max_concurrent = meant.contains(&"max_concurrent");
        let mut given_policy = meant.contains(&"policy");
        for Arg { key, value } in args.checked("bulkhead", rules::BULKHEAD_KEYS, errors) {
            match key.to_string().as_str() {
                "max_concurrent" => {
                    given_max_concurrent = true;
                    let checked = args::integer(&key, &value).and_then(|n| {
                        rules::check_count("max_concurrent", n)
                            .map_err(|msg| syn::Error::new_spanned(&value, msg))
                    });
                    out.max_concurrent = errors.take(checked);
                }
                "max_wait" => out.max_wait = errors.take(args::duration(&key, &value)),
                "policy" => {
                    given_policy = true;
                    out.policy = errors.take(args::policy(&key, &value));
                }
                _ => {}
            }
        }
        if !given_max_concurrent && !given_policy {
            errors.error(
                place,
                "#[bulkhead] needs `max_concurrent` (e.g. `max_concurrent = 20`), or a `policy` that gives it",
            );
        }
        out
    }
}
