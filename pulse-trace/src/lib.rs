//! The on-disk trace format: header, record encoding and decoding, and the
//! naming of rotated files. This is the only module that knows byte layouts;
//! [`FORMAT.md`](https://github.com/pulse-rs/pulse/blob/main/FORMAT.md) at
//! the repository root is the specification.
//!
//! Two versions exist, both starting with the 12-byte header
//! ([`MAGIC`] + the version as a little-endian `u32`):
//!
//! - **v5**, the seed design's layout: fixed-width records, µs timestamps,
//!   u8 queue depths. Writing it saturates values that do not fit and omits
//!   event kinds it cannot carry.
//! - **v6**, the default: a metadata record, then per-worker records of
//!   varint deltas (about 3 bytes per event), with task ids, spawn
//!   locations and run-queue wait, and length-prefixed records that older
//!   readers skip.
//!
//! Writing goes through an [`Encoder`] (one per writer, kept across the
//! files of a rotated set); reading through a [`TraceReader`], which reads
//! both versions.
//!
//! # Examples
//!
//! ```
//! use pulse_trace::{Encoder, FormatVersion, TraceEvent, TraceMetadata, TraceReader};
//! use pulse_trace::RecordedEvent;
//!
//! // Timestamps are stored in ticks of `time_unit_nanos`, rounded down.
//! let metadata = TraceMetadata { time_unit_nanos: 1_000, ..TraceMetadata::default() };
//! let mut encoder = Encoder::new(FormatVersion::V6, metadata);
//! let mut bytes = Vec::new();
//! encoder.begin_file(0, &mut bytes);
//! encoder.encode(
//!     &RecordedEvent::QueueSample { timestamp_nanos: 10_999, global_queue: 700 },
//!     &mut bytes,
//! );
//!
//! let events: Vec<TraceEvent> = TraceReader::from_reader(&bytes[..], "memory")
//!     .unwrap()
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(
//!     events,
//!     [TraceEvent::QueueSample { timestamp_nanos: 10_000, global_queue: 700 }]
//! );
//! ```
#![warn(missing_docs)]

mod end;
mod error;
mod event;
mod reader;
mod rotation;
mod scan;
mod set;
pub mod span;
pub mod stack;
mod v5;
mod v6;
mod varint;

#[cfg(test)]
mod tests;

pub use end::{EndReason, TraceEnd};
pub use error::{Corruption, RecordKind, TraceError, TraceErrorKind};
pub use event::{
    Event, EventType, LocationId, RecordedEvent, SpawnLocation, SpawnSite, TraceEvent,
    WorkerThreadKind, READING_INTERVAL_NANOS,
};
pub use reader::TraceReader;
pub use rotation::{rotated_files, rotated_path};
pub use scan::{FileInfo, TraceScan};
pub use set::{SetError, TraceSet};
pub use span::{SpanId, TextId, TextRegistry};
pub use stack::{Stack, StackFrame, StackId, StackKind, StackModule, StackRegistry};
use v6::{V6Encoder, V6PollRun};

/// File magic shared by every version.
pub const MAGIC: &[u8; 8] = b"TOKIOTRC";

/// Length of the header every version starts with: [`MAGIC`] and the
/// version number as a little-endian `u32`.
pub const HEADER_LEN: usize = 12;

/// The default v6 time unit, in nanoseconds per tick.
///
/// Chosen by measurement (`FORMAT.md`, "Size"): with 32 ns ticks a
/// yield-heavy multi-thread workload averages under 3 bytes per event, most
/// time deltas fit one varint byte, and poll durations keep a resolution
/// finer than the cost of a poll itself.
pub const DEFAULT_TIME_UNIT_NANOS: u32 = 32;

/// The largest payload a v6 length-prefixed record may declare. A reader
/// rejects longer records as corrupt instead of buffering them.
pub const MAX_RECORD_LEN: u64 = 1 << 20;

/// The most distinct worker indices one v6 file may use. Readers reject
/// files with more (Tokio runtimes have far fewer workers), which bounds the
/// memory a hostile file can make a reader use.
pub const MAX_WORKERS_PER_FILE: usize = 1 << 16;

/// The largest v6 spawn-location id. An [`Encoder`] writes sites seen after
/// this many as unknown (id 0); readers reject larger ids.
pub const MAX_LOCATIONS: u32 = 1 << 20;

/// Which version of the format a writer produces.
///
/// ```
/// use pulse_trace::FormatVersion;
///
/// assert_eq!(FormatVersion::default(), FormatVersion::V6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FormatVersion {
    /// The seed design's fixed-width v5 layout (µs timestamps, u8 depths).
    V5,
    /// pulse's default: varints, no saturation, task ids, spawn locations,
    /// run-queue wait, dropped-event records, metadata, extensible.
    #[default]
    V6,
}

impl FormatVersion {
    /// Every version this crate reads and writes, oldest first.
    pub const ALL: [FormatVersion; 2] = [FormatVersion::V5, FormatVersion::V6];

    /// The version number written after the magic.
    ///
    /// ```
    /// use pulse_trace::FormatVersion;
    ///
    /// assert_eq!(FormatVersion::default().number(), 6);
    /// assert_eq!(FormatVersion::from_number(5), Some(FormatVersion::V5));
    /// assert_eq!(FormatVersion::from_number(7), None);
    /// ```
    pub fn number(self) -> u32 {
        match self {
            FormatVersion::V5 => 5,
            FormatVersion::V6 => 6,
        }
    }

    /// The version with header number `number`, if this crate knows it.
    pub fn from_number(number: u32) -> Option<FormatVersion> {
        FormatVersion::ALL
            .into_iter()
            .find(|version| version.number() == number)
    }
}

/// Per-file metadata (v6 only; a v5 file has none).
///
/// The [`Default`] is what an encoder needs when the caller knows nothing
/// else: [`DEFAULT_TIME_UNIT_NANOS`], this crate's version, no run-queue
/// wait, file 0, no configuration.
///
/// ```
/// use pulse_trace::{Encoder, FormatVersion, TraceMetadata, TraceReader};
///
/// let metadata = TraceMetadata { worker_count: 4, ..TraceMetadata::default() };
/// let mut bytes = Vec::new();
/// Encoder::new(FormatVersion::V6, metadata).begin_file(0, &mut bytes);
/// let reader = TraceReader::from_reader(&bytes[..], "trace.bin").unwrap();
/// assert_eq!(reader.metadata().map(|m| m.worker_count), Some(4));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceMetadata {
    /// Nanoseconds per timestamp tick on disk (v6). An [`Encoder`] given 0
    /// uses [`DEFAULT_TIME_UNIT_NANOS`].
    pub time_unit_nanos: u32,
    /// Worker threads in the traced runtime.
    pub worker_count: u32,
    /// Wall-clock time (ns since the Unix epoch) at trace timestamp 0.
    pub start_unix_nanos: u64,
    /// The pulse version that wrote the file.
    pub pulse_version: String,
    /// Whether park/unpark/sample records carry run-queue wait.
    pub has_run_delay: bool,
    /// This file's index in a rotated set (0 for a single file). The
    /// encoder sets it from [`Encoder::begin_file`]'s argument.
    pub file_index: u64,
    /// The recording configuration, as key/value pairs. An encoder keeps
    /// the leading pairs that fit in [`MAX_RECORD_LEN`] with the rest of
    /// the metadata. The recorder puts the process's identity first
    /// (see [`TraceMetadata::hostname`] and the keys in [`identity`]).
    pub config: Vec<(String, String)>,
}

/// The configuration keys under which the recorder writes who recorded a
/// trace, so that traces from many processes stay identifiable (FORMAT.md,
/// "Identity pairs"). Older traces lack them.
pub mod identity {
    /// The host's name (`gethostname`).
    pub const HOSTNAME: &str = "hostname";
    /// The process id, in decimal.
    pub const PID: &str = "pid";
    /// The executable's file name.
    pub const EXECUTABLE: &str = "executable";
    /// The service the program said it is (`service = "..."` in
    /// `#[pulse::main]`, `Config::service`, `PULSE_SERVICE`); absent when
    /// none was set.
    pub const SERVICE: &str = "service";
}

impl TraceMetadata {
    /// The value of configuration pair `key`, if present and not empty.
    ///
    /// ```
    /// use pulse_trace::TraceMetadata;
    ///
    /// let metadata = TraceMetadata {
    ///     config: vec![("sample_ms".into(), "10".into())],
    ///     ..TraceMetadata::default()
    /// };
    /// assert_eq!(metadata.config_value("sample_ms"), Some("10"));
    /// assert_eq!(metadata.config_value("flush_ms"), None);
    /// ```
    pub fn config_value(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The recording host's name.
    ///
    /// ```
    /// use pulse_trace::{identity, TraceMetadata};
    ///
    /// let metadata = TraceMetadata {
    ///     config: vec![
    ///         (identity::HOSTNAME.into(), "web-1".into()),
    ///         (identity::PID.into(), "4242".into()),
    ///         (identity::EXECUTABLE.into(), "checkout-server".into()),
    ///         (identity::SERVICE.into(), "checkout".into()),
    ///     ],
    ///     ..TraceMetadata::default()
    /// };
    /// assert_eq!(metadata.hostname(), Some("web-1"));
    /// assert_eq!(metadata.pid(), Some(4242));
    /// assert_eq!(metadata.executable(), Some("checkout-server"));
    /// assert_eq!(metadata.service(), Some("checkout"));
    /// assert_eq!(TraceMetadata::default().service(), None);
    /// ```
    pub fn hostname(&self) -> Option<&str> {
        self.config_value(identity::HOSTNAME)
    }

    /// The recording process's id.
    pub fn pid(&self) -> Option<u32> {
        self.config_value(identity::PID)?.parse().ok()
    }

    /// The recording executable's file name.
    pub fn executable(&self) -> Option<&str> {
        self.config_value(identity::EXECUTABLE)
    }

    /// The service name the program set, if any.
    pub fn service(&self) -> Option<&str> {
        self.config_value(identity::SERVICE)
    }
}

impl Default for TraceMetadata {
    fn default() -> Self {
        TraceMetadata {
            time_unit_nanos: DEFAULT_TIME_UNIT_NANOS,
            worker_count: 0,
            start_unix_nanos: 0,
            pulse_version: env!("CARGO_PKG_VERSION").to_owned(),
            has_run_delay: false,
            file_index: 0,
            config: Vec::new(),
        }
    }
}

/// Encodes events into bytes; one per writer, kept across rotated files so
/// spawn-location ids stay stable across a set.
///
/// Call [`begin_file`](Self::begin_file) at the start of every file, then
/// [`encode`](Self::encode) for each event. Both only append to the given
/// `Vec`, so a writer can encode into a buffer and decide afterwards where
/// the bytes go. If it discards bytes that `encode` appended (say, to move
/// an event that would overflow a file into the next one), it must call
/// `begin_file` before encoding again: that resets all per-file state, so
/// nothing the discarded bytes defined is assumed by later records.
///
/// With [`FormatVersion::V5`], events v5 cannot carry (WorkerSample,
/// EventsDropped) are silently omitted, and values saturate as `FORMAT.md`
/// describes.
///
/// # Examples
///
/// Rotating to a second file mid-stream; each file decodes on its own:
///
/// ```
/// use pulse_trace::{Encoder, FormatVersion, TraceEvent, TraceMetadata, TraceReader};
/// use pulse_trace::RecordedEvent;
///
/// let park = |timestamp_nanos| RecordedEvent::WorkerPark {
///     timestamp_nanos,
///     worker: 0,
///     local_queue: 0,
///     cpu_nanos: Some(1_000_000),
///     run_delay_nanos: Some(0),
/// };
/// let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
/// let (mut first, mut second) = (Vec::new(), Vec::new());
/// encoder.begin_file(0, &mut first);
/// encoder.encode(&park(64_000), &mut first);
/// encoder.begin_file(1, &mut second);
/// encoder.encode(&park(96_000), &mut second);
///
/// let mut reader = TraceReader::from_reader(&second[..], "trace.1.bin").unwrap();
/// assert_eq!(reader.metadata().map(|m| m.file_index), Some(1));
/// let event = reader.next_event().unwrap().unwrap();
/// assert_eq!(event.timestamp_nanos(), 96_000);
/// assert!(matches!(event, TraceEvent::WorkerPark { cpu_nanos: Some(1_000_000), .. }));
/// ```
#[derive(Debug)]
pub struct Encoder {
    version: FormatVersion,
    metadata: TraceMetadata,
    v6: V6Encoder,
    started: bool,
}

impl Encoder {
    /// A new encoder for `version`. `metadata` is written at the start of
    /// every v6 file (with `file_index` set per file); v5 files carry none.
    pub fn new(version: FormatVersion, mut metadata: TraceMetadata) -> Self {
        if metadata.time_unit_nanos == 0 {
            metadata.time_unit_nanos = DEFAULT_TIME_UNIT_NANOS;
        }
        Encoder {
            version,
            v6: V6Encoder::new(metadata.time_unit_nanos),
            metadata,
            started: false,
        }
    }

    /// The version this encoder writes.
    pub fn version(&self) -> FormatVersion {
        self.version
    }

    /// The metadata written at the start of each v6 file (as of the last
    /// [`begin_file`](Self::begin_file)).
    pub fn metadata(&self) -> &TraceMetadata {
        &self.metadata
    }

    /// Appends the start of a new file (header; for v6, metadata) and resets
    /// all per-file state, so the file decodes on its own.
    pub fn begin_file(&mut self, file_index: u64, out: &mut Vec<u8>) {
        self.metadata.file_index = file_index;
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.number().to_le_bytes());
        if self.version == FormatVersion::V6 {
            self.v6.begin_file(&self.metadata, out);
        }
        self.started = true;
    }

    /// Appends one event (and, for v6, any definition it needs first).
    ///
    /// If no file was begun yet, begins file 0 first, so the output is
    /// always a valid trace.
    #[inline]
    pub fn encode(&mut self, event: &RecordedEvent, out: &mut Vec<u8>) {
        if !self.started {
            self.begin_file(0, out);
        }
        match self.version {
            FormatVersion::V5 => v5::encode(event, out),
            FormatVersion::V6 => self.v6.encode(event, out),
        }
    }

    /// Appends the end-of-trace record (v6; v5 has none, so this appends
    /// nothing there). Write it last, after every event: a reader reports
    /// a trace whose last file has no end record after its last event as
    /// ended without a shutdown.
    pub fn encode_end(&mut self, end: &TraceEnd, out: &mut Vec<u8>) {
        if !self.started {
            self.begin_file(0, out);
        }
        if self.version == FormatVersion::V6 {
            self.v6.encode_end(end, out);
        }
    }

    /// Appends `events`, in order, exactly as [`encode`](Self::encode)
    /// called for each would, in one pass (the output's room is reserved
    /// once for the whole batch).
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse_trace::{Encoder, FormatVersion, RecordedEvent, TraceMetadata, TraceReader};
    ///
    /// let events: Vec<_> = (1..=3)
    ///     .map(|i| RecordedEvent::QueueSample { timestamp_nanos: i * 1_000, global_queue: i })
    ///     .collect();
    /// let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
    /// let mut out = Vec::new();
    /// encoder.encode_all(&events, &mut out);
    /// let read: Vec<_> = TraceReader::from_reader(&out[..], "batch.bin")
    ///     .unwrap()
    ///     .collect::<Result<_, _>>()
    ///     .unwrap();
    /// assert_eq!(read.len(), 3);
    /// ```
    pub fn encode_all(&mut self, events: &[RecordedEvent], out: &mut Vec<u8>) {
        if !self.started {
            self.begin_file(0, out);
        }
        match self.version {
            FormatVersion::V5 => events.iter().for_each(|event| v5::encode(event, out)),
            FormatVersion::V6 => self.v6.encode_all(events, out),
        }
    }

    /// Appends a PollStart given by its fields: the bytes
    /// [`encode`](Self::encode) gives for [`RecordedEvent::PollStart`].
    /// For encoders of events held in another form (pulse's compact thread
    /// records), which need not build an event first.
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse_trace::{Encoder, FormatVersion, RecordedEvent, SpawnLocation, TraceMetadata};
    ///
    /// let here = SpawnLocation(std::panic::Location::caller());
    /// let mut by_fields = Encoder::new(FormatVersion::V6, TraceMetadata::default());
    /// let mut out = Vec::new();
    /// by_fields.encode_poll_start(1_000, 0, 2, Some(7), here, &mut out);
    /// by_fields.encode_poll_end(2_000, 0, 1, &mut out);
    ///
    /// let mut by_event = Encoder::new(FormatVersion::V6, TraceMetadata::default());
    /// let mut expected = Vec::new();
    /// by_event.encode(
    ///     &RecordedEvent::PollStart {
    ///         timestamp_nanos: 1_000,
    ///         worker: 0,
    ///         local_queue: 2,
    ///         task_id: Some(7),
    ///         spawned_at: here,
    ///     },
    ///     &mut expected,
    /// );
    /// by_event.encode(
    ///     &RecordedEvent::PollEnd { timestamp_nanos: 2_000, worker: 0, local_queue: 1 },
    ///     &mut expected,
    /// );
    /// assert_eq!(out, expected);
    /// ```
    #[inline(always)]
    pub fn encode_poll_start(
        &mut self,
        timestamp_nanos: u64,
        worker: u32,
        local_queue: u32,
        task_id: Option<u64>,
        spawned_at: SpawnLocation,
        out: &mut Vec<u8>,
    ) {
        if !self.started || self.version != FormatVersion::V6 {
            let event = RecordedEvent::PollStart {
                timestamp_nanos,
                worker,
                local_queue,
                task_id,
                spawned_at,
            };
            return self.encode(&event, out);
        }
        V6Encoder::reserve_event(out);
        self.v6.poll_start(
            timestamp_nanos,
            worker,
            local_queue,
            // Tokio's task ids start at 1, so 0 stands for "unknown".
            task_id.unwrap_or(0),
            spawned_at,
            out,
        );
    }

    /// Appends a PollEnd given by its fields: the bytes
    /// [`encode`](Self::encode) gives for [`RecordedEvent::PollEnd`] (see
    /// [`encode_poll_start`](Self::encode_poll_start)).
    #[inline(always)]
    pub fn encode_poll_end(
        &mut self,
        timestamp_nanos: u64,
        worker: u32,
        local_queue: u32,
        out: &mut Vec<u8>,
    ) {
        if !self.started || self.version != FormatVersion::V6 {
            let event = RecordedEvent::PollEnd {
                timestamp_nanos,
                worker,
                local_queue,
            };
            return self.encode(&event, out);
        }
        V6Encoder::reserve_event(out);
        self.v6.poll_end(timestamp_nanos, worker, local_queue, out);
    }

    /// A run of `worker`'s PollStart and PollEnd records appended to `out`,
    /// encoded with the worker's state held in local variables: for a loop over events held
    /// in another form (pulse's compact thread records) that encodes most
    /// of them this way and falls back to
    /// [`encode_poll_start`](Self::encode_poll_start) and the others when
    /// the run refuses one. The bytes are the same as those methods give.
    ///
    /// `None` when a run cannot start: not a v6 encoder, no file begun,
    /// `worker` is not the worker of the previous record, it had no
    /// PollStart yet in this file, or the time unit is not a power of two.
    /// The run refuses a record (returns `false`, writes nothing) whose
    /// spawn location differs from the worker's previous PollStart's or
    /// whose time is earlier than the worker's previous record's: encode
    /// that one with the ordinary methods, after dropping the run.
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse_trace::{Encoder, FormatVersion, SpawnLocation, TraceMetadata};
    ///
    /// let here = SpawnLocation(std::panic::Location::caller());
    /// let elsewhere = SpawnLocation(std::panic::Location::caller());
    /// let mut by_run = Encoder::new(FormatVersion::V6, TraceMetadata::default());
    /// let mut out = Vec::new();
    /// by_run.begin_file(0, &mut out);
    /// assert!(by_run.poll_run(0, &mut out).is_none(), "no record of worker 0 yet");
    /// by_run.encode_poll_start(1_000, 0, 2, Some(7), here, &mut out);
    /// let mut run = by_run.poll_run(0, &mut out).expect("worker 0 polled at `here`");
    /// assert!(run.poll_end(2_000, 1));
    /// assert!(run.poll_start(3_000, 1, 8, here));
    /// assert!(!run.poll_start(4_000, 1, 9, elsewhere), "a new location");
    /// drop(run);
    /// by_run.encode_poll_start(4_000, 0, 1, Some(9), elsewhere, &mut out);
    ///
    /// let mut one_by_one = Encoder::new(FormatVersion::V6, TraceMetadata::default());
    /// let mut expected = Vec::new();
    /// one_by_one.begin_file(0, &mut expected);
    /// one_by_one.encode_poll_start(1_000, 0, 2, Some(7), here, &mut expected);
    /// one_by_one.encode_poll_end(2_000, 0, 1, &mut expected);
    /// one_by_one.encode_poll_start(3_000, 0, 1, Some(8), here, &mut expected);
    /// one_by_one.encode_poll_start(4_000, 0, 1, Some(9), elsewhere, &mut expected);
    /// assert_eq!(out, expected);
    /// ```
    #[inline(always)]
    pub fn poll_run<'a>(&'a mut self, worker: u32, out: &'a mut Vec<u8>) -> Option<PollRun<'a>> {
        if !self.started || self.version != FormatVersion::V6 {
            return None;
        }
        self.v6.poll_run(worker, out).map(|run| PollRun { run })
    }

    /// Appends the events `events` yields, in order, exactly as
    /// [`encode`](Self::encode) called for each would; returns how many.
    ///
    /// Being generic, the iterator is compiled into the encoding loop: an
    /// iterator that produces events from another in-memory form (pulse's
    /// compact thread records) has them encoded straight from registers,
    /// without a slice of events in between.
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse_trace::{Encoder, FormatVersion, RecordedEvent, TraceMetadata};
    ///
    /// let events = (1..=3).map(|i| RecordedEvent::QueueSample {
    ///     timestamp_nanos: i * 1_000,
    ///     global_queue: i,
    /// });
    /// let mut one_pass = Encoder::new(FormatVersion::V6, TraceMetadata::default());
    /// let mut out = Vec::new();
    /// assert_eq!(one_pass.encode_iter(events.clone(), &mut out), 3);
    ///
    /// // The same bytes as encoding a slice.
    /// let mut sliced = Encoder::new(FormatVersion::V6, TraceMetadata::default());
    /// let mut expected = Vec::new();
    /// sliced.encode_all(&events.collect::<Vec<_>>(), &mut expected);
    /// assert_eq!(out, expected);
    /// ```
    #[inline]
    pub fn encode_iter(
        &mut self,
        events: impl Iterator<Item = RecordedEvent>,
        out: &mut Vec<u8>,
    ) -> u64 {
        if !self.started {
            self.begin_file(0, out);
        }
        match self.version {
            FormatVersion::V5 => {
                let mut count = 0;
                for event in events {
                    v5::encode(&event, out);
                    count += 1;
                }
                count
            }
            FormatVersion::V6 => self.v6.encode_iter(events, out),
        }
    }
}

/// A run of one worker's PollStart and PollEnd records
/// ([`Encoder::poll_run`]). The worker's state goes back to the encoder,
/// and the bytes the run holds to the output, when the run is dropped.
///
/// # Examples
///
/// A loop that stops the run at a byte budget (a writer's chunk, a
/// file's limit less [`PollRun::MAX_RECORD_LEN`]):
///
/// ```
/// use pulse_trace::{Encoder, FormatVersion, PollRun, SpawnLocation, TraceMetadata};
///
/// let here = SpawnLocation(std::panic::Location::caller());
/// let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
/// let mut out = Vec::new();
/// encoder.begin_file(0, &mut out);
/// encoder.encode_poll_start(0, 0, 0, Some(1), here, &mut out);
/// let budget = out.len() + 100;
/// let mut run = encoder.poll_run(0, &mut out).unwrap();
/// let mut records = 0u64;
/// while run.len() + PollRun::MAX_RECORD_LEN <= budget {
///     let time = 100 * (records + 1);
///     let taken = if records % 2 == 0 {
///         run.poll_end(time, 0)
///     } else {
///         run.poll_start(time, 0, 1 + records % 4, here)
///     };
///     assert!(taken, "same worker and location, time going forward");
///     records += 1;
/// }
/// drop(run);
/// assert!(records > 0 && out.len() <= budget);
/// ```
#[derive(Debug)]
pub struct PollRun<'a> {
    run: V6PollRun<'a>,
}

impl PollRun<'_> {
    /// The most bytes one record of a run takes: a writer that must not
    /// pass a size (a rotating file's) can stop the run that much before
    /// it.
    pub const MAX_RECORD_LEN: usize = v6::RUN_RECORD_LEN;

    /// Appends the run's worker's PollStart (task id 0: unknown), or
    /// returns `false` and writes nothing if it needs more than the record
    /// (another spawn location, an earlier time).
    #[inline(always)]
    pub fn poll_start(
        &mut self,
        timestamp_nanos: u64,
        local_queue: u32,
        task_id: u64,
        spawned_at: SpawnLocation,
    ) -> bool {
        self.run
            .poll_start(timestamp_nanos, local_queue, task_id, spawned_at)
    }

    /// Appends the run's worker's PollEnd, or returns `false` and writes
    /// nothing if its time is earlier than the worker's previous record's.
    #[inline(always)]
    pub fn poll_end(&mut self, timestamp_nanos: u64, local_queue: u32) -> bool {
        self.run.poll_end(timestamp_nanos, local_queue)
    }

    /// The output's length, counting what the run holds: the run collects
    /// records in a small array and appends them to the output when it is
    /// full and when the run is dropped.
    #[inline(always)]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.run.len()
    }
}
