//! Support for measuring pulse itself (feature `bench`).
//!
//! [`HotPath`] drives the exact functions the Tokio hooks call, with the
//! worker index passed in, so a benchmark can time one poll or park event
//! without a runtime scheduling around it. Events go through the real
//! thread buffers, collector and flusher thread into a [`NullWriter`].
//!
//! [`MetricsHotPath`] does the same for the live metrics alone: the
//! per-thread batch and its submission to the shared per-worker counters,
//! as the hooks run them.
//!
//! The attribute of the same name, [`#[pulse::bench]`](macro@crate::bench),
//! turns a function into a criterion benchmark; [`bench_main!`](crate::bench_main)
//! generates the bench binary's `main`. (A module and an attribute can share
//! a name: `pulse::bench::HotPath` is this module's, `#[pulse::bench]` the
//! macro.)

#[doc(hidden)]
pub mod harness;

/// Generates a bench binary's `main` for the [`#[pulse::bench]`](macro@crate::bench)
/// functions it lists, as criterion's `criterion_group!`/`criterion_main!`
/// pair does: one `Criterion` configured with seed 001's settings (1 s
/// warm-up, 5 s measurement, 100 samples, 0.05 significance; quick mode's
/// with `PULSE_BENCH_QUICK=1`), then the command line (filters, `--quick`,
/// `--save-baseline`, ...), each benchmark run in the order listed, and
/// criterion's final summary.
///
/// The `[[bench]]` entry needs `harness = false`. A `#[pulse::bench]`
/// function left out of the list is never called, which `rustc` reports as
/// dead code (unless the function is `pub`). Plain criterion functions
/// (`fn(&mut Criterion)`) can be listed too.
///
/// ```no_run
/// #[pulse::bench(batch = 100)]
/// fn now() -> std::time::Instant {
///     std::time::Instant::now()
/// }
///
/// fn by_hand(c: &mut pulse::__private::bench::criterion::Criterion) {
///     c.bench_function("by_hand", |b| b.iter(|| 1 + 1));
/// }
///
/// pulse::bench_main!(now, by_hand);
/// ```
#[macro_export]
macro_rules! bench_main {
    ($($target:path),+ $(,)?) => {
        fn main() {
            let mut criterion = $crate::__private::bench::configured();
            $( $target(&mut criterion); )+
            criterion.final_summary();
        }
    };
}

/// Passes `#[pulse::bench]`'s expansion through (the `bench` feature is
/// on). Not a public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __bench_items {
    ($($tokens:tt)*) => { $($tokens)* };
}

use crate::config::Config;
use crate::error::Error;
use crate::record::hooks;
use crate::record::metrics::{HistogramLayout, MetricsBatch, MetricsSnapshot, SharedMetrics};
use crate::record::shared::Shared;
use crate::record::{RecordingGuard, RecordingSummary};
use crate::writer::{CompactEvents, NullWriter};
use pulse_trace::{Encoder, SpawnLocation};
use std::panic::Location;
use std::sync::Arc;
use tokio::runtime::RuntimeMetrics;

/// Worker indices a [`HotPath`] keeps metrics for (`0..MAX_WORKERS`).
pub const MAX_WORKERS: usize = 64;

/// The recorder's hot path, callable directly.
///
/// # Examples
///
/// ```
/// use pulse::bench::HotPath;
/// use pulse::Config;
///
/// let hot = HotPath::new(&Config::new())?;
/// let here = std::panic::Location::caller();
/// for task in 0..10_000 {
///     hot.poll_start(0, task, here);
///     hot.poll_end();
/// }
/// hot.park(0);
/// hot.unpark(0);
/// let summary = hot.finish()?;
/// // 20 000 poll events, a park, an unpark, and the record saying which
/// // thread runs worker 0.
/// assert_eq!(summary.events_written + summary.dropped_events, 20_003);
/// # Ok::<(), pulse::Error>(())
/// ```
#[derive(Debug)]
pub struct HotPath {
    shared: Arc<Shared>,
    guard: RecordingGuard,
}

impl HotPath {
    /// A recording with `config`'s buffer sizes and intervals, writing to a
    /// [`NullWriter`] (the config's writer setting is ignored).
    pub fn new(config: &Config) -> Result<HotPath, Error> {
        config.validate()?;
        let shared = Arc::new(Shared::new(config));
        shared.metrics_totals.init(MAX_WORKERS);
        let guard = RecordingGuard::start(shared.clone(), Box::new(NullWriter::new()), config)?;
        Ok(HotPath { shared, guard })
    }

    /// Reads local queue depths from `metrics` (a real runtime's), as the
    /// hooks do; without it depths read as 0, which skips those loads.
    pub fn with_runtime_metrics(self, metrics: RuntimeMetrics) -> Self {
        self.shared.set_runtime_metrics(metrics);
        self
    }

    /// Records what `on_before_task_poll` records.
    #[inline]
    pub fn poll_start(&self, worker: u32, task_id: u64, spawned_at: &'static Location<'static>) {
        hooks::record_poll_start(
            &self.shared,
            worker,
            task_id,
            SpawnLocation(spawned_at),
            None,
        );
    }

    /// Records what `on_before_task_poll` records with
    /// [`Config::schedule_latency`] on: the PollStart and the task's
    /// schedule latency, `latency_nanos`.
    ///
    /// ```
    /// use pulse::bench::HotPath;
    /// use pulse::Config;
    ///
    /// let hot = HotPath::new(&Config::new().schedule_latency(true))?;
    /// let here = std::panic::Location::caller();
    /// hot.poll_start_with_latency(0, 1, here, 12_000);
    /// hot.poll_end();
    /// let summary = hot.finish()?;
    /// // PollStart, ScheduleLatency, PollEnd and the worker's thread record.
    /// assert_eq!(summary.events_written + summary.dropped_events, 4);
    /// # Ok::<(), pulse::Error>(())
    /// ```
    #[inline]
    pub fn poll_start_with_latency(
        &self,
        worker: u32,
        task_id: u64,
        spawned_at: &'static Location<'static>,
        latency_nanos: u64,
    ) {
        hooks::record_poll_start(
            &self.shared,
            worker,
            task_id,
            SpawnLocation(spawned_at),
            Some(latency_nanos),
        );
    }

    /// Records what `on_after_task_poll` records: the end of the poll this
    /// thread started, for the worker it started on.
    #[inline]
    pub fn poll_end(&self) {
        hooks::record_poll_end(&self.shared);
    }

    /// Records what `on_thread_park` records (and hands the buffer over).
    #[inline]
    pub fn park(&self, worker: u32) {
        hooks::record_park(&self.shared, worker);
    }

    /// Records what `on_thread_unpark` records.
    #[inline]
    pub fn unpark(&self, worker: u32) {
        hooks::record_unpark(&self.shared, worker);
    }

    /// Stops the flusher and reports what was written and dropped.
    pub fn finish(self) -> Result<RecordingSummary, Error> {
        self.guard.finish()
    }
}

/// A yield storm's records as the flusher finds them (compact thread
/// buffers of two workers), to time what the flusher does with them per
/// event: decode them into a slice of events and encode that
/// ([`encode_decoded`](Self::encode_decoded), before issue 11's transcoding)
/// or encode them directly ([`encode_direct`](Self::encode_direct), what
/// pulse's file writers do). Both give the same bytes.
///
/// # Examples
///
/// ```
/// use pulse::bench::RecordedBatches;
/// use pulse::trace::{Encoder, FormatVersion, TraceMetadata};
///
/// let batches = RecordedBatches::yield_storm(10_000);
/// // The polls, and each worker's WorkerThread record.
/// assert_eq!(batches.events(), 20_002);
/// let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
/// let (mut decoded, mut direct) = (Vec::new(), Vec::new());
/// encoder.begin_file(0, &mut decoded);
/// batches.encode_decoded(&mut encoder, &mut decoded);
/// let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
/// encoder.begin_file(0, &mut direct);
/// batches.encode_direct(&mut encoder, &mut direct);
/// assert_eq!(decoded, direct);
/// ```
#[derive(Debug)]
pub struct RecordedBatches {
    batches: Vec<crate::record::collector::Batch>,
    events: u64,
}

impl RecordedBatches {
    /// `polls` PollStart/PollEnd pairs of 64 tasks spawned at one place,
    /// half on worker 0 then half on worker 1, recorded by the hooks'
    /// functions on this thread into default-sized buffers (with the real
    /// clock), then handed over. Nothing is written meanwhile, so past the
    /// default backlog (~600 Ki polls) events are dropped.
    pub fn yield_storm(polls: u64) -> RecordedBatches {
        let shared = Arc::new(Shared::new(&Config::new()));
        let here = SpawnLocation(Location::caller());
        for i in 0..polls {
            let worker = u32::from(i >= polls / 2);
            hooks::record_poll_start(&shared, worker, 1 + i % 64, here, None);
            hooks::record_poll_end(&shared);
        }
        hooks::flush_current_thread(&shared);
        let mut batches = Vec::new();
        shared.collector.drain(&mut batches);
        let events = batches.iter().map(|b| b.records().count() as u64).sum();
        RecordedBatches { batches, events }
    }

    /// Events held (the poll events and the WorkerThread records).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Decodes each batch 1024 events at a time into a slice and encodes
    /// it (the flusher's path for writers that take slices).
    pub fn encode_decoded(&self, encoder: &mut Encoder, out: &mut Vec<u8>) {
        let mut chunk = Vec::with_capacity(crate::COMPACT_CHUNK);
        for batch in &self.batches {
            let mut records = batch.records();
            let mut more = true;
            while more {
                chunk.clear();
                more = records.decode_into(&mut chunk, crate::COMPACT_CHUNK);
                encoder.encode_all(&chunk, out);
            }
        }
    }

    /// Encodes each batch straight from its compact records (the
    /// flusher's path for pulse's file writers).
    pub fn encode_direct(&self, encoder: &mut Encoder, out: &mut Vec<u8>) {
        let mut chunk = Vec::new();
        for batch in &self.batches {
            CompactEvents::new(batch.records(), &mut chunk).encode_into(encoder, out);
        }
    }
}

/// The live metrics' hot path, callable directly: a thread's batch of
/// counts and its submission to the shared, cache-padded per-worker
/// counters, the code the poll and park hooks run for
/// [`RecordingHandle::metrics`](crate::RecordingHandle::metrics), without
/// the trace recording around it.
///
/// Each thread that records makes its own [`MetricsWorker`] for a worker
/// index; the counters are submitted every `submit_every` polls and at
/// every park, as [`Config::metrics_submit_every`] sets for a runtime.
///
/// # Examples
///
/// ```
/// use pulse::bench::MetricsHotPath;
///
/// let metrics = MetricsHotPath::new(2, 64);
/// std::thread::scope(|scope| {
///     for worker in 0..2 {
///         let metrics = &metrics;
///         scope.spawn(move || {
///             let mut batch = metrics.worker(worker);
///             for i in 0..1_000u64 {
///                 batch.poll(metrics, i * 2_000, i * 2_000 + 1_500, 0);
///             }
///             batch.park(metrics, 0);
///         });
///     }
/// });
/// let snapshot = metrics.snapshot();
/// assert_eq!(snapshot.total_polls(), 2_000);
/// assert_eq!(snapshot.workers[1].poll_histogram[1], 1_000); // 1.5 µs each
/// ```
#[derive(Debug)]
pub struct MetricsHotPath {
    shared: SharedMetrics,
}

impl MetricsHotPath {
    /// Counters for `workers` worker indices (at least one), submitted to
    /// every `submit_every` polls (at least one), with the default
    /// [`HistogramLayout`].
    pub fn new(workers: usize, submit_every: u32) -> MetricsHotPath {
        let shared = SharedMetrics::new(HistogramLayout::default(), submit_every.max(1));
        shared.init(workers);
        MetricsHotPath { shared }
    }

    /// A thread's batch, counting for worker index `worker` (the same as
    /// [`MetricsWorker::new`]).
    pub fn worker(&self, worker: u32) -> MetricsWorker {
        MetricsWorker::new(worker)
    }

    /// The totals submitted so far, as
    /// [`RecordingHandle::metrics`](crate::RecordingHandle::metrics) reads
    /// them.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.shared.snapshot()
    }
}

/// One thread's unsubmitted counts (see [`MetricsHotPath`]). Dropping it
/// discards what was not submitted; call [`MetricsWorker::submit`] first.
///
/// ```
/// use pulse::bench::{MetricsHotPath, MetricsWorker};
///
/// let hot = MetricsHotPath::new(1, 64);
/// let mut worker = MetricsWorker::new(0);
/// worker.poll(&hot, 1_000, 2_500, 0);
/// worker.submit(&hot);
/// assert_eq!(hot.snapshot().workers[0].polls, 1);
/// ```
#[derive(Debug)]
pub struct MetricsWorker {
    batch: MetricsBatch,
}

impl MetricsWorker {
    /// An empty batch for worker index `worker`, to be used with any
    /// [`MetricsHotPath`] (made before it, for per-thread state).
    pub fn new(worker: u32) -> MetricsWorker {
        let mut batch = MetricsBatch::new();
        batch.worker = worker;
        MetricsWorker { batch }
    }

    /// Counts a poll from `started` to `ended` (nanoseconds on any clock)
    /// with `local_queue` tasks queued, as the poll hooks do for a short
    /// poll that read the depth once (at its start), submitting when the
    /// batch is due. An `ended` before `started` counts as a poll of 0 ns,
    /// as in the hooks.
    #[inline]
    pub fn poll(&mut self, metrics: &MetricsHotPath, started: u64, ended: u64, local_queue: u32) {
        self.batch.poll_start(started);
        self.batch.queue_read(local_queue);
        self.batch
            .poll_end(ended.saturating_sub(started), &metrics.shared);
    }

    /// Counts a park, as the park hook does (which always submits).
    #[inline]
    pub fn park(&mut self, metrics: &MetricsHotPath, local_queue: u32) {
        self.batch.park(local_queue, &metrics.shared);
    }

    /// Counts an unpark, as the unpark hook does.
    #[inline]
    pub fn unpark(&mut self, local_queue: u32) {
        self.batch.unpark(local_queue);
    }

    /// Submits whatever is pending, as a thread does when it stops.
    pub fn submit(&mut self, metrics: &MetricsHotPath) {
        self.batch.submit_pending(&metrics.shared);
    }
}

/// The timestamp clock in use: `"tsc"` (the calibrated time-stamp counter)
/// or `"clock_gettime"` (`CLOCK_MONOTONIC`, where the TSC is not invariant
/// or `PULSE_NO_TSC` is set), for a bench to print next to its figures.
///
/// # Examples
///
/// ```
/// assert!(["tsc", "clock_gettime"].contains(&pulse::bench::timestamp_clock()));
/// ```
pub fn timestamp_clock() -> &'static str {
    if crate::record::clock::Clock::get().is_tsc() {
        "tsc"
    } else {
        "clock_gettime"
    }
}
