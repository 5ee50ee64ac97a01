//! `#[cached(...)]`: arguments -> a checked [`CachedArgs`].

use std::time::Duration;

use proc_macro2::TokenStream;
use resilience_config::rules;
use syn::{Expr, LitStr};

use crate::args::{self, Arg, Args};
use crate::diag::Errors;

/// Every key of `#[cached]`.
pub(crate) struct CachedArgs {
    pub(crate) ttl: Option<Duration>,
    pub(crate) max_entries: Option<u64>,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) ttl_jitter: Option<f64>,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) key: Option<Expr>,
    pub(crate) stale_while_revalidate: Option<Duration>,
    pub(crate) early_refresh: Option<f64>,
    /// The `stale_while_revalidate` (else `early_refresh`) key, where a body that cannot
    /// refresh in the background (not `Send`) is reported.
    pub(crate) stale_key: Option<proc_macro2::Span>,
    pub(crate) policy: Option<LitStr>,
}

impl CachedArgs {
    /// `place`: where to point when a required key is missing.
    pub(crate) fn parse(args: Args, place: &TokenStream, errors: &mut Errors) -> CachedArgs {
        let mut out = CachedArgs {
            ttl: None,
            max_entries: None,
            max_bytes: None,
            ttl_jitter: None,
            negative_ttl: None,
            key: None,
            stale_while_revalidate: None,
            early_refresh: None,
            stale_key: None,
            policy: None,
        };
        let args = args.without_yaml_only("cached", "cache", rules::CACHE_YAML_ONLY, errors);
        // A misspelled key (`tll`) counts as given: its own error says what to fix.
        let meant = args.meant(rules::CACHE_KEYS);
        let mut given_ttl = meant.contains(&"ttl");
        let mut given_policy = meant.contains(&"policy");
        for Arg { key, value } in args.checked("cached", rules::CACHE_KEYS, errors) {
            match key.to_string().as_str() {
                "ttl" => {
                    given_ttl = true;
                    out.ttl = errors.take(args::duration(&key, &value));
                }
                "max_entries" => {
                    let checked = args::integer(&key, &value).and_then(|n| {
                        rules::check_count("max_entries", n)
                            .map(u64::from)
                            .map_err(|msg| syn::Error::new_spanned(&value, msg))
                    });
                    out.max_entries = errors.take(checked);
                }
                "max_bytes" => out.max_bytes = errors.take(args::bytes(&key, &value)),
                "ttl_jitter" => {
                    let checked = args::number(&key, &value).and_then(|n| {
                        rules::check_fraction("ttl_jitter", n)
                            .map_err(|msg| syn::Error::new_spanned(&value, msg))
                    });
                    out.ttl_jitter = errors.take(checked);
                }
                "negative_ttl" => out.negative_ttl = errors.take(args::duration(&key, &value)),
                "stale_while_revalidate" => {
                    out.stale_while_revalidate = errors.take(args::duration(&key, &value));
                    out.stale_key = Some(key.span());
                }
                "early_refresh" => {
                    let checked = args::number(&key, &value).and_then(|n| {
                        rules::check_early_refresh(n)
                            .map_err(|msg| syn::Error::new_spanned(&value, msg))
                    });
                    out.early_refresh = errors.take(checked);
                    // An early refresh runs in the background as a stale one does.
                    out.stale_key.get_or_insert(key.span());
                }
                "key" => out.key = Some(value),
                "policy" => {
                    given_policy = true;
                    out.policy = errors.take(args::policy(&key, &value));
                }
                _ => {}
            }
        }
        if !given_ttl && !given_policy {
            errors.error(
                place,
                "#[cached] needs a `ttl` (e.g. `ttl = \"60s\"`), or a `policy` that gives it",
            );
        }
        out
    }
}
