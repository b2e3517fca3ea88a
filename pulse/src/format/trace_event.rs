//! Events as read back from a trace file.

use crate::event::EventType;
use std::fmt;

/// The id a v6 file gives a spawn location; resolve it with
/// [`TraceReader::location`](super::TraceReader::location).
///
/// Ids are assigned by one [`Encoder`](super::Encoder) over its whole life,
/// starting at 1, so an id means the same location in every file of a
/// rotated set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocationId(pub u32);

impl fmt::Display for LocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A source location where tasks were spawned, as stored in a trace.
///
/// # Examples
///
/// ```
/// use pulse::format::SpawnSite;
///
/// let site = SpawnSite { file: "src/main.rs".into(), line: 12, column: 5 };
/// assert_eq!(site.to_string(), "src/main.rs:12:5");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpawnSite {
    /// The source file, as `std::panic::Location::file` reported it.
    pub file: String,
    /// The line, starting at 1.
    pub line: u32,
    /// The column, starting at 1.
    pub column: u32,
}

impl fmt::Display for SpawnSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One event read from a trace file.
///
/// The same kinds and fields as [`TelemetryEvent`](crate::TelemetryEvent),
/// except where a file may not carry a value:
///
/// - timestamps are multiples of the file's time unit (1 µs for v5,
///   [`TraceMetadata::time_unit_nanos`](super::TraceMetadata::time_unit_nanos)
///   for v6), rounded down;
/// - `task_id` and `location` are `None` in v5 files (and `location` is
///   `None` when the writer did not know it);
/// - `run_delay_nanos` is `None` in v5 files and in v6 files whose metadata
///   says run-queue wait was not recorded;
/// - v5 values are saturated as `FORMAT.md` describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceEvent {
    /// See [`EventType::PollStart`].
    PollStart {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker's index.
        worker: u32,
        /// Tasks in this worker's local run queue.
        local_queue: u32,
        /// Tokio's task id (v6 only).
        task_id: Option<u64>,
        /// Where the task was spawned (v6 only).
        location: Option<LocationId>,
    },
    /// See [`EventType::PollEnd`].
    PollEnd {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker's index.
        worker: u32,
        /// Tasks in this worker's local run queue.
        local_queue: u32,
    },
    /// See [`EventType::WorkerPark`].
    WorkerPark {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker's index.
        worker: u32,
        /// Tasks in this worker's local run queue.
        local_queue: u32,
        /// The thread's cumulative CPU time.
        cpu_nanos: u64,
        /// The thread's cumulative run-queue wait, where recorded.
        run_delay_nanos: Option<u64>,
    },
    /// See [`EventType::WorkerUnpark`].
    WorkerUnpark {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker's index.
        worker: u32,
        /// Tasks in this worker's local run queue.
        local_queue: u32,
        /// The thread's cumulative CPU time.
        cpu_nanos: u64,
        /// The thread's cumulative run-queue wait, where recorded.
        run_delay_nanos: Option<u64>,
    },
    /// See [`EventType::QueueSample`].
    QueueSample {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// Tasks in the runtime's global queue.
        global_queue: u64,
    },
    /// See [`EventType::WorkerSample`] (v6 only).
    WorkerSample {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker's index.
        worker: u32,
        /// The worker thread's cumulative CPU time.
        cpu_nanos: u64,
        /// The worker thread's cumulative run-queue wait, where recorded.
        run_delay_nanos: Option<u64>,
    },
    /// See [`EventType::EventsDropped`] (v6 only).
    EventsDropped {
        /// Nanoseconds since the trace started, when the loss was noticed.
        timestamp_nanos: u64,
        /// How many events were lost.
        count: u64,
    },
}

impl TraceEvent {
    /// This event's kind.
    #[inline]
    pub fn event_type(&self) -> EventType {
        match self {
            TraceEvent::PollStart { .. } => EventType::PollStart,
            TraceEvent::PollEnd { .. } => EventType::PollEnd,
            TraceEvent::WorkerPark { .. } => EventType::WorkerPark,
            TraceEvent::WorkerUnpark { .. } => EventType::WorkerUnpark,
            TraceEvent::QueueSample { .. } => EventType::QueueSample,
            TraceEvent::WorkerSample { .. } => EventType::WorkerSample,
            TraceEvent::EventsDropped { .. } => EventType::EventsDropped,
        }
    }

    /// Nanoseconds since the trace started.
    #[inline]
    pub fn timestamp_nanos(&self) -> u64 {
        match *self {
            TraceEvent::PollStart {
                timestamp_nanos, ..
            }
            | TraceEvent::PollEnd {
                timestamp_nanos, ..
            }
            | TraceEvent::WorkerPark {
                timestamp_nanos, ..
            }
            | TraceEvent::WorkerUnpark {
                timestamp_nanos, ..
            }
            | TraceEvent::QueueSample {
                timestamp_nanos, ..
            }
            | TraceEvent::WorkerSample {
                timestamp_nanos, ..
            }
            | TraceEvent::EventsDropped {
                timestamp_nanos, ..
            } => timestamp_nanos,
        }
    }

    /// The worker the event belongs to; `None` for runtime-wide events.
    #[inline]
    pub fn worker(&self) -> Option<u32> {
        match *self {
            TraceEvent::PollStart { worker, .. }
            | TraceEvent::PollEnd { worker, .. }
            | TraceEvent::WorkerPark { worker, .. }
            | TraceEvent::WorkerUnpark { worker, .. }
            | TraceEvent::WorkerSample { worker, .. } => Some(worker),
            TraceEvent::QueueSample { .. } | TraceEvent::EventsDropped { .. } => None,
        }
    }
}
