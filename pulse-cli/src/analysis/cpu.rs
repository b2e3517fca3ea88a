//! A worker's CPU readings (thread CPU time and run-queue wait, from the
//! sampler) and what they say about a window of its time.

use super::findings::CpuBreakdown;
use std::collections::VecDeque;

/// A cumulative CPU and run-queue reading of one worker thread.
#[derive(Clone, Copy, Debug)]
pub(super) struct CpuPoint {
    pub(super) t: u64,
    pub(super) cpu: u64,
    pub(super) run_delay: Option<u64>,
    /// Which thread's series (readings of two threads are never compared).
    pub(super) series: u32,
    /// The OS thread, where the trace names it (`WorkerThread` records).
    pub(super) tid: Option<u32>,
}

/// The readings of the one thread whose series holds `start` (the series
/// of the last reading at or before it, else of the first one after).
pub(super) fn series_around(points: &VecDeque<CpuPoint>, start: u64) -> VecDeque<CpuPoint> {
    let i = points.partition_point(|p| p.t <= start);
    let Some(series) = points
        .get(i.wrapping_sub(1))
        .or_else(|| points.get(i))
        .map(|p| p.series)
    else {
        return VecDeque::new();
    };
    points
        .iter()
        .filter(|p| p.series == series)
        .copied()
        .collect()
}

/// The readings of the series holding `start` (see [`series_around`]),
/// with the worker's own park and unpark readings of the same OS thread
/// around `start..end` merged in, in time order.
///
/// The sampler reads a worker thread from outside every `sample_ms`, but
/// on a loaded machine it is starved itself: its readings come late and
/// far apart, and its first may come long after the worker started. The
/// worker's own readings at its parks and unparks pin the counters where
/// the thread actually was. They are merged only where the trace names
/// the thread of both (a reused or unknown thread id is never guessed):
/// from the last one at or before `start` to the second after `end`.
pub(super) fn merged(
    points: &VecDeque<CpuPoint>,
    own: &VecDeque<CpuPoint>,
    start: u64,
    end: u64,
) -> VecDeque<CpuPoint> {
    let mut series = series_around(points, start);
    let Some((id, Some(tid))) = series.front().map(|p| (p.series, p.tid)) else {
        return series;
    };
    let from = own.partition_point(|p| p.t <= start).saturating_sub(1);
    let to = (own.partition_point(|p| p.t < end) + 2).min(own.len());
    let extra: Vec<CpuPoint> = own
        .range(from.min(to)..to)
        .filter(|p| p.tid == Some(tid))
        .map(|p| CpuPoint { series: id, ..*p })
        .collect();
    if extra.is_empty() {
        return series;
    }
    series.extend(extra);
    series.make_contiguous().sort_by_key(|p| p.t);
    // One reading per instant (a sample taken with a park keeps the first),
    // and counters that never run backwards: every reading holds the
    // counters as of its timestamp or earlier (a starved sampler stamps its
    // readings late), so one below an earlier reading's was read before
    // that one, and its timestamp says nothing; it is left out.
    let mut out: VecDeque<CpuPoint> = VecDeque::with_capacity(series.len());
    for p in series {
        let fits = out.back().is_none_or(|last| {
            last.t < p.t
                && last.cpu <= p.cpu
                && match (last.run_delay, p.run_delay) {
                    (Some(a), Some(b)) => a <= b,
                    _ => true,
                }
        });
        if fits {
            out.push_back(p);
        }
    }
    out
}

/// A poll's CPU time and run-queue wait from its worker's readings.
#[derive(Clone, Copy, Debug)]
pub(super) struct Estimate {
    pub(super) cpu: u64,
    pub(super) run_delay: Option<u64>,
    pub(super) samples: u32,
    /// Time the readings prove was the window's own (on a CPU, or off it
    /// without waiting for one): a lower bound of its CPU time, plus the
    /// wall time that the readings around it cannot explain as CPU time
    /// or waiting. Interpolation spreads a worker's CPU time evenly over a
    /// sample interval, so a short poll among busy ones can look
    /// CPU-bound; this bound cannot.
    pub(super) own_lower: u64,
}

/// The readings at `x`, linearly interpolated between the two around it.
pub(super) fn interpolate(points: &VecDeque<CpuPoint>, x: u64) -> Option<(f64, Option<f64>)> {
    let i = points.partition_point(|p| p.t < x);
    let after = points.get(i)?;
    if after.t == x {
        return Some((after.cpu as f64, after.run_delay.map(|r| r as f64)));
    }
    let before = points.get(i.checked_sub(1)?)?;
    let f = (x - before.t) as f64 / (after.t - before.t) as f64;
    let lerp = |a: u64, b: u64| a as f64 + f * b.saturating_sub(a) as f64;
    let run_delay = match (before.run_delay, after.run_delay) {
        (Some(a), Some(b)) => Some(lerp(a, b)),
        _ => None,
    };
    Some((lerp(before.cpu, after.cpu), run_delay))
}

/// The run-queue wait that had accrued by reading `i`, as far as the
/// readings up to `horizon` show: at least its own counter, and at least
/// what a later reading `j` credited less the most the thread can have
/// waited between the two (their wall time less its CPU time).
///
/// The kernel credits a wait when it ends (when the thread gets a CPU
/// back), so a reading taken during a long runnable wait shows neither
/// CPU time nor waiting, as if the thread slept; the reading after the
/// wait then credits more than its own stretch can hold. The excess is
/// carried back over the stretches before it, where it was spent. This is
/// a lower bound of the wait, exact for one contiguous wait.
pub(super) fn accrued(points: &VecDeque<CpuPoint>, i: usize, horizon: usize) -> Option<u64> {
    let at = points.get(i)?;
    let mut accrued = at.run_delay?;
    for later in points.range(i + 1..=horizon.min(points.len().saturating_sub(1))) {
        let Some(credited) = later.run_delay else {
            continue;
        };
        let room = later
            .t
            .saturating_sub(at.t)
            .saturating_sub(later.cpu.saturating_sub(at.cpu));
        accrued = accrued.max(credited.saturating_sub(room));
    }
    Some(accrued)
}

/// CPU time and run-queue wait within `start..end`.
///
/// CPU time is interpolated at both edges when readings surround them (the
/// CPU clock is exact at every reading), otherwise scaled from the readings
/// inside (at least two). Run-queue wait is different: the kernel credits a
/// wait when it ends, so a reading inside a wait does not show it yet, and
/// interpolation would count the wait as off-CPU time. It is taken between
/// readings outside the window instead (the last before it, the second
/// after it): an upper bound, which errs towards "waiting" rather than
/// "blocked", less what had already accrued before the window
/// ([`accrued`]). Without a reading before the window it is scaled from
/// the wait that accrued between the readings inside. `None` without
/// enough readings.
pub(super) fn estimate(points: &VecDeque<CpuPoint>, start: u64, end: u64) -> Option<Estimate> {
    let wall = end.saturating_sub(start);
    let first_inside = points.partition_point(|p| p.t <= start);
    let past_inside = points.partition_point(|p| p.t < end);
    let samples = u32::try_from(past_inside.saturating_sub(first_inside)).unwrap_or(u32::MAX);
    // The reading after the window is the second one at or after its end:
    // a sample's timestamp is taken after its readings, so when the
    // sampler is itself starved the first one may predate the end.
    let after = past_inside;
    let after = [after + 1, after].into_iter().find(|&i| i < points.len());
    let before = first_inside.checked_sub(1);
    // Waits are carried back from readings up to the one after the window
    // (every wait inside a window that ends on a CPU is credited by then).
    let horizon = after.unwrap_or(points.len().saturating_sub(1));
    let accrued = |i: usize| accrued(points, i, horizon);
    let (cpu, run_delay) = match (interpolate(points, start), interpolate(points, end)) {
        (Some((c0, _)), Some((c1, _))) => {
            let run_delay = before.zip(after).and_then(|(b, a)| {
                Some(points.get(a)?.run_delay?.saturating_sub(accrued(b)?) as f64)
            });
            ((c1 - c0).max(0.0), run_delay)
        }
        _ if samples >= 2 => {
            let first = points.get(first_inside)?;
            let last = points.get(past_inside - 1)?;
            let span = last.t.checked_sub(first.t).filter(|&s| s > 0)? as f64;
            let scale = wall as f64 / span;
            let cpu = last.cpu.saturating_sub(first.cpu) as f64 * scale;
            let run_delay = match (accrued(first_inside), accrued(past_inside - 1)) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 * scale),
                _ => None,
            };
            (cpu, run_delay)
        }
        _ => return None,
    };
    let cpu = (cpu.round() as u64).min(wall);
    let run_delay = run_delay.map(|r| (r.round() as u64).min(wall - cpu));
    // The readings that bound the window most closely (outside it where
    // there are such, else the first and last inside): what they show
    // between them, and the time outside the window they span. The parts
    // of the window they do not cover may have been anything.
    let lo = before.unwrap_or(first_inside);
    let hi = after.unwrap_or(past_inside.saturating_sub(1));
    let bounds = match (points.get(lo), points.get(hi)) {
        (Some(b), Some(a)) if b.t < a.t => {
            let outside = start.saturating_sub(b.t) + a.t.saturating_sub(end);
            let uncovered = b.t.saturating_sub(start) + end.saturating_sub(a.t);
            let waited = match (accrued(lo), a.run_delay) {
                (Some(x), Some(y)) => y.saturating_sub(x),
                _ => 0,
            };
            Some((a.cpu.saturating_sub(b.cpu), waited, outside, uncovered))
        }
        _ => None,
    };
    // CPU time inside: at least what the readings inside show, and at
    // least what the readings around it show less the most the worker can
    // have spent on a CPU outside the window.
    let inside = match (points.get(first_inside), past_inside.checked_sub(1)) {
        (Some(first), Some(last)) if samples >= 2 => points
            .get(last)
            .map_or(0, |last| last.cpu.saturating_sub(first.cpu)),
        _ => 0,
    };
    let cpu_lower = bounds
        .map_or(0, |(cpu, _, outside, _)| cpu.saturating_sub(outside))
        .max(inside)
        .min(wall);
    // Off a CPU without waiting for one: at least the covered part of the
    // window less all the CPU time and waiting the readings show.
    let off_lower = bounds.map_or(0, |(cpu, waited, _, uncovered)| {
        wall.saturating_sub(uncovered)
            .saturating_sub(cpu.saturating_add(waited))
    });
    Some(Estimate {
        cpu,
        run_delay,
        samples,
        own_lower: (cpu_lower + off_lower).min(wall),
    })
}

/// A window's CPU, run-queue and off-CPU figures from its worker's
/// sampler readings: the one computation behind every per-poll figure
/// (the findings, the JSON, the Chrome export's arguments; the viewer's
/// `timeline.js` mirrors it as `windowFigures`). Also returns the time the
/// readings prove was the window's own (see [`Estimate::own_lower`]).
/// `None` without enough readings.
pub(super) fn window_figures(
    points: &VecDeque<CpuPoint>,
    own: &VecDeque<CpuPoint>,
    start: u64,
    end: u64,
) -> Option<(CpuBreakdown, u64)> {
    let estimate = estimate(&merged(points, own, start, end), start, end)?;
    let wall = end.saturating_sub(start);
    Some((
        breakdown(wall, estimate.cpu, estimate.run_delay, estimate.samples),
        estimate.own_lower,
    ))
}

/// `cpu` and `run_delay` capped so the parts add up to `wall`.
pub(super) fn breakdown(wall: u64, cpu: u64, run_delay: Option<u64>, samples: u32) -> CpuBreakdown {
    let cpu = cpu.min(wall);
    let run_delay = run_delay.map(|r| r.min(wall - cpu));
    CpuBreakdown {
        cpu_ns: cpu,
        run_delay_ns: run_delay,
        off_cpu_ns: wall - cpu - run_delay.unwrap_or(0),
        samples,
    }
}
