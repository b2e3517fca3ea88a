//! The central collector: where full thread buffers wait for the flusher.
//!
//! A `Mutex<Vec<Vec<RecordedEvent>>>`, as seed 002 settles on: threads touch
//! it once per buffer (every ~1024 events), never per event. It is bounded:
//! when the writer falls behind by more than `max_pending_events`, further
//! buffers are dropped and counted, so memory stays flat and workers never
//! wait for I/O. Small hand-overs share a batch, so the memory held is
//! proportional to the events held (at most about twice their size, plus
//! one batch), however often threads hand over.

use pulse_trace::RecordedEvent;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Spare batch vectors kept for reuse, so steady-state flushing allocates
/// nothing.
const MAX_SPARE_BATCHES: usize = 64;

#[derive(Debug, Default)]
struct Pending {
    batches: Vec<Vec<RecordedEvent>>,
    events: usize,
    spare: Vec<Vec<RecordedEvent>>,
    /// Set once the flusher has been woken for the current backlog, so a
    /// burst of flushes wakes it once.
    wake_sent: bool,
    /// The flusher has been asked to stop.
    stopping: bool,
    /// Someone asked for a flush outside the schedule.
    flush_requested: bool,
}

/// Collects buffers from every thread until the flusher drains them.
#[derive(Debug)]
pub(crate) struct CentralCollector {
    pending: Mutex<Pending>,
    wake: Condvar,
    max_pending_events: usize,
    batch_capacity: usize,
    dropped: AtomicU64,
}

/// Why the flusher woke up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wake {
    pub(crate) stopping: bool,
    pub(crate) flush: bool,
}

impl CentralCollector {
    pub(crate) fn new(max_pending_events: usize, batch_capacity: usize) -> Self {
        CentralCollector {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            max_pending_events,
            batch_capacity,
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave `Pending` torn (every
        // update is a push or a counter), so recover rather than propagate.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a copy of `events`. Returns `false` (and counts them as dropped)
    /// when the backlog is full.
    pub(crate) fn accept(&self, events: &[RecordedEvent]) -> bool {
        if events.is_empty() {
            return true;
        }
        let mut pending = self.lock();
        if pending.events + events.len() > self.max_pending_events {
            drop(pending);
            self.dropped
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            return false;
        }
        // Append to the newest batch while it has room: a worker that parks
        // every few events hands over tiny buffers, and giving each its own
        // buffer-sized batch would make memory follow the number of
        // hand-overs instead of the events held. Appending keeps every
        // thread's events in order (the writer sees the same sequence).
        match pending.batches.last_mut() {
            Some(last) if last.capacity() - last.len() >= events.len() => {
                last.extend_from_slice(events);
            }
            _ => {
                let mut batch = pending
                    .spare
                    .pop()
                    .unwrap_or_else(|| Vec::with_capacity(self.batch_capacity.max(events.len())));
                batch.extend_from_slice(events);
                pending.batches.push(batch);
            }
        }
        pending.events += events.len();
        // Wake the flusher early once half the budget is used, so a burst is
        // written before it has to be dropped.
        if pending.events * 2 >= self.max_pending_events && !pending.wake_sent {
            pending.wake_sent = true;
            pending.flush_requested = true;
            drop(pending);
            self.wake.notify_one();
        }
        true
    }

    /// Takes every pending batch (a pointer swap under the lock).
    pub(crate) fn drain(&self, into: &mut Vec<Vec<RecordedEvent>>) {
        let mut pending = self.lock();
        std::mem::swap(&mut pending.batches, into);
        pending.events = 0;
        pending.wake_sent = false;
    }

    /// Returns emptied batch vectors for reuse.
    pub(crate) fn recycle(&self, batches: &mut Vec<Vec<RecordedEvent>>) {
        let mut pending = self.lock();
        for mut batch in batches.drain(..) {
            if pending.spare.len() >= MAX_SPARE_BATCHES {
                break;
            }
            batch.clear();
            pending.spare.push(batch);
        }
    }

    /// Blocks the flusher until `timeout` passes, a flush is requested, or
    /// shutdown starts.
    pub(crate) fn wait(&self, timeout: std::time::Duration) -> Wake {
        let mut pending = self.lock();
        if !pending.stopping && !pending.flush_requested && !timeout.is_zero() {
            pending = self
                .wake
                .wait_timeout(pending, timeout)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let wake = Wake {
            stopping: pending.stopping,
            flush: pending.flush_requested,
        };
        pending.flush_requested = false;
        wake
    }

    /// Asks the flusher to write everything now.
    pub(crate) fn request_flush(&self) {
        self.lock().flush_requested = true;
        self.wake.notify_one();
    }

    /// Asks the flusher to write everything and exit.
    pub(crate) fn request_stop(&self) {
        self.lock().stopping = true;
        self.wake.notify_one();
    }

    /// Events dropped so far because the backlog was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Counts events lost elsewhere (e.g. a failed write).
    pub(crate) fn add_dropped(&self, count: u64) {
        self.dropped.fetch_add(count, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: u64) -> RecordedEvent {
        RecordedEvent::QueueSample {
            timestamp_nanos: i,
            global_queue: i,
        }
    }

    #[test]
    fn drains_in_arrival_order() {
        let c = CentralCollector::new(100, 4);
        assert!(c.accept(&[sample(1), sample(2)]));
        assert!(c.accept(&[sample(3)]));
        let mut out = Vec::new();
        c.drain(&mut out);
        let flat: Vec<_> = out.iter().flatten().copied().collect();
        assert_eq!(flat, vec![sample(1), sample(2), sample(3)]);
        c.recycle(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn full_backlog_drops_and_counts() {
        let c = CentralCollector::new(4, 4);
        assert!(c.accept(&[sample(1), sample(2), sample(3)]));
        assert!(!c.accept(&[sample(4), sample(5)]));
        assert_eq!(c.dropped(), 2);
        let mut out = Vec::new();
        c.drain(&mut out);
        assert!(
            c.accept(&[sample(4), sample(5)]),
            "draining frees the budget"
        );
    }

    /// Memory follows the events held, not the number of hand-overs: a
    /// worker that parks after every few events hands over tiny buffers,
    /// and each must not pin a whole buffer's worth of memory while the
    /// writer is stalled.
    #[test]
    fn many_small_hand_overs_stay_within_the_event_budget() {
        const MAX_PENDING: usize = 64 * 1024;
        const BUFFER: usize = 1024;
        let c = CentralCollector::new(MAX_PENDING, BUFFER);
        let small = [sample(1), sample(2), sample(3), sample(4)];
        while c.accept(&small) {}
        let mut out = Vec::new();
        c.drain(&mut out);
        let held: usize = out.iter().map(Vec::len).sum();
        let capacity: usize = out.iter().map(Vec::capacity).sum();
        assert_eq!(held, MAX_PENDING);
        assert!(
            capacity <= 2 * MAX_PENDING + BUFFER,
            "{} batches with room for {capacity} events hold {held} events",
            out.len()
        );
        // Per-source order is kept: the events come out as they went in.
        assert!(out
            .iter()
            .flatten()
            .copied()
            .eq(small.iter().copied().cycle().take(held)));
    }

    #[test]
    fn half_full_backlog_wakes_the_flusher() {
        let c = CentralCollector::new(4, 4);
        c.accept(&[sample(1), sample(2)]);
        let wake = c.wait(std::time::Duration::from_secs(60));
        assert!(wake.flush && !wake.stopping);
    }

    #[test]
    fn stop_wakes_a_waiting_flusher() {
        let c = std::sync::Arc::new(CentralCollector::new(4, 4));
        let waiter = {
            let c = c.clone();
            std::thread::spawn(move || c.wait(std::time::Duration::from_secs(60)))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.request_stop();
        assert!(waiter.join().unwrap().stopping);
    }
}
