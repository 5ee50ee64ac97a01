//! Checked arguments + the function -> tokens. Never fails.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;

use crate::item::FnItem;
use crate::retry::{JitterArg, OnItem, RetryArgs};

fn duration(value: Duration) -> TokenStream {
    let secs = value.as_secs();
    let nanos = value.subsec_nanos();
    quote!(::resilience::__private::Duration::new(#secs, #nanos))
}

/// The `RetrySpec` constant: the runtime defaults with each given key set.
fn spec(args: &RetryArgs) -> TokenStream {
    let mut tokens = quote!(::resilience::__private::RetrySpec::DEFAULT);
    if let Some(attempts) = args.attempts {
        tokens.extend(quote!(.attempts(#attempts)));
    }
    if let Some(backoff) = args.backoff {
        let variant = match backoff {
            "linear" => quote!(Linear),
            "constant" => quote!(Constant),
            _ => quote!(Exponential),
        };
        tokens.extend(quote!(.backoff(::resilience::__private::Backoff::#variant)));
    }
    if let Some(base) = args.base {
        let base = duration(base);
        tokens.extend(quote!(.base(#base)));
    }
    if let Some(factor) = args.factor {
        tokens.extend(quote!(.factor(#factor)));
    }
    if let Some(max_delay) = args.max_delay {
        let max_delay = duration(max_delay);
        tokens.extend(quote!(.max_delay(#max_delay)));
    }
    if let Some(max_elapsed) = args.max_elapsed {
        let max_elapsed = duration(max_elapsed);
        tokens.extend(quote!(.max_elapsed(::core::option::Option::Some(#max_elapsed))));
    }
    if let Some(jitter) = &args.jitter {
        let jitter = match jitter {
            JitterArg::Fraction(fraction) => quote!(Fraction(#fraction)),
            JitterArg::Named("full") => quote!(Full),
            JitterArg::Named("equal") => quote!(Equal),
            JitterArg::Named(_) => quote!(Decorrelated),
        };
        tokens.extend(quote!(.jitter(::resilience::__private::Jitter::#jitter)));
    }
    if let Some(on) = &args.on {
        let mut set = quote!(::resilience::__private::RetryOn::NONE);
        for item in on {
            set.extend(match item {
                OnItem::Timeout => quote!(.timeout()),
                OnItem::Connect => quote!(.connect()),
                OnItem::Transient => quote!(.transient()),
                OnItem::Status(code) => quote!(.status(#code)),
                OnItem::Class(hundreds) => quote!(.class(#hundreds)),
            });
        }
        tokens.extend(quote!(.on(#set)));
    }
    if let Some(retry_after) = args.retry_after {
        tokens.extend(quote!(.retry_after(#retry_after)));
    }
    tokens
}

/// The function with its block replaced by a `static` site and one runtime call.
pub(crate) fn retry(args: &RetryArgs, function: FnItem) -> TokenStream {
    let FnItem {
        item,
        is_async,
        reuse,
        output,
    } = function;
    let syn::ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item;
    let site = quote::format_ident!("__RESILIENCE_RETRY_SITE", span = Span::mixed_site());
    let name = sig.ident.to_string();
    let policy = match &args.policy {
        Some(policy) => quote!(::core::option::Option::Some(#policy)),
        None => quote!(::core::option::Option::None),
    };
    let retry_if = match &args.retry_if {
        Some(path) => {
            // A typed `let` on the path's span: a predicate of the wrong signature is one
            // "expected fn pointer" error on the path, not a mismatch inside `Option::Some`.
            let predicate =
                quote::format_ident!("__resilience_retry_if", span = Span::mixed_site());
            let fn_type = quote::quote_spanned!(path.span()=> fn(&_) -> bool);
            quote! {{
                let #predicate: #fn_type = #path;
                ::core::option::Option::Some(#predicate)
            }}
        }
        None => quote!(::core::option::Option::None),
    };
    let spec = spec(args);
    let rebinds = reuse.iter().map(|binding| binding.rebind());
    let stmts = &block.stmts;
    let fake = quote::format_ident!("__resilience_output", span = Span::mixed_site());
    let call = if is_async {
        quote! {
            ::resilience::__private::retry_async(
                &#site,
                || ::resilience::__private::error_hooks!(#output, #retry_if),
                move || {
                    #(#rebinds)*
                    async move {
                        // Fixes the block's output type before the body is checked, so the
                        // body coerces (`&String` to `&str`) as it did in the original fn.
                        #[allow(
                            unknown_lints,
                            unreachable_code,
                            clippy::diverging_sub_expression,
                            clippy::empty_loop,
                            clippy::let_unit_value,
                            clippy::needless_return,
                            clippy::unreachable
                        )]
                        if false {
                            let #fake: #output = loop {};
                            return #fake;
                        }
                        #(#stmts)*
                    }
                },
            )
            .await
        }
    } else {
        quote! {
            ::resilience::__private::retry_blocking(
                &#site,
                ::resilience::__private::error_hooks!(#output, #retry_if),
                move || -> #output {
                    #(#rebinds)*
                    #(#stmts)*
                },
            )
        }
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            static #site: ::resilience::__private::RetrySite = ::resilience::__private::RetrySite::new(
                ::core::concat!(::core::module_path!(), "::", #name),
                #policy,
                #spec,
            );
            #call
        }
    }
}
