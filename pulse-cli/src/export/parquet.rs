//! Apache Parquet tables for fleet-wide queries (`pulse export parquet`).
//!
//! [`export_parquet`] turns one trace into five Parquet tables, written
//! under an output directory as Hive-style partitions, so that the exports
//! of many hosts dropped under one prefix (a directory, an object-storage
//! bucket) read as one dataset in DuckDB, DataFusion, Spark, Trino or
//! ClickHouse:
//!
//! ```text
//! OUT/polls/service=SERVICE/host=HOST/date=YYYY-MM-DD/RUN.parquet
//! OUT/parks/…    OUT/samples/…    OUT/findings/…    OUT/runs/…
//! ```
//!
//! `date` is the UTC date the trace started on (a trace that crosses
//! midnight stays under its start date). Each file is written under a
//! hidden temporary name and renamed when complete, so a query never sees
//! half a file; exporting the same run again replaces its files.
//!
//! # Schema `pulse-parquet/1`
//!
//! [`SCHEMA`] names the schema. It changes only when a column is removed
//! or changes meaning; new columns may appear under the same name. Every
//! file carries it in its key-value metadata (`pulse.schema`), with
//! `pulse.table` (the table's name) and `pulse.version` (the exporting
//! pulse). Every table starts with the run's identity:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `service` | string | the service (`--service`), also a partition |
//! | `host` | string | the host (`--host`), also a partition |
//! | `run` | string | the run (`--run`): one recording; also the file's name |
//!
//! Integers are signed (`INT64`, `INT32`: every engine reads them);
//! times relative to the trace are nanoseconds since it started (`*_ns`),
//! wall-clock times are `TIMESTAMP` in microseconds, UTC (`*_time`).
//! Absent values are `NULL`.
//!
//! **`polls`**: one row per completed poll (a PollStart followed by its
//! PollEnd on the same worker: the polls `pulse analyze` counts). A poll
//! still running when the trace ends is no row; `findings` has it, with
//! `ongoing = true`.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `worker` | int32 | the worker that polled |
//! | `task_id` | int64 | the task's Tokio id |
//! | `spawned_at` | string | where the task was spawned, `file:line:column` |
//! | `start_ns`, `duration_ns` | int64 | the poll's window (it ends at `start_ns + duration_ns`) |
//! | `start_time` | timestamp | when it started, wall clock |
//! | `local_queue_start`, `local_queue_end` | int32 | the worker's local queue at start and end |
//! | `verdict` | string | the analysis' verdict when this poll is a finding of its own (`blocked_in_poll`, `cpu_bound_poll`, `long_poll`, or `descheduled` when the finding is exactly this poll) |
//! | `cpu_ns`, `run_delay_ns`, `off_cpu_ns` | int64 | that finding's split of the poll's time: on a CPU, waiting for one, neither |
//! | `cpu_samples` | int32 | CPU readings inside the poll behind the split |
//! | `schedule_latency_ns` | int64 | how long the task waited between being scheduled (spawned, woken, yielded) and this poll; `NULL` unless recorded with `schedule_latency` |
//! | `span`, `span_fields` | string | the innermost `tracing` span the poll ran in (of the spans entered in it or already entered when it started, the deepest; at one depth the one it spent longest in), its name and fields (`NULL` outside spans) |
//!
//! `verdict` and the split are set for the long polls (at least
//! `--long-poll`) the analysis reports as findings; they are `NULL` for
//! short polls, for long polls beyond the analysis' `max_findings` cap, and
//! for long polls reported inside a longer *descheduled* window (that
//! window's row in `findings` has the split).
//!
//! **`parks`**: one row per completed park (WorkerPark followed by
//! WorkerUnpark).
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `worker` | int32 | the worker |
//! | `start_ns`, `duration_ns` | int64 | parked from, and for how long |
//! | `start_time` | timestamp | when it parked, wall clock |
//! | `local_queue_start`, `local_queue_end` | int32 | its local queue at park and unpark |
//! | `cpu_ns` | int64 | CPU time the thread used meanwhile |
//! | `wake_wait_ns` | int64 | how long it waited for a CPU after being woken (run-queue wait during the park) |
//!
//! `cpu_ns` and `wake_wait_ns` come from the CPU readings the recorder
//! takes at a park and at an unpark; it takes them only when the thread's
//! previous reading is at least [`READING_INTERVAL_NANOS`] old, so they are
//! `NULL` for parks without a reading at both ends (and `wake_wait_ns`
//! also when run-queue wait was not recorded).
//!
//! [`READING_INTERVAL_NANOS`]: pulse_trace::READING_INTERVAL_NANOS
//!
//! **`samples`**: the sampler's readings, one row each.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `kind` | string | `worker` (a worker's CPU reading) or `global_queue` |
//! | `time_ns` | int64 | when |
//! | `time` | timestamp | when, wall clock |
//! | `worker` | int32 | the worker (`worker` rows) |
//! | `cpu_ns`, `run_delay_ns` | int64 | the worker thread's CPU time and run-queue wait, cumulative |
//! | `interval_ns`, `cpu_delta_ns`, `run_delay_delta_ns` | int64 | since the worker's previous reading (`NULL` on its first) |
//! | `global_queue` | int64 | the global queue's depth (`global_queue` rows) |
//!
//! **`findings`**: the analysis' findings, as `pulse analyze --json`
//! lists them (see [`Finding`] for which columns each verdict sets).
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `verdict` | string | `parked_while_queued`, `descheduled`, `blocked_in_poll`, `cpu_bound_poll`, `long_poll`, `saturated` (and the other verdicts' keys) |
//! | `worker` | int32 | the worker |
//! | `start_ns`, `end_ns`, `duration_ns` | int64 | the window |
//! | `start_time` | timestamp | its start, wall clock |
//! | `cpu_ns`, `run_delay_ns`, `off_cpu_ns`, `cpu_samples` | int64, int32 | the window's CPU split |
//! | `task_id`, `spawned_at` | int64, string | the polled task and its spawn site |
//! | `local_queue_start`, `local_queue_end` | int32 | the worker's local queue around the poll |
//! | `next_task_id`, `next_spawned_at` | int64, string | the task polled next, before parking |
//! | `other_workers_parked` | double | share of the window the other workers were parked |
//! | `global_queue_max` | int64 | largest global queue sampled in the window |
//! | `queued_on`, `queued_on_worker` | string, int32 | where queued work waited: `global`, or `worker` and which |
//! | `queue_depth_max` | int64 | how much |
//! | `parked_ns`, `wake_wait_ns` | int64 | the whole park, and the wait for a CPU after it |
//! | `ongoing` | boolean | the poll had not ended when the trace did |
//! | `code_function`, `code_file`, `code_line` | string, string, int32 | the innermost frame of the user's own code in the finding's most frequent stack (poll findings of traces recorded with stacks; `NULL` otherwise) |
//! | `stack_kind` | string | that stack's kind: `off-cpu` (where it slept) or `on-cpu` |
//! | `stack` | list of string | its frames, innermost first, as `function (file:line)` |
//! | `delayed_tasks`, `delayed_total_ns`, `delayed_worst_ns` | int64 | traces with schedule latencies: tasks whose wait to be polled lay in the window, the parts of their waits inside it added up, and the longest (`NULL` without latencies) |
//! | `confirmed_by_delays` | boolean | `parked_while_queued` with schedule latencies: whether a task waited at least `--parked-queued` while the worker slept (`NULL` otherwise) |
//! | `span`, `span_fields` | string | the innermost `tracing` span active in the window, as `pulse analyze` names it (`NULL` without spans) |
//! | `spans` | list of string | the active spans, innermost first, as `name{fields}` |
//!
//! **`runs`**: one row per exported trace.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `trace` | string | the trace's path as given |
//! | `start_time` | timestamp | when the recording started |
//! | `duration_ns` | int64 | first to last event |
//! | `events`, `polls`, `parks`, `long_polls` | int64 | counts (polls and parks as `pulse analyze` counts them) |
//! | `findings`, `findings_omitted` | int64 | findings listed, and left out past `max_findings` |
//! | `dropped_events` | int64 | events the recorder dropped |
//! | `complete` | boolean | nothing dropped, missing or cut short |
//! | `worker_count` | int32 | workers in the runtime |
//! | `format_version` | int32, `pulse_version` string | who wrote the trace |
//!
//! # Memory
//!
//! The trace is read twice: once by the analysis (bounded, see
//! [`analysis`](crate::analysis)), keeping its findings (at most
//! `max_findings`), then once more to write the rows. Rows go to the
//! Parquet writers in batches of [`BATCH_ROWS`] and leave memory as row
//! groups of at most [`ROW_GROUP_ROWS`] rows; nothing else grows with the
//! trace.

use crate::analysis::{
    analyze_set, Analysis, AnalysisError, AnalysisOptions, Finding, QueuedOn, TraceScan, TraceSet,
    Verdict,
};
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use pulse_trace::{LocationId, SpanId, TextId, TraceEvent, TraceMetadata};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The schema's name, in every file's key-value metadata (`pulse.schema`).
pub const SCHEMA: &str = "pulse-parquet/1";

/// Rows handed to a Parquet writer at a time.
pub const BATCH_ROWS: usize = 8 * 1024;

/// Most rows in one row group: what a writer holds in memory, encoded and
/// compressed, before writing it out.
pub const ROW_GROUP_ROWS: usize = 1024 * 1024;

/// The tables, in the order they are written.
pub const TABLES: [&str; 5] = ["polls", "parks", "samples", "findings", "runs"];

/// Why an export failed.
///
/// [`Display`](std::fmt::Display) is one line, suitable as a command-line
/// tool's whole error message.
///
/// ```
/// use pulse_cli::analysis::TraceSet;
/// use pulse_cli::export::parquet::{export_parquet, ExportError, ParquetOptions};
///
/// let set = TraceSet::from_files("missing.bin", vec!["/nonexistent/missing.bin".into()]);
/// let err = export_parquet(&set, "out", &ParquetOptions::new(), |_, _| {}).unwrap_err();
/// assert!(matches!(err, ExportError::Trace(_)));
/// assert!(!err.to_string().contains('\n'));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading the trace failed.
    #[error(transparent)]
    Trace(#[from] AnalysisError),
    /// The run cannot be identified: a value is missing from the trace and
    /// the options, or is not usable in a path.
    #[error("{0}")]
    Identity(String),
    /// Writing a Parquet file failed.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
}

/// What to export and as whom.
///
/// `service`, `host` and `run` default from the trace (see
/// [`Identity::resolve`]).
///
/// ```
/// use pulse_cli::analysis::AnalysisOptions;
/// use pulse_cli::export::parquet::ParquetOptions;
/// use std::time::Duration;
///
/// let options = ParquetOptions::new()
///     .service("checkout")
///     .host("web-1")
///     .analysis(AnalysisOptions { long_poll: Duration::from_millis(5), ..AnalysisOptions::default() });
/// assert_eq!(options.run, None); // from the trace's start time and pid
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ParquetOptions {
    /// The service; default: the trace's `service`, else its executable.
    pub service: Option<String>,
    /// The host; default: the trace's hostname.
    pub host: Option<String>,
    /// The run; default: the recording's start time (UTC) and process id,
    /// e.g. `20251123T200125Z-4242`.
    pub run: Option<String>,
    /// The analysis behind `findings` and the polls' verdicts.
    pub analysis: AnalysisOptions,
}

impl ParquetOptions {
    /// Options with every identity taken from the trace and the default
    /// analysis thresholds.
    pub fn new() -> Self {
        ParquetOptions::default()
    }

    /// Sets the service.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Sets the host.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Sets the run.
    pub fn run(mut self, run: impl Into<String>) -> Self {
        self.run = Some(run.into());
        self
    }

    /// Sets the analysis thresholds.
    pub fn analysis(mut self, analysis: AnalysisOptions) -> Self {
        self.analysis = analysis;
        self
    }
}

/// Who a run is: its partition values and file name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// `service=` partition and column.
    pub service: String,
    /// `host=` partition and column.
    pub host: String,
    /// The `run` column and the file's name (`RUN.parquet`).
    pub run: String,
    /// `date=` partition: the UTC date the trace started, `YYYY-MM-DD`.
    pub date: String,
}

impl Identity {
    /// The identity from `options`, with what they leave out taken from
    /// the trace's `metadata` (see [`ParquetOptions`]).
    ///
    /// Values become directory names, so they may hold only ASCII letters,
    /// digits, `.`, `_` and `-` (at most 200 bytes, not starting with `.`).
    /// Given values that do not are an error; values from the trace have
    /// every other character replaced by `_`.
    ///
    /// # Errors
    ///
    /// The trace has no metadata (a v5 trace), or lacks a value the options
    /// do not give, or a given value is not usable in a path.
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse_cli::export::parquet::{Identity, ParquetOptions};
    /// use pulse_trace::TraceMetadata;
    ///
    /// let metadata = TraceMetadata { start_unix_nanos: 1_763_928_085_000_000_000, ..TraceMetadata::default() };
    /// let options = ParquetOptions::new().service("api").host("web-1").run("r1");
    /// let identity = Identity::resolve(&options, Some(&metadata))?;
    /// assert_eq!(identity.date, "2025-11-23");
    /// assert!(Identity::resolve(&ParquetOptions::new().host("a/b"), Some(&metadata)).is_err());
    /// # Ok::<(), pulse_cli::export::parquet::ExportError>(())
    /// ```
    pub fn resolve(
        options: &ParquetOptions,
        metadata: Option<&TraceMetadata>,
    ) -> Result<Identity, ExportError> {
        let metadata = metadata.ok_or_else(|| {
            ExportError::Identity(
                "the trace has no metadata (a v5 trace): the Parquet export needs a v6 trace, \
                 which records its start time"
                    .to_owned(),
            )
        })?;
        let given = |what: &str, value: &Option<String>| -> Result<Option<String>, ExportError> {
            match value {
                Some(value) if path_safe(value) => Ok(Some(value.clone())),
                Some(value) => Err(ExportError::Identity(format!(
                    "--{what} `{value}` cannot name a directory: use 1 to 200 ASCII letters, \
                     digits, `.`, `_` or `-`, not starting with `.`"
                ))),
                None => Ok(None),
            }
        };
        let missing = |what: &str, why: &str| {
            ExportError::Identity(format!(
                "the trace records no {why} (traces from before pulse recorded its identity lack it): pass --{what} NAME"
            ))
        };
        let service = match given("service", &options.service)? {
            Some(service) => service,
            None => recorded_service(metadata)
                .map(|s| sanitize(&s))
                .ok_or_else(|| missing("service", "service or executable name"))?,
        };
        let host = match given("host", &options.host)? {
            Some(host) => host,
            None => recorded_host(metadata)
                .map(|h| sanitize(&h))
                .ok_or_else(|| missing("host", "hostname"))?,
        };
        let start = metadata.start_unix_nanos;
        let run = match given("run", &options.run)? {
            Some(run) => run,
            None => {
                let mut run = utc(start, "%Y%m%dT%H%M%SZ");
                if let Some(pid) = recorded_pid(metadata) {
                    run.push_str(&format!("-{pid}"));
                }
                run
            }
        };
        Ok(Identity {
            service,
            host,
            run,
            date: utc(start, "%Y-%m-%d"),
        })
    }

    /// Where this run's file of `table` goes under `out`.
    ///
    /// ```
    /// use pulse_cli::export::parquet::{Identity, ParquetOptions};
    /// use pulse_trace::TraceMetadata;
    /// use std::path::Path;
    ///
    /// let options = ParquetOptions::new().service("api").host("web-1").run("r1");
    /// let identity = Identity::resolve(&options, Some(&TraceMetadata::default()))?;
    /// assert_eq!(
    ///     identity.path(Path::new("out"), "polls"),
    ///     Path::new("out/polls/service=api/host=web-1/date=1970-01-01/r1.parquet")
    /// );
    /// # Ok::<(), pulse_cli::export::parquet::ExportError>(())
    /// ```
    pub fn path(&self, out: &Path, table: &str) -> PathBuf {
        out.join(table)
            .join(format!("service={}", self.service))
            .join(format!("host={}", self.host))
            .join(format!("date={}", self.date))
            .join(format!("{}.parquet", self.run))
    }
}

/// The service the trace names, else its executable's name.
fn recorded_service(metadata: &TraceMetadata) -> Option<String> {
    metadata
        .service()
        .or_else(|| metadata.executable())
        .map(str::to_owned)
}

fn recorded_host(metadata: &TraceMetadata) -> Option<String> {
    metadata.hostname().map(str::to_owned)
}

fn recorded_pid(metadata: &TraceMetadata) -> Option<u32> {
    metadata.pid()
}

fn path_safe(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 200
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn sanitize(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    out
}

fn utc(unix_nanos: u64, format: &str) -> String {
    let nanos = i64::try_from(unix_nanos).unwrap_or(i64::MAX);
    arrow_array::temporal_conversions::timestamp_ns_to_datetime(nanos)
        .map_or_else(|| "unknown".to_owned(), |t| t.format(format).to_string())
}

/// What [`export_parquet`] wrote ([`export_parquet`]'s example reads it).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ParquetExport {
    /// Who the run was exported as.
    pub identity: Identity,
    /// Each table's file, rows and bytes, in [`TABLES`] order.
    pub files: Vec<TableFile>,
    /// The analysis behind `findings`, as `pulse analyze` reports it.
    pub analysis: Analysis,
}

/// One written table file.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TableFile {
    /// The table (`polls`, ...).
    pub table: &'static str,
    /// Where it was written.
    pub path: PathBuf,
    /// Rows written.
    pub rows: u64,
    /// The file's size.
    pub bytes: u64,
}

/// Exports `set` as Parquet tables under `out` (see the
/// [module documentation](self) for the layout and the schema), calling
/// `progress(done, total)` now and then.
///
/// # Errors
///
/// Reading the trace, identifying the run (see [`Identity::resolve`]) or
/// writing a file failed. Files of this run already complete stay as they
/// were; temporary files are removed.
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::TraceSet;
/// use pulse_cli::export::parquet::{export_parquet, ParquetOptions};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("trace.bin");
/// # let (rt, guard) = pulse::Recorder::build(
/// #     tokio::runtime::Builder::new_multi_thread(),
/// #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
/// # )?;
/// # rt.block_on(async { tokio::spawn(async {}).await })?;
/// # drop(rt); drop(guard);
///
/// let options = ParquetOptions::new().service("demo").host("laptop");
/// let export = export_parquet(&TraceSet::open(&path)?, dir.path().join("out"), &options, |_, _| {})?;
/// let polls = &export.files[0];
/// assert_eq!(polls.table, "polls");
/// assert!(polls.path.to_str().unwrap().contains("/polls/service=demo/host=laptop/date="));
/// assert_eq!(polls.rows, export.analysis.workers.iter().map(|w| w.polls).sum::<u64>());
/// # Ok(())
/// # }
/// ```
pub fn export_parquet(
    set: &TraceSet,
    out: impl AsRef<Path>,
    options: &ParquetOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<ParquetExport, ExportError> {
    let out = out.as_ref();
    let total = set.total_bytes().max(1);
    // The first file's metadata names the run: find it before the passes.
    let metadata = {
        let mut scan = TraceScan::open(set).map_err(AnalysisError::from)?;
        scan.next_event().map_err(AnalysisError::from)?;
        scan.take_started_files()
            .into_iter()
            .find_map(|(_, metadata)| metadata)
    };
    let identity = Identity::resolve(options, metadata.as_ref())?;
    let analysis = analyze_set(set, &options.analysis, |done, _| progress(done / 2, total))?;
    let start_unix_ns = analysis.trace.start_unix_ns.unwrap_or(0);
    let cleanup = || {
        for path in tables_temp_paths(out, &identity) {
            let _ = fs::remove_file(path);
        }
    };
    let mut tables = Tables::create(out, &identity, set).inspect_err(|_| cleanup())?;
    let result = (|| {
        let mut rows = RowMaker::new(&analysis, start_unix_ns);
        let mut scan = TraceScan::open(set).map_err(AnalysisError::from)?;
        let mut events = 0u64;
        while let Some(event) = scan.next_event().map_err(AnalysisError::from)? {
            rows.push(&event, &scan, &mut tables)?;
            events += 1;
            if events.is_multiple_of(64 * 1024) {
                progress(total / 2 + scan.bytes_read() / 2, total);
            }
        }
        for finding in &analysis.findings {
            tables.findings.row(finding, start_unix_ns)?;
        }
        tables.runs.row(&analysis, set)?;
        tables.finish()
    })();
    let files = match result {
        Ok(files) => files,
        Err(err) => {
            cleanup();
            return Err(err);
        }
    };
    progress(total, total);
    Ok(ParquetExport {
        identity,
        files,
        analysis,
    })
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(Default::default, |n| {
        let mut hidden = std::ffi::OsString::from(".");
        hidden.push(n);
        hidden.push(".tmp");
        hidden
    });
    path.with_file_name(name)
}

fn tables_temp_paths<'a>(
    out: &'a Path,
    identity: &'a Identity,
) -> impl Iterator<Item = PathBuf> + 'a {
    TABLES
        .iter()
        .map(move |table| temp_path(&identity.path(out, table)))
}

/// Turns the event stream into rows: pairs each worker's PollStart with
/// its PollEnd and WorkerPark with WorkerUnpark, as the analysis does.
/// The span a poll row names, while the poll runs: the deepest, and at
/// one depth the one the poll spent longest in.
#[derive(Clone)]
struct PollSpanPick {
    depth: usize,
    inside: u64,
    since: Option<u64>,
    span: SpanId,
    name: Arc<str>,
    fields: Arc<str>,
    /// The best finished candidate at the same depth, if any.
    best: Option<(u64, Arc<str>, Arc<str>)>,
}

impl PollSpanPick {
    /// Name and fields of the pick at `end`.
    fn pick(&self, end: u64) -> (Arc<str>, Arc<str>) {
        let inside = self.inside + self.since.map_or(0, |s| end.saturating_sub(s));
        match &self.best {
            Some((best, name, fields)) if *best > inside => (name.clone(), fields.clone()),
            _ => (self.name.clone(), self.fields.clone()),
        }
    }
}

struct RowMaker<'a> {
    start_unix_ns: u64,
    long_poll_ns: u64,
    /// Findings that are one poll, by (worker, start).
    poll_findings: HashMap<(u32, u64), &'a Finding>,
    workers: HashMap<u32, WorkerRows>,
    sites: HashMap<LocationId, String>,
    texts: HashMap<TextId, Arc<str>>,
}

#[derive(Default)]
struct WorkerRows {
    /// Spans entered on this worker and not exited: (span, name, fields).
    spans: Vec<(SpanId, Arc<str>, Arc<str>)>,
    /// The current poll's innermost span candidate: (depth, time inside
    /// it, entered at (if still inside), span, name, fields).
    poll_span: Option<PollSpanPick>,
    poll: Option<(u64, Option<u64>, Option<LocationId>, u32)>,
    park: Option<(u64, u32, Option<u64>, Option<u64>)>,
    sample: Option<(u64, u64, Option<u64>)>,
    /// The open poll's schedule latency.
    latency: Option<u64>,
}

impl<'a> RowMaker<'a> {
    fn new(analysis: &'a Analysis, start_unix_ns: u64) -> Self {
        let mut poll_findings = HashMap::new();
        for finding in &analysis.findings {
            if finding.verdict.is_poll() || finding.verdict == Verdict::Descheduled {
                poll_findings
                    .entry((finding.worker, finding.start_ns))
                    .or_insert(finding);
            }
        }
        RowMaker {
            start_unix_ns,
            long_poll_ns: u64::try_from(analysis.options.long_poll.as_nanos()).unwrap_or(u64::MAX),
            poll_findings,
            workers: HashMap::new(),
            sites: HashMap::new(),
            texts: HashMap::new(),
        }
    }

    fn push(
        &mut self,
        event: &TraceEvent,
        scan: &TraceScan,
        tables: &mut Tables,
    ) -> Result<(), ExportError> {
        let t = event.timestamp_nanos();
        let wall = wall_us(self.start_unix_ns, t);
        match *event {
            TraceEvent::PollStart {
                worker,
                local_queue,
                task_id,
                spawned_at,
                ..
            } => {
                let state = self.workers.entry(worker).or_default();
                state.park = None;
                state.poll = Some((t, task_id, spawned_at, local_queue));
                state.latency = None;
                state.poll_span = state.spans.last().map(|(span, name, fields)| PollSpanPick {
                    depth: state.spans.len() - 1,
                    inside: 0,
                    since: Some(t),
                    span: *span,
                    name: name.clone(),
                    fields: fields.clone(),
                    best: None,
                });
            }
            TraceEvent::ScheduleLatency {
                worker,
                latency_nanos,
                ..
            } => {
                // It follows its PollStart: the open poll's.
                let state = self.workers.entry(worker).or_default();
                if state.poll.is_some() {
                    state.latency = Some(latency_nanos);
                }
            }
            TraceEvent::SpanEnter {
                worker,
                span,
                name,
                fields,
                ..
            } => {
                let mut text = |id: TextId| {
                    self.texts
                        .entry(id)
                        .or_insert_with(|| Arc::from(scan.text(id).unwrap_or("(undefined text)")))
                        .clone()
                };
                let (name, fields) = (text(name), text(fields));
                let state = self.workers.entry(worker).or_default();
                let depth = state.spans.len();
                state.spans.push((span, name.clone(), fields.clone()));
                if state.poll.is_some() {
                    let fresh = PollSpanPick {
                        depth,
                        inside: 0,
                        since: Some(t),
                        span,
                        name,
                        fields,
                        best: None,
                    };
                    state.poll_span = match state.poll_span.take() {
                        Some(old) if old.depth > depth => Some(old),
                        Some(old) if old.depth == depth => {
                            // A sibling: keep the longer of those before.
                            let inside = old.inside + old.since.map_or(0, |s| t.saturating_sub(s));
                            let best = match old.best {
                                Some(best) if best.0 >= inside => best,
                                _ => (inside, old.name, old.fields),
                            };
                            Some(PollSpanPick {
                                best: Some(best),
                                ..fresh
                            })
                        }
                        _ => Some(fresh),
                    };
                }
            }
            TraceEvent::SpanExit { worker, span, .. } => {
                let state = self.workers.entry(worker).or_default();
                if let Some(pick) = state.poll_span.as_mut().filter(|p| p.span == span) {
                    if let Some(since) = pick.since.take() {
                        pick.inside += t.saturating_sub(since);
                    }
                }
                if let Some(at) = state.spans.iter().rposition(|(s, _, _)| *s == span) {
                    state.spans.remove(at);
                } else {
                    for other in self.workers.values_mut() {
                        other.spans.retain(|(s, _, _)| *s != span);
                    }
                }
            }
            TraceEvent::PollEnd {
                worker,
                local_queue,
                ..
            } => {
                let state = self.workers.entry(worker).or_default();
                let span = state.poll_span.take().map(|pick| pick.pick(t));
                if let Some((start, task_id, location, queue_start)) = state.poll.take() {
                    let duration = t.saturating_sub(start);
                    let finding = (duration >= self.long_poll_ns)
                        .then(|| self.poll_findings.get(&(worker, start)))
                        .flatten()
                        .filter(|f| {
                            f.verdict.is_poll() || (f.end_ns == t && f.duration_ns == duration)
                        });
                    if let Some(id) = location {
                        if let std::collections::hash_map::Entry::Vacant(entry) =
                            self.sites.entry(id)
                        {
                            if let Some(site) = scan.location(id) {
                                entry.insert(site.to_string());
                            }
                        }
                    }
                    let site = location
                        .and_then(|id| self.sites.get(&id))
                        .map(String::as_str);
                    tables.polls.row(PollRow {
                        worker,
                        task_id,
                        site,
                        start,
                        end: t,
                        start_wall: wall_us(self.start_unix_ns, start),
                        queue_start,
                        queue_end: local_queue,
                        finding: finding.copied(),
                        latency: state.latency.take(),
                        span: span.as_ref().map(|(name, fields)| (&**name, &**fields)),
                    })?;
                }
            }
            TraceEvent::WorkerPark {
                worker,
                local_queue,
                cpu_nanos,
                run_delay_nanos,
                ..
            } => {
                let state = self.workers.entry(worker).or_default();
                state.poll = None;
                state.park = Some((t, local_queue, cpu_nanos, run_delay_nanos));
            }
            TraceEvent::WorkerUnpark {
                worker,
                local_queue,
                cpu_nanos,
                run_delay_nanos,
                ..
            } => {
                let state = self.workers.entry(worker).or_default();
                if let Some((start, queue_start, cpu, run_delay)) = state.park.take() {
                    let end = t.max(start);
                    let wake_wait = run_delay
                        .zip(run_delay_nanos)
                        .map(|(a, b)| b.saturating_sub(a).min(end - start));
                    tables.parks.row(ParkRow {
                        worker,
                        start,
                        end,
                        start_wall: wall_us(self.start_unix_ns, start),
                        queue_start,
                        queue_end: local_queue,
                        cpu: cpu_nanos
                            .zip(cpu)
                            .map(|(after, before)| after.saturating_sub(before)),
                        wake_wait,
                    })?;
                }
            }
            TraceEvent::WorkerSample {
                worker,
                cpu_nanos,
                run_delay_nanos,
                ..
            } => {
                let state = self.workers.entry(worker).or_default();
                let previous = state.sample.replace((t, cpu_nanos, run_delay_nanos));
                tables
                    .samples
                    .worker(t, wall, worker, cpu_nanos, run_delay_nanos, previous)?;
            }
            TraceEvent::QueueSample { global_queue, .. } => {
                tables.samples.queue(t, wall, global_queue)?;
            }
            // Dropped events are counted in `runs`; kinds added to the
            // format after this exporter have no table yet.
            _ => {}
        }
        Ok(())
    }
}

/// Microseconds since the Unix epoch at trace time `t`.
fn wall_us(start_unix_ns: u64, t: u64) -> i64 {
    i64::try_from(start_unix_ns.saturating_add(t) / 1000).unwrap_or(i64::MAX)
}

fn i64_of(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn i32_of(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

struct PollRow<'a> {
    worker: u32,
    task_id: Option<u64>,
    site: Option<&'a str>,
    start: u64,
    end: u64,
    start_wall: i64,
    queue_start: u32,
    queue_end: u32,
    finding: Option<&'a Finding>,
    latency: Option<u64>,
    /// The poll's innermost span: name and fields.
    span: Option<(&'a str, &'a str)>,
}

struct ParkRow {
    worker: u32,
    start: u64,
    end: u64,
    start_wall: i64,
    queue_start: u32,
    queue_end: u32,
    cpu: Option<u64>,
    wake_wait: Option<u64>,
}

/// One table's file being written: its builders fill a batch, which goes
/// to the Parquet writer when full.
struct TableWriter {
    table: &'static str,
    path: PathBuf,
    temp: PathBuf,
    schema: SchemaRef,
    writer: Option<ArrowWriter<BufWriter<File>>>,
    identity: [String; 3],
    pending: usize,
    rows: u64,
}

impl TableWriter {
    fn create(
        out: &Path,
        identity: &Identity,
        set: &TraceSet,
        table: &'static str,
        fields: Vec<Field>,
    ) -> Result<TableWriter, ExportError> {
        let path = identity.path(out, table);
        let temp = temp_path(&path);
        let write_error = |source| ExportError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(write_error)?;
        }
        let mut all = vec![
            Field::new("service", DataType::Utf8, false),
            Field::new("host", DataType::Utf8, false),
            Field::new("run", DataType::Utf8, false),
        ];
        all.extend(fields);
        let metadata = HashMap::from([
            ("pulse.schema".to_owned(), SCHEMA.to_owned()),
            ("pulse.table".to_owned(), table.to_owned()),
            (
                "pulse.version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            ),
            ("pulse.trace".to_owned(), set.name().display().to_string()),
        ]);
        let schema = Arc::new(Schema::new(all).with_metadata(metadata));
        let mut properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("pulse {}", env!("CARGO_PKG_VERSION")));
        // Times, ids and cumulative readings rise nearly monotonically:
        // deltas store them in a few bits each, where a dictionary cannot.
        for column in DELTA_COLUMNS {
            if schema.fields().iter().any(|f| f.name() == column) {
                properties = properties
                    .set_column_dictionary_enabled(column.into(), false)
                    .set_column_encoding(column.into(), Encoding::DELTA_BINARY_PACKED);
            }
        }
        let properties = properties.build();
        let file = File::create(&temp).map_err(write_error)?;
        let writer = ArrowWriter::try_new(BufWriter::new(file), schema.clone(), Some(properties))
            .map_err(|err| write_error(io::Error::other(err)))?;
        Ok(TableWriter {
            table,
            path,
            temp,
            schema,
            writer: Some(writer),
            identity: [
                identity.service.clone(),
                identity.host.clone(),
                identity.run.clone(),
            ],
            pending: 0,
            rows: 0,
        })
    }

    fn error(&self, err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ExportError {
        ExportError::Write {
            path: self.path.clone(),
            source: io::Error::other(err),
        }
    }

    /// Counts a row added to the builders; returns whether the batch is full.
    fn added(&mut self) -> bool {
        self.pending += 1;
        self.rows += 1;
        self.pending >= BATCH_ROWS
    }

    /// Writes the builders' rows (`columns`, without the identity).
    fn write(&mut self, columns: Vec<ArrayRef>) -> Result<(), ExportError> {
        let rows = self.pending;
        self.pending = 0;
        if rows == 0 {
            return Ok(());
        }
        let mut all: Vec<ArrayRef> = self
            .identity
            .iter()
            .map(|value| {
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    value.as_str(),
                    rows,
                ))) as ArrayRef
            })
            .collect();
        all.extend(columns);
        let batch = RecordBatch::try_new(self.schema.clone(), all).map_err(|e| self.error(e))?;
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        writer.write(&batch).map_err(|e| self.error(e))
    }

    fn finish(&mut self) -> Result<TableFile, ExportError> {
        if let Some(writer) = self.writer.take() {
            writer.close().map_err(|e| self.error(e))?;
        }
        fs::rename(&self.temp, &self.path).map_err(|source| ExportError::Write {
            path: self.path.clone(),
            source,
        })?;
        Ok(TableFile {
            table: self.table,
            bytes: fs::metadata(&self.path).map_or(0, |m| m.len()),
            path: self.path.clone(),
            rows: self.rows,
        })
    }
}

/// Columns written with delta encoding (every engine named in the module
/// documentation reads it).
const DELTA_COLUMNS: [&str; 9] = [
    "start_ns",
    "end_ns",
    "start_time",
    "task_id",
    "time_ns",
    "time",
    "cpu_ns",
    "run_delay_ns",
    "next_task_id",
];

fn ts_builder() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

/// Declares a table's columns once: the builders, the fields, and the
/// batch of arrays they finish into.
macro_rules! columns {
    ($name:ident { $($column:ident: $builder:ty = $init:expr, $data_type:expr, $nullable:expr;)* }) => {
        struct $name {
            $($column: $builder,)*
        }

        impl $name {
            fn new() -> Self {
                $name { $($column: $init,)* }
            }

            fn fields() -> Vec<Field> {
                vec![$(field(stringify!($column), $data_type, $nullable),)*]
            }

            fn finish(&mut self) -> Vec<ArrayRef> {
                vec![$(Arc::new(self.$column.finish()) as ArrayRef,)*]
            }
        }
    };
}

columns!(PollColumns {
    worker: Int32Builder = Int32Builder::new(), DataType::Int32, false;
    task_id: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    spawned_at: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
    start_ns: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    duration_ns: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    start_time: TimestampMicrosecondBuilder = ts_builder(), ts_type(), false;
    local_queue_start: Int32Builder = Int32Builder::new(), DataType::Int32, false;
    local_queue_end: Int32Builder = Int32Builder::new(), DataType::Int32, false;
    verdict: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
    cpu_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    run_delay_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    off_cpu_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    cpu_samples: Int32Builder = Int32Builder::new(), DataType::Int32, true;
    schedule_latency_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    span: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
    span_fields: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
});

columns!(ParkColumns {
    worker: Int32Builder = Int32Builder::new(), DataType::Int32, false;
    start_ns: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    duration_ns: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    start_time: TimestampMicrosecondBuilder = ts_builder(), ts_type(), false;
    local_queue_start: Int32Builder = Int32Builder::new(), DataType::Int32, false;
    local_queue_end: Int32Builder = Int32Builder::new(), DataType::Int32, false;
    cpu_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    wake_wait_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
});

columns!(SampleColumns {
    kind: StringBuilder = StringBuilder::new(), DataType::Utf8, false;
    time_ns: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    time: TimestampMicrosecondBuilder = ts_builder(), ts_type(), false;
    worker: Int32Builder = Int32Builder::new(), DataType::Int32, true;
    cpu_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    run_delay_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    interval_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    cpu_delta_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    run_delay_delta_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    global_queue: Int64Builder = Int64Builder::new(), DataType::Int64, true;
});

columns!(FindingColumns {
    verdict: StringBuilder = StringBuilder::new(), DataType::Utf8, false;
    worker: Int32Builder = Int32Builder::new(), DataType::Int32, false;
    start_ns: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    end_ns: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    duration_ns: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    start_time: TimestampMicrosecondBuilder = ts_builder(), ts_type(), false;
    cpu_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    run_delay_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    off_cpu_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    cpu_samples: Int32Builder = Int32Builder::new(), DataType::Int32, true;
    task_id: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    spawned_at: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
    local_queue_start: Int32Builder = Int32Builder::new(), DataType::Int32, true;
    local_queue_end: Int32Builder = Int32Builder::new(), DataType::Int32, true;
    next_task_id: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    next_spawned_at: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
    other_workers_parked: Float64Builder = Float64Builder::new(), DataType::Float64, true;
    global_queue_max: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    queued_on: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
    queued_on_worker: Int32Builder = Int32Builder::new(), DataType::Int32, true;
    queue_depth_max: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    parked_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    wake_wait_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    ongoing: BooleanBuilder = BooleanBuilder::new(), DataType::Boolean, false;
    code_function: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
    code_file: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
    code_line: Int32Builder = Int32Builder::new(), DataType::Int32, true;
    stack_kind: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
    stack: ListBuilder<StringBuilder> = ListBuilder::new(StringBuilder::new()), string_list(), true;
    delayed_tasks: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    delayed_total_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    delayed_worst_ns: Int64Builder = Int64Builder::new(), DataType::Int64, true;
    confirmed_by_delays: BooleanBuilder = BooleanBuilder::new(), DataType::Boolean, true;
    span: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
    span_fields: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
    spans: ListBuilder<StringBuilder> = ListBuilder::new(StringBuilder::new()), string_list(), true;
});

/// A list of strings, as [`ListBuilder::new`] builds it.
fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

columns!(RunColumns {
    trace: StringBuilder = StringBuilder::new(), DataType::Utf8, false;
    start_time: TimestampMicrosecondBuilder = ts_builder(), ts_type(), false;
    duration_ns: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    events: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    polls: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    parks: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    long_polls: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    findings: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    findings_omitted: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    dropped_events: Int64Builder = Int64Builder::new(), DataType::Int64, false;
    complete: BooleanBuilder = BooleanBuilder::new(), DataType::Boolean, false;
    worker_count: Int32Builder = Int32Builder::new(), DataType::Int32, true;
    format_version: Int32Builder = Int32Builder::new(), DataType::Int32, true;
    pulse_version: StringBuilder = StringBuilder::new(), DataType::Utf8, true;
});

/// A table: its columns and its file.
struct Table<C> {
    columns: C,
    file: TableWriter,
}

impl<C> Table<C> {
    fn flush_if_full(
        &mut self,
        full: bool,
        finish: fn(&mut C) -> Vec<ArrayRef>,
    ) -> Result<(), ExportError> {
        if full {
            let columns = finish(&mut self.columns);
            self.file.write(columns)?;
        }
        Ok(())
    }
}

impl Table<PollColumns> {
    fn row(&mut self, row: PollRow<'_>) -> Result<(), ExportError> {
        let c = &mut self.columns;
        c.worker.append_value(i32_of(row.worker));
        c.task_id.append_option(row.task_id.map(i64_of));
        c.spawned_at.append_option(row.site);
        c.start_ns.append_value(i64_of(row.start));
        c.duration_ns
            .append_value(i64_of(row.end.saturating_sub(row.start)));
        c.start_time.append_value(row.start_wall);
        c.local_queue_start.append_value(i32_of(row.queue_start));
        c.local_queue_end.append_value(i32_of(row.queue_end));
        let cpu = row.finding.and_then(|f| f.cpu);
        c.verdict
            .append_option(row.finding.map(|f| f.verdict.key()));
        c.cpu_ns.append_option(cpu.map(|b| i64_of(b.cpu_ns)));
        c.run_delay_ns
            .append_option(cpu.and_then(|b| b.run_delay_ns).map(i64_of));
        c.off_cpu_ns
            .append_option(cpu.map(|b| i64_of(b.off_cpu_ns)));
        c.cpu_samples.append_option(cpu.map(|b| i32_of(b.samples)));
        c.schedule_latency_ns.append_option(row.latency.map(i64_of));
        c.span.append_option(row.span.map(|(name, _)| name));
        c.span_fields
            .append_option(row.span.map(|(_, fields)| fields));
        let full = self.file.added();
        self.flush_if_full(full, PollColumns::finish)
    }
}

impl Table<ParkColumns> {
    fn row(&mut self, row: ParkRow) -> Result<(), ExportError> {
        let c = &mut self.columns;
        c.worker.append_value(i32_of(row.worker));
        c.start_ns.append_value(i64_of(row.start));
        c.duration_ns.append_value(i64_of(row.end - row.start));
        c.start_time.append_value(row.start_wall);
        c.local_queue_start.append_value(i32_of(row.queue_start));
        c.local_queue_end.append_value(i32_of(row.queue_end));
        c.cpu_ns.append_option(row.cpu.map(i64_of));
        c.wake_wait_ns.append_option(row.wake_wait.map(i64_of));
        let full = self.file.added();
        self.flush_if_full(full, ParkColumns::finish)
    }
}

impl Table<SampleColumns> {
    fn worker(
        &mut self,
        t: u64,
        wall: i64,
        worker: u32,
        cpu: u64,
        run_delay: Option<u64>,
        previous: Option<(u64, u64, Option<u64>)>,
    ) -> Result<(), ExportError> {
        let c = &mut self.columns;
        c.kind.append_value("worker");
        c.time_ns.append_value(i64_of(t));
        c.time.append_value(wall);
        c.worker.append_value(i32_of(worker));
        c.cpu_ns.append_value(i64_of(cpu));
        c.run_delay_ns.append_option(run_delay.map(i64_of));
        c.interval_ns
            .append_option(previous.map(|(t0, _, _)| i64_of(t.saturating_sub(t0))));
        c.cpu_delta_ns
            .append_option(previous.map(|(_, cpu0, _)| i64_of(cpu.saturating_sub(cpu0))));
        c.run_delay_delta_ns.append_option(
            previous
                .and_then(|(_, _, r0)| r0.zip(run_delay))
                .map(|(r0, r1)| i64_of(r1.saturating_sub(r0))),
        );
        c.global_queue.append_null();
        let full = self.file.added();
        self.flush_if_full(full, SampleColumns::finish)
    }

    fn queue(&mut self, t: u64, wall: i64, depth: u64) -> Result<(), ExportError> {
        let c = &mut self.columns;
        c.kind.append_value("global_queue");
        c.time_ns.append_value(i64_of(t));
        c.time.append_value(wall);
        c.worker.append_null();
        c.cpu_ns.append_null();
        c.run_delay_ns.append_null();
        c.interval_ns.append_null();
        c.cpu_delta_ns.append_null();
        c.run_delay_delta_ns.append_null();
        c.global_queue.append_value(i64_of(depth));
        let full = self.file.added();
        self.flush_if_full(full, SampleColumns::finish)
    }
}

impl Table<FindingColumns> {
    fn row(&mut self, f: &Finding, start_unix_ns: u64) -> Result<(), ExportError> {
        let c = &mut self.columns;
        c.verdict.append_value(f.verdict.key());
        c.worker.append_value(i32_of(f.worker));
        c.start_ns.append_value(i64_of(f.start_ns));
        c.end_ns.append_value(i64_of(f.end_ns));
        c.duration_ns.append_value(i64_of(f.duration_ns));
        c.start_time
            .append_value(wall_us(start_unix_ns, f.start_ns));
        c.cpu_ns.append_option(f.cpu.map(|b| i64_of(b.cpu_ns)));
        c.run_delay_ns
            .append_option(f.cpu.and_then(|b| b.run_delay_ns).map(i64_of));
        c.off_cpu_ns
            .append_option(f.cpu.map(|b| i64_of(b.off_cpu_ns)));
        c.cpu_samples
            .append_option(f.cpu.map(|b| i32_of(b.samples)));
        c.task_id.append_option(f.task_id.map(i64_of));
        c.spawned_at.append_option(f.spawned_at.as_deref());
        c.local_queue_start
            .append_option(f.local_queue_start.map(i32_of));
        c.local_queue_end
            .append_option(f.local_queue_end.map(i32_of));
        c.next_task_id.append_option(f.next_task_id.map(i64_of));
        c.next_spawned_at
            .append_option(f.next_spawned_at.as_deref());
        c.other_workers_parked.append_option(f.other_workers_parked);
        c.global_queue_max
            .append_option(f.global_queue_max.map(i64_of));
        c.queued_on.append_option(f.queued_on.map(|q| match q {
            QueuedOn::Global => "global",
            QueuedOn::Worker(_) => "worker",
        }));
        c.queued_on_worker.append_option(match f.queued_on {
            Some(QueuedOn::Worker(worker)) => Some(i32_of(worker)),
            _ => None,
        });
        c.queue_depth_max
            .append_option(f.queue_depth_max.map(i64_of));
        c.parked_ns.append_option(f.parked_ns.map(i64_of));
        c.wake_wait_ns.append_option(f.wake_wait_ns.map(i64_of));
        c.ongoing.append_value(f.ongoing);
        let stack = f.stack.as_ref();
        let code = stack.and_then(|s| s.user_code());
        c.code_function
            .append_option(code.map(|frame| frame.function.as_str()));
        c.code_file
            .append_option(code.and_then(|frame| frame.file.as_deref()));
        c.code_line
            .append_option(code.and_then(|frame| frame.line).map(i32_of));
        c.stack_kind.append_option(stack.map(|s| s.kind.as_str()));
        match stack {
            Some(stack) => {
                for frame in &stack.frames {
                    c.stack.values().append_value(frame.to_string());
                }
                c.stack.append(true);
            }
            None => c.stack.append(false),
        }
        c.delayed_tasks
            .append_option(f.delayed.map(|d| i64_of(d.tasks)));
        c.delayed_total_ns
            .append_option(f.delayed.map(|d| i64_of(d.total_ns)));
        c.delayed_worst_ns
            .append_option(f.delayed.map(|d| i64_of(d.worst_ns)));
        c.confirmed_by_delays.append_option(f.confirmed_by_delays);
        let innermost = f.spans.first();
        c.span.append_option(innermost.map(|s| s.name.as_str()));
        c.span_fields
            .append_option(innermost.map(|s| s.fields.as_str()));
        if f.spans.is_empty() {
            c.spans.append(false);
        } else {
            for span in &f.spans {
                c.spans.values().append_value(span.to_string());
            }
            c.spans.append(true);
        }
        let full = self.file.added();
        self.flush_if_full(full, FindingColumns::finish)
    }
}

impl Table<RunColumns> {
    fn row(&mut self, analysis: &Analysis, set: &TraceSet) -> Result<(), ExportError> {
        let c = &mut self.columns;
        let trace = &analysis.trace;
        let sum = |f: fn(&crate::analysis::WorkerStats) -> u64| {
            analysis.workers.iter().map(f).sum::<u64>()
        };
        c.trace.append_value(set.name().display().to_string());
        c.start_time
            .append_value(wall_us(trace.start_unix_ns.unwrap_or(0), 0));
        c.duration_ns.append_value(i64_of(trace.duration_ns));
        c.events.append_value(i64_of(trace.events));
        c.polls.append_value(i64_of(sum(|w| w.polls)));
        c.parks.append_value(i64_of(sum(|w| w.parks)));
        c.long_polls.append_value(i64_of(sum(|w| w.long_polls)));
        c.findings
            .append_value(i64_of(analysis.findings.len() as u64));
        c.findings_omitted
            .append_value(i64_of(analysis.findings_omitted));
        c.dropped_events
            .append_value(i64_of(analysis.completeness.dropped_events));
        c.complete.append_value(analysis.completeness.complete);
        c.worker_count.append_option(trace.worker_count.map(i32_of));
        c.format_version
            .append_option(trace.format_version.map(i32_of));
        c.pulse_version
            .append_option(trace.pulse_version.as_deref());
        let full = self.file.added();
        self.flush_if_full(full, RunColumns::finish)
    }
}

/// The five tables of one run.
struct Tables {
    polls: Table<PollColumns>,
    parks: Table<ParkColumns>,
    samples: Table<SampleColumns>,
    findings: Table<FindingColumns>,
    runs: Table<RunColumns>,
}

impl Tables {
    fn create(out: &Path, identity: &Identity, set: &TraceSet) -> Result<Tables, ExportError> {
        let file = |table, fields| TableWriter::create(out, identity, set, table, fields);
        Ok(Tables {
            polls: Table {
                columns: PollColumns::new(),
                file: file("polls", PollColumns::fields())?,
            },
            parks: Table {
                columns: ParkColumns::new(),
                file: file("parks", ParkColumns::fields())?,
            },
            samples: Table {
                columns: SampleColumns::new(),
                file: file("samples", SampleColumns::fields())?,
            },
            findings: Table {
                columns: FindingColumns::new(),
                file: file("findings", FindingColumns::fields())?,
            },
            runs: Table {
                columns: RunColumns::new(),
                file: file("runs", RunColumns::fields())?,
            },
        })
    }

    /// Writes what is left and closes every file.
    fn finish(&mut self) -> Result<Vec<TableFile>, ExportError> {
        self.polls.flush_if_full(true, PollColumns::finish)?;
        self.parks.flush_if_full(true, ParkColumns::finish)?;
        self.samples.flush_if_full(true, SampleColumns::finish)?;
        self.findings.flush_if_full(true, FindingColumns::finish)?;
        self.runs.flush_if_full(true, RunColumns::finish)?;
        Ok(vec![
            self.polls.file.finish()?,
            self.parks.file.finish()?,
            self.samples.file.finish()?,
            self.findings.file.finish()?,
            self.runs.file.finish()?,
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_values_must_be_path_safe() {
        for good in ["web-1", "api.v2", "a_b", "X"] {
            assert!(path_safe(good), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "a b", "é", "x=y", &"x".repeat(201)] {
            assert!(!path_safe(bad), "{bad}");
        }
        assert_eq!(sanitize("my host/1"), "my_host_1");
        assert_eq!(sanitize(".x"), "_x");
    }

    #[test]
    fn identity_defaults_from_the_trace() {
        let metadata = TraceMetadata {
            start_unix_nanos: 1_763_928_085_123_000_000,
            config: vec![
                ("hostname".into(), "box 7".into()),
                ("pid".into(), "4242".into()),
                ("executable".into(), "my-server".into()),
            ],
            ..TraceMetadata::default()
        };
        let identity = Identity::resolve(&ParquetOptions::new(), Some(&metadata)).unwrap();
        assert_eq!(identity.host, "box_7");
        assert_eq!(identity.service, "my-server");
        assert_eq!(identity.run, "20251123T200125Z-4242");
        assert_eq!(identity.date, "2025-11-23");
        let err = Identity::resolve(&ParquetOptions::new(), Some(&TraceMetadata::default()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("pass --service"), "{err}");
        let err = Identity::resolve(&ParquetOptions::new().host("h").service("s"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("v5"), "{err}");
    }
}
