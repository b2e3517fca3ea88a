//! Hook installation and the recording hot path: [`TracedRuntime`],
//! [`TelemetryGuard`] and [`TelemetryHandle`].
//!
//! Per poll event the hot path does: one relaxed load of the enabled flag,
//! `tokio::runtime::worker_index()` (a thread-local read), the worker's local
//! queue depth (atomic loads), one monotonic clock read, and a push into the
//! thread's own buffer. No lock, allocation, hash or system call. Park and
//! unpark add the thread's CPU clock and, on Linux, one `pread` of the
//! thread's cached `schedstat` descriptor, and hand the buffer to the
//! collector.

use crate::buffer::ThreadSlot;
use crate::clock::{self, SchedStatFile};
use crate::collector::CentralCollector;
use crate::config::Config;
use crate::error::Error;
use crate::event::{SpawnLocation, TelemetryEvent};
use crate::flusher::{self, FlushStats};
use crate::format::TraceMetadata;
use crate::metrics::{MetricsBatch, MetricsSnapshot, SharedMetrics};
use crate::writer::TraceWriter;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use tokio::runtime::{Builder, LocalOptions, LocalRuntime, Runtime, RuntimeMetrics, TaskMeta};

/// State shared by the hooks, the flusher thread and the handles of one
/// recording.
#[derive(Debug)]
pub(crate) struct Shared {
    enabled: AtomicBool,
    /// `clock::monotonic_nanos()` at trace timestamp 0.
    epoch_nanos: u64,
    /// Set right after the runtime is built; until then queue depths read 0.
    metrics: OnceLock<RuntimeMetrics>,
    pub(crate) collector: CentralCollector,
    /// Live per-worker counters (seed 000's batched metrics).
    pub(crate) metrics_totals: SharedMetrics,
    /// Every thread buffer of this recording, for the flusher to copy from.
    pub(crate) slots: Mutex<Vec<Arc<ThreadSlot>>>,
    buffer_events: usize,
    run_queue_wait: bool,
    /// The writer failed; recording has stopped.
    pub(crate) writer_failed: AtomicBool,
    pub(crate) write_error: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn new(config: &Config) -> Self {
        Shared {
            enabled: AtomicBool::new(config.is_enabled()),
            epoch_nanos: clock::monotonic_nanos(),
            metrics: OnceLock::new(),
            collector: CentralCollector::new(
                config.get_max_pending_events(),
                config.get_buffer_events(),
            ),
            metrics_totals: SharedMetrics::new(
                config.get_poll_histogram(),
                config.get_metrics_submit_every(),
            ),
            slots: Mutex::new(Vec::new()),
            buffer_events: config.get_buffer_events(),
            run_queue_wait: config.get_run_queue_wait(),
            writer_failed: AtomicBool::new(false),
            write_error: Mutex::new(None),
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Nanoseconds since the trace started.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        clock::monotonic_nanos().saturating_sub(self.epoch_nanos)
    }

    #[inline]
    fn local_queue(&self, worker: usize) -> u32 {
        match self.metrics.get() {
            Some(metrics) => saturate_u32(metrics.worker_local_queue_depth(worker)),
            None => 0,
        }
    }

    pub(crate) fn set_runtime_metrics(&self, metrics: RuntimeMetrics) {
        self.metrics_totals.init(metrics.num_workers());
        let _ = self.metrics.set(metrics);
    }

    pub(crate) fn runtime_metrics(&self) -> Option<&RuntimeMetrics> {
        self.metrics.get()
    }

    pub(crate) fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ThreadSlot>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops recording after a writer failure.
    pub(crate) fn fail_writer(&self, message: String) {
        self.enabled.store(false, Ordering::Relaxed);
        self.writer_failed.store(true, Ordering::Relaxed);
        *self.write_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
    }
}

#[inline]
fn saturate_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// The calling thread's buffer and cached per-thread resources.
struct Local {
    shared: Arc<Shared>,
    slot: Arc<ThreadSlot>,
    /// `/proc/thread-self/schedstat`, opened once per thread.
    schedstat: Option<SchedStatFile>,
    /// The last PollStart was recorded, so its PollEnd must be too (keeps
    /// start/end paired when recording is toggled mid-poll).
    in_poll: bool,
    /// The last park was recorded, so its unpark must be too.
    parked: bool,
    /// Last worker index seen, mirrored into `slot.worker` on change.
    worker: u32,
    /// This thread's unsubmitted metric counts.
    metrics: MetricsBatch,
}

impl Local {
    #[cold]
    fn new(shared: &Arc<Shared>) -> Local {
        let tid = clock::current_tid();
        let slot = Arc::new(ThreadSlot::new(shared.buffer_events, tid));
        shared.slots().push(slot.clone());
        let schedstat = if shared.run_queue_wait {
            SchedStatFile::open_current_thread().ok()
        } else {
            None
        };
        Local {
            shared: shared.clone(),
            slot,
            schedstat,
            in_poll: false,
            parked: false,
            worker: crate::buffer::NO_WORKER,
            metrics: MetricsBatch::new(),
        }
    }

    #[inline]
    fn push(&mut self, event: TelemetryEvent) {
        // SAFETY: `Local` lives in this thread's thread-local storage, so this
        // thread owns `slot`; a full buffer is flushed right away.
        unsafe {
            if self.slot.push(event) {
                self.slot.flush_owned(&self.shared.collector);
            }
        }
    }

    fn flush(&mut self) {
        // SAFETY: see `push`.
        unsafe { self.slot.flush_owned(&self.shared.collector) }
        self.metrics.submit_pending(&self.shared.metrics_totals);
    }

    #[inline]
    fn note_worker(&mut self, worker: u32) {
        if self.worker != worker {
            self.worker = worker;
            self.slot.worker.store(worker, Ordering::Relaxed);
            self.metrics.set_worker(worker, &self.shared.metrics_totals);
        }
    }

    fn read_run_delay(&self) -> u64 {
        self.schedstat
            .as_ref()
            .and_then(|file| file.read().ok())
            .map_or(0, |stat| stat.run_delay_nanos)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Thread exit: nothing recorded on this thread may be lost.
        self.flush();
    }
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's buffer for `shared`, creating it on first use
/// (or when the thread switches to another recording).
#[inline]
fn with_local(shared: &Arc<Shared>, f: impl FnOnce(&mut Local)) {
    let _ = LOCAL.try_with(|cell| {
        let Ok(mut local) = cell.try_borrow_mut() else {
            return;
        };
        match &mut *local {
            Some(local) if Arc::ptr_eq(&local.shared, shared) => f(local),
            other => {
                // Rare: first event of this thread, or a thread that records
                // for two runtimes in turn. Hand the old buffer over first.
                *other = Some(Local::new(shared));
                if let Some(local) = other.as_mut() {
                    f(local);
                }
            }
        }
    });
}

/// Hands the calling thread's buffer to the collector (if it belongs to
/// `shared`).
fn flush_current_thread(shared: &Arc<Shared>) {
    let _ = LOCAL.try_with(|cell| {
        if let Ok(mut local) = cell.try_borrow_mut() {
            if let Some(local) = local.as_mut().filter(|l| Arc::ptr_eq(&l.shared, shared)) {
                local.flush();
            }
        }
    });
}

/// Tokio's task id as a number. `tokio::task::Id` exposes it only through
/// `Display` (which would format per poll) and `Hash`; its `Hash` writes the
/// id with a single `write_u64`, which this hasher captures.
#[inline]
pub(crate) fn task_id_u64(id: tokio::task::Id) -> u64 {
    #[derive(Default)]
    struct Capture(u64);
    impl std::hash::Hasher for Capture {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            // Not reached for today's `Id`; keep any future layout's bytes.
            for &b in bytes {
                self.0 = (self.0 << 8) | u64::from(b);
            }
        }
        fn write_u64(&mut self, value: u64) {
            self.0 = value;
        }
    }
    let mut capture = Capture::default();
    std::hash::Hash::hash(&id, &mut capture);
    capture.0
}

#[inline]
fn current_worker() -> Option<u32> {
    tokio::runtime::worker_index().map(saturate_u32)
}

// The four recording functions take the worker index as an argument so that
// `bench::HotPath` drives exactly the code the hooks run.

#[inline]
pub(crate) fn record_poll_start(
    shared: &Arc<Shared>,
    worker: u32,
    task_id: u64,
    spawned_at: SpawnLocation,
) {
    if !shared.is_enabled() {
        return;
    }
    with_local(shared, |local| {
        // Read the clock inside, after a first event's one-time set-up of
        // the thread's buffer, so set-up is not counted as poll time.
        let local_queue = local.shared.local_queue(worker as usize);
        let timestamp_nanos = local.shared.now();
        local.note_worker(worker);
        local.in_poll = true;
        local.metrics.poll_start(timestamp_nanos, local_queue);
        local.push(TelemetryEvent::PollStart {
            timestamp_nanos,
            worker,
            local_queue,
            task_id,
            spawned_at,
        });
    });
}

#[inline]
pub(crate) fn record_poll_end(shared: &Arc<Shared>, worker: u32) {
    with_local(shared, |local| {
        if !std::mem::take(&mut local.in_poll) {
            return;
        }
        let local_queue = local.shared.local_queue(worker as usize);
        let timestamp_nanos = local.shared.now();
        local
            .metrics
            .poll_end(timestamp_nanos, local_queue, &local.shared.metrics_totals);
        local.push(TelemetryEvent::PollEnd {
            timestamp_nanos,
            worker,
            local_queue,
        });
    });
}

pub(crate) fn record_park(shared: &Arc<Shared>, worker: u32) {
    if !shared.is_enabled() {
        return;
    }
    with_local(shared, |local| {
        local.note_worker(worker);
        let local_queue = local.shared.local_queue(worker as usize);
        // Fixed order, next to the timestamp: time, CPU clock, schedstat.
        let timestamp_nanos = local.shared.now();
        let cpu_nanos = clock::thread_cpu_nanos();
        let run_delay_nanos = local.read_run_delay();
        local.parked = true;
        local
            .metrics
            .park(local_queue, &local.shared.metrics_totals);
        local.push(TelemetryEvent::WorkerPark {
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            run_delay_nanos,
        });
        // A parked worker may sleep for long: let its events go now.
        local.flush();
    });
}

pub(crate) fn record_unpark(shared: &Arc<Shared>, worker: u32) {
    let enabled = shared.is_enabled();
    with_local(shared, |local| {
        if !std::mem::take(&mut local.parked) && !enabled {
            return;
        }
        local.note_worker(worker);
        let local_queue = local.shared.local_queue(worker as usize);
        let timestamp_nanos = local.shared.now();
        let cpu_nanos = clock::thread_cpu_nanos();
        let run_delay_nanos = local.read_run_delay();
        local.metrics.unpark(local_queue);
        local.push(TelemetryEvent::WorkerUnpark {
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            run_delay_nanos,
        });
    });
}

/// Builds Tokio runtimes with pulse's hooks installed.
///
/// # Examples
///
/// The seed design's usage pattern:
///
/// ```
/// use pulse::{RotatingWriter, TracedRuntime};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("trace.bin");
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// builder.worker_threads(2).enable_all();
/// let writer = RotatingWriter::new(&path, 1 << 20, 5 << 20)?;
/// let (runtime, guard) = TracedRuntime::build(builder, Box::new(writer))?;
///
/// // Use the runtime normally.
/// runtime.block_on(async {
///     tokio::spawn(async { 1 + 1 }).await.unwrap();
/// });
///
/// // Drop the runtime, then the guard performs the final flush.
/// drop(runtime);
/// drop(guard);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TracedRuntime {
    _private: (),
}

impl TracedRuntime {
    /// Installs pulse's hooks on `builder`, builds the runtime and starts the
    /// flush/sample thread writing to `writer`, with the default [`Config`].
    ///
    /// pulse sets `on_thread_park`, `on_thread_unpark`,
    /// `on_before_task_poll`, `on_after_task_poll` and `on_thread_stop`;
    /// Tokio keeps one callback of each kind, so hooks of those kinds set on
    /// `builder` earlier are replaced.
    pub fn build(
        builder: Builder,
        writer: Box<dyn TraceWriter>,
    ) -> Result<(Runtime, TelemetryGuard), Error> {
        Self::build_with_config(builder, writer, &Config::default())
    }

    /// Like [`TracedRuntime::build`], with the intervals, buffer sizes and
    /// format of `config` (its writer setting is not used: `writer` is).
    pub fn build_with_config(
        builder: Builder,
        writer: Box<dyn TraceWriter>,
        config: &Config,
    ) -> Result<(Runtime, TelemetryGuard), Error> {
        build_traced(builder, writer, config, Builder::build, Runtime::metrics)
    }

    /// Like [`TracedRuntime::build_with_config`], for a [`LocalRuntime`]
    /// (Tokio's `!Send`-friendly single-thread runtime), built with
    /// `options`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse::{Config, NullWriter, TracedRuntime};
    /// use tokio::runtime::LocalOptions;
    ///
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// builder.enable_all();
    /// let (runtime, guard) = TracedRuntime::build_local_with_config(
    ///     builder,
    ///     Box::new(NullWriter::new()),
    ///     &Config::new(),
    ///     LocalOptions::default(),
    /// )?;
    /// let shared = std::rc::Rc::new(5); // not Send
    /// let doubled = runtime.block_on(async move {
    ///     tokio::task::spawn_local(async move { *shared * 2 }).await.unwrap()
    /// });
    /// assert_eq!(doubled, 10);
    /// drop(runtime);
    /// assert_eq!(guard.finish()?.dropped_events, 0);
    /// # Ok::<(), pulse::Error>(())
    /// ```
    pub fn build_local_with_config(
        builder: Builder,
        writer: Box<dyn TraceWriter>,
        config: &Config,
        options: LocalOptions,
    ) -> Result<(LocalRuntime, TelemetryGuard), Error> {
        build_traced(
            builder,
            writer,
            config,
            move |builder| builder.build_local(options),
            LocalRuntime::metrics,
        )
    }

    /// Builds a runtime recording as `config` describes, creating its writer.
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse::{Config, TracedRuntime, WriterConfig};
    ///
    /// let config = Config::new().writer(WriterConfig::Null);
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// builder.enable_all();
    /// let (runtime, guard) = TracedRuntime::from_config(builder, &config)?;
    /// runtime.block_on(async { tokio::task::yield_now().await });
    /// drop(runtime);
    /// let summary = guard.finish()?;
    /// assert_eq!(summary.dropped_events, 0);
    /// # Ok::<(), pulse::Error>(())
    /// ```
    pub fn from_config(
        builder: Builder,
        config: &Config,
    ) -> Result<(Runtime, TelemetryGuard), Error> {
        let writer = config.make_writer()?;
        Self::build_with_config(builder, writer, config)
    }

    /// Like [`TracedRuntime::from_config`], for a [`LocalRuntime`].
    pub fn from_config_local(
        builder: Builder,
        config: &Config,
        options: LocalOptions,
    ) -> Result<(LocalRuntime, TelemetryGuard), Error> {
        let writer = config.make_writer()?;
        Self::build_local_with_config(builder, writer, config, options)
    }
}

/// Installs the hooks, builds the runtime with `build`, and starts the
/// flusher writing to `writer`.
fn build_traced<R>(
    mut builder: Builder,
    mut writer: Box<dyn TraceWriter>,
    config: &Config,
    build: impl FnOnce(&mut Builder) -> std::io::Result<R>,
    runtime_metrics: impl FnOnce(&R) -> RuntimeMetrics,
) -> Result<(R, TelemetryGuard), Error> {
    config.validate()?;
    let shared = Arc::new(Shared::new(config));
    install_hooks(&mut builder, &shared);
    let runtime = build(&mut builder).map_err(Error::Runtime)?;
    let metrics = runtime_metrics(&runtime);
    let worker_count = saturate_u32(metrics.num_workers());
    shared.set_runtime_metrics(metrics);

    let metadata = TraceMetadata {
        time_unit_nanos: config.get_time_unit_nanos(),
        worker_count,
        start_unix_nanos: unix_nanos_at_epoch(&shared),
        pulse_version: env!("CARGO_PKG_VERSION").to_owned(),
        has_run_delay: config.get_run_queue_wait() && SchedStatFile::open_current_thread().is_ok(),
        file_index: 0,
        config: config.describe(),
    };
    writer.begin(&metadata).map_err(Error::Write)?;
    let guard = TelemetryGuard::start(shared, writer, config)?;
    Ok((runtime, guard))
}

fn install_hooks(builder: &mut Builder, shared: &Arc<Shared>) {
    // Threads that are not workers (blocking-pool threads, a `block_on`
    // caller on the multi-thread runtime) have no worker index: skip them.
    let s = shared.clone();
    builder.on_before_task_poll(move |meta: &TaskMeta<'_>| {
        if let Some(worker) = current_worker() {
            let spawned_at = SpawnLocation(meta.spawned_at());
            record_poll_start(&s, worker, task_id_u64(meta.id()), spawned_at);
        }
    });
    let s = shared.clone();
    builder.on_after_task_poll(move |_| {
        if let Some(worker) = current_worker() {
            record_poll_end(&s, worker);
        }
    });
    let s = shared.clone();
    builder.on_thread_park(move || {
        if let Some(worker) = current_worker() {
            record_park(&s, worker);
        }
    });
    let s = shared.clone();
    builder.on_thread_unpark(move || {
        if let Some(worker) = current_worker() {
            record_unpark(&s, worker);
        }
    });
    let s = shared.clone();
    builder.on_thread_stop(move || flush_current_thread(&s));
}

/// Wall-clock time corresponding to trace timestamp 0, in ns since the Unix
/// epoch (read now, minus the time elapsed since the epoch was taken).
fn unix_nanos_at_epoch(shared: &Shared) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    now.saturating_sub(shared.now())
}

/// Controls a recording while it runs: enable, disable, flush, and read its
/// counters. Cheap to clone; usable from any thread.
///
/// # Examples
///
/// ```
/// use pulse::{Config, TracedRuntime, WriterConfig};
///
/// let config = Config::new().writer(WriterConfig::Null);
/// let (runtime, guard) = TracedRuntime::from_config(tokio::runtime::Builder::new_multi_thread(), &config)?;
/// let handle = guard.handle();
/// handle.disable();
/// runtime.block_on(async { /* not recorded */ });
/// handle.enable();
/// assert!(handle.is_enabled());
/// # Ok::<(), pulse::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TelemetryHandle {
    shared: Arc<Shared>,
}

impl TelemetryHandle {
    /// Starts (or resumes) recording. Has no effect after a writer failure.
    pub fn enable(&self) {
        if !self.shared.writer_failed.load(Ordering::Relaxed) {
            self.shared.enabled.store(true, Ordering::Relaxed);
        }
    }

    /// Pauses recording. A poll or park in progress still records its end,
    /// so the trace stays paired.
    pub fn disable(&self) {
        self.shared.enabled.store(false, Ordering::Relaxed);
    }

    /// Whether new events are being recorded.
    pub fn is_enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::Relaxed)
    }

    /// Asks the background thread to write everything recorded so far now,
    /// rather than at its next tick. Does not wait.
    pub fn flush(&self) {
        self.shared.collector.request_flush();
    }

    /// Events lost so far (the writer fell behind or failed). Each loss is
    /// also recorded in the trace as an `EventsDropped` record.
    pub fn dropped_events(&self) -> u64 {
        self.shared.collector.dropped()
    }

    /// Live per-worker totals: polls, busy time, parks, no-op unparks, the
    /// local-queue high-water mark and the poll-duration histogram, counted
    /// while recording is enabled. Cheap enough to call every second; a
    /// thread's latest counts arrive when it parks, hands over its buffer or
    /// completes `submit_every` polls (see
    /// [`Config::metrics_submit_every`](crate::Config::metrics_submit_every)).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics_totals.snapshot()
    }

    /// The writer's error, if it failed (recording stopped then).
    pub fn write_error(&self) -> Option<String> {
        self.shared
            .write_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What a finished recording wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceSummary {
    /// Events handed to the writer.
    pub events_written: u64,
    /// Events lost (writer too slow or failed).
    pub dropped_events: u64,
    /// The writer's error, if it failed.
    pub write_error: Option<String>,
}

/// Keeps a recording alive; dropping it (after the runtime) writes the
/// last events and closes the trace.
///
/// Drop the runtime first: its worker threads hand over their buffers as
/// they stop. Events recorded by threads still alive when the guard drops are
/// collected too.
#[derive(Debug)]
#[must_use = "dropping the guard ends the recording"]
pub struct TelemetryGuard {
    handle: TelemetryHandle,
    flusher: Option<JoinHandle<FlushStats>>,
}

impl TelemetryGuard {
    /// Starts the flusher thread for `shared`.
    pub(crate) fn start(
        shared: Arc<Shared>,
        writer: Box<dyn TraceWriter>,
        config: &Config,
    ) -> Result<TelemetryGuard, Error> {
        let flusher = flusher::spawn(shared.clone(), writer, config).map_err(Error::FlushThread)?;
        Ok(TelemetryGuard {
            handle: TelemetryHandle { shared },
            flusher: Some(flusher),
        })
    }

    /// A handle to control the recording.
    pub fn handle(&self) -> TelemetryHandle {
        self.handle.clone()
    }

    /// Live per-worker totals; see [`TelemetryHandle::metrics`].
    pub fn metrics(&self) -> MetricsSnapshot {
        self.handle.metrics()
    }

    /// Ends the recording: writes every remaining event, closes the writer
    /// and reports what was written. Dropping the guard does the same and
    /// prints problems to stderr instead.
    pub fn finish(mut self) -> Result<TraceSummary, Error> {
        let summary = self.stop();
        match &summary.write_error {
            Some(message) => Err(Error::Write(std::io::Error::other(message.clone()))),
            None => Ok(summary),
        }
    }

    fn stop(&mut self) -> TraceSummary {
        let shared = &self.handle.shared;
        let Some(flusher) = self.flusher.take() else {
            return TraceSummary::default();
        };
        flush_current_thread(shared);
        shared.collector.request_stop();
        let stats = flusher.join().unwrap_or_default();
        TraceSummary {
            events_written: stats.events_written,
            dropped_events: shared.collector.dropped(),
            write_error: self.handle.write_error(),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if self.flusher.is_none() {
            return;
        }
        let summary = self.stop();
        if summary.dropped_events == 0 {
            return;
        }
        // Not `eprintln!`: it panics when stderr is a broken pipe, and a
        // panic here (possibly while unwinding) would take the program down
        // over a telemetry message.
        use std::io::Write;
        let _ = match &summary.write_error {
            None => writeln!(
                std::io::stderr(),
                "pulse: {} events were dropped because the trace writer fell behind \
                 (raise max_pending_events or flush more often); the trace marks where",
                summary.dropped_events
            ),
            Some(error) => writeln!(
                std::io::stderr(),
                "pulse: the trace is incomplete: {} events were not written after the \
                 writer failed ({error})",
                summary.dropped_events
            ),
        };
    }
}
