//! Reading the attribute's arguments into a [`Configuration`]: every value
//! checked on its own, kept with its tokens so later errors point at it.
//! Combinations are checked in `validate.rs`.

use crate::args::{crate_path, describe, literal, string, Arg, ArgKey, Arguments};
use crate::errors::Errors;
use crate::size::{self, SizeError};
use crate::suggest;
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Expr, Lit, LitStr, MetaNameValue};

/// Which part of the program an argument configures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Group {
    /// The same argument as `#[tokio::main]`'s.
    Tokio,
    /// A recording setting (overridden by `config = ...`).
    Pulse,
    /// `config = ...`, which replaces every recording setting.
    Config,
}

/// One argument `#[pulse::main]` accepts.
pub(crate) struct Key {
    pub(crate) name: &'static str,
    pub(crate) group: Group,
    /// How it is written, for "needs a value" and wrong-type messages.
    pub(crate) example: &'static str,
    /// Where the setting lives on `pulse::Config`, for `config = ...` users.
    pub(crate) config_method: &'static str,
}

const fn key(
    name: &'static str,
    group: Group,
    example: &'static str,
    config_method: &'static str,
) -> Key {
    Key {
        name,
        group,
        example,
        config_method,
    }
}

/// Every argument, in the order the documentation lists them.
pub(crate) const KEYS: &[Key] = &[
    key("flavor", Group::Tokio, "flavor = \"current_thread\"", ""),
    key("worker_threads", Group::Tokio, "worker_threads = 4", ""),
    key("start_paused", Group::Tokio, "start_paused = true", ""),
    key(
        "unhandled_panic",
        Group::Tokio,
        "unhandled_panic = \"shutdown_runtime\"",
        "",
    ),
    key("name", Group::Tokio, "name = \"my-runtime\"", ""),
    key("crate", Group::Tokio, "crate = \"my_pulse\"", ""),
    key(
        "flush_ms",
        Group::Pulse,
        "flush_ms = 250",
        "Config::flush_ms",
    ),
    key(
        "sample_ms",
        Group::Pulse,
        "sample_ms = 10",
        "Config::sample_ms",
    ),
    key(
        "writer",
        Group::Pulse,
        "writer = \"rotating\"",
        "Config::writer",
    ),
    key(
        "path",
        Group::Pulse,
        "path = \"pulse-trace.bin\"",
        "Config::writer",
    ),
    key(
        "max_file_size",
        Group::Pulse,
        "max_file_size = \"64MiB\"",
        "Config::writer",
    ),
    key(
        "max_total_size",
        Group::Pulse,
        "max_total_size = \"512MiB\"",
        "Config::writer",
    ),
    key(
        "buffer_events",
        Group::Pulse,
        "buffer_events = 1024",
        "Config::buffer_events",
    ),
    key(
        "max_pending_events",
        Group::Pulse,
        "max_pending_events = 65536",
        "Config::max_pending_events",
    ),
    key("format", Group::Pulse, "format = \"v6\"", "Config::format"),
    key(
        "enabled",
        Group::Pulse,
        "enabled = false",
        "Config::enabled",
    ),
    key(
        "run_queue_wait",
        Group::Pulse,
        "run_queue_wait = false",
        "Config::run_queue_wait",
    ),
    key(
        "schedule_latency",
        Group::Pulse,
        "schedule_latency = true",
        "Config::schedule_latency",
    ),
    key(
        "service",
        Group::Pulse,
        "service = \"checkout\"",
        "Config::service",
    ),
    key(
        "signals",
        Group::Pulse,
        "signals = false",
        "Config::signals",
    ),
    key("quiet", Group::Pulse, "quiet = true", "Config::quiet"),
    key(
        "memory_size",
        Group::Pulse,
        "memory_size = \"64MiB\"",
        "Config::writer",
    ),
    key(
        "memory_seconds",
        Group::Pulse,
        "memory_seconds = 30",
        "Config::writer",
    ),
    key(
        "dump_signal",
        Group::Pulse,
        "dump_signal = \"SIGUSR2\"",
        "Config::dump_signal",
    ),
    key(
        "dump_on",
        Group::Pulse,
        "dump_on = \"poll>50ms\"",
        "Config::dump_on",
    ),
    key(
        "dump_after_ms",
        Group::Pulse,
        "dump_after_ms = 1000",
        "Config::dump_after_ms",
    ),
    key(
        "dump_cooldown_ms",
        Group::Pulse,
        "dump_cooldown_ms = 60000",
        "Config::dump_cooldown_ms",
    ),
    key(
        "dump_max_per_hour",
        Group::Pulse,
        "dump_max_per_hour = 10",
        "Config::dump_max_per_hour",
    ),
    key("stacks", Group::Pulse, "stacks = false", "Config::stacks"),
    key(
        "stack_threshold_ms",
        Group::Pulse,
        "stack_threshold_ms = 5",
        "Config::stack_threshold_ms",
    ),
    key("config", Group::Config, "config = my_config", ""),
];

/// Names people reach for that are spelled differently here.
const ALIASES: &[(&str, &str)] = &[
    ("core_threads", "worker_threads"),
    ("threads", "worker_threads"),
    ("workers", "worker_threads"),
    ("flush_interval", "flush_ms"),
    ("sample_interval", "sample_ms"),
    ("file", "path"),
    ("output", "path"),
    ("trace", "path"),
    ("version", "format"),
    ("enable", "enabled"),
    ("disabled", "enabled"),
    ("crate_name", "crate"),
];

pub(crate) fn find_key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Flavor {
    MultiThread,
    CurrentThread,
    /// Tokio's `LocalRuntime`: current-thread, and spawned tasks need not
    /// be `Send`.
    Local,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum UnhandledPanic {
    Ignore,
    ShutdownRuntime,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Writer {
    Rotating,
    File,
    Null,
    Memory,
}

impl Writer {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Writer::Rotating => "rotating",
            Writer::File => "file",
            Writer::Null => "null",
            Writer::Memory => "memory",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Format {
    V5,
    V6,
}

/// The arguments as written, each checked on its own.
#[derive(Default)]
pub(crate) struct Configuration {
    pub(crate) flavor: Option<Arg<Flavor>>,
    pub(crate) worker_threads: Option<Arg<u64>>,
    pub(crate) start_paused: Option<Arg<bool>>,
    pub(crate) unhandled_panic: Option<Arg<UnhandledPanic>>,
    pub(crate) name: Option<Arg<LitStr>>,
    pub(crate) crate_path: Option<Arg<syn::Path>>,
    pub(crate) flush_ms: Option<Arg<u64>>,
    pub(crate) sample_ms: Option<Arg<u64>>,
    pub(crate) writer: Option<Arg<Writer>>,
    pub(crate) path: Option<Arg<LitStr>>,
    pub(crate) max_file_size: Option<Arg<u64>>,
    pub(crate) max_total_size: Option<Arg<u64>>,
    pub(crate) buffer_events: Option<Arg<u64>>,
    pub(crate) max_pending_events: Option<Arg<u64>>,
    pub(crate) format: Option<Arg<Format>>,
    pub(crate) enabled: Option<Arg<bool>>,
    pub(crate) run_queue_wait: Option<Arg<bool>>,
    pub(crate) schedule_latency: Option<Arg<bool>>,
    pub(crate) service: Option<Arg<LitStr>>,
    pub(crate) signals: Option<Arg<bool>>,
    pub(crate) quiet: Option<Arg<bool>>,
    pub(crate) memory_size: Option<Arg<u64>>,
    pub(crate) memory_seconds: Option<Arg<u64>>,
    /// The signal number, or `None` for `"off"`.
    pub(crate) dump_signal: Option<Arg<Option<u64>>>,
    pub(crate) dump_on: Option<Arg<LitStr>>,
    pub(crate) dump_after_ms: Option<Arg<u64>>,
    pub(crate) dump_cooldown_ms: Option<Arg<u64>>,
    pub(crate) dump_max_per_hour: Option<Arg<u64>>,
    pub(crate) stacks: Option<Arg<bool>>,
    pub(crate) stack_threshold_ms: Option<Arg<u64>>,
    pub(crate) config: Option<Arg<Expr>>,
}

/// Parses `args` (the tokens inside the attribute's parentheses) with the
/// shared parser.
pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Configuration {
    crate::args::parse(args, errors)
}

impl ArgKey for Key {
    fn name(&self) -> &'static str {
        self.name
    }
    fn example(&self) -> &'static str {
        self.example
    }
}

impl Arguments for Configuration {
    type Key = Key;
    const NAME_EXAMPLE: &'static str = "flush_ms";

    fn find_key(name: &str) -> Option<&'static Key> {
        find_key(name)
    }

    fn unknown_key(name: &str) -> String {
        unknown_key(name)
    }

    fn bare_word(name: &str) -> String {
        bare_word(name)
    }

    fn set(&mut self, key: &'static Key, nv: &MetaNameValue, errors: &mut Errors) {
        let value = &nv.value;
        match key.name {
            "flavor" => {
                self.flavor = choice(key, value, errors, &FLAVORS).map(|v| Arg::new(v, nv));
            }
            "worker_threads" => {
                self.worker_threads = int(key, value, 1, errors).map(|v| Arg::new(v, nv))
            }
            "start_paused" => {
                self.start_paused = boolean(key, value, errors).map(|v| Arg::new(v, nv))
            }
            "unhandled_panic" => {
                self.unhandled_panic =
                    choice(key, value, errors, &UNHANDLED_PANICS).map(|v| Arg::new(v, nv));
            }
            "name" => self.name = string(key, value, errors).map(|v| Arg::new(v, nv)),
            "crate" => self.crate_path = crate_path(value, errors).map(|v| Arg::new(v, nv)),
            "flush_ms" => self.flush_ms = int(key, value, 1, errors).map(|v| Arg::new(v, nv)),
            "sample_ms" => self.sample_ms = int(key, value, 1, errors).map(|v| Arg::new(v, nv)),
            "writer" => self.writer = choice(key, value, errors, &WRITERS).map(|v| Arg::new(v, nv)),
            "path" => self.path = string(key, value, errors).map(|v| Arg::new(v, nv)),
            "max_file_size" => {
                self.max_file_size = byte_size(key, value, errors).map(|v| Arg::new(v, nv))
            }
            "max_total_size" => {
                self.max_total_size = byte_size(key, value, errors).map(|v| Arg::new(v, nv))
            }
            "buffer_events" => {
                self.buffer_events = int(key, value, 1, errors).map(|v| Arg::new(v, nv))
            }
            "max_pending_events" => {
                self.max_pending_events = int(key, value, 1, errors).map(|v| Arg::new(v, nv));
            }
            "format" => self.format = choice(key, value, errors, &FORMATS).map(|v| Arg::new(v, nv)),
            "enabled" => self.enabled = boolean(key, value, errors).map(|v| Arg::new(v, nv)),
            "run_queue_wait" => {
                self.run_queue_wait = boolean(key, value, errors).map(|v| Arg::new(v, nv))
            }
            "schedule_latency" => {
                self.schedule_latency = boolean(key, value, errors).map(|v| Arg::new(v, nv))
            }
            "service" => self.service = string(key, value, errors).map(|v| Arg::new(v, nv)),
            "signals" => self.signals = boolean(key, value, errors).map(|v| Arg::new(v, nv)),
            "quiet" => self.quiet = boolean(key, value, errors).map(|v| Arg::new(v, nv)),
            "memory_size" => {
                self.memory_size = byte_size(key, value, errors).map(|v| Arg::new(v, nv))
            }
            "memory_seconds" => {
                self.memory_seconds = int(key, value, 1, errors).map(|v| Arg::new(v, nv))
            }
            "dump_signal" => {
                self.dump_signal = string(key, value, errors)
                    .and_then(|s| signal(&s, errors))
                    .map(|v| Arg::new(v, nv))
            }
            "dump_on" => {
                self.dump_on = string(key, value, errors)
                    .filter(|s| triggers(s, errors))
                    .map(|v| Arg::new(v, nv))
            }
            "dump_after_ms" => {
                self.dump_after_ms = int(key, value, 1, errors).map(|v| Arg::new(v, nv))
            }
            "dump_cooldown_ms" => {
                self.dump_cooldown_ms = int(key, value, 1, errors).map(|v| Arg::new(v, nv))
            }
            "dump_max_per_hour" => {
                self.dump_max_per_hour = int(key, value, 1, errors).map(|v| Arg::new(v, nv))
            }
            "stacks" => self.stacks = boolean(key, value, errors).map(|v| Arg::new(v, nv)),
            "stack_threshold_ms" => {
                self.stack_threshold_ms = int(key, value, 1, errors).map(|v| Arg::new(v, nv))
            }
            "config" => self.config = config_fn(value, errors).map(|v| Arg::new(v, nv)),
            // Unreachable: `every_key_has_a_setter_and_an_example` checks
            // each key. A proc macro reports rather than panics.
            other => errors.spanned(
                &nv.path,
                format!("pulse-macros has no setter for `{other}` (a bug; please report it)"),
            ),
        }
    }
}

/// The accepted strings of one argument, with what each means; `Err` holds
/// the message for strings that are close but wrong.
type Choices<T> = [(&'static str, Result<T, &'static str>)];

const FLAVORS: [(&str, Result<Flavor, &str>); 6] = [
    ("multi_thread", Ok(Flavor::MultiThread)),
    ("current_thread", Ok(Flavor::CurrentThread)),
    ("local", Ok(Flavor::Local)),
    (
        "single_thread",
        Err("the single-threaded flavor is called `current_thread`"),
    ),
    (
        "basic_scheduler",
        Err("`basic_scheduler` was renamed to `current_thread`"),
    ),
    (
        "threaded_scheduler",
        Err("`threaded_scheduler` was renamed to `multi_thread`"),
    ),
];

const UNHANDLED_PANICS: [(&str, Result<UnhandledPanic, &str>); 2] = [
    ("ignore", Ok(UnhandledPanic::Ignore)),
    ("shutdown_runtime", Ok(UnhandledPanic::ShutdownRuntime)),
];

const WRITERS: [(&str, Result<Writer, &str>); 4] = [
    ("rotating", Ok(Writer::Rotating)),
    ("file", Ok(Writer::File)),
    ("null", Ok(Writer::Null)),
    ("memory", Ok(Writer::Memory)),
];

/// `dump_signal`'s value: `"SIGUSR2"`, `"USR1"`, `"12"` or `"off"`.
fn signal(text: &LitStr, errors: &mut Errors) -> Option<Option<u64>> {
    let upper = text.value().trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let number = match name {
        "OFF" | "NONE" => return Some(None),
        "USR1" => 10,
        "USR2" => 12,
        "WINCH" => 28,
        "PWR" => 30,
        other => match other.parse::<u64>() {
            Ok(n) if (1..=64).contains(&n) => n,
            _ => {
                errors.spanned(
                    text,
                    format!(
                        "`dump_signal` expects \"SIGUSR1\", \"SIGUSR2\", a signal number \
                         (1..=64) or \"off\"; found \"{}\"",
                        text.value()
                    ),
                );
                return None;
            }
        },
    };
    Some(Some(number))
}

/// Checks `dump_on`'s value: triggers such as `poll>50ms`, separated by
/// commas (the same syntax `pulse::config::DumpTrigger` parses).
fn triggers(text: &LitStr, errors: &mut Errors) -> bool {
    let value = text.value();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let ok = part.split_once('>').is_some_and(|(what, threshold)| {
            let what_ok = matches!(what.trim(), "poll" | "descheduled");
            let threshold = threshold.trim();
            let number = threshold
                .strip_suffix("ms")
                .or_else(|| threshold.strip_suffix('s'));
            what_ok && number.is_some_and(|n| n.trim().parse::<u64>().is_ok_and(|n| n >= 1))
        });
        if !ok {
            errors.spanned(
                text,
                format!(
                    "`dump_on` expects triggers such as \"poll>50ms\" or \"descheduled>100ms\" \
                     (separated by commas); \"{part}\" is not one"
                ),
            );
            return false;
        }
    }
    true
}

const FORMATS: [(&str, Result<Format, &str>); 2] = [("v6", Ok(Format::V6)), ("v5", Ok(Format::V5))];

/// The accepted strings of `choices`, quoted, for messages.
fn list<T>(choices: &Choices<T>) -> String {
    let valid: Vec<String> = choices
        .iter()
        .filter(|(_, meaning)| meaning.is_ok())
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    valid.join(", ")
}

fn choice<T: Copy>(
    key: &Key,
    value: &Expr,
    errors: &mut Errors,
    choices: &Choices<T>,
) -> Option<T> {
    let what = match key.name {
        "flavor" => "runtime flavor",
        "unhandled_panic" => "unhandled-panic behaviour",
        "writer" => "writer",
        _ => "format",
    };
    let text = match literal(value) {
        Some(Lit::Str(s)) => s.value(),
        _ => {
            // `flavor = current_thread` (no quotes) is the likely slip.
            let bare = value.to_token_stream().to_string();
            let hint = if choices.iter().any(|(name, _)| *name == bare) {
                format!("add quotes: `{} = \"{bare}\"`", key.name)
            } else {
                format!("the {what}s are {}", list(choices))
            };
            errors.spanned(
                value,
                format!(
                    "`{}` expects a string, found {}; {hint}",
                    key.name,
                    describe(value)
                ),
            );
            return None;
        }
    };
    match choices.iter().find(|(name, _)| *name == text) {
        Some((_, Ok(meaning))) => Some(*meaning),
        Some((_, Err(message))) => {
            errors.spanned(value, message);
            None
        }
        None => {
            let names: Vec<&str> = choices
                .iter()
                .filter(|(_, m)| m.is_ok())
                .map(|(n, _)| *n)
                .collect();
            let head = match suggest::closest(&text, &names) {
                Some(name) => format!("unknown {what} \"{text}\"; did you mean \"{name}\"?"),
                None => format!("unknown {what} \"{text}\"."),
            };
            errors.spanned(value, format!("{head} The {what}s are {}", list(choices)));
            None
        }
    }
}

fn int(key: &Key, value: &Expr, min: u64, errors: &mut Errors) -> Option<u64> {
    let unit = match key.name {
        "flush_ms" | "sample_ms" | "stack_threshold_ms" => " (milliseconds)",
        "buffer_events" | "max_pending_events" => " (events)",
        "worker_threads" => " (threads)",
        _ => "",
    };
    match literal(value) {
        Some(Lit::Int(lit)) if lit.base10_digits().starts_with('-') => {
            let message = format!("`{}` cannot be negative; e.g. `{}`", key.name, key.example);
            errors.spanned(value, message);
            None
        }
        Some(Lit::Int(lit)) => match lit.base10_parse::<u64>() {
            Ok(n) if n < min => {
                let why = match key.name {
                    "flush_ms" | "sample_ms" => ": the interval cannot be zero",
                    "worker_threads" => ": a runtime needs a worker",
                    _ => "",
                };
                errors.spanned(value, format!("`{}` must be at least {min}{why}", key.name));
                None
            }
            Ok(n) => Some(n),
            Err(_) => {
                errors.spanned(
                    value,
                    format!("`{}` is out of range: it must fit in 64 bits", key.name),
                );
                None
            }
        },
        Some(Lit::Str(s)) if s.value().trim().parse::<u64>().is_ok() => {
            errors.spanned(
                value,
                format!(
                    "`{}` expects an integer, not a string; remove the quotes: `{} = {}`",
                    key.name,
                    key.name,
                    s.value().trim()
                ),
            );
            None
        }
        _ if matches!(value, Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_))) => {
            errors.spanned(
                value,
                format!("`{}` cannot be negative; e.g. `{}`", key.name, key.example),
            );
            None
        }
        _ => {
            errors.spanned(
                value,
                format!(
                    "`{}` expects an integer{unit}, e.g. `{}`; found {}",
                    key.name,
                    key.example,
                    describe(value)
                ),
            );
            None
        }
    }
}

fn byte_size(key: &Key, value: &Expr, errors: &mut Errors) -> Option<u64> {
    match literal(value) {
        Some(Lit::Int(lit)) if lit.base10_digits().starts_with('-') => {
            let message = format!("`{}` cannot be negative; e.g. `{}`", key.name, key.example);
            errors.spanned(value, message);
            None
        }
        Some(Lit::Int(lit)) => match lit.base10_parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.spanned(
                    value,
                    format!("`{}` is out of range: it must fit in 64 bits", key.name),
                );
                None
            }
        },
        Some(Lit::Str(s)) => match size::parse_size(&s.value()) {
            Ok(n) => Some(n),
            Err(err) => {
                let example = match err {
                    SizeError::UnknownUnit(_) | SizeError::Fraction => {
                        format!(" (e.g. `{}`)", key.example)
                    }
                    _ => String::new(),
                };
                errors.spanned(
                    value,
                    format!("`{} = {:?}`: {err}{example}", key.name, s.value()),
                );
                None
            }
        },
        _ => {
            errors.spanned(
                value,
                format!(
                    "`{}` expects a size: a number of bytes or a string such as \"64MiB\", e.g. `{}`; found {}",
                    key.name,
                    key.example,
                    describe(value)
                ),
            );
            None
        }
    }
}

fn boolean(key: &Key, value: &Expr, errors: &mut Errors) -> Option<bool> {
    match literal(value) {
        Some(Lit::Bool(b)) => Some(b.value),
        Some(Lit::Str(s)) if matches!(s.value().as_str(), "true" | "false") => {
            errors.spanned(
                value,
                format!(
                    "`{}` expects `true` or `false`, not a string; remove the quotes: `{} = {}`",
                    key.name,
                    key.name,
                    s.value()
                ),
            );
            None
        }
        _ => {
            errors.spanned(
                value,
                format!(
                    "`{}` expects `true` or `false`; found {}",
                    key.name,
                    describe(value)
                ),
            );
            None
        }
    }
}

/// `config = my_config` or `config = || ...`: something to call for a
/// `pulse::Config`.
fn config_fn(value: &Expr, errors: &mut Errors) -> Option<Expr> {
    match value {
        Expr::Path(_) | Expr::Closure(_) => Some(value.clone()),
        Expr::Group(group) => config_fn(&group.expr, errors),
        _ if literal(value).is_some() => {
            errors.spanned(
                value,
                format!(
                    "`config` expects a function returning `pulse::Config`, e.g. `config = my_config` \
                     or `config = || pulse::Config::new()`; found {}",
                    describe(value)
                ),
            );
            None
        }
        _ => {
            errors.spanned(
                value,
                "`config` expects a function or closure returning `pulse::Config`, not a value; \
                 wrap the expression in a closure: `config = || <expression>`",
            );
            None
        }
    }
}

/// The message for an argument name that is not one of `KEYS`.
pub(crate) fn unknown_key(name: &str) -> String {
    let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    let alias = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|(_, key)| *key);
    let head = match alias.or_else(|| suggest::closest(name, &names)) {
        Some(key) => format!("unknown argument `{name}`; did you mean `{key}`?"),
        None => format!("unknown argument `{name}`."),
    };
    let group = |group: Group| -> String {
        let names: Vec<String> = KEYS
            .iter()
            .filter(|k| k.group == group)
            .map(|k| format!("`{}`", k.name))
            .collect();
        names.join(", ")
    };
    format!(
        "{head} The arguments are {} (as for `#[tokio::main]`), {} (pulse's recording \
         settings) and `config` (a function returning `pulse::Config`)",
        group(Group::Tokio),
        group(Group::Pulse)
    )
}

/// The message for an argument written without `= value`.
fn bare_word(name: &str) -> String {
    if let Some(key) = find_key(name) {
        return format!("`{name}` needs a value, e.g. `{}`", key.example);
    }
    let (what, setting) = match name {
        "multi_thread" | "threaded_scheduler" => ("a runtime flavor", "flavor = \"multi_thread\""),
        "current_thread" | "basic_scheduler" | "single_thread" => {
            ("a runtime flavor", "flavor = \"current_thread\"")
        }
        "rotating" => ("a writer", "writer = \"rotating\""),
        "file" => ("a writer", "writer = \"file\""),
        "null" => ("a writer", "writer = \"null\""),
        "disabled" => ("a setting", "enabled = false"),
        _ => return unknown_key(name),
    };
    format!("`{name}` is {what}, not an argument: write `{setting}`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors_of(args: TokenStream) -> Vec<String> {
        let mut errors = Errors::default();
        parse(args, &mut errors);
        errors.messages()
    }

    #[test]
    fn reads_every_argument() {
        let mut errors = Errors::default();
        let c = parse(
            quote!(
                flavor = "current_thread",
                start_paused = true,
                unhandled_panic = "ignore",
                name = "rt",
                crate = "my_pulse",
                flush_ms = 100,
                sample_ms = 5,
                writer = "file",
                path = "t.bin",
                buffer_events = 64,
                max_pending_events = 128,
                format = "v5",
                enabled = false
            ),
            &mut errors,
        );
        assert!(errors.messages().is_empty(), "{:?}", errors.messages());
        assert_eq!(c.flavor.unwrap().value, Flavor::CurrentThread);
        assert!(c.start_paused.unwrap().value);
        assert_eq!(c.unhandled_panic.unwrap().value, UnhandledPanic::Ignore);
        assert_eq!(c.name.unwrap().value.value(), "rt");
        assert!(c.crate_path.unwrap().value.is_ident("my_pulse"));
        assert_eq!(c.flush_ms.unwrap().value, 100);
        assert_eq!(c.sample_ms.unwrap().value, 5);
        assert_eq!(c.writer.unwrap().value, Writer::File);
        assert_eq!(c.path.unwrap().value.value(), "t.bin");
        assert_eq!(c.buffer_events.unwrap().value, 64);
        assert_eq!(c.max_pending_events.unwrap().value, 128);
        assert_eq!(c.format.unwrap().value, Format::V5);
        assert!(!c.enabled.unwrap().value);

        let c = parse(
            quote!(
                worker_threads = 2,
                max_file_size = "1MiB",
                max_total_size = 8388608,
                config = make
            ),
            &mut errors,
        );
        assert!(errors.messages().is_empty(), "{:?}", errors.messages());
        assert_eq!(c.worker_threads.unwrap().value, 2);
        assert_eq!(c.max_file_size.unwrap().value, 1 << 20);
        assert_eq!(c.max_total_size.unwrap().value, 8 << 20);
        assert!(c.config.is_some());
    }

    #[test]
    fn every_key_has_a_setter_and_an_example() {
        for key in KEYS {
            assert!(key.example.starts_with(key.name), "{}", key.name);
            let nv: MetaNameValue = syn::parse_str(key.example).unwrap();
            let mut errors = Errors::default();
            Configuration::default().set(key, &nv, &mut errors);
            assert!(
                errors.messages().is_empty(),
                "{}: {:?}",
                key.name,
                errors.messages()
            );
            assert_eq!(
                key.group == Group::Pulse,
                !key.config_method.is_empty(),
                "{}",
                key.name
            );
        }
    }

    #[test]
    fn suggests_the_closest_key() {
        let messages = errors_of(quote!(flush_msec = 100));
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].starts_with("unknown argument `flush_msec`; did you mean `flush_ms`?"),
            "{}",
            messages[0]
        );
        assert!(
            messages[0].contains("`max_total_size`"),
            "lists the keys: {}",
            messages[0]
        );
        assert!(errors_of(quote!(core_threads = 2))[0].contains("did you mean `worker_threads`?"));
        assert!(!errors_of(quote!(colour = 2))[0].contains("did you mean"));
    }

    #[test]
    fn reports_all_errors_at_once() {
        let messages = errors_of(quote!(
            flush_ms = 0,
            sample_ms = "10",
            writer = "roating",
            flavor = current_thread,
            flush_ms = 5,
            max_file_size = "64M",
            enabled = "yes",
            nope = 1
        ));
        assert_eq!(messages.len(), 8, "{messages:#?}");
        assert!(messages[0].contains("`flush_ms` must be at least 1"));
        assert!(messages[1].contains("remove the quotes: `sample_ms = 10`"));
        assert!(messages[2].contains("did you mean \"rotating\"?"));
        assert!(messages[3].contains("add quotes: `flavor = \"current_thread\"`"));
        assert!(messages[4].contains("`flush_ms` is set more than once"));
        assert!(messages[5].contains("unknown unit `M`"));
        assert!(messages[6].contains("`enabled` expects `true` or `false`"));
        assert!(messages[7].contains("unknown argument `nope`"));
    }

    #[test]
    fn bare_words_get_the_right_spelling() {
        assert!(
            errors_of(quote!(current_thread))[0].contains("write `flavor = \"current_thread\"`")
        );
        assert!(errors_of(quote!(flush_ms))[0]
            .contains("`flush_ms` needs a value, e.g. `flush_ms = 250`"));
        assert!(
            errors_of(quote!(flush_ms(5)))[0].contains("written `key = value`: `flush_ms = 250`")
        );
        assert!(errors_of(quote!(flush_ms = -5))[0].contains("`flush_ms` cannot be negative"));
    }
}
