//! Chrome trace-event JSON, as Perfetto (ui.perfetto.dev) and
//! `chrome://tracing` open it.

use super::json;
use crate::analysis::accounting::{reading, split, Reading};
use crate::analysis::worker_timeline::{PollEnding, PollSpan, WorkerTimeline};
use crate::analysis::{AnalysisError, AnalysisOptions, Finding, QueuedOn, TraceSet};
use pulse_trace::{LocationId, SpawnSite, TraceEvent, WorkerThreadKind};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

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

#[derive(Debug)]
struct Track {
    /// Polls and parks, paired as the analysis pairs them.
    timeline: WorkerTimeline,
    local_queue: Option<u32>,
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
/// - counter tracks: `global queue` (tasks), `worker N local queue`
///   (tasks), and `worker N CPU` (shares of each sample interval spent on a
///   CPU and waiting for one, split as the analysis splits readings);
/// - the analysis's findings as instant events on their worker's track,
///   their evidence in the arguments (the CPU figures exactly as the
///   analysis's JSON has them, in ns: `cpu_ns`, `run_delay_ns`,
///   `off_cpu_ns`, `samples`), and dropped events as global instant events.
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
        };
        writer.line.push_str(&format!(
            "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{PID},\"args\":{{\"name\":\"tokio runtime\"}}}}"
        ));
        writer.emit()?;
        Ok(writer)
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

    /// Writes a poll slice the worker's timeline closed.
    fn poll_slice<'a>(
        &mut self,
        worker: u32,
        span: &PollSpan,
        locate: impl Fn(LocationId) -> Option<&'a SpawnSite>,
    ) -> io::Result<()> {
        let tid = match span.ending {
            PollEnding::Ended | PollEnding::Cut => tid(worker),
            PollEnding::Detached | PollEnding::Retired => self.old_thread(worker)?,
        };
        let site = span.poll.location.and_then(locate);
        let name = site.map_or_else(|| "poll".to_owned(), short_site);
        self.begin(tid, span.poll.start, &name, "poll");
        self.line.push_str(",\"args\":{\"task_id\":");
        json::opt_u64(&mut self.line, span.poll.task_id);
        self.line.push_str(",\"spawned_at\":");
        match site {
            Some(site) => json::string(&mut self.line, &site.to_string()),
            None => self.line.push_str("null"),
        }
        let _ = write!(self.line, ",\"local_queue\":{}}}}}", span.poll.local_queue);
        self.emit()?;
        self.end(tid, span.end)
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
        let event_ns = event.timestamp_nanos();
        self.last_ns = self.last_ns.max(event_ns);
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
            let ns = track.timeline.last().unwrap_or(event_ns);
            if let Some(park) = closed.park.filter(|p| !p.retired) {
                self.begin(tid(worker), park.start, "parked", "park");
                self.line.push('}');
                self.emit()?;
                self.end(tid(worker), park.end)?;
            }
            if let Some(poll) = &closed.poll {
                self.poll_slice(worker, poll, &locate)?;
            }
            if closed.retired {
                return Ok(());
            }
            match *event {
                TraceEvent::PollStart { local_queue, .. }
                | TraceEvent::PollEnd { local_queue, .. }
                | TraceEvent::WorkerPark { local_queue, .. }
                | TraceEvent::WorkerUnpark { local_queue, .. } => {
                    self.local_queue(worker, ns, local_queue)?;
                }
                _ => {}
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
    mut progress: impl FnMut(u64, u64),
) -> Result<crate::analysis::Analysis, AnalysisError> {
    let output = |source| AnalysisError::Output {
        path: out_name.into(),
        source,
    };
    let mut writer = ChromeWriter::new(out).map_err(output)?;
    let analysis = crate::analysis::run(
        set,
        options,
        |event, scan| writer.write(event, |id| scan.location(id)).map_err(output),
        &mut progress,
    )?;
    writer.finish(&analysis.findings).map_err(output)?;
    Ok(analysis)
}
