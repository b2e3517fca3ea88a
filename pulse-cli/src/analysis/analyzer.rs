//! [`Analyzer`]: one streaming pass over a trace's events.
//!
//! A trace file holds each worker's events in that worker's order, but the
//! batches of different threads interleave, and the sampler's records come
//! in batches of their own. So the analyzer never needs a global order for
//! what one worker did (polls, parks, active periods: each worker's own
//! stream is followed as it comes), and joins streams only where a verdict
//! needs two of them:
//!
//! - a long poll needs its worker's CPU samples around it;
//! - a park needs the global queue samples and the other workers' local
//!   queue observations during it.
//!
//! Those joins wait in small pending lists until the sampler's clock (its
//! latest timestamp) has passed the item's end by a margin (at least 2 s,
//! or four flush intervals), so the other streams' batches for that time
//! have been read. The data they join against is kept in fixed-size rings
//! (the last 16 384 samples or runs per worker and of the global queue, a
//! few minutes at the default sample interval). Memory is therefore
//! bounded by the number of workers, not by the trace's length.

use super::accounting::{reading, settle, Reading};
use super::cpu::{breakdown, window_figures, CpuPoint};
use super::findings::{Finding, QueuedOn, Verdict};
use super::histogram::Histogram;
use super::options::AnalysisOptions;
use super::queue::{global_max_within, global_run_overlap, Run, Timeline};
use super::report::{
    Analysis, Completeness, EventCounts, GlobalQueueStats, TraceInfo, VerdictSummary, WorkerStats,
    SCHEMA,
};
use super::timeline::{idle_cause, ActivePeriod, IdleCause};
use super::worker_timeline::{OpenPoll, ParkSpan, PollEnding, PollSpan, WorkerTimeline};
use pulse_trace::EventType;
use pulse_trace::{LocationId, TraceEvent, TraceMetadata, WorkerThreadKind};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Samples, runs and parks kept per worker (and global samples kept).
const RING: usize = 16 * 1024;
/// Pending joins kept before the oldest are resolved early.
const PENDING_MAX: usize = 64 * 1024;
/// Least time the sampler's clock must pass an item's end before the item
/// is resolved.
const MIN_RESOLVE_LAG_NS: u64 = 2_000_000_000;
/// How far the sampler's clock moves between resolution passes.
const RESOLVE_STEP_NS: u64 = 100_000_000;
/// Findings of the same verdict on the same worker closer than this are
/// reported as one.
pub(crate) const MERGE_GAP_NS: u64 = 50_000_000;
/// Period-based descheduled candidates kept per worker.
const CANDIDATES_MAX: usize = 10_000;

fn push_capped<T>(ring: &mut VecDeque<T>, item: T) {
    if ring.len() == RING {
        ring.pop_front();
    }
    ring.push_back(item);
}

/// A stretch of consecutive sample intervals in which the worker mostly
/// waited for a CPU.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: u64,
    end: u64,
    cpu: u64,
    run_delay: u64,
    samples: u32,
    global_max: Option<u64>,
}

/// A finding whose spawn locations are still ids.
#[derive(Clone, Debug)]
struct RawFinding {
    finding: Finding,
    location: Option<LocationId>,
    next_location: Option<LocationId>,
    /// A descheduled finding made from one long poll; dropped at the end
    /// if a finding from the worker's CPU samples covers it.
    from_poll: bool,
}

impl From<Finding> for RawFinding {
    fn from(finding: Finding) -> Self {
        RawFinding {
            finding,
            location: None,
            next_location: None,
            from_poll: false,
        }
    }
}

#[derive(Clone, Debug)]
struct PendingPoll {
    id: u64,
    worker: u32,
    poll: OpenPoll,
    end: u64,
    local_queue_end: Option<u32>,
    next: Option<(Option<u64>, Option<LocationId>)>,
    ongoing: bool,
}

#[derive(Clone, Copy, Debug)]
struct PendingPark {
    worker: u32,
    start: u64,
    end: u64,
    /// When the worker was woken: the end less its wait for a CPU.
    woken: u64,
    wake_wait: Option<u64>,
}

/// An unparked stretch without polls: start, end, and its CPU time and
/// run-queue wait by the readings at its ends (where both were read).
type Stretch = (u64, u64, Option<(u64, Option<u64>)>);

/// Everything followed for one worker.
#[derive(Debug, Default)]
struct WorkerState {
    /// Its polls, parks and active periods: the one pairing every
    /// consumer uses.
    timeline: WorkerTimeline,
    /// The long poll that just ended, waiting to learn the next task.
    awaiting_next: Option<u64>,
    /// Bumped when the sampler's readings of this worker move to another
    /// thread; readings of two series are never subtracted.
    series: u32,

    polls: u64,
    durations: Histogram,
    long_polls: u64,
    busy_ns: u64,
    active_ns: u64,
    parked_ns: u64,
    parks: u64,
    cpu_ns: u64,
    run_delay_ns: u64,
    run_delay_known: bool,
    idle_periods: u64,
    local_max: u32,
    local_weighted: f64,
    local_span: u64,
    local_last: Option<(u64, u32)>,

    run: Option<Run>,
    runs: VecDeque<Run>,
    park_history: VecDeque<(u64, u64)>,
    samples: VecDeque<CpuPoint>,
    /// The worker's own readings (parks and unparks, settled), of the
    /// thread that ran it then; merged with `samples` per window.
    own: VecDeque<CpuPoint>,
    /// The thread the sampler's readings are of, and the one that runs
    /// the worker, where the trace names them.
    sampled_tid: Option<u32>,
    runs_tid: Option<u32>,
    window: Option<Window>,
    period_candidates: Vec<Finding>,
    /// Active periods without polls of at least `long_poll`: (start, end,
    /// CPU time and run-queue wait by the readings at its ends). They
    /// stand in for polls in traces that have none.
    stretches: Vec<Stretch>,
}

impl WorkerState {
    fn new(worker: u32) -> Self {
        WorkerState {
            timeline: WorkerTimeline::new(worker),
            ..WorkerState::default()
        }
    }

    fn observe_local(&mut self, t: u64, depth: u32, threshold: u64) {
        if let Some((t0, d0)) = self.local_last {
            let dt = t.saturating_sub(t0);
            self.local_weighted += f64::from(d0) * dt as f64;
            self.local_span += dt;
        }
        self.local_last = Some((t, depth));
        self.local_max = self.local_max.max(depth);
        if u64::from(depth) >= threshold {
            match &mut self.run {
                Some(run) => {
                    run.last = t.max(run.last);
                    run.max = run.max.max(u64::from(depth));
                }
                None => {
                    self.run = Some(Run {
                        start: t,
                        last: t,
                        max: u64::from(depth),
                    })
                }
            }
        } else if let Some(run) = self.run.take() {
            if run.last > run.start {
                push_capped(&mut self.runs, run);
            }
        }
    }

    /// Time parked within `start..end`, from the park history and an open
    /// park.
    fn parked_within(&self, start: u64, end: u64) -> u64 {
        let first = self
            .park_history
            .partition_point(|&(_, until)| until <= start);
        let mut total: u64 = self
            .park_history
            .range(first..)
            .take_while(|&&(from, _)| from < end)
            .map(|&(from, until)| overlap(from, until, start, end))
            .sum();
        if let Some(park) = self.timeline.open_park() {
            total += overlap(park, end, start, end);
        }
        total
    }
}

/// The longest part of `window` that none of `covers` overlaps.
fn longest_uncovered(
    window: (u64, u64),
    covers: impl Iterator<Item = (u64, u64)>,
) -> Option<(u64, u64)> {
    let mut pieces = vec![window];
    for (a, b) in covers {
        pieces = pieces
            .into_iter()
            .flat_map(|(s, e)| {
                if b <= s || a >= e {
                    vec![(s, e)]
                } else {
                    [(s, a.max(s)), (b.min(e), e)]
                        .into_iter()
                        .filter(|(x, y)| y > x)
                        .collect()
                }
            })
            .collect();
    }
    pieces.into_iter().max_by_key(|(s, e)| e - s)
}

fn overlap(a0: u64, a1: u64, b0: u64, b1: u64) -> u64 {
    a1.min(b1).saturating_sub(a0.max(b0))
}

/// The global queue's samples, statistics and timeline.
#[derive(Debug, Default)]
struct Sampler {
    /// Latest sampler timestamp seen: the clock pending joins wait on.
    watermark: Option<u64>,
    last_depth: Option<u64>,
    ring: VecDeque<(u64, u64)>,
    samples: u64,
    sum: f64,
    max: u64,
    nonempty: u64,
    timeline: Timeline,
}

/// Reads a trace's events one at a time and produces an [`Analysis`].
///
/// Feed it every event of one trace in file order with
/// [`push`](Self::push) (telling it where each file starts with
/// [`begin_file`](Self::begin_file)), then call [`finish`](Self::finish).
/// [`analyze_trace`](super::analyze_trace) does exactly that; use an
/// `Analyzer` directly to drive the reading yourself, e.g. to show
/// progress or to export the same events at the same time.
///
/// Memory stays bounded whatever the trace's length; see the module
/// documentation of [`analysis`](super).
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::{AnalysisOptions, Analyzer, Verdict};
/// use pulse_trace::TraceEvent;
///
/// let mut analyzer = Analyzer::new(AnalysisOptions::default());
/// let ms = 1_000_000;
/// // Worker 0 polls one task for 50 ms; the sampler saw its CPU clock
/// // advance by 49 ms meanwhile.
/// let events = [
///     TraceEvent::WorkerSample { timestamp_nanos: 0, worker: 0, cpu_nanos: 0, run_delay_nanos: Some(0) },
///     TraceEvent::PollStart { timestamp_nanos: 0, worker: 0, local_queue: 0, task_id: Some(7), spawned_at: None },
///     TraceEvent::WorkerSample { timestamp_nanos: 50 * ms, worker: 0, cpu_nanos: 49 * ms, run_delay_nanos: Some(0) },
///     TraceEvent::PollEnd { timestamp_nanos: 50 * ms, worker: 0, local_queue: 0 },
/// ];
/// for event in &events {
///     analyzer.push(event);
/// }
/// let analysis = analyzer.finish(|_| None);
/// let finding = &analysis.findings[0];
/// assert_eq!(finding.verdict, Verdict::CpuBoundPoll);
/// assert_eq!((finding.worker, finding.task_id), (0, Some(7)));
/// assert_eq!(finding.duration_ns, 50 * ms);
/// ```
#[derive(Debug)]
pub struct Analyzer {
    options: AnalysisOptions,
    resolve_lag_ns: u64,
    last_resolve: u64,
    info: TraceInfo,
    metadata_seen: bool,
    file_indices: Vec<u64>,
    first_ns: Option<u64>,
    counts: [u64; EventType::ALL.len()],
    out_of_order: u64,
    unpaired: u64,
    completeness: Completeness,
    workers: BTreeMap<u32, WorkerState>,
    sampler: Sampler,
    next_poll_id: u64,
    pending_polls: VecDeque<PendingPoll>,
    pending_parks: VecDeque<PendingPark>,
    /// Descheduled windows from the sampler's readings, not yet checked.
    pending_windows: VecDeque<Finding>,
    findings: Vec<RawFinding>,
    last_mergeable: HashMap<(u32, Verdict), usize>,
    omitted: BTreeMap<Verdict, Tally>,
    omitted_count: u64,
    latencies: super::latency::Latencies,
}

impl Analyzer {
    /// An analyzer with these thresholds.
    pub fn new(options: AnalysisOptions) -> Self {
        Analyzer {
            options,
            resolve_lag_ns: MIN_RESOLVE_LAG_NS,
            last_resolve: 0,
            info: TraceInfo::default(),
            metadata_seen: false,
            file_indices: Vec::new(),
            first_ns: None,
            counts: [0; EventType::ALL.len()],
            out_of_order: 0,
            unpaired: 0,
            completeness: Completeness::default(),
            workers: BTreeMap::new(),
            sampler: Sampler::default(),
            next_poll_id: 0,
            pending_polls: VecDeque::new(),
            pending_parks: VecDeque::new(),
            pending_windows: VecDeque::new(),
            findings: Vec::new(),
            last_mergeable: HashMap::new(),
            omitted: BTreeMap::new(),
            omitted_count: 0,
            latencies: super::latency::Latencies::default(),
        }
    }

    /// Notes the start of a file: its format version and, for v6, its
    /// metadata (the first file's describes the trace; every file's index
    /// is checked for gaps).
    pub fn begin_file(&mut self, version: u32, metadata: Option<&TraceMetadata>) {
        if self.info.format_version.is_none() {
            self.info.format_version = Some(version);
        }
        let Some(metadata) = metadata else {
            return;
        };
        self.file_indices.push(metadata.file_index);
        if self.metadata_seen {
            return;
        }
        self.metadata_seen = true;
        let config = |key: &str| {
            metadata
                .config
                .iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        self.info.pulse_version = Some(metadata.pulse_version.clone());
        self.info.worker_count = Some(metadata.worker_count);
        self.info.start_unix_ns = Some(metadata.start_unix_nanos);
        self.info.time_unit_ns = Some(metadata.time_unit_nanos);
        self.info.has_run_delay = metadata.has_run_delay;
        self.info.sample_interval_ns = config("sample_ms").map(|ms| ms * 1_000_000);
        self.info.flush_interval_ns = config("flush_ms").map(|ms| ms * 1_000_000);
        self.info.config = metadata.config.clone();
        self.info.tokio_unstable = metadata
            .config
            .iter()
            .find(|(k, _)| k == "tokio_unstable")
            .and_then(|(_, v)| v.parse::<bool>().ok());
        if let Some(flush) = self.info.flush_interval_ns {
            self.resolve_lag_ns = MIN_RESOLVE_LAG_NS.max(flush.saturating_mul(4));
        }
        for worker in 0..metadata.worker_count.min(1024) {
            self.workers
                .entry(worker)
                .or_insert_with(|| WorkerState::new(worker));
        }
    }

    /// Feeds the next event, in file order.
    pub fn push(&mut self, event: &TraceEvent) {
        let t = event.timestamp_nanos();
        self.info.events += 1;
        if let Some(count) = self.counts.get_mut(event.event_type() as usize) {
            *count += 1;
        }
        self.first_ns = Some(self.first_ns.map_or(t, |first| first.min(t)));
        self.info.last_ns = self.info.last_ns.max(t);
        let delay_min = self.options.delay_min_ns();
        self.latencies.push(event, delay_min);
        match *event {
            TraceEvent::QueueSample {
                timestamp_nanos,
                global_queue,
            } => self.on_queue_sample(timestamp_nanos, global_queue),
            TraceEvent::WorkerSample { worker, .. } => {
                if let Some(reading) = reading(event) {
                    self.on_worker_sample(worker, reading);
                }
            }
            TraceEvent::WorkerThread {
                worker,
                tid,
                kind: WorkerThreadKind::Sampled,
                ..
            } => self.on_sampled_elsewhere(worker, tid),
            TraceEvent::EventsDropped {
                timestamp_nanos,
                count,
            } => {
                self.completeness.dropped_events += count;
                if self.completeness.gaps.len() < RING {
                    self.completeness.gaps.push(super::report::Gap {
                        at_ns: timestamp_nanos,
                        count,
                    });
                }
                self.advance_sampler_clock(timestamp_nanos);
            }
            _ => {
                if let Some(worker) = event.worker() {
                    self.on_worker_event(worker, event);
                }
            }
        }
    }

    fn advance_sampler_clock(&mut self, t: u64) {
        let watermark = self.sampler.watermark.map_or(t, |w| w.max(t));
        self.sampler.watermark = Some(watermark);
        if watermark >= self.last_resolve + RESOLVE_STEP_NS {
            self.last_resolve = watermark;
            self.resolve(false);
        }
    }

    fn on_queue_sample(&mut self, t: u64, depth: u64) {
        let sampler = &mut self.sampler;
        sampler.samples += 1;
        sampler.sum += depth as f64;
        sampler.max = sampler.max.max(depth);
        if depth > 0 {
            sampler.nonempty += 1;
        }
        sampler.last_depth = Some(depth);
        sampler.timeline.record(t, depth);
        if sampler.ring.back().is_none_or(|&(last, _)| t >= last) {
            push_capped(&mut sampler.ring, (t, depth));
        }
        self.advance_sampler_clock(t);
    }

    /// The sampler's readings of `worker` move to another thread (other
    /// `WorkerThread` records go to the worker's timeline).
    fn on_sampled_elsewhere(&mut self, worker: u32, tid: u32) {
        let state = self
            .workers
            .entry(worker)
            .or_insert_with(|| WorkerState::new(worker));
        state.series += 1;
        state.sampled_tid = Some(tid);
        if let Some(window) = state.window.take() {
            self.close_window(worker, window);
        }
    }

    fn on_worker_sample(&mut self, worker: u32, reading: Reading) {
        let Reading { t, cpu, run_delay } = reading;
        let share = self.options.descheduled_min_share;
        let global = self.sampler.last_depth;
        let state = self
            .workers
            .entry(worker)
            .or_insert_with(|| WorkerState::new(worker));
        let point = CpuPoint {
            t,
            cpu,
            run_delay,
            series: state.series,
            tid: state.sampled_tid,
        };
        let mut closed = None;
        if let Some(prev) = state.samples.back().copied() {
            if t <= prev.t {
                return;
            }
            if prev.series != point.series {
                // Another thread's counters: nothing to subtract.
                closed = state.window.take();
                push_capped(&mut state.samples, point);
                if let Some(window) = closed {
                    self.close_window(worker, window);
                }
                self.advance_sampler_clock(t);
                return;
            }
            let waited = match (prev.run_delay, run_delay) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => 0,
            };
            // The kernel credits a wait for a CPU when it ends, so an
            // interval without a credited wait may hold the start of one
            // still going on (after a slice on a CPU, or all of it), or
            // sleep, or running. Inside a window, the next interval that
            // credits a wait decides: the window goes on if that wait is
            // the share of everything since the window's end, and closes
            // (at its end) otherwise, the interval then counting on its
            // own. Without this, a worker that got a slice of CPU every
            // few tens of milliseconds (many threads per CPU) had its one
            // stretch of waiting cut into pieces at each slice, and the
            // pieces under `descheduled_min_wait` were lost.
            if waited == 0 && state.window.is_some() {
                push_capped(&mut state.samples, point);
                self.advance_sampler_clock(t);
                return;
            }
            let holds = |wall: u64| waited > 0 && waited as f64 >= share * wall as f64;
            if state.window.as_ref().is_some_and(|w| !holds(t - w.end)) {
                closed = state.window.take();
            }
            if holds(t - state.window.as_ref().map_or(prev.t, |w| w.end)) {
                let window = state.window.get_or_insert(Window {
                    start: prev.t,
                    end: t,
                    cpu: 0,
                    run_delay: 0,
                    samples: 0,
                    global_max: None,
                });
                window.end = t;
                window.cpu += cpu.saturating_sub(prev.cpu);
                window.run_delay += waited;
                window.samples += 1;
                window.global_max = window.global_max.max(global);
            }
        }
        push_capped(&mut state.samples, point);
        if let Some(window) = closed {
            self.close_window(worker, window);
        }
        self.advance_sampler_clock(t);
    }

    fn close_window(&mut self, worker: u32, window: Window) {
        if window.run_delay < self.options.descheduled_min_wait_ns() {
            return;
        }
        // Run-queue wait is credited when the thread gets a CPU, so a long
        // wait can land in one interval: it began `run_delay` before.
        let start = window
            .start
            .min(window.end.saturating_sub(window.run_delay));
        let mut finding = Finding::new(Verdict::Descheduled, worker, start, window.end);
        finding.cpu = Some(breakdown(
            finding.duration_ns,
            window.cpu,
            Some(window.run_delay),
            window.samples,
        ));
        finding.global_queue_max = window.global_max;
        // Checked against the worker's own readings once they are in.
        self.pending_windows.push_back(finding);
    }

    /// A sampler window, checked against the worker's own readings (which
    /// come later in the file): a wait the readings around the window say
    /// was credited before it (e.g. at the unpark just after the window's
    /// first sample) was not this window's.
    fn check_window(&self, finding: Finding) -> Option<Finding> {
        let state = self.workers.get(&finding.worker)?;
        if let Some((figures, _)) =
            window_figures(&state.samples, &state.own, finding.start_ns, finding.end_ns)
        {
            let waited = figures.run_delay_ns.unwrap_or(u64::MAX);
            if (waited as f64) < self.options.descheduled_min_share * finding.duration_ns as f64 {
                return None;
            }
        }
        Some(finding)
    }

    fn on_worker_event(&mut self, worker: u32, event: &TraceEvent) {
        let threshold = self.options.queue_threshold();
        let state = self
            .workers
            .entry(worker)
            .or_insert_with(|| WorkerState::new(worker));
        let closed = state.timeline.on_event(event);
        if let TraceEvent::WorkerThread {
            tid,
            kind: WorkerThreadKind::Runs,
            ..
        } = *event
        {
            state.runs_tid = Some(tid);
        }
        if let (false, Some(r), Some(tid)) = (closed.retired, reading(event), state.runs_tid) {
            let prev = state
                .own
                .back()
                .filter(|p| p.tid == Some(tid))
                .map(|p| Reading {
                    t: p.t,
                    cpu: p.cpu,
                    run_delay: p.run_delay,
                });
            let r = settle(prev.as_ref(), r);
            if state.own.back().is_none_or(|p| p.t < r.t) {
                push_capped(
                    &mut state.own,
                    CpuPoint {
                        t: r.t,
                        cpu: r.cpu,
                        run_delay: r.run_delay,
                        series: 0,
                        tid: Some(tid),
                    },
                );
            }
        }
        self.unpaired += u64::from(closed.unpaired);
        if closed.out_of_order {
            self.out_of_order += 1;
        }
        if !closed.retired {
            let t = state.timeline.last().unwrap_or(0);
            match *event {
                TraceEvent::PollStart {
                    local_queue,
                    task_id,
                    spawned_at,
                    ..
                } => {
                    if let Some(id) = state.awaiting_next.take() {
                        if let Some(pending) =
                            self.pending_polls.iter_mut().rev().find(|p| p.id == id)
                        {
                            pending.next = Some((task_id, spawned_at));
                        }
                    }
                    state.observe_local(t, local_queue, threshold);
                }
                TraceEvent::WorkerPark { local_queue, .. } => {
                    state.awaiting_next = None;
                    state.parks += 1;
                    state.observe_local(t, local_queue, threshold);
                }
                TraceEvent::PollEnd { local_queue, .. }
                | TraceEvent::WorkerUnpark { local_queue, .. } => {
                    state.observe_local(t, local_queue, threshold);
                }
                _ => {}
            }
        }
        if let Some(poll) = closed.poll {
            self.on_poll(worker, &poll);
        }
        if let Some(park) = closed.park {
            self.on_park(worker, &park);
        }
        if let Some(period) = closed.period {
            self.on_period(worker, &period);
        }
        if self.pending_polls.len() > PENDING_MAX
            || self.pending_parks.len() > PENDING_MAX
            || self.pending_windows.len() > PENDING_MAX
        {
            self.resolve_oldest();
        }
    }

    /// A poll the worker's timeline closed.
    fn on_poll(&mut self, worker: u32, span: &PollSpan) {
        let long_poll = self.options.long_poll_ns();
        let Some(state) = self.workers.get_mut(&worker) else {
            return;
        };
        if span.ending == PollEnding::Cut {
            // Its end was lost: counted as unpaired, not as a poll.
            return;
        }
        let duration = span.end - span.poll.start;
        state.polls += 1;
        state.busy_ns += duration;
        state.durations.record(duration);
        if duration < long_poll {
            return;
        }
        match span.ending {
            PollEnding::Ended => {
                state.long_polls += 1;
                let id = self.next_poll_id;
                self.next_poll_id += 1;
                state.awaiting_next = Some(id);
                self.pending_polls.push_back(PendingPoll {
                    id,
                    worker,
                    poll: span.poll,
                    end: span.end,
                    local_queue_end: span.local_queue_end,
                    next: None,
                    ongoing: false,
                });
            }
            PollEnding::Detached => {
                state.long_polls += 1;
                let mut finding =
                    Finding::new(Verdict::BlockInPlace, worker, span.poll.start, span.end);
                finding.task_id = span.poll.task_id;
                finding.local_queue_start = Some(span.poll.local_queue);
                self.add_finding(RawFinding {
                    finding,
                    location: span.poll.location,
                    next_location: None,
                    from_poll: false,
                });
            }
            PollEnding::Retired | PollEnding::Cut => {}
        }
    }

    /// A park the worker's timeline closed.
    fn on_park(&mut self, worker: u32, park: &ParkSpan) {
        let Some(state) = self.workers.get_mut(&worker) else {
            return;
        };
        state.parked_ns += park.end - park.start;
        if park.retired {
            return;
        }
        push_capped(&mut state.park_history, (park.start, park.end));
        // The stretch between the park's and the unpark's readings: asleep
        // first (from the settled park reading on), then woken and waiting
        // for a CPU, then running the hook. Only the asleep part is parked.
        let Some((asleep_from, woken, stretch)) = park.asleep() else {
            return;
        };
        let wake_wait = stretch.runnable;
        if woken.saturating_sub(asleep_from) >= self.options.parked_queued_min_ns() {
            self.pending_parks.push_back(PendingPark {
                worker,
                start: asleep_from,
                end: park.end,
                woken,
                wake_wait,
            });
        }
        if let (Some(waited), Some(before), Some(after)) = (wake_wait, park.before, park.after) {
            if waited >= self.options.descheduled_min_wait_ns()
                && state.period_candidates.len() < CANDIDATES_MAX
            {
                let from = after.t.saturating_sub(waited + stretch.cpu).max(before.t);
                let mut finding = Finding::new(Verdict::Descheduled, worker, from, after.t);
                finding.cpu = Some(breakdown(finding.duration_ns, stretch.cpu, Some(waited), 0));
                finding.wake_wait_ns = Some(waited);
                state.period_candidates.push(finding);
            }
        }
    }

    fn on_period(&mut self, worker: u32, period: &ActivePeriod) {
        let options = &self.options;
        let Some(state) = self.workers.get_mut(&worker) else {
            return;
        };
        let wall = period.wall_ns();
        state.active_ns += wall;
        state.cpu_ns += period.cpu_ns;
        if let Some(waited) = period.run_delay_ns {
            state.run_delay_ns += waited;
            state.run_delay_known = true;
        }
        if wall >= options.idle_min_wall_ns() && period.ratio() < options.idle_max_ratio {
            state.idle_periods += 1;
        }
        if period.polls == 0
            && wall >= options.long_poll_ns()
            && state.stretches.len() < CANDIDATES_MAX
        {
            let measured = (period.cpu_ns > 0 || period.run_delay_ns.is_some())
                .then_some((period.cpu_ns, period.run_delay_ns));
            state
                .stretches
                .push((period.start_ns, period.end_ns, measured));
        }
        let Some(waited) = period.run_delay_ns else {
            return;
        };
        if waited >= options.descheduled_min_wait_ns()
            && waited as f64 >= options.descheduled_min_share * wall as f64
            && state.period_candidates.len() < CANDIDATES_MAX
            && idle_cause(period) != IdleCause::Blocked
        {
            let mut finding =
                Finding::new(Verdict::Descheduled, worker, period.start_ns, period.end_ns);
            finding.cpu = Some(breakdown(wall, period.cpu_ns, Some(waited), 0));
            state.period_candidates.push(finding);
        }
    }

    /// Resolves the pending joins whose time has come (all of them when
    /// `all`).
    fn resolve(&mut self, all: bool) {
        let ready_before = match self.sampler.watermark {
            _ if all => u64::MAX,
            Some(watermark) => watermark.saturating_sub(self.resolve_lag_ns),
            None => return,
        };
        let polls: Vec<PendingPoll> =
            drain_ready(&mut self.pending_polls, |p| p.end < ready_before);
        let parks: Vec<PendingPark> =
            drain_ready(&mut self.pending_parks, |p| p.end < ready_before);
        let windows: Vec<Finding> =
            drain_ready(&mut self.pending_windows, |w| w.end_ns < ready_before);
        self.resolve_items(polls, parks, windows);
    }

    /// Resolves the older half of an overfull pending list.
    fn resolve_oldest(&mut self) {
        let n = self.pending_polls.len().saturating_sub(PENDING_MAX / 2);
        let polls: Vec<PendingPoll> = self.pending_polls.drain(..n).collect();
        let n = self.pending_parks.len().saturating_sub(PENDING_MAX / 2);
        let parks: Vec<PendingPark> = self.pending_parks.drain(..n).collect();
        let n = self.pending_windows.len().saturating_sub(PENDING_MAX / 2);
        let windows: Vec<Finding> = self.pending_windows.drain(..n).collect();
        self.resolve_items(polls, parks, windows);
    }

    fn resolve_items(
        &mut self,
        polls: Vec<PendingPoll>,
        parks: Vec<PendingPark>,
        windows: Vec<Finding>,
    ) {
        for window in windows {
            if let Some(finding) = self.check_window(window) {
                self.add_finding(finding.into());
            }
        }
        for poll in polls {
            let finding = self.classify_poll(&poll);
            self.add_finding(finding);
        }
        for park in parks {
            if let Some(finding) = self.check_park(&park) {
                self.add_finding(finding.into());
            }
        }
    }

    fn classify_poll(&self, pending: &PendingPoll) -> RawFinding {
        let (start, end) = (pending.poll.start, pending.end);
        let wall = end - start;
        let mut finding = Finding::new(Verdict::LongPoll, pending.worker, start, end);
        if let Some((cpu, own_lower)) = self
            .workers
            .get(&pending.worker)
            .and_then(|state| window_figures(&state.samples, &state.own, start, end))
        {
            let not_waiting = cpu.cpu_ns + cpu.off_cpu_ns;
            finding.cpu = Some(cpu);
            if own_lower < self.options.long_poll_ns() {
                let waited = cpu.run_delay_ns.unwrap_or(0);
                if waited as f64 >= self.options.descheduled_min_share * wall as f64 {
                    // Long because it waited for a CPU: the OS's doing,
                    // not the poll's.
                    finding.verdict = Verdict::Descheduled;
                    finding.task_id = pending.poll.task_id;
                    finding.global_queue_max = global_max_within(&self.sampler.ring, start, end);
                    return RawFinding {
                        finding,
                        location: pending.poll.location,
                        next_location: None,
                        from_poll: true,
                    };
                }
                // The readings are too coarse to say whose doing it was:
                // a long poll of unknown cause (`finding.verdict` stays).
            } else {
                finding.verdict =
                    if cpu.cpu_ns as f64 >= self.options.cpu_bound_min_share * not_waiting as f64 {
                        Verdict::CpuBoundPoll
                    } else {
                        Verdict::BlockedInPoll
                    };
            }
        }
        finding.task_id = pending.poll.task_id;
        finding.local_queue_start = Some(pending.poll.local_queue);
        finding.local_queue_end = pending.local_queue_end;
        finding.ongoing = pending.ongoing;
        let (next_task, next_location) = pending.next.unwrap_or((None, None));
        finding.next_task_id = next_task;
        finding.global_queue_max = global_max_within(&self.sampler.ring, start, end);
        let others: Vec<u64> = self
            .workers
            .iter()
            .filter(|(&w, state)| w != pending.worker && state.timeline.last().is_some())
            .map(|(_, state)| state.parked_within(start, end))
            .collect();
        if !others.is_empty() && wall > 0 {
            let parked: u64 = others.iter().sum();
            finding.other_workers_parked =
                Some(parked as f64 / (others.len() as f64 * wall as f64));
        }
        RawFinding {
            finding,
            location: pending.poll.location,
            next_location,
            from_poll: false,
        }
    }

    fn check_park(&self, park: &PendingPark) -> Option<Finding> {
        let threshold = self.options.queue_threshold();
        let (start, end) = (park.start, park.woken);
        let mut best: Option<(u64, u64, u64, QueuedOn)> =
            global_run_overlap(&self.sampler.ring, start, end, threshold)
                .map(|(from, to, max)| (from, to, max, QueuedOn::Global));
        for (&worker, state) in &self.workers {
            if worker == park.worker {
                continue;
            }
            let first = state.runs.partition_point(|run| run.last <= start);
            let runs = state.runs.range(first..).take_while(|run| run.start < end);
            for run in runs.chain(state.run.iter()) {
                let (from, to) = (run.start.max(start), run.last.min(end));
                if to > from && best.is_none_or(|(f, t, _, _)| to - from > t - f) {
                    best = Some((from, to, run.max, QueuedOn::Worker(worker)));
                }
            }
        }
        let (from, to, depth, queued_on) = best?;
        if to - from < self.options.parked_queued_min_ns() {
            return None;
        }
        let mut finding = Finding::new(Verdict::ParkedWhileQueued, park.worker, from, to);
        finding.queued_on = Some(queued_on);
        finding.queue_depth_max = Some(depth);
        finding.global_queue_max = global_max_within(&self.sampler.ring, from, to);
        finding.parked_ns = Some(park.end - park.start);
        finding.wake_wait_ns = park.wake_wait;
        Some(finding)
    }

    fn add_finding(&mut self, raw: RawFinding) {
        let finding = &raw.finding;
        let key = (finding.worker, finding.verdict);
        let mergeable = matches!(
            finding.verdict,
            Verdict::Descheduled | Verdict::ParkedWhileQueued
        ) && !raw.from_poll;
        if mergeable {
            if let Some(last) = self
                .last_mergeable
                .get(&key)
                .and_then(|&i| self.findings.get_mut(i))
            {
                if finding.start_ns <= last.finding.end_ns.saturating_add(MERGE_GAP_NS)
                    && last.finding.start_ns <= finding.end_ns.saturating_add(MERGE_GAP_NS)
                {
                    merge(&mut last.finding, finding);
                    return;
                }
            }
        }
        if self.findings.len() >= self.options.max_findings {
            self.omitted_count += 1;
            self.omitted
                .entry(finding.verdict)
                .or_default()
                .add(finding);
            return;
        }
        if mergeable {
            self.last_mergeable.insert(key, self.findings.len());
        }
        self.findings.push(raw);
    }

    /// Ends the analysis. `locate` names spawn locations (pass
    /// `|id| reader.location(id).map(ToString::to_string)` with the reader
    /// that read the trace).
    pub fn finish(mut self, locate: impl Fn(LocationId) -> Option<String>) -> Analysis {
        let end = self.info.last_ns;
        let long_poll = self.options.long_poll_ns();
        let workers: Vec<u32> = self.workers.keys().copied().collect();
        for worker in workers {
            let Some(state) = self.workers.get_mut(&worker) else {
                continue;
            };
            let window = state.window.take();
            if let Some(poll) = state.timeline.open_poll() {
                if end.saturating_sub(poll.start) >= long_poll {
                    let id = self.next_poll_id;
                    self.next_poll_id += 1;
                    self.pending_polls.push_back(PendingPoll {
                        id,
                        worker,
                        poll,
                        end,
                        local_queue_end: None,
                        next: None,
                        ongoing: true,
                    });
                }
            }
            if let Some(window) = window {
                self.close_window(worker, window);
            }
        }
        self.resolve(true);
        self.stretch_findings(end);
        // Without CPU samples, fall back on park/unpark readings.
        let fallbacks: Vec<Finding> = self
            .workers
            .values_mut()
            .filter(|state| state.samples.len() < 2)
            .flat_map(|state| std::mem::take(&mut state.period_candidates))
            .collect();
        for finding in fallbacks {
            self.add_finding(finding.into());
        }

        let covered = |raw: &RawFinding| {
            raw.from_poll
                && self.findings.iter().any(|other| {
                    !other.from_poll
                        && other.finding.verdict == Verdict::Descheduled
                        && other.finding.worker == raw.finding.worker
                        && other
                            .finding
                            .overlaps(raw.finding.start_ns, raw.finding.end_ns)
                })
        };
        let findings: Vec<Finding> = self
            .findings
            .iter()
            .filter(|raw| !covered(raw))
            .map(|raw| {
                let mut finding = raw.finding.clone();
                finding.spawned_at = raw.location.and_then(&locate);
                finding.next_spawned_at = raw.next_location.and_then(&locate);
                finding
            })
            .collect();
        let mut findings = self.consistent(findings);
        findings.sort_by_key(|f| (f.start_ns, f.worker, f.verdict));
        annotate_descheduled(&mut findings);
        let all_workers: Vec<u32> = self.workers.keys().copied().collect();
        let schedule_latency = std::mem::take(&mut self.latencies).finish(
            &all_workers,
            &mut findings,
            self.options.delay_min_ns(),
            self.options.long_wait_ns(),
            self.options.parked_queued_min_ns(),
            &locate,
        );

        let verdicts = summarize(&findings, &self.omitted);
        let workers = self.worker_stats(end);
        let global_queue = self.global_stats();
        let mut info = self.info;
        info.first_ns = self.first_ns.unwrap_or(0);
        info.duration_ns = info.last_ns.saturating_sub(info.first_ns);
        info.event_counts = counts(&self.counts);
        let mut completeness = self.completeness;
        completeness.unpaired_events = self.unpaired;
        completeness.out_of_order_events = self.out_of_order;
        completeness.missing_files = missing_files(&self.file_indices);
        let mut analysis = Analysis {
            schema: SCHEMA.to_owned(),
            trace: info,
            completeness,
            options: self.options,
            verdicts,
            findings,
            findings_omitted: self.omitted_count,
            workers,
            global_queue,
            code_groups: Vec::new(),
            schedule_latency,
            span_groups: Vec::new(),
            spans: Vec::new(),
        };
        analysis.refresh_completeness();
        analysis
    }

    /// In a trace without poll events (recorded without `--cfg
    /// tokio_unstable`), the worker's unparked stretches of at least
    /// `long_poll` stand in for polls: mostly asleep by the readings is
    /// [`Verdict::UnparkedOffCpu`], mostly on a CPU
    /// [`Verdict::BusyWithoutParking`]; mostly waiting for a CPU is
    /// [`Verdict::Descheduled`] (dropped where a finding from the sampler's
    /// readings covers it), as for a poll.
    fn stretch_findings(&mut self, end: u64) {
        let polls = self.counts[EventType::PollStart as usize];
        if polls > 0 || self.info.tokio_unstable == Some(true) {
            return;
        }
        if self.info.events > 0 {
            self.info.task_detail = Some(
                "no poll events: task-level detail (polls, task ids, spawn sites, local queues) \
                 needs the traced program built with --cfg tokio_unstable; unparked stretches \
                 stand in for polls"
                    .to_owned(),
            );
        }
        let long_poll = self.options.long_poll_ns();
        let mut found = Vec::new();
        for (&worker, state) in &self.workers {
            let mut stretches = state.stretches.clone();
            // Still unparked when the trace ended: figures from the
            // sampler's readings only.
            if let Some(start) = state.timeline.open_period() {
                if end.saturating_sub(start) >= long_poll {
                    stretches.push((start, end, None));
                }
            }
            for (start, stop, measured) in stretches {
                let wall = stop - start;
                let inside = state.samples.partition_point(|p| p.t < stop)
                    - state.samples.partition_point(|p| p.t <= start);
                let samples = u32::try_from(inside).unwrap_or(u32::MAX);
                let cpu = match measured {
                    Some((cpu, run_delay)) => breakdown(wall, cpu, run_delay, samples),
                    None => match window_figures(&state.samples, &state.own, start, stop) {
                        Some((cpu, _)) => cpu,
                        None => continue,
                    },
                };
                let waited = cpu.run_delay_ns.unwrap_or(0);
                if waited as f64 >= self.options.descheduled_min_share * wall as f64 {
                    // Long because it waited for a CPU, as a poll would
                    // be: descheduled, unless a finding from the sampler's
                    // readings already covers it.
                    let mut finding = Finding::new(Verdict::Descheduled, worker, start, stop);
                    finding.cpu = Some(cpu);
                    finding.global_queue_max = global_max_within(&self.sampler.ring, start, stop);
                    found.push(RawFinding {
                        finding,
                        location: None,
                        next_location: None,
                        from_poll: true,
                    });
                    continue;
                }
                let not_waiting = cpu.cpu_ns + cpu.off_cpu_ns;
                let verdict =
                    if cpu.cpu_ns as f64 >= self.options.cpu_bound_min_share * not_waiting as f64 {
                        Verdict::BusyWithoutParking
                    } else if cpu.off_cpu_ns >= cpu.cpu_ns {
                        Verdict::UnparkedOffCpu
                    } else {
                        continue;
                    };
                let mut finding = Finding::new(verdict, worker, start, stop);
                finding.cpu = Some(cpu);
                finding.ongoing = stop == end && measured.is_none();
                finding.global_queue_max = global_max_within(&self.sampler.ring, start, stop);
                found.push(finding.into());
            }
        }
        for finding in found {
            self.add_finding(finding);
        }
    }

    /// Makes the findings agree with each other and with their thresholds:
    /// no worker is parked and descheduled at the same instant (being
    /// runnable is not being asleep, so descheduled wins), no share exceeds
    /// 100 %, and no finding is below its verdict's threshold.
    fn consistent(&self, findings: Vec<Finding>) -> Vec<Finding> {
        let o = &self.options;
        let descheduled: Vec<(u32, u64, u64)> = findings
            .iter()
            .filter(|f| f.verdict == Verdict::Descheduled)
            .map(|f| (f.worker, f.start_ns, f.end_ns))
            .collect();
        findings
            .into_iter()
            .filter_map(|mut f| {
                if f.verdict == Verdict::ParkedWhileQueued {
                    let (start, end) = longest_uncovered(
                        (f.start_ns, f.end_ns),
                        descheduled
                            .iter()
                            .filter(|d| d.0 == f.worker)
                            .map(|&(_, a, b)| (a, b)),
                    )?;
                    f.start_ns = start;
                    f.end_ns = end;
                    f.duration_ns = end - start;
                }
                f.duration_ns = f.end_ns.saturating_sub(f.start_ns);
                if let Some(cpu) = f.cpu {
                    f.cpu = Some(breakdown(
                        f.duration_ns,
                        cpu.cpu_ns,
                        cpu.run_delay_ns,
                        cpu.samples,
                    ));
                }
                let enough = match f.verdict {
                    Verdict::ParkedWhileQueued => f.duration_ns >= o.parked_queued_min_ns(),
                    Verdict::Descheduled => {
                        f.cpu.and_then(|c| c.run_delay_ns).unwrap_or(0)
                            >= o.descheduled_min_wait_ns()
                    }
                    _ => f.duration_ns >= o.long_poll_ns(),
                };
                enough.then_some(f)
            })
            .collect()
    }

    fn worker_stats(&self, end: u64) -> Vec<WorkerStats> {
        self.workers
            .iter()
            .map(|(&worker, state)| {
                let mut parked_ns = state.parked_ns;
                if let Some(park) = state.timeline.open_park() {
                    parked_ns += end.saturating_sub(park);
                }
                let local_queue_mean = if state.local_span == 0 {
                    state.local_last.map_or(0.0, |(_, d)| f64::from(d))
                } else {
                    state.local_weighted / state.local_span as f64
                };
                WorkerStats {
                    worker,
                    polls: state.polls,
                    poll_p50_ns: state.durations.quantile(0.5),
                    poll_p99_ns: state.durations.quantile(0.99),
                    poll_max_ns: state.durations.max(),
                    long_polls: state.long_polls,
                    busy_ns: state.busy_ns,
                    active_ns: state.active_ns,
                    parked_ns,
                    parks: state.parks,
                    cpu_ns: state.cpu_ns,
                    run_delay_ns: state.run_delay_known.then_some(state.run_delay_ns),
                    scheduling_ratio: (state.active_ns > 0)
                        .then(|| state.cpu_ns as f64 / state.active_ns as f64),
                    idle_periods: state.idle_periods,
                    local_queue_max: state.local_max,
                    local_queue_mean,
                }
            })
            .collect()
    }

    fn global_stats(&self) -> GlobalQueueStats {
        let s = &self.sampler;
        let n = s.samples.max(1) as f64;
        GlobalQueueStats {
            samples: s.samples,
            max: s.max,
            mean: if s.samples == 0 { 0.0 } else { s.sum / n },
            nonempty_share: if s.samples == 0 {
                0.0
            } else {
                s.nonempty as f64 / n
            },
            timeline: s.timeline.finish(),
            bucket_ns: s.timeline.width,
        }
    }
}

impl Analysis {
    /// Recomputes `completeness.complete` from the other fields.
    pub(crate) fn refresh_completeness(&mut self) {
        let c = &mut self.completeness;
        c.complete = c.dropped_events == 0
            && c.gaps.is_empty()
            && c.missing_files.is_empty()
            && c.truncated.is_none()
            && c.unpaired_events == 0
            && c.end.is_some_and(|end| end.threads_still_recording == 0);
    }
}

fn drain_ready<T>(items: &mut VecDeque<T>, ready: impl Fn(&T) -> bool) -> Vec<T> {
    let mut done = Vec::new();
    let mut kept = VecDeque::with_capacity(items.len());
    for item in items.drain(..) {
        if ready(&item) {
            done.push(item);
        } else {
            kept.push_back(item);
        }
    }
    *items = kept;
    done
}

/// Folds `other` into `into` (same worker and verdict, adjacent windows).
fn merge(into: &mut Finding, other: &Finding) {
    into.start_ns = into.start_ns.min(other.start_ns);
    into.end_ns = into.end_ns.max(other.end_ns);
    into.duration_ns = into.end_ns - into.start_ns;
    into.cpu = match (into.cpu, other.cpu) {
        // Merged windows may overlap (a wait credited late reaches back):
        // the sums are capped by the merged window, never above 100 %.
        (Some(a), Some(b)) => Some(breakdown(
            into.duration_ns,
            a.cpu_ns + b.cpu_ns,
            a.run_delay_ns.zip(b.run_delay_ns).map(|(x, y)| x + y),
            a.samples + b.samples,
        )),
        (a, b) => a.or(b),
    };
    into.global_queue_max = into.global_queue_max.max(other.global_queue_max);
    if other.queue_depth_max > into.queue_depth_max {
        into.queue_depth_max = other.queue_depth_max;
        into.queued_on = other.queued_on;
    }
    let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (x, y) => x.or(y),
    };
    into.parked_ns = add(into.parked_ns, other.parked_ns);
    into.wake_wait_ns = add(into.wake_wait_ns, other.wake_wait_ns);
}

/// Names the task of the long poll a descheduled window overlaps most.
fn annotate_descheduled(findings: &mut [Finding]) {
    let polls: Vec<Finding> = findings
        .iter()
        .filter(|f| f.verdict.is_poll())
        .cloned()
        .collect();
    for finding in findings
        .iter_mut()
        .filter(|f| f.verdict == Verdict::Descheduled && f.task_id.is_none())
    {
        let best = polls
            .iter()
            .filter(|poll| poll.worker == finding.worker)
            .map(|poll| {
                let shared = overlap(poll.start_ns, poll.end_ns, finding.start_ns, finding.end_ns);
                (shared, poll)
            })
            .filter(|(shared, _)| *shared > 0)
            .max_by_key(|(shared, _)| *shared);
        if let Some((_, poll)) = best {
            finding.task_id = poll.task_id;
            finding.spawned_at.clone_from(&poll.spawned_at);
        }
    }
}

/// Running totals of one verdict's findings.
#[derive(Debug, Default, Clone)]
struct Tally {
    count: u64,
    total_ns: u64,
    longest_ns: u64,
    workers: BTreeSet<u32>,
}

impl Tally {
    fn add(&mut self, finding: &Finding) {
        self.count += 1;
        self.total_ns += finding.duration_ns;
        self.longest_ns = self.longest_ns.max(finding.duration_ns);
        self.workers.insert(finding.worker);
    }
}

fn summarize(findings: &[Finding], omitted: &BTreeMap<Verdict, Tally>) -> Vec<VerdictSummary> {
    let mut summaries = Verdict::ALL
        .iter()
        .filter_map(|&verdict| {
            let mut tally = omitted.get(&verdict).cloned().unwrap_or_default();
            for finding in findings.iter().filter(|f| f.verdict == verdict) {
                tally.add(finding);
            }
            (tally.count > 0).then(|| VerdictSummary {
                verdict,
                count: tally.count,
                total_ns: tally.total_ns,
                longest_ns: tally.longest_ns,
                workers: tally.workers.into_iter().collect(),
            })
        })
        .collect::<Vec<_>>();
    // The dominant cause first (a stable sort keeps `Verdict::ALL`'s order
    // between equals).
    summaries.sort_by_key(|s| std::cmp::Reverse(s.total_ns));
    summaries
}

fn counts(counts: &[u64; EventType::ALL.len()]) -> EventCounts {
    let get = |ty: EventType| counts.get(ty as usize).copied().unwrap_or(0);
    EventCounts {
        poll_start: get(EventType::PollStart),
        poll_end: get(EventType::PollEnd),
        worker_park: get(EventType::WorkerPark),
        worker_unpark: get(EventType::WorkerUnpark),
        queue_sample: get(EventType::QueueSample),
        worker_sample: get(EventType::WorkerSample),
        events_dropped: get(EventType::EventsDropped),
        schedule_latency: get(EventType::ScheduleLatency),
    }
}

/// Indices missing before and between the files read.
fn missing_files(indices: &[u64]) -> Vec<u64> {
    let mut missing = Vec::new();
    let mut expected = 0u64;
    for &index in indices {
        if index > expected {
            missing.extend((expected..index).take(RING - missing.len().min(RING)));
        }
        expected = expected.max(index.saturating_add(1));
    }
    missing
}
