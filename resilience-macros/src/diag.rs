//! Error accumulation: every problem in one build, and the original item kept on error.

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Collects errors so that one build reports all of them.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    pub(crate) fn error(&mut self, span: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(span, message));
    }

    /// Keeps the value of a check, or records its error.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.combined.map_or(Ok(()), Err)
    }
}

/// On error, emits the original item unchanged next to the errors, so callers of the
/// function still type-check and only the real problem is reported.
pub(crate) fn or_original(item: TokenStream, result: syn::Result<TokenStream>) -> TokenStream {
    match result {
        Ok(tokens) => tokens,
        Err(error) => {
            let errors = error.to_compile_error();
            quote::quote! { #errors #item }
        }
    }
}
