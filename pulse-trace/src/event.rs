//! The one event model: what the recorder captures and what a trace file
//! holds.
//!
//! Timestamps are nanoseconds since the trace started (see
//! [`TraceMetadata::start_unix_nanos`](crate::TraceMetadata) for the
//! wall-clock anchor). Every field is exact: nothing is truncated or
//! saturated in memory; only the legacy v5 file format narrows values, and
//! [`FORMAT.md`](https://github.com/pulse-rs/pulse/blob/main/FORMAT.md) says
//! how.

use crate::span::{SpanId, TextId};
use crate::stack::{StackId, StackKind};
use std::fmt;
use std::panic::Location;

/// The kind of an event.
///
/// The first five kinds are the seed design's and are the only ones the
/// legacy v5 format can carry; the rest exist only in the v6 format.
///
/// # Examples
///
/// ```
/// use pulse_trace::EventType;
///
/// assert_eq!(EventType::PollStart.name(), "PollStart");
/// assert_eq!(EventType::from_u8(3), Some(EventType::WorkerUnpark));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[non_exhaustive]
pub enum EventType {
    /// A worker is about to poll a task (`on_before_task_poll`).
    PollStart = 0,
    /// A worker finished polling a task (`on_after_task_poll`).
    PollEnd = 1,
    /// A worker is about to park (`on_thread_park`).
    WorkerPark = 2,
    /// A worker unparked (`on_thread_unpark`).
    WorkerUnpark = 3,
    /// The sampler thread read the runtime's global (injection) queue depth.
    QueueSample = 4,
    /// The sampler thread read a worker thread's CPU time and run-queue wait
    /// from outside the worker, so that long polls contain CPU readings.
    WorkerSample = 5,
    /// Events were lost because the writer could not keep up, or failed.
    EventsDropped = 6,
    /// Which OS thread runs a worker, or is the one whose readings the
    /// sampler reports for it (v6 only; see [`WorkerThreadKind`]).
    WorkerThread = 7,
    /// The sampler captured a worker thread's user stack during a long poll
    /// (v6 only; see [`crate::stack`]).
    StackSample = 8,
    /// How long the task of the PollStart just before it (same worker,
    /// same timestamp) waited between being scheduled and being polled:
    /// Tokio's `TaskMeta::schedule_latency` (v6 only; recorded with the
    /// `schedule_latency` setting).
    ScheduleLatency = 9,
    /// A thread entered a `tracing` span (v6 only; see [`crate::span`]).
    SpanEnter = 10,
    /// A thread exited a `tracing` span (v6 only).
    SpanExit = 11,
    /// A `tracing` span closed: it will not be entered again (v6 only).
    SpanClose = 12,
    /// The application marked a moment (`pulse::mark!`, v6 only).
    Mark = 13,
}

impl EventType {
    /// Every event type, in code order.
    pub const ALL: [EventType; 14] = [
        EventType::PollStart,
        EventType::PollEnd,
        EventType::WorkerPark,
        EventType::WorkerUnpark,
        EventType::QueueSample,
        EventType::WorkerSample,
        EventType::EventsDropped,
        EventType::WorkerThread,
        EventType::StackSample,
        EventType::ScheduleLatency,
        EventType::SpanEnter,
        EventType::SpanExit,
        EventType::SpanClose,
        EventType::Mark,
    ];

    /// The event type for a `repr(u8)` value, if there is one.
    pub fn from_u8(value: u8) -> Option<EventType> {
        EventType::ALL.get(usize::from(value)).copied()
    }

    /// The type's name as written in reports and JSON (`"PollStart"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            EventType::PollStart => "PollStart",
            EventType::PollEnd => "PollEnd",
            EventType::WorkerPark => "WorkerPark",
            EventType::WorkerUnpark => "WorkerUnpark",
            EventType::QueueSample => "QueueSample",
            EventType::WorkerSample => "WorkerSample",
            EventType::EventsDropped => "EventsDropped",
            EventType::WorkerThread => "WorkerThread",
            EventType::StackSample => "StackSample",
            EventType::ScheduleLatency => "ScheduleLatency",
            EventType::SpanEnter => "SpanEnter",
            EventType::SpanExit => "SpanExit",
            EventType::SpanClose => "SpanClose",
            EventType::Mark => "Mark",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment (`{:<14}` in tables).
        f.pad(self.name())
    }
}

/// What a [`Event::WorkerThread`] record says about its thread and worker.
///
/// Tokio can move a worker to another OS thread: `block_in_place` hands the
/// worker to a new thread while the calling thread finishes its poll.
/// Readings (CPU time, run-queue wait) belong to a thread, so the analysis
/// must know which thread each one came from.
///
/// # Examples
///
/// ```
/// use pulse_trace::WorkerThreadKind;
///
/// assert_eq!(WorkerThreadKind::from_u8(1), Some(WorkerThreadKind::Sampled));
/// assert_eq!(WorkerThreadKind::Sampled as u8, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[non_exhaustive]
pub enum WorkerThreadKind {
    /// The thread starts running the worker: written by the thread itself,
    /// just before its first event for that worker, so the worker's events
    /// after it in that thread's stream are this thread's.
    Runs = 0,
    /// The sampler's [`Event::WorkerSample`] readings of the worker come
    /// from this thread from now on (written by the sampler, in its own
    /// stream, before the first such reading). Readings of two threads are
    /// never subtracted from each other.
    Sampled = 1,
    /// The thread ended a poll it began as this worker after another thread
    /// took the worker over (`tokio::task::block_in_place`). Written just
    /// before that poll's `PollEnd`, with the same timestamp.
    PollDetached = 2,
}

impl WorkerThreadKind {
    /// The kind for a `repr(u8)` value, if there is one.
    pub fn from_u8(value: u8) -> Option<WorkerThreadKind> {
        match value {
            0 => Some(WorkerThreadKind::Runs),
            1 => Some(WorkerThreadKind::Sampled),
            2 => Some(WorkerThreadKind::PollDetached),
            _ => None,
        }
    }

    /// The kind's name as written in JSON (`"runs"`, `"sampled"`,
    /// `"poll_detached"`).
    pub fn name(self) -> &'static str {
        match self {
            WorkerThreadKind::Runs => "runs",
            WorkerThreadKind::Sampled => "sampled",
            WorkerThreadKind::PollDetached => "poll_detached",
        }
    }
}

/// Where a task was spawned: the `&'static Location` Tokio hands to the poll
/// hook. Comparing and hashing use the pointer, so interning costs nothing on
/// the hot path.
///
/// # Examples
///
/// ```
/// use pulse_trace::SpawnLocation;
///
/// let here = SpawnLocation(std::panic::Location::caller());
/// assert_eq!(here, here);
/// assert!(here.to_string().contains(".rs:"));
/// ```
#[derive(Clone, Copy)]
pub struct SpawnLocation(pub &'static Location<'static>);

impl SpawnLocation {
    /// The location's address, which identifies it for interning.
    pub fn addr(self) -> usize {
        self.0 as *const Location<'static> as usize
    }
}

impl PartialEq for SpawnLocation {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for SpawnLocation {}

impl std::hash::Hash for SpawnLocation {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.addr().hash(state)
    }
}

impl fmt::Debug for SpawnLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SpawnLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The id a v6 file gives a spawn location; resolve it with
/// [`TraceReader::location`](crate::TraceReader::location).
///
/// Ids are assigned by one [`Encoder`](crate::Encoder) over its whole life,
/// starting at 1, so an id means the same location in every file of a
/// rotated set.
///
/// # Examples
///
/// ```
/// use pulse_trace::LocationId;
///
/// assert_eq!(LocationId(3).to_string(), "#3");
/// ```
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
/// use pulse_trace::SpawnSite;
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

/// One event: the one model for recording and reading.
///
/// `L` is how the event holds a task's spawn location. The recorder holds
/// Tokio's `&'static Location` ([`RecordedEvent`], what a trace writer
/// receives); a file holds an interned [`LocationId`] ([`TraceEvent`], what a
/// [`TraceReader`](crate::TraceReader) yields). Everything else is the same.
///
/// Timestamps are nanoseconds since the trace started. `cpu_nanos` is the
/// thread's CPU time and `run_delay_nanos` the time it spent runnable but
/// waiting for a CPU (`/proc/<tid>/schedstat`, Linux only); both are
/// cumulative since the thread started, so the differences between two
/// readings of one thread are what analysis uses.
///
/// Park and unpark carry a *reading* (`cpu_nanos` and `run_delay_nanos`,
/// taken together, the timestamp taken after them) only when the stretch
/// since the thread's previous reading is at least
/// [`READING_INTERVAL_NANOS`]; otherwise `cpu_nanos` is `None` and the
/// stretch is covered by the next reading (or a `WorkerSample`).
///
/// Read back from a file, some values may be missing or coarser:
///
/// - timestamps are multiples of the file's time unit (1 µs for v5,
///   [`TraceMetadata::time_unit_nanos`](crate::TraceMetadata::time_unit_nanos)
///   for v6), rounded down;
/// - `task_id` and the spawn location are `None` in v5 files (and the
///   location is `None` when the writer did not know it);
/// - `run_delay_nanos` is `None` where run-queue wait was not recorded;
/// - v5 values are saturated as `FORMAT.md` describes.
///
/// # Examples
///
/// ```
/// use pulse_trace::{EventType, TraceEvent};
///
/// let event = TraceEvent::PollEnd { timestamp_nanos: 1_500, worker: 2, local_queue: 0 };
/// assert_eq!(event.event_type(), EventType::PollEnd);
/// assert_eq!(event.worker(), Some(2));
/// assert_eq!(event.timestamp_nanos(), 1_500);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<L> {
    /// See [`EventType::PollStart`].
    PollStart {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker's index (`tokio::runtime::worker_index()`).
        worker: u32,
        /// Tasks in this worker's local run queue. pulse's recorder reads
        /// it again only when its thread's previous reading at a
        /// PollStart is 1 µs old or more; a PollStart within 1 µs of that
        /// reading repeats it.
        local_queue: u32,
        /// Tokio's task id (`None` when unknown, as in v5 files).
        task_id: Option<u64>,
        /// Where the task was spawned.
        spawned_at: L,
    },
    /// See [`EventType::PollEnd`].
    PollEnd {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker's index.
        worker: u32,
        /// Tasks in this worker's local run queue. pulse's recorder reads
        /// it again only after a poll of 1 µs or more; a shorter poll's
        /// PollEnd repeats its PollStart's depth.
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
        /// The thread's cumulative CPU time; `None` when the hook took no
        /// reading (see [`Event`] and [`READING_INTERVAL_NANOS`]).
        cpu_nanos: Option<u64>,
        /// The thread's cumulative run-queue wait (`None` where not recorded,
        /// and always `None` when `cpu_nanos` is).
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
        /// The thread's cumulative CPU time; `None` when the hook took no
        /// reading (see [`Event`] and [`READING_INTERVAL_NANOS`]).
        cpu_nanos: Option<u64>,
        /// The thread's cumulative run-queue wait (`None` where not recorded,
        /// and always `None` when `cpu_nanos` is).
        run_delay_nanos: Option<u64>,
    },
    /// See [`EventType::QueueSample`].
    QueueSample {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// Tasks in the runtime's global queue.
        global_queue: u64,
    },
    /// See [`EventType::WorkerSample`].
    WorkerSample {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker's index.
        worker: u32,
        /// The worker thread's cumulative CPU time.
        cpu_nanos: u64,
        /// The worker thread's cumulative run-queue wait (`None` where not recorded).
        run_delay_nanos: Option<u64>,
    },
    /// See [`EventType::EventsDropped`].
    EventsDropped {
        /// Nanoseconds since the trace started, when the loss was noticed.
        timestamp_nanos: u64,
        /// How many events were lost.
        count: u64,
    },
    /// See [`EventType::WorkerThread`] and [`WorkerThreadKind`].
    WorkerThread {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker's index.
        worker: u32,
        /// The OS thread id (Linux `gettid`).
        tid: u32,
        /// What the record says about the thread.
        kind: WorkerThreadKind,
    },
    /// See [`EventType::StackSample`].
    StackSample {
        /// Nanoseconds since the trace started, when the stack was captured.
        timestamp_nanos: u64,
        /// The worker whose thread the stack is of.
        worker: u32,
        /// Asleep (where it blocks) or on a CPU (where it computes).
        kind: StackKind,
        /// The interned stack (see [`crate::stack`]).
        stack: StackId,
    },
    /// See [`EventType::ScheduleLatency`]. It follows its PollStart
    /// directly in that worker's stream and has its timestamp, so the poll
    /// it belongs to is the worker's latest PollStart.
    ScheduleLatency {
        /// Nanoseconds since the trace started: its PollStart's time.
        timestamp_nanos: u64,
        /// The worker's index.
        worker: u32,
        /// Nanoseconds from the task's latest transition to "scheduled"
        /// (woken, spawned, or yielded) until its poll started, as Tokio
        /// measured them (`TaskMeta::schedule_latency`).
        latency_nanos: u64,
    },
    /// See [`EventType::SpanEnter`]: from now until the matching
    /// [`Event::SpanExit`], what this thread runs is inside the span.
    SpanEnter {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker whose thread entered the span.
        worker: u32,
        /// The span (see [`SpanId`]).
        span: SpanId,
        /// The span's name (interned, see [`crate::span`]).
        name: TextId,
        /// The span's recorded fields as `key=value` text, space-separated
        /// ([`TextId::EMPTY`] if none).
        fields: TextId,
    },
    /// See [`EventType::SpanExit`].
    SpanExit {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker whose thread exited the span (not necessarily the one
        /// that entered it: a span guard held across an `.await` exits on
        /// whichever worker polls the task next).
        worker: u32,
        /// The span.
        span: SpanId,
    },
    /// See [`EventType::SpanClose`].
    SpanClose {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker whose thread closed the span.
        worker: u32,
        /// The span; `tracing` may reuse its id from now on.
        span: SpanId,
    },
    /// See [`EventType::Mark`].
    Mark {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker whose thread recorded the mark.
        worker: u32,
        /// The mark's name (interned).
        name: TextId,
        /// The value given to `pulse::mark!("name", value)`, if any.
        value: Option<u64>,
    },
}

impl<L> Event<L> {
    /// This event's kind.
    #[inline]
    pub fn event_type(&self) -> EventType {
        match self {
            Event::PollStart { .. } => EventType::PollStart,
            Event::PollEnd { .. } => EventType::PollEnd,
            Event::WorkerPark { .. } => EventType::WorkerPark,
            Event::WorkerUnpark { .. } => EventType::WorkerUnpark,
            Event::QueueSample { .. } => EventType::QueueSample,
            Event::WorkerSample { .. } => EventType::WorkerSample,
            Event::EventsDropped { .. } => EventType::EventsDropped,
            Event::WorkerThread { .. } => EventType::WorkerThread,
            Event::StackSample { .. } => EventType::StackSample,
            Event::ScheduleLatency { .. } => EventType::ScheduleLatency,
            Event::SpanEnter { .. } => EventType::SpanEnter,
            Event::SpanExit { .. } => EventType::SpanExit,
            Event::SpanClose { .. } => EventType::SpanClose,
            Event::Mark { .. } => EventType::Mark,
        }
    }

    /// Nanoseconds since the trace started.
    #[inline]
    pub fn timestamp_nanos(&self) -> u64 {
        match *self {
            Event::PollStart {
                timestamp_nanos, ..
            }
            | Event::PollEnd {
                timestamp_nanos, ..
            }
            | Event::WorkerPark {
                timestamp_nanos, ..
            }
            | Event::WorkerUnpark {
                timestamp_nanos, ..
            }
            | Event::QueueSample {
                timestamp_nanos, ..
            }
            | Event::WorkerSample {
                timestamp_nanos, ..
            }
            | Event::EventsDropped {
                timestamp_nanos, ..
            }
            | Event::WorkerThread {
                timestamp_nanos, ..
            }
            | Event::StackSample {
                timestamp_nanos, ..
            }
            | Event::ScheduleLatency {
                timestamp_nanos, ..
            }
            | Event::SpanEnter {
                timestamp_nanos, ..
            }
            | Event::SpanExit {
                timestamp_nanos, ..
            }
            | Event::SpanClose {
                timestamp_nanos, ..
            }
            | Event::Mark {
                timestamp_nanos, ..
            } => timestamp_nanos,
        }
    }

    /// The worker the event belongs to; `None` for runtime-wide events.
    #[inline]
    pub fn worker(&self) -> Option<u32> {
        match *self {
            Event::PollStart { worker, .. }
            | Event::PollEnd { worker, .. }
            | Event::WorkerPark { worker, .. }
            | Event::WorkerUnpark { worker, .. }
            | Event::WorkerSample { worker, .. }
            | Event::WorkerThread { worker, .. }
            | Event::StackSample { worker, .. }
            | Event::ScheduleLatency { worker, .. }
            | Event::SpanEnter { worker, .. }
            | Event::SpanExit { worker, .. }
            | Event::SpanClose { worker, .. }
            | Event::Mark { worker, .. } => Some(worker),
            Event::QueueSample { .. } | Event::EventsDropped { .. } => None,
        }
    }
}

/// A park or unpark hook takes a CPU/run-queue reading only when at least
/// this many nanoseconds passed since the thread's previous reading (1 ms):
/// a worker makes at most ~1,000 readings a second however often it parks,
/// and the verdicts, which work on stretches of 10 ms and more, lose
/// nothing (BENCHMARKS.md, "Park/unpark readings").
pub const READING_INTERVAL_NANOS: u64 = 1_000_000;

/// An event as the recorder captured it: what a trace writer receives.
///
/// ```
/// use pulse_trace::{EventType, RecordedEvent, SpawnLocation};
///
/// let event = RecordedEvent::PollStart {
///     timestamp_nanos: 42,
///     worker: 0,
///     local_queue: 3,
///     task_id: Some(7),
///     spawned_at: SpawnLocation(std::panic::Location::caller()),
/// };
/// assert_eq!(event.event_type(), EventType::PollStart);
/// ```
pub type RecordedEvent = Event<SpawnLocation>;

/// An event read back from a trace file.
///
/// ```
/// use pulse_trace::{LocationId, TraceEvent};
///
/// let event = TraceEvent::PollStart {
///     timestamp_nanos: 64,
///     worker: 1,
///     local_queue: 0,
///     task_id: None,
///     spawned_at: Some(LocationId(1)),
/// };
/// assert_eq!(event.worker(), Some(1));
/// ```
pub type TraceEvent = Event<Option<LocationId>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_codes_round_trip() {
        for (code, ty) in EventType::ALL.iter().enumerate() {
            assert_eq!(*ty as u8 as usize, code);
            assert_eq!(EventType::from_u8(code as u8), Some(*ty));
        }
        assert_eq!(EventType::from_u8(14), None);
    }

    #[test]
    fn in_memory_event_stays_small() {
        // The buffers hold these by value; growing the enum grows every
        // buffer and the collector's memory bound (56: a park's two
        // optional readings).
        assert!(std::mem::size_of::<RecordedEvent>() <= 56);
    }

    #[test]
    fn spawn_locations_compare_by_pointer() {
        let a = SpawnLocation(Location::caller());
        let b = SpawnLocation(Location::caller());
        assert_ne!(a, b, "two call sites are two locations");
        assert_eq!(a, a);
        assert!(a.to_string().contains("event.rs"));
    }
}
