//! Support for measuring pulse itself (feature `bench`).
//!
//! [`HotPath`] drives the exact functions the Tokio hooks call, with the
//! worker index passed in, so a benchmark can time one poll or park event
//! without a runtime scheduling around it. Events go through the real
//! thread buffers, collector and flusher thread into a [`NullWriter`].

use crate::config::Config;
use crate::error::Error;
use crate::event::SpawnLocation;
use crate::recorder::{self, Shared, TelemetryGuard, TraceSummary};
use crate::writer::NullWriter;
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
///     hot.poll_end(0);
/// }
/// hot.park(0);
/// hot.unpark(0);
/// let summary = hot.finish()?;
/// assert_eq!(summary.events_written + summary.dropped_events, 20_002);
/// # Ok::<(), pulse::Error>(())
/// ```
#[derive(Debug)]
pub struct HotPath {
    shared: Arc<Shared>,
    guard: TelemetryGuard,
}

impl HotPath {
    /// A recording with `config`'s buffer sizes and intervals, writing to a
    /// [`NullWriter`] (the config's writer setting is ignored).
    pub fn new(config: &Config) -> Result<HotPath, Error> {
        config.validate()?;
        let shared = Arc::new(Shared::new(config));
        shared.metrics_totals.init(MAX_WORKERS);
        let guard = TelemetryGuard::start(shared.clone(), Box::new(NullWriter::new()), config)?;
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
        recorder::record_poll_start(&self.shared, worker, task_id, SpawnLocation(spawned_at));
    }

    /// Records what `on_after_task_poll` records.
    #[inline]
    pub fn poll_end(&self, worker: u32) {
        recorder::record_poll_end(&self.shared, worker);
    }

    /// Records what `on_thread_park` records (and hands the buffer over).
    #[inline]
    pub fn park(&self, worker: u32) {
        recorder::record_park(&self.shared, worker);
    }

    /// Records what `on_thread_unpark` records.
    #[inline]
    pub fn unpark(&self, worker: u32) {
        recorder::record_unpark(&self.shared, worker);
    }

    /// Stops the flusher and reports what was written and dropped.
    pub fn finish(self) -> Result<TraceSummary, Error> {
        self.guard.finish()
    }
}
