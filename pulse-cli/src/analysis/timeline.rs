//! Active periods (a worker's unpark → park) and the seed design's idle
//! worker detection: periods whose scheduling ratio (CPU time / wall time)
//! is low were unparked but not running.

use super::accounting::{reading, settle, split, Reading};
use super::options::AnalysisOptions;
use pulse_trace::TraceEvent;
use std::collections::BTreeMap;

/// One stretch between a worker's unpark and its next park.
///
/// `cpu_ns` and `run_delay_ns` are the differences of the thread's
/// cumulative CPU time and run-queue wait between the two events, so
/// `wall_ns ≈ cpu_ns + run_delay_ns + off-CPU time` (blocked in a system
/// call, sleeping, waiting for a lock).
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::ActivePeriod;
///
/// let period = ActivePeriod {
///     worker: 0,
///     start_ns: 1_000,
///     end_ns: 11_000,
///     cpu_ns: 4_000,
///     run_delay_ns: Some(5_000),
///     polls: 3,
///     busy_ns: 9_000,
/// };
/// assert_eq!(period.wall_ns(), 10_000);
/// assert_eq!(period.ratio(), 0.4);
/// assert_eq!(period.off_cpu_ns(), Some(1_000));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ActivePeriod {
    /// The worker's index.
    pub worker: u32,
    /// The unpark, in ns since the trace started.
    pub start_ns: u64,
    /// The park, in ns since the trace started.
    pub end_ns: u64,
    /// Thread CPU time spent in the period.
    pub cpu_ns: u64,
    /// Time spent runnable but waiting for a CPU, where recorded.
    pub run_delay_ns: Option<u64>,
    /// Polls that started in the period.
    pub polls: u64,
    /// Time spent inside those polls.
    pub busy_ns: u64,
}

impl ActivePeriod {
    /// Wall time from unpark to park.
    pub fn wall_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// The scheduling ratio, CPU time / wall time (1 for an empty period).
    pub fn ratio(&self) -> f64 {
        match self.wall_ns() {
            0 => 1.0,
            wall => self.cpu_ns as f64 / wall as f64,
        }
    }

    /// Wall time neither on a CPU nor waiting for one, where run-queue wait
    /// was recorded.
    pub fn off_cpu_ns(&self) -> Option<u64> {
        let waited = self.run_delay_ns?;
        Some(
            self.wall_ns()
                .saturating_sub(self.cpu_ns)
                .saturating_sub(waited),
        )
    }
}

/// An open period of one worker.
#[derive(Clone, Debug)]
struct Open {
    start_ns: u64,
    /// The thread's reading at (or, without one at the unpark, before)
    /// the period's start.
    reading: Option<Reading>,
    polls: u64,
    busy_ns: u64,
}

/// Follows one worker's own events (in their order) and closes active
/// periods.
#[derive(Clone, Debug, Default)]
pub(crate) struct PeriodTracker {
    open: Option<Open>,
    poll_start: Option<u64>,
    /// The thread's latest own reading (park or unpark), settled.
    last: Option<Reading>,
}

impl PeriodTracker {
    /// Forgets the thread: another OS thread now runs the worker, and its
    /// readings cannot be compared with this one's.
    pub(crate) fn reset(&mut self) {
        *self = PeriodTracker::default();
    }

    /// Feeds one of the worker's events; returns the period a park closes.
    pub(crate) fn on_event(&mut self, event: &TraceEvent) -> Option<ActivePeriod> {
        match *event {
            TraceEvent::WorkerUnpark {
                timestamp_nanos, ..
            } => {
                let now = reading(event).map(|r| settle(self.last.as_ref(), r));
                self.last = now.or(self.last);
                self.poll_start = None;
                self.open = Some(Open {
                    start_ns: now.map_or(timestamp_nanos, |r| r.t),
                    reading: self.last,
                    polls: 0,
                    busy_ns: 0,
                });
                None
            }
            TraceEvent::WorkerPark {
                timestamp_nanos,
                worker,
                ..
            } => {
                let now = reading(event).map(|r| settle(self.last.as_ref(), r));
                self.last = now.or(self.last);
                self.poll_start = None;
                let open = self.open.take()?;
                // A park settled later than its timestamp waited for a CPU
                // inside the hook: that wait is the period's, not the park's.
                let end_ns = now
                    .map_or(timestamp_nanos, |r| r.t.max(timestamp_nanos))
                    .max(open.start_ns);
                let (cpu_ns, run_delay_ns) = match (open.reading, now) {
                    (Some(a), Some(b)) => {
                        let s = split(&a, &b);
                        (s.cpu, s.runnable)
                    }
                    _ => (0, None),
                };
                Some(ActivePeriod {
                    worker,
                    start_ns: open.start_ns,
                    end_ns,
                    cpu_ns,
                    run_delay_ns,
                    polls: open.polls,
                    busy_ns: open.busy_ns,
                })
            }
            TraceEvent::PollStart {
                timestamp_nanos, ..
            } => {
                self.poll_start = Some(timestamp_nanos);
                if let Some(open) = &mut self.open {
                    open.polls += 1;
                }
                None
            }
            TraceEvent::PollEnd {
                timestamp_nanos, ..
            } => {
                if let (Some(start), Some(open)) = (self.poll_start.take(), &mut self.open) {
                    open.busy_ns += timestamp_nanos.saturating_sub(start);
                }
                None
            }
            _ => None,
        }
    }
}

/// The active periods in a stream of events, as each one closes (at the
/// worker's park). Streams: it keeps one open period per worker.
///
/// Events must be in each worker's own order, as a trace file holds them;
/// workers may interleave freely.
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::ActivePeriods;
/// use pulse_trace::TraceEvent;
///
/// let unpark = TraceEvent::WorkerUnpark {
///     timestamp_nanos: 0,
///     worker: 1,
///     local_queue: 0,
///     cpu_nanos: 500,
///     run_delay_nanos: None,
/// };
/// let park = TraceEvent::WorkerPark {
///     timestamp_nanos: 1_000,
///     worker: 1,
///     local_queue: 0,
///     cpu_nanos: 1_400,
///     run_delay_nanos: None,
/// };
/// let periods: Vec<_> = ActivePeriods::new([unpark, park]).collect();
/// assert_eq!(periods.len(), 1);
/// assert_eq!(periods[0].cpu_ns, 900);
/// assert_eq!(periods[0].ratio(), 0.9);
/// ```
#[derive(Debug)]
pub struct ActivePeriods<I> {
    events: I,
    workers: BTreeMap<u32, PeriodTracker>,
}

impl<I: Iterator<Item = TraceEvent>> ActivePeriods<I> {
    /// Periods of `events`.
    pub fn new(events: impl IntoIterator<IntoIter = I>) -> Self {
        ActivePeriods {
            events: events.into_iter(),
            workers: BTreeMap::new(),
        }
    }
}

impl<I: Iterator<Item = TraceEvent>> Iterator for ActivePeriods<I> {
    type Item = ActivePeriod;

    fn next(&mut self) -> Option<ActivePeriod> {
        for event in self.events.by_ref() {
            let Some(worker) = event.worker() else {
                continue;
            };
            if let Some(period) = self.workers.entry(worker).or_default().on_event(&event) {
                return Some(period);
            }
        }
        None
    }
}

/// Every active period of a trace, in the order they close.
///
/// Takes anything yielding `Result<TraceEvent, E>`, such as a
/// [`TraceReader`](pulse_trace::TraceReader). For a long trace, prefer
/// [`ActivePeriods`], which does not collect.
///
/// # Errors
///
/// The first error the events yield.
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::compute_active_periods;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("trace.bin");
/// # let (rt, guard) = pulse::Recorder::build(
/// #     tokio::runtime::Builder::new_multi_thread(),
/// #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
/// # )?;
/// # rt.block_on(async { tokio::spawn(async {}).await })?;
/// # drop(rt); drop(guard);
/// let periods = compute_active_periods(pulse::trace::TraceReader::open(&path)?)?;
/// for period in &periods {
///     assert!(period.end_ns >= period.start_ns);
/// }
/// # Ok(())
/// # }
/// ```
pub fn compute_active_periods<E>(
    events: impl IntoIterator<Item = Result<TraceEvent, E>>,
) -> Result<Vec<ActivePeriod>, E> {
    let mut workers: BTreeMap<u32, PeriodTracker> = BTreeMap::new();
    let mut periods = Vec::new();
    for event in events {
        let event = event?;
        if let Some(worker) = event.worker() {
            periods.extend(workers.entry(worker).or_default().on_event(&event));
        }
    }
    Ok(periods)
}

/// Why an idle period's worker was not running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum IdleCause {
    /// Runnable but waiting for a CPU for most of the time it was not on
    /// one: the OS did not schedule it.
    Descheduled,
    /// Neither on a CPU nor waiting for one for most of that time: blocked
    /// (a blocking call inside a poll, a lock, a sleep).
    Blocked,
    /// Run-queue wait was not recorded, so the two cannot be told apart.
    Unknown,
}

/// An active period in which the worker was unparked but mostly not
/// running. See [`detect_idle_workers`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IdlePeriod {
    /// The period.
    pub period: ActivePeriod,
    /// Why the worker was not on a CPU.
    pub cause: IdleCause,
}

/// The seed design's check: active periods at least
/// [`idle_min_wall`](AnalysisOptions::idle_min_wall) long whose
/// scheduling ratio is below [`idle_max_ratio`](AnalysisOptions::idle_max_ratio),
/// each with the reason the worker was not on a CPU.
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::{detect_idle_workers, ActivePeriod, AnalysisOptions, IdleCause};
///
/// let period = |cpu_ns, run_delay_ns| ActivePeriod {
///     worker: 0,
///     start_ns: 0,
///     end_ns: 100_000_000,
///     cpu_ns,
///     run_delay_ns: Some(run_delay_ns),
///     polls: 1,
///     busy_ns: 100_000_000,
/// };
/// let periods = [
///     period(90_000_000, 0),          // busy: ratio 0.9
///     period(10_000_000, 80_000_000), // waiting for a CPU
///     period(1_000_000, 0),           // blocked
/// ];
/// let idle = detect_idle_workers(&periods, &AnalysisOptions::default());
/// let causes: Vec<_> = idle.iter().map(|i| i.cause).collect();
/// assert_eq!(causes, [IdleCause::Descheduled, IdleCause::Blocked]);
/// ```
pub fn detect_idle_workers(periods: &[ActivePeriod], options: &AnalysisOptions) -> Vec<IdlePeriod> {
    periods
        .iter()
        .filter(|p| p.wall_ns() >= options.idle_min_wall_ns() && p.ratio() < options.idle_max_ratio)
        .map(|p| IdlePeriod {
            period: p.clone(),
            cause: idle_cause(p),
        })
        .collect()
}

pub(crate) fn idle_cause(period: &ActivePeriod) -> IdleCause {
    match (period.run_delay_ns, period.off_cpu_ns()) {
        (Some(waited), Some(off)) if waited >= off => IdleCause::Descheduled,
        (Some(_), Some(_)) => IdleCause::Blocked,
        _ => IdleCause::Unknown,
    }
}
