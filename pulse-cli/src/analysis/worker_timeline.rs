//! One worker's timeline: its polls, parked spans and active periods
//! (unpark → park), paired from the worker's own events by one set of
//! rules. The analysis, the active periods ([`ActivePeriods`]), the Chrome
//! export and the viewer all take their spans from here; the viewer's
//! `export/html/timeline.js` mirrors this file (same names, same rules)
//! and a test compares the two on real traces.
//!
//! The rules, for the events of one worker in their order:
//!
//! - Time never runs backwards on a worker: an event earlier than the
//!   worker's latest one is taken at the latest.
//! - `PollStart` opens a poll. A poll still open is *cut*: its end was
//!   lost, so it ends at the worker's previous instant (counted as
//!   unpaired). A park still open ends at the `PollStart` (unpaired).
//! - `PollEnd` closes the open poll; without one it is unpaired.
//! - `ScheduleLatency` (it follows its PollStart) sets the open poll's
//!   latency; it changes nothing else.
//! - `WorkerPark` cuts an open poll, cuts a park already open at the
//!   previous instant (both unpaired), closes the active period and opens
//!   a park.
//! - `WorkerUnpark` closes the open park and opens an active period.
//! - Readings (park and unpark) are settled against the thread's previous
//!   one ([`settle`]); an active period's CPU and run-queue figures are the
//!   [`split`] of the readings at its ends, and a park's asleep time is the
//!   split of the readings around it.
//! - `WorkerThread` `runs` (a new OS thread runs the worker, after
//!   `block_in_place`): the open poll is *detached* (it ends on the old
//!   thread, later), readings and the open period are forgotten (two
//!   threads' counters are never subtracted), and an open park moves to
//!   the old thread's *retired* lane. Events older than the hand-over are
//!   the old thread's late batch: they go to the retired lane, where they
//!   only close what that thread opened. `poll_detached` ends the detached
//!   poll; the `PollEnd` at that same instant is then that poll's.
//!
//! [`ActivePeriods`]: super::ActivePeriods

use super::accounting::{reading, settle, split, Reading, Split};
use super::timeline::ActivePeriod;
use pulse_trace::{LocationId, TraceEvent, WorkerThreadKind};

/// A poll that started and has not ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpenPoll {
    pub(crate) start: u64,
    pub(crate) task_id: Option<u64>,
    pub(crate) location: Option<LocationId>,
    pub(crate) local_queue: u32,
    /// How long its task waited to be polled (its `ScheduleLatency`).
    pub(crate) latency: Option<u64>,
}

/// How a poll span ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PollEnding {
    /// Its `PollEnd`.
    Ended,
    /// Its end was lost: cut at the worker's previous instant.
    Cut,
    /// Tokio moved the worker to another thread inside the poll
    /// (`block_in_place`); it ended on the old thread.
    Detached,
    /// Ended in the old thread's late batch (retired lane).
    Retired,
}

/// A poll, start to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PollSpan {
    pub(crate) poll: OpenPoll,
    pub(crate) end: u64,
    /// The local queue at its end, where its `PollEnd` said.
    pub(crate) local_queue_end: Option<u32>,
    pub(crate) ending: PollEnding,
}

/// A park, park → unpark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParkSpan {
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// The thread's reading at the park (settled), or its latest before.
    pub(crate) before: Option<Reading>,
    /// The unpark's reading (settled); `None` for a cut or retired park.
    pub(crate) after: Option<Reading>,
    /// The old thread's park, after a hand-over: not the worker's lane.
    pub(crate) retired: bool,
}

impl ParkSpan {
    /// When the thread went to sleep, when it was woken (the end less its
    /// wait for a CPU and the hook's own CPU time), and the split of the
    /// readings around the park. `None` without both readings.
    pub(crate) fn asleep(&self) -> Option<(u64, u64, Split)> {
        let (before, after) = (self.before?, self.after?);
        let stretch = split(&before, &after);
        let from = before.t.max(self.start).min(self.end);
        let woken = (from + stretch.asleep).min(self.end);
        Some((from, woken, stretch))
    }
}

/// What one event closed.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Closed {
    pub(crate) poll: Option<PollSpan>,
    pub(crate) park: Option<ParkSpan>,
    pub(crate) period: Option<ActivePeriod>,
    /// Events whose partner is missing (lost events).
    pub(crate) unpaired: u32,
    /// The event came from the old thread's late batch.
    pub(crate) retired: bool,
    /// The event arrived earlier than the worker's latest.
    pub(crate) out_of_order: bool,
}

#[derive(Clone, Copy, Debug)]
struct OpenPeriod {
    start: u64,
    reading: Option<Reading>,
    polls: u64,
    busy: u64,
}

#[derive(Clone, Copy, Debug)]
struct OpenPark {
    start: u64,
    reading: Option<Reading>,
}

/// One worker's timeline, fed its events in their order.
#[derive(Clone, Debug, Default)]
pub(crate) struct WorkerTimeline {
    worker: u32,
    last: Option<u64>,
    poll: Option<OpenPoll>,
    park: Option<OpenPark>,
    period: Option<OpenPeriod>,
    /// The thread's latest reading, settled.
    reading: Option<Reading>,
    /// Since a thread took the worker over: the latest time of its events.
    since_runs: Option<u64>,
    /// The old thread's poll, handed over inside it (`block_in_place`).
    detached: Option<OpenPoll>,
    /// The instant the detached poll ended: the `PollEnd` then is its.
    detached_end: Option<u64>,
    /// The old thread's open park, waiting for its unpark.
    retired_park: Option<OpenPark>,
}

impl WorkerTimeline {
    /// The timeline of `worker`.
    pub(crate) fn new(worker: u32) -> Self {
        WorkerTimeline {
            worker,
            ..WorkerTimeline::default()
        }
    }

    /// The open poll, if any.
    pub(crate) fn open_poll(&self) -> Option<OpenPoll> {
        self.poll
    }

    /// The start of the open park, if any.
    pub(crate) fn open_park(&self) -> Option<u64> {
        self.park.map(|p| p.start)
    }

    /// The start of the open active period, if any.
    pub(crate) fn open_period(&self) -> Option<u64> {
        self.period.map(|p| p.start)
    }

    /// The worker's latest instant.
    pub(crate) fn last(&self) -> Option<u64> {
        self.last
    }

    /// Feeds the worker's next event; returns what it closed.
    pub(crate) fn on_event(&mut self, event: &TraceEvent) -> Closed {
        let mut closed = Closed::default();
        let raw = event.timestamp_nanos();
        if let TraceEvent::WorkerThread { kind, .. } = *event {
            self.on_thread(kind, raw, &mut closed);
            return closed;
        }
        if let TraceEvent::ScheduleLatency { latency_nanos, .. } = *event {
            // It follows its PollStart: the open poll's.
            if let Some(poll) = &mut self.poll {
                poll.latency = Some(latency_nanos);
            }
            return closed;
        }
        if !matches!(
            event,
            TraceEvent::PollStart { .. }
                | TraceEvent::PollEnd { .. }
                | TraceEvent::WorkerPark { .. }
                | TraceEvent::WorkerUnpark { .. }
        ) {
            return closed;
        }
        if self.since_runs.is_some_and(|since| raw < since) {
            closed.retired = true;
            self.retire(event, raw, &mut closed);
            return closed;
        }
        if let Some(since) = &mut self.since_runs {
            *since = (*since).max(raw);
        }
        closed.out_of_order = self.last.is_some_and(|last| raw < last);
        let previous = self.last.unwrap_or(raw);
        let t = raw.max(previous);
        self.last = Some(t);
        match *event {
            TraceEvent::PollStart {
                local_queue,
                task_id,
                spawned_at,
                ..
            } => {
                if let Some(park) = self.park.take() {
                    closed.unpaired += 1;
                    closed.park = Some(ParkSpan {
                        start: park.start,
                        end: t,
                        before: park.reading,
                        after: None,
                        retired: false,
                    });
                }
                if let Some(poll) = self.poll.take() {
                    closed.unpaired += 1;
                    closed.poll = Some(cut(poll, previous));
                }
                if let Some(period) = &mut self.period {
                    period.polls += 1;
                }
                self.poll = Some(OpenPoll {
                    start: t,
                    task_id,
                    location: spawned_at,
                    local_queue,
                    latency: None,
                });
            }
            TraceEvent::PollEnd { local_queue, .. } => {
                if self.detached_end == Some(raw) {
                    // The end of the detached poll, already closed.
                    self.detached_end = None;
                    return closed;
                }
                match self.poll.take() {
                    Some(poll) => {
                        if let Some(period) = &mut self.period {
                            period.busy += t - poll.start;
                        }
                        closed.poll = Some(PollSpan {
                            poll,
                            end: t,
                            local_queue_end: Some(local_queue),
                            ending: PollEnding::Ended,
                        });
                    }
                    None => closed.unpaired += 1,
                }
            }
            TraceEvent::WorkerPark { .. } => {
                if let Some(poll) = self.poll.take() {
                    closed.unpaired += 1;
                    closed.poll = Some(cut(poll, previous));
                }
                if let Some(park) = self.park.take() {
                    closed.unpaired += 1;
                    closed.park = Some(ParkSpan {
                        start: park.start,
                        end: previous.max(park.start),
                        before: park.reading,
                        after: None,
                        retired: false,
                    });
                }
                let now = reading(event).map(|r| settle(self.reading.as_ref(), r));
                self.reading = now.or(self.reading);
                if let Some(open) = self.period.take() {
                    // A park settled later than its timestamp waited for a
                    // CPU inside the hook: that wait is the period's.
                    let end_ns = now.map_or(t, |r| r.t.max(t)).max(open.start);
                    let (cpu_ns, run_delay_ns) = match (open.reading, now) {
                        (Some(a), Some(b)) => {
                            let s = split(&a, &b);
                            (s.cpu, s.runnable)
                        }
                        _ => (0, None),
                    };
                    closed.period = Some(ActivePeriod {
                        worker: self.worker,
                        start_ns: open.start,
                        end_ns,
                        cpu_ns,
                        run_delay_ns,
                        polls: open.polls,
                        busy_ns: open.busy,
                    });
                }
                self.park = Some(OpenPark {
                    start: t,
                    reading: self.reading,
                });
            }
            TraceEvent::WorkerUnpark { .. } => {
                let now = reading(event).map(|r| settle(self.reading.as_ref(), r));
                self.reading = now.or(self.reading);
                if let Some(park) = self.park.take() {
                    closed.park = Some(ParkSpan {
                        start: park.start,
                        end: t.max(park.start),
                        before: park.reading,
                        after: now,
                        retired: false,
                    });
                }
                self.period = Some(OpenPeriod {
                    start: now.map_or(t, |r| r.t.max(t)),
                    reading: self.reading,
                    polls: 0,
                    busy: 0,
                });
            }
            _ => {}
        }
        closed
    }

    fn on_thread(&mut self, kind: WorkerThreadKind, t: u64, closed: &mut Closed) {
        match kind {
            WorkerThreadKind::Runs => {
                // A new thread runs the worker. A poll still open is the
                // old thread's: it handed the worker over inside the poll
                // and ends later, on its own.
                if let Some(poll) = self.poll.take() {
                    self.detached = Some(poll);
                }
                self.retired_park = self.park.take();
                self.since_runs = Some(t);
                self.period = None;
                self.reading = None;
            }
            WorkerThreadKind::PollDetached => {
                self.detached_end = Some(t);
                // The new thread's records may come later in the file:
                // then the open poll is still the old thread's.
                if let Some(poll) = self.detached.take().or_else(|| self.poll.take()) {
                    closed.poll = Some(PollSpan {
                        poll,
                        end: t.max(poll.start),
                        local_queue_end: None,
                        ending: PollEnding::Detached,
                    });
                }
            }
            _ => {}
        }
    }

    /// An event of the thread that no longer runs the worker, from before
    /// the new one took over: it only closes what that thread opened.
    fn retire(&mut self, event: &TraceEvent, t: u64, closed: &mut Closed) {
        match *event {
            TraceEvent::WorkerPark { .. } => {
                self.retired_park = Some(OpenPark {
                    start: t,
                    reading: None,
                });
            }
            TraceEvent::WorkerUnpark { .. } => {
                if let Some(park) = self.retired_park.take() {
                    closed.park = Some(ParkSpan {
                        start: park.start,
                        end: t.max(park.start),
                        before: None,
                        after: None,
                        retired: true,
                    });
                }
            }
            TraceEvent::PollStart {
                local_queue,
                task_id,
                spawned_at,
                ..
            } => {
                self.detached = Some(OpenPoll {
                    start: t,
                    task_id,
                    location: spawned_at,
                    local_queue,
                    latency: None,
                });
            }
            TraceEvent::PollEnd { local_queue, .. } => {
                if let Some(poll) = self.detached.take() {
                    closed.poll = Some(PollSpan {
                        poll,
                        end: t.max(poll.start),
                        local_queue_end: Some(local_queue),
                        ending: PollEnding::Retired,
                    });
                }
            }
            _ => {}
        }
    }
}

fn cut(poll: OpenPoll, at: u64) -> PollSpan {
    PollSpan {
        poll,
        end: at.max(poll.start),
        local_queue_end: None,
        ending: PollEnding::Cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(t: u64) -> TraceEvent {
        TraceEvent::PollStart {
            timestamp_nanos: t,
            worker: 0,
            local_queue: 0,
            task_id: Some(1),
            spawned_at: None,
        }
    }
    fn end(t: u64) -> TraceEvent {
        TraceEvent::PollEnd {
            timestamp_nanos: t,
            worker: 0,
            local_queue: 0,
        }
    }
    fn park(t: u64, cpu: u64) -> TraceEvent {
        TraceEvent::WorkerPark {
            timestamp_nanos: t,
            worker: 0,
            local_queue: 0,
            cpu_nanos: Some(cpu),
            run_delay_nanos: Some(0),
        }
    }
    fn unpark(t: u64, cpu: u64) -> TraceEvent {
        TraceEvent::WorkerUnpark {
            timestamp_nanos: t,
            worker: 0,
            local_queue: 0,
            cpu_nanos: Some(cpu),
            run_delay_nanos: Some(0),
        }
    }

    #[test]
    fn pairs_polls_parks_and_periods() {
        let mut tl = WorkerTimeline::new(0);
        assert_eq!(tl.on_event(&unpark(0, 0)), Closed::default());
        tl.on_event(&start(10));
        let poll = tl.on_event(&end(30)).poll.unwrap();
        assert_eq!(
            (poll.poll.start, poll.end, poll.ending),
            (10, 30, PollEnding::Ended)
        );
        let closed = tl.on_event(&park(50, 40));
        let period = closed.period.unwrap();
        assert_eq!((period.start_ns, period.end_ns, period.cpu_ns), (0, 50, 40));
        assert_eq!((period.polls, period.busy_ns), (1, 20));
        let parked = tl.on_event(&unpark(90, 41)).park.unwrap();
        assert_eq!((parked.start, parked.end), (50, 90));
        let (from, woken, _) = parked.asleep().unwrap();
        assert_eq!((from, woken), (50, 89));
    }

    #[test]
    fn a_lost_end_cuts_the_poll_at_the_previous_instant() {
        let mut tl = WorkerTimeline::new(0);
        tl.on_event(&start(10));
        tl.on_event(&unpark(20, 0));
        let closed = tl.on_event(&start(30));
        let poll = closed.poll.unwrap();
        assert_eq!(
            (poll.end, poll.ending, closed.unpaired),
            (20, PollEnding::Cut, 1)
        );
        // Time never runs backwards.
        let closed = tl.on_event(&end(25));
        assert!(closed.out_of_order);
        assert_eq!(closed.poll.unwrap().end, 30);
    }
}
