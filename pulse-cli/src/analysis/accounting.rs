//! The accounting every verdict rests on: between two readings of one OS
//! thread, wall time = on a CPU + waiting for a CPU + asleep.
//!
//! A reading is a thread's cumulative CPU time and run-queue wait at an
//! instant. Parks, unparks and the sampler's worker samples all carry
//! readings, but a park or unpark may carry none (the recorder skips the
//! read when the thread's previous reading is recent), so every consumer
//! goes through [`reading`] and treats the result as optional.
//!
//! Readings are taken from the thread's own counters, so a stretch
//! between two of them is attributed from the counters, never from which
//! hook came last: a thread preempted inside the park hook was runnable,
//! not parked.

use pulse_trace::TraceEvent;

/// A thread's cumulative CPU time and run-queue wait at `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reading {
    /// When it was taken, in ns since the trace started.
    pub(crate) t: u64,
    /// Cumulative CPU time.
    pub(crate) cpu: u64,
    /// Cumulative run-queue wait, where recorded.
    pub(crate) run_delay: Option<u64>,
}

/// The reading an event carries: parks, unparks and worker samples have
/// one (a park or unpark may not), other events none.
pub(crate) fn reading(event: &TraceEvent) -> Option<Reading> {
    let (t, cpu, run_delay) = match *event {
        TraceEvent::WorkerPark {
            timestamp_nanos,
            cpu_nanos,
            run_delay_nanos,
            ..
        }
        | TraceEvent::WorkerUnpark {
            timestamp_nanos,
            cpu_nanos,
            run_delay_nanos,
            ..
        } => (timestamp_nanos, cpu_nanos?, run_delay_nanos),
        TraceEvent::WorkerSample {
            timestamp_nanos,
            cpu_nanos,
            run_delay_nanos,
            ..
        } => (timestamp_nanos, cpu_nanos, run_delay_nanos),
        _ => return None,
    };
    Some(Reading { t, cpu, run_delay })
}

/// How the stretch between two readings of one thread was spent. The
/// parts add up to `wall` exactly, so no share exceeds 100 %.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Split {
    pub(crate) wall: u64,
    /// On a CPU.
    pub(crate) cpu: u64,
    /// Runnable, waiting for a CPU (`None` where not recorded; then it is
    /// part of `asleep`).
    pub(crate) runnable: Option<u64>,
    /// Neither: asleep (parked, blocked in a system call, a lock).
    pub(crate) asleep: u64,
}

/// The split of the stretch `a..b` (readings of the same thread, in that
/// order). Counters that moved more than the wall time allows are capped
/// (see [`settle`] for where that excess comes from).
pub(crate) fn split(a: &Reading, b: &Reading) -> Split {
    let wall = b.t.saturating_sub(a.t);
    let cpu = b.cpu.saturating_sub(a.cpu).min(wall);
    let runnable = match (a.run_delay, b.run_delay) {
        (Some(x), Some(y)) => Some(y.saturating_sub(x).min(wall - cpu)),
        _ => None,
    };
    Split {
        wall,
        cpu,
        runnable,
        asleep: wall - cpu - runnable.unwrap_or(0),
    }
}

/// `next` with its timestamp moved to when its counters say it can have
/// been taken at the earliest: a thread cannot accumulate more CPU time
/// and run-queue wait than wall time since its previous reading `prev`.
///
/// A recorder that read the clock before the counters (traces written
/// before the park hook took its timestamp after its `schedstat` read) can
/// be preempted in between: the reading then already holds a wait that
/// came after its timestamp. Settling moves it to where the wait ended, so
/// the wait counts as runnable time before the reading, never as parked
/// time after it. For readings taken in the right order this changes
/// nothing beyond rounding.
pub(crate) fn settle(prev: Option<&Reading>, next: Reading) -> Reading {
    let Some(prev) = prev.filter(|p| p.t <= next.t) else {
        return next;
    };
    let spent =
        next.cpu
            .saturating_sub(prev.cpu)
            .saturating_add(match (prev.run_delay, next.run_delay) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => 0,
            });
    Reading {
        t: next.t.max(prev.t.saturating_add(spent)),
        ..next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: u64, cpu: u64, run_delay: u64) -> Reading {
        Reading {
            t,
            cpu,
            run_delay: Some(run_delay),
        }
    }

    #[test]
    fn the_parts_add_up_to_the_wall_time() {
        let s = split(&r(0, 0, 0), &r(100, 30, 20));
        assert_eq!(
            (s.wall, s.cpu, s.runnable, s.asleep),
            (100, 30, Some(20), 50)
        );
        // Counters beyond the wall time are capped, never a share > 100 %.
        let s = split(&r(0, 0, 0), &r(10, 8, 67));
        assert_eq!((s.cpu, s.runnable, s.asleep), (8, Some(2), 0));
    }

    #[test]
    fn a_wait_inside_the_park_hook_moves_the_reading_not_the_park() {
        // Unpark at 0; park timestamp at 10, then preempted 67 before the
        // counters were read.
        let unpark = r(0, 0, 0);
        let park = settle(Some(&unpark), r(10, 5, 67));
        assert_eq!(park.t, 72);
        // The park → unpark stretch holds no wait, and starts at 72.
        let woken = settle(Some(&park), r(100, 6, 67));
        let s = split(&park, &woken);
        assert_eq!((s.wall, s.asleep), (28, 27));
        // Readings taken in order are left alone.
        assert_eq!(settle(Some(&unpark), r(10, 5, 2)).t, 10);
    }
}
