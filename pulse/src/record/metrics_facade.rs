//! The live per-worker metrics published through the [`metrics`] crate's
//! facade (feature `metrics`), so any exporter works: Prometheus
//! (`metrics-exporter-prometheus`), StatsD, OpenTelemetry bridges, ...
//!
//! [`MetricsPublisher::publish`] reads
//! [`RecordingHandle::metrics`](crate::RecordingHandle::metrics) and hands
//! it to whichever recorder the program installed; call it periodically,
//! or let [`MetricsPublisher::spawn`] do so on a thread of its own. Every
//! metric has a `worker` label (the worker's index, `"0"`, `"1"`, ...):
//!
//! | name | kind | unit | value |
//! |---|---|---|---|
//! | `tokio_pulse_polls_total` | counter | count | task polls completed |
//! | `tokio_pulse_busy_nanoseconds_total` | counter | nanoseconds | time inside polls |
//! | `tokio_pulse_parks_total` | counter | count | times the worker parked |
//! | `tokio_pulse_noop_unparks_total` | counter | count | unparks followed by a park without a poll |
//! | `tokio_pulse_local_queue_max` | gauge | count | largest local-queue depth seen |
//! | `tokio_pulse_poll_duration_seconds` | histogram | seconds | poll durations |
//!
//! Counters are set to the recording's totals (`absolute`), so a missed or
//! late publication loses nothing. Busy time is a counter of whole
//! nanoseconds because facade counters are integers. The histogram is fed
//! from pulse's own buckets (see
//! [`Config::poll_histogram`](crate::Config::poll_histogram)): each new
//! poll in bucket `[low, high)` is recorded as `high` seconds (`low` for
//! the last, open bucket), so an exporter whose bucket bounds are pulse's
//! bucket bounds counts exactly, and quantiles and sums are exact to a
//! bucket.
//!
//! # Examples
//!
//! ```
//! use pulse::metrics_facade::MetricsPublisher;
//! use pulse::{Config, Recorder, WriterConfig};
//!
//! let config = Config::new().writer(WriterConfig::Null);
//! let (runtime, guard) = Recorder::from_config(tokio::runtime::Builder::new_multi_thread(), &config)?;
//! // With no recorder installed the facade discards the values.
//! let mut publisher = MetricsPublisher::new(guard.handle());
//! runtime.block_on(async { tokio::spawn(async {}).await })?;
//! let published = publisher.publish();
//! assert_eq!(published.workers.len(), runtime.metrics().num_workers());
//! # drop(runtime);
//! # drop(guard);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::guard::RecordingHandle;
use super::metrics::MetricsSnapshot;
use ::metrics::{describe_counter, describe_gauge, describe_histogram, Label, Unit};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Task polls completed.
pub const POLLS: &str = "tokio_pulse_polls_total";
/// Time inside polls, in nanoseconds.
pub const BUSY: &str = "tokio_pulse_busy_nanoseconds_total";
/// Times the worker parked.
pub const PARKS: &str = "tokio_pulse_parks_total";
/// Unparks after which the worker parked again without polling.
pub const NOOP_UNPARKS: &str = "tokio_pulse_noop_unparks_total";
/// Largest local-queue depth seen.
pub const LOCAL_QUEUE_MAX: &str = "tokio_pulse_local_queue_max";
/// Poll durations, in seconds.
pub const POLL_DURATION: &str = "tokio_pulse_poll_duration_seconds";
/// The label naming the worker.
pub const WORKER_LABEL: &str = "worker";

/// Publishes a recording's live metrics through the `metrics` facade.
///
/// It keeps the histogram counts it last published, to add only new polls
/// to the facade's histogram.
#[derive(Debug)]
pub struct MetricsPublisher {
    handle: RecordingHandle,
    published_buckets: Vec<Vec<u64>>,
}

impl MetricsPublisher {
    /// A publisher of `handle`'s metrics; describes them (names, units,
    /// help) to the installed recorder.
    pub fn new(handle: RecordingHandle) -> Self {
        describe_counter!(POLLS, Unit::Count, "Task polls completed by the worker.");
        describe_counter!(
            BUSY,
            Unit::Nanoseconds,
            "Time the worker spent inside task polls, in nanoseconds."
        );
        describe_counter!(PARKS, Unit::Count, "Times the worker parked.");
        describe_counter!(
            NOOP_UNPARKS,
            Unit::Count,
            "Unparks after which the worker parked again without polling a task."
        );
        describe_gauge!(
            LOCAL_QUEUE_MAX,
            Unit::Count,
            "Largest local run-queue depth seen at a poll or park."
        );
        describe_histogram!(
            POLL_DURATION,
            Unit::Seconds,
            "Task poll durations, from pulse's buckets (each poll recorded at its bucket's upper bound)."
        );
        MetricsPublisher {
            handle,
            published_buckets: Vec::new(),
        }
    }

    /// Reads the metrics, publishes them, and returns what it published.
    ///
    /// ```
    /// use pulse::metrics_facade::MetricsPublisher;
    /// use pulse::{Config, Recorder, WriterConfig};
    ///
    /// let config = Config::new().writer(WriterConfig::Null);
    /// let (runtime, guard) = Recorder::from_config(tokio::runtime::Builder::new_current_thread(), &config)?;
    /// let mut publisher = MetricsPublisher::new(guard.handle());
    /// let first = publisher.publish();
    /// let again = publisher.publish(); // only polls since `first` reach the histogram
    /// assert!(again.total_polls() >= first.total_polls());
    /// # drop(runtime);
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(&mut self) -> MetricsSnapshot {
        let snapshot = self.handle.metrics();
        let layout = &snapshot.layout;
        for (index, worker) in snapshot.workers.iter().enumerate() {
            let labels = [Label::new(WORKER_LABEL, index.to_string())];
            ::metrics::counter!(POLLS, labels.iter()).absolute(worker.polls);
            let busy = u64::try_from(worker.busy.as_nanos()).unwrap_or(u64::MAX);
            ::metrics::counter!(BUSY, labels.iter()).absolute(busy);
            ::metrics::counter!(PARKS, labels.iter()).absolute(worker.parks);
            ::metrics::counter!(NOOP_UNPARKS, labels.iter()).absolute(worker.noop_unparks);
            ::metrics::gauge!(LOCAL_QUEUE_MAX, labels.iter()).set(worker.local_queue_max as f64);
            if self.published_buckets.len() <= index {
                self.published_buckets.resize(index + 1, Vec::new());
            }
            let published = &mut self.published_buckets[index];
            published.resize(worker.poll_histogram.len(), 0);
            let histogram = ::metrics::histogram!(POLL_DURATION, labels.iter());
            for (bucket, (&count, seen)) in worker
                .poll_histogram
                .iter()
                .zip(published.iter_mut())
                .enumerate()
            {
                let new = count.saturating_sub(*seen);
                *seen = count;
                if new == 0 {
                    continue;
                }
                let (low, high) = layout.bucket_range(bucket);
                let nanos = high.unwrap_or(low);
                histogram.record_many(
                    nanos as f64 / 1e9,
                    usize::try_from(new).unwrap_or(usize::MAX),
                );
            }
        }
        snapshot
    }

    /// Publishes every `period` on a thread of its own (named
    /// `pulse-metrics`) until the returned handle is dropped or stopped.
    ///
    /// ```
    /// use pulse::metrics_facade::MetricsPublisher;
    /// use pulse::{Config, Recorder, WriterConfig};
    /// use std::time::Duration;
    ///
    /// let config = Config::new().writer(WriterConfig::Null);
    /// let (runtime, guard) = Recorder::from_config(tokio::runtime::Builder::new_multi_thread(), &config)?;
    /// let publishing = MetricsPublisher::new(guard.handle()).spawn(Duration::from_secs(1))?;
    /// runtime.block_on(async { tokio::spawn(async {}).await })?;
    /// publishing.stop(); // publishes once more, then ends the thread
    /// # drop(runtime);
    /// # drop(guard);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The thread could not be started.
    pub fn spawn(mut self, period: Duration) -> std::io::Result<PublisherThread> {
        let stop = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("pulse-metrics".to_owned())
            .spawn(move || {
                let (lock, wake) = &*signal;
                let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    self.publish();
                    if *stopped {
                        break;
                    }
                    stopped = wake
                        .wait_timeout(stopped, period)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            })?;
        Ok(PublisherThread {
            stop,
            thread: Some(thread),
        })
    }
}

/// The thread of [`MetricsPublisher::spawn`]; dropping it stops the thread
/// after one last publication.
#[derive(Debug)]
pub struct PublisherThread {
    stop: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl PublisherThread {
    /// Publishes once more and ends the thread.
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
        let _ = thread.join();
    }
}

impl Drop for PublisherThread {
    fn drop(&mut self) {
        self.end();
    }
}
