//! [`Finding`]s: the verdicts `analyze` reaches, each with its evidence.

use std::fmt;

/// The four answers to "tasks are queued but workers look idle", plus long
/// polls that could not be classified.
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::Verdict;
///
/// assert_eq!(Verdict::BlockedInPoll.label(), "blocked in a poll");
/// assert_eq!(Verdict::BlockedInPoll.key(), "blocked_in_poll");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Verdict {
    /// A worker stayed parked while the global queue, or another worker's
    /// local queue, held tasks: a runtime scheduling problem.
    ParkedWhileQueued,
    /// A worker was runnable but waiting for a CPU (OS run queue) for a
    /// large share of a stretch of time: CPU starvation, cgroup throttling,
    /// noisy neighbours.
    Descheduled,
    /// A long poll whose thread was mostly neither on a CPU nor waiting for
    /// one: a blocking call in async code (sleep, blocking I/O, a lock).
    BlockedInPoll,
    /// A long poll that was on a CPU for most of the time it was not
    /// waiting for one.
    CpuBoundPoll,
    /// A long poll whose readings cannot tell whose doing its length was:
    /// none around it (e.g. a v5 trace), or too coarse to prove `long_poll`
    /// of its own time.
    LongPoll,
    /// A long poll that called `tokio::task::block_in_place`: Tokio moved
    /// the worker to another thread while this one ran the blocking
    /// section. Legitimate, but notable: the task held its thread (not the
    /// worker) for the whole time.
    BlockInPlace,
    /// Traces without poll events (recorded without `--cfg
    /// tokio_unstable`): a worker stayed unparked for at least `long_poll`
    /// and was mostly asleep by its readings (neither on a CPU nor waiting
    /// for one): blocked somewhere, in a task pulse cannot name. With the
    /// cfg this is a *blocked in a poll*.
    UnparkedOffCpu,
    /// Traces without poll events: a worker stayed unparked for at least
    /// `long_poll` and was mostly on a CPU. With the cfg this is a long
    /// CPU-bound poll, or many polls in a row.
    BusyWithoutParking,
    /// Tasks waited at least `long_wait` to be polled, no other finding
    /// explains it, and every worker was busy meanwhile (parked for at most
    /// 10 % of the stretch): more work than the workers could run (traces
    /// with schedule latencies; see [`super::latency`]).
    Saturated,
}

impl Verdict {
    /// Every verdict, in report order.
    pub const ALL: [Verdict; 9] = [
        Verdict::ParkedWhileQueued,
        Verdict::Descheduled,
        Verdict::BlockedInPoll,
        Verdict::CpuBoundPoll,
        Verdict::LongPoll,
        Verdict::BlockInPlace,
        Verdict::UnparkedOffCpu,
        Verdict::BusyWithoutParking,
        Verdict::Saturated,
    ];

    /// How reports name it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::ParkedWhileQueued => "parked while work queued",
            Verdict::Descheduled => "descheduled by the OS",
            Verdict::BlockedInPoll => "blocked in a poll",
            Verdict::CpuBoundPoll => "long CPU-bound poll",
            Verdict::LongPoll => "long poll (cause unknown)",
            Verdict::BlockInPlace => "block_in_place section",
            Verdict::UnparkedOffCpu => "unparked but off-CPU",
            Verdict::BusyWithoutParking => "busy without parking",
            Verdict::Saturated => "saturated",
        }
    }

    /// Its name in JSON (`"parked_while_queued"`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Verdict::ParkedWhileQueued => "parked_while_queued",
            Verdict::Descheduled => "descheduled",
            Verdict::BlockedInPoll => "blocked_in_poll",
            Verdict::CpuBoundPoll => "cpu_bound_poll",
            Verdict::LongPoll => "long_poll",
            Verdict::BlockInPlace => "block_in_place",
            Verdict::UnparkedOffCpu => "unparked_off_cpu",
            Verdict::BusyWithoutParking => "busy_without_parking",
            Verdict::Saturated => "saturated",
        }
    }

    /// Whether the verdict is about one poll (and so names a task).
    pub fn is_poll(self) -> bool {
        matches!(
            self,
            Verdict::BlockedInPoll
                | Verdict::CpuBoundPoll
                | Verdict::LongPoll
                | Verdict::BlockInPlace
        )
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.label())
    }
}

/// Where queued work waited, for [`Verdict::ParkedWhileQueued`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum QueuedOn {
    /// The runtime's global (injection) queue, as the sampler saw it.
    Global,
    /// Another worker's local run queue, as that worker's events reported it.
    Worker(u32),
}

impl fmt::Display for QueuedOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueuedOn::Global => f.write_str("the global queue"),
            QueuedOn::Worker(worker) => write!(f, "worker {worker}'s local queue"),
        }
    }
}

/// What the CPU readings around a window said, for the verdicts that
/// use them.
///
/// `cpu_ns + run_delay_ns + off_cpu_ns` is the window's wall time.
/// Values come from the sampler's per-worker CPU and run-queue readings
/// (interpolated at the window's edges) or from park/unpark readings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CpuBreakdown {
    /// Time on a CPU.
    pub cpu_ns: u64,
    /// Time runnable but waiting for a CPU; `None` when run-queue wait was
    /// not recorded (then it is part of `off_cpu_ns`).
    pub run_delay_ns: Option<u64>,
    /// The rest: neither on a CPU nor (where known) waiting for one.
    pub off_cpu_ns: u64,
    /// CPU readings inside the window: the more, the firmer the numbers.
    pub samples: u32,
}

/// One verdict about one worker over one time window, with its evidence.
///
/// Which fields are set depends on the verdict:
///
/// | field | parked while queued | descheduled | blocked / CPU-bound / long poll |
/// |---|---|---|---|
/// | `cpu` | – | yes | yes when readings exist |
/// | `task_id`, `spawned_at` | – | the long poll it overlaps, if any | the poll's task |
/// | `local_queue_start`, `local_queue_end` | – | – | this worker's local queue when the poll started and ended |
/// | `next_task_id`, `next_spawned_at` | – | – | the task this worker polled next without parking: it was queued behind the long poll (for example in Tokio's LIFO slot, which other workers cannot steal) |
/// | `other_workers_parked` | – | – | share of the window the other workers spent parked |
/// | `global_queue_max` | yes | yes | yes (largest global queue depth sampled in the window) |
/// | `queued_on`, `queue_depth_max` | where the work waited, and how much | – | – |
/// | `parked_ns`, `wake_wait_ns` | the whole park, and how long the worker then waited for a CPU after being woken (not counted in the window) | – | – |
/// | `confirmed_by_delays` | with schedule latencies: whether a task waited at least `parked_queued_min` in the window | – | – |
/// | `delayed` | every verdict, when the trace has schedule latencies: the tasks whose wait to be polled lay in the window (for *parked while work queued*, tasks that actually waited while the worker slept) | | |
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Finding {
    /// What was found.
    pub verdict: Verdict,
    /// The worker it is about.
    pub worker: u32,
    /// Window start, ns since the trace started.
    pub start_ns: u64,
    /// Window end, ns since the trace started.
    pub end_ns: u64,
    /// `end_ns - start_ns`.
    pub duration_ns: u64,
    /// Where the worker's time in the window went.
    pub cpu: Option<CpuBreakdown>,
    /// The polled task's Tokio id.
    pub task_id: Option<u64>,
    /// Where that task was spawned (`file:line:column`).
    pub spawned_at: Option<String>,
    /// This worker's local queue depth when the poll started.
    pub local_queue_start: Option<u32>,
    /// This worker's local queue depth when the poll ended.
    pub local_queue_end: Option<u32>,
    /// The task polled next on this worker, before it parked.
    pub next_task_id: Option<u64>,
    /// Where that task was spawned.
    pub next_spawned_at: Option<String>,
    /// Share (0–1) of the window the other workers spent parked, averaged
    /// over them.
    pub other_workers_parked: Option<f64>,
    /// Largest global queue depth sampled in the window.
    pub global_queue_max: Option<u64>,
    /// Where the queued work waited.
    pub queued_on: Option<QueuedOn>,
    /// The largest depth that queue showed in the window.
    pub queue_depth_max: Option<u64>,
    /// The whole park the window lies in.
    pub parked_ns: Option<u64>,
    /// How long the worker waited for a CPU after it was woken.
    pub wake_wait_ns: Option<u64>,
    /// The poll had not ended when the trace did (the window ends at the
    /// trace's last event).
    pub ongoing: bool,
    /// The most frequent stack sampled inside a poll finding (traces
    /// recorded with stacks; see [`super::stacks`]).
    pub stack: Option<super::stacks::FindingStack>,
    /// The tasks this finding delayed (traces with schedule latencies;
    /// see [`super::latency`]).
    pub delayed: Option<super::latency::DelayImpact>,
    /// *Parked while work queued* in a trace with schedule latencies:
    /// whether a task really waited at least `parked_queued_min` to be
    /// polled while this worker slept (the queue depths alone say only
    /// that work was queued).
    pub confirmed_by_delays: Option<bool>,
    /// The `tracing` spans active in the finding's window on its worker
    /// (for a poll finding, the poll's), innermost first, each name and
    /// fields once (empty without the tracing layer).
    pub spans: Vec<super::spans::FindingSpan>,
    /// Marks (`pulse::mark!`, and events the tracing layer records) in the
    /// finding's window, on any worker, at most
    /// [`MAX_MARKS_PER_FINDING`](super::spans::MAX_MARKS_PER_FINDING).
    pub marks: Vec<super::spans::FindingMark>,
}

impl Finding {
    pub(crate) fn new(verdict: Verdict, worker: u32, start_ns: u64, end_ns: u64) -> Finding {
        let end_ns = end_ns.max(start_ns);
        Finding {
            verdict,
            worker,
            start_ns,
            end_ns,
            duration_ns: end_ns - start_ns,
            cpu: None,
            task_id: None,
            spawned_at: None,
            local_queue_start: None,
            local_queue_end: None,
            next_task_id: None,
            next_spawned_at: None,
            other_workers_parked: None,
            global_queue_max: None,
            queued_on: None,
            queue_depth_max: None,
            parked_ns: None,
            wake_wait_ns: None,
            ongoing: false,
            stack: None,
            delayed: None,
            confirmed_by_delays: None,
            spans: Vec::new(),
            marks: Vec::new(),
        }
    }

    /// Whether the window overlaps `start_ns..end_ns`.
    ///
    /// ```
    /// use pulse_cli::analysis::{AnalysisOptions, Analyzer};
    /// use pulse_trace::TraceEvent;
    ///
    /// let ms = 1_000_000;
    /// let mut analyzer = Analyzer::new(AnalysisOptions::default());
    /// analyzer.push(&TraceEvent::PollStart { timestamp_nanos: 100 * ms, worker: 0, local_queue: 0, task_id: None, spawned_at: None });
    /// analyzer.push(&TraceEvent::PollEnd { timestamp_nanos: 150 * ms, worker: 0, local_queue: 0 });
    /// let finding = &analyzer.finish(|_| None).findings[0];
    /// assert!(finding.overlaps(0, 120 * ms));
    /// assert!(!finding.overlaps(150 * ms, 200 * ms));
    /// ```
    pub fn overlaps(&self, start_ns: u64, end_ns: u64) -> bool {
        self.start_ns < end_ns && start_ns < self.end_ns
    }
}
