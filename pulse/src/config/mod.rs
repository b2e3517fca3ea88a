//! [`Config`]: the one description of a recording that `Recorder`, the
//! `#[pulse::main]` macro and environment overrides all go through.

pub mod env;

use crate::error::Error;
use crate::record::metrics::HistogramLayout;
use crate::writer::{MemoryWriter, NullWriter, RotatingWriter, SimpleBinaryWriter, TraceWriter};
use pulse_trace::{FormatVersion, DEFAULT_TIME_UNIT_NANOS};
use std::path::{Path, PathBuf};

/// Default interval between flushes of collected events to the writer, in ms.
pub const DEFAULT_FLUSH_MS: u64 = 250;
/// Default interval between queue-depth and worker CPU samples, in ms.
pub const DEFAULT_SAMPLE_MS: u64 = 10;
/// Default size of each thread's event buffer, in full-size events of 56
/// bytes (56 KiB). Buffers hold compact records (8–24 bytes an event), so
/// this one holds about 2,400 polls.
pub const DEFAULT_BUFFER_EVENTS: usize = 1024;
/// Default bound on what waits for the writer (or is being written),
/// beyond the per-thread buffers, counted as the memory it holds (a
/// handed-over buffer at its capacity) in full-size events of 56 bytes:
/// 128 Ki of them, 7 MiB, which with 8 workers' buffers keeps the recorder
/// within 8 MiB. The backlog holds compact records, about 12 bytes per
/// poll event, so it takes ~600 Ki poll events. Past it, events are dropped
/// and counted rather than queued.
pub const DEFAULT_MAX_PENDING_EVENTS: usize = 128 * 1024;
/// Default number of polls a thread counts before submitting its metrics.
pub const DEFAULT_METRICS_SUBMIT_EVERY: u32 = 256;
/// Default trace path (relative to the working directory).
pub const DEFAULT_PATH: &str = "pulse-trace.bin";
/// Default size of one rotated file.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;
/// Default bound on the total size of a rotated set.
pub const DEFAULT_MAX_TOTAL_SIZE: u64 = 512 * 1024 * 1024;
/// Default path automatic flight-recorder dumps are named after
/// (`pulse-dump-<trigger>-<unix seconds>-<n>.bin`).
pub const DEFAULT_DUMP_PATH: &str = "pulse-dump.bin";
/// Default memory the flight recorder keeps, in encoded bytes.
pub const DEFAULT_MEMORY_SIZE: u64 = 64 * 1024 * 1024;
/// Default time the flight recorder keeps, in seconds.
pub const DEFAULT_MEMORY_SECONDS: u64 = 30;
/// Default signal that dumps the flight recorder (SIGUSR2 on Linux).
pub const DEFAULT_DUMP_SIGNAL: i32 = 12;
/// Default time an automatic dump waits after its trigger, so the dump
/// holds what followed too, in ms.
pub const DEFAULT_DUMP_AFTER_MS: u64 = 1000;
/// Default least time between two automatic dumps, in ms.
pub const DEFAULT_DUMP_COOLDOWN_MS: u64 = 60_000;
/// Default most automatic dumps in any hour.
pub const DEFAULT_DUMP_MAX_PER_HOUR: u32 = 10;

/// Where the trace goes.
///
/// # Examples
///
/// ```
/// use pulse::WriterConfig;
///
/// let rotating = WriterConfig::rotating("trace.bin", 16 << 20, 128 << 20);
/// assert_eq!(rotating.path().unwrap().to_str(), Some("trace.bin"));
/// assert_eq!(WriterConfig::Null.path(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriterConfig {
    /// A set of files `path.0.ext`, `path.1.ext`, ..., each at most
    /// `max_file_size` bytes; the oldest are deleted to keep the set within
    /// `max_total_size`. See [`RotatingWriter`].
    Rotating {
        /// Base path of the set.
        path: PathBuf,
        /// Largest size of one file, in bytes.
        max_file_size: u64,
        /// Largest size of the whole set, in bytes.
        max_total_size: u64,
    },
    /// One file that grows for the whole run. See [`SimpleBinaryWriter`].
    File {
        /// The file.
        path: PathBuf,
    },
    /// Record, but write nothing (for measuring pulse's own overhead).
    Null,
    /// The in-memory flight recorder: keeps the last `max_size` bytes or
    /// `max_seconds` seconds of the encoded trace (whichever is less) and
    /// writes nothing until a dump. See [`MemoryWriter`].
    Memory {
        /// Automatic dumps (signal, panic, `dump_on`) are written next to
        /// this path, named after it.
        path: PathBuf,
        /// Most encoded bytes kept (`memory_size`, `PULSE_MEMORY_SIZE`).
        max_size: u64,
        /// Most seconds kept (`memory_seconds`, `PULSE_MEMORY_SECONDS`).
        max_seconds: u64,
    },
}

impl WriterConfig {
    /// A rotating set at `path`.
    pub fn rotating(path: impl Into<PathBuf>, max_file_size: u64, max_total_size: u64) -> Self {
        WriterConfig::Rotating {
            path: path.into(),
            max_file_size,
            max_total_size,
        }
    }

    /// A single file at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        WriterConfig::File { path: path.into() }
    }

    /// The in-memory flight recorder with the default limits (the last
    /// 64 MiB or 30 s, whichever is less), automatic dumps named after
    /// `path`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse::WriterConfig;
    ///
    /// let memory = WriterConfig::memory("incident.bin");
    /// assert_eq!(memory, WriterConfig::Memory {
    ///     path: "incident.bin".into(),
    ///     max_size: 64 << 20,
    ///     max_seconds: 30,
    /// });
    /// ```
    pub fn memory(path: impl Into<PathBuf>) -> Self {
        WriterConfig::Memory {
            path: path.into(),
            max_size: DEFAULT_MEMORY_SIZE,
            max_seconds: DEFAULT_MEMORY_SECONDS,
        }
    }

    /// The trace path, if this writer writes files (for the flight
    /// recorder: the path automatic dumps are named after).
    pub fn path(&self) -> Option<&Path> {
        match self {
            WriterConfig::Rotating { path, .. }
            | WriterConfig::File { path }
            | WriterConfig::Memory { path, .. } => Some(path),
            WriterConfig::Null => None,
        }
    }

    /// What the start line on stderr says about where the trace goes.
    pub(crate) fn describe_destination(&self) -> String {
        let absolute = |path: &Path| {
            std::path::absolute(path)
                .unwrap_or_else(|_| path.to_owned())
                .display()
                .to_string()
        };
        match self {
            WriterConfig::Rotating {
                path,
                max_total_size,
                ..
            } => {
                let pattern = pulse_trace::rotated_path(path, 0);
                let pattern = absolute(&pattern);
                // `trace.0.bin` -> `trace.*.bin`.
                let pattern = match pattern.rfind(".0") {
                    Some(at) => format!("{}.*{}", &pattern[..at], &pattern[at + 2..]),
                    None => pattern,
                };
                format!(
                    "recording to {pattern} (rotating, {} max)",
                    human_size(*max_total_size)
                )
            }
            WriterConfig::File { path } => format!("recording to {}", absolute(path)),
            WriterConfig::Null => "recording without writing (writer = null)".to_owned(),
            WriterConfig::Memory {
                path,
                max_size,
                max_seconds,
            } => format!(
                "recording into memory (the last {} or {max_seconds} s), dumps next to {}",
                human_size(*max_size),
                absolute(path)
            ),
        }
    }
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig::rotating(DEFAULT_PATH, DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_TOTAL_SIZE)
    }
}

/// `512 MiB`, `4 KiB`, `1000 B`.
fn human_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    if bytes >= 1 << 20 {
        return format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64);
    }
    format!("{bytes} B")
}

/// What makes the flight recorder dump by itself (`dump_on`): a live
/// measurement past a threshold.
///
/// # Examples
///
/// ```
/// use pulse::config::{DumpTrigger, DumpWhen};
///
/// let trigger: DumpTrigger = "poll>50ms".parse()?;
/// assert_eq!(trigger, DumpTrigger { when: DumpWhen::Poll, threshold_ms: 50 });
/// assert_eq!(trigger.to_string(), "poll>50ms");
/// assert!("poll>fast".parse::<DumpTrigger>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DumpTrigger {
    /// What is measured.
    pub when: DumpWhen,
    /// The threshold, in milliseconds.
    pub threshold_ms: u64,
}

/// The measurements a [`DumpTrigger`] can watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DumpWhen {
    /// One task poll took longer than the threshold (`poll>50ms`): a
    /// blocking call or a long computation inside a poll.
    Poll,
    /// A worker thread waited for a CPU (runnable, not running) longer
    /// than the threshold within one sampling interval
    /// (`descheduled>100ms`): CPU starvation or throttling.
    Descheduled,
}

impl std::str::FromStr for DumpTrigger {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = "expected poll>DURATION or descheduled>DURATION, e.g. \"poll>50ms\"";
        let Some((what, threshold)) = text.trim().split_once('>') else {
            return Err(format!("\"{text}\": {expected}"));
        };
        let when = match what.trim().to_ascii_lowercase().as_str() {
            "poll" => DumpWhen::Poll,
            "descheduled" => DumpWhen::Descheduled,
            other => return Err(format!("\"{other}\" is not a measurement; {expected}")),
        };
        let threshold = threshold.trim();
        let (number, scale) = if let Some(n) = threshold.strip_suffix("ms") {
            (n, 1)
        } else if let Some(n) = threshold.strip_suffix('s') {
            (n, 1000)
        } else {
            return Err(format!("\"{threshold}\" needs a unit, ms or s; {expected}"));
        };
        let threshold_ms = number
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n >= 1)
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(|| format!("\"{threshold}\" is not a whole duration ≥ 1; {expected}"))?;
        Ok(DumpTrigger { when, threshold_ms })
    }
}

impl std::fmt::Display for DumpTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.when {
            DumpWhen::Poll => "poll",
            DumpWhen::Descheduled => "descheduled",
        };
        write!(f, "{what}>{}ms", self.threshold_ms)
    }
}

/// Everything that describes one recording.
///
/// Build it with the chained setters, then hand it to
/// [`Recorder::build_with_config`](crate::Recorder::build_with_config).
/// Defaults are the seed design's: flush every 250 ms, sample every 10 ms,
/// 1024-event thread buffers, a rotating writer at `pulse-trace.bin`, the v6
/// format, recording enabled.
///
/// # Examples
///
/// ```
/// use pulse::{Config, WriterConfig};
/// use std::time::Duration;
///
/// let config = Config::new()
///     .flush_ms(100)
///     .sample_ms(5)
///     .writer(WriterConfig::file("trace.bin"));
/// config.validate()?;
/// assert_eq!(config.buffer_events, 1024);
/// assert_eq!(config.flush_ms, 100);
/// # Ok::<(), pulse::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// How often, in milliseconds, the background thread hands collected
    /// events to the writer (`flush_ms` in `#[pulse::main]`,
    /// `PULSE_FLUSH_MS`).
    pub flush_ms: u64,
    /// How often, in milliseconds, the background thread samples the global
    /// queue depth and each worker's CPU time and run-queue wait
    /// (`sample_ms`, `PULSE_SAMPLE_MS`).
    pub sample_ms: u64,
    /// Size of each thread's buffer, in full-size (56-byte) events; it
    /// holds 2.3–7× as many compact records (`buffer_events`,
    /// `PULSE_BUFFER_EVENTS`).
    pub buffer_events: usize,
    /// Bound on the memory waiting for the writer beyond the thread
    /// buffers, in full-size (56-byte) events; it holds 2.3–7× as many
    /// compact records (`max_pending_events`, `PULSE_MAX_PENDING_EVENTS`).
    pub max_pending_events: usize,
    /// Where the trace goes (`writer`/`path`/`max_file_size`/
    /// `max_total_size`, `PULSE_WRITER`/`PULSE_PATH`/...).
    pub writer: WriterConfig,
    /// The file format version (`format`, `PULSE_FORMAT`).
    pub format: FormatVersion,
    /// Timestamp resolution on disk for the v6 format, in nanoseconds.
    pub time_unit_nanos: u32,
    /// Whether recording starts enabled (`enabled`, `PULSE=off`).
    pub enabled: bool,
    /// Whether park/unpark read the thread's run-queue wait from schedstat
    /// (`run_queue_wait`, `PULSE_RUN_QUEUE_WAIT`).
    pub run_queue_wait: bool,
    /// Whether every PollStart carries its task's schedule latency, Tokio's
    /// measure of how long the task waited between being scheduled and
    /// being polled (`schedule_latency`, `PULSE_SCHEDULE_LATENCY`). Off by
    /// default: see [`Config::schedule_latency`] for its cost.
    pub schedule_latency: bool,
    /// The buckets of the live poll-duration histogram.
    pub poll_histogram: HistogramLayout,
    /// Polls a thread counts locally before submitting its live metrics.
    pub metrics_submit_every: u32,
    /// The service this program is, recorded in the trace's metadata with
    /// the host, process id and executable (`service`, `PULSE_SERVICE`);
    /// `pulse export parquet` files the trace under it.
    pub service: Option<String>,
    /// Whether SIGTERM, SIGINT and SIGHUP, and panics, write the last
    /// events before the process ends (`signals`, `PULSE_SIGNALS`). Off
    /// for [`Recorder`](crate::Recorder) users (opt in with
    /// [`Config::signals`]); on under `#[pulse::main]` unless
    /// `signals = false` (or a `config` function leaves it off). Signals
    /// are handled on Linux; elsewhere only panics flush.
    pub signals: bool,
    /// No line on stderr when recording starts (`quiet`, `PULSE_QUIET`):
    /// `#[pulse::main]` prints where the trace goes; `Recorder` users
    /// print nothing at start. Lines about lost events are still printed.
    pub quiet: bool,
    /// The signal that dumps the flight recorder (`dump_signal`,
    /// `PULSE_DUMP_SIGNAL`); `None` for none. Left alone when the program
    /// already handles it.
    pub dump_signal: Option<i32>,
    /// What makes the flight recorder dump by itself (`dump_on`,
    /// `PULSE_DUMP_ON`).
    pub dump_on: Vec<DumpTrigger>,
    /// How long an automatic dump waits after its trigger, so that it holds
    /// what followed too, in ms (`dump_after_ms`, `PULSE_DUMP_AFTER_MS`).
    pub dump_after_ms: u64,
    /// Least time between two automatic dumps of one trigger (`poll`,
    /// `descheduled`, `panic`), in ms (`dump_cooldown_ms`,
    /// `PULSE_DUMP_COOLDOWN_MS`).
    pub dump_cooldown_ms: u64,
    /// Most automatic dumps of one trigger in any hour (`dump_max_per_hour`,
    /// `PULSE_DUMP_MAX_PER_HOUR`).
    pub dump_max_per_hour: u32,
    /// Whether the sampler captures the stacks of long polls (`stacks`,
    /// `PULSE_STACKS`).
    pub stacks: bool,
    /// How long a poll must have lasted before its stacks are captured
    /// (`stack_threshold_ms`, `PULSE_STACK_THRESHOLD_MS`).
    pub stack_threshold_ms: u64,
}

/// Default [`Config::stack_threshold_ms`]: half of `pulse analyze`'s
/// default long-poll threshold (10 ms), so a long poll carries stacks.
pub const DEFAULT_STACK_THRESHOLD_MS: u64 = 5;

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// The default configuration.
    pub fn new() -> Self {
        Config {
            flush_ms: DEFAULT_FLUSH_MS,
            sample_ms: DEFAULT_SAMPLE_MS,
            buffer_events: DEFAULT_BUFFER_EVENTS,
            max_pending_events: DEFAULT_MAX_PENDING_EVENTS,
            writer: WriterConfig::default(),
            format: FormatVersion::default(),
            time_unit_nanos: DEFAULT_TIME_UNIT_NANOS,
            enabled: true,
            run_queue_wait: true,
            schedule_latency: false,
            poll_histogram: HistogramLayout::default(),
            metrics_submit_every: DEFAULT_METRICS_SUBMIT_EVERY,
            service: None,
            signals: false,
            quiet: false,
            dump_signal: Some(DEFAULT_DUMP_SIGNAL),
            dump_on: Vec::new(),
            dump_after_ms: DEFAULT_DUMP_AFTER_MS,
            dump_cooldown_ms: DEFAULT_DUMP_COOLDOWN_MS,
            dump_max_per_hour: DEFAULT_DUMP_MAX_PER_HOUR,
            stacks: true,
            stack_threshold_ms: DEFAULT_STACK_THRESHOLD_MS,
        }
    }

    /// Whether SIGTERM, SIGINT and SIGHUP (and panics) write everything
    /// recorded up to them before the process ends; the program's own
    /// handlers, the default action and the exit status are unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = pulse::Config::new().signals(true).quiet(true);
    /// assert!(config.signals && config.quiet);
    /// ```
    pub fn signals(mut self, on: bool) -> Self {
        self.signals = on;
        self
    }

    /// No line on stderr when recording starts.
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// The signal that dumps the flight recorder, or `None`.
    pub fn dump_signal(mut self, signal: Option<i32>) -> Self {
        self.dump_signal = signal;
        self
    }

    /// What makes the flight recorder dump by itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse::{Config, WriterConfig};
    ///
    /// let config = Config::new()
    ///     .writer(WriterConfig::memory("incident.bin"))
    ///     .dump_on(vec!["poll>50ms".parse()?])
    ///     .dump_after_ms(500);
    /// assert_eq!(config.dump_on[0].threshold_ms, 50);
    /// # Ok::<(), String>(())
    /// ```
    pub fn dump_on(mut self, triggers: Vec<DumpTrigger>) -> Self {
        self.dump_on = triggers;
        self
    }

    /// How long an automatic dump waits after its trigger, in ms.
    pub fn dump_after_ms(mut self, millis: u64) -> Self {
        self.dump_after_ms = millis;
        self
    }

    /// Least time between two automatic dumps, in ms.
    pub fn dump_cooldown_ms(mut self, millis: u64) -> Self {
        self.dump_cooldown_ms = millis;
        self
    }

    /// Most automatic dumps in any hour.
    pub fn dump_max_per_hour(mut self, dumps: u32) -> Self {
        self.dump_max_per_hour = dumps;
        self
    }

    /// Whether the sampler captures the user stack of a worker whose poll
    /// has lasted longer than [`Config::stack_threshold_ms`], at most once
    /// per `sample_ms` and 5 ms (Linux x86_64; see the README's "Stacks of long
    /// polls"). Shorter polls cost the workers nothing: their hot path does
    /// no additional work; the sampler thread decodes each record once more
    /// to see which poll is open.
    ///
    /// ```
    /// let config = pulse::Config::new().stacks(false);
    /// assert!(!config.stacks);
    /// ```
    pub fn stacks(mut self, enabled: bool) -> Self {
        self.stacks = enabled;
        self
    }

    /// How long a poll must have lasted before its stacks are captured
    /// (default 5 ms).
    ///
    /// ```
    /// let config = pulse::Config::new().stack_threshold_ms(20);
    /// assert_eq!(config.stack_threshold_ms, 20);
    /// ```
    pub fn stack_threshold_ms(mut self, millis: u64) -> Self {
        self.stack_threshold_ms = millis;
        self
    }

    /// How often, in milliseconds, the background thread hands collected
    /// events to the writer.
    pub fn flush_ms(mut self, millis: u64) -> Self {
        self.flush_ms = millis;
        self
    }

    /// How often, in milliseconds, the background thread samples the global
    /// queue depth and each worker's CPU time and run-queue wait (default
    /// 10).
    ///
    /// Each sample wakes pulse's background thread, which costs CPU time
    /// whether the program is busy or idle. On the 2-vCPU KVM guest of
    /// BENCHMARKS.md ("Eleventh" and "Twelfth pass") a timed wake-up
    /// alone costs a thread 43–64 µs of CPU after a 10 ms wait (20–27 µs
    /// after 1–2 ms: the guest's price grows with how long the CPU idled)
    /// and a tick 57–83 µs with its sample, so an idle traced runtime
    /// costs 0.6–0.8 % of a core at 10 ms, 0.16–0.18 % at 50 ms and
    /// 0.03 % at 1000 ms (`benches/src/bin/sampler_cost.rs` measures your
    /// machine); on a busy RESP server, 50 ms instead of 10 saved 0.6–1.1 %
    /// of its CPU per request. A longer interval costs the analysis what
    /// the samples see: the global queue (the verdict "parked while work
    /// queued" found 2 of 20 injected faults at 50 ms, 7–13 of 20 at
    /// 10 ms, in VERDICTS.md's scenario; at 20 ms it found as many, but 2
    /// of its 146 findings were wrong) and the readings inside long polls.
    ///
    /// ```
    /// let config = pulse::Config::new().sample_ms(50);
    /// assert_eq!(config.sample_ms, 50);
    /// ```
    pub fn sample_ms(mut self, millis: u64) -> Self {
        self.sample_ms = millis;
        self
    }

    /// Size of each thread's buffer, in full-size events (56 bytes each;
    /// the buffer holds compact records of 8–24 bytes per event). A full
    /// buffer is handed to the collector at once.
    pub fn buffer_events(mut self, events: usize) -> Self {
        self.buffer_events = events;
        self
    }

    /// Bound on the memory waiting for the writer (beyond the thread
    /// buffers), in full-size events of 56 bytes (the backlog holds compact
    /// records of 8–24 bytes per event). When the writer falls this far
    /// behind, further events are dropped and counted, so memory stays
    /// bounded and workers never wait.
    pub fn max_pending_events(mut self, events: usize) -> Self {
        self.max_pending_events = events;
        self
    }

    /// Where the trace goes.
    pub fn writer(mut self, writer: WriterConfig) -> Self {
        self.writer = writer;
        self
    }

    /// Which file format version to write.
    pub fn format(mut self, format: FormatVersion) -> Self {
        self.format = format;
        self
    }

    /// Timestamp resolution on disk for the v6 format, in nanoseconds.
    pub fn time_unit_nanos(mut self, nanos: u32) -> Self {
        self.time_unit_nanos = nanos;
        self
    }

    /// Whether recording starts enabled (it can be toggled at run time with
    /// [`RecordingHandle`](crate::RecordingHandle)).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Whether park/unpark readings include the thread's run-queue wait.
    ///
    /// A park or unpark takes a reading at most once per millisecond per
    /// thread (`pulse_trace::READING_INTERVAL_NANOS`). On (the default),
    /// a reading is one `pread` of `/proc/thread-self/schedstat`, which
    /// gives CPU time and run-queue wait together; off, it is one
    /// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` (CPU time only), and the
    /// sampler stops reading the workers' run-queue wait too. Off, the
    /// analysis can no longer tell a worker waiting for a CPU from one
    /// asleep: "descheduled by the OS" is never reported and parked stretches
    /// count as asleep. BENCHMARKS.md ("Park/unpark readings") has the
    /// measured difference. Ignored where schedstat is unavailable.
    pub fn run_queue_wait(mut self, enabled: bool) -> Self {
        self.run_queue_wait = enabled;
        self
    }

    /// Whether every PollStart carries its task's schedule latency: how
    /// long the task waited between its latest transition to "scheduled"
    /// (spawned, woken, yielded) and the start of the poll, as Tokio
    /// measures it (`TaskMeta::schedule_latency`). `pulse analyze` then
    /// says which tasks each finding delayed, by how much, the
    /// distribution per spawn site and per worker, and reports waits no
    /// other finding explains ("saturated").
    ///
    /// It turns on Tokio's `track_task_schedule_latency`, which reads
    /// `Instant::now()` whenever a task is scheduled and before every
    /// poll: measured (BENCHMARKS.md, "Schedule latency") it costs little
    /// on I/O servers but far more than the always-on budget on a yield
    /// storm, so it is off by default. Pulse adds one word per PollStart
    /// in memory and about 5 bytes per poll on disk.
    ///
    /// Needs `--cfg tokio_unstable` on a 64-bit target (Tokio's
    /// `schedule-latency` feature, which this crate turns on there);
    /// elsewhere the setting is accepted, nothing is recorded, and the
    /// trace's metadata says `schedule_latency = unavailable`.
    ///
    /// ```
    /// use pulse::Config;
    ///
    /// let config = Config::new().schedule_latency(true);
    /// assert!(config.schedule_latency);
    /// ```
    pub fn schedule_latency(mut self, enabled: bool) -> Self {
        self.schedule_latency = enabled;
        self
    }

    /// The buckets of the live poll-duration histogram (see
    /// [`RecordingHandle::metrics`](crate::RecordingHandle::metrics)).
    pub fn poll_histogram(mut self, layout: HistogramLayout) -> Self {
        self.poll_histogram = layout;
        self
    }

    /// How many polls a thread counts locally before adding them to its
    /// worker's shared metrics (it also does so at every park and buffer
    /// hand-over). Lower is fresher, higher is cheaper.
    pub fn metrics_submit_every(mut self, polls: u32) -> Self {
        self.metrics_submit_every = polls;
        self
    }

    /// The service this program is (e.g. `"checkout"`), recorded in the
    /// trace's metadata so traces from many processes stay identifiable.
    /// At most [`MAX_SERVICE_LEN`] bytes, not empty, no control characters.
    ///
    /// ```
    /// let config = pulse::Config::new().service("checkout");
    /// assert_eq!(config.service.as_deref(), Some("checkout"));
    /// assert!(pulse::Config::new().service("").validate().is_err());
    /// ```
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Checks every value, naming the first one out of range.
    pub fn validate(&self) -> Result<(), Error> {
        if self.flush_ms == 0 {
            return Err(Error::invalid("flush_ms", "must be at least 1 ms"));
        }
        if self.sample_ms == 0 {
            return Err(Error::invalid("sample_ms", "must be at least 1 ms"));
        }
        if self.buffer_events == 0 {
            return Err(Error::invalid("buffer_events", "must be at least 1"));
        }
        if self.buffer_events > MAX_BUFFER_EVENTS {
            return Err(Error::invalid(
                "buffer_events",
                format!(
                    "{} is above the limit of {MAX_BUFFER_EVENTS}",
                    self.buffer_events
                ),
            ));
        }
        if self.max_pending_events < self.buffer_events {
            return Err(Error::invalid(
                "max_pending_events",
                format!(
                    "{} is smaller than one thread buffer ({} events); it must hold at least one",
                    self.max_pending_events, self.buffer_events
                ),
            ));
        }
        if self.metrics_submit_every == 0 {
            return Err(Error::invalid("metrics_submit_every", "must be at least 1"));
        }
        if self.time_unit_nanos == 0 {
            return Err(Error::invalid("time_unit_nanos", "must be at least 1"));
        }
        if let Some(service) = &self.service {
            if service.is_empty()
                || service.len() > MAX_SERVICE_LEN
                || service.chars().any(char::is_control)
            {
                return Err(Error::invalid(
                    "service",
                    format!(
                        "{service:?} must be 1 to {MAX_SERVICE_LEN} bytes without control characters"
                    ),
                ));
            }
        }
        if let WriterConfig::Rotating {
            max_file_size,
            max_total_size,
            ..
        } = self.writer
        {
            RotatingWriter::check_limits(max_file_size, max_total_size)?;
        }
        if let WriterConfig::Memory {
            max_size,
            max_seconds,
            ..
        } = self.writer
        {
            MemoryWriter::check_limits(max_size, max_seconds)?;
        }
        if let Some(signal) = self.dump_signal {
            if !(1..=64).contains(&signal) {
                return Err(Error::invalid(
                    "dump_signal",
                    format!("{signal} is not a signal number (1..=64)"),
                ));
            }
        }
        if self.dump_max_per_hour == 0 && !self.dump_on.is_empty() {
            return Err(Error::invalid(
                "dump_max_per_hour",
                "must be at least 1 when dump_on is set",
            ));
        }
        if !self.dump_on.is_empty() && !matches!(self.writer, WriterConfig::Memory { .. }) {
            return Err(Error::invalid(
                "dump_on",
                "needs the flight recorder (writer = \"memory\"); other writers keep no window \
                 to dump",
            ));
        }
        Ok(())
    }

    /// Creates the writer this configuration describes (creating or
    /// truncating its file).
    pub fn make_writer(&self) -> Result<Box<dyn TraceWriter>, Error> {
        self.validate()?;
        Ok(match &self.writer {
            WriterConfig::Rotating {
                path,
                max_file_size,
                max_total_size,
            } => Box::new(
                RotatingWriter::new(path, *max_file_size, *max_total_size)?.format(self.format),
            ),
            WriterConfig::File { path } => {
                Box::new(SimpleBinaryWriter::with_format(path, self.format)?)
            }
            WriterConfig::Null => Box::new(NullWriter::new()),
            WriterConfig::Memory {
                max_size,
                max_seconds,
                ..
            } => Box::new(MemoryWriter::new(*max_size, *max_seconds)?.format(self.format)),
        })
    }

    /// The settings as key/value pairs, recorded in the trace's metadata.
    pub(crate) fn describe(&self) -> Vec<(String, String)> {
        let mut pairs = vec![
            ("flush_ms".to_owned(), self.flush_ms.to_string()),
            ("sample_ms".to_owned(), self.sample_ms.to_string()),
            ("buffer_events".to_owned(), self.buffer_events.to_string()),
            (
                "max_pending_events".to_owned(),
                self.max_pending_events.to_string(),
            ),
            ("run_queue_wait".to_owned(), self.run_queue_wait.to_string()),
            (
                "schedule_latency".to_owned(),
                match (
                    self.schedule_latency,
                    crate::record::SCHEDULE_LATENCY_AVAILABLE,
                ) {
                    (true, true) => "true",
                    (true, false) => "unavailable",
                    (false, _) => "false",
                }
                .to_owned(),
            ),
            (
                "stack_threshold_ms".to_owned(),
                self.stack_threshold_ms.to_string(),
            ),
            // Whether task polls, task ids, spawn sites and local queue
            // depths were recorded (they need `--cfg tokio_unstable`).
            (
                "tokio_unstable".to_owned(),
                cfg!(tokio_unstable).to_string(),
            ),
        ];
        let writer = match &self.writer {
            WriterConfig::Rotating { .. } => "rotating",
            WriterConfig::File { .. } => "file",
            WriterConfig::Null => "null",
            WriterConfig::Memory { .. } => "memory",
        };
        pairs.push(("writer".to_owned(), writer.to_owned()));
        if let Some(service) = &self.service {
            pairs.push((pulse_trace::identity::SERVICE.to_owned(), service.clone()));
        }
        if let WriterConfig::Memory {
            max_size,
            max_seconds,
            ..
        } = self.writer
        {
            pairs.push(("memory_size".to_owned(), max_size.to_string()));
            pairs.push(("memory_seconds".to_owned(), max_seconds.to_string()));
            if !self.dump_on.is_empty() {
                let triggers: Vec<String> = self.dump_on.iter().map(ToString::to_string).collect();
                pairs.push(("dump_on".to_owned(), triggers.join(",")));
                pairs.push(("dump_after_ms".to_owned(), self.dump_after_ms.to_string()));
            }
        }
        pairs.push(("signals".to_owned(), self.signals.to_string()));
        if let WriterConfig::Rotating {
            max_file_size,
            max_total_size,
            ..
        } = self.writer
        {
            pairs.push(("max_file_size".to_owned(), max_file_size.to_string()));
            pairs.push(("max_total_size".to_owned(), max_total_size.to_string()));
        }
        pairs
    }
}

/// Longest accepted [`Config::service`], in bytes.
pub const MAX_SERVICE_LEN: usize = 200;

/// Largest accepted thread buffer; beyond this a buffer costs more memory per
/// thread than it can save in flushes.
pub const MAX_BUFFER_EVENTS: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seed_design() {
        let c = Config::default();
        assert_eq!(c.flush_ms, 250);
        assert_eq!(c.sample_ms, 10);
        assert_eq!(c.buffer_events, 1024);
        assert_eq!(c.format, FormatVersion::V6);
        assert!(c.enabled);
        c.validate().unwrap();
    }

    #[test]
    fn validation_names_the_setting() {
        let cases = [
            (Config::new().flush_ms(0), "flush_ms"),
            (Config::new().sample_ms(0), "sample_ms"),
            (Config::new().buffer_events(0), "buffer_events"),
            (
                Config::new().buffer_events(MAX_BUFFER_EVENTS + 1),
                "buffer_events",
            ),
            (Config::new().max_pending_events(10), "max_pending_events"),
            (Config::new().time_unit_nanos(0), "time_unit_nanos"),
            (
                Config::new().writer(WriterConfig::rotating("t.bin", 1 << 20, 1 << 10)),
                "max_total_size",
            ),
        ];
        for (config, name) in cases {
            match config.validate() {
                Err(Error::InvalidConfig { setting, .. }) => assert_eq!(setting, name),
                other => panic!("expected {name} to be rejected, got {other:?}"),
            }
        }
    }
}
