//! Checking the arguments against each other: `Configuration` →
//! `FinalConfig`. An argument that conflicts with another is reported at its
//! own tokens and left out, so the expansion uses only what is consistent.

use super::args::{find_key, Configuration, Flavor, Format, UnhandledPanic, Writer};
use crate::args::Arg;
use crate::errors::Errors;
use crate::size::display_size;
use syn::{Expr, LitStr};

// pulse's limits and defaults, which literal arguments are checked against
// at compile time. The proc-macro crate cannot read them from pulse (pulse
// depends on it); the behaviour tests in `tests/tests/macro_limits.rs` run
// binaries at each boundary, so a change on either side fails there.

/// `pulse::writer::MIN_ROTATING_FILE_SIZE`.
pub(crate) const MIN_ROTATING_FILE_SIZE: u64 = 4096;
/// `pulse::config::MAX_BUFFER_EVENTS`.
pub(crate) const MAX_BUFFER_EVENTS: u64 = 1 << 20;
/// `pulse::config::DEFAULT_BUFFER_EVENTS`.
pub(crate) const DEFAULT_BUFFER_EVENTS: u64 = 1024;
/// `pulse::config::DEFAULT_MAX_PENDING_EVENTS`.
pub(crate) const DEFAULT_MAX_PENDING_EVENTS: u64 = 64 * 1024;
/// `pulse::config::DEFAULT_MAX_FILE_SIZE`.
pub(crate) const DEFAULT_MAX_FILE_SIZE: u64 = 64 << 20;
/// `pulse::config::DEFAULT_MAX_TOTAL_SIZE`.
pub(crate) const DEFAULT_MAX_TOTAL_SIZE: u64 = 512 << 20;

/// The consistent configuration the expansion is generated from.
pub(crate) struct FinalConfig {
    pub(crate) crate_path: Option<syn::Path>,
    pub(crate) flavor: Flavor,
    pub(crate) worker_threads: Option<Arg<u64>>,
    pub(crate) start_paused: Option<Arg<bool>>,
    pub(crate) unhandled_panic: Option<Arg<UnhandledPanic>>,
    pub(crate) name: Option<Arg<LitStr>>,
    pub(crate) recording: Recording,
}

/// Where the recording's `pulse::Config` comes from.
// One value per macro call: boxing a variant would save nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Recording {
    /// Built from `pulse::Config::new()` and the arguments given.
    Inline(Settings),
    /// `config = f`: whatever `f()` returns.
    Function(Arg<Expr>),
}

/// pulse's settings that were given (the rest keep `Config`'s defaults).
#[derive(Default)]
pub(crate) struct Settings {
    pub(crate) flush_ms: Option<Arg<u64>>,
    pub(crate) sample_ms: Option<Arg<u64>>,
    pub(crate) buffer_events: Option<Arg<u64>>,
    pub(crate) max_pending_events: Option<Arg<u64>>,
    pub(crate) format: Option<Arg<Format>>,
    pub(crate) enabled: Option<Arg<bool>>,
    pub(crate) run_queue_wait: Option<Arg<bool>>,
    pub(crate) schedule_latency: Option<Arg<bool>>,
    pub(crate) service: Option<Arg<LitStr>>,
    pub(crate) signals: Option<Arg<bool>>,
    pub(crate) quiet: Option<Arg<bool>>,
    pub(crate) dump_signal: Option<Arg<Option<u64>>>,
    pub(crate) dump_on: Option<Arg<LitStr>>,
    pub(crate) dump_after_ms: Option<Arg<u64>>,
    pub(crate) dump_cooldown_ms: Option<Arg<u64>>,
    pub(crate) dump_max_per_hour: Option<Arg<u64>>,
    pub(crate) stacks: Option<Arg<bool>>,
    pub(crate) stack_threshold_ms: Option<Arg<u64>>,
    /// `None` when no writer argument was given (the default writer).
    pub(crate) writer: Option<WriterSettings>,
}

pub(crate) struct WriterSettings {
    pub(crate) kind: Writer,
    pub(crate) path: Option<Arg<LitStr>>,
    pub(crate) max_file_size: Option<Arg<u64>>,
    pub(crate) max_total_size: Option<Arg<u64>>,
    pub(crate) memory_size: Option<Arg<u64>>,
    pub(crate) memory_seconds: Option<Arg<u64>>,
}

impl Configuration {
    /// Checks combinations, reporting each conflict at the argument that
    /// causes it and dropping that argument.
    pub(crate) fn build(self, errors: &mut Errors) -> FinalConfig {
        let flavor = self
            .flavor
            .as_ref()
            .map_or(Flavor::MultiThread, |f| f.value);
        let flavor_source = if self.flavor.is_some() {
            "this runtime uses `flavor = \"multi_thread\"`"
        } else {
            "the default flavor is `multi_thread`"
        };

        let worker_threads = self.worker_threads.filter(|arg| {
            let ok = flavor == Flavor::MultiThread;
            if !ok {
                errors.spanned(
                    &arg.pair,
                    format!(
                        "`worker_threads` applies only to the multi-thread runtime, and \
                         `flavor = \"{}\"` runs everything on the calling thread; \
                         remove `worker_threads` or use `flavor = \"multi_thread\"`",
                        if flavor == Flavor::Local {
                            "local"
                        } else {
                            "current_thread"
                        }
                    ),
                );
            }
            ok
        });
        let current_thread_only =
            |name: &str, errors: &mut Errors, pair: &proc_macro2::TokenStream| {
                let ok = matches!(flavor, Flavor::CurrentThread | Flavor::Local);
                if !ok {
                    errors.spanned(
                        pair,
                        format!(
                            "`{name}` requires the current-thread runtime, but {flavor_source}; \
                         add `flavor = \"current_thread\"` or remove `{name}`"
                        ),
                    );
                }
                ok
            };
        let start_paused = self
            .start_paused
            .filter(|arg| current_thread_only("start_paused", errors, &arg.pair));
        let unhandled_panic = self
            .unhandled_panic
            .filter(|arg| current_thread_only("unhandled_panic", errors, &arg.pair));

        let mut settings = Settings {
            flush_ms: self.flush_ms,
            sample_ms: self.sample_ms,
            buffer_events: self.buffer_events,
            max_pending_events: self.max_pending_events,
            format: self.format,
            enabled: self.enabled,
            run_queue_wait: self.run_queue_wait,
            schedule_latency: self.schedule_latency,
            service: self.service,
            signals: self.signals,
            quiet: self.quiet,
            dump_signal: self.dump_signal,
            dump_on: self.dump_on,
            dump_after_ms: self.dump_after_ms,
            dump_cooldown_ms: self.dump_cooldown_ms,
            dump_max_per_hour: self.dump_max_per_hour,
            stacks: self.stacks,
            stack_threshold_ms: self.stack_threshold_ms,
            writer: None,
        };
        let writer = WriterSettings {
            kind: self.writer.as_ref().map_or(Writer::Rotating, |w| w.value),
            path: self.path,
            max_file_size: self.max_file_size,
            max_total_size: self.max_total_size,
            memory_size: self.memory_size,
            memory_seconds: self.memory_seconds,
        };
        let writer_given = self.writer.is_some()
            || writer.path.is_some()
            || writer.max_file_size.is_some()
            || writer.max_total_size.is_some()
            || writer.memory_size.is_some()
            || writer.memory_seconds.is_some();

        let recording = match self.config {
            Some(function) => {
                reject_beside_config(&settings, &writer, self.writer.as_ref(), errors);
                Recording::Function(function)
            }
            None => {
                if writer_given {
                    settings.writer = Some(writer.check(errors));
                }
                settings.check_buffers(errors);
                Recording::Inline(settings)
            }
        };

        FinalConfig {
            crate_path: self.crate_path.map(|arg| arg.value),
            flavor,
            worker_threads,
            start_paused,
            unhandled_panic,
            name: self.name,
            recording,
        }
    }
}

/// `config = f` decides every recording setting, so an inline one next to it
/// would be silently overridden (or would silently override): reject each.
fn reject_beside_config(
    settings: &Settings,
    writer: &WriterSettings,
    writer_arg: Option<&Arg<Writer>>,
    errors: &mut Errors,
) {
    let given = [
        ("flush_ms", settings.flush_ms.as_ref().map(|a| &a.pair)),
        ("sample_ms", settings.sample_ms.as_ref().map(|a| &a.pair)),
        ("writer", writer_arg.map(|a| &a.pair)),
        ("path", writer.path.as_ref().map(|a| &a.pair)),
        (
            "max_file_size",
            writer.max_file_size.as_ref().map(|a| &a.pair),
        ),
        (
            "max_total_size",
            writer.max_total_size.as_ref().map(|a| &a.pair),
        ),
        (
            "buffer_events",
            settings.buffer_events.as_ref().map(|a| &a.pair),
        ),
        (
            "max_pending_events",
            settings.max_pending_events.as_ref().map(|a| &a.pair),
        ),
        ("format", settings.format.as_ref().map(|a| &a.pair)),
        ("enabled", settings.enabled.as_ref().map(|a| &a.pair)),
        (
            "run_queue_wait",
            settings.run_queue_wait.as_ref().map(|a| &a.pair),
        ),
        (
            "schedule_latency",
            settings.schedule_latency.as_ref().map(|a| &a.pair),
        ),
        ("service", settings.service.as_ref().map(|a| &a.pair)),
        ("signals", settings.signals.as_ref().map(|a| &a.pair)),
        ("quiet", settings.quiet.as_ref().map(|a| &a.pair)),
        ("memory_size", writer.memory_size.as_ref().map(|a| &a.pair)),
        (
            "memory_seconds",
            writer.memory_seconds.as_ref().map(|a| &a.pair),
        ),
        (
            "dump_signal",
            settings.dump_signal.as_ref().map(|a| &a.pair),
        ),
        ("dump_on", settings.dump_on.as_ref().map(|a| &a.pair)),
        (
            "dump_after_ms",
            settings.dump_after_ms.as_ref().map(|a| &a.pair),
        ),
        (
            "dump_cooldown_ms",
            settings.dump_cooldown_ms.as_ref().map(|a| &a.pair),
        ),
        (
            "dump_max_per_hour",
            settings.dump_max_per_hour.as_ref().map(|a| &a.pair),
        ),
        ("stacks", settings.stacks.as_ref().map(|a| &a.pair)),
        (
            "stack_threshold_ms",
            settings.stack_threshold_ms.as_ref().map(|a| &a.pair),
        ),
    ];
    for (name, pair) in given {
        let Some(pair) = pair else { continue };
        let method = find_key(name).map_or("pulse::Config", |key| key.config_method);
        errors.spanned(
            pair,
            format!(
                "`{name}` cannot be combined with `config`: the config function decides every \
                 recording setting and would override it; set it there instead (`{method}`)"
            ),
        );
    }
}

impl WriterSettings {
    /// Drops (and reports) the writer arguments that do not apply to the
    /// chosen writer or are out of range.
    fn check(mut self, errors: &mut Errors) -> WriterSettings {
        let kind = self.kind.name();
        match self.kind {
            Writer::Null => {
                if let Some(path) = self.path.take() {
                    errors.spanned(
                        &path.pair,
                        "`path` has no effect with `writer = \"null\"`, which writes no file; \
                         remove one of them",
                    );
                }
            }
            Writer::File | Writer::Rotating | Writer::Memory => {}
        }
        if self.kind != Writer::Memory {
            for (name, arg) in [
                ("memory_size", self.memory_size.take()),
                ("memory_seconds", self.memory_seconds.take()),
            ] {
                if let Some(arg) = arg {
                    errors.spanned(
                        &arg.pair,
                        format!(
                            "`{name}` applies only to `writer = \"memory\"` (the in-memory flight \
                             recorder); `writer = \"{kind}\"` keeps no window in memory"
                        ),
                    );
                }
            }
        }
        if self.kind != Writer::Rotating {
            for (name, arg) in [
                ("max_file_size", self.max_file_size.take()),
                ("max_total_size", self.max_total_size.take()),
            ] {
                if let Some(arg) = arg {
                    errors.spanned(
                        &arg.pair,
                        format!(
                            "`{name}` applies only to `writer = \"rotating\"`; `writer = \"{kind}\"` \
                             {}",
                            match self.kind {
                                Writer::File => "writes one file that grows",
                                Writer::Memory => "keeps its window in memory (size it with `memory_size`)",
                                _ => "writes nothing",
                            }
                        ),
                    );
                }
            }
            return self;
        }

        if let Some(arg) = &self.max_file_size {
            if arg.value < MIN_ROTATING_FILE_SIZE {
                errors.spanned(
                    &arg.pair,
                    format!(
                        "`max_file_size` must be at least {} ({MIN_ROTATING_FILE_SIZE} bytes), room for a \
                         file's header, metadata and some events; it is {} bytes",
                        display_size(MIN_ROTATING_FILE_SIZE),
                        arg.value
                    ),
                );
                self.max_file_size = None;
            }
        }
        let file = self
            .max_file_size
            .as_ref()
            .map_or(DEFAULT_MAX_FILE_SIZE, |a| a.value);
        let total = self
            .max_total_size
            .as_ref()
            .map_or(DEFAULT_MAX_TOTAL_SIZE, |a| a.value);
        if total < file {
            match (&self.max_file_size, &self.max_total_size) {
                (_, Some(arg)) => {
                    let origin = if self.max_file_size.is_some() {
                        ""
                    } else {
                        "the default "
                    };
                    errors.spanned(
                        &arg.pair,
                        format!(
                            "`max_total_size` ({}) is smaller than {origin}`max_file_size` ({}): the \
                             set must hold at least one file; raise `max_total_size`{}",
                            display_size(total),
                            display_size(file),
                            if self.max_file_size.is_some() { "" } else { " or set a smaller `max_file_size`" }
                        ),
                    );
                    self.max_total_size = None;
                }
                (Some(arg), None) => {
                    errors.spanned(
                        &arg.pair,
                        format!(
                            "`max_file_size` ({}) is larger than the default `max_total_size` ({}); \
                             also set `max_total_size` to at least {}",
                            display_size(file),
                            display_size(total),
                            display_size(file)
                        ),
                    );
                    self.max_file_size = None;
                }
                // The defaults are consistent with each other.
                (None, None) => {}
            }
        }
        self
    }
}

impl Settings {
    fn check_buffers(&mut self, errors: &mut Errors) {
        if let Some(arg) = &self.buffer_events {
            if arg.value > MAX_BUFFER_EVENTS {
                errors.spanned(
                    &arg.pair,
                    format!(
                        "`buffer_events` is at most {MAX_BUFFER_EVENTS}: a larger per-thread buffer \
                         costs more memory than it saves in flushes; it is {}",
                        arg.value
                    ),
                );
                self.buffer_events = None;
            }
        }
        let buffer = self
            .buffer_events
            .as_ref()
            .map_or(DEFAULT_BUFFER_EVENTS, |a| a.value);
        let pending = self
            .max_pending_events
            .as_ref()
            .map_or(DEFAULT_MAX_PENDING_EVENTS, |a| a.value);
        if pending < buffer {
            match (&self.buffer_events, &self.max_pending_events) {
                (_, Some(arg)) => {
                    errors.spanned(
                        &arg.pair,
                        format!(
                            "`max_pending_events` ({pending}) is smaller than {}`buffer_events` \
                             ({buffer}): the backlog must hold at least one thread buffer",
                            if self.buffer_events.is_some() {
                                ""
                            } else {
                                "the default "
                            }
                        ),
                    );
                    self.max_pending_events = None;
                }
                (Some(arg), None) => {
                    errors.spanned(
                        &arg.pair,
                        format!(
                            "`buffer_events` ({buffer}) is larger than the default \
                             `max_pending_events` ({pending}); also set `max_pending_events` to at \
                             least {buffer}"
                        ),
                    );
                    self.buffer_events = None;
                }
                // The defaults are consistent with each other.
                (None, None) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::args;
    use super::*;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn build(args: TokenStream) -> (FinalConfig, Vec<String>) {
        let mut errors = Errors::default();
        let config = args::parse(args, &mut errors).build(&mut errors);
        (config, errors.messages())
    }

    fn inline(config: &FinalConfig) -> &Settings {
        match &config.recording {
            Recording::Inline(settings) => settings,
            Recording::Function(_) => panic!("expected inline settings"),
        }
    }

    #[test]
    fn defaults_match_tokio_main() {
        let (config, errors) = build(quote!());
        assert!(errors.is_empty());
        assert_eq!(config.flavor, Flavor::MultiThread);
        assert!(inline(&config).writer.is_none());
        assert!(config.crate_path.is_none());
    }

    #[test]
    fn flavor_conflicts_point_at_the_argument() {
        let (config, errors) = build(quote!(flavor = "current_thread", worker_threads = 2));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("`worker_threads` applies only to the multi-thread runtime"));
        assert!(
            config.worker_threads.is_none(),
            "dropped from the expansion"
        );

        let (_, errors) = build(quote!(start_paused = true, unhandled_panic = "ignore"));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("the default flavor is `multi_thread`"));
        let (_, errors) = build(quote!(flavor = "multi_thread", start_paused = true));
        assert!(errors[0].contains("this runtime uses `flavor = \"multi_thread\"`"));
    }

    #[test]
    fn config_function_excludes_inline_settings() {
        let (config, errors) = build(quote!(
            config = make,
            flush_ms = 5,
            path = "x",
            flavor = "current_thread"
        ));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("`flush_ms` cannot be combined with `config`"));
        assert!(errors[0].contains("`Config::flush_ms`"));
        assert!(errors[1].contains("`path` cannot be combined with `config`"));
        assert!(matches!(config.recording, Recording::Function(_)));
        assert_eq!(
            config.flavor,
            Flavor::CurrentThread,
            "tokio arguments still apply"
        );
    }

    #[test]
    fn writer_arguments_must_apply() {
        let (_, errors) = build(quote!(
            writer = "null",
            path = "t.bin",
            max_file_size = 8192
        ));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("`path` has no effect with `writer = \"null\"`"));
        assert!(errors[1].contains("`max_file_size` applies only to `writer = \"rotating\"`"));
        let (_, errors) = build(quote!(writer = "file", max_total_size = "1GiB"));
        assert!(
            errors[0].contains("writes one file that grows"),
            "{errors:?}"
        );
    }

    #[test]
    fn sizes_are_checked_against_each_other_and_the_defaults() {
        let (config, errors) = build(quote!(max_file_size = "1MiB", max_total_size = "4MiB"));
        assert!(errors.is_empty(), "{errors:?}");
        let writer = inline(&config).writer.as_ref().unwrap();
        assert_eq!(writer.kind, Writer::Rotating);
        assert_eq!(writer.max_file_size.as_ref().unwrap().value, 1 << 20);

        let (_, errors) = build(quote!(max_file_size = 4095));
        assert!(
            errors[0].contains("`max_file_size` must be at least 4KiB"),
            "{errors:?}"
        );
        let (_, errors) = build(quote!(max_file_size = "4MiB", max_total_size = "1MiB"));
        assert!(
            errors[0].contains("`max_total_size` (1MiB) is smaller than `max_file_size` (4MiB)"),
            "{errors:?}"
        );
        let (_, errors) = build(quote!(max_file_size = "1GiB"));
        assert!(
            errors[0].contains("larger than the default `max_total_size` (512MiB)"),
            "{errors:?}"
        );
        let (_, errors) = build(quote!(max_total_size = "1MiB"));
        assert!(
            errors[0].contains("smaller than the default `max_file_size` (64MiB)"),
            "{errors:?}"
        );
        let (_, errors) = build(quote!(max_file_size = "512MiB"));
        assert!(
            errors.is_empty(),
            "the default total holds one file: {errors:?}"
        );
    }

    #[test]
    fn buffers_are_checked_against_each_other_and_the_defaults() {
        let (_, errors) = build(quote!(buffer_events = 65536));
        assert!(errors.is_empty(), "{errors:?}");
        let (_, errors) = build(quote!(buffer_events = 65537));
        assert!(
            errors[0].contains("larger than the default `max_pending_events` (65536)"),
            "{errors:?}"
        );
        let (_, errors) = build(quote!(
            buffer_events = 1048577,
            max_pending_events = 2000000
        ));
        assert!(
            errors[0].contains("`buffer_events` is at most 1048576"),
            "{errors:?}"
        );
        let (_, errors) = build(quote!(
            buffer_events = 1048576,
            max_pending_events = 1048576
        ));
        assert!(errors.is_empty(), "{errors:?}");
        let (_, errors) = build(quote!(max_pending_events = 10));
        assert!(
            errors[0].contains("smaller than the default `buffer_events` (1024)"),
            "{errors:?}"
        );
    }
}
