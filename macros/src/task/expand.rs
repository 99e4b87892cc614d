//! Generates a task's items: the user's function untouched, the parameter struct, its
//! `Task` impl, the `node` constructor and the registry entry.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::parse::{Output, Role, TaskFn};
use crate::fingerprint::fingerprint;
use crate::paths;

pub(crate) fn task(task: &TaskFn<'_>) -> TokenStream {
    let func = task.func;
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let krate = paths::krate(task.options.krate.as_ref());
    let pw = paths::private(task.options.krate.as_ref());
    let serde_path = format!("{}::serde", pw).replace(' ', "");

    let params: Vec<_> = task
        .args
        .iter()
        .filter_map(|a| match &a.role {
            Role::Param(ty) => Some((&a.ident, ty)),
            _ => None,
        })
        .collect();
    let param_fields = params.iter().map(|(name, ty)| quote!(#vis #name: #ty));
    let param_names = params.iter().map(|(name, _)| name.unraw().to_string());

    let mut input_specs = Vec::new();
    let mut call_args = Vec::new();
    let mut node_args = Vec::new();
    let mut slots = Vec::new();
    let mut input_index = 0usize;
    for arg in &task.args {
        let name = &arg.ident;
        let name_str = name.unraw().to_string();
        match &arg.role {
            Role::Input(ty) => {
                input_specs.push(quote!(__pw::InputSpec::new(#name_str, __pw::InputKind::One)));
                call_args.push(quote!(__inputs.one::<#ty>(#input_index)));
                node_args.push(quote_spanned!(ty.span()=> #name: __pw::Handle<#ty>));
                slots.push(quote!(__pw::Slot::one(#name)));
                input_index += 1;
            }
            Role::Gather(ty) => {
                input_specs.push(quote!(__pw::InputSpec::new(#name_str, __pw::InputKind::Many)));
                call_args.push(quote!(&__inputs.many::<#ty>(#input_index)));
                node_args.push(quote_spanned!(ty.span()=>
                    #name: impl ::core::iter::IntoIterator<Item = __pw::Handle<#ty>>
                ));
                slots.push(quote!(__pw::Slot::many(#name)));
                input_index += 1;
            }
            Role::Param(ty) => {
                call_args.push(quote!(::core::clone::Clone::clone(&self.#name)));
                node_args.push(quote!(#name: #ty));
            }
            Role::Ctx => call_args.push(quote!(__ctx)),
        }
    }
    let field_inits = params.iter().map(|(name, _)| quote!(#name));

    let (output_ty, result) = match &task.output {
        Output::Unit => (
            quote!(()),
            quote!(::core::result::Result::Ok(#ident(#(#call_args),*))),
        ),
        Output::Plain(ty) => (
            quote!(#ty),
            quote!(::core::result::Result::Ok(#ident(#(#call_args),*))),
        ),
        Output::Fallible(ty) => (
            quote_spanned!(ty.span()=> <#ty as __pw::Fallible>::Ok),
            quote!(__pw::Fallible::into_task_result(#ident(#(#call_args),*))),
        ),
    };

    let name = task.name();
    let options = &task.options;
    let fp = fingerprint(&name, options.version.as_deref(), quote!(#func));
    let version = option(options.version.as_ref().map(|v| quote!(#v)));
    let cache = options.cache.unwrap_or(true);
    let retries = options.retries.unwrap_or(0);
    let timeout = option(options.timeout.map(duration));
    let cpus = option(options.cpus.map(|c| quote!(#c)));
    let mem = option(options.mem.map(|m| quote!(#m)));
    let time = option(options.time.map(duration));

    let struct_doc = format!(
        "The parameters of task `{name}`; `#[task]` made this struct from the function of the same name."
    );
    let node_doc = format!(
        "Binds task `{name}` for [`Builder::add`]({krate}::Builder::add): the function's arguments, \
         with a `Handle` for each input (any collection of handles for a gathered input).",
        krate = krate.to_string().replace(' ', "")
    );

    // Inputs must name the upstream's output type (`&Vec<Row>`, `&String`), which
    // clippy's `ptr_arg` would otherwise flag in every task.
    let mut func = func.clone();
    func.attrs
        .push(syn::parse_quote!(#[allow(clippy::ptr_arg)]));

    quote! {
        #func

        #[doc = #struct_doc]
        #[allow(non_camel_case_types)]
        #[derive(
            ::core::clone::Clone,
            ::core::fmt::Debug,
            #pw::serde::Serialize,
            #pw::serde::Deserialize,
        )]
        #[serde(crate = #serde_path)]
        #vis struct #ident {
            #(#param_fields,)*
        }

        const _: () = {
            use #pw as __pw;

            #[automatically_derived]
            impl __pw::Task for #ident {
                type Output = #output_ty;

                const META: __pw::TaskMeta = __pw::TaskMeta::__new(
                    #name,
                    ::core::module_path!(),
                    [#(#fp),*],
                    #version,
                    #cache,
                    #retries,
                    #timeout,
                    __pw::Resources::new(#cpus, #mem, #time),
                    &[#(#input_specs),*],
                    &[#(#param_names),*],
                );

                fn run(
                    &self,
                    __inputs: &__pw::Inputs<'_>,
                    __ctx: &__pw::Ctx,
                ) -> ::core::result::Result<Self::Output, __pw::TaskError> {
                    #result
                }
            }

            impl #ident {
                #[doc = #node_doc]
                #[allow(dead_code)]
                #vis fn node(#(#node_args),*) -> __pw::Bound<Self> {
                    __pw::Bound::new(Self { #(#field_inits),* }, ::std::vec![#(#slots),*])
                }
            }

            __pw::inventory::submit! { __pw::Registration::of::<#ident>() }
        };
    }
}

fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

fn duration(d: std::time::Duration) -> TokenStream {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    quote!(::core::time::Duration::new(#secs, #nanos))
}
