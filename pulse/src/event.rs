//! The events pulse records, as they exist in memory between a Tokio hook and
//! a [`TraceWriter`](crate::writer::TraceWriter).
//!
//! Timestamps are nanoseconds since the trace started (see
//! [`TraceMetadata::start_unix_nanos`](crate::format::TraceMetadata) for the
//! wall-clock anchor). Every field is exact: nothing is truncated or
//! saturated in memory; only the legacy v5 file format narrows values, and
//! [`FORMAT.md`](https://github.com/pulse-rs/pulse/blob/main/FORMAT.md) says
//! how.

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
/// use pulse::EventType;
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
}

impl EventType {
    /// Every event type, in code order.
    pub const ALL: [EventType; 7] = [
        EventType::PollStart,
        EventType::PollEnd,
        EventType::WorkerPark,
        EventType::WorkerUnpark,
        EventType::QueueSample,
        EventType::WorkerSample,
        EventType::EventsDropped,
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
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment (`{:<14}` in tables).
        f.pad(self.name())
    }
}

/// Where a task was spawned: the `&'static Location` Tokio hands to the poll
/// hook. Comparing and hashing use the pointer, so interning costs nothing on
/// the hot path.
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

/// One recorded event, exactly as the recorder captured it.
///
/// This is what the thread-local buffers hold and what a
/// [`TraceWriter`](crate::writer::TraceWriter) receives. Events read back from
/// a file are [`TraceEvent`](crate::format::TraceEvent)s, which carry interned
/// spawn-location ids instead of `&'static Location`s.
///
/// `cpu_nanos` is the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) and
/// `run_delay_nanos` the time it spent runnable but waiting for a CPU
/// (`/proc/thread-self/schedstat`, Linux only, 0 elsewhere or when disabled);
/// both are cumulative since the thread started, so deltas between two
/// readings of one thread are what analysis uses.
///
/// # Examples
///
/// ```
/// use pulse::{EventType, TelemetryEvent};
///
/// let event = TelemetryEvent::PollEnd { timestamp_nanos: 1_500, worker: 2, local_queue: 0 };
/// assert_eq!(event.event_type(), EventType::PollEnd);
/// assert_eq!(event.worker(), Some(2));
/// assert_eq!(event.timestamp_nanos(), 1_500);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TelemetryEvent {
    /// See [`EventType::PollStart`].
    PollStart {
        /// Nanoseconds since the trace started.
        timestamp_nanos: u64,
        /// The worker's index (`tokio::runtime::worker_index()`).
        worker: u32,
        /// Tasks in this worker's local run queue.
        local_queue: u32,
        /// Tokio's task id.
        task_id: u64,
        /// Where the task was spawned.
        spawned_at: SpawnLocation,
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
        /// The thread's cumulative run-queue wait (0 when unavailable).
        run_delay_nanos: u64,
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
        /// The thread's cumulative run-queue wait (0 when unavailable).
        run_delay_nanos: u64,
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
        /// The worker thread's cumulative run-queue wait (0 when unavailable).
        run_delay_nanos: u64,
    },
    /// See [`EventType::EventsDropped`].
    EventsDropped {
        /// Nanoseconds since the trace started, when the loss was noticed.
        timestamp_nanos: u64,
        /// How many events were lost.
        count: u64,
    },
}

impl TelemetryEvent {
    /// This event's kind.
    #[inline]
    pub fn event_type(&self) -> EventType {
        match self {
            TelemetryEvent::PollStart { .. } => EventType::PollStart,
            TelemetryEvent::PollEnd { .. } => EventType::PollEnd,
            TelemetryEvent::WorkerPark { .. } => EventType::WorkerPark,
            TelemetryEvent::WorkerUnpark { .. } => EventType::WorkerUnpark,
            TelemetryEvent::QueueSample { .. } => EventType::QueueSample,
            TelemetryEvent::WorkerSample { .. } => EventType::WorkerSample,
            TelemetryEvent::EventsDropped { .. } => EventType::EventsDropped,
        }
    }

    /// Nanoseconds since the trace started.
    #[inline]
    pub fn timestamp_nanos(&self) -> u64 {
        match *self {
            TelemetryEvent::PollStart {
                timestamp_nanos, ..
            }
            | TelemetryEvent::PollEnd {
                timestamp_nanos, ..
            }
            | TelemetryEvent::WorkerPark {
                timestamp_nanos, ..
            }
            | TelemetryEvent::WorkerUnpark {
                timestamp_nanos, ..
            }
            | TelemetryEvent::QueueSample {
                timestamp_nanos, ..
            }
            | TelemetryEvent::WorkerSample {
                timestamp_nanos, ..
            }
            | TelemetryEvent::EventsDropped {
                timestamp_nanos, ..
            } => timestamp_nanos,
        }
    }

    /// The worker the event belongs to; `None` for runtime-wide events.
    #[inline]
    pub fn worker(&self) -> Option<u32> {
        match *self {
            TelemetryEvent::PollStart { worker, .. }
            | TelemetryEvent::PollEnd { worker, .. }
            | TelemetryEvent::WorkerPark { worker, .. }
            | TelemetryEvent::WorkerUnpark { worker, .. }
            | TelemetryEvent::WorkerSample { worker, .. } => Some(worker),
            TelemetryEvent::QueueSample { .. } | TelemetryEvent::EventsDropped { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_codes_round_trip() {
        for (code, ty) in EventType::ALL.iter().enumerate() {
            assert_eq!(*ty as u8 as usize, code);
            assert_eq!(EventType::from_u8(code as u8), Some(*ty));
        }
        assert_eq!(EventType::from_u8(7), None);
    }

    #[test]
    fn in_memory_event_stays_small() {
        // The buffers hold these by value; growing the enum grows every
        // buffer and the collector's memory bound.
        assert!(std::mem::size_of::<TelemetryEvent>() <= 40);
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
