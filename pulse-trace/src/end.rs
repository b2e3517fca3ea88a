//! [`TraceEnd`]: how a recording ended, from the end-of-trace record
//! (v6 tag `0x85`). A trace without one ended without a shutdown: the
//! process was killed, crashed, or is still running.

use std::fmt;

/// Why the recorder wrote the end-of-trace record.
///
/// # Examples
///
/// ```
/// use pulse_trace::EndReason;
///
/// assert_eq!(EndReason::Signal(15).to_string(), "signal 15 (SIGTERM)");
/// assert_eq!(EndReason::from_code(0, 0), EndReason::Shutdown);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum EndReason {
    /// The recording was ended by its owner (the guard was finished or
    /// dropped).
    Shutdown,
    /// A termination signal (its number) was about to end the process;
    /// everything recorded up to it was written first.
    Signal(u32),
    /// A panic with `panic = "abort"` was about to end the process.
    Panic,
    /// An in-memory flight recorder wrote out its window; the program went
    /// on recording.
    Dump,
    /// A reason code this version of pulse does not know.
    Other(u64),
}

impl EndReason {
    /// The reason's code and detail (the signal number) as stored.
    pub fn code(self) -> (u64, u64) {
        match self {
            EndReason::Shutdown => (0, 0),
            EndReason::Signal(signal) => (1, u64::from(signal)),
            EndReason::Panic => (2, 0),
            EndReason::Dump => (3, 0),
            EndReason::Other(code) => (code, 0),
        }
    }

    /// The reason stored as `code` and `detail`.
    pub fn from_code(code: u64, detail: u64) -> EndReason {
        match code {
            0 => EndReason::Shutdown,
            1 => EndReason::Signal(u32::try_from(detail).unwrap_or(u32::MAX)),
            2 => EndReason::Panic,
            3 => EndReason::Dump,
            other => EndReason::Other(other),
        }
    }
}

/// The usual name of a Linux signal number.
fn signal_name(signal: u32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        10 => "SIGUSR1",
        12 => "SIGUSR2",
        15 => "SIGTERM",
        _ => return None,
    })
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EndReason::Shutdown => f.write_str("shutdown"),
            EndReason::Signal(signal) => match signal_name(signal) {
                Some(name) => write!(f, "signal {signal} ({name})"),
                None => write!(f, "signal {signal}"),
            },
            EndReason::Panic => f.write_str("panic"),
            EndReason::Dump => f.write_str("flight-recorder dump"),
            EndReason::Other(code) => write!(f, "reason {code}"),
        }
    }
}

/// The end-of-trace record: the recording ended here, on purpose, and
/// everything recorded before it that could be written was.
///
/// # Examples
///
/// ```
/// use pulse_trace::{EndReason, Encoder, FormatVersion, TraceEnd, TraceMetadata, TraceReader};
///
/// let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
/// let mut bytes = Vec::new();
/// encoder.begin_file(0, &mut bytes);
/// encoder.encode_end(&TraceEnd::new(2_000_000, EndReason::Shutdown), &mut bytes);
///
/// let mut reader = TraceReader::from_reader(&bytes[..], "trace.bin")?;
/// assert!(reader.next_event()?.is_none());
/// assert_eq!(reader.end().map(|end| end.reason), Some(EndReason::Shutdown));
/// # Ok::<(), pulse_trace::TraceError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TraceEnd {
    /// When the recording ended, ns since the trace started.
    pub timestamp_nanos: u64,
    /// Why.
    pub reason: EndReason,
    /// Events lost over the whole recording (each loss also has its own
    /// EventsDropped record).
    pub dropped_events: u64,
    /// Threads that were still recording when the recording ended (its
    /// guard was dropped before the runtime): whatever they did afterwards
    /// is not in the trace. 0 after an orderly shutdown.
    pub threads_still_recording: u32,
}

impl TraceEnd {
    /// An end record at `timestamp_nanos` for `reason`, with nothing lost.
    pub fn new(timestamp_nanos: u64, reason: EndReason) -> TraceEnd {
        TraceEnd {
            timestamp_nanos,
            reason,
            dropped_events: 0,
            threads_still_recording: 0,
        }
    }
}
