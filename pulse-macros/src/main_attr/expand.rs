//! Generating the synchronous `fn main` from a `FinalConfig`.
//!
//! ```text
//! fn main() -> R {
//!     let body = async { /* the user's body */ };
//!     let config: pulse::Config = pulse::Config::new().flush_ms(..)..;   // or (f)()
//!     return pulse::__private::Main::start(|| { /* tokio Builder */ }, config).block_on(body);
//! }
//! ```
//!
//! `Main::start` applies the `PULSE_*` environment overrides and calls
//! `Recorder::from_config`, the path library users take; the macro adds
//! no wiring of its own. Everything reaches tokio through
//! `pulse::__private::tokio`, so a crate needs only `pulse` and `tokio`.

use super::args::{Flavor, Format, UnhandledPanic, Writer};
use super::item::MainFn;
use super::validate::{FinalConfig, Recording, Settings};
use crate::args::Arg;
use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};

pub(crate) fn expand(func: MainFn, config: &FinalConfig) -> TokenStream {
    let MainFn {
        outer_attrs,
        inner_attrs,
        vis,
        mut sig,
        brace,
        body,
        last_stmt: (last_start, last_end),
    } = func;
    sig.asyncness = None;

    // Paths are resolved where the macro is called, but reported at the
    // last statement, like `#[tokio::main]`'s.
    let pulse = match &config.crate_path {
        Some(path) => path.to_token_stream(),
        None => quote_spanned!(Span::call_site().located_at(last_start)=> ::pulse),
    };

    let mut block = TokenStream::new();
    brace.surround(&mut block, |tokens| body.to_tokens(tokens));

    let builder = builder(config, &pulse, last_start);
    let recording = recording(&config.recording, &pulse);
    // At the body's span like the rest of the call, so type errors in the
    // body keep pointing at the body.
    let start = match config.flavor {
        Flavor::Local => quote_spanned!(last_end=> start_local),
        Flavor::MultiThread | Flavor::CurrentThread => quote_spanned!(last_end=> start),
    };
    let run = quote_spanned! {last_end=>
        // The spans are the user's, so lints could fire on generated code.
        #[allow(
            clippy::diverging_sub_expression,
            clippy::needless_return,
            clippy::redundant_closure_call
        )]
        {
            let config: #pulse::Config = #recording;
            return #pulse::__private::Main::#start(#builder, config).block_on(body);
        }
    };

    let inner_attrs = inner_attrs.into_iter().map(|mut attr| {
        // Inner attributes cannot stay inside the new body's blocks; as
        // outer attributes of the function they mean the same.
        attr.style = syn::AttrStyle::Outer;
        attr
    });
    quote! {
        #(#outer_attrs)*
        #(#inner_attrs)*
        #vis #sig {
            // The body's type is checked where it is used: `block_on`'s
            // output is returned, so a mismatch is reported at the body's
            // last statement (spans below), as for `#[tokio::main]`.
            let body = async #block;
            #run
        }
    }
}

/// `|| { let mut builder = Builder::new_..(); builder...; builder }` with
/// each tokio argument applied at its own tokens, so (for example) a missing
/// `test-util` feature for `start_paused` is reported at `start_paused`.
fn builder(config: &FinalConfig, pulse: &TokenStream, span: Span) -> TokenStream {
    let tokio = quote_spanned!(span=> #pulse::__private::tokio);
    let new = match config.flavor {
        Flavor::MultiThread => quote_spanned!(span=> new_multi_thread),
        Flavor::CurrentThread | Flavor::Local => quote_spanned!(span=> new_current_thread),
    };
    let mut calls = TokenStream::new();
    if let Some(Arg { value, span, .. }) = &config.worker_threads {
        let n = Literal::u64_unsuffixed(*value);
        calls.extend(quote_spanned!(*span=> .worker_threads(#n)));
    }
    if let Some(Arg { value, span, .. }) = &config.start_paused {
        calls.extend(quote_spanned!(*span=> .start_paused(#value)));
    }
    if let Some(Arg { value, span, .. }) = &config.unhandled_panic {
        let behaviour = match value {
            UnhandledPanic::Ignore => quote_spanned!(*span=> Ignore),
            UnhandledPanic::ShutdownRuntime => quote_spanned!(*span=> ShutdownRuntime),
        };
        calls.extend(
            quote_spanned!(*span=> .unhandled_panic(#tokio::runtime::UnhandledPanic::#behaviour)),
        );
    }
    if let Some(Arg { value, span, .. }) = &config.name {
        calls.extend(quote_spanned!(*span=> .name(#value)));
    }
    quote_spanned! {span=>
        || {
            let mut builder = #tokio::runtime::Builder::#new();
            builder #calls .enable_all();
            builder
        }
    }
}

/// The expression that makes the recording's `pulse::Config`.
fn recording(recording: &Recording, pulse: &TokenStream) -> TokenStream {
    match recording {
        Recording::Function(Arg { value, span, .. }) => quote_spanned!(*span=> (#value)()),
        Recording::Inline(settings) => inline(settings, pulse),
    }
}

fn inline(settings: &Settings, pulse: &TokenStream) -> TokenStream {
    // Termination signals and panics flush by default under the attribute.
    let signals = settings.signals.as_ref().is_none_or(|arg| arg.value);
    let mut config = match &settings.signals {
        Some(arg) => quote_spanned!(arg.span=> #pulse::Config::new().signals(#signals)),
        None => quote!(#pulse::Config::new().signals(#signals)),
    };
    let millis = |arg: &Arg<u64>| Literal::u64_suffixed(arg.value);
    let count = |arg: &Arg<u64>| Literal::u64_unsuffixed(arg.value);
    if let Some(arg) = &settings.flush_ms {
        let value = millis(arg);
        config.extend(quote_spanned!(arg.span=> .flush_ms(#value)));
    }
    if let Some(arg) = &settings.sample_ms {
        let value = millis(arg);
        config.extend(quote_spanned!(arg.span=> .sample_ms(#value)));
    }
    if let Some(arg) = &settings.buffer_events {
        let value = count(arg);
        config.extend(quote_spanned!(arg.span=> .buffer_events(#value)));
    }
    if let Some(arg) = &settings.max_pending_events {
        let value = count(arg);
        config.extend(quote_spanned!(arg.span=> .max_pending_events(#value)));
    }
    if let Some(arg) = &settings.format {
        let version = match arg.value {
            Format::V5 => quote_spanned!(arg.span=> V5),
            Format::V6 => quote_spanned!(arg.span=> V6),
        };
        config.extend(quote_spanned!(arg.span=> .format(#pulse::trace::FormatVersion::#version)));
    }
    if let Some(arg) = &settings.enabled {
        let value = arg.value;
        config.extend(quote_spanned!(arg.span=> .enabled(#value)));
    }
    if let Some(arg) = &settings.run_queue_wait {
        let value = arg.value;
        config.extend(quote_spanned!(arg.span=> .run_queue_wait(#value)));
    }
    if let Some(arg) = &settings.schedule_latency {
        let value = arg.value;
        config.extend(quote_spanned!(arg.span=> .schedule_latency(#value)));
    }
    if let Some(arg) = &settings.service {
        let value = &arg.value;
        config.extend(quote_spanned!(arg.span=> .service(#value)));
    }
    if let Some(arg) = &settings.quiet {
        let value = arg.value;
        config.extend(quote_spanned!(arg.span=> .quiet(#value)));
    }
    if let Some(arg) = &settings.dump_signal {
        let value = match arg.value {
            Some(n) => {
                let n = Literal::i32_suffixed(n as i32);
                quote!(::core::option::Option::Some(#n))
            }
            None => quote!(::core::option::Option::None),
        };
        config.extend(quote_spanned!(arg.span=> .dump_signal(#value)));
    }
    if let Some(arg) = &settings.dump_on {
        let text = &arg.value;
        // Checked by the macro; parsed at run time by the same rules.
        config.extend(quote_spanned!(arg.span=> .dump_on(
            #text
                .split(',')
                .filter(|part| !part.trim().is_empty())
                .filter_map(|part| part.parse::<#pulse::config::DumpTrigger>().ok())
                .collect()
        )));
    }
    if let Some(arg) = &settings.dump_after_ms {
        let value = millis(arg);
        config.extend(quote_spanned!(arg.span=> .dump_after_ms(#value)));
    }
    if let Some(arg) = &settings.dump_cooldown_ms {
        let value = millis(arg);
        config.extend(quote_spanned!(arg.span=> .dump_cooldown_ms(#value)));
    }
    if let Some(arg) = &settings.dump_max_per_hour {
        let value = Literal::u32_suffixed(arg.value.min(u64::from(u32::MAX)) as u32);
        config.extend(quote_spanned!(arg.span=> .dump_max_per_hour(#value)));
    }
    if let Some(arg) = &settings.stacks {
        let value = arg.value;
        config.extend(quote_spanned!(arg.span=> .stacks(#value)));
    }
    if let Some(arg) = &settings.stack_threshold_ms {
        let value = arg.value;
        config.extend(quote_spanned!(arg.span=> .stack_threshold_ms(#value)));
    }
    if let Some(writer) = &settings.writer {
        let path = match &writer.path {
            Some(arg) => arg.value.to_token_stream(),
            None => quote!(#pulse::config::DEFAULT_PATH),
        };
        let size = |arg: &Option<Arg<u64>>, default: TokenStream| match arg {
            Some(arg) => Literal::u64_suffixed(arg.value).into_token_stream(),
            None => default,
        };
        let writer = match writer.kind {
            Writer::Null => quote!(#pulse::WriterConfig::Null),
            Writer::Memory => {
                let path = match &writer.path {
                    Some(arg) => arg.value.to_token_stream(),
                    None => quote!(#pulse::config::DEFAULT_DUMP_PATH),
                };
                let memory = size(
                    &writer.memory_size,
                    quote!(#pulse::config::DEFAULT_MEMORY_SIZE),
                );
                let seconds = size(
                    &writer.memory_seconds,
                    quote!(#pulse::config::DEFAULT_MEMORY_SECONDS),
                );
                quote!(#pulse::WriterConfig::Memory {
                    path: ::std::path::PathBuf::from(#path),
                    max_size: #memory,
                    max_seconds: #seconds,
                })
            }
            Writer::File => quote!(#pulse::WriterConfig::file(#path)),
            Writer::Rotating => {
                let file = size(
                    &writer.max_file_size,
                    quote!(#pulse::config::DEFAULT_MAX_FILE_SIZE),
                );
                let total = size(
                    &writer.max_total_size,
                    quote!(#pulse::config::DEFAULT_MAX_TOTAL_SIZE),
                );
                quote!(#pulse::WriterConfig::rotating(#path, #file, #total))
            }
        };
        config.extend(quote!(.writer(#writer)));
    }
    config
}

#[cfg(test)]
mod tests {
    use super::super::{args, validate::FinalConfig};
    use super::*;
    use crate::errors::Errors;

    fn expand_str(args: TokenStream, item: TokenStream) -> String {
        let mut errors = Errors::default();
        let config: FinalConfig = args::parse(args, &mut errors).build(&mut errors);
        assert!(errors.messages().is_empty(), "{:?}", errors.messages());
        expand(syn::parse2(item).unwrap(), &config).to_string()
    }

    #[test]
    fn goes_through_config_and_main_start() {
        let out = expand_str(
            quote!(),
            quote!(
                async fn main() {}
            ),
        );
        assert!(out.contains("fn main ()"), "{out}");
        assert!(!out.contains("async fn"), "{out}");
        assert!(out.contains(":: pulse :: Config :: new ()"), "{out}");
        assert!(
            out.contains(":: pulse :: __private :: Main :: start"),
            "{out}"
        );
        assert!(
            out.contains(
                ":: pulse :: __private :: tokio :: runtime :: Builder :: new_multi_thread ()"
            ),
            "{out}"
        );
        assert!(out.contains("enable_all ()"), "{out}");
    }

    #[test]
    fn applies_each_argument() {
        let out = expand_str(
            quote!(
                flavor = "current_thread",
                start_paused = true,
                unhandled_panic = "shutdown_runtime",
                name = "rt",
                crate = "my::pulse",
                flush_ms = 100,
                sample_ms = 5,
                buffer_events = 64,
                max_pending_events = 128,
                format = "v5",
                enabled = false,
                path = "t.bin"
            ),
            quote!(
                async fn main() {}
            ),
        );
        for expected in [
            "my :: pulse :: __private :: tokio :: runtime :: Builder :: new_current_thread ()",
            ". start_paused (true)",
            ". unhandled_panic (my :: pulse :: __private :: tokio :: runtime :: UnhandledPanic :: ShutdownRuntime)",
            ". name (\"rt\")",
            ". flush_ms (100u64)",
            ". sample_ms (5u64)",
            ". buffer_events (64)",
            ". max_pending_events (128)",
            ". format (my :: pulse :: trace :: FormatVersion :: V5)",
            ". enabled (false)",
            ". writer (my :: pulse :: WriterConfig :: rotating (\"t.bin\" , my :: pulse :: config :: DEFAULT_MAX_FILE_SIZE , my :: pulse :: config :: DEFAULT_MAX_TOTAL_SIZE))",
        ] {
            assert!(out.contains(expected), "missing {expected}\nin {out}");
        }
    }

    #[test]
    fn config_function_is_called() {
        let out = expand_str(
            quote!(config = make_config),
            quote!(
                async fn main() {}
            ),
        );
        assert!(
            out.contains("let config : :: pulse :: Config = (make_config) ()"),
            "{out}"
        );
    }

    #[test]
    fn lifts_inner_attributes() {
        let out = expand_str(
            quote!(),
            quote!(
                async fn main() {
                    #![allow(unused)]
                    let x = 1;
                }
            ),
        );
        assert!(out.starts_with("# [allow (unused)] fn main ()"), "{out}");
    }
}
