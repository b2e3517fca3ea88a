//! [`Analysis`]: everything `analyze` says about one trace.

use super::findings::{Finding, Verdict};
use super::options::AnalysisOptions;
use pulse_trace::FileInfo;

/// The schema identifier written as `"schema"` in `pulse analyze --json`.
/// It changes only when a field is removed or changes meaning; new fields
/// may be added under the same identifier.
pub const SCHEMA: &str = "pulse-analysis/1";

/// The result of analyzing one trace: verdicts first, then statistics.
///
/// Produced by [`analyze_trace`](super::analyze_trace) or an
/// [`Analyzer`](super::Analyzer); rendered by
/// [`render_text`](super::render_text) and, with the `serde` feature,
/// serialized as `pulse analyze --json` prints it (see the
/// [module documentation](super) for the schema).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Analysis {
    /// [`SCHEMA`].
    pub schema: String,
    /// What was read.
    pub trace: TraceInfo,
    /// Whether anything is missing from the trace, and what.
    pub completeness: Completeness,
    /// The thresholds the verdicts used.
    pub options: AnalysisOptions,
    /// One line per verdict that was reached: how often, for how long, on
    /// which workers.
    pub verdicts: Vec<VerdictSummary>,
    /// Every finding (up to `options.max_findings`), by start time.
    pub findings: Vec<Finding>,
    /// Findings beyond `options.max_findings`, counted but not listed.
    pub findings_omitted: u64,
    /// Per-worker statistics, by worker index.
    pub workers: Vec<WorkerStats>,
    /// The global queue as the sampler saw it.
    pub global_queue: GlobalQueueStats,
    /// Listed poll findings grouped by the function of the user's code their
    /// stacks point at (empty without stacks).
    pub code_groups: Vec<super::stacks::CodeGroup>,
    /// How long tasks waited to be polled, per worker and per spawn site
    /// (`None` when the trace has no schedule latencies: recorded without
    /// `schedule_latency`, or before it existed).
    pub schedule_latency: Option<super::latency::ScheduleLatencyStats>,
    /// Listed findings grouped by the name of their innermost `tracing`
    /// span (empty without spans).
    pub span_groups: Vec<super::spans::SpanGroup>,
    /// Polls inside each span name: count, busy time, longest (empty
    /// without spans), most busy first.
    pub spans: Vec<super::spans::SpanStats>,
}

impl Analysis {
    /// The findings with verdict `verdict`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("trace.bin");
    /// # let (rt, guard) = pulse::Recorder::build(
    /// #     tokio::runtime::Builder::new_multi_thread(),
    /// #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
    /// # )?;
    /// # rt.block_on(async { tokio::spawn(async {}).await })?;
    /// # drop(rt); drop(guard);
    /// use pulse_cli::analysis::{analyze_trace, AnalysisOptions, Verdict};
    ///
    /// let analysis = analyze_trace(&path, &AnalysisOptions::default())?;
    /// for finding in analysis.findings_with(Verdict::BlockedInPoll) {
    ///     println!("worker {} blocked for {} ns", finding.worker, finding.duration_ns);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn findings_with(&self, verdict: Verdict) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.verdict == verdict)
    }
}

/// What was read: files, metadata, time span, event counts.
#[derive(Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TraceInfo {
    /// The trace's name: its file, or the base path of its rotated set.
    pub name: String,
    /// Its files, in reading order.
    pub files: Vec<FileInfo>,
    /// The format version of the first file.
    pub format_version: Option<u32>,
    /// The pulse version that wrote it (v6 metadata).
    pub pulse_version: Option<String>,
    /// Worker threads in the traced runtime (v6 metadata).
    pub worker_count: Option<u32>,
    /// Wall-clock time of trace timestamp 0, ns since the Unix epoch.
    pub start_unix_ns: Option<u64>,
    /// Timestamp resolution on disk.
    pub time_unit_ns: Option<u32>,
    /// Whether run-queue wait was recorded. Without it, waiting for a CPU
    /// cannot be told from being blocked.
    pub has_run_delay: bool,
    /// The recording's sample interval, when the metadata says.
    pub sample_interval_ns: Option<u64>,
    /// The recording's flush interval, when the metadata says.
    pub flush_interval_ns: Option<u64>,
    /// The recording's configuration (v6 metadata), as key/value pairs.
    pub config: Vec<(String, String)>,
    /// Whether the traced program was built with `--cfg tokio_unstable`
    /// (the metadata's `tokio_unstable`; `None` when the trace does not
    /// say). Without it there are no polls, task ids, spawn sites or local
    /// queues.
    pub tokio_unstable: Option<bool>,
    /// What the trace lacks for task-level verdicts, as a sentence (set
    /// when it holds no poll events, e.g. recorded without the cfg).
    pub task_detail: Option<String>,
    /// Earliest event timestamp.
    pub first_ns: u64,
    /// Latest event timestamp.
    pub last_ns: u64,
    /// `last_ns - first_ns`.
    pub duration_ns: u64,
    /// Events read.
    pub events: u64,
    /// Events read, by type.
    pub event_counts: EventCounts,
}

/// Events by type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)]
pub struct EventCounts {
    pub poll_start: u64,
    pub poll_end: u64,
    pub worker_park: u64,
    pub worker_unpark: u64,
    pub queue_sample: u64,
    pub worker_sample: u64,
    pub events_dropped: u64,
    /// Polls that carry their task's schedule latency.
    #[cfg_attr(feature = "serde", serde(default))]
    pub schedule_latency: u64,
}

/// Whether the trace holds everything that happened while it was recorded.
///
/// A trace is complete when no events were dropped, no file of its set is
/// missing, nothing is truncated and every poll and park is paired. When it
/// is not, verdicts near the gaps may be missing or cut short.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Completeness {
    /// Whether nothing below is amiss.
    pub complete: bool,
    /// Events the recorder dropped (its writer fell behind or failed).
    pub dropped_events: u64,
    /// Where: one entry per `EventsDropped` record.
    pub gaps: Vec<Gap>,
    /// Files of the rotated set that are gone (deleted to honour its size
    /// limit, or removed), by index. A set whose first file is not file 0
    /// starts after the recording did.
    pub missing_files: Vec<u64>,
    /// The error that cut reading short, if a file ends mid-record (e.g.
    /// the recording process was killed).
    pub truncated: Option<String>,
    /// Poll and park events without their partner (a sign of lost events).
    pub unpaired_events: u64,
    /// Events of one worker whose time went backwards.
    pub out_of_order_events: u64,
    /// How the recording ended (its end-of-trace record); `None` when the
    /// trace has none: it ended without a shutdown (killed, crashed or
    /// still running; v5 and older v6 traces have no end record), and
    /// events after `trace.last_ns` may be missing.
    pub end: Option<pulse_trace::TraceEnd>,
}

impl Completeness {
    /// What is wrong with how the trace ended, if anything, in one line;
    /// `last_ns` is the last event's time.
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse_cli::analysis::Completeness;
    ///
    /// let c = Completeness::default();
    /// assert_eq!(
    ///     c.ending_problem(2_500_000_000).unwrap(),
    ///     "ended without shutdown (killed, crashed or still running); events after 2.500 s may be missing"
    /// );
    /// ```
    pub fn ending_problem(&self, last_ns: u64) -> Option<String> {
        match &self.end {
            None => Some(format!(
                "ended without shutdown (killed, crashed or still running); events after {} may \
                 be missing",
                super::format_duration(last_ns)
            )),
            Some(end) if end.threads_still_recording > 0 => Some(format!(
                "the recording ended at {} while {} runtime threads were still running (its \
                 guard was dropped before the runtime): what they did afterwards is missing",
                super::format_duration(end.timestamp_nanos),
                end.threads_still_recording
            )),
            Some(_) => None,
        }
    }
}

/// Events lost at one point of the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Gap {
    /// When the loss was noticed, ns since the trace started.
    pub at_ns: u64,
    /// Events lost.
    pub count: u64,
}

/// How often one verdict was reached.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct VerdictSummary {
    /// The verdict.
    pub verdict: Verdict,
    /// Findings with it (including omitted ones).
    pub count: u64,
    /// Their windows' total length.
    pub total_ns: u64,
    /// The longest window.
    pub longest_ns: u64,
    /// Workers with at least one.
    pub workers: Vec<u32>,
}

/// One worker's statistics.
///
/// `busy_ns` is time inside polls; `active_ns` time between an unpark and
/// the next park (busy, plus looking for work); `parked_ns` time between a
/// park and the next unpark. `cpu_ns` and `run_delay_ns` are summed over
/// active periods.
#[derive(Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct WorkerStats {
    /// The worker's index.
    pub worker: u32,
    /// Completed polls.
    pub polls: u64,
    /// Median poll duration (within 3 %).
    pub poll_p50_ns: u64,
    /// 99th percentile poll duration (within 3 %).
    pub poll_p99_ns: u64,
    /// Longest poll.
    pub poll_max_ns: u64,
    /// Polls at least `options.long_poll` long.
    pub long_polls: u64,
    /// Time inside polls.
    pub busy_ns: u64,
    /// Time unparked (unpark → park).
    pub active_ns: u64,
    /// Time parked (park → unpark).
    pub parked_ns: u64,
    /// Parks.
    pub parks: u64,
    /// CPU time during active periods.
    pub cpu_ns: u64,
    /// Run-queue wait during active periods, where recorded.
    pub run_delay_ns: Option<u64>,
    /// `cpu_ns / active_ns`, the seed design's scheduling ratio.
    pub scheduling_ratio: Option<f64>,
    /// Active periods flagged by [`detect_idle_workers`](super::detect_idle_workers).
    pub idle_periods: u64,
    /// Largest local queue depth seen.
    pub local_queue_max: u32,
    /// Local queue depth averaged over time (between the worker's events).
    pub local_queue_mean: f64,
}

/// The global queue over the trace.
#[derive(Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct GlobalQueueStats {
    /// Samples taken.
    pub samples: u64,
    /// Largest depth sampled.
    pub max: u64,
    /// Mean sampled depth.
    pub mean: f64,
    /// Share (0–1) of samples that found the queue non-empty.
    pub nonempty_share: f64,
    /// Depth over time, in buckets of `bucket_ns` from the first sample.
    pub timeline: Vec<QueueBucket>,
    /// Width of each timeline bucket.
    pub bucket_ns: u64,
}

/// The global queue in one stretch of time.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct QueueBucket {
    /// Bucket start, ns since the trace started.
    pub start_ns: u64,
    /// Samples in the bucket.
    pub samples: u64,
    /// Largest depth sampled.
    pub max: u64,
    /// Mean depth sampled.
    pub mean: f64,
}
