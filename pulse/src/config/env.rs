//! Environment variables that override a recording's settings at run time,
//! so a program built with `#[pulse::main]` can be redirected, tuned or
//! switched off without recompiling.
//!
//! | variable | accepts | overrides |
//! |---|---|---|
//! | `PULSE` | `on` or `off` (also `1`/`0`, `true`/`false`) | `enabled`; `off` runs the program on a plain Tokio runtime and writes nothing |
//! | `PULSE_PATH` | a file path | `path` (for the `file` and `rotating` writers) |
//! | `PULSE_WRITER` | `rotating`, `file`, `null` or `memory` | `writer` |
//! | `PULSE_FLUSH_MS` | an integer ≥ 1 | `flush_ms` |
//! | `PULSE_SAMPLE_MS` | an integer ≥ 1 | `sample_ms` |
//! | `PULSE_MAX_FILE_SIZE` | a size: `65536`, `64MiB`, `2GB` | `max_file_size` (rotating writer) |
//! | `PULSE_MAX_TOTAL_SIZE` | a size | `max_total_size` (rotating writer) |
//! | `PULSE_BUFFER_EVENTS` | an integer ≥ 1 | `buffer_events` |
//! | `PULSE_MAX_PENDING_EVENTS` | an integer ≥ 1 | `max_pending_events` |
//! | `PULSE_FORMAT` | `v5` or `v6` | `format` |
//! | `PULSE_RUN_QUEUE_WAIT` | `on` or `off` (also `1`/`0`, `true`/`false`) | `run_queue_wait` |
//! | `PULSE_SCHEDULE_LATENCY` | `on` or `off` (also `1`/`0`, `true`/`false`) | `schedule_latency` |
//! | `PULSE_SERVICE` | a name, e.g. `checkout` | `service` |
//! | `PULSE_SIGNALS` | `on` or `off` | `signals` (final flush on SIGTERM, SIGINT, SIGHUP and panics) |
//! | `PULSE_QUIET` | `on` or `off` | `quiet` (no line on stderr at start) |
//! | `PULSE_MEMORY_SIZE` | a size | `memory_size` (memory writer) |
//! | `PULSE_MEMORY_SECONDS` | an integer ≥ 1 | `memory_seconds` (memory writer) |
//! | `PULSE_DUMP_SIGNAL` | `SIGUSR1`, `SIGUSR2`, a number, or `off` | `dump_signal` |
//! | `PULSE_DUMP_ON` | triggers separated by commas: `poll>50ms`, `descheduled>100ms` | `dump_on` |
//! | `PULSE_DUMP_AFTER_MS` | an integer ≥ 1 | `dump_after_ms` |
//! | `PULSE_DUMP_COOLDOWN_MS` | an integer ≥ 1 | `dump_cooldown_ms` |
//! | `PULSE_DUMP_MAX_PER_HOUR` | an integer ≥ 1 | `dump_max_per_hour` |
//! | `PULSE_STACKS` | `on` or `off` | `stacks` |
//! | `PULSE_STACK_THRESHOLD_MS` | an integer ≥ 1 | `stack_threshold_ms` |
//! | `PULSE_NO_TSC` | any value | not a setting: the timestamp clock, read once per process by [`clock`](crate::clock), uses `clock_gettime(CLOCK_MONOTONIC)` (~28 ns a read here) instead of the calibrated TSC (~10 ns), as it does where the TSC is not invariant |
//!
//! Words are matched case-insensitively, and a variable set to the empty
//! string counts as unset. Sizes are whole numbers of bytes, optionally
//! followed by a unit: `B`, decimal `KB` `MB` `GB` `TB` (powers of 1000) or
//! binary `KiB` `MiB` `GiB` `TiB` (powers of 1024), as in `#[pulse::main]`'s
//! `max_file_size = "64MiB"`. `PULSE_WRITER` is applied before `PULSE_PATH`
//! and the sizes, so `PULSE_WRITER=file PULSE_PATH=run.bin` works whatever
//! the program chose.
//!
//! `#[pulse::main]` applies these on top of its arguments (and on top of
//! what a `config = ...` function returns). When a value is wrong it prints
//! one line on stderr saying which variable and what it accepts, and runs
//! the program without recording: recording never stops a program.
//! Programs that build runtimes with
//! [`Recorder`](crate::Recorder) opt in with [`apply`] or
//! [`Config::apply_env`].
//!
//! # Examples
//!
//! ```
//! use pulse::config::env;
//! use pulse::{Config, WriterConfig};
//! use std::ffi::OsString;
//!
//! // What `PULSE_WRITER=file PULSE_PATH=/tmp/run.bin PULSE_FLUSH_MS=50` does:
//! let vars = [("PULSE_WRITER", "file"), ("PULSE_PATH", "/tmp/run.bin"), ("PULSE_FLUSH_MS", "50")];
//! let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| OsString::from(v));
//! let config = env::apply_with(Config::new(), lookup)?;
//! assert_eq!(config.writer, WriterConfig::file("/tmp/run.bin"));
//! assert_eq!(config.flush_ms, 50);
//!
//! // A bad value names the variable and says what it accepts.
//! let err = env::apply_with(Config::new(), |name| {
//!     (name == "PULSE_WRITER").then(|| OsString::from("rotatin"))
//! })
//! .unwrap_err();
//! assert_eq!(err.problems()[0].variable, "PULSE_WRITER");
//! assert!(err.to_string().contains("rotating, file, null or memory"));
//! # Ok::<(), env::EnvError>(())
//! ```

use crate::config::{
    Config, DumpTrigger, WriterConfig, DEFAULT_DUMP_PATH, DEFAULT_MAX_FILE_SIZE,
    DEFAULT_MAX_TOTAL_SIZE, DEFAULT_PATH,
};
use pulse_trace::FormatVersion;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// Every variable pulse reads, in the order they are applied.
pub const VARIABLES: [&str; 24] = [
    "PULSE",
    "PULSE_WRITER",
    "PULSE_PATH",
    "PULSE_MAX_FILE_SIZE",
    "PULSE_MAX_TOTAL_SIZE",
    "PULSE_FLUSH_MS",
    "PULSE_SAMPLE_MS",
    "PULSE_BUFFER_EVENTS",
    "PULSE_MAX_PENDING_EVENTS",
    "PULSE_FORMAT",
    "PULSE_RUN_QUEUE_WAIT",
    "PULSE_SCHEDULE_LATENCY",
    "PULSE_SERVICE",
    "PULSE_SIGNALS",
    "PULSE_QUIET",
    "PULSE_MEMORY_SIZE",
    "PULSE_MEMORY_SECONDS",
    "PULSE_DUMP_SIGNAL",
    "PULSE_DUMP_ON",
    "PULSE_DUMP_AFTER_MS",
    "PULSE_DUMP_COOLDOWN_MS",
    "PULSE_DUMP_MAX_PER_HOUR",
    "PULSE_STACKS",
    "PULSE_STACK_THRESHOLD_MS",
];

/// The `PULSE_*` names among `names` that are not pulse's but look like a
/// misspelling of one (at most two edits away), each with the variable it
/// likely means. Other `PULSE_*` names (PulseAudio's `PULSE_SERVER`,
/// `PULSE_SINK`, ...) are not reported. `#[pulse::main]` prints one line
/// for each (the run is still recorded, the misspelled one ignored).
///
/// # Examples
///
/// ```
/// use std::ffi::OsString;
/// let names = ["PULSE_FLUSH_MSEC", "PULSE_SERVER", "PATH"].map(OsString::from);
/// assert_eq!(pulse::config::env::misspelled(names), [("PULSE_FLUSH_MSEC".to_owned(), "PULSE_FLUSH_MS")]);
/// ```
pub fn misspelled(names: impl IntoIterator<Item = OsString>) -> Vec<(String, &'static str)> {
    let mut found = Vec::new();
    for name in names {
        let Some(name) = name.to_str() else {
            continue;
        };
        if !name.starts_with("PULSE") || VARIABLES.contains(&name) {
            continue;
        }
        let closest = VARIABLES
            .iter()
            .map(|known| (edit_distance(name, known), *known))
            .min();
        if let Some((distance, known)) = closest {
            if distance <= 2 {
                found.push((name.to_owned(), known));
            }
        }
    }
    found
}

/// Levenshtein distance between two ASCII-ish names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// Applies the `PULSE_*` variables of this process's environment to
/// `config`. See the [module documentation](self) for the variables.
///
/// ```
/// // With no PULSE_* variable set, the configuration is unchanged.
/// # for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("PULSE")) {
/// #     unsafe { std::env::remove_var(name) };
/// # }
/// let config = pulse::config::env::apply(pulse::Config::new())?;
/// assert_eq!(config, pulse::Config::new());
/// # Ok::<(), pulse::config::env::EnvError>(())
/// ```
pub fn apply(config: Config) -> Result<Config, EnvError> {
    apply_with(config, |name| std::env::var_os(name))
}

/// Applies `PULSE_*` variables read through `lookup` (for tests, or for
/// settings kept somewhere other than the environment). Every bad value is
/// reported, not only the first.
///
/// ```
/// use std::ffi::OsString;
///
/// let lookup = |name: &str| (name == "PULSE_SAMPLE_MS").then(|| OsString::from("5"));
/// let config = pulse::config::env::apply_with(pulse::Config::new(), lookup)?;
/// assert_eq!(config.sample_ms, 5);
/// # Ok::<(), pulse::config::env::EnvError>(())
/// ```
pub fn apply_with(
    mut config: Config,
    mut lookup: impl FnMut(&str) -> Option<OsString>,
) -> Result<Config, EnvError> {
    let mut vars = Vars {
        lookup: &mut lookup,
        problems: Vec::new(),
    };

    if let Some(enabled) = vars.parse("PULSE", "on or off", parse_switch) {
        config = config.enabled(enabled);
        if !enabled {
            // Off means off: nothing else is read, nothing is reported.
            return Ok(config);
        }
    }

    if let Some(kind) = vars.parse(
        "PULSE_WRITER",
        "rotating, file, null or memory",
        parse_writer,
    ) {
        let writer = with_kind(&config.writer, kind);
        config = config.writer(writer);
    }
    if let Some((text, raw)) = vars.raw("PULSE_PATH") {
        let path = PathBuf::from(raw);
        match config.writer.clone() {
            WriterConfig::Rotating {
                max_file_size,
                max_total_size,
                ..
            } => {
                config = config.writer(WriterConfig::rotating(path, max_file_size, max_total_size))
            }
            WriterConfig::File { .. } => config = config.writer(WriterConfig::file(path)),
            WriterConfig::Memory {
                max_size,
                max_seconds,
                ..
            } => {
                config = config.writer(WriterConfig::Memory {
                    path,
                    max_size,
                    max_seconds,
                })
            }
            WriterConfig::Null => vars.problem(
                "PULSE_PATH",
                text,
                "the writer is \"null\", which writes no file; also set PULSE_WRITER=file or \
                 PULSE_WRITER=rotating",
            ),
        }
    }
    for variable in ["PULSE_MAX_FILE_SIZE", "PULSE_MAX_TOTAL_SIZE"] {
        let Some((text, size)) =
            vars.parse_keeping_text(variable, "a size such as 64MiB", |text| {
                parse_size(text).map_err(|err| Some(err.to_string()))
            })
        else {
            continue;
        };
        match config.writer.clone() {
            WriterConfig::Rotating {
                path,
                mut max_file_size,
                mut max_total_size,
            } => {
                if variable == "PULSE_MAX_FILE_SIZE" {
                    max_file_size = size;
                } else {
                    max_total_size = size;
                }
                config = config.writer(WriterConfig::rotating(path, max_file_size, max_total_size));
            }
            other => vars.problem(
                variable,
                text,
                format!(
                    "it applies only to the rotating writer, and the writer is \"{}\"; unset it \
                     or set PULSE_WRITER=rotating",
                    writer_name(&other)
                ),
            ),
        }
    }
    let millis = parse_count;
    if let Some(interval) = vars.parse(
        "PULSE_FLUSH_MS",
        "a whole number of milliseconds, at least 1",
        millis,
    ) {
        config = config.flush_ms(interval);
    }
    if let Some(interval) = vars.parse(
        "PULSE_SAMPLE_MS",
        "a whole number of milliseconds, at least 1",
        millis,
    ) {
        config = config.sample_ms(interval);
    }
    let events = |text: &str| parse_count(text).and_then(|n| usize::try_from(n).ok());
    if let Some(n) = vars.parse(
        "PULSE_BUFFER_EVENTS",
        "a whole number of events, at least 1",
        events,
    ) {
        config = config.buffer_events(n);
    }
    if let Some(n) = vars.parse(
        "PULSE_MAX_PENDING_EVENTS",
        "a whole number of events, at least 1",
        events,
    ) {
        config = config.max_pending_events(n);
    }
    if let Some(format) = vars.parse("PULSE_FORMAT", "v5 or v6", parse_format) {
        config = config.format(format);
    }
    if let Some(on) = vars.parse("PULSE_RUN_QUEUE_WAIT", "on or off", parse_switch) {
        config = config.run_queue_wait(on);
    }
    if let Some(on) = vars.parse("PULSE_SCHEDULE_LATENCY", "on or off", parse_switch) {
        config = config.schedule_latency(on);
    }
    if let Some((text, raw)) = vars.raw("PULSE_SERVICE") {
        match raw.into_string() {
            Ok(service) => config = config.service(service),
            Err(_) => vars.problem("PULSE_SERVICE", text, "a service name must be UTF-8"),
        }
    }
    if let Some(on) = vars.parse("PULSE_SIGNALS", "on or off", parse_switch) {
        config = config.signals(on);
    }
    if let Some(on) = vars.parse("PULSE_QUIET", "on or off", parse_switch) {
        config = config.quiet(on);
    }
    for variable in ["PULSE_MEMORY_SIZE", "PULSE_MEMORY_SECONDS"] {
        let Some((text, value)) = vars.parse_keeping_text(
            variable,
            "a size such as 64MiB, or a whole number of seconds",
            |text| {
                if variable == "PULSE_MEMORY_SIZE" {
                    parse_size(text).map_err(|err| Some(err.to_string()))
                } else {
                    parse_count(text).ok_or(None)
                }
            },
        ) else {
            continue;
        };
        match config.writer.clone() {
            WriterConfig::Memory {
                path,
                mut max_size,
                mut max_seconds,
            } => {
                if variable == "PULSE_MEMORY_SIZE" {
                    max_size = value;
                } else {
                    max_seconds = value;
                }
                config = config.writer(WriterConfig::Memory {
                    path,
                    max_size,
                    max_seconds,
                });
            }
            other => vars.problem(
                variable,
                text,
                format!(
                    "it applies only to the memory writer, and the writer is \"{}\"; unset it \
                     or set PULSE_WRITER=memory",
                    writer_name(&other)
                ),
            ),
        }
    }
    if let Some(signal) = vars.parse(
        "PULSE_DUMP_SIGNAL",
        "SIGUSR1, SIGUSR2, a signal number or off",
        parse_signal,
    ) {
        config = config.dump_signal(signal);
    }
    if let Some((text, raw)) = vars.raw("PULSE_DUMP_ON") {
        let parsed: Result<Vec<DumpTrigger>, String> = raw
            .to_string_lossy()
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(str::parse)
            .collect();
        match parsed {
            Ok(triggers) => config = config.dump_on(triggers),
            Err(why) => vars.problem("PULSE_DUMP_ON", text, why),
        }
    }
    if let Some(millis) = vars.parse(
        "PULSE_DUMP_AFTER_MS",
        "a whole number of milliseconds, at least 1",
        millis,
    ) {
        config = config.dump_after_ms(millis);
    }
    if let Some(millis) = vars.parse(
        "PULSE_DUMP_COOLDOWN_MS",
        "a whole number of milliseconds, at least 1",
        millis,
    ) {
        config = config.dump_cooldown_ms(millis);
    }
    if let Some(n) = vars.parse(
        "PULSE_DUMP_MAX_PER_HOUR",
        "a whole number of dumps, at least 1",
        |text| parse_count(text).and_then(|n| u32::try_from(n).ok()),
    ) {
        config = config.dump_max_per_hour(n);
    }
    if let Some(on) = vars.parse("PULSE_STACKS", "on or off", parse_switch) {
        config = config.stacks(on);
    }
    if let Some(ms) = vars.parse(
        "PULSE_STACK_THRESHOLD_MS",
        "a whole number of milliseconds, at least 1",
        millis,
    ) {
        config = config.stack_threshold_ms(ms);
    }

    if vars.problems.is_empty() {
        Ok(config)
    } else {
        Err(EnvError {
            problems: vars.problems,
        })
    }
}

/// Reads variables and collects what is wrong with them.
struct Vars<'a, F> {
    lookup: &'a mut F,
    problems: Vec<EnvProblem>,
}

impl<F: FnMut(&str) -> Option<OsString>> Vars<'_, F> {
    /// The variable's value as text (lossy, for messages) and as set;
    /// `None` when unset or empty.
    fn raw(&mut self, variable: &'static str) -> Option<(String, OsString)> {
        let value = (self.lookup)(variable).filter(|v| !v.is_empty())?;
        Some((value.to_string_lossy().into_owned(), value))
    }

    /// The parsed value of `variable`; `None` when unset, empty or bad (a
    /// problem is recorded, saying what was `expected`).
    fn parse<T>(
        &mut self,
        variable: &'static str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        self.parse_keeping_text(variable, expected, |text| parse(text).ok_or(None))
            .map(|(_, value)| value)
    }

    /// Like `parse`, also returning the text; `parse` may say why the text
    /// is wrong (`Err(Some(why))`).
    fn parse_keeping_text<T>(
        &mut self,
        variable: &'static str,
        expected: &str,
        parse: impl FnOnce(&str) -> Result<T, Option<String>>,
    ) -> Option<(String, T)> {
        let (text, raw) = self.raw(variable)?;
        match raw.to_str().ok_or(None).and_then(|s| parse(s.trim())) {
            Ok(value) => Some((text, value)),
            Err(why) => {
                let why = why.map(|why| format!("{why}; ")).unwrap_or_default();
                self.problem(variable, text, format!("{why}expected {expected}"));
                None
            }
        }
    }

    fn problem(&mut self, variable: &'static str, value: String, message: impl Into<String>) {
        self.problems.push(EnvProblem {
            variable,
            value,
            message: message.into(),
        });
    }
}

fn parse_switch(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "1" | "true" => Some(true),
        "off" | "0" | "false" => Some(false),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum WriterKind {
    Rotating,
    File,
    Null,
    Memory,
}

/// A signal for dumps: a name (`SIGUSR2`, `USR2`), a number, or `off`.
pub(crate) fn parse_signal(text: &str) -> Option<Option<i32>> {
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let number = match name {
        "OFF" | "NONE" => return Some(None),
        "USR1" => 10,
        "USR2" => 12,
        "WINCH" => 28,
        "PWR" => 30,
        other => other.parse().ok().filter(|n| (1..=64).contains(n))?,
    };
    Some(Some(number))
}

fn parse_writer(text: &str) -> Option<WriterKind> {
    match text.to_ascii_lowercase().as_str() {
        "rotating" => Some(WriterKind::Rotating),
        "file" => Some(WriterKind::File),
        "null" => Some(WriterKind::Null),
        "memory" => Some(WriterKind::Memory),
        _ => None,
    }
}

fn writer_name(writer: &WriterConfig) -> &'static str {
    match writer {
        WriterConfig::Rotating { .. } => "rotating",
        WriterConfig::File { .. } => "file",
        WriterConfig::Null => "null",
        WriterConfig::Memory { .. } => "memory",
    }
}

/// `current` turned into a writer of `kind`, keeping its path (and sizes,
/// when it stays rotating).
fn with_kind(current: &WriterConfig, kind: WriterKind) -> WriterConfig {
    let path = current
        .path()
        .map_or_else(|| PathBuf::from(DEFAULT_PATH), |p| p.to_owned());
    match (kind, current) {
        (WriterKind::Rotating, WriterConfig::Rotating { .. }) => current.clone(),
        (WriterKind::Rotating, _) => {
            WriterConfig::rotating(path, DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_TOTAL_SIZE)
        }
        (WriterKind::File, _) => WriterConfig::file(path),
        (WriterKind::Null, _) => WriterConfig::Null,
        (WriterKind::Memory, WriterConfig::Memory { .. }) => current.clone(),
        (WriterKind::Memory, WriterConfig::Null) => WriterConfig::memory(DEFAULT_DUMP_PATH),
        (WriterKind::Memory, _) => WriterConfig::memory(path),
    }
}

fn parse_format(text: &str) -> Option<FormatVersion> {
    match text.to_ascii_lowercase().as_str() {
        "v5" => Some(FormatVersion::V5),
        "v6" => Some(FormatVersion::V6),
        _ => None,
    }
}

/// A whole number ≥ 1 (digits only: no sign, no unit).
fn parse_count(text: &str) -> Option<u64> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&n| n >= 1)
}

/// A problem with one environment variable.
///
/// ```
/// use std::ffi::OsString;
///
/// let lookup = |name: &str| (name == "PULSE_FLUSH_MS").then(|| OsString::from("0"));
/// let err = pulse::config::env::apply_with(pulse::Config::new(), lookup).unwrap_err();
/// assert_eq!(err.problems()[0].variable, "PULSE_FLUSH_MS");
/// assert_eq!(err.problems()[0].value, "0");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnvProblem {
    /// The variable, e.g. `PULSE_FLUSH_MS`.
    pub variable: &'static str,
    /// Its value (lossily converted to UTF-8).
    pub value: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.variable, self.value, self.message)
    }
}

/// One or more `PULSE_*` variables have values pulse cannot use. Displays as
/// one line naming each.
///
/// ```
/// use std::ffi::OsString;
///
/// let lookup = |name: &str| match name {
///     "PULSE_FLUSH_MS" => Some(OsString::from("soon")),
///     "PULSE_FORMAT" => Some(OsString::from("v7")),
///     _ => None,
/// };
/// let err = pulse::config::env::apply_with(pulse::Config::new(), lookup).unwrap_err();
/// assert_eq!(err.problems().len(), 2);
/// assert!(err.to_string().contains("PULSE_FORMAT=\"v7\""));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvError {
    problems: Vec<EnvProblem>,
}

impl EnvError {
    /// Each bad variable, in the order they are applied.
    pub fn problems(&self) -> &[EnvProblem] {
        &self.problems
    }
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for EnvError {}

/// Why a size string was rejected by [`parse_size`].
///
/// ```
/// use pulse::config::env::{parse_size, SizeError};
///
/// assert_eq!(parse_size(""), Err(SizeError::Empty));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SizeError {
    /// Nothing but whitespace.
    #[error("the size is empty")]
    Empty,
    /// It does not start with a digit.
    #[error("a size starts with a whole number of bytes")]
    NoNumber,
    /// A fraction such as `1.5GiB`.
    #[error("sizes are whole numbers; use a smaller unit")]
    Fraction,
    /// The text after the number is not a known unit.
    #[error("unknown unit `{0}`; the units are B, KB, KiB, MB, MiB, GB, GiB, TB, TiB")]
    UnknownUnit(String),
    /// More than `u64::MAX` bytes.
    #[error("the size does not fit in 64 bits")]
    TooLarge,
}

/// Size units, matched case-insensitively.
const UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("KB", 1_000),
    ("KiB", 1 << 10),
    ("MB", 1_000_000),
    ("MiB", 1 << 20),
    ("GB", 1_000_000_000),
    ("GiB", 1 << 30),
    ("TB", 1_000_000_000_000),
    ("TiB", 1 << 40),
];

/// Reads a byte size: `"4096"`, `"64MiB"`, `"64 MiB"`, `"2GB"`,
/// `"1_048_576"`. `#[pulse::main]` reads `max_file_size = "64MiB"` the same
/// way (the two parsers share their test table).
///
/// # Examples
///
/// ```
/// use pulse::config::env::{parse_size, SizeError};
///
/// assert_eq!(parse_size("64MiB"), Ok(64 << 20));
/// assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
/// assert_eq!(parse_size("64M"), Err(SizeError::UnknownUnit("M".into())));
/// ```
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let Some(first) = text.chars().next() else {
        return Err(SizeError::Empty);
    };
    if !first.is_ascii_digit() {
        return Err(SizeError::NoNumber);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let unit = unit.trim_start();
    if unit.starts_with(['.', ',']) {
        return Err(SizeError::Fraction);
    }
    let multiplier = match unit {
        "" => 1,
        unit => UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|&(_, m)| m)
            .ok_or_else(|| SizeError::UnknownUnit(unit.to_owned()))?,
    };
    let number = digits
        .bytes()
        .filter(|&b| b != b'_')
        .try_fold(0u64, |n, b| {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        })
        .ok_or(SizeError::TooLarge)?;
    number.checked_mul(multiplier).ok_or(SizeError::TooLarge)
}

impl Config {
    /// Applies the `PULSE_*` environment variables (`PULSE=off`,
    /// `PULSE_PATH`, ...) on top of this configuration, as `#[pulse::main]`
    /// does; see [`crate::config::env`] for the variables.
    ///
    /// ```
    /// let config = pulse::Config::new().apply_env()?;
    /// # Ok::<(), pulse::config::env::EnvError>(())
    /// ```
    pub fn apply_env(self) -> Result<Config, EnvError> {
        apply(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table `#[pulse::main]`'s size parser runs too.
    const SIZE_CASES: &[(&str, Option<u64>)] = include!("../../../pulse-macros/src/size_cases.rs");

    #[test]
    fn sizes_match_the_macros_table() {
        for &(text, expected) in SIZE_CASES {
            assert_eq!(parse_size(text).ok(), expected, "parse_size({text:?})");
        }
    }

    fn apply_vars(config: Config, vars: &[(&str, &str)]) -> Result<Config, EnvError> {
        apply_with(config, |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn unset_and_empty_change_nothing() {
        assert_eq!(apply_vars(Config::new(), &[]).unwrap(), Config::new());
        let empty: Vec<(&str, &str)> = VARIABLES.iter().map(|&v| (v, "")).collect();
        assert_eq!(apply_vars(Config::new(), &empty).unwrap(), Config::new());
    }

    #[test]
    fn every_variable_overrides_its_setting() {
        let config = apply_vars(
            Config::new(),
            &[
                ("PULSE", "ON"),
                ("PULSE_WRITER", "Rotating"),
                ("PULSE_PATH", "elsewhere/t.bin"),
                ("PULSE_MAX_FILE_SIZE", "1MiB"),
                ("PULSE_MAX_TOTAL_SIZE", " 8 MiB "),
                ("PULSE_FLUSH_MS", "50"),
                ("PULSE_SAMPLE_MS", "2"),
                ("PULSE_BUFFER_EVENTS", "256"),
                ("PULSE_MAX_PENDING_EVENTS", "4096"),
                ("PULSE_FORMAT", "v5"),
                ("PULSE_SERVICE", "checkout"),
            ],
        )
        .unwrap();
        let expected = Config::new()
            .enabled(true)
            .writer(WriterConfig::rotating("elsewhere/t.bin", 1 << 20, 8 << 20))
            .flush_ms(50)
            .sample_ms(2)
            .buffer_events(256)
            .max_pending_events(4096)
            .format(FormatVersion::V5)
            .service("checkout");
        assert_eq!(config, expected);
    }

    #[test]
    fn pulse_switch() {
        for (value, enabled) in [
            ("off", false),
            ("0", false),
            ("FALSE", false),
            ("on", true),
            ("1", true),
            ("true", true),
        ] {
            let config = apply_vars(Config::new().enabled(!enabled), &[("PULSE", value)]).unwrap();
            assert_eq!(config.enabled, enabled, "PULSE={value}");
        }
        let err = apply_vars(Config::new(), &[("PULSE", "maybe")]).unwrap_err();
        assert_eq!(err.to_string(), "PULSE=\"maybe\": expected on or off");
    }

    #[test]
    fn schedule_latency_switch() {
        for (value, on) in [("on", true), ("1", true), ("off", false), ("false", false)] {
            let config = apply_vars(
                Config::new().schedule_latency(!on),
                &[("PULSE_SCHEDULE_LATENCY", value)],
            )
            .unwrap();
            assert_eq!(
                config.schedule_latency, on,
                "PULSE_SCHEDULE_LATENCY={value}"
            );
        }
        let err =
            apply_vars(Config::new(), &[("PULSE_SCHEDULE_LATENCY", "sometimes")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PULSE_SCHEDULE_LATENCY=\"sometimes\": expected on or off"
        );
    }

    #[test]
    fn off_ignores_everything_else() {
        let config = apply_vars(
            Config::new(),
            &[("PULSE", "off"), ("PULSE_FLUSH_MS", "soon")],
        )
        .unwrap();
        assert!(!config.enabled);
    }

    #[test]
    fn writer_kind_keeps_the_path() {
        let file = Config::new().writer(WriterConfig::file("mine.bin"));
        let rotating = apply_vars(file.clone(), &[("PULSE_WRITER", "rotating")]).unwrap();
        assert_eq!(
            rotating.writer,
            WriterConfig::rotating("mine.bin", DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_TOTAL_SIZE)
        );
        let null = apply_vars(file, &[("PULSE_WRITER", "null")]).unwrap();
        assert_eq!(null.writer, WriterConfig::Null);
        let back = apply_vars(null, &[("PULSE_WRITER", "file")]).unwrap();
        assert_eq!(back.writer, WriterConfig::file(DEFAULT_PATH));
        let sized = Config::new().writer(WriterConfig::rotating("r.bin", 8192, 16384));
        let same = apply_vars(sized.clone(), &[("PULSE_WRITER", "rotating")]).unwrap();
        assert_eq!(same, sized);
    }

    #[test]
    fn path_redirects_file_and_rotating_writers() {
        let file = apply_vars(
            Config::new().writer(WriterConfig::file("a.bin")),
            &[("PULSE_PATH", "b.bin")],
        )
        .unwrap();
        assert_eq!(file.writer, WriterConfig::file("b.bin"));
        let rotating = apply_vars(Config::new(), &[("PULSE_PATH", "b.bin")]).unwrap();
        assert_eq!(
            rotating.writer.path().unwrap(),
            std::path::Path::new("b.bin")
        );
    }

    #[test]
    fn conflicts_with_the_writer_are_reported() {
        let err = apply_vars(
            Config::new().writer(WriterConfig::Null),
            &[("PULSE_PATH", "t.bin")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("PULSE_WRITER=file"), "{err}");
        let err = apply_vars(
            Config::new(),
            &[("PULSE_WRITER", "file"), ("PULSE_MAX_FILE_SIZE", "1MiB")],
        )
        .unwrap_err();
        assert_eq!(err.problems()[0].variable, "PULSE_MAX_FILE_SIZE");
        assert!(err.to_string().contains("the writer is \"file\""), "{err}");
    }

    #[test]
    fn every_bad_value_is_reported_on_one_line() {
        let err = apply_vars(
            Config::new(),
            &[
                ("PULSE_WRITER", "s3"),
                ("PULSE_MAX_TOTAL_SIZE", "64M"),
                ("PULSE_FLUSH_MS", "0"),
                ("PULSE_SAMPLE_MS", "-5"),
                ("PULSE_BUFFER_EVENTS", "lots"),
                ("PULSE_MAX_PENDING_EVENTS", "1e6"),
                ("PULSE_FORMAT", "v7"),
            ],
        )
        .unwrap_err();
        let variables: Vec<&str> = err.problems().iter().map(|p| p.variable).collect();
        assert_eq!(
            variables,
            [
                "PULSE_WRITER",
                "PULSE_MAX_TOTAL_SIZE",
                "PULSE_FLUSH_MS",
                "PULSE_SAMPLE_MS",
                "PULSE_BUFFER_EVENTS",
                "PULSE_MAX_PENDING_EVENTS",
                "PULSE_FORMAT"
            ]
        );
        let line = err.to_string();
        assert!(!line.contains('\n'));
        assert!(
            line.contains("PULSE_MAX_TOTAL_SIZE=\"64M\": unknown unit `M`"),
            "{line}"
        );
        assert!(
            line.contains(
                "PULSE_FLUSH_MS=\"0\": expected a whole number of milliseconds, at least 1"
            ),
            "{line}"
        );
        assert!(
            line.contains("PULSE_FORMAT=\"v7\": expected v5 or v6"),
            "{line}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_values_are_reported() {
        use std::os::unix::ffi::OsStringExt;
        let err = apply_with(Config::new(), |name| {
            (name == "PULSE_FLUSH_MS").then(|| OsString::from_vec(vec![0xff, b'1']))
        })
        .unwrap_err();
        assert_eq!(err.problems()[0].variable, "PULSE_FLUSH_MS");
        // Paths need not be UTF-8.
        let config = apply_with(Config::new().writer(WriterConfig::file("a")), |name| {
            (name == "PULSE_PATH").then(|| OsString::from_vec(vec![b'x', 0xff]))
        })
        .unwrap();
        assert_eq!(config.writer.path().unwrap().as_os_str().len(), 2);
    }
}
