//! The recording's owner and controls: [`RecordingGuard`] (ends it),
//! [`RecordingHandle`] (enables, disables, flushes, reads counters) and
//! [`RecordingSummary`] (what it wrote).

use crate::config::Config;
use crate::error::Error;
use crate::record::buffer::NO_WORKER;
use crate::record::control::{AutoDumps, Control, Request};
use crate::record::flusher::{self, panic_message, FlushStats};
use crate::record::hooks::flush_current_thread;
use crate::record::metrics::MetricsSnapshot;
use crate::record::shared::Shared;
use crate::record::{clock, signals};
use crate::writer::TraceWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    control: Arc<Control>,
}

impl RecordingHandle {
    /// Starts (or resumes) recording. Has no effect after a writer failure
    /// or once the recording has ended.
    pub fn enable(&self) {
        if !self.shared.writer_failed.load(Ordering::Relaxed) && !self.control.is_closed() {
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

    /// Writes the in-memory flight recorder's window (see
    /// [`WriterConfig::memory`](crate::WriterConfig::memory)) as a trace at
    /// `path`, ending with an end-of-trace record that says it is a dump,
    /// and returns the first file written. Recording goes on. Everything
    /// recorded before the call is in the dump (the window's limits
    /// permitting). Waits for the background thread, at most 60 s.
    ///
    /// # Errors
    ///
    /// The writer keeps no window (not `writer = "memory"`), the recording
    /// has ended, or the file cannot be written (the recording goes on).
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse::{Config, Recorder, WriterConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = Config::new().writer(WriterConfig::memory(dir.path().join("dump.bin")));
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// builder.enable_all();
    /// let (runtime, guard) = Recorder::from_config(builder, &config)?;
    /// runtime.block_on(async { tokio::task::yield_now().await });
    /// let first = guard.handle().dump(dir.path().join("incident.bin"))?;
    /// assert!(pulse::trace::TraceReader::open(&first).is_ok());
    /// # drop(runtime);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dump(&self, path: impl AsRef<Path>) -> Result<PathBuf, Error> {
        let path = path.as_ref().to_owned();
        let ticket = self.control.request(Request::Dump(path.clone()));
        let failed = |message: String| Error::Dump {
            path: path.clone(),
            message,
        };
        match self.control.wait(ticket, Duration::from_secs(60)) {
            Some(Ok(Some(first))) => Ok(first),
            Some(Ok(None)) => Err(failed("nothing was written".to_owned())),
            Some(Err(message)) => Err(failed(message)),
            None => Err(failed(
                "the background thread did not answer within 60 s".to_owned(),
            )),
        }
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
    /// Threads still recording when the recording ended (the guard was
    /// dropped before the runtime); what they did afterwards is not in the
    /// trace, and its end record says how many there were.
    pub threads_still_recording: u32,
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

/// How long the guard waits for runtime threads that are exiting (their
/// runtime was just dropped) before it counts them as still recording.
const EXIT_GRACE: Duration = Duration::from_millis(250);

/// Worker threads of this recording, other than the calling one, that are
/// still alive after a short grace period.
fn threads_still_recording(shared: &Shared) -> u32 {
    let me = clock::current_tid();
    let deadline = Instant::now() + EXIT_GRACE;
    loop {
        let alive = shared
            .slots()
            .iter()
            .filter(|slot| {
                Arc::strong_count(slot) > 1
                    && slot.worker.load(Ordering::Relaxed) != NO_WORKER
                    && (slot.tid.is_none() || slot.tid != me)
            })
            .count();
        if alive == 0 || Instant::now() >= deadline {
            return u32::try_from(alive).unwrap_or(u32::MAX);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl RecordingGuard {
    /// Starts the flusher thread for `shared`.
    pub(crate) fn start(
        shared: Arc<Shared>,
        writer: Box<dyn TraceWriter>,
        config: &Config,
    ) -> Result<RecordingGuard, Error> {
        let control = Arc::new(Control::new(shared.clone(), AutoDumps::from_config(config)));
        let flusher =
            flusher::spawn(control.clone(), writer, config).map_err(Error::FlushThread)?;
        let dump_signal = if control.dumps() {
            config.dump_signal
        } else {
            None
        };
        if config.signals || control.dumps() {
            let problems = signals::register(&control, config.signals, dump_signal);
            if !config.quiet {
                for problem in problems {
                    use std::io::Write;
                    let _ = writeln!(std::io::stderr(), "pulse: {problem}");
                }
            }
        }
        if config.signals || control.dumps() {
            // Flushes (with `signals`) and dumps the flight recorder on a
            // panic.
            signals::install_panic_hook();
        }
        Ok(RecordingGuard {
            handle: RecordingHandle { shared, control },
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
        let control = &self.handle.control;
        signals::unregister(control);
        flush_current_thread(shared);
        let threads = threads_still_recording(shared);
        if threads > 0 {
            // The runtime outlives the recording: stop recording new
            // events; the ends of polls and parks in progress arrive after
            // the flusher has gone and are counted as dropped.
            shared.enabled.store(false, Ordering::Relaxed);
        }
        control.set_threads_still_recording(threads);
        shared.collector.request_stop();
        let stats = match flusher.join() {
            Ok(stats) => stats,
            Err(payload) => {
                shared.fail_writer(format!(
                    "pulse's flusher thread panicked: {}",
                    panic_message(payload.as_ref())
                ));
                control.close();
                FlushStats::default()
            }
        };
        shared.enabled.store(false, Ordering::Relaxed);
        RecordingSummary {
            events_written: stats.events_written,
            dropped_events: shared.collector.dropped(),
            write_error: self.handle.write_error(),
            threads_still_recording: threads,
        }
    }
}

impl Drop for RecordingGuard {
    fn drop(&mut self) {
        if self.flusher.is_none() {
            return;
        }
        let summary = self.stop();
        // Not `eprintln!`: it panics when stderr is a broken pipe, and a
        // panic here (possibly while unwinding) would take the program down
        // over a recording message.
        use std::io::Write;
        if summary.threads_still_recording > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "pulse: the recording ended while {} runtime threads were still running (the \
                 guard was dropped before the runtime had stopped; drop the runtime first): what \
                 they did afterwards is not in the trace, whose end record says so",
                summary.threads_still_recording
            );
        }
        if summary.dropped_events == 0 {
            return;
        }
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
