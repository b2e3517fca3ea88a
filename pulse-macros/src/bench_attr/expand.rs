//! Generating the criterion benchmark from a `FinalConfig`.
//!
//! ```text
//! fn name(criterion: &mut Criterion) {          // the user's docs and cfgs
//!     let name = { fn name(shared: &S, state: &mut T) -> R { /* the user's */ } name };
//!     const BENCH: Bench = Bench::new("name", module_path!()).threads(&[1, 2]).batch(100);
//!     BENCH.run_threads(criterion, setup, per_thread, |s, t| name(s, t), teardown);
//! }
//! ```
//!
//! Everything runs in `pulse::__private::bench` (threads, barrier,
//! cache-padded slots, batching, settings); the whole expansion is wrapped
//! in `pulse::__bench_items!`, which reports a missing `bench` feature as one
//! clear error instead of unresolved paths.

use super::validate::FinalConfig;
use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::{Attribute, ItemFn};

pub(crate) fn expand(func: ItemFn, config: &FinalConfig) -> TokenStream {
    let span = func.sig.ident.span();
    let pulse = match &config.crate_path {
        Some(path) => path.to_token_stream(),
        None => quote_spanned!(Span::call_site().located_at(span)=> ::pulse),
    };
    let bench = quote_spanned!(span=> #pulse::__private::bench);

    // Docs and cfgs describe the benchmark; the rest (`inline`, `allow`,
    // ...) stays on the function it was written for.
    let (outer, inner): (Vec<Attribute>, Vec<Attribute>) = func
        .attrs
        .iter()
        .cloned()
        .partition(|attr| attr.path().is_ident("doc") || attr.path().is_ident("cfg"));
    let vis = &func.vis;
    let name = &func.sig.ident;
    let name_str = Literal::string(&name.to_string());
    let mut inner_fn = func.clone();
    inner_fn.attrs = inner;
    inner_fn.vis = syn::Visibility::Inherited;

    let group = match &config.group {
        Some(arg) => arg.value.to_token_stream(),
        None => quote!(::core::module_path!()),
    };
    let mut settings = TokenStream::new();
    if let Some(threads) = &config.threads {
        let counts = threads.iter().map(|&n| Literal::usize_suffixed(n as usize));
        settings.extend(quote!(.threads(&[#(#counts),*])));
    }
    let setters = [
        ("batch", config.batch.as_ref()),
        ("elements", config.elements.as_ref()),
        ("warm_up_ms", config.warm_up_ms.as_ref()),
        ("measurement_ms", config.measurement_ms.as_ref()),
        ("sample_size", config.sample_size.as_ref()),
    ];
    for (method, arg) in setters {
        if let Some(arg) = arg {
            let method = syn::Ident::new(method, arg.span);
            let value = Literal::u64_unsuffixed(arg.value);
            settings.extend(quote_spanned!(arg.span=> .#method(#value)));
        }
    }
    if let Some(arg) = &config.significance {
        let value = Literal::f64_suffixed(arg.value);
        settings.extend(quote_spanned!(arg.span=> .significance(#value)));
    }

    let setup = match &config.setup {
        Some(arg) => arg.value.to_token_stream(),
        None => quote_spanned!(span=> || ()),
    };
    let per_thread = match &config.per_thread {
        Some(arg) => arg.value.to_token_stream(),
        None => quote_spanned!(span=> |_| ()),
    };
    let teardown = match &config.teardown {
        Some(arg) => arg.value.to_token_stream(),
        None => quote_spanned!(span=> |_| {}),
    };
    let inputs = config.inputs();
    let (shared, state, mut args) = (
        quote_spanned!(span=> __pulse_shared),
        quote_spanned!(span=> __pulse_state),
        Vec::new(),
    );
    let shared_param = if inputs.shared {
        args.push(shared.clone());
        shared
    } else {
        quote_spanned!(span=> _)
    };
    let state_param = if inputs.per_thread {
        args.push(state.clone());
        state
    } else {
        quote_spanned!(span=> _)
    };
    let run = if config.threads.is_some() {
        quote_spanned!(span=> run_threads)
    } else {
        quote_spanned!(span=> run)
    };

    quote_spanned! {span=>
        #pulse::__bench_items! {
            #(#outer)*
            #vis fn #name(criterion: &mut #bench::criterion::Criterion) {
                // In a block of its own, so that the arguments' paths do
                // not resolve to it.
                let #name = {
                    #inner_fn
                    #name
                };
                const BENCH: #bench::Bench = #bench::Bench::new(#name_str, #group) #settings;
                // The spans are the user's, so lints could fire on
                // generated code (a closure where the function would do
                // when the parameters line up).
                #[allow(clippy::redundant_closure)]
                BENCH.#run(
                    criterion,
                    #setup,
                    #per_thread,
                    |#shared_param, #state_param| #name(#(#args),*),
                    #teardown,
                );
            }
        }
    }
}
