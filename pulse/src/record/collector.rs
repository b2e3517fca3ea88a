//! The central collector: where thread buffers wait for the flusher.
//!
//! A `Mutex` around a list of batches, as seed 002 settles on: threads touch
//! it once per full buffer (every `buffer_events` events), never per event.
//! A full buffer arrives whole, by pointer ([`CentralCollector::hand_over`]),
//! and its owner leaves with a recycled empty buffer; what the flusher copies
//! out of live buffers arrives as a copy ([`CentralCollector::accept`]),
//! appended to the newest copied batch while it has room, so memory follows
//! the events held, not the number of copies.
//!
//! It is bounded: the backlog (events waiting, counting a handed-over
//! buffer at its full capacity, since that is the memory it holds) stays
//! within `max_pending_events`. Past that, further events are dropped and
//! counted, so memory stays flat and workers never wait for I/O.

use crate::record::buffer::new_buffer;
use pulse_trace::RecordedEvent;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Events waiting for the writer: `events[from..]`.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) events: Vec<RecordedEvent>,
    /// Events before this index were already copied out earlier.
    pub(crate) from: usize,
    /// A whole thread buffer handed over by pointer (not a copy batch,
    /// which later copies may be appended to).
    whole: bool,
}

impl Batch {
    /// The events to write.
    pub(crate) fn events(&self) -> &[RecordedEvent] {
        &self.events[self.from.min(self.events.len())..]
    }
}

#[derive(Debug, Default)]
struct Pending {
    batches: Vec<Batch>,
    /// Memory held by `batches`, in events (capacity for whole buffers).
    events: usize,
    /// Empty buffers for reuse, so steady-state recording allocates nothing.
    spare: Vec<Vec<RecordedEvent>>,
    /// Set once the flusher has been woken for the current backlog, so a
    /// burst of hand-overs wakes it once.
    wake_sent: bool,
    /// The flusher has been asked to stop.
    stopping: bool,
    /// Someone asked for a flush outside the schedule.
    flush_requested: bool,
    /// The flusher has exited: nothing accepted now would be written.
    closed: bool,
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
            batch_capacity: batch_capacity.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave `Pending` torn (every
        // update is a push or a counter), so recover rather than propagate.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the flusher once a quarter of the backlog is used, so a burst
    /// is written while three quarters are still free (a flusher thread
    /// descheduled for a few ms on a busy machine must not cost events).
    fn wake_early(&self, mut pending: MutexGuard<'_, Pending>) {
        if pending.events * 4 >= self.max_pending_events && !pending.wake_sent {
            pending.wake_sent = true;
            pending.flush_requested = true;
            drop(pending);
            self.wake.notify_one();
        }
    }

    /// Takes a full thread buffer (`full[from..]` not yet written) by
    /// pointer and returns an empty one of at least `capacity` events for
    /// the thread to continue in. When the backlog has no room for it, its
    /// events are dropped and counted and the same buffer comes back,
    /// emptied.
    pub(crate) fn hand_over(
        &self,
        mut full: Vec<RecordedEvent>,
        from: usize,
        capacity: usize,
    ) -> Vec<RecordedEvent> {
        let unwritten = full.len().saturating_sub(from);
        let mut pending = self.lock();
        if unwritten == 0
            || pending.closed
            || pending.events + full.capacity() > self.max_pending_events
        {
            drop(pending);
            self.dropped.fetch_add(unwritten as u64, Ordering::Relaxed);
            full.clear();
            return full;
        }
        pending.events += full.capacity();
        pending.batches.push(Batch {
            events: full,
            from,
            whole: true,
        });
        let spare = pending.spare.pop().filter(|b| b.capacity() >= capacity);
        self.wake_early(pending);
        // A new buffer only while the pool warms up (at most the backlog's
        // worth of buffers ever exists); recycled ones are already paged in.
        spare.unwrap_or_else(|| new_buffer(capacity))
    }

    /// Takes a copy of `events`. Returns `false` (and counts them as dropped)
    /// when the backlog is full.
    pub(crate) fn accept(&self, events: &[RecordedEvent]) -> bool {
        if events.is_empty() {
            return true;
        }
        let mut pending = self.lock();
        if pending.closed {
            drop(pending);
            self.dropped
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            return false;
        }
        // Append to the newest copy batch while it has room: giving each
        // small copy its own buffer-sized batch would make memory follow
        // the number of copies instead of the events held. Appending keeps
        // every thread's events in order (the writer sees the same
        // sequence) and costs no memory beyond the batch's.
        match pending.batches.last_mut() {
            Some(last)
                if !last.whole && last.events.capacity() - last.events.len() >= events.len() =>
            {
                last.events.extend_from_slice(events);
            }
            _ => {
                let capacity = self.batch_capacity.max(events.len());
                if pending.events + capacity > self.max_pending_events {
                    drop(pending);
                    self.dropped
                        .fetch_add(events.len() as u64, Ordering::Relaxed);
                    return false;
                }
                let mut batch = match pending.spare.pop() {
                    Some(spare) if spare.capacity() >= events.len() => spare,
                    _ => Vec::with_capacity(capacity),
                };
                batch.extend_from_slice(events);
                pending.events += batch.capacity();
                pending.batches.push(Batch {
                    events: batch,
                    from: 0,
                    whole: false,
                });
            }
        }
        self.wake_early(pending);
        true
    }

    /// Takes every pending batch (a pointer swap under the lock). Their
    /// memory stays counted in the backlog until [`recycle`](Self::recycle)
    /// returns them, so batches being written count too.
    pub(crate) fn drain(&self, into: &mut Vec<Batch>) {
        let mut pending = self.lock();
        std::mem::swap(&mut pending.batches, into);
        pending.wake_sent = false;
    }

    /// Returns written batches for reuse and frees their share of the
    /// backlog. Buffers are only allocated when the pool is empty, so
    /// all buffers together never exceed the threads' own plus the
    /// backlog (`max_pending_events`).
    pub(crate) fn recycle(&self, batches: &mut Vec<Batch>) {
        let mut pending = self.lock();
        for batch in batches.drain(..) {
            let mut buffer = batch.events;
            pending.events = pending.events.saturating_sub(buffer.capacity());
            if buffer.capacity() >= self.batch_capacity {
                buffer.clear();
                pending.spare.push(buffer);
            }
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

    /// The flusher has exited: later hand-overs (threads still running
    /// after the recording ended) are counted as dropped, not kept.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
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
        let flat: Vec<_> = out.iter().flat_map(Batch::events).copied().collect();
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
            !c.accept(&[sample(4), sample(5)]),
            "batches being written still count"
        );
        c.recycle(&mut out);
        assert!(
            c.accept(&[sample(4), sample(5)]),
            "recycling written batches frees the budget"
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
        let held: usize = out.iter().map(|b| b.events().len()).sum();
        let capacity: usize = out.iter().map(|b| b.events.capacity()).sum();
        assert!(held > MAX_PENDING - BUFFER, "{held} events held");
        assert!(
            capacity <= MAX_PENDING,
            "{} batches with room for {capacity} events hold {held} events",
            out.len()
        );
        // Per-source order is kept: the events come out as they went in.
        assert!(out.iter().flat_map(Batch::events).copied().eq(small
            .iter()
            .copied()
            .cycle()
            .take(held)));
    }

    #[test]
    fn a_quarter_full_backlog_wakes_the_flusher() {
        let c = CentralCollector::new(16, 2);
        c.accept(&[sample(1)]);
        assert!(!c.wait(std::time::Duration::ZERO).flush, "an eighth used");
        c.accept(&[sample(2), sample(3)]);
        let wake = c.wait(std::time::Duration::from_secs(60));
        assert!(wake.flush && !wake.stopping, "a quarter used");
    }

    /// A full buffer is taken by pointer (no copy) and its owner gets an
    /// empty buffer back; with no room in the backlog the events are
    /// dropped, counted, and the same buffer comes back emptied.
    #[test]
    fn hand_over_swaps_buffers_and_drops_when_full() {
        let c = CentralCollector::new(8, 4);
        let mut full = Vec::with_capacity(4);
        full.extend([sample(1), sample(2), sample(3), sample(4)]);
        let address = full.as_ptr();
        let fresh = c.hand_over(full, 1, 4);
        assert!(fresh.is_empty() && fresh.capacity() >= 4);
        assert_ne!(fresh.as_ptr(), address, "a different buffer");
        let mut again = fresh;
        again.extend([sample(5), sample(6), sample(7), sample(8)]);
        let again = c.hand_over(again, 0, 4);
        let mut third = again;
        third.extend([sample(9), sample(10), sample(11), sample(12)]);
        let address = third.as_ptr();
        let back = c.hand_over(third, 0, 4);
        assert_eq!(back.as_ptr(), address, "no room: the same buffer, emptied");
        assert!(back.is_empty());
        assert_eq!(c.dropped(), 4);
        let mut out = Vec::new();
        c.drain(&mut out);
        let written: Vec<_> = out.iter().flat_map(Batch::events).copied().collect();
        let expected: Vec<_> = (2..=8).map(sample).collect();
        assert_eq!(written, expected, "the first buffer from index 1 on");
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
