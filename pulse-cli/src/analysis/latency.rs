//! Schedule latencies (issue 18): how long each task waited between being
//! scheduled (spawned, woken, yielded) and being polled, as Tokio measured
//! it and the trace's `ScheduleLatency` records carry it, tied to the
//! findings that caused the waits.
//!
//! A poll's wait is the interval `[poll start - latency, poll start]`. A
//! finding *delayed* a task when at least `delay_min` of that task's wait
//! falls inside the finding's window (a *parked while work queued* finding
//! is [confirmed](Finding::confirmed_by_delays) when one task waited at
//! least `parked_queued_min` inside it); the finding's [`DelayImpact`] counts
//! those tasks, adds up the parts of their waits inside the window and
//! keeps the longest, and says whether the finding's own worker polled
//! them once free (they waited in its LIFO slot or local queue) or another
//! worker did (stolen, or taken from the global queue).
//!
//! Waits of at least `long_wait` that no finding's window holds at least
//! half of are *unexplained*. Runs of them (waits less than 50 ms apart)
//! during which every worker was busy (parked for at most 10 % of the run)
//! become [`Verdict::Saturated`] findings: too
//! much work for the workers. The others stay counted as unexplained.
//!
//! Memory: one fixed-size histogram (about 15 KiB) per worker and per
//! spawn site (at most [`MAX_SITES`] sites, the rest pooled in one row
//! without a site), and the waits of at least `delay_min` (24 bytes each)
//! plus the parks of at least 1 ms (16 bytes), each up to [`MAX_KEPT`]:
//! under 15 MiB in all, whatever the trace's length. Waits beyond that
//! count in the distributions but not in impacts, and
//! [`ScheduleLatencyStats::waits_not_kept`] says how many; later parks are
//! not kept (a stretch is then judged on the parks kept).

use super::findings::{Finding, Verdict};
use super::histogram::Histogram;
use pulse_trace::{LocationId, TraceEvent};
use std::collections::{BTreeMap, HashMap};

/// Spawn sites with their own distribution; later ones are pooled.
///
/// ```
/// assert!(pulse_cli::analysis::latency::MAX_SITES >= 256);
/// ```
pub const MAX_SITES: usize = 256;
/// Waits (and, separately, parks) kept for the impact computation.
///
/// ```
/// assert!(pulse_cli::analysis::latency::MAX_KEPT >= 1 << 18);
/// ```
pub const MAX_KEPT: usize = 1 << 18;
/// Parks at least this long are kept, to tell a saturated runtime (every
/// worker busy) from one with idle workers.
const PARK_KEPT_MIN_NS: u64 = 1_000_000;
/// Unexplained waits this close together form one stretch.
const STRETCH_GAP_NS: u64 = 50_000_000;
/// A stretch is saturated when no worker was parked for more than this
/// share of it.
const SATURATED_MAX_PARKED_SHARE: f64 = 0.1;

/// How many tasks a finding delayed, and by how much.
///
/// ```
/// use pulse_cli::analysis::{AnalysisOptions, Analyzer, Verdict};
/// use pulse_trace::TraceEvent;
///
/// let ms = 1_000_000;
/// let mut analyzer = Analyzer::new(AnalysisOptions::default());
/// // Worker 0 polls for 50 ms; a task woken 10 ms into that poll is
/// // polled right after it: it waited 40 ms.
/// for event in [
///     TraceEvent::PollStart { timestamp_nanos: 100 * ms, worker: 0, local_queue: 0, task_id: Some(1), spawned_at: None },
///     TraceEvent::PollEnd { timestamp_nanos: 150 * ms, worker: 0, local_queue: 1 },
///     TraceEvent::PollStart { timestamp_nanos: 150 * ms, worker: 0, local_queue: 0, task_id: Some(2), spawned_at: None },
///     TraceEvent::ScheduleLatency { timestamp_nanos: 150 * ms, worker: 0, latency_nanos: 40 * ms },
///     TraceEvent::PollEnd { timestamp_nanos: 151 * ms, worker: 0, local_queue: 0 },
/// ] {
///     analyzer.push(&event);
/// }
/// let analysis = analyzer.finish(|_| None);
/// let long_poll = analysis.findings_with(Verdict::LongPoll).next().unwrap();
/// let delayed = long_poll.delayed.unwrap();
/// assert_eq!((delayed.tasks, delayed.worst_ns, delayed.on_this_worker), (1, 40 * ms, 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DelayImpact {
    /// Polls whose task waited at least `delay_min` inside the window.
    pub tasks: u64,
    /// The parts of those waits inside the window, added up.
    pub total_ns: u64,
    /// The longest part of one wait inside the window.
    pub worst_ns: u64,
    /// Of those tasks, the ones this finding's worker polled (they waited
    /// in its LIFO slot or local queue).
    pub on_this_worker: u64,
    /// The ones another worker polled (stolen from this worker, or taken
    /// from the global queue).
    pub on_other_workers: u64,
}

/// The schedule-latency distribution of one worker or one spawn site.
///
/// ```
/// use pulse_cli::analysis::{AnalysisOptions, Analyzer, Verdict};
/// use pulse_trace::TraceEvent;
///
/// let ms = 1_000_000;
/// let mut analyzer = Analyzer::new(AnalysisOptions::default());
/// // Worker 0 polls for 50 ms; a task woken 10 ms into that poll is
/// // polled right after it: it waited 40 ms.
/// for event in [
///     TraceEvent::PollStart { timestamp_nanos: 100 * ms, worker: 0, local_queue: 0, task_id: Some(1), spawned_at: None },
///     TraceEvent::PollEnd { timestamp_nanos: 150 * ms, worker: 0, local_queue: 1 },
///     TraceEvent::PollStart { timestamp_nanos: 150 * ms, worker: 0, local_queue: 0, task_id: Some(2), spawned_at: None },
///     TraceEvent::ScheduleLatency { timestamp_nanos: 150 * ms, worker: 0, latency_nanos: 40 * ms },
///     TraceEvent::PollEnd { timestamp_nanos: 151 * ms, worker: 0, local_queue: 0 },
/// ] {
///     analyzer.push(&event);
/// }
/// let analysis = analyzer.finish(|_| None);
/// let worker = &analysis.schedule_latency.unwrap().workers[0];
/// assert_eq!((worker.worker, worker.count, worker.max_ns), (Some(0), 1, 40 * ms));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LatencyDistribution {
    /// The worker (per-worker rows), else `None`.
    pub worker: Option<u32>,
    /// The spawn site (per-site rows; `None` for unknown sites and for the
    /// pooled rest beyond [`MAX_SITES`]), else `None`.
    pub spawned_at: Option<String>,
    /// Polls with a recorded latency.
    pub count: u64,
    /// Median latency (within 3 %).
    pub p50_ns: u64,
    /// 99th percentile (within 3 %).
    pub p99_ns: u64,
    /// Longest.
    pub max_ns: u64,
    /// All of them added up.
    pub total_ns: u64,
}

/// What the trace says about schedule latencies (`None` in
/// [`Analysis::schedule_latency`](super::Analysis::schedule_latency) when
/// it recorded none).
///
/// ```
/// use pulse_cli::analysis::{AnalysisOptions, Analyzer, Verdict};
/// use pulse_trace::TraceEvent;
///
/// let ms = 1_000_000;
/// let mut analyzer = Analyzer::new(AnalysisOptions::default());
/// // Worker 0 polls for 50 ms; a task woken 10 ms into that poll is
/// // polled right after it: it waited 40 ms.
/// for event in [
///     TraceEvent::PollStart { timestamp_nanos: 100 * ms, worker: 0, local_queue: 0, task_id: Some(1), spawned_at: None },
///     TraceEvent::PollEnd { timestamp_nanos: 150 * ms, worker: 0, local_queue: 1 },
///     TraceEvent::PollStart { timestamp_nanos: 150 * ms, worker: 0, local_queue: 0, task_id: Some(2), spawned_at: None },
///     TraceEvent::ScheduleLatency { timestamp_nanos: 150 * ms, worker: 0, latency_nanos: 40 * ms },
///     TraceEvent::PollEnd { timestamp_nanos: 151 * ms, worker: 0, local_queue: 0 },
/// ] {
///     analyzer.push(&event);
/// }
/// let analysis = analyzer.finish(|_| None);
/// let stats = analysis.schedule_latency.unwrap();
/// assert_eq!((stats.all.count, stats.all.p99_ns), (1, 40 * ms));
/// assert_eq!(stats.unexplained, 0, "the long poll explains the wait");
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ScheduleLatencyStats {
    /// Every poll with a latency.
    pub all: LatencyDistribution,
    /// Per worker, by index.
    pub workers: Vec<LatencyDistribution>,
    /// Per spawn site, longest tail (p99) first.
    pub spawn_sites: Vec<LatencyDistribution>,
    /// Waits of at least `long_wait` that no finding explains (saturated
    /// stretches included).
    pub unexplained: u64,
    /// The longest of them.
    pub unexplained_max_ns: u64,
    /// Of those, the waits outside saturated stretches: a worker was
    /// parked for more than 10 % of their stretch, yet no verdict says why
    /// the tasks waited (they are in no finding).
    #[cfg_attr(feature = "serde", serde(default))]
    pub unexplained_with_a_parked_worker: u64,
    /// The longest of those.
    #[cfg_attr(feature = "serde", serde(default))]
    pub unexplained_with_a_parked_worker_max_ns: u64,
    /// Waits of at least `delay_min` beyond [`MAX_KEPT`]: in the
    /// distributions, not in the findings' impacts.
    pub waits_not_kept: u64,
}

/// One wait of at least `delay_min`.
#[derive(Clone, Copy, Debug)]
struct Wait {
    /// The worker that polled the task.
    worker: u32,
    /// When the task was scheduled.
    from: u64,
    /// When its poll started.
    to: u64,
}

/// Collects latencies while the trace streams by.
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    /// Each worker's latest PollStart's spawn site.
    last_site: HashMap<u32, Option<LocationId>>,
    all: Histogram,
    total_ns: u64,
    workers: BTreeMap<u32, (Histogram, u64)>,
    sites: HashMap<Option<LocationId>, (Histogram, u64)>,
    /// Latencies of sites beyond `MAX_SITES`.
    pooled: Option<(Histogram, u64)>,
    waits: Vec<Wait>,
    waits_not_kept: u64,
    open_parks: HashMap<u32, u64>,
    parks: BTreeMap<u32, Vec<(u64, u64)>>,
    parks_kept: usize,
}

impl Latencies {
    /// Feeds an event (any kind; only polls, latencies and parks matter).
    pub(crate) fn push(&mut self, event: &TraceEvent, delay_min: u64) {
        match *event {
            TraceEvent::PollStart {
                worker, spawned_at, ..
            } => {
                self.last_site.insert(worker, spawned_at);
            }
            TraceEvent::ScheduleLatency {
                timestamp_nanos,
                worker,
                latency_nanos,
            } => self.record(worker, timestamp_nanos, latency_nanos, delay_min),
            TraceEvent::WorkerPark {
                timestamp_nanos,
                worker,
                ..
            } => {
                self.open_parks.insert(worker, timestamp_nanos);
            }
            TraceEvent::WorkerUnpark {
                timestamp_nanos,
                worker,
                ..
            } => {
                if let Some(start) = self.open_parks.remove(&worker) {
                    if timestamp_nanos.saturating_sub(start) >= PARK_KEPT_MIN_NS
                        && self.parks_kept < MAX_KEPT
                    {
                        self.parks_kept += 1;
                        self.parks
                            .entry(worker)
                            .or_default()
                            .push((start, timestamp_nanos));
                    }
                }
            }
            _ => {}
        }
    }

    fn record(&mut self, worker: u32, at: u64, latency: u64, delay_min: u64) {
        self.all.record(latency);
        self.total_ns = self.total_ns.saturating_add(latency);
        let (histogram, total) = self.workers.entry(worker).or_default();
        histogram.record(latency);
        *total = total.saturating_add(latency);
        let site = self.last_site.get(&worker).copied().flatten();
        let (histogram, total) = if self.sites.len() < MAX_SITES || self.sites.contains_key(&site) {
            self.sites.entry(site).or_default()
        } else {
            self.pooled.get_or_insert_with(Default::default)
        };
        histogram.record(latency);
        *total = total.saturating_add(latency);
        if latency >= delay_min.max(1) {
            if self.waits.len() < MAX_KEPT {
                self.waits.push(Wait {
                    worker,
                    from: at.saturating_sub(latency),
                    to: at,
                });
            } else {
                self.waits_not_kept += 1;
            }
        }
    }

    /// Whether the trace carried any latency.
    pub(crate) fn recorded(&self) -> bool {
        !self.workers.is_empty()
    }

    /// Sets every finding's impact, adds the saturated findings, and
    /// returns the statistics (`None` when the trace has no latencies).
    /// `workers`: every worker of the runtime (those without latencies can
    /// still be parked).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finish(
        mut self,
        workers: &[u32],
        findings: &mut Vec<Finding>,
        delay_min: u64,
        long_wait: u64,
        parked_queued_min: u64,
        locate: impl Fn(LocationId) -> Option<String>,
    ) -> Option<ScheduleLatencyStats> {
        if !self.recorded() {
            return None;
        }
        self.waits.sort_by_key(|w| w.to);
        // The longest wait bounds how far back a window's waits can start.
        let longest = self.waits.iter().map(|w| w.to - w.from).max().unwrap_or(0);
        for finding in findings.iter_mut() {
            finding.delayed = Some(impact(
                &self.waits,
                longest,
                finding.worker,
                finding.start_ns,
                finding.end_ns,
                delay_min,
            ));
            if finding.verdict == Verdict::ParkedWhileQueued {
                // Queue depths said work waited; a task that really waited
                // `parked_queued_min` while the worker slept confirms it.
                finding.confirmed_by_delays = finding
                    .delayed
                    .map(|impact| impact.worst_ns >= parked_queued_min.max(1));
            }
        }
        // Long waits no finding explains.
        let explained = |wait: &Wait| {
            let length = wait.to - wait.from;
            findings
                .iter()
                .any(|f| 2 * overlap(wait.from, wait.to, f.start_ns, f.end_ns) >= length)
        };
        let unexplained: Vec<Wait> = self
            .waits
            .iter()
            .filter(|w| w.to - w.from >= long_wait.max(1) && !explained(w))
            .copied()
            .collect();
        let mut stats = ScheduleLatencyStats {
            unexplained: unexplained.len() as u64,
            unexplained_max_ns: unexplained.iter().map(|w| w.to - w.from).max().unwrap_or(0),
            waits_not_kept: self.waits_not_kept,
            ..ScheduleLatencyStats::default()
        };
        for stretch in stretches(unexplained) {
            let length = stretch.end - stretch.start;
            let busy = workers.iter().all(|worker| {
                let parked: u64 = self.parks.get(worker).map_or(0, |parks| {
                    parks
                        .iter()
                        .map(|&(a, b)| overlap(a, b, stretch.start, stretch.end))
                        .sum()
                });
                (parked as f64) <= SATURATED_MAX_PARKED_SHARE * length as f64
            });
            if !busy {
                stats.unexplained_with_a_parked_worker += stretch.waits;
                stats.unexplained_with_a_parked_worker_max_ns = stats
                    .unexplained_with_a_parked_worker_max_ns
                    .max(stretch.worst);
                continue;
            }
            let mut finding = Finding::new(
                Verdict::Saturated,
                stretch.worst_worker,
                stretch.start,
                stretch.end,
            );
            finding.delayed = Some(impact(
                &self.waits,
                longest,
                stretch.worst_worker,
                stretch.start,
                stretch.end,
                delay_min,
            ));
            findings.push(finding);
        }
        findings.sort_by_key(|f| (f.start_ns, f.worker, f.verdict));

        stats.all = distribution(&self.all, self.total_ns);
        stats.workers = self
            .workers
            .iter()
            .map(|(&worker, (histogram, total))| LatencyDistribution {
                worker: Some(worker),
                ..distribution(histogram, *total)
            })
            .collect();
        let mut sites: Vec<LatencyDistribution> = self
            .sites
            .iter()
            .map(|(site, (histogram, total))| LatencyDistribution {
                spawned_at: site.and_then(&locate),
                ..distribution(histogram, *total)
            })
            .chain(
                self.pooled
                    .iter()
                    .map(|(histogram, total)| distribution(histogram, *total)),
            )
            .collect();
        sites.sort_by(|a, b| {
            (b.p99_ns, b.max_ns, b.count)
                .cmp(&(a.p99_ns, a.max_ns, a.count))
                .then_with(|| a.spawned_at.cmp(&b.spawned_at))
        });
        stats.spawn_sites = sites;
        Some(stats)
    }
}

fn distribution(histogram: &Histogram, total_ns: u64) -> LatencyDistribution {
    LatencyDistribution {
        worker: None,
        spawned_at: None,
        count: histogram.total(),
        p50_ns: histogram.quantile(0.5),
        p99_ns: histogram.quantile(0.99),
        max_ns: histogram.max(),
        total_ns,
    }
}

/// The tasks whose waits (sorted by their end) lie at least `delay_min`
/// inside `start..end`.
fn impact(
    waits: &[Wait],
    longest: u64,
    worker: u32,
    start: u64,
    end: u64,
    delay_min: u64,
) -> DelayImpact {
    let mut impact = DelayImpact::default();
    // Waits ending before `start` cannot overlap; those ending after
    // `end + longest` cannot either.
    let first = waits.partition_point(|w| w.to < start);
    let limit = end.saturating_add(longest);
    for wait in waits[first..].iter().take_while(|w| w.to <= limit) {
        let inside = overlap(wait.from, wait.to, start, end);
        if inside == 0 || inside < delay_min {
            continue;
        }
        impact.tasks += 1;
        impact.total_ns = impact.total_ns.saturating_add(inside);
        impact.worst_ns = impact.worst_ns.max(inside);
        if wait.worker == worker {
            impact.on_this_worker += 1;
        } else {
            impact.on_other_workers += 1;
        }
    }
    impact
}

fn overlap(a0: u64, a1: u64, b0: u64, b1: u64) -> u64 {
    a1.min(b1).saturating_sub(a0.max(b0))
}

/// A run of unexplained waits.
struct Stretch {
    start: u64,
    end: u64,
    worst: u64,
    worst_worker: u32,
    /// Waits in it.
    waits: u64,
}

/// Groups waits whose intervals lie less than [`STRETCH_GAP_NS`] apart.
fn stretches(mut waits: Vec<Wait>) -> Vec<Stretch> {
    waits.sort_by_key(|w| w.from);
    let mut out: Vec<Stretch> = Vec::new();
    for wait in waits {
        let length = wait.to - wait.from;
        match out.last_mut() {
            Some(last) if wait.from <= last.end.saturating_add(STRETCH_GAP_NS) => {
                last.end = last.end.max(wait.to);
                last.waits += 1;
                if length > last.worst {
                    last.worst = length;
                    last.worst_worker = wait.worker;
                }
            }
            _ => out.push(Stretch {
                start: wait.from,
                end: wait.to,
                worst: length,
                worst_worker: wait.worker,
                waits: 1,
            }),
        }
    }
    out
}
