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

/// CPU time and run-queue wait within `start..end`.
///
/// CPU time is interpolated at both edges when readings surround them (the
/// CPU clock is exact at every reading), otherwise scaled from the readings
/// inside (at least two). Run-queue wait is different: the kernel credits a
/// wait when it ends, so a reading inside a wait does not show it yet, and
/// interpolation would count the wait as off-CPU time. It is taken between
/// readings outside the window instead (the last before it, the second
/// after it): an upper bound, which errs towards "waiting" rather than
/// "blocked". `None` without enough readings.
pub(super) fn estimate(points: &VecDeque<CpuPoint>, start: u64, end: u64) -> Option<Estimate> {
    let wall = end.saturating_sub(start);
    let first_inside = points.partition_point(|p| p.t <= start);
    let past_inside = points.partition_point(|p| p.t < end);
    let samples = u32::try_from(past_inside.saturating_sub(first_inside)).unwrap_or(u32::MAX);
    // The reading after the window is the second one at or after its end:
    // a sample's timestamp is taken after its readings, so when the
    // sampler is itself starved the first one may predate the end.
    let after = points.partition_point(|p| p.t < end);
    let outside = first_inside
        .checked_sub(1)
        .and_then(|i| points.get(i))
        .zip(points.get(after + 1).or_else(|| points.get(after)));
    let (cpu, run_delay) = match (interpolate(points, start), interpolate(points, end)) {
        (Some((c0, _)), Some((c1, _))) => {
            let run_delay = outside.and_then(|(before, after)| {
                Some(after.run_delay?.saturating_sub(before.run_delay?) as f64)
            });
            ((c1 - c0).max(0.0), run_delay)
        }
        _ if samples >= 2 => {
            let first = points.get(first_inside)?;
            let last = points.get(past_inside - 1)?;
            let span = last.t.checked_sub(first.t).filter(|&s| s > 0)? as f64;
            let scale = wall as f64 / span;
            let cpu = last.cpu.saturating_sub(first.cpu) as f64 * scale;
            let run_delay = match (first.run_delay, last.run_delay) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 * scale),
                _ => None,
            };
            (cpu, run_delay)
        }
        _ => return None,
    };
    let cpu = (cpu.round() as u64).min(wall);
    let run_delay = run_delay.map(|r| (r.round() as u64).min(wall - cpu));
    let (cpu_upper, wait_upper, outer_span) = match outside {
        Some((before, after)) => (
            after.cpu.saturating_sub(before.cpu),
            match (before.run_delay, after.run_delay) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => 0,
            },
            after.t.saturating_sub(before.t),
        ),
        None => (wall, 0, wall),
    };
    // CPU time inside: at least what the readings inside show, and at
    // least what the readings outside show less the most the worker can
    // have spent on a CPU outside the window.
    let inside = match (points.get(first_inside), past_inside.checked_sub(1)) {
        (Some(first), Some(last)) if samples >= 2 => points
            .get(last)
            .map_or(0, |last| last.cpu.saturating_sub(first.cpu)),
        _ => 0,
    };
    let cpu_lower = inside.max(cpu_upper.saturating_sub(outer_span.saturating_sub(wall)));
    let off_lower = wall.saturating_sub(cpu_upper.saturating_add(wait_upper));
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
    start: u64,
    end: u64,
) -> Option<(CpuBreakdown, u64)> {
    let estimate = estimate(&series_around(points, start), start, end)?;
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
