//! `#[bulkhead(...)]`: arguments -> a checked [`BulkheadArgs`].

use std::time::Duration;

use syn::LitStr;

use crate::args::{self, Arg, Args};
use crate::diag::Errors;
use crate::rules;

/// Every key of `#[bulkhead]`.
pub(crate) struct BulkheadArgs {
    pub(crate) max_concurrent: Option<u32>,
    pub(crate) max_wait: Option<Duration>,
    pub(crate) policy: Option<LitStr>,
}

impl BulkheadArgs {
    /// `span`: where to point when a required key is missing.
    pub(crate) fn parse(args: Args, span: proc_macro2::Span, errors: &mut Errors) -> BulkheadArgs {
        let mut out = BulkheadArgs {
            max_concurrent: None,
            max_wait: None,
            policy: None,
        };
        let mut given_max_concurrent = false;
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
                "policy" => out.policy = errors.take(args::policy(&key, &value)),
                _ => {}
            }
        }
        if !given_max_concurrent && out.policy.is_none() {
            errors.push(syn::Error::new(
                span,
                "#[bulkhead] needs `max_concurrent` (e.g. `max_concurrent = 20`), or a `policy` that gives it",
            ));
        }
        out
    }
}
