//! The recording's owner and controls: [`RecordingGuard`] (ends it),
//! [`RecordingHandle`] (enables, disables, flushes, reads counters) and
//! [`RecordingSummary`] (what it wrote).

use crate::config::Config;
use crate::error::Error;
use crate::record::flusher::{self, FlushStats};
use crate::record::hooks::flush_current_thread;
use crate::record::metrics::MetricsSnapshot;
use crate::record::shared::Shared;
use crate::writer::TraceWriter;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Controls a recording while it runs: enable, disable, flush, and read its
/// counters. Cheap to clone; usable from any thread.
///
/// # Examples
///
/// ```
/// use pulse::{Config, Recorder, WriterConfig};
///
/// let config = Config::new().writer(WriterConfig::Null);
/// let (runtime, guard) = Recorder::from_config(tokio::runtime::Builder::new_multi_thread(), &config)?;
/// let handle = guard.handle();
/// handle.disable();
/// runtime.block_on(async { /* not recorded */ });
/// handle.enable();
/// assert!(handle.is_enabled());
/// # Ok::<(), pulse::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RecordingHandle {
    shared: Arc<Shared>,
}

impl RecordingHandle {
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
///
/// ```
/// use pulse::{Config, Recorder, WriterConfig};
///
/// let config = Config::new().writer(WriterConfig::Null);
/// let (runtime, guard) = Recorder::from_config(tokio::runtime::Builder::new_current_thread(), &config)?;
/// runtime.block_on(async { tokio::task::yield_now().await });
/// drop(runtime);
/// let summary = guard.finish()?;
/// assert!(summary.events_written > 0);
/// assert_eq!(summary.dropped_events, 0);
/// # Ok::<(), pulse::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordingSummary {
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
///
/// ```
/// use pulse::{Config, Recorder, WriterConfig};
///
/// let config = Config::new().writer(WriterConfig::Null);
/// let (runtime, guard) = Recorder::from_config(tokio::runtime::Builder::new_multi_thread(), &config)?;
/// let handle = guard.handle(); // controls the recording from anywhere
/// runtime.block_on(async { tokio::spawn(async {}).await.unwrap() });
/// drop(runtime); // first the runtime: its workers hand over their last events
/// drop(guard); // then the guard: the final flush
/// assert_eq!(handle.dropped_events(), 0);
/// # Ok::<(), pulse::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "dropping the guard ends the recording"]
pub struct RecordingGuard {
    handle: RecordingHandle,
    flusher: Option<JoinHandle<FlushStats>>,
}

impl RecordingGuard {
    /// Starts the flusher thread for `shared`.
    pub(crate) fn start(
        shared: Arc<Shared>,
        writer: Box<dyn TraceWriter>,
        config: &Config,
    ) -> Result<RecordingGuard, Error> {
        let flusher = flusher::spawn(shared.clone(), writer, config).map_err(Error::FlushThread)?;
        Ok(RecordingGuard {
            handle: RecordingHandle { shared },
            flusher: Some(flusher),
        })
    }

    /// A handle to control the recording.
    pub fn handle(&self) -> RecordingHandle {
        self.handle.clone()
    }

    /// Live per-worker totals; see [`RecordingHandle::metrics`].
    pub fn metrics(&self) -> MetricsSnapshot {
        self.handle.metrics()
    }

    /// Ends the recording: writes every remaining event, closes the writer
    /// and reports what was written. Dropping the guard does the same and
    /// prints problems to stderr instead.
    pub fn finish(mut self) -> Result<RecordingSummary, Error> {
        let summary = self.stop();
        match &summary.write_error {
            Some(message) => Err(Error::Write(std::io::Error::other(message.clone()))),
            None => Ok(summary),
        }
    }

    fn stop(&mut self) -> RecordingSummary {
        let shared = &self.handle.shared;
        let Some(flusher) = self.flusher.take() else {
            return RecordingSummary::default();
        };
        flush_current_thread(shared);
        shared.collector.request_stop();
        let stats = flusher.join().unwrap_or_default();
        RecordingSummary {
            events_written: stats.events_written,
            dropped_events: shared.collector.dropped(),
            write_error: self.handle.write_error(),
        }
    }
}

impl Drop for RecordingGuard {
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
        // over a recording message.
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
