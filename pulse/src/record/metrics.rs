//! Live per-worker metrics, batched as Tokio's `MetricsBatch` does.
//!
//! The recording hooks already see every poll and park, with timestamps, so
//! pulse keeps running totals per worker as a by-product: poll count, busy
//! time (sum of poll durations), parks, park/unpark transitions, no-op
//! unparks, the local-queue high-water mark and a poll-duration histogram.
//! Each thread accumulates into a plain batch in its thread-local state and
//! adds the batch to its worker's cache-padded atomics only at park, when its
//! event buffer is handed over, and every `submit_every` polls, so the
//! per-poll cost is a few non-atomic adds and the atomics are touched once
//! per batch, by one thread.
//!
//! Read them with [`RecordingHandle::metrics`](crate::RecordingHandle::metrics)
//! at any time, without a trace file; [`MetricsSnapshot::delta`] gives the
//! change between two readings.

// Without `--cfg tokio_unstable` there are no poll hooks: the poll side of
// the hot path is compiled (for `pulse::bench`) but not called.
#![cfg_attr(not(any(tokio_unstable, feature = "bench")), allow(dead_code))]

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Most buckets a poll-duration histogram may have.
pub const MAX_HISTOGRAM_BUCKETS: usize = 32;

/// The layout of the poll-duration histogram: logarithmic buckets.
///
/// Bucket 0 holds polls shorter than `first_bucket_nanos`; bucket `i`
/// (for `1 <= i < buckets - 1`) holds polls in
/// `[first_bucket_nanos << (i - 1), first_bucket_nanos << i)`; the last bucket
/// holds everything longer. The default (1 µs, 20 buckets) spans 1 µs to
/// 262 ms in powers of two.
///
/// # Examples
///
/// ```
/// use pulse::metrics::HistogramLayout;
///
/// let layout = HistogramLayout::default();
/// assert_eq!(layout.bucket_of(500), 0); // 0.5 µs
/// assert_eq!(layout.bucket_of(1_000), 0); // boundaries are powers of two ns
/// assert_eq!(layout.bucket_of(1_024), 1); // [1024 ns, 2048 ns)
/// assert_eq!(layout.bucket_of(5_000_000_000), 19); // 5 s: the last bucket
/// assert_eq!(layout.bucket_range(1), (1_024, Some(2_048)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HistogramLayout {
    first_bucket_shift: u8,
    buckets: u8,
}

impl Default for HistogramLayout {
    fn default() -> Self {
        HistogramLayout {
            first_bucket_shift: 10,
            buckets: 20,
        }
    }
}

impl HistogramLayout {
    /// A layout whose first bucket ends at `first_bucket_nanos` (rounded up
    /// to a power of two) with `buckets` buckets (2 to
    /// [`MAX_HISTOGRAM_BUCKETS`]); `None` if out of range.
    pub fn new(first_bucket_nanos: u64, buckets: usize) -> Option<Self> {
        if !(2..=MAX_HISTOGRAM_BUCKETS).contains(&buckets) || first_bucket_nanos == 0 {
            return None;
        }
        let shift = first_bucket_nanos
            .checked_next_power_of_two()?
            .trailing_zeros();
        // The last boundary must fit in u64.
        if u64::from(shift) + buckets as u64 - 2 >= 64 {
            return None;
        }
        Some(HistogramLayout {
            first_bucket_shift: shift as u8,
            buckets: buckets as u8,
        })
    }

    /// Number of buckets.
    pub fn buckets(&self) -> usize {
        usize::from(self.buckets)
    }

    /// Upper bound of bucket 0, in nanoseconds.
    pub fn first_bucket_nanos(&self) -> u64 {
        1 << self.first_bucket_shift
    }

    /// The bucket a poll of `nanos` falls in.
    #[inline]
    pub fn bucket_of(&self, nanos: u64) -> usize {
        let scaled = nanos >> self.first_bucket_shift;
        let bucket = (u64::BITS - scaled.leading_zeros()) as usize;
        bucket.min(usize::from(self.buckets) - 1)
    }

    /// The number of significant bits of `nanos` in first-bucket units:
    /// [`bucket_of`](Self::bucket_of) before its clamp to the last bucket
    /// (`bucket_of(n) == significant_bits(n).min(buckets - 1)`), in two
    /// instructions (`lea`, `bsr`). Exact below 2^63 ns (292 years).
    #[inline]
    pub(crate) fn significant_bits(&self, nanos: u64) -> usize {
        let scaled = nanos >> self.first_bucket_shift;
        // The highest set bit of `2 * scaled + 1` is `scaled`'s bit count.
        ((scaled << 1) | 1).ilog2() as usize
    }

    /// The `[low, high)` range of bucket `i` in nanoseconds (`high` is
    /// `None` for the last bucket).
    pub fn bucket_range(&self, i: usize) -> (u64, Option<u64>) {
        let first = self.first_bucket_nanos();
        let low = if i == 0 { 0 } else { first << (i - 1) };
        let high = (i + 1 < self.buckets()).then(|| first << i);
        (low, high)
    }
}

/// One worker's totals since the recording started.
///
/// ```
/// use pulse::{Config, Recorder, WriterConfig};
///
/// let config = Config::new().writer(WriterConfig::Null);
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// builder.worker_threads(2);
/// let (runtime, guard) = Recorder::from_config(builder, &config)?;
/// runtime.block_on(async { tokio::spawn(async {}).await.unwrap() });
/// drop(runtime);
/// let workers = guard.metrics().workers;
/// assert_eq!(workers.len(), 2);
/// # #[cfg(tokio_unstable)]
/// assert!(workers.iter().map(|w| w.polls).sum::<u64>() >= 1);
/// # Ok::<(), pulse::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// Task polls completed.
    pub polls: u64,
    /// Sum of poll durations.
    pub busy: Duration,
    /// Times the worker parked (one per `on_thread_park` call).
    pub parks: u64,
    /// Park and unpark transitions (parks + unparks; odd while parked).
    pub park_unparks: u64,
    /// Unparks after which the worker parked again without polling a task.
    pub noop_unparks: u64,
    /// Largest local-queue depth seen at a poll or park.
    pub local_queue_max: u64,
    /// Poll counts per histogram bucket (see [`MetricsSnapshot::layout`]).
    pub poll_histogram: Vec<u64>,
}

/// Every worker's totals at one moment.
///
/// # Examples
///
/// ```
/// use pulse::{Config, Recorder, WriterConfig};
///
/// let config = Config::new().writer(WriterConfig::Null);
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// builder.worker_threads(2);
/// let (runtime, guard) = Recorder::from_config(builder, &config)?;
/// let handle = guard.handle();
/// let before = handle.metrics();
/// runtime.block_on(async {
///     for _ in 0..100 {
///         tokio::spawn(async {}).await.unwrap();
///     }
/// });
/// drop(runtime); // workers submit their last batch as they stop
/// let delta = handle.metrics().delta(&before);
/// assert_eq!(delta.total_polls(), 100);
/// # drop(guard);
/// # Ok::<(), pulse::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MetricsSnapshot {
    /// When the snapshot was read.
    pub taken_at: Instant,
    /// The histogram layout of every `poll_histogram`.
    pub layout: HistogramLayout,
    /// Per worker, by worker index.
    pub workers: Vec<WorkerMetrics>,
}

impl MetricsSnapshot {
    /// What changed between `earlier` and `self` (counters subtract;
    /// `local_queue_max` keeps `self`'s value, a high-water mark cannot be
    /// split).
    pub fn delta(&self, earlier: &MetricsSnapshot) -> MetricsSnapshot {
        let empty = WorkerMetrics::default();
        let workers = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, now)| {
                let then = earlier.workers.get(i).unwrap_or(&empty);
                WorkerMetrics {
                    polls: now.polls.saturating_sub(then.polls),
                    busy: now.busy.saturating_sub(then.busy),
                    parks: now.parks.saturating_sub(then.parks),
                    park_unparks: now.park_unparks.saturating_sub(then.park_unparks),
                    noop_unparks: now.noop_unparks.saturating_sub(then.noop_unparks),
                    local_queue_max: now.local_queue_max,
                    poll_histogram: now
                        .poll_histogram
                        .iter()
                        .enumerate()
                        .map(|(b, n)| {
                            n.saturating_sub(then.poll_histogram.get(b).copied().unwrap_or(0))
                        })
                        .collect(),
                }
            })
            .collect();
        MetricsSnapshot {
            taken_at: self.taken_at,
            layout: self.layout,
            workers,
        }
    }

    /// Polls across all workers.
    pub fn total_polls(&self) -> u64 {
        self.workers.iter().map(|w| w.polls).sum()
    }

    /// Parks across all workers.
    pub fn total_parks(&self) -> u64 {
        self.workers.iter().map(|w| w.parks).sum()
    }
}

/// A worker's shared totals. `seq` is odd while a batch is being added, so
/// readers can retry instead of seeing half a batch.
#[derive(Debug)]
struct WorkerCounters {
    seq: AtomicU64,
    polls: AtomicU64,
    busy_nanos: AtomicU64,
    parks: AtomicU64,
    park_unparks: AtomicU64,
    noop_unparks: AtomicU64,
    local_queue_max: AtomicU64,
    histogram: [AtomicU64; MAX_HISTOGRAM_BUCKETS],
}

impl WorkerCounters {
    fn new() -> Self {
        WorkerCounters {
            seq: AtomicU64::new(0),
            polls: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
            parks: AtomicU64::new(0),
            park_unparks: AtomicU64::new(0),
            noop_unparks: AtomicU64::new(0),
            local_queue_max: AtomicU64::new(0),
            histogram: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn read(&self, layout: HistogramLayout) -> WorkerMetrics {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let metrics = WorkerMetrics {
                polls: self.polls.load(Ordering::Relaxed),
                busy: Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed)),
                parks: self.parks.load(Ordering::Relaxed),
                park_unparks: self.park_unparks.load(Ordering::Relaxed),
                noop_unparks: self.noop_unparks.load(Ordering::Relaxed),
                local_queue_max: self.local_queue_max.load(Ordering::Relaxed),
                poll_histogram: self.histogram[..layout.buckets()]
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect(),
            };
            std::sync::atomic::fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return metrics;
            }
        }
    }
}

/// The shared side: one cache-padded counter block per worker.
#[derive(Debug)]
pub(crate) struct SharedMetrics {
    layout: HistogramLayout,
    submit_every: u32,
    workers: OnceLock<Box<[CachePadded<WorkerCounters>]>>,
}

impl SharedMetrics {
    pub(crate) fn new(layout: HistogramLayout, submit_every: u32) -> Self {
        SharedMetrics {
            layout,
            submit_every,
            workers: OnceLock::new(),
        }
    }

    /// Sizes the counters once the runtime (and its worker count) exists.
    /// Batches recorded before then are kept and submitted later.
    pub(crate) fn init(&self, workers: usize) {
        let _ = self.workers.get_or_init(|| {
            (0..workers.max(1))
                .map(|_| CachePadded::new(WorkerCounters::new()))
                .collect()
        });
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let workers = self
            .workers
            .get()
            .map(|w| w.iter().map(|c| c.read(self.layout)).collect())
            .unwrap_or_default();
        MetricsSnapshot {
            taken_at: Instant::now(),
            layout: self.layout,
            workers,
        }
    }

    /// Adds `batch` to its worker's counters and clears it. Keeps the batch
    /// if the counters do not exist yet (before the runtime is built) or the
    /// worker index is out of range.
    #[cold]
    pub(crate) fn submit(&self, batch: &mut MetricsBatch) {
        // Also when the batch is kept (below): a countdown restarted
        // without a clear must not make the next park look like a no-op
        // unpark's.
        batch.until_submit = self.submit_every.max(1);
        batch.polls_at_unpark = NOT_UNPARKED;
        let Some(counters) = self
            .workers
            .get()
            .and_then(|w| w.get(batch.worker as usize))
        else {
            return;
        };
        // Normally one thread per worker submits; when a worker index is
        // briefly shared (`block_in_place` hands the core to a new thread),
        // this serialises the two instead of letting a reader see a torn
        // batch.
        let mut seq = counters.seq.load(Ordering::Relaxed);
        loop {
            if seq % 2 == 1 {
                std::hint::spin_loop();
                seq = counters.seq.load(Ordering::Relaxed);
                continue;
            }
            match counters.seq.compare_exchange_weak(
                seq,
                seq + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(current) => seq = current,
            }
        }
        // Holding the odd `seq` makes this the counters' only writer, so
        // an addition is a plain load and store: no locked instruction
        // but the `seq` exchange above (a park submits every time).
        let add = |counter: &AtomicU64, value: u64| {
            if value != 0 {
                let total = counter.load(Ordering::Relaxed).wrapping_add(value);
                counter.store(total, Ordering::Relaxed);
            }
        };
        add(&counters.busy_nanos, batch.busy_nanos);
        add(&counters.parks, batch.parks);
        add(&counters.park_unparks, batch.park_unparks);
        add(&counters.noop_unparks, batch.noop_unparks);
        let queue_max = u64::from(batch.local_queue_max);
        if queue_max > counters.local_queue_max.load(Ordering::Relaxed) {
            counters.local_queue_max.store(queue_max, Ordering::Relaxed);
        }
        // Durations with more bits than the last bucket's lower edge are
        // all in the last bucket; every poll is in one entry.
        let last = self.layout.buckets() - 1;
        let (buckets, beyond) = batch.by_bits.split_at(last);
        let beyond: u64 = beyond.iter().sum();
        let mut polls = beyond;
        for (counter, &value) in counters.histogram.iter().zip(buckets) {
            polls += value;
            add(counter, value);
        }
        add(&counters.histogram[last], beyond);
        add(&counters.polls, polls);
        counters.seq.store(seq + 2, Ordering::Release);
        batch.clear();
    }
}

/// A thread's unsubmitted counts (plain integers in thread-local storage).
#[derive(Debug, Clone)]
pub(crate) struct MetricsBatch {
    pub(crate) worker: u32,
    busy_nanos: u64,
    parks: u64,
    park_unparks: u64,
    noop_unparks: u64,
    local_queue_max: u32,
    /// Polls by the number of significant bits of their duration in the
    /// layout's first-bucket units (0 for the first bucket's), up to
    /// [`MAX_HISTOGRAM_BUCKETS`] − 1: the layout's buckets before the clamp
    /// to its own last one, which [`SharedMetrics::submit`] applies (the
    /// clamp per poll is to a constant, not to the layout's count). Their
    /// sum is the batch's poll count, which therefore costs nothing per
    /// poll.
    by_bits: [u64; MAX_HISTOGRAM_BUCKETS],
    /// When the poll in progress started.
    poll_started_at: u64,
    /// `until_submit` at the last unpark (so equal at a park if no poll
    /// ended since), or [`NOT_UNPARKED`] when there was no unpark since the
    /// last park or submission (a submission after an unpark follows a
    /// poll or a worker change, so it is never a no-op's).
    polls_at_unpark: u64,
    /// Polls left before the next submission: counts down at every poll.
    until_submit: u32,
}

/// [`MetricsBatch::polls_at_unpark`] when the next park cannot end a no-op
/// unpark.
const NOT_UNPARKED: u64 = u64::MAX;

impl MetricsBatch {
    pub(crate) fn new() -> Self {
        MetricsBatch {
            worker: 0,
            busy_nanos: 0,
            parks: 0,
            park_unparks: 0,
            noop_unparks: 0,
            local_queue_max: 0,
            by_bits: [0; MAX_HISTOGRAM_BUCKETS],
            poll_started_at: 0,
            polls_at_unpark: NOT_UNPARKED,
            // The first poll submits, which sets the real count.
            until_submit: 1,
        }
    }

    /// Whether anything was counted since the last submission.
    fn is_empty(&self) -> bool {
        self.parks + self.park_unparks == 0 && self.by_bits.iter().all(|&n| n == 0)
    }

    fn clear(&mut self) {
        self.busy_nanos = 0;
        self.parks = 0;
        self.park_unparks = 0;
        self.noop_unparks = 0;
        self.local_queue_max = 0;
        self.by_bits = [0; MAX_HISTOGRAM_BUCKETS];
        self.polls_at_unpark = NOT_UNPARKED;
    }

    /// Switches to another worker index (submitting what belongs to the
    /// previous one).
    #[inline]
    pub(crate) fn set_worker(&mut self, worker: u32, shared: &SharedMetrics) {
        if self.worker != worker {
            if !self.is_empty() {
                shared.submit(self);
            }
            self.worker = worker;
        }
    }

    #[inline]
    pub(crate) fn poll_start(&mut self, now: u64) {
        self.poll_started_at = now;
    }

    /// When the poll in progress started (a span record that fills the
    /// buffer inside a poll hands it over with this).
    pub(crate) fn poll_started_at(&self) -> u64 {
        self.poll_started_at
    }

    /// A local queue depth read from Tokio for a poll's record (a record
    /// that repeats the thread's previous reading is not counted again).
    #[inline]
    pub(crate) fn queue_read(&mut self, local_queue: u32) {
        self.local_queue_max = self.local_queue_max.max(local_queue);
    }

    /// Counts a poll that took `took` nanoseconds.
    #[inline]
    pub(crate) fn poll_end(&mut self, took: u64, shared: &SharedMetrics) {
        self.busy_nanos += took;
        // The last entry holds every longer poll (the layout's last
        // bucket is at most this one).
        let bits = shared.layout.significant_bits(took);
        self.by_bits[bits.min(MAX_HISTOGRAM_BUCKETS - 1)] += 1;
        self.until_submit -= 1;
        if self.until_submit == 0 {
            shared.submit(self);
        }
    }

    #[inline]
    pub(crate) fn park(&mut self, local_queue: u32, shared: &SharedMetrics) {
        self.parks += 1;
        self.park_unparks += 1;
        if u64::from(self.until_submit) == self.polls_at_unpark {
            self.noop_unparks += 1;
        }
        self.polls_at_unpark = NOT_UNPARKED;
        self.local_queue_max = self.local_queue_max.max(local_queue);
        shared.submit(self);
    }

    #[inline]
    pub(crate) fn unpark(&mut self, local_queue: u32) {
        self.park_unparks += 1;
        self.polls_at_unpark = u64::from(self.until_submit);
        self.local_queue_max = self.local_queue_max.max(local_queue);
    }

    /// Submits whatever is pending (thread stop, buffer hand-over).
    pub(crate) fn submit_pending(&mut self, shared: &SharedMetrics) {
        if !self.is_empty() {
            shared.submit(self);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_buckets_are_powers_of_two() {
        let layout = HistogramLayout::new(1000, 5).unwrap();
        assert_eq!(layout.first_bucket_nanos(), 1024);
        let edges: Vec<_> = (0..5).map(|i| layout.bucket_range(i)).collect();
        assert_eq!(
            edges,
            vec![
                (0, Some(1024)),
                (1024, Some(2048)),
                (2048, Some(4096)),
                (4096, Some(8192)),
                (8192, None)
            ]
        );
        for (i, (low, high)) in edges.into_iter().enumerate() {
            assert_eq!(layout.bucket_of(low), i);
            if let Some(high) = high {
                assert_eq!(layout.bucket_of(high - 1), i);
            }
        }
        assert_eq!(layout.bucket_of(u64::MAX), 4);
        assert!(HistogramLayout::new(1, 1).is_none());
        assert!(HistogramLayout::new(1, MAX_HISTOGRAM_BUCKETS + 1).is_none());
        assert!(
            HistogramLayout::new(1 << 40, 30).is_none(),
            "last edge overflows"
        );
        assert!(HistogramLayout::new(0, 4).is_none());
    }

    #[test]
    fn significant_bits_clamped_is_the_bucket() {
        for layout in [
            HistogramLayout::default(),
            HistogramLayout::new(1, 2).unwrap(),
            HistogramLayout::new(1, MAX_HISTOGRAM_BUCKETS).unwrap(),
            HistogramLayout::new(1 << 20, 8).unwrap(),
        ] {
            let mut values = vec![0, 1, 2, 3, (1 << 62) + 5, u64::MAX >> 1];
            for shift in 0..63 {
                values.extend([(1u64 << shift) - 1, 1 << shift, (1 << shift) + 1]);
            }
            for nanos in values {
                let bits = layout.significant_bits(nanos);
                assert!(bits < 64);
                assert_eq!(
                    bits.min(layout.buckets() - 1),
                    layout.bucket_of(nanos),
                    "{nanos} ns in {layout:?}"
                );
            }
        }
    }

    #[test]
    fn batches_submit_every_n_polls_and_count_noop_unparks() {
        let shared = SharedMetrics::new(HistogramLayout::default(), 3);
        shared.init(1);
        let mut batch = MetricsBatch::new();
        batch.set_worker(0, &shared);
        let mut time = 0;
        let mut poll = |batch: &mut MetricsBatch, nanos: u64| {
            batch.poll_start(time);
            time += nanos;
            batch.poll_end(nanos, &shared);
        };
        // The first poll submits (the count starts then), then every third.
        poll(&mut batch, 10);
        assert_eq!(shared.snapshot().total_polls(), 1);
        poll(&mut batch, 10);
        poll(&mut batch, 10);
        assert_eq!(shared.snapshot().total_polls(), 1);
        poll(&mut batch, 1 << 40); // beyond the last bucket's edge
        let snapshot = shared.snapshot();
        assert_eq!(snapshot.total_polls(), 4);
        assert_eq!(snapshot.workers[0].poll_histogram[0], 3);
        assert_eq!(snapshot.workers[0].poll_histogram[19], 1);

        // Unpark, poll, park: not a no-op; unpark, park: a no-op; a park
        // with no unpark before it: not one either.
        batch.unpark(0);
        poll(&mut batch, 10);
        batch.park(0, &shared);
        batch.unpark(0);
        batch.park(0, &shared);
        batch.park(0, &shared);
        let worker = &shared.snapshot().workers[0];
        assert_eq!((worker.parks, worker.noop_unparks), (3, 1));
    }

    /// Two threads submitting for one worker (a worker index briefly
    /// shared after `block_in_place`) lose no count, and a reader never
    /// sees half a batch: the sequence lock makes each submission the
    /// counters' only writer (their additions are plain loads and stores).
    #[test]
    fn concurrent_submissions_for_one_worker_add_up() {
        const BATCHES: u64 = 50_000;
        let shared = SharedMetrics::new(HistogramLayout::default(), u32::MAX);
        shared.init(1);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let submitters: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        let mut batch = MetricsBatch::new();
                        batch.set_worker(0, &shared);
                        // A new batch's first poll submits alone (to start
                        // the countdown); here only parks submit, so that
                        // every submission is one poll and one park.
                        batch.until_submit = u32::MAX;
                        for _ in 0..BATCHES {
                            // One 3 ns poll and one park per submission.
                            batch.poll_start(0);
                            batch.queue_read(1);
                            batch.poll_end(3, &shared);
                            batch.park(2, &shared);
                        }
                    })
                })
                .collect();
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let w = &shared.snapshot().workers[0];
                    assert_eq!(w.busy, Duration::from_nanos(3 * w.polls), "{w:?}");
                    assert_eq!((w.parks, w.park_unparks), (w.polls, w.polls), "{w:?}");
                    assert_eq!(w.poll_histogram.iter().sum::<u64>(), w.polls, "{w:?}");
                }
            });
            for submitter in submitters {
                submitter.join().unwrap();
            }
            done.store(true, Ordering::Relaxed);
        });
        let w = &shared.snapshot().workers[0];
        assert_eq!(w.polls, 2 * BATCHES);
        assert_eq!(w.parks, 2 * BATCHES);
        assert_eq!(w.busy, Duration::from_nanos(6 * BATCHES));
        assert_eq!(w.local_queue_max, 2);
    }

    #[test]
    fn batches_reach_the_counters_and_deltas_subtract() {
        let shared = SharedMetrics::new(HistogramLayout::default(), 4);
        let mut batch = MetricsBatch::new();
        batch.set_worker(1, &shared);
        batch.poll_start(0);
        batch.queue_read(3);
        batch.queue_read(1);
        batch.poll_end(2_000, &shared);
        // Not yet submitted, and no counters before `init`: kept.
        shared.init(2);
        let before = shared.snapshot();
        assert_eq!(before.total_polls(), 0);
        batch.park(0, &shared);
        let after = shared.snapshot();
        let w = &after.workers[1];
        assert_eq!((w.polls, w.parks, w.park_unparks), (1, 1, 1));
        assert_eq!(w.busy, Duration::from_nanos(2_000));
        assert_eq!(w.local_queue_max, 3);
        assert_eq!(w.poll_histogram[1], 1, "2000 ns is in [1024, 2048)");
        let delta = after.delta(&before);
        assert_eq!(delta.total_polls(), 1);

        // An unpark followed by a park without a poll is a no-op unpark.
        batch.unpark(0);
        batch.park(0, &shared);
        assert_eq!(shared.snapshot().workers[1].noop_unparks, 1);
    }
}
