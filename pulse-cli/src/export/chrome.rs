//! Chrome trace-event JSON, as Perfetto (ui.perfetto.dev) and
//! `chrome://tracing` open it.

use super::json;
use crate::analysis::accounting::{reading, split, Reading};
use crate::analysis::worker_timeline::{PollEnding, PollSpan, WorkerTimeline};
use crate::analysis::{AnalysisError, AnalysisOptions, Finding, QueuedOn, TraceSet};
use pulse_trace::{LocationId, SpawnSite, TextId, TraceEvent, WorkerThreadKind};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

/// The process id every event uses: one traced runtime per file.
const PID: u32 = 1;

/// A worker's track id: worker index + 1 (tid 0 means "no thread" to some
/// viewers).
fn tid(worker: u32) -> u64 {
    u64::from(worker) + 1
}

/// The track of a worker's old thread after a `block_in_place` hand-over:
/// its detached poll and late events, which overlap the worker's new
/// thread.
fn old_thread_tid(worker: u32) -> u64 {
    u64::from(worker) + 1 + (1 << 20)
}

/// The track of a worker's `tracing` spans (issue 19): next to its poll
/// track, so spans nest among themselves without crossing poll slices.
fn spans_tid(worker: u32) -> u64 {
    u64::from(worker) + 1 + (2 << 20)
}

/// A span entered and not yet exited.
#[derive(Debug)]
struct OpenSpan {
    worker: u32,
    start: u64,
    name: String,
}

/// Polls shorter than this, and the gaps between them, are merged into
/// one slice by default (see [`ChromeWriter::merge_below`]).
pub const DEFAULT_MERGE_BELOW: Duration = Duration::from_micros(100);

/// A poll ready to be written, its names resolved.
#[derive(Debug)]
struct PollSlice {
    start: u64,
    end: u64,
    name: String,
    task_id: Option<u64>,
    spawned_at: Option<String>,
    local_queue: u32,
    /// The local queue depth when it ended.
    end_depth: u32,
    /// How long its task waited to be polled, where recorded.
    latency: Option<u64>,
}

/// Short polls close together, not written yet: one slice when it ends.
#[derive(Debug)]
struct Merged {
    first: PollSlice,
    end: u64,
    end_depth: u32,
    polls: u64,
    busy: u64,
    /// The longest schedule latency among them, where recorded.
    max_latency: Option<u64>,
}

#[derive(Debug)]
struct Track {
    /// Polls and parks, paired as the analysis pairs them.
    timeline: WorkerTimeline,
    local_queue: Option<u32>,
    /// The local queue depth last seen (written with the slices).
    depth: u32,
    merged: Option<Merged>,
    /// The sampler's latest reading of the worker's thread.
    last_sample: Option<Reading>,
    old_thread_named: bool,
}

/// Writes a trace as Chrome trace-event JSON (the "JSON Object Format"),
/// streaming: memory does not grow with the trace.
///
/// What it draws, in one process (the runtime):
///
/// - one thread track per worker (`worker N`), with a slice per poll (named
///   after the task's spawn location; task id in its arguments) and a
///   `parked` slice per park, paired by the analysis's own per-worker
///   timeline (an event lost from the trace cuts the open slice at the
///   worker's previous timestamp). Slices are `B`/`E` pairs, written when
///   they end, that never overlap on a track. After a `block_in_place`
///   hand-over the old thread's poll goes to a track of its own
///   (`worker N, old thread`).
/// - except that polls shorter than [`merge_below`](Self::merge_below)
///   (100 µs by default) that follow each other with gaps (parks
///   included) shorter than that are one slice, `N polls`, spanning at
///   most 10 times the threshold (1 ms by default; category `polls`;
///   arguments: `polls`, `busy_us`, the first poll's task and spawn
///   location). A busy server's trace would otherwise grow about 40 times
///   in this format; merged, it stays within 10 times (see BENCHMARKS.md).
///   Polls and parks of 100 µs or more are always their own slices;
///   `merge_below(Duration::ZERO)` writes every poll. The local queue
///   depth is written where slices begin and end.
/// - counter tracks: `global queue` (tasks), `worker N local queue`
///   (tasks), and `worker N CPU` (shares of each sample interval spent on a
///   CPU and waiting for one, split as the analysis splits readings);
/// - the analysis's findings as instant events on their worker's track,
///   their evidence in the arguments (the CPU figures exactly as the
///   analysis's JSON has them, in ns: `cpu_ns`, `run_delay_ns`,
///   `off_cpu_ns`, `samples`; for a poll finding of a trace recorded with
///   stacks, `in_your_code`, `stack_kind`, `stack_samples`,
///   `stack_total_samples` and `stack`, its frames innermost first as
///   `function (file:line)`; with `tracing` spans, `spans`, the active
///   spans innermost first, and `marks` in the window), and dropped
///   events as global instant events;
/// - `tracing` spans (issue 19) as complete slices on a track per worker
///   (`worker N spans`), nested as they were entered, named
///   `name{fields}`; spans shorter than `merge_below` are left out, as
///   polls that short are merged; marks (`pulse::mark!`) as instant
///   events (category `mark`, argument `value`) on their worker's track.
///
/// Timestamps (`ts`) are microseconds with nanosecond decimals.
///
/// # Examples
///
/// ```
/// use pulse_cli::export::ChromeWriter;
/// use pulse_trace::TraceEvent;
///
/// let mut writer = ChromeWriter::new(Vec::new())?;
/// for (t, event) in [(1_000, 0), (5_500, 1)] {
///     let event = match event {
///         0 => TraceEvent::PollStart { timestamp_nanos: t, worker: 0, local_queue: 0, task_id: Some(1), spawned_at: None },
///         _ => TraceEvent::PollEnd { timestamp_nanos: t, worker: 0, local_queue: 0 },
///     };
///     writer.write(&event, |_| None)?;
/// }
/// let json = String::from_utf8(writer.finish(&[])?).unwrap();
/// assert!(json.contains(r#""ph":"B","ts":1.000"#));
/// assert!(json.contains(r#""ph":"E","ts":5.500"#));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ChromeWriter<W: Write> {
    out: W,
    line: String,
    tracks: BTreeMap<u32, Track>,
    global_queue: Option<u64>,
    last_ns: u64,
    merge_below: u64,
    /// Spans entered and not exited, by span id.
    open_spans: HashMap<u64, OpenSpan>,
    /// Workers whose span track is named.
    span_tracks: BTreeSet<u32>,
}

impl<W: Write> ChromeWriter<W> {
    /// Starts the JSON document on `out` (wrap files in a `BufWriter`).
    ///
    /// # Errors
    ///
    /// Writing failed.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(b"{\"traceEvents\":[\n")?;
        let mut writer = ChromeWriter {
            out,
            line: String::with_capacity(256),
            tracks: BTreeMap::new(),
            global_queue: None,
            last_ns: 0,
            merge_below: u64::try_from(DEFAULT_MERGE_BELOW.as_nanos()).unwrap_or(u64::MAX),
            open_spans: HashMap::new(),
            span_tracks: BTreeSet::new(),
        };
        writer.line.push_str(&format!(
            "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{PID},\"args\":{{\"name\":\"tokio runtime\"}}}}"
        ));
        writer.emit()?;
        Ok(writer)
    }

    /// Merges polls shorter than `threshold` that follow each other with
    /// gaps shorter than it into one slice (default:
    /// [`DEFAULT_MERGE_BELOW`]); `Duration::ZERO` writes every poll as
    /// its own slice.
    #[must_use]
    pub fn merge_below(mut self, threshold: Duration) -> Self {
        self.merge_below = u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// Writes `line` as the next array element.
    fn emit(&mut self) -> io::Result<()> {
        self.line.push_str(",\n");
        self.out.write_all(self.line.as_bytes())?;
        self.line.clear();
        Ok(())
    }

    fn track(&mut self, worker: u32) -> io::Result<&mut Track> {
        if !self.tracks.contains_key(&worker) {
            let tid = tid(worker);
            let _ = write!(
                self.line,
                "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{PID},\"tid\":{tid},\"args\":{{\"name\":\"worker {worker}\"}}}},\n\
                 {{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":{PID},\"tid\":{tid},\"args\":{{\"sort_index\":{worker}}}}}"
            );
            self.emit()?;
            self.tracks.insert(
                worker,
                Track {
                    timeline: WorkerTimeline::new(worker),
                    local_queue: None,
                    depth: 0,
                    merged: None,
                    last_sample: None,
                    old_thread_named: false,
                },
            );
        }
        Ok(self
            .tracks
            .get_mut(&worker)
            .expect("the track was just inserted"))
    }

    fn begin(&mut self, tid: u64, ns: u64, name: &str, cat: &str) {
        let _ = write!(
            self.line,
            "{{\"ph\":\"B\",\"ts\":{},\"pid\":{PID},\"tid\":{tid},\"cat\":\"{cat}\",\"name\":",
            Micros(ns),
        );
        json::string(&mut self.line, name);
    }

    fn end(&mut self, tid: u64, ns: u64) -> io::Result<()> {
        let _ = write!(
            self.line,
            "{{\"ph\":\"E\",\"ts\":{},\"pid\":{PID},\"tid\":{tid}}}",
            Micros(ns),
        );
        self.emit()
    }

    /// A poll slice the worker's timeline closed: on the old thread's
    /// track, its own slice; otherwise merged with its neighbours when
    /// short, or its own slice.
    fn poll_slice<'a>(
        &mut self,
        worker: u32,
        span: &PollSpan,
        locate: impl Fn(LocationId) -> Option<&'a SpawnSite>,
    ) -> io::Result<()> {
        let site = span.poll.location.and_then(locate);
        let depth = self.track(worker)?.depth;
        let slice = PollSlice {
            start: span.poll.start,
            end: span.end,
            name: site.map_or_else(|| "poll".to_owned(), short_site),
            task_id: span.poll.task_id,
            spawned_at: site.map(ToString::to_string),
            local_queue: span.poll.local_queue,
            end_depth: span.local_queue_end.unwrap_or(depth),
            latency: span.poll.latency,
        };
        if matches!(span.ending, PollEnding::Detached | PollEnding::Retired) {
            let tid = self.old_thread(worker)?;
            return self.write_poll(tid, &slice);
        }
        let length = slice.end.saturating_sub(slice.start);
        let merge_below = self.merge_below;
        if length >= merge_below {
            self.flush_merged(worker)?;
            self.write_poll(tid(worker), &slice)?;
            self.local_queue(worker, slice.start, slice.local_queue)?;
            return self.local_queue(worker, slice.end, slice.end_depth);
        }
        let track = self.track(worker)?;
        if let Some(merged) = &mut track.merged {
            // Close together, and the slice spans at most 10 times the
            // threshold, so activity keeps its shape over time.
            if slice.start.saturating_sub(merged.end) < merge_below
                && slice.end.saturating_sub(merged.first.start) <= merge_below.saturating_mul(10)
            {
                merged.polls += 1;
                merged.busy += length;
                merged.max_latency = merged.max_latency.max(slice.latency);
                merged.end = slice.end;
                merged.end_depth = slice.end_depth;
                return Ok(());
            }
        }
        self.flush_merged(worker)?;
        self.track(worker)?.merged = Some(Merged {
            end: slice.end,
            end_depth: slice.end_depth,
            polls: 1,
            busy: length,
            max_latency: slice.latency,
            first: slice,
        });
        Ok(())
    }

    /// Writes one poll's slice on track `tid`.
    fn write_poll(&mut self, tid: u64, poll: &PollSlice) -> io::Result<()> {
        self.begin(tid, poll.start, &poll.name, "poll");
        self.line.push_str(",\"args\":{\"task_id\":");
        json::opt_u64(&mut self.line, poll.task_id);
        self.line.push_str(",\"spawned_at\":");
        match &poll.spawned_at {
            Some(site) => json::string(&mut self.line, site),
            None => self.line.push_str("null"),
        }
        let _ = write!(self.line, ",\"local_queue\":{}", poll.local_queue);
        if let Some(latency) = poll.latency {
            let _ = write!(self.line, ",\"schedule_latency_us\":{}", Micros(latency));
        }
        self.line.push_str("}}");
        self.emit()?;
        self.end(tid, poll.end)
    }

    /// Writes the worker's merged polls, if any.
    fn flush_merged(&mut self, worker: u32) -> io::Result<()> {
        let Some(merged) = self.tracks.get_mut(&worker).and_then(|t| t.merged.take()) else {
            return Ok(());
        };
        if merged.polls == 1 {
            self.write_poll(tid(worker), &merged.first)?;
            self.local_queue(worker, merged.first.start, merged.first.local_queue)?;
        } else {
            let name = format!("{} polls", merged.polls);
            self.begin(tid(worker), merged.first.start, &name, "polls");
            let _ = write!(
                self.line,
                ",\"args\":{{\"polls\":{},\"busy_us\":{},\"first_task_id\":",
                merged.polls,
                Micros(merged.busy)
            );
            json::opt_u64(&mut self.line, merged.first.task_id);
            self.line.push_str(",\"first_spawned_at\":");
            match &merged.first.spawned_at {
                Some(site) => json::string(&mut self.line, site),
                None => self.line.push_str("null"),
            }
            if let Some(latency) = merged.max_latency {
                let _ = write!(
                    self.line,
                    ",\"max_schedule_latency_us\":{}",
                    Micros(latency)
                );
            }
            self.line.push_str("}}");
            self.emit()?;
            self.local_queue(worker, merged.first.start, merged.first.local_queue)?;
            self.end(tid(worker), merged.end)?;
        }
        self.local_queue(worker, merged.end, merged.end_depth)
    }

    /// A park the worker's timeline closed: a short one is a gap between
    /// merged polls, a long one its own slice.
    fn park_slice(&mut self, worker: u32, start: u64, end: u64) -> io::Result<()> {
        if end.saturating_sub(start) < self.merge_below {
            return Ok(());
        }
        self.flush_merged(worker)?;
        self.begin(tid(worker), start, "parked", "park");
        self.line.push('}');
        self.emit()?;
        self.end(tid(worker), end)?;
        let depth = self.track(worker)?.depth;
        self.local_queue(worker, end, depth)
    }

    /// The track of `worker`'s old thread, named on first use.
    fn old_thread(&mut self, worker: u32) -> io::Result<u64> {
        let tid = old_thread_tid(worker);
        let track = self.track(worker)?;
        if !track.old_thread_named {
            track.old_thread_named = true;
            let _ = write!(
                self.line,
                "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{PID},\"tid\":{tid},\"args\":{{\"name\":\"worker {worker}, old thread\"}}}}"
            );
            self.emit()?;
        }
        Ok(tid)
    }

    fn local_queue(&mut self, worker: u32, ns: u64, depth: u32) -> io::Result<()> {
        let track = self.track(worker)?;
        if track.local_queue == Some(depth) {
            return Ok(());
        }
        track.local_queue = Some(depth);
        let _ = write!(
            self.line,
            "{{\"ph\":\"C\",\"ts\":{},\"pid\":{PID},\"name\":\"worker {worker} local queue\",\"args\":{{\"tasks\":{depth}}}}}",
            Micros(ns)
        );
        self.emit()
    }

    /// Writes one event; `locate` names PollStart spawn locations.
    ///
    /// # Errors
    ///
    /// Writing failed.
    pub fn write<'a>(
        &mut self,
        event: &TraceEvent,
        locate: impl Fn(LocationId) -> Option<&'a SpawnSite>,
    ) -> io::Result<()> {
        self.write_with_text(event, locate, |_| None)
    }

    /// Writes one event; `locate` names PollStart spawn locations, `text`
    /// span names and fields and mark names
    /// ([`TraceScan::text`](pulse_trace::TraceScan::text); unknown text is
    /// written as `span` or `mark`).
    ///
    /// # Errors
    ///
    /// Writing failed.
    pub fn write_with_text<'a, 't>(
        &mut self,
        event: &TraceEvent,
        locate: impl Fn(LocationId) -> Option<&'a SpawnSite>,
        text: impl Fn(TextId) -> Option<&'t str>,
    ) -> io::Result<()> {
        let event_ns = event.timestamp_nanos();
        self.last_ns = self.last_ns.max(event_ns);
        match *event {
            TraceEvent::SpanEnter {
                worker,
                span,
                name,
                fields,
                ..
            } => {
                let name = match (text(name), text(fields)) {
                    (Some(name), Some("")) => name.to_owned(),
                    (Some(name), Some(fields)) => format!("{name}{{{fields}}}"),
                    (Some(name), None) => name.to_owned(),
                    (None, _) => "span".to_owned(),
                };
                self.open_spans.insert(
                    span.0,
                    OpenSpan {
                        worker,
                        start: event_ns,
                        name,
                    },
                );
                return Ok(());
            }
            TraceEvent::SpanExit { span, .. } => {
                if let Some(open) = self.open_spans.remove(&span.0) {
                    self.span_slice(open, event_ns)?;
                }
                return Ok(());
            }
            TraceEvent::SpanClose { .. } => return Ok(()),
            TraceEvent::Mark {
                worker,
                name,
                value,
                ..
            } => {
                self.track(worker)?;
                let _ = write!(
                    self.line,
                    "{{\"ph\":\"i\",\"s\":\"t\",\"ts\":{},\"pid\":{PID},\"tid\":{},\"cat\":\"mark\",\"name\":",
                    Micros(event_ns),
                    tid(worker)
                );
                json::string(&mut self.line, text(name).unwrap_or("mark"));
                self.line.push_str(",\"args\":{\"value\":");
                json::opt_u64(&mut self.line, value);
                self.line.push_str("}}");
                return self.emit();
            }
            _ => {}
        }
        if let TraceEvent::WorkerSample { worker, .. } = *event {
            // The sampler's records come in their own batches: they must
            // not move the worker's slice clock.
            return match reading(event) {
                Some(now) => self.cpu_counter(worker, now),
                None => Ok(()),
            };
        }
        if let TraceEvent::WorkerThread {
            worker,
            kind: WorkerThreadKind::Sampled,
            ..
        } = *event
        {
            // Another thread's counters from now on: nothing to subtract.
            self.track(worker)?.last_sample = None;
            return Ok(());
        }
        if let Some(worker) = event.worker() {
            let track = self.track(worker)?;
            let closed = track.timeline.on_event(event);
            if !closed.retired {
                if let TraceEvent::PollStart { local_queue, .. }
                | TraceEvent::PollEnd { local_queue, .. }
                | TraceEvent::WorkerPark { local_queue, .. }
                | TraceEvent::WorkerUnpark { local_queue, .. } = *event
                {
                    track.depth = local_queue;
                }
            }
            // In time order: what closed first is written first.
            let park = closed.park.filter(|p| !p.retired);
            let poll_first =
                matches!((&closed.poll, &park), (Some(poll), Some(park)) if poll.end <= park.start);
            if poll_first {
                if let Some(poll) = &closed.poll {
                    self.poll_slice(worker, poll, &locate)?;
                }
            }
            if let Some(park) = park {
                self.park_slice(worker, park.start, park.end)?;
            }
            if !poll_first {
                if let Some(poll) = &closed.poll {
                    self.poll_slice(worker, poll, &locate)?;
                }
            }
            return Ok(());
        }
        match *event {
            TraceEvent::QueueSample { global_queue, .. }
                if self.global_queue != Some(global_queue) =>
            {
                self.global_queue = Some(global_queue);
                let _ = write!(
                    self.line,
                    "{{\"ph\":\"C\",\"ts\":{},\"pid\":{PID},\"name\":\"global queue\",\"args\":{{\"tasks\":{global_queue}}}}}",
                    Micros(event_ns)
                );
                self.emit()?;
            }
            TraceEvent::EventsDropped { count, .. } => {
                let _ = write!(
                    self.line,
                    "{{\"ph\":\"i\",\"s\":\"g\",\"ts\":{},\"pid\":{PID},\"tid\":0,\"cat\":\"pulse\",\"name\":\"events dropped\",\"args\":{{\"count\":{count}}}}}",
                    Micros(event_ns)
                );
                self.emit()?;
            }
            _ => {}
        }
        Ok(())
    }

    /// A span as a complete slice on its worker's span track; spans shorter
    /// than `merge_below` are left out, as polls that short are merged.
    fn span_slice(&mut self, open: OpenSpan, end: u64) -> io::Result<()> {
        let duration = end.saturating_sub(open.start);
        if duration < self.merge_below {
            return Ok(());
        }
        let tid = spans_tid(open.worker);
        if self.span_tracks.insert(open.worker) {
            let _ = write!(
                self.line,
                "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{PID},\"tid\":{tid},\"args\":{{\"name\":\"worker {} spans\"}}}},\n\
                 {{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":{PID},\"tid\":{tid},\"args\":{{\"sort_index\":{}}}}}",
                open.worker,
                open.worker
            );
            self.emit()?;
        }
        let _ = write!(
            self.line,
            "{{\"ph\":\"X\",\"ts\":{},\"dur\":{},\"pid\":{PID},\"tid\":{tid},\"cat\":\"span\",\"name\":",
            Micros(open.start),
            Micros(duration)
        );
        json::string(&mut self.line, &open.name);
        self.line.push('}');
        self.emit()
    }

    /// The worker's CPU counter for the sample interval ending at `now`:
    /// the [`split`] of the two readings, as the analysis splits them.
    fn cpu_counter(&mut self, worker: u32, now: Reading) -> io::Result<()> {
        let track = self.track(worker)?;
        let last = match track.last_sample {
            Some(last) if last.t >= now.t => return Ok(()),
            last => {
                track.last_sample = Some(now);
                last
            }
        };
        let Some(last) = last else {
            return Ok(());
        };
        let s = split(&last, &now);
        let wall = s.wall as f64;
        let _ = write!(
            self.line,
            "{{\"ph\":\"C\",\"ts\":{},\"pid\":{PID},\"name\":\"worker {worker} CPU\",\"args\":{{\"on a CPU\":",
            Micros(last.t)
        );
        json::number(&mut self.line, s.cpu as f64 / wall);
        if let Some(waited) = s.runnable {
            self.line.push_str(",\"waiting for a CPU\":");
            json::number(&mut self.line, waited as f64 / wall);
        }
        self.line.push_str("}}");
        self.emit()
    }

    /// Closes open slices, adds `findings` as instant events, and ends the
    /// document. Returns the output, flushed.
    ///
    /// # Errors
    ///
    /// Writing failed.
    pub fn finish(mut self, findings: &[Finding]) -> io::Result<W> {
        // Spans never exited end with the trace.
        let mut spans: Vec<OpenSpan> = std::mem::take(&mut self.open_spans).into_values().collect();
        spans.sort_by_key(|s| (s.worker, s.start));
        let last = self.last_ns;
        for span in spans {
            self.span_slice(span, last)?;
        }
        // What is still open ends at the worker's last instant.
        let open: Vec<(u32, u64, u64, Option<Option<u64>>)> = self
            .tracks
            .iter()
            .filter_map(|(&worker, track)| {
                let tl = &track.timeline;
                let end = tl.last()?;
                match (tl.open_poll(), tl.open_park()) {
                    (Some(poll), _) => Some((worker, poll.start, end, Some(poll.task_id))),
                    (None, Some(park)) => Some((worker, park, end, None)),
                    (None, None) => None,
                }
            })
            .collect();
        let workers: Vec<u32> = self.tracks.keys().copied().collect();
        for worker in workers {
            self.flush_merged(worker)?;
        }
        for (worker, start, end, poll) in open {
            match poll {
                Some(task_id) => {
                    self.begin(tid(worker), start, "poll", "poll");
                    self.line.push_str(",\"args\":{\"task_id\":");
                    json::opt_u64(&mut self.line, task_id);
                    self.line.push_str("}}");
                }
                None => {
                    self.begin(tid(worker), start, "parked", "park");
                    self.line.push('}');
                }
            }
            self.emit()?;
            self.end(tid(worker), end)?;
        }
        for finding in findings {
            self.finding(finding)?;
        }
        // The last element carries no trailing comma.
        let _ = write!(
            self.line,
            "{{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":{PID},\"args\":{{\"sort_index\":0}}}}\n],\
             \"displayTimeUnit\":\"ms\",\"otherData\":{{\"producer\":\"pulse {}\"}}}}\n",
            env!("CARGO_PKG_VERSION")
        );
        self.out.write_all(self.line.as_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        self.track(f.worker)?;
        let line = &mut self.line;
        let _ = write!(
            line,
            "{{\"ph\":\"i\",\"s\":\"t\",\"ts\":{},\"pid\":{PID},\"tid\":{},\"cat\":\"finding\",\"name\":",
            Micros(f.start_ns),
            tid(f.worker)
        );
        json::string(line, f.verdict.label());
        let _ = write!(
            line,
            ",\"args\":{{\"verdict\":\"{}\",\"duration_ms\":",
            f.verdict.key()
        );
        json::number(line, f.duration_ns as f64 / 1e6);
        let _ = write!(line, ",\"end_us\":{}", Micros(f.end_ns));
        if let Some(cpu) = &f.cpu {
            let _ = write!(
                line,
                ",\"on_cpu_ms\":{},\"off_cpu_ms\":{}",
                cpu.cpu_ns as f64 / 1e6,
                cpu.off_cpu_ns as f64 / 1e6
            );
            if let Some(waited) = cpu.run_delay_ns {
                let _ = write!(line, ",\"waiting_for_cpu_ms\":{}", waited as f64 / 1e6);
            }
            // Exactly as the analysis's JSON has them.
            let _ = write!(line, ",\"cpu_ns\":{},\"run_delay_ns\":", cpu.cpu_ns);
            json::opt_u64(line, cpu.run_delay_ns);
            let _ = write!(
                line,
                ",\"off_cpu_ns\":{},\"samples\":{}",
                cpu.off_cpu_ns, cpu.samples
            );
        }
        if let Some(task) = f.task_id {
            let _ = write!(line, ",\"task_id\":{task}");
        }
        if let Some(at) = &f.spawned_at {
            line.push_str(",\"spawned_at\":");
            json::string(line, at);
        }
        if let Some(task) = f.next_task_id {
            let _ = write!(line, ",\"next_task_id\":{task}");
        }
        if let Some(delayed) = f.delayed {
            let _ = write!(
                line,
                ",\"delayed_tasks\":{},\"delayed_worst_ms\":{},\"delayed_total_ms\":{}",
                delayed.tasks,
                delayed.worst_ns as f64 / 1e6,
                delayed.total_ns as f64 / 1e6
            );
        }
        if let Some(confirmed) = f.confirmed_by_delays {
            let _ = write!(line, ",\"confirmed_by_delays\":{confirmed}");
        }
        if let Some(queued_on) = f.queued_on {
            let name = match queued_on {
                QueuedOn::Global => "global".to_owned(),
                QueuedOn::Worker(w) => format!("worker {w}"),
            };
            let _ = write!(line, ",\"queued_on\":\"{name}\"");
        }
        if let Some(depth) = f.queue_depth_max {
            let _ = write!(line, ",\"queue_depth_max\":{depth}");
        }
        if let Some(max) = f.global_queue_max {
            let _ = write!(line, ",\"global_queue_max\":{max}");
        }
        if !f.spans.is_empty() {
            // Innermost first, as `pulse analyze` names them.
            line.push_str(",\"spans\":[");
            for (i, span) in f.spans.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                json::string(line, &span.to_string());
            }
            line.push(']');
        }
        if !f.marks.is_empty() {
            line.push_str(",\"marks\":[");
            for (i, mark) in f.marks.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let value = mark.value.map(|v| format!("={v}")).unwrap_or_default();
                json::string(
                    line,
                    &format!("{}{value} at {} µs", mark.name, Micros(mark.at_ns)),
                );
            }
            line.push(']');
        }
        if let Some(stack) = &f.stack {
            // The finding's stack as `pulse analyze` names it: the user's
            // innermost frame, and every frame, innermost first.
            if let Some(frame) = stack.user_code() {
                line.push_str(",\"in_your_code\":");
                json::string(line, &frame.to_string());
            }
            let _ = write!(
                line,
                ",\"stack_kind\":\"{}\",\"stack_samples\":{},\"stack_total_samples\":{},\"stack\":[",
                stack.kind, stack.samples, stack.total_samples
            );
            for (i, frame) in stack.frames.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                json::string(line, &frame.to_string());
            }
            line.push(']');
        }
        line.push_str("}}");
        self.emit()
    }
}

/// `file:line:col` with only the file's last path component, as a slice
/// title.
fn short_site(site: &SpawnSite) -> String {
    let file = site.file.rsplit(['/', '\\']).next().unwrap_or(&site.file);
    format!("{file}:{}:{}", site.line, site.column)
}

/// Formats nanoseconds as microseconds with three decimals.
struct Micros(u64);

impl std::fmt::Display for Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// Writes `set` as Chrome trace-event JSON to `out`, with the findings of
/// an analysis made in the same pass, which it returns. `progress` is
/// called with `(bytes_read, total_bytes)` now and then.
///
/// # Errors
///
/// Reading the trace or writing `out` failed (`out_name` names it in the
/// error).
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::{AnalysisOptions, TraceSet};
/// use pulse_cli::export::trace_to_chrome;
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
/// let set = TraceSet::open(&path)?;
/// trace_to_chrome(&set, &mut out, "memory", &AnalysisOptions::default(), |_, _| {})?;
/// assert!(String::from_utf8(out)?.starts_with("{\"traceEvents\":["));
/// # Ok(())
/// # }
/// ```
pub fn trace_to_chrome(
    set: &TraceSet,
    out: impl Write,
    out_name: &str,
    options: &AnalysisOptions,
    progress: impl FnMut(u64, u64),
) -> Result<crate::analysis::Analysis, AnalysisError> {
    trace_to_chrome_with(set, out, out_name, options, DEFAULT_MERGE_BELOW, progress)
}

/// As [`trace_to_chrome`], merging polls shorter than `merge_below` as
/// [`ChromeWriter::merge_below`] does (`Duration::ZERO`: every poll its own
/// slice). What `pulse chrome --merge-below` does.
///
/// # Errors
///
/// As [`trace_to_chrome`].
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::{AnalysisOptions, TraceSet};
/// use pulse_cli::export::trace_to_chrome_with;
/// use std::time::Duration;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("trace.bin");
/// # let (rt, guard) = pulse::Recorder::build(
/// #     tokio::runtime::Builder::new_multi_thread(),
/// #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
/// # )?;
/// # rt.block_on(async { for _ in 0..10 { tokio::spawn(async {}).await.unwrap() } });
/// # drop(rt); drop(guard);
///
/// let set = TraceSet::open(&path)?;
/// let mut every_poll = Vec::new();
/// trace_to_chrome_with(&set, &mut every_poll, "memory", &AnalysisOptions::default(), Duration::ZERO, |_, _| {})?;
/// assert!(!String::from_utf8(every_poll)?.contains("\"cat\":\"polls\""));
/// # Ok(())
/// # }
/// ```
pub fn trace_to_chrome_with(
    set: &TraceSet,
    out: impl Write,
    out_name: &str,
    options: &AnalysisOptions,
    merge_below: Duration,
    mut progress: impl FnMut(u64, u64),
) -> Result<crate::analysis::Analysis, AnalysisError> {
    let output = |source| AnalysisError::Output {
        path: out_name.into(),
        source,
    };
    let mut writer = ChromeWriter::new(out)
        .map_err(output)?
        .merge_below(merge_below);
    let analysis = crate::analysis::run(
        set,
        options,
        |event, scan| {
            writer
                .write_with_text(event, |id| scan.location(id), |id| scan.text(id))
                .map_err(output)
        },
        &mut progress,
    )?;
    writer.finish(&analysis.findings).map_err(output)?;
    Ok(analysis)
}
