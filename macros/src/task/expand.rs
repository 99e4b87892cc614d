//! Generates a task's items: the user's function untouched, the parameter struct, its
//! `Task` impl, the `node` constructor and the registry entry; or, for a task with errors, a
//! stand-in that keeps the task's uses from adding errors of their own.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::check::impl_traits;
use super::parse::{Output, Role, TaskFn, is_ctx};
use crate::fingerprint::fingerprint;
use crate::paths;
use crate::uses;

pub(crate) fn task(task: &TaskFn<'_>) -> TokenStream {
    let func = task.func;
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let krate = paths::krate(task.options.krate.as_ref());
    let pw = paths::private(task.options.krate.as_ref());
    let serde_path = serde_path(&pw);
    let name = task.name();

    let params: Vec<_> = task
        .args
        .iter()
        .filter_map(|a| match &a.role {
            Role::Param(ty) => Some((&a.ident, ty)),
            _ => None,
        })
        .collect();
    let param_fields = params.iter().enumerate().map(|(i, (param, ty))| {
        let doc = format!("The parameter `{}` of task `{name}`.", param.unraw());
        let (serialize, deserialize) = serde_helpers(i);
        let serialize = format!("{ident}::{serialize}");
        let deserialize = format!("{ident}::{deserialize}");
        quote! {
            #[doc = #doc]
            #[serde(serialize_with = #serialize, deserialize_with = #deserialize)]
            #vis #param: #ty
        }
    });
    let param_names = params.iter().map(|(name, _)| name.unraw().to_string());

    let mut input_specs = Vec::new();
    let mut call_args = Vec::new();
    let mut node_args = Vec::new();
    let mut slots = Vec::new();
    let mut input_index = 0usize;
    let mut gathers = Vec::new();
    let mut elements = Vec::new();
    let task_name = name.clone();
    for arg in &task.args {
        let name = &arg.ident;
        let name_str = name.unraw().to_string();
        match &arg.role {
            Role::Input(ty) => {
                input_specs.push(quote!(__pw::InputSpec::new(#name_str, __pw::InputKind::One)));
                call_args.push(quote!(__inputs.one::<#ty>(#input_index)));
                node_args.push(quote_spanned!(ty.span()=> #name: __pw::Handle<#ty>));
                slots.push(quote!(__pw::Slot::one(#name)));
                elements.push(quote!(#input_index => __pw::element_of::<#ty>(__list, __i),));
                input_index += 1;
            }
            Role::Gather(ty) => {
                input_specs.push(quote!(__pw::InputSpec::new(#name_str, __pw::InputKind::Many)));
                call_args.push(quote!(&__inputs.many::<#ty>(#input_index)));
                let gather = format_ident!("__PwGather{}", input_index, span = ty.span());
                gathers.push(gather_trait(&gather, &name_str, &task_name));
                node_args.push(quote_spanned!(ty.span()=>
                    #name: impl #gather<#ty>
                ));
                slots.push(quote!(__pw::Slot::many(#name)));
                input_index += 1;
            }
            Role::Param(ty) => {
                let via = via(ty);
                call_args.push(quote!(#via.__clone(&self.#name)));
                node_args.push(quote!(#name: #ty));
            }
            Role::Ctx => call_args.push(quote!(__ctx)),
        }
    }
    let field_inits = params.iter().map(|(name, _)| quote!(#name));
    let call = quote!(#ident(#(#call_args),*));

    let (output_ty, result) = match &task.output {
        Output::Unit => (quote!(()), quote!(::core::result::Result::Ok(#call))),
        Output::Plain(ty) => (quote!(#ty), quote!(::core::result::Result::Ok(#call))),
        Output::Result { ok, err } => {
            let into_task_error = call_spanned(quote!(__pw_task_error), err);
            (
                quote!(#ok),
                quote! {
                    match #call {
                        ::core::result::Result::Ok(__value) => ::core::result::Result::Ok(__value),
                        ::core::result::Result::Err(__error) => {
                            ::core::result::Result::Err(#into_task_error(__error))
                        }
                    }
                },
            )
        }
        Output::Fallible(ty) => (
            quote_spanned!(ty.span()=> <#ty as __pw::Fallible>::Ok),
            quote!(__pw::Fallible::into_task_result(#call)),
        ),
    };
    let error_support = match &task.output {
        Output::Result { .. } => error_support(),
        _ => TokenStream::new(),
    };

    let param_impls = param_impls(ident, &params);
    let fp = fingerprint(&name, task.options.version.as_deref(), quote!(#func));
    let (uses_items, uses_list) = uses::resolve(&task.options.uses);
    let meta = meta(task, fp, &input_specs, param_names);
    let meta = quote!(#meta.__with_helpers(#uses_list));
    // Spanned at the user's path, so that a type that is not a codec is reported there.
    let codec = match &task.options.codec {
        Some(path) => quote_spanned!(path.span()=> #path),
        None => quote!(__pw::DefaultCodec),
    };
    let task_impl = task_impl(ident, &output_ty, &codec, &meta, &result, &{
        let mut methods = param_methods(&params);
        methods.extend(element_method(&elements));
        methods
    });

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
        // The struct has the function's name, and a field per parameter, named as it is.
        #[allow(non_camel_case_types, non_snake_case)]
        #[derive(#pw::serde::Serialize, #pw::serde::Deserialize)]
        #[serde(crate = #serde_path)]
        #vis struct #ident {
            #(#param_fields,)*
        }

        // The user's names and attributes reach generated items: a parameter named `P` names
        // a field and an argument of `node`, `run` calls a function that may be
        // `#[deprecated]`, and `node` takes as many arguments as the function does.
        #[allow(deprecated, non_snake_case, clippy::too_many_arguments)]
        const _: () = {
            use #pw as __pw;

            #param_impls
            #error_support
            #uses_items

            #(#gathers)*
            #task_impl

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

/// What `#[task]` emits for a task with errors: the function as written and, unless it is a
/// method, a task of the same name whose `node` takes any arguments, so that the task's uses
/// in `pipeline!` add no errors to the ones reported. It is never registered and never runs.
pub(crate) fn stand_in(task: &TaskFn<'_>) -> TokenStream {
    let func = task.func;
    // A method sits in an `impl` or `trait` block, where no struct can go.
    if func.sig.receiver().is_some() {
        return quote!(#func);
    }
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let pw = paths::private(task.options.krate.as_ref());
    let serde_path = serde_path(&pw);

    let arguments = func.sig.inputs.iter().filter(|input| match input {
        syn::FnArg::Typed(arg) => !is_ctx(&arg.ty),
        syn::FnArg::Receiver(_) => false,
    });
    let any = arguments.map(|_| quote!(_: impl ::core::marker::Sized));

    // The output type when it can stand outside the function, so that edges from this task
    // keep their type; `()` when it cannot (a generic or `impl Trait` output).
    let usable = |ty: &syn::Type| func.sig.generics.params.is_empty() && impl_traits(ty).is_empty();
    let output_ty = match &task.output {
        Output::Plain(ty) if usable(ty) => quote!(#ty),
        Output::Result { ok, .. } if usable(ok) => quote!(#ok),
        Output::Fallible(ty) if usable(ty) => quote!(<#ty as __pw::Fallible>::Ok),
        _ => quote!(()),
    };
    let meta = meta(task, [0; 32], &[], Vec::new());
    let task_impl = task_impl(
        ident,
        &output_ty,
        &quote!(__pw::DefaultCodec),
        &meta,
        &quote!(::core::unreachable!(
            "a task with compile errors never runs"
        )),
        &TokenStream::new(),
    );

    quote! {
        #func

        #[allow(non_camel_case_types, dead_code)]
        #[derive(
            ::core::clone::Clone,
            ::core::fmt::Debug,
            #pw::serde::Serialize,
            #pw::serde::Deserialize,
        )]
        #[serde(crate = #serde_path)]
        #vis struct #ident {}

        const _: () = {
            use #pw as __pw;

            #task_impl

            impl #ident {
                #[allow(dead_code)]
                #vis fn node(#(#any),*) -> __pw::Bound<Self> {
                    ::core::unreachable!("a task with compile errors never runs")
                }
            }
        };
    }
}

/// The `Task` impl of the parameter struct `ident`, storing its outputs with `codec`, whose
/// `run` evaluates `body` (with the inputs as `__inputs` and the context as `__ctx`), with
/// the further methods `methods`.
fn task_impl(
    ident: &syn::Ident,
    output_ty: &TokenStream,
    codec: &TokenStream,
    meta: &TokenStream,
    body: &TokenStream,
    methods: &TokenStream,
) -> TokenStream {
    quote! {
        #[automatically_derived]
        impl __pw::Task for #ident {
            type Output = #output_ty;

            type Codec = #codec;

            const META: __pw::TaskMeta = #meta;

            fn run(
                &self,
                __inputs: &__pw::Inputs<'_>,
                __ctx: &__pw::Ctx,
            ) -> ::core::result::Result<Self::Output, __pw::TaskError> {
                #body
            }

            #methods
        }
    }
}

/// The `Task` methods that hash and check each parameter as its own type (through the
/// autoref dispatch of [`param_impls`]), so that the runtime sees a `HashSet` parameter as
/// a set, and compares a parameter with its `PartialEq` where it has one.
fn param_methods(params: &[(&syn::Ident, &syn::Type)]) -> TokenStream {
    if params.is_empty() {
        return quote! {
            fn __param_digests(
                &self,
            ) -> ::core::result::Result<
                __pw::std::vec::Vec<(&'static str, [u8; 32])>,
                __pw::HashError,
            > {
                ::core::result::Result::Ok(__pw::std::vec::Vec::new())
            }

            fn __encode_params(
                &self,
                _: &mut __pw::Params<'_>,
            ) -> ::core::result::Result<(), (&'static str, __pw::ParamLoss)> {
                ::core::result::Result::Ok(())
            }
        };
    }
    let names: Vec<_> = params.iter().map(|(name, _)| *name).collect();
    let name_strs: Vec<_> = names.iter().map(|name| name.unraw().to_string()).collect();
    let vias: Vec<_> = params.iter().map(|(_, ty)| via(ty)).collect();
    quote! {
        fn __param_digests(
            &self,
        ) -> ::core::result::Result<
            __pw::std::vec::Vec<(&'static str, [u8; 32])>,
            __pw::HashError,
        > {
            ::core::result::Result::Ok(::std::vec![
                #((#name_strs, #vias.__digest(&self.#names)?),)*
            ])
        }

        // The codec writes a struct as its fields one after the other, so the parameters'
        // encodings in argument order are the encoding of `Self`.
        fn __encode_params(
            &self,
            __out: &mut __pw::Params<'_>,
        ) -> ::core::result::Result<(), (&'static str, __pw::ParamLoss)> {
            let __start = __out.len();
            #(
                if let ::core::result::Result::Err(__loss) =
                    #vias.__encode(&self.#names, |__a, __b| #vias.__eq(__a, __b), __out)
                {
                    __out.truncate(__start);
                    return ::core::result::Result::Err((#name_strs, __loss));
                }
            )*
            ::core::result::Result::Ok(())
        }
    }
}

/// The `Task` method that reads element `i` of a list as a single input, one arm per such
/// input; none (the default) for a task without one.
fn element_method(arms: &[TokenStream]) -> TokenStream {
    if arms.is_empty() {
        return TokenStream::new();
    }
    quote! {
        fn __element(
            __input: usize,
            __list: &(dyn ::core::any::Any + ::core::marker::Send + ::core::marker::Sync),
            __i: usize,
        ) -> ::core::option::Option<&dyn ::core::any::Any> {
            match __input {
                #(#arms)*
                _ => ::core::option::Option::None,
            }
        }
    }
}

/// The `TaskMeta` of `task`.
fn meta(
    task: &TaskFn<'_>,
    fingerprint: [u8; 32],
    input_specs: &[TokenStream],
    param_names: impl IntoIterator<Item = String>,
) -> TokenStream {
    let name = task.name();
    let options = &task.options;
    let version = option(options.version.as_ref().map(|v| quote!(#v)));
    let cache = options.cache.unwrap_or(true);
    let retries = options.retries.unwrap_or(0);
    let timeout = option(options.timeout.map(duration));
    let cpus = option(options.cpus.map(|c| quote!(#c)));
    let mem = option(options.mem.map(|m| quote!(#m)));
    let time = option(options.time.map(duration));
    let param_names = param_names.into_iter();
    // A task that takes `&Ctx` can read the names it runs under, so they go in its key.
    let names_in_key = task.args.iter().any(|arg| matches!(arg.role, Role::Ctx));
    quote! {
        __pw::TaskMeta::__new(__pw::TaskMetaFields {
            name: #name,
            module_path: ::core::module_path!(),
            fingerprint: [#(#fingerprint),*],
            version: #version,
            cache: #cache,
            retries: #retries,
            timeout: #timeout,
            resources: __pw::Resources::new(#cpus, #mem, #time),
            inputs: &[#(#input_specs),*],
            params: &[#(#param_names),*],
            names_in_key: #names_in_key,
        })
    }
}

/// The names of the functions serde calls to (de)serialize parameter number `index`: by
/// position, as a name made from the parameter's could clash or break a naming lint.
fn serde_helpers(index: usize) -> (syn::Ident, syn::Ident) {
    (
        format_ident!("__pw_serialize_{}", index),
        format_ident!("__pw_deserialize_{}", index),
    )
}

/// `(&__PwVia::<T>(..))`, the receiver of the autoref dispatch in [`param_impls`].
fn via(ty: &syn::Type) -> TokenStream {
    quote!((&__PwVia::<#ty>(::core::marker::PhantomData)))
}

/// The parameter struct's `Clone` and `Debug` impls, the functions its serde derives call, and
/// one assertion per parameter type.
///
/// Each impl reaches a parameter's own `Clone`, `Debug`, `Serialize` and `Deserialize` through
/// autoref dispatch: `(&__PwVia::<T>(..)).__clone(v)` finds `__PwHas` when `T` has all four and
/// the never-called `__PwLacks` when it does not. So the struct compiles whatever the
/// parameter types, and a type that lacks a trait gets one error, from its assertion, at the
/// parameter's type, instead of one from every derived impl that touches the field.
fn param_impls(ident: &syn::Ident, params: &[(&syn::Ident, &syn::Type)]) -> TokenStream {
    let struct_name = ident.unraw().to_string();
    let names: Vec<_> = params.iter().map(|(name, _)| *name).collect();
    let name_strs = names.iter().map(|name| name.unraw().to_string());
    let vias: Vec<_> = params.iter().map(|(_, ty)| via(ty)).collect();
    let clone_impl = quote! {
        #[automatically_derived]
        impl ::core::clone::Clone for #ident {
            fn clone(&self) -> Self {
                Self { #(#names: #vias.__clone(&self.#names),)* }
            }
        }

        #[automatically_derived]
        impl ::core::fmt::Debug for #ident {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#struct_name)
                    #(.field(#name_strs, #vias.__debug(&self.#names)))*
                    .finish()
            }
        }
    };
    if params.is_empty() {
        return clone_impl;
    }

    let asserts = params
        .iter()
        .map(|(_, ty)| call_spanned(quote!(__pw_param), ty));
    let serde_fns = params.iter().enumerate().map(|(i, (_, ty))| {
        let (serialize, deserialize) = serde_helpers(i);
        let via = via(ty);
        quote! {
            #[doc(hidden)]
            fn #serialize<__S: __pw::serde::Serializer>(
                value: &#ty,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                #via.__serialize(value, serializer)
            }

            #[doc(hidden)]
            fn #deserialize<'de, __D: __pw::serde::Deserializer<'de>>(
                deserializer: __D,
            ) -> ::core::result::Result<#ty, __D::Error> {
                #via.__deserialize(deserializer)
            }
        }
    });

    quote! {
        #[diagnostic::on_unimplemented(
            message = "`{Self}` cannot be a task parameter",
            label = "a parameter needs `Clone`, `Debug`, `Serialize` and `Deserialize`",
            note = "a parameter is stored with its task and hashed into the cache key: derive `Clone, Debug, serde::Serialize, serde::Deserialize` for `{Self}`"
        )]
        trait __PwParam:
            ::core::clone::Clone
            + ::core::fmt::Debug
            + __pw::serde::Serialize
            + __pw::serde::de::DeserializeOwned
        {
        }

        impl<T> __PwParam for T where
            T: ::core::clone::Clone
                + ::core::fmt::Debug
                + __pw::serde::Serialize
                + __pw::serde::de::DeserializeOwned
        {
        }

        const fn __pw_param<T: __PwParam>() {}

        const _: () = { #(#asserts;)* };

        struct __PwVia<T>(::core::marker::PhantomData<T>);

        trait __PwHas<T> {
            fn __clone(&self, value: &T) -> T;
            fn __debug<'a>(&self, value: &'a T) -> &'a dyn ::core::fmt::Debug;
            fn __serialize<S: __pw::serde::Serializer>(
                &self,
                value: &T,
                serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error>;
            fn __deserialize<'de, D: __pw::serde::Deserializer<'de>>(
                &self,
                deserializer: D,
            ) -> ::core::result::Result<T, D::Error>;
            fn __digest(&self, value: &T) -> ::core::result::Result<[u8; 32], __pw::HashError>;
            // `'static` as every field of a task is: a type known to survive the codec is
            // not checked by a round trip, and is known by its `TypeId`.
            fn __encode(
                &self,
                value: &T,
                eq: impl ::core::ops::Fn(&T, &T) -> ::core::option::Option<bool>,
                out: &mut __pw::Params<'_>,
            ) -> ::core::result::Result<(), __pw::ParamLoss>
            where
                T: 'static;
        }

        impl<T: __PwParam> __PwHas<T> for __PwVia<T> {
            fn __clone(&self, value: &T) -> T {
                ::core::clone::Clone::clone(value)
            }
            fn __debug<'a>(&self, value: &'a T) -> &'a dyn ::core::fmt::Debug {
                value
            }
            fn __serialize<S: __pw::serde::Serializer>(
                &self,
                value: &T,
                serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                __pw::serde::Serialize::serialize(value, serializer)
            }
            fn __deserialize<'de, D: __pw::serde::Deserializer<'de>>(
                &self,
                deserializer: D,
            ) -> ::core::result::Result<T, D::Error> {
                <T as __pw::serde::Deserialize<'de>>::deserialize(deserializer)
            }
            fn __digest(&self, value: &T) -> ::core::result::Result<[u8; 32], __pw::HashError> {
                __pw::canonical_digest::<T>(value)
            }
            fn __encode(
                &self,
                value: &T,
                eq: impl ::core::ops::Fn(&T, &T) -> ::core::option::Option<bool>,
                out: &mut __pw::Params<'_>,
            ) -> ::core::result::Result<(), __pw::ParamLoss>
            where
                T: 'static,
            {
                __pw::encode_param::<T>(value, eq, out)
            }
        }

        #[allow(dead_code)]
        trait __PwLacks<T> {
            fn __clone(&self, _: &T) -> T {
                ::core::unreachable!()
            }
            fn __debug<'a>(&self, _: &'a T) -> &'a dyn ::core::fmt::Debug {
                ::core::unreachable!()
            }
            fn __serialize<S: __pw::serde::Serializer>(
                &self,
                _: &T,
                _: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                ::core::unreachable!()
            }
            fn __deserialize<'de, D: __pw::serde::Deserializer<'de>>(
                &self,
                _: D,
            ) -> ::core::result::Result<T, D::Error> {
                ::core::unreachable!()
            }
            fn __digest(&self, _: &T) -> ::core::result::Result<[u8; 32], __pw::HashError> {
                ::core::unreachable!()
            }
            fn __encode(
                &self,
                _: &T,
                _: impl ::core::ops::Fn(&T, &T) -> ::core::option::Option<bool>,
                _: &mut __pw::Params<'_>,
            ) -> ::core::result::Result<(), __pw::ParamLoss> {
                ::core::unreachable!()
            }
        }

        impl<T> __PwLacks<T> for &__PwVia<T> {}

        // A parameter is compared with its `PartialEq` where it has one, by the same
        // dispatch: `__PwEq` when `T: PartialEq`, else `__PwNoEq`, which says it cannot.
        #[allow(dead_code)]
        trait __PwEq<T> {
            fn __eq(&self, a: &T, b: &T) -> ::core::option::Option<bool>;
        }

        impl<T: ::core::cmp::PartialEq> __PwEq<T> for __PwVia<T> {
            fn __eq(&self, a: &T, b: &T) -> ::core::option::Option<bool> {
                ::core::option::Option::Some(a == b)
            }
        }

        #[allow(dead_code)]
        trait __PwNoEq<T> {
            fn __eq(&self, _: &T, _: &T) -> ::core::option::Option<bool> {
                ::core::option::Option::None
            }
        }

        impl<T> __PwNoEq<T> for &__PwVia<T> {}

        #clone_impl

        impl #ident {
            #(#serde_fns)*
        }
    }
}

/// The bound of the gathered input `input` of task `task` in its `node` constructor: any
/// collection of handles, as `Gather`, worded for that input, so that a single handle
/// passed where a list is expected is reported with the input's name and the fix.
fn gather_trait(trait_ident: &syn::Ident, input: &str, task: &str) -> TokenStream {
    let message = format!(
        "input `{input}` of task `{task}` gathers a list of `{{T}}` nodes, and `{{Self}}` is not one"
    );
    let note = format!(
        "to gather a single node `n` into `{input}`, put it in brackets: write `[n]`, not `n`"
    );
    quote! {
        #[diagnostic::on_unimplemented(
            message = #message,
            label = "expected a list of nodes, like `[a, b]`",
            note = #note
        )]
        // Public, as it bounds an argument of `node`, which may be; no one can name it.
        pub trait #trait_ident<T>: __pw::Gather<T> {}

        impl<T, G: __pw::Gather<T>> #trait_ident<T> for G {}
    }
}

/// The assertion that a `Result<T, E>` task's `E` converts into the runtime's boxed error,
/// and the conversion, so that a wrong `E` is one error at `E`.
fn error_support() -> TokenStream {
    quote! {
        #[diagnostic::on_unimplemented(
            message = "`{Self}` cannot be the error type of a task",
            label = "not an error type",
            note = "a task returns `T` or `Result<T, E>`, where `E` converts into `Box<dyn std::error::Error + Send + Sync>`: an error type that is `Send + Sync`, `String` or `&str`"
        )]
        trait __PwTaskError:
            ::core::convert::Into<
                __pw::std::boxed::Box<
                    dyn ::core::error::Error + ::core::marker::Send + ::core::marker::Sync,
                >,
            >
        {
        }

        impl<E> __PwTaskError for E where
            E: ::core::convert::Into<
                __pw::std::boxed::Box<
                    dyn ::core::error::Error + ::core::marker::Send + ::core::marker::Sync,
                >,
            >
        {
        }

        fn __pw_task_error<E: __PwTaskError>(error: E) -> __pw::TaskError {
            __pw::TaskError::failed(error)
        }
    }
}

/// `function::<ty>`, spanned from the first to the last token of `ty`, so that an unmet bound
/// of `function` is reported under the whole type.
fn call_spanned(function: TokenStream, ty: &syn::Type) -> TokenStream {
    let mut tokens = ty.to_token_stream().into_iter();
    let first = tokens.next().map_or_else(Span::call_site, |t| t.span());
    let last = tokens.last().map_or(first, |t| t.span());
    let function = respan(function, first);
    let open = quote_spanned!(first=> ::<);
    let close = quote_spanned!(last=> >);
    quote!(#function #open #ty #close)
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            tree.set_span(span);
            tree
        })
        .collect()
}

/// The serde `crate = "..."` value: the path of serde inside the runtime's private module.
fn serde_path(pw: &TokenStream) -> String {
    format!("{pw}::serde").replace(' ', "")
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
