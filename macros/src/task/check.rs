//! The rules a task function's signature must follow, each reported at the smallest span.

use syn::visit::Visit;

use crate::diag::Diagnostics;

/// Checks what the signature as a whole must not be.
pub(crate) fn signature(sig: &syn::Signature, diag: &mut Diagnostics) {
    // A task runs on a worker thread and returns its value: no `async`.
    if let Some(asyncness) = &sig.asyncness {
        diag.at(
            asyncness,
            "a task cannot be `async`; write a plain `fn` (tasks run on worker threads)",
        );
    }
    // The generated code calls the function safely.
    if let syn::Safety::Unsafe(unsafety) = &sig.safety {
        diag.at(
            unsafety,
            "a task cannot be `unsafe`; call the unsafe code inside a safe task function",
        );
    }
    // A task's types are fixed when the pipeline is built, so it cannot be generic.
    if !sig.generics.params.is_empty() {
        diag.at(
            &sig.generics,
            "a task cannot be generic; write one task per concrete type",
        );
    } else if let Some(where_clause) = &sig.generics.where_clause {
        diag.at(where_clause, "a task cannot have a `where` clause");
    }
    if let Some(variadic) = &sig.variadic {
        diag.at(variadic, "a task cannot be variadic");
    }
    for input in &sig.inputs {
        match input {
            // A task is a free function: nothing to call it on.
            syn::FnArg::Receiver(receiver) => diag.at(
                receiver,
                "a task cannot take `self`; make it a free function of its inputs and parameters",
            ),
            syn::FnArg::Typed(arg) => argument(arg, diag),
        }
    }
    // The output is stored and handed to consumers by type: it must be a concrete type.
    if let syn::ReturnType::Type(_, ty) = &sig.output {
        for span in impl_traits(ty) {
            diag.push(syn::Error::new(
                span,
                "a task cannot return `impl Trait`; name the concrete output type",
            ));
        }
    }
}

/// Checks the `#[helper]` attributes found on the function, which it cannot have.
pub(crate) fn helper_attributes(attrs: &[syn::Attribute], diag: &mut Diagnostics) {
    // A helper has a struct of its own under the function's name, as a task does.
    for attr in attrs {
        diag.at(
            attr,
            "a function cannot be both a task and a helper; move the shared code into a helper the task names in `uses`",
        );
    }
}

/// Whether `attr` is `#[helper]` (by any path), which a task cannot have.
pub(crate) fn is_helper(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "helper")
}

/// Checks one argument's pattern and type.
fn argument(arg: &syn::PatType, diag: &mut Diagnostics) {
    // The argument's name becomes the parameter's field or the input's name.
    match &*arg.pat {
        syn::Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {}
        pat => diag.at(
            pat,
            "a task argument must be a plain name, like `rows: &Vec<Row>`",
        ),
    }
    // Inputs are shared with every other consumer of the same upstream output.
    if let syn::Type::Reference(reference) = &*arg.ty
        && let Some(mutability) = &reference.mutability
    {
        let and = &reference.and_token;
        diag.at(
            quote::quote!(#and #mutability),
            "a task cannot take `&mut`: inputs are shared with the other consumers; take `&T` and clone what you change",
        );
        return;
    }
    // A parameter is stored, hashed and sent to workers: it needs a concrete type.
    for span in impl_traits(&arg.ty) {
        diag.push(syn::Error::new(
            span,
            "`impl Trait` is not allowed in a task argument; name a concrete type",
        ));
    }
}

/// The spans of every `impl Trait` inside `ty`.
pub(crate) fn impl_traits(ty: &syn::Type) -> Vec<proc_macro2::Span> {
    struct Finder(Vec<proc_macro2::Span>);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, node: &'ast syn::TypeImplTrait) {
            self.0.push(node.impl_token.span);
        }
    }
    let mut finder = Finder(Vec::new());
    finder.visit_type(ty);
    finder.0
}
