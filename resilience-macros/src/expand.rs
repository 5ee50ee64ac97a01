//! Checked layers + the function -> tokens. Never fails.
//!
//! The function keeps its attributes and signature; its block becomes one `static` site per
//! layer, the bindings every layer shares, and one nested call into
//! `::resilience::__private` (see [`crate::layer`] for each layer's part).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};

use crate::item::FnItem;
use crate::layer::{Cx, Layer};

/// The function with its block replaced; `layers` are outermost first.
pub(crate) fn stack(layers: &[Layer], function: FnItem) -> TokenStream {
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
    let cx = Cx::new(is_async, &output, &sig, &reuse);
    let mut call = cx.body(&block.stmts);
    let mut sites = Vec::new();
    let mut cache = None;
    let mut ready = false;
    for (index, layer) in layers.iter().enumerate().rev() {
        let site = format_ident!("__RESILIENCE_SITE_{}", index, span = Span::mixed_site());
        let part = layer.expand(&cx, &site, call, index == 0);
        sites.push(part.site);
        cache = part.cache.or(cache);
        call = part.call;
        ready = part.ready;
    }
    sites.reverse();
    let preamble = cx.preamble(layers);
    let call = if ready { call } else { cx.outermost(call) };
    let handle = cache.map(|site| cache_handle(&vis, &sig, site));
    let alias = alias();
    quote! {
        #(#attrs)*
        #vis #sig {
            #alias
            #(#sites)*
            #preamble
            #call
        }
        #handle
    }
}

/// The invalidation handle: an item of its own beside the function (a free fn, or an
/// associated fn in an impl), reaching the same cache through the site id.
fn cache_handle(vis: &syn::Visibility, sig: &syn::Signature, site: TokenStream) -> TokenStream {
    let name = &sig.ident;
    let handle_name = format_ident!("{}_cache", name);
    let static_name = format_ident!("__RESILIENCE_CACHE", span = Span::mixed_site());
    let alias = alias();
    let doc = format!(
        "The cache of `{name}`: `invalidate(&key)` removes one entry (the key is the tuple of \
         the owned arguments, or the `key` expression's value), `invalidate_all()` every \
         entry, and `counts()` reads its counters."
    );
    quote! {
        #[doc = #doc]
        #[allow(dead_code)]
        #vis fn #handle_name() -> &'static ::resilience::__private::CacheSite {
            #alias
            static #static_name: __resilience_rt::CacheSite = #site;
            &#static_name
        }
    }
}

/// `use ::resilience::__private as __resilience_rt;`: every path of the generated code goes
/// through this one absolute path. Written out at each use (25 characters), the paths made
/// rustc's expansion of a four-attribute stack 55 lines long, 40 with the alias (see the
/// crate's docs). The name is an item's, resolved where the function is, as the `static`
/// sites' are; the `__resilience_` prefix keeps it from meeting a user's names.
fn alias() -> TokenStream {
    quote!(
        use ::resilience::__private as __resilience_rt;
    )
}
