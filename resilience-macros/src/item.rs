//! What the annotated function is: async or not, its receiver, how each argument is reused
//! across tries, and its return type.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, ReturnType, Type};

use crate::diag::Errors;

/// How one binding is handed to each try.
pub(crate) enum Reuse {
    /// An owned argument: each try gets a fresh copy (`Clone`).
    Clone { name: syn::Ident, mutable: bool },
    /// A `&mut` argument of a blocking function: each try reborrows it.
    Reborrow { name: syn::Ident, mutable: bool },
}

/// The parts of the function the expansion needs.
pub(crate) struct FnItem {
    pub(crate) item: ItemFn,
    pub(crate) is_async: bool,
    pub(crate) reuse: Vec<Reuse>,
    /// The return type, checked to be a `Result`.
    pub(crate) output: Type,
}

impl FnItem {
    /// Reads the item; `attribute` names the macro in messages (`retry`).
    ///
    /// A `mut` on a by-value or `&mut` binding moves from the parameter to the binding each
    /// try gets (the parameter itself is only read), so `mut name: String` keeps compiling
    /// without an `unused_mut` warning. `mut` on a parameter is not part of the signature.
    ///
    /// `retried`: a `#[retry]` is in the stack, so the body runs once per try and every
    /// argument must be reusable; without one the body runs once and takes its arguments as
    /// they are.
    ///
    /// `any_return`: every layer accepts any return type (a lone `#[cached]`); otherwise the
    /// function must return a `Result`.
    pub(crate) fn analyze(
        mut item: ItemFn,
        attribute: &str,
        retried: bool,
        any_return: bool,
        errors: &mut Errors,
    ) -> Option<FnItem> {
        let is_async = item.sig.asyncness.is_some();
        let mut reuse = Vec::new();
        let inputs = item.sig.inputs.iter_mut().filter(|_| retried);
        for input in inputs {
            // Only `#[retry]` reuses arguments, so these messages name it.
            let attribute = "retry";
            match input {
                FnArg::Receiver(receiver) => check_receiver(receiver, is_async, attribute, errors),
                FnArg::Typed(typed) => match &*typed.ty {
                    Type::Reference(reference) if reference.mutability.is_none() => {}
                    Type::Reference(syn::TypeReference {
                        and_token,
                        mutability,
                        ..
                    }) if is_async => errors.error(
                        quote!(#and_token #mutability),
                        format!(
                            "`#[{attribute}]` on an `async fn` cannot lend a `&mut` argument to each try: \
                             every try's future would need the exclusive borrow again; \
                             take `&` (with interior mutability) or make the function synchronous"
                        ),
                    ),
                    Type::Reference(_) => match &mut *typed.pat {
                        Pat::Ident(ident) if ident.subpat.is_none() && ident.by_ref.is_none() => {
                            reuse.push(Reuse::Reborrow {
                                name: ident.ident.clone(),
                                mutable: ident.mutability.take().is_some(),
                            });
                        }
                        other => errors.error(
                            other,
                            format!("`#[{attribute}]` needs a plain name for a `&mut` argument"),
                        ),
                    },
                    _ => collect_bindings(&mut typed.pat, &mut reuse),
                },
            }
        }
        let output = match &item.sig.output {
            ReturnType::Type(_, ty) if any_return || is_result(ty) => Some((**ty).clone()),
            ReturnType::Default if any_return => Some(syn::parse_quote!(())),
            ReturnType::Type(_, ty) => {
                errors.error(
                    ty,
                    format!("#[{attribute}] needs a function returning `Result<T, E>`"),
                );
                None
            }
            ReturnType::Default => {
                errors.push(syn::Error::new(
                    item.sig.ident.span(),
                    format!("#[{attribute}] needs a function returning `Result<T, E>`; this one returns `()`"),
                ));
                None
            }
        };
        if let Some(ty) = &output {
            if let Some(span) = impl_trait_span(ty) {
                errors.push(syn::Error::new(
                    span,
                    format!("#[{attribute}] cannot name a return type containing `impl Trait`; name the type"),
                ));
            }
        }
        Some(FnItem {
            output: output?,
            is_async,
            reuse,
            item,
        })
    }
}

fn check_receiver(receiver: &syn::Receiver, is_async: bool, attribute: &str, errors: &mut Errors) {
    match &*receiver.ty {
        Type::Reference(reference) if reference.mutability.is_none() => {}
        Type::Reference(_) if !is_async => {}
        Type::Reference(_) => errors.error(
            receiver,
            format!(
                "`#[{attribute}]` on an `async fn` cannot lend `&mut self` to each try: \
                 every try's future would need the exclusive borrow again; \
                 take `&self` (with interior mutability) or make the method synchronous"
            ),
        ),
        _ => errors.error(
            receiver,
            format!(
                "`#[{attribute}]` calls the method again for each try, so it cannot take `self` by value; \
                 take `&self`"
            ),
        ),
    }
}

/// Every by-value binding of a pattern (`a`, or `a` and `b` in `(a, b)`), to be cloned per try.
/// Takes the `mut` of each one: the per-try binding gets it instead.
fn collect_bindings(pat: &mut Pat, out: &mut Vec<Reuse>) {
    match pat {
        Pat::Ident(ident) => {
            if ident.by_ref.is_none() {
                out.push(Reuse::Clone {
                    name: ident.ident.clone(),
                    mutable: ident.mutability.take().is_some(),
                });
            }
            if let Some((_, sub)) = &mut ident.subpat {
                collect_bindings(sub, out);
            }
        }
        Pat::Tuple(tuple) => tuple
            .elems
            .iter_mut()
            .for_each(|p| collect_bindings(p, out)),
        Pat::TupleStruct(tuple) => tuple
            .elems
            .iter_mut()
            .for_each(|p| collect_bindings(p, out)),
        Pat::Struct(strukt) => strukt
            .fields
            .iter_mut()
            .for_each(|field| collect_bindings(&mut field.pat, out)),
        Pat::Slice(slice) => slice
            .elems
            .iter_mut()
            .for_each(|p| collect_bindings(p, out)),
        Pat::Reference(reference) => collect_bindings(&mut reference.pat, out),
        Pat::Paren(paren) => collect_bindings(&mut paren.pat, out),
        Pat::Type(typed) => collect_bindings(&mut typed.pat, out),
        _ => {}
    }
}

/// What a return type is, by its last path segment (`io::Result<T>` and `anyhow::Result<T>`
/// are results): what `#[cached]` stores of it.
#[derive(Clone, Copy)]
pub(crate) enum Returns {
    Result,
    Option,
    Other,
}

impl Returns {
    pub(crate) fn of(ty: &Type) -> Returns {
        match ty {
            Type::Path(path) => match path.path.segments.last() {
                Some(segment) if segment.ident == "Result" => Returns::Result,
                Some(segment) if segment.ident == "Option" => Returns::Option,
                _ => Returns::Other,
            },
            Type::Group(group) => Returns::of(&group.elem),
            Type::Paren(paren) => Returns::of(&paren.elem),
            _ => Returns::Other,
        }
    }
}

/// `Result<..>` by its last path segment, so `io::Result<T>` and `anyhow::Result<T>` count.
fn is_result(ty: &Type) -> bool {
    matches!(Returns::of(ty), Returns::Result)
}

fn impl_trait_span(ty: &Type) -> Option<Span> {
    struct Finder(Option<Span>);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, node: &'ast syn::TypeImplTrait) {
            self.0.get_or_insert(node.span());
        }
    }
    let mut finder = Finder(None);
    syn::visit::visit_type(&mut finder, ty);
    finder.0
}

impl Reuse {
    /// How one try binds this argument: the pattern and the value, for a `let`.
    pub(crate) fn rebind(&self) -> (TokenStream, TokenStream) {
        match self {
            Reuse::Clone { name, mutable } => {
                let mutability = mutable.then(|| quote!(mut));
                // The borrow carries the argument's span and the call does not: a non-`Clone`
                // argument gets `Reuse`'s own message and note on the argument, without
                // rustc's "consider borrowing here" (which would suggest `&name: Type`).
                let borrow = quote::quote_spanned!(name.span()=> &#name);
                (
                    quote!(#mutability #name),
                    quote!(__resilience_rt::Reuse::reuse(#borrow)),
                )
            }
            Reuse::Reborrow { name, mutable } => {
                let mutability = mutable.then(|| quote!(mut));
                (quote!(#mutability #name), quote!(&mut *#name))
            }
        }
    }
}

/// Whether the function's future can own everything it uses and outlive the call: no
/// receiver, no generics, no borrowed or `impl Trait` argument. `#[cached]` with
/// `stale_while_revalidate` moves such a function's refresh to a spawned task; any other
/// function refreshes in the caller that found the entry stale.
pub(crate) fn owns_its_arguments(sig: &syn::Signature) -> bool {
    struct Borrows(bool);
    impl<'ast> syn::visit::Visit<'ast> for Borrows {
        fn visit_type_reference(&mut self, _: &'ast syn::TypeReference) {
            self.0 = true;
        }
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
        fn visit_lifetime(&mut self, _: &'ast syn::Lifetime) {
            self.0 = true;
        }
    }
    if !sig.generics.params.is_empty() {
        return false;
    }
    sig.inputs.iter().all(|input| match input {
        FnArg::Receiver(_) => false,
        FnArg::Typed(typed) => {
            let mut borrows = Borrows(false);
            syn::visit::visit_type(&mut borrows, &typed.ty);
            !borrows.0
        }
    })
}
