//! Queue depths over time: runs of observations showing queued work, the
//! global queue's timeline, and lookups in its recent samples.

use super::report::QueueBucket;
use std::collections::VecDeque;

/// Most buckets in the global queue timeline; the bucket width doubles to
/// stay within it.
pub(super) const TIMELINE_BUCKETS: usize = 240;

/// Consecutive observations of a queue at or above the threshold: the
/// queue held work at least from `start` to `last`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Run {
    pub(super) start: u64,
    pub(super) last: u64,
    pub(super) max: u64,
}

/// Depth over time in at most [`TIMELINE_BUCKETS`] buckets; the width
/// doubles (merging neighbours) whenever the trace outgrows them.
#[derive(Debug)]
pub(super) struct Timeline {
    pub(super) origin: Option<u64>,
    pub(super) width: u64,
    pub(super) buckets: Vec<(u64, f64, u64)>, // samples, sum, max
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            origin: None,
            width: 10_000_000,
            buckets: Vec::new(),
        }
    }
}

impl Timeline {
    pub(super) fn record(&mut self, t: u64, depth: u64) {
        let origin = *self.origin.get_or_insert(t);
        let mut index = (t.saturating_sub(origin) / self.width) as usize;
        while index >= TIMELINE_BUCKETS {
            self.width *= 2;
            let merged = self
                .buckets
                .chunks(2)
                .map(|pair| {
                    pair.iter().fold((0, 0.0, 0), |(n, s, m), &(n2, s2, m2)| {
                        (n + n2, s + s2, m.max(m2))
                    })
                })
                .collect();
            self.buckets = merged;
            index = (t.saturating_sub(origin) / self.width) as usize;
        }
        if self.buckets.len() <= index {
            self.buckets.resize(index + 1, (0, 0.0, 0));
        }
        if let Some(bucket) = self.buckets.get_mut(index) {
            bucket.0 += 1;
            bucket.1 += depth as f64;
            bucket.2 = bucket.2.max(depth);
        }
    }

    pub(super) fn finish(&self) -> Vec<QueueBucket> {
        let origin = self.origin.unwrap_or(0);
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, &(samples, sum, max))| QueueBucket {
                start_ns: origin + i as u64 * self.width,
                samples,
                max,
                mean: if samples == 0 {
                    0.0
                } else {
                    sum / samples as f64
                },
            })
            .collect()
    }
}

/// The global queue's largest sampled depth in `start..=end`.
pub(super) fn global_max_within(ring: &VecDeque<(u64, u64)>, start: u64, end: u64) -> Option<u64> {
    let first = ring.partition_point(|&(t, _)| t < start);
    ring.range(first..)
        .take_while(|&&(t, _)| t <= end)
        .map(|&(_, depth)| depth)
        .max()
}

/// The longest overlap of `start..end` with a run of consecutive global
/// queue samples at or above `threshold`: `(from, to, max depth)`.
pub(super) fn global_run_overlap(
    ring: &VecDeque<(u64, u64)>,
    start: u64,
    end: u64,
    threshold: u64,
) -> Option<(u64, u64, u64)> {
    let first = ring.partition_point(|&(t, _)| t < start).saturating_sub(1);
    let mut best: Option<(u64, u64, u64)> = None;
    let mut run: Option<Run> = None;
    let consider = |run: Run, best: &mut Option<(u64, u64, u64)>| {
        let (from, to) = (run.start.max(start), run.last.min(end));
        if to > from && best.is_none_or(|(f, t, _)| to - from > t - f) {
            *best = Some((from, to, run.max));
        }
    };
    for &(t, depth) in ring.range(first..) {
        if depth >= threshold {
            let run = run.get_or_insert(Run {
                start: t,
                last: t,
                max: depth,
            });
            run.last = t;
            run.max = run.max.max(depth);
        } else if let Some(done) = run.take() {
            consider(done, &mut best);
        }
        if t > end {
            break;
        }
    }
    if let Some(done) = run {
        consider(done, &mut best);
    }
    best
}
