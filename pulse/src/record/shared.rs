//! [`Shared`]: the state one recording's hooks, flusher, sampler and
//! handles share.

use crate::config::Config;
use crate::record::buffer::ThreadSlot;
use crate::record::clock::{Clock, TraceClock};
use crate::record::collector::CentralCollector;
use crate::record::metrics::SharedMetrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::runtime::RuntimeMetrics;

/// State shared by the hooks, the flusher thread and the handles of one
/// recording.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) enabled: AtomicBool,
    /// The timestamp clock, counting from trace timestamp 0.
    clock: TraceClock,
    /// Set right after the runtime is built; until then queue depths read 0.
    metrics: OnceLock<RuntimeMetrics>,
    pub(crate) collector: CentralCollector,
    /// Live per-worker counters (seed 000's batched metrics).
    pub(crate) metrics_totals: SharedMetrics,
    /// Every thread buffer of this recording, for the flusher to copy from.
    pub(crate) slots: Mutex<Vec<Arc<ThreadSlot>>>,
    pub(crate) buffer_events: usize,
    pub(crate) run_queue_wait: bool,
    /// Tokio measures schedule latencies for the poll hooks to record
    /// (read only where there are poll hooks: `--cfg tokio_unstable`).
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) schedule_latency: bool,
    /// The writer failed; recording has stopped.
    pub(crate) writer_failed: AtomicBool,
    pub(crate) write_error: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn new(config: &Config) -> Self {
        Shared {
            enabled: AtomicBool::new(config.enabled),
            clock: Clock::get().starting_now(),
            metrics: OnceLock::new(),
            collector: CentralCollector::new(config.max_pending_events, config.buffer_events),
            metrics_totals: SharedMetrics::new(config.poll_histogram, config.metrics_submit_every),
            slots: Mutex::new(Vec::new()),
            buffer_events: config.buffer_events,
            run_queue_wait: config.run_queue_wait,
            schedule_latency: config.schedule_latency,
            writer_failed: AtomicBool::new(false),
            write_error: Mutex::new(None),
        }
    }

    #[inline]
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Nanoseconds since the trace started.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Tasks in `worker`'s local run queue; 0 until the runtime is built,
    /// and always 0 without `--cfg tokio_unstable` (Tokio keeps the depth
    /// behind it; the trace's metadata says `tokio_unstable=false`).
    #[inline]
    pub(crate) fn local_queue(&self, worker: usize) -> u32 {
        #[cfg(tokio_unstable)]
        if let Some(metrics) = self.metrics.get() {
            return saturate_u32(metrics.worker_local_queue_depth(worker));
        }
        let _ = worker;
        0
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

/// Wall-clock time corresponding to trace timestamp 0, in ns since the Unix
/// epoch (read now, minus the time elapsed since the epoch was taken).
pub(crate) fn unix_nanos_at_epoch(shared: &Shared) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    now.saturating_sub(shared.now())
}

/// `value` as a `u32`, saturating (queue depths and worker indices).
#[inline]
pub(crate) fn saturate_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}
