//! `dump_on`: the flight recorder's own judgement of when to dump. The
//! flusher shows it every event it moves; it watches poll durations
//! (PollStart to PollEnd per worker) and run-queue wait (the cumulative
//! `run_delay_nanos` of a worker's readings), so the hot path does nothing
//! extra.

use crate::config::{DumpTrigger, DumpWhen};
use pulse_trace::RecordedEvent;
use std::collections::HashMap;

/// What the watch reads of an event: the flusher finds these in pulse's
/// compact records without building the events (`Records::watched`), and
/// [`Watched::of`] takes them from events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watched {
    PollStart {
        timestamp_nanos: u64,
        worker: u32,
    },
    PollEnd {
        timestamp_nanos: u64,
        worker: u32,
    },
    /// A park's, unpark's or sample's cumulative run-queue wait.
    RunDelay {
        timestamp_nanos: u64,
        worker: u32,
        run_delay_nanos: u64,
    },
}

impl Watched {
    /// What the watch reads of `event`, if anything.
    pub(crate) fn of(event: &RecordedEvent) -> Option<Watched> {
        match *event {
            RecordedEvent::PollStart {
                timestamp_nanos,
                worker,
                ..
            } => Some(Watched::PollStart {
                timestamp_nanos,
                worker,
            }),
            RecordedEvent::PollEnd {
                timestamp_nanos,
                worker,
                ..
            } => Some(Watched::PollEnd {
                timestamp_nanos,
                worker,
            }),
            RecordedEvent::WorkerPark {
                timestamp_nanos,
                worker,
                run_delay_nanos: Some(run_delay_nanos),
                ..
            }
            | RecordedEvent::WorkerUnpark {
                timestamp_nanos,
                worker,
                run_delay_nanos: Some(run_delay_nanos),
                ..
            }
            | RecordedEvent::WorkerSample {
                timestamp_nanos,
                worker,
                run_delay_nanos: Some(run_delay_nanos),
                ..
            } => Some(Watched::RunDelay {
                timestamp_nanos,
                worker,
                run_delay_nanos,
            }),
            _ => None,
        }
    }
}

/// One worker's last reading, for `descheduled>`.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    timestamp_nanos: u64,
    run_delay_nanos: u64,
    /// Run-queue wait accumulated over consecutive stretches that were
    /// mostly spent waiting for a CPU.
    waiting_nanos: u64,
}

/// Watches events for the configured triggers.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    triggers: Vec<DumpTrigger>,
    /// Per worker index, the start of its poll in progress (a vector:
    /// looked up at every poll).
    poll_started: Vec<Option<u64>>,
    /// The shortest poll a trigger fires on (ns; `u64::MAX` without poll
    /// triggers): most polls are shorter, and stop at one comparison.
    shortest_firing_poll: u64,
    readings: HashMap<u32, Reading>,
}

/// Workers with a higher index are not watched for long polls (Tokio's
/// worker indices are below the worker count).
const MAX_WATCHED_WORKERS: usize = 1 << 16;

/// A trigger that fired, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fired {
    pub(crate) trigger: DumpTrigger,
    pub(crate) worker: u32,
    pub(crate) timestamp_nanos: u64,
    pub(crate) measured_nanos: u64,
}

impl Watch {
    pub(crate) fn new(triggers: Vec<DumpTrigger>) -> Watch {
        let shortest_firing_poll = triggers
            .iter()
            .filter(|t| t.when == DumpWhen::Poll)
            .map(|t| t.threshold_ms.saturating_mul(1_000_000))
            .min()
            .unwrap_or(u64::MAX);
        Watch {
            triggers,
            shortest_firing_poll,
            ..Watch::default()
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.triggers.is_empty()
    }

    /// Looks at `events` (one thread's, in order); returns the first
    /// trigger they fire.
    pub(crate) fn observe(&mut self, events: &[RecordedEvent]) -> Option<Fired> {
        let mut fired = None;
        for watched in events.iter().filter_map(Watched::of) {
            let hit = self.observe_one(watched);
            fired = fired.or(hit);
        }
        fired
    }

    /// Looks at one event's [`Watched`] facts; returns the trigger it
    /// fires, if any.
    #[inline(always)]
    pub(crate) fn observe_one(&mut self, watched: Watched) -> Option<Fired> {
        match watched {
            Watched::PollStart {
                timestamp_nanos,
                worker,
            } => {
                if let Some(started) = self.poll_started_mut(worker) {
                    *started = Some(timestamp_nanos);
                }
                None
            }
            Watched::PollEnd {
                timestamp_nanos,
                worker,
            } => {
                let start = self.poll_started_mut(worker)?.take()?;
                let took = timestamp_nanos.saturating_sub(start);
                if took < self.shortest_firing_poll {
                    return None;
                }
                self.check(DumpWhen::Poll, worker, timestamp_nanos, took)
            }
            Watched::RunDelay {
                timestamp_nanos,
                worker,
                run_delay_nanos,
            } => self
                .reading(worker, timestamp_nanos, run_delay_nanos)
                .and_then(|waited| {
                    self.check(DumpWhen::Descheduled, worker, timestamp_nanos, waited)
                }),
        }
    }

    /// The start of `worker`'s poll in progress.
    #[inline(always)]
    fn poll_started_mut(&mut self, worker: u32) -> Option<&mut Option<u64>> {
        let index = worker as usize;
        if index >= self.poll_started.len() {
            self.watch_worker(index);
        }
        self.poll_started.get_mut(index)
    }

    /// Makes room for worker index `index` (below [`MAX_WATCHED_WORKERS`]).
    #[cold]
    #[inline(never)]
    fn watch_worker(&mut self, index: usize) {
        if index < MAX_WATCHED_WORKERS {
            self.poll_started.resize(index + 1, None);
        }
    }

    /// Notes a run-queue reading; returns the wait accumulated so far when
    /// it grew.
    fn reading(&mut self, worker: u32, timestamp_nanos: u64, run_delay: u64) -> Option<u64> {
        let previous = self.readings.get(&worker).copied();
        let mut next = Reading {
            timestamp_nanos,
            run_delay_nanos: run_delay,
            waiting_nanos: 0,
        };
        let Some(previous) = previous else {
            self.readings.insert(worker, next);
            return None;
        };
        if timestamp_nanos <= previous.timestamp_nanos {
            // Readings of one worker from two threads (the sampler's and
            // the worker's own) arrive out of order: keep the later one.
            return None;
        }
        let wall = timestamp_nanos - previous.timestamp_nanos;
        let waited = run_delay.saturating_sub(previous.run_delay_nanos);
        // Mostly waiting for a CPU: the stretch counts; otherwise start over.
        next.waiting_nanos = if waited * 2 >= wall {
            previous.waiting_nanos + waited
        } else {
            0
        };
        self.readings.insert(worker, next);
        (waited > 0 && next.waiting_nanos > 0).then_some(next.waiting_nanos)
    }

    fn check(&mut self, when: DumpWhen, worker: u32, at: u64, measured: u64) -> Option<Fired> {
        let trigger = *self
            .triggers
            .iter()
            .find(|t| t.when == when && measured >= t.threshold_ms.saturating_mul(1_000_000))?;
        if when == DumpWhen::Descheduled {
            if let Some(reading) = self.readings.get_mut(&worker) {
                reading.waiting_nanos = 0;
            }
        }
        Some(Fired {
            trigger,
            worker,
            timestamp_nanos: at,
            measured_nanos: measured,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_trace::SpawnLocation;

    fn start(t: u64) -> RecordedEvent {
        RecordedEvent::PollStart {
            timestamp_nanos: t,
            worker: 1,
            local_queue: 0,
            task_id: None,
            spawned_at: SpawnLocation(std::panic::Location::caller()),
        }
    }

    fn end(t: u64) -> RecordedEvent {
        RecordedEvent::PollEnd {
            timestamp_nanos: t,
            worker: 1,
            local_queue: 0,
        }
    }

    fn sample(t: u64, run_delay: u64) -> RecordedEvent {
        RecordedEvent::WorkerSample {
            timestamp_nanos: t,
            worker: 0,
            cpu_nanos: 0,
            run_delay_nanos: Some(run_delay),
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn a_long_poll_fires_and_short_ones_do_not() {
        let mut watch = Watch::new(vec!["poll>50ms".parse().unwrap()]);
        assert_eq!(watch.observe(&[start(0), end(49 * MS)]), None);
        let fired = watch.observe(&[start(100 * MS), end(151 * MS)]).unwrap();
        assert_eq!(fired.timestamp_nanos, 151 * MS);
        assert_eq!(fired.measured_nanos, 51 * MS);
    }

    #[test]
    fn descheduled_accumulates_over_mostly_waiting_stretches() {
        let mut watch = Watch::new(vec!["descheduled>100ms".parse().unwrap()]);
        let mut fired = None;
        // 10 ms readings, 8 ms of each spent waiting for a CPU.
        for i in 0..=13 {
            fired = fired.or(watch.observe(&[sample(i * 10 * MS, i * 8 * MS)]));
        }
        let fired = fired.expect("13 stretches of 8 ms waiting pass 100 ms");
        assert_eq!(fired.timestamp_nanos, 130 * MS);
        // A stretch mostly on the CPU starts the count over.
        let mut watch = Watch::new(vec!["descheduled>100ms".parse().unwrap()]);
        let mut delay = 0;
        for i in 0..40 {
            delay += if i % 10 == 9 { 1 } else { 8 } * MS;
            assert_eq!(watch.observe(&[sample((i + 1) * 10 * MS, delay)]), None);
        }
    }
}
