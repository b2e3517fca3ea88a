//! Active periods (a worker's unpark → park, paired by the one
//! [`WorkerTimeline`](super::worker_timeline) every consumer uses) and the
//! seed design's idle worker detection: periods whose scheduling ratio (CPU time / wall time)
//! is low were unparked but not running.

use super::options::AnalysisOptions;
use super::worker_timeline::WorkerTimeline;
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
///     cpu_nanos: Some(500),
///     run_delay_nanos: None,
/// };
/// let park = TraceEvent::WorkerPark {
///     timestamp_nanos: 1_000,
///     worker: 1,
///     local_queue: 0,
///     cpu_nanos: Some(1_400),
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
    workers: BTreeMap<u32, WorkerTimeline>,
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
            let timeline = self
                .workers
                .entry(worker)
                .or_insert_with(|| WorkerTimeline::new(worker));
            if let Some(period) = timeline.on_event(&event).period {
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
    let mut failure = None;
    let periods = ActivePeriods::new(events.into_iter().map_while(|event| match event {
        Ok(event) => Some(event),
        Err(err) => {
            failure = Some(err);
            None
        }
    }))
    .collect::<Vec<_>>();
    match failure {
        Some(err) => Err(err),
        None => Ok(periods),
    }
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
