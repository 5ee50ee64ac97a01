//! `#[fallback(path::to_fn)]`: its one argument -> a checked [`FallbackArgs`].

use proc_macro2::TokenStream;

use crate::diag::Errors;

/// The function called with the final error.
pub(crate) struct FallbackArgs {
    pub(crate) path: syn::Path,
}

impl FallbackArgs {
    /// `tokens`: the attribute's arguments; `place`: where to point when there are none.
    pub(crate) fn parse(
        tokens: TokenStream,
        place: &TokenStream,
        errors: &mut Errors,
    ) -> Option<FallbackArgs> {
        if tokens.is_empty() {
            errors.error(
                place,
                "`#[fallback]` needs the function to call with the final error, e.g. `#[fallback(cached_user)]`",
            );
            return None;
        }
        match syn::parse2::<syn::Path>(tokens.clone()) {
            Ok(path) => Some(FallbackArgs { path }),
            Err(_) => {
                errors.error(
                    tokens,
                    "`#[fallback]` expects the path of a function taking the error, e.g. `#[fallback(cached_user)]` or `#[fallback(defaults::user)]`",
                );
                None
            }
        }
    }
}
