//! JSON Lines: one JSON object per event.

use super::json;
use crate::analysis::{AnalysisError, TraceScan, TraceSet};
use pulse_trace::{LocationId, SpawnSite, TextId, TraceEvent};
use std::fmt::Write as _;
use std::io::{self, Write};

/// Writes events as JSON Lines, one object per line, in the trace's file
/// order (each worker's events in order; workers and the sampler
/// interleave, as in the file: sort by `t_ns` if you need one timeline).
///
/// Every object has `"type"` (the event type's name) and `"t_ns"`
/// (nanoseconds since the trace started), then the event's fields:
///
/// | type | fields |
/// |---|---|
/// | `PollStart` | `worker`, `local_queue`, `task_id` (or `null`), `spawned_at` (`"file:line:col"` or `null`) |
/// | `PollEnd` | `worker`, `local_queue` |
/// | `WorkerPark`, `WorkerUnpark` | `worker`, `local_queue`, `cpu_ns`, `run_delay_ns` (or `null`) |
/// | `QueueSample` | `global_queue` |
/// | `WorkerSample` | `worker`, `cpu_ns`, `run_delay_ns` (or `null`) |
/// | `EventsDropped` | `count` |
/// | `WorkerThread` | `worker`, `tid`, `kind` (`"runs"`, `"sampled"` or `"poll_detached"`) |
/// | `StackSample` | `worker`, `kind` (`"off-cpu"` or `"on-cpu"`), `stack` (the trace's stack id; `pulse analyze` shows the frames) |
/// | `ScheduleLatency` | `worker`, `latency_ns`: how long the task of the worker's PollStart just before it waited to be polled |
/// | `SpanEnter` | `worker`, `span` (the trace's span id), `name`, `fields` (`tracing` spans) |
/// | `SpanExit`, `SpanClose` | `worker`, `span` |
/// | `Mark` | `worker`, `name`, `value` (or `null`) (`pulse::mark!`) |
///
/// Names and fields are `null` where the text is unknown (written by
/// [`write`](Self::write), which has no text table; the trace exports use
/// [`write_with_text`](Self::write_with_text)).
///
/// # Examples
///
/// ```
/// use pulse_cli::export::JsonlWriter;
/// use pulse_trace::TraceEvent;
///
/// let mut out = Vec::new();
/// let mut writer = JsonlWriter::new(&mut out);
/// writer.write(&TraceEvent::QueueSample { timestamp_nanos: 10_000, global_queue: 3 }, |_| None)?;
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "{\"type\":\"QueueSample\",\"t_ns\":10000,\"global_queue\":3}\n"
/// );
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct JsonlWriter<W> {
    out: W,
    line: String,
}

impl<W: Write> JsonlWriter<W> {
    /// A writer to `out` (wrap files in a `BufWriter`).
    pub fn new(out: W) -> Self {
        JsonlWriter {
            out,
            line: String::with_capacity(160),
        }
    }

    /// Writes one event; `locate` names PollStart spawn locations.
    ///
    /// # Errors
    ///
    /// Writing to the output failed.
    pub fn write<'a>(
        &mut self,
        event: &TraceEvent,
        locate: impl Fn(LocationId) -> Option<&'a SpawnSite>,
    ) -> io::Result<()> {
        self.write_with_text(event, locate, |_| None)
    }

    /// Writes one event; `locate` names PollStart spawn locations, `text`
    /// span names and fields and mark names
    /// ([`TraceScan::text`](pulse_trace::TraceScan::text)).
    ///
    /// ```
    /// use pulse_cli::export::JsonlWriter;
    /// use pulse_trace::{TextId, TraceEvent};
    ///
    /// let mut out = Vec::new();
    /// let mut writer = JsonlWriter::new(&mut out);
    /// let mark = TraceEvent::Mark { timestamp_nanos: 5, worker: 1, name: TextId(1), value: Some(7) };
    /// writer.write_with_text(&mark, |_| None, |_| Some("cache miss"))?;
    /// assert_eq!(
    ///     String::from_utf8(out).unwrap(),
    ///     "{\"type\":\"Mark\",\"t_ns\":5,\"worker\":1,\"name\":\"cache miss\",\"value\":7}\n"
    /// );
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Writing to the output failed.
    pub fn write_with_text<'a, 't>(
        &mut self,
        event: &TraceEvent,
        locate: impl Fn(LocationId) -> Option<&'a SpawnSite>,
        text: impl Fn(TextId) -> Option<&'t str>,
    ) -> io::Result<()> {
        let line = &mut self.line;
        let put_text = |line: &mut String, id| match text(id) {
            Some(text) => json::string(line, text),
            None => line.push_str("null"),
        };
        line.clear();
        let _ = write!(
            line,
            "{{\"type\":\"{}\",\"t_ns\":{}",
            event.event_type().name(),
            event.timestamp_nanos()
        );
        match *event {
            TraceEvent::PollStart {
                worker,
                local_queue,
                task_id,
                spawned_at: location,
                ..
            } => {
                let _ = write!(
                    line,
                    ",\"worker\":{worker},\"local_queue\":{local_queue},\"task_id\":"
                );
                json::opt_u64(line, task_id);
                line.push_str(",\"spawned_at\":");
                match location.and_then(locate) {
                    Some(site) => json::string(line, &site.to_string()),
                    None => line.push_str("null"),
                }
            }
            TraceEvent::PollEnd {
                worker,
                local_queue,
                ..
            } => {
                let _ = write!(line, ",\"worker\":{worker},\"local_queue\":{local_queue}");
            }
            TraceEvent::WorkerPark {
                worker,
                local_queue,
                cpu_nanos,
                run_delay_nanos,
                ..
            }
            | TraceEvent::WorkerUnpark {
                worker,
                local_queue,
                cpu_nanos,
                run_delay_nanos,
                ..
            } => {
                let _ = write!(
                    line,
                    ",\"worker\":{worker},\"local_queue\":{local_queue},\"cpu_ns\":"
                );
                json::opt_u64(line, cpu_nanos);
                line.push_str(",\"run_delay_ns\":");
                json::opt_u64(line, run_delay_nanos);
            }
            TraceEvent::QueueSample { global_queue, .. } => {
                let _ = write!(line, ",\"global_queue\":{global_queue}");
            }
            TraceEvent::WorkerSample {
                worker,
                cpu_nanos,
                run_delay_nanos,
                ..
            } => {
                let _ = write!(
                    line,
                    ",\"worker\":{worker},\"cpu_ns\":{cpu_nanos},\"run_delay_ns\":"
                );
                json::opt_u64(line, run_delay_nanos);
            }
            TraceEvent::EventsDropped { count, .. } => {
                let _ = write!(line, ",\"count\":{count}");
            }
            TraceEvent::WorkerThread {
                worker, tid, kind, ..
            } => {
                let _ = write!(
                    line,
                    ",\"worker\":{worker},\"tid\":{tid},\"kind\":\"{}\"",
                    kind.name()
                );
            }
            TraceEvent::StackSample {
                worker,
                kind,
                stack,
                ..
            } => {
                let _ = write!(
                    line,
                    ",\"worker\":{worker},\"kind\":\"{}\",\"stack\":{}",
                    kind.name(),
                    stack.0
                );
            }
            TraceEvent::ScheduleLatency {
                worker,
                latency_nanos,
                ..
            } => {
                let _ = write!(line, ",\"worker\":{worker},\"latency_ns\":{latency_nanos}");
            }
            TraceEvent::SpanEnter {
                worker,
                span,
                name,
                fields,
                ..
            } => {
                let _ = write!(line, ",\"worker\":{worker},\"span\":{},\"name\":", span.0);
                put_text(line, name);
                line.push_str(",\"fields\":");
                put_text(line, fields);
            }
            TraceEvent::SpanExit { worker, span, .. }
            | TraceEvent::SpanClose { worker, span, .. } => {
                let _ = write!(line, ",\"worker\":{worker},\"span\":{}", span.0);
            }
            TraceEvent::Mark {
                worker,
                name,
                value,
                ..
            } => {
                let _ = write!(line, ",\"worker\":{worker},\"name\":");
                put_text(line, name);
                line.push_str(",\"value\":");
                json::opt_u64(line, value);
            }
            // A kind added to the format after this exporter: its type and
            // time are already written.
            _ => {}
        }
        line.push_str("}\n");
        self.out.write_all(line.as_bytes())
    }

    /// Flushes and returns the output.
    ///
    /// # Errors
    ///
    /// Flushing failed.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes every event of `set` to `out` as JSON Lines (see
/// [`JsonlWriter`]), calling `progress(bytes_read, total_bytes)` now and
/// then. Returns the number of events written.
///
/// # Errors
///
/// Reading the trace or writing `out` failed (`out_name` names it in the
/// error).
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::TraceSet;
/// use pulse_cli::export::trace_to_jsonl;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("trace.bin");
/// # let (rt, guard) = pulse::Recorder::build(
/// #     tokio::runtime::Builder::new_multi_thread(),
/// #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
/// # )?;
/// # rt.block_on(async { tokio::spawn(async {}).await })?;
/// # drop(rt); drop(guard);
///
/// let mut out = Vec::new();
/// let events = trace_to_jsonl(&TraceSet::open(&path)?, &mut out, "memory", |_, _| {})?;
/// assert_eq!(String::from_utf8(out)?.lines().count() as u64, events);
/// # Ok(())
/// # }
/// ```
pub fn trace_to_jsonl(
    set: &TraceSet,
    out: impl Write,
    out_name: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, AnalysisError> {
    let output = |source| AnalysisError::Output {
        path: out_name.into(),
        source,
    };
    let mut scan = TraceScan::open(set)?;
    let mut writer = JsonlWriter::new(out);
    let mut events = 0u64;
    while let Some(event) = scan.next_event()? {
        writer
            .write_with_text(&event, |id| scan.location(id), |id| scan.text(id))
            .map_err(output)?;
        events += 1;
        if events.is_multiple_of(64 * 1024) {
            progress(scan.bytes_read(), scan.total_bytes());
        }
    }
    writer.finish().map_err(output)?;
    progress(scan.total_bytes(), scan.total_bytes());
    Ok(events)
}
