//! [`AnalysisOptions`]: every threshold a verdict depends on, with its
//! default.

use std::time::Duration;

/// Default for [`AnalysisOptions::long_poll`].
pub const DEFAULT_LONG_POLL: Duration = Duration::from_millis(10);
/// Default for [`AnalysisOptions::cpu_bound_min_share`].
pub const DEFAULT_CPU_BOUND_MIN_SHARE: f64 = 0.5;
/// Default for [`AnalysisOptions::descheduled_min_share`].
pub const DEFAULT_DESCHEDULED_MIN_SHARE: f64 = 0.5;
/// Default for [`AnalysisOptions::descheduled_min_wait`].
pub const DEFAULT_DESCHEDULED_MIN_WAIT: Duration = Duration::from_millis(20);
/// Default for [`AnalysisOptions::parked_queued_min`].
pub const DEFAULT_PARKED_QUEUED_MIN: Duration = Duration::from_millis(10);
/// Default for [`AnalysisOptions::min_queue_depth`].
pub const DEFAULT_MIN_QUEUE_DEPTH: u64 = 1;
/// Default for [`AnalysisOptions::idle_max_ratio`].
pub const DEFAULT_IDLE_MAX_RATIO: f64 = 0.5;
/// Default for [`AnalysisOptions::idle_min_wall`].
pub const DEFAULT_IDLE_MIN_WALL: Duration = Duration::from_millis(10);
/// Default for [`AnalysisOptions::delay_min`].
pub const DEFAULT_DELAY_MIN: Duration = Duration::from_millis(1);
/// Default for [`AnalysisOptions::long_wait`].
pub const DEFAULT_LONG_WAIT: Duration = Duration::from_millis(10);
/// Default for [`AnalysisOptions::max_findings`].
pub const DEFAULT_MAX_FINDINGS: usize = 10_000;

/// The thresholds behind every verdict. [`Default`] gives the documented
/// defaults; the `pulse analyze` flags of the same names override them.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `long_poll` | 10 ms | a poll at least this long is classified (*blocked in a poll* or *long CPU-bound poll*) |
/// | `cpu_bound_min_share` | 0.5 | a long poll is CPU-bound when its on-CPU time is at least this share of its on-CPU plus off-CPU time (time spent waiting for a CPU is not the poll's doing and is left out) |
/// | `descheduled_min_share` | 0.5 | a stretch of a worker's time counts as *descheduled* when it was runnable but waiting for a CPU for at least this share of it |
/// | `descheduled_min_wait` | 20 ms | ... and a *descheduled* finding needs at least this much waiting in one stretch |
/// | `parked_queued_min` | 10 ms | a worker must stay parked at least this long while work is queued for *parked while work queued* |
/// | `min_queue_depth` | 1 | how many queued tasks count as "work queued" |
/// | `idle_max_ratio` | 0.5 | [`detect_idle_workers`](super::detect_idle_workers): an active period with a lower CPU / wall ratio is idle |
/// | `idle_min_wall` | 10 ms | ... if it lasted at least this long |
/// | `delay_min` | 1 ms | traces with schedule latencies: a finding delayed a task when at least this much of the task's wait to be polled lies in its window |
/// | `long_wait` | 10 ms | ... and a wait this long that no finding explains is reported (*saturated* when every worker was busy) |
/// | `max_findings` | 10 000 | findings kept in full (the rest are counted) |
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::AnalysisOptions;
/// use std::time::Duration;
///
/// let options = AnalysisOptions {
///     long_poll: Duration::from_millis(50),
///     ..AnalysisOptions::default()
/// };
/// assert_eq!(options.descheduled_min_wait, Duration::from_millis(20));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AnalysisOptions {
    /// Polls at least this long are classified.
    #[cfg_attr(
        feature = "serde",
        serde(with = "duration_ns", rename = "long_poll_ns")
    )]
    pub long_poll: Duration,
    /// On-CPU share of (on-CPU + off-CPU) time above which a long poll is
    /// CPU-bound rather than blocked.
    pub cpu_bound_min_share: f64,
    /// Share of time spent waiting for a CPU above which a worker counts as
    /// descheduled.
    pub descheduled_min_share: f64,
    /// Least waiting for a CPU in one stretch for a *descheduled* finding.
    #[cfg_attr(
        feature = "serde",
        serde(with = "duration_ns", rename = "descheduled_min_wait_ns")
    )]
    pub descheduled_min_wait: Duration,
    /// Least time a worker stays parked while work is queued for a *parked
    /// while work queued* finding.
    #[cfg_attr(
        feature = "serde",
        serde(with = "duration_ns", rename = "parked_queued_min_ns")
    )]
    pub parked_queued_min: Duration,
    /// Queue depth that counts as work queued.
    pub min_queue_depth: u64,
    /// Active periods with a lower CPU / wall ratio are idle.
    pub idle_max_ratio: f64,
    /// Active periods shorter than this are never idle.
    #[cfg_attr(
        feature = "serde",
        serde(with = "duration_ns", rename = "idle_min_wall_ns")
    )]
    pub idle_min_wall: Duration,
    /// Least part of a task's wait inside a finding's window for the
    /// finding to count it as delayed.
    #[cfg_attr(
        feature = "serde",
        serde(
            with = "duration_ns",
            rename = "delay_min_ns",
            default = "default_delay_min"
        )
    )]
    pub delay_min: Duration,
    /// Waits at least this long that no finding explains are reported.
    #[cfg_attr(
        feature = "serde",
        serde(
            with = "duration_ns",
            rename = "long_wait_ns",
            default = "default_long_wait"
        )
    )]
    pub long_wait: Duration,
    /// Findings kept in full; further ones are only counted.
    pub max_findings: usize,
}

#[cfg(feature = "serde")]
fn default_delay_min() -> Duration {
    DEFAULT_DELAY_MIN
}

#[cfg(feature = "serde")]
fn default_long_wait() -> Duration {
    DEFAULT_LONG_WAIT
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions {
            long_poll: DEFAULT_LONG_POLL,
            cpu_bound_min_share: DEFAULT_CPU_BOUND_MIN_SHARE,
            descheduled_min_share: DEFAULT_DESCHEDULED_MIN_SHARE,
            descheduled_min_wait: DEFAULT_DESCHEDULED_MIN_WAIT,
            parked_queued_min: DEFAULT_PARKED_QUEUED_MIN,
            min_queue_depth: DEFAULT_MIN_QUEUE_DEPTH,
            idle_max_ratio: DEFAULT_IDLE_MAX_RATIO,
            idle_min_wall: DEFAULT_IDLE_MIN_WALL,
            delay_min: DEFAULT_DELAY_MIN,
            long_wait: DEFAULT_LONG_WAIT,
            max_findings: DEFAULT_MAX_FINDINGS,
        }
    }
}

impl AnalysisOptions {
    pub(crate) fn long_poll_ns(&self) -> u64 {
        nanos(self.long_poll)
    }
    pub(crate) fn descheduled_min_wait_ns(&self) -> u64 {
        nanos(self.descheduled_min_wait)
    }
    pub(crate) fn parked_queued_min_ns(&self) -> u64 {
        nanos(self.parked_queued_min)
    }
    pub(crate) fn idle_min_wall_ns(&self) -> u64 {
        nanos(self.idle_min_wall)
    }
    pub(crate) fn delay_min_ns(&self) -> u64 {
        nanos(self.delay_min)
    }
    pub(crate) fn long_wait_ns(&self) -> u64 {
        nanos(self.long_wait)
    }
    /// `min_queue_depth`, at least 1: an empty queue is never "work queued".
    pub(crate) fn queue_threshold(&self) -> u64 {
        self.min_queue_depth.max(1)
    }
}

/// A duration in whole nanoseconds, saturating.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(feature = "serde")]
mod duration_ns {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(super::nanos(*d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_nanos)
    }
}
