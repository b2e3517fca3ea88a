//! Reading a trace back and answering the question pulse exists for:
//! *tasks are queued but workers look idle — are the workers parked,
//! unparked but descheduled by the OS, blocked inside a poll, or busy in a
//! long CPU-bound poll?*
//!
//! [`analyze_trace`] reads a trace (a file, a rotated set, see
//! [`TraceSet`]) in one streaming pass and returns an [`Analysis`]:
//! [`Finding`]s, each a [`Verdict`] about one worker over one time window
//! with its evidence, then per-worker and global-queue statistics.
//! [`render_text`] formats it as `pulse analyze` prints it; with the
//! `serde` feature it serializes to the JSON `pulse analyze --json` prints.
//!
//! ```
//! use pulse_cli::analysis::{analyze_trace, render_text, AnalysisOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("trace.bin");
//! # let (rt, guard) = pulse::Recorder::build(
//! #     tokio::runtime::Builder::new_multi_thread(),
//! #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
//! # )?;
//! # rt.block_on(async { tokio::spawn(async {}).await })?;
//! # drop(rt); drop(guard);
//!
//! let analysis = analyze_trace(&path, &AnalysisOptions::default())?;
//! println!("{}", render_text(&analysis, 10));
//! for finding in &analysis.findings {
//!     println!("{} on worker {}", finding.verdict, finding.worker);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # The verdicts
//!
//! For an active period of a worker (unpark → park) the trace gives its
//! wall time, CPU time (`ratio = cpu / wall`) and run-queue wait; the
//! sampler adds each worker's CPU time and run-queue wait every sample
//! interval, so long polls and long periods have readings inside them.
//! Thresholds are fields of [`AnalysisOptions`], with defaults documented
//! there.
//!
//! Every stretch between two readings of one OS thread (park, unpark and
//! the sampler's readings) is split from the readings themselves: wall
//! time = on a CPU + waiting for a CPU + asleep. A reading whose counters
//! hold more than the wall time since the thread's previous one was taken
//! after its timestamp (a recorder preempted inside the hook): it is moved
//! to where the wait ended, so the wait is runnable time, never parked
//! time. Readings of two threads are never subtracted: the trace's
//! `WorkerThread` records say which thread runs each worker and whose
//! readings the sampler reports, and a `block_in_place` hand-over is
//! followed to the new thread.
//!
//! - **parked while work queued** ([`Verdict::ParkedWhileQueued`]): a
//!   worker stayed parked — asleep by its readings, not runnable — for at
//!   least `parked_queued_min` while the
//!   global queue, or another worker's local queue, held at least
//!   `min_queue_depth` tasks. "Held" is read conservatively: between two
//!   consecutive observations of that queue that both showed it (two
//!   sampler readings for the global queue, two events of the other worker
//!   for its local queue), so a momentary blip is never a finding. The
//!   end of a park during which the worker, already woken, waited for a
//!   CPU is not counted as parked (that is *descheduled*).
//! - **descheduled by the OS** ([`Verdict::Descheduled`]): consecutive
//!   sample intervals in which a worker was runnable but waiting for a CPU
//!   for at least `descheduled_min_share` of the time, adding up to at
//!   least `descheduled_min_wait` (the kernel credits a wait when it ends,
//!   so intervals that credit none, such as one holding a short slice on
//!   a CPU between two waits, belong to the stretch when the next credited
//!   wait is that share of everything since the stretch's last credit),
//!   and still waiting for that share once the worker's own park and
//!   unpark readings are in (a wait they show was credited before the
//!   window's first sample is not the window's). Traces without
//!   per-worker samples use active periods and wake-ups instead.
//! - **blocked in a poll** ([`Verdict::BlockedInPoll`]) and **long
//!   CPU-bound poll** ([`Verdict::CpuBoundPoll`]): a poll of at least
//!   `long_poll`, whose CPU time and run-queue wait are estimated from the
//!   worker's readings around and inside it: the sampler's, and the
//!   worker's own at its parks and unparks where the trace names the thread
//!   of both. The kernel credits a run-queue wait only when it ends, so a
//!   reading taken during a long wait shows neither CPU time nor waiting;
//!   the wait a later reading credits beyond what its own stretch can hold
//!   is carried back over the stretches before it (a lower bound of the
//!   wait, exact for one contiguous wait). Time spent waiting for a CPU
//!   is not the poll's doing, so it is set aside: the poll is CPU-bound if
//!   it was on a CPU for at least `cpu_bound_min_share` of the rest, and
//!   blocked otherwise. Either verdict needs the readings to *prove* at
//!   least `long_poll` of the poll's own time (a lower bound of its CPU
//!   time plus the wall time its surrounding readings cannot explain as
//!   CPU time or waiting): estimates alone spread a busy worker's CPU time
//!   evenly, which would make a short poll among others look CPU-bound. A
//!   poll without that proof is *descheduled* if it waited for a CPU for at
//!   least `descheduled_min_share` of its time (reported as one finding
//!   with any descheduled stretch of its worker that covers it), and
//!   otherwise a [`Verdict::LongPoll`] of unknown cause, as are polls with
//!   no readings around them (e.g. in a v5 trace).
//!
//! - **block_in_place section** ([`Verdict::BlockInPlace`]): a poll of at
//!   least `long_poll` that ended on a thread Tokio had moved its worker
//!   away from (`tokio::task::block_in_place`). Legitimate, but notable.
//! - **saturated** ([`Verdict::Saturated`], traces recorded with
//!   `schedule_latency`): tasks waited at least `long_wait` to be polled,
//!   no other finding holds their waits, and every worker was busy (parked
//!   at most 10 % of the stretch). With schedule latencies every finding
//!   also says which tasks it delayed ([`Finding::delayed`], see
//!   [`latency`]), and a parked-while-queued finding is *confirmed* when a
//!   task really waited while the worker slept.
//!
//! Traces without poll events (the traced program was built without
//! `--cfg tokio_unstable`: parks, unparks, CPU readings and the global
//! queue, but no polls, task ids, spawn sites or local queues) say so in
//! `trace.task_detail` and the report's notes; parked-while-queued and
//! descheduled are answered as above, and unparked stretches (unpark →
//! park, or unpark → end of the trace) of at least `long_poll` stand in
//! for polls:
//!
//! - **unparked but off-CPU** ([`Verdict::UnparkedOffCpu`]): mostly asleep
//!   by its readings (off-CPU time at least its CPU time): blocked
//!   somewhere, task unknown;
//! - **busy without parking** ([`Verdict::BusyWithoutParking`]): on a CPU
//!   for at least `cpu_bound_min_share` of the time it was not waiting for
//!   one.
//!
//! A stretch that mostly waited for a CPU is *descheduled*, as a poll
//! would be (reported as one finding with any descheduled stretch of its
//! worker that covers it). The
//! figures are the split of the readings at the stretch's ends (the
//! sampler's readings for a stretch still open when the trace ended).
//!
//! Findings of the same verdict on the same worker less than 50 ms apart
//! are merged into one. The findings never contradict each other: a
//! worker is never reported parked and descheduled at the same instant
//! (the parked finding is cut to the time it was not runnable), no share
//! exceeds 100 %, and a finding below its verdict's threshold is dropped.
//! `verdicts` (and the text report's Answer) are ordered by total time,
//! the dominant cause first.
//!
//! # Memory
//!
//! A trace file holds each worker's events in order, but different
//! threads' batches interleave and the sampler writes its own batches.
//! The analysis follows each worker's stream as it comes (polls, parks and
//! active periods need nothing else), aggregates incrementally (durations
//! go into a fixed-size log histogram), and joins streams only for the
//! verdicts that need two: those joins wait, in small pending lists, until
//! the sampler's clock has moved 2 s (or four flush intervals) past them,
//! and look up fixed-size rings of recent samples. Memory is bounded by
//! the number of workers (a few MiB for eight), whatever the trace's
//! length; no global sort of events is ever made.
//!
//! # JSON schema (`pulse analyze --json`)
//!
//! With the `serde` feature, [`Analysis`] serializes to one JSON object.
//! Times are integers in nanoseconds since the trace started (fields ending
//! in `_ns`); shares are numbers between 0 and 1; absent values are
//! `null`. `"schema"` is [`SCHEMA`]: it changes only when a field is
//! removed or changes meaning (new fields may appear under the same
//! schema).
//!
//! ```text
//! {
//!   "schema": "pulse-analysis/1",
//!   "trace": {
//!     "name": str, "files": [{"path": str, "bytes": int, "format_version": int|null, "file_index": int|null}],
//!     "format_version": int|null, "pulse_version": str|null, "worker_count": int|null,
//!     "start_unix_ns": int|null, "time_unit_ns": int|null, "has_run_delay": bool,
//!     "sample_interval_ns": int|null, "flush_interval_ns": int|null, "config": [[str, str]],
//!     "tokio_unstable": bool|null, "task_detail": str|null,
//!     "first_ns": int, "last_ns": int, "duration_ns": int, "events": int,
//!     "event_counts": {"poll_start", "poll_end", "worker_park", "worker_unpark",
//!                      "queue_sample", "worker_sample", "events_dropped",
//!                      "schedule_latency": int}
//!   },
//!   "completeness": {
//!     "complete": bool, "dropped_events": int, "gaps": [{"at_ns": int, "count": int}],
//!     "missing_files": [int], "truncated": str|null, "unpaired_events": int,
//!     "out_of_order_events": int
//!   },
//!   "options": {"long_poll_ns", "descheduled_min_wait_ns", "parked_queued_min_ns",
//!               "idle_min_wall_ns", "min_queue_depth", "delay_min_ns", "long_wait_ns",
//!               "max_findings": int,
//!               "cpu_bound_min_share", "descheduled_min_share", "idle_max_ratio": num},
//!   "verdicts": [{"verdict": VERDICT, "count": int, "total_ns": int, "longest_ns": int, "workers": [int]}],
//!   "findings": [{
//!     "verdict": VERDICT, "worker": int, "start_ns": int, "end_ns": int, "duration_ns": int,
//!     "cpu": {"cpu_ns": int, "run_delay_ns": int|null, "off_cpu_ns": int, "samples": int}|null,
//!     "task_id": int|null, "spawned_at": str|null,
//!     "local_queue_start": int|null, "local_queue_end": int|null,
//!     "next_task_id": int|null, "next_spawned_at": str|null,
//!     "other_workers_parked": num|null, "global_queue_max": int|null,
//!     "queued_on": "global"|{"worker": int}|null, "queue_depth_max": int|null,
//!     "parked_ns": int|null, "wake_wait_ns": int|null, "ongoing": bool,
//!     "stack": {"kind": "off-cpu"|"on-cpu", "samples": int, "total_samples": int,
//!               "frames": [CODE_FRAME], "user_frame": int|null, "truncated": bool}|null,
//!     "delayed": {"tasks": int, "total_ns": int, "worst_ns": int,
//!                 "on_this_worker": int, "on_other_workers": int}|null,
//!     "confirmed_by_delays": bool|null,
//!     "spans": [{"name": str, "fields": str}],
//!     "marks": [{"at_ns": int, "worker": int, "name": str, "value": int|null}]
//!   }],
//!   "findings_omitted": int,
//!   "workers": [{
//!     "worker": int, "polls": int, "poll_p50_ns": int, "poll_p99_ns": int, "poll_max_ns": int,
//!     "long_polls": int, "busy_ns": int, "active_ns": int, "parked_ns": int, "parks": int,
//!     "cpu_ns": int, "run_delay_ns": int|null, "scheduling_ratio": num|null,
//!     "idle_periods": int, "local_queue_max": int, "local_queue_mean": num
//!   }],
//!   "global_queue": {
//!     "samples": int, "max": int, "mean": num, "nonempty_share": num, "bucket_ns": int,
//!     "timeline": [{"start_ns": int, "samples": int, "max": int, "mean": num}]
//!   },
//!   "code_groups": [{"frame": CODE_FRAME, "findings": int, "duration_ns": int, "verdicts": [VERDICT]}],
//!   "schedule_latency": {
//!     "all": LATENCY, "workers": [LATENCY], "spawn_sites": [LATENCY],
//!     "unexplained": int, "unexplained_max_ns": int,
//!     "unexplained_with_a_parked_worker": int,
//!     "unexplained_with_a_parked_worker_max_ns": int, "waits_not_kept": int
//!   }|null,
//!   "span_groups": [{"name": str, "findings": int, "duration_ns": int, "verdicts": [VERDICT]}],
//!   "spans": [{"name": str, "enters": int, "polls": int, "busy_ns": int, "longest_poll_ns": int}]
//! }
//! ```
//!
//! `spans` of a finding are the `tracing` spans active in its window,
//! innermost first; `span_groups` and `spans` are described in [`spans`].
//!
//! `CODE_FRAME` is `{"function": str, "file": str|null, "line": int|null,
//! "inlined": bool, "user": bool}` (see [`stacks`]; frames innermost first,
//! `user_frame` indexes the innermost frame of the user's own code).
//!
//! `LATENCY` is `{"worker": int|null, "spawned_at": str|null, "count": int,
//! "p50_ns": int, "p99_ns": int, "max_ns": int, "total_ns": int}` (see
//! [`latency`]; `schedule_latency` is `null` and every `delayed` too when
//! the trace has no schedule latencies).
//!
//! `VERDICT` is one of `"parked_while_queued"`, `"descheduled"`,
//! `"blocked_in_poll"`, `"cpu_bound_poll"`, `"long_poll"`,
//! `"block_in_place"`, `"unparked_off_cpu"`, `"busy_without_parking"`,
//! `"saturated"`.
//! [`Finding`]
//! says which finding fields each verdict sets.

pub(crate) mod accounting;
mod analyzer;
mod cpu;
mod error;
mod findings;
mod histogram;
pub mod latency;
mod options;
mod queue;
mod report;
pub mod spans;
pub mod stacks;
#[cfg(test)]
mod tests;
mod text;
mod timeline;
pub(crate) mod worker_timeline;

pub use analyzer::Analyzer;
pub use error::AnalysisError;
pub use findings::{CpuBreakdown, Finding, QueuedOn, Verdict};
pub use latency::{DelayImpact, LatencyDistribution, ScheduleLatencyStats};
pub use options::*;
pub use report::{
    Analysis, Completeness, EventCounts, Gap, GlobalQueueStats, QueueBucket, TraceInfo,
    VerdictSummary, WorkerStats, SCHEMA,
};
pub use stacks::{is_user_code, CodeFrame, CodeGroup, FindingStack};
pub use text::{format_duration, render_text, DEFAULT_LISTED_PER_VERDICT};
pub use timeline::{
    compute_active_periods, detect_idle_workers, ActivePeriod, ActivePeriods, IdleCause, IdlePeriod,
};

use pulse_trace::TraceEvent;
pub use pulse_trace::{FileInfo, TraceScan, TraceSet};
use std::path::Path;

/// Analyzes the trace at `path` (a file, or the base path of a rotated
/// set; see [`TraceSet`]).
///
/// # Errors
///
/// No trace at `path`, or one of its files is corrupt, of an unknown
/// version, or unreadable. A file that merely ends mid-record is not an
/// error: the analysis covers what was read and
/// [`Completeness::truncated`] says so.
///
/// # Examples
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
/// use pulse_cli::analysis::{analyze_trace, AnalysisOptions};
///
/// let analysis = analyze_trace(&path, &AnalysisOptions::default())?;
/// assert!(analysis.completeness.complete);
/// assert!(analysis.workers.iter().map(|w| w.polls).sum::<u64>() >= 1);
/// # Ok(())
/// # }
/// ```
pub fn analyze_trace(
    path: impl AsRef<Path>,
    options: &AnalysisOptions,
) -> Result<Analysis, AnalysisError> {
    analyze_set(&TraceSet::open(path)?, options, |_, _| {})
}

/// Analyzes `set`, calling `progress(bytes_read, total_bytes)` now and
/// then (every 64 Ki events and at the end).
///
/// # Errors
///
/// As [`analyze_trace`].
pub fn analyze_set(
    set: &TraceSet,
    options: &AnalysisOptions,
    progress: impl FnMut(u64, u64),
) -> Result<Analysis, AnalysisError> {
    run(set, options, |_, _| Ok(()), progress)
}

/// Reads `set` once, feeding every event to an [`Analyzer`] and to `each`
/// (in file order), reporting progress every 64 Ki events and at the end.
pub(crate) fn run(
    set: &TraceSet,
    options: &AnalysisOptions,
    mut each: impl FnMut(&TraceEvent, &TraceScan) -> Result<(), AnalysisError>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Analysis, AnalysisError> {
    let mut scan = TraceScan::open(set)?;
    let mut analyzer = Analyzer::new(options.clone());
    let mut stacks = stacks::StackSamples::default();
    let mut spans = spans::Spans::new(options.long_poll.as_nanos().try_into().unwrap_or(u64::MAX));
    let mut events = 0u64;
    loop {
        let event = scan.next_event()?;
        for (version, metadata) in scan.take_started_files() {
            analyzer.begin_file(version, metadata.as_ref());
        }
        let Some(event) = event else {
            break;
        };
        analyzer.push(&event);
        stacks.push(&event, &scan);
        spans.push(&event, &scan);
        each(&event, &scan)?;
        events += 1;
        if events.is_multiple_of(64 * 1024) {
            progress(scan.bytes_read(), scan.total_bytes());
        }
    }
    progress(scan.total_bytes(), scan.total_bytes());
    let mut analysis = analyzer.finish(|id| scan.location(id).map(ToString::to_string));
    stacks.attach(&mut analysis);
    spans.attach(&mut analysis);
    analysis.trace.name = set.name().display().to_string();
    analysis.trace.files = scan.files().to_vec();
    analysis.completeness.truncated = scan.truncated().map(str::to_owned);
    analysis.completeness.end = scan.end().copied();
    analysis.refresh_completeness();
    Ok(analysis)
}
