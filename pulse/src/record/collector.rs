//! The central collector: where thread buffers wait for the flusher.
//!
//! A `Mutex` around a list of batches, as seed 002 settles on: threads touch
//! it once per full buffer, never per event. A full buffer arrives whole, by
//! pointer ([`CentralCollector::hand_over`]), and its owner leaves with a
//! recycled empty buffer; what the flusher copies out of live buffers
//! arrives as a copy ([`CentralCollector::accept`]), appended to the newest
//! copied batch while it has room, so memory follows the records held, not
//! the number of copies. Batches hold the buffers' compact records
//! (`records.rs`); the flusher hands them to the writer as they are
//! (`TraceWriter::write_compact`: pulse's file writers and flight recorder
//! encode them straight into the trace, other writers get them decoded).
//!
//! It is bounded: the backlog (words waiting, counting a handed-over buffer
//! at its full capacity, since that is the memory it holds) stays within
//! `max_pending_events` full-size events' worth of memory
//! (`max_pending_events` × 56 bytes). Past that, further events are dropped
//! and counted, so memory stays flat and workers never wait for I/O.

use crate::record::records::{new_buffer, Records, Stream, WORDS_PER_EVENT};
use pulse_trace::RecordedEvent;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Compact records waiting for the writer: `words`, decoded from its start,
/// whose records from word `from` on are still to be written.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) words: Vec<u64>,
    /// Records before this word were already copied out earlier.
    pub(crate) from: usize,
    /// A whole thread buffer handed over by pointer (not a copy batch,
    /// which later copies may be appended to).
    whole: bool,
}

impl Batch {
    /// The events to write.
    pub(crate) fn records(&self) -> Records<'_> {
        Records::new(&self.words, self.from, Stream::START)
    }
}

#[derive(Debug, Default)]
struct Pending {
    batches: Vec<Batch>,
    /// Memory held by `batches`, in words (capacity for whole buffers).
    words: usize,
    /// Empty buffers for reuse, so steady-state recording allocates nothing.
    spare: Vec<Vec<u64>>,
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
    /// The backlog's budget, in words.
    max_pending_words: usize,
    /// A thread buffer's capacity, in words: the size of a new copy batch.
    batch_capacity: usize,
    dropped: AtomicU64,
    /// Whole events from threads that record no runtime events (the stack
    /// symbolizer), written with the sampler's at the next flush.
    events: Mutex<Vec<RecordedEvent>>,
}

/// The most whole events [`CentralCollector::accept_event`] keeps between
/// two flushes; more are dropped and counted.
const MAX_WHOLE_EVENTS: usize = 4096;

/// Why the flusher woke up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wake {
    pub(crate) stopping: bool,
    pub(crate) flush: bool,
}

impl CentralCollector {
    /// A collector whose backlog holds `max_pending_events` full-size
    /// events' worth of words; copies go into batches of `batch_capacity`
    /// words (a thread buffer's capacity).
    pub(crate) fn new(max_pending_events: usize, batch_capacity: usize) -> Self {
        CentralCollector {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            max_pending_words: max_pending_events.saturating_mul(WORDS_PER_EVENT),
            batch_capacity: batch_capacity.max(1),
            dropped: AtomicU64::new(0),
            events: Mutex::new(Vec::new()),
        }
    }

    /// Keeps one whole event for the next flush (bounded: past
    /// [`MAX_WHOLE_EVENTS`] it is dropped and counted). Returns whether it
    /// was kept.
    pub(crate) fn accept_event(&self, event: RecordedEvent) -> bool {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if events.len() >= MAX_WHOLE_EVENTS {
            drop(events);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        events.push(event);
        true
    }

    /// Moves the whole events kept so far to the end of `into`.
    pub(crate) fn take_events(&self, into: &mut Vec<RecordedEvent>) {
        into.append(&mut self.events.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave `Pending` torn (every
        // update is a push or a counter), so recover rather than propagate.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the flusher once an eighth of the backlog is used, so a burst
    /// is written while seven eighths are still free (a flusher thread
    /// descheduled for tens of ms on a busy machine must not cost events).
    fn wake_early(&self, mut pending: MutexGuard<'_, Pending>) {
        if pending.words * 8 >= self.max_pending_words && !pending.wake_sent {
            pending.wake_sent = true;
            pending.flush_requested = true;
            drop(pending);
            self.wake.notify_one();
        }
    }

    /// Counts the events of records that could not be kept.
    fn drop_records(&self, records: Records<'_>) {
        self.dropped
            .fetch_add(records.count() as u64, Ordering::Relaxed);
    }

    /// Takes a full thread buffer (records from word `from` on not yet
    /// written) by pointer and returns an empty one of at least `capacity`
    /// words for the thread to continue in. When the backlog has no room
    /// for it, its events are dropped and counted and the same buffer comes
    /// back, emptied.
    pub(crate) fn hand_over(&self, mut full: Vec<u64>, from: usize, capacity: usize) -> Vec<u64> {
        let mut pending = self.lock();
        if from >= full.len()
            || pending.closed
            || pending.words + full.capacity() > self.max_pending_words
        {
            drop(pending);
            self.drop_records(Records::new(&full, from, Stream::START));
            full.clear();
            return full;
        }
        pending.words += full.capacity();
        pending.batches.push(Batch {
            words: full,
            from,
            whole: true,
        });
        let spare = pending.spare.pop().filter(|b| b.capacity() >= capacity);
        self.wake_early(pending);
        // A new buffer only while the pool warms up (at most the backlog's
        // worth of buffers ever exists); recycled ones are already paged in.
        spare.unwrap_or_else(|| new_buffer(capacity))
    }

    /// Takes a copy of the records `words`, which decode from `state`.
    /// Returns `false` (and counts their events as dropped) when the
    /// backlog is full.
    pub(crate) fn accept(&self, state: Stream, words: &[u64]) -> bool {
        if words.is_empty() {
            return true;
        }
        // The copy starts with `SET_*` records bringing a decoder at the
        // batch's start state to `state`, so every batch decodes alone.
        let prefix = state.prefix();
        let len = prefix.len() + words.len();
        let mut pending = self.lock();
        if pending.closed {
            drop(pending);
            self.drop_records(Records::new(words, 0, state));
            return false;
        }
        // Append to the newest copy batch while it has room: giving each
        // small copy its own buffer-sized batch would make memory follow
        // the number of copies instead of the records held. Appending keeps
        // every thread's records in order (the writer sees the same
        // sequence) and costs no memory beyond the batch's.
        match pending.batches.last_mut() {
            Some(last) if !last.whole && last.words.capacity() - last.words.len() >= len => {
                last.words.extend_from_slice(&prefix);
                last.words.extend_from_slice(words);
            }
            _ => {
                let capacity = self.batch_capacity.max(len);
                if pending.words + capacity > self.max_pending_words {
                    drop(pending);
                    self.drop_records(Records::new(words, 0, state));
                    return false;
                }
                let mut batch = match pending.spare.pop() {
                    Some(spare) if spare.capacity() >= len => spare,
                    _ => Vec::with_capacity(capacity),
                };
                batch.extend_from_slice(&prefix);
                batch.extend_from_slice(words);
                pending.words += batch.capacity();
                pending.batches.push(Batch {
                    words: batch,
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
    /// backlog (`max_pending_events` × 56 bytes).
    #[cfg(test)]
    pub(crate) fn recycle(&self, batches: &mut Vec<Batch>) {
        for batch in batches.drain(..) {
            self.recycle_one(batch);
        }
    }

    /// Returns one written batch for reuse and frees its share of the
    /// backlog (the flusher does so as each batch is written).
    pub(crate) fn recycle_one(&self, batch: Batch) {
        let mut buffer = batch.words;
        let mut pending = self.lock();
        pending.words = pending.words.saturating_sub(buffer.capacity());
        if buffer.capacity() >= self.batch_capacity {
            buffer.clear();
            pending.spare.push(buffer);
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
    use crate::record::buffer::tests::poll_ends;

    fn accept(c: &CentralCollector, times: impl IntoIterator<Item = u64>) -> bool {
        c.accept(Stream::START, &poll_ends(times))
    }

    fn times(batches: &[Batch]) -> Vec<u64> {
        batches
            .iter()
            .flat_map(Batch::records)
            .map(|e| e.timestamp_nanos())
            .collect()
    }

    #[test]
    fn drains_in_arrival_order() {
        let c = CentralCollector::new(100, 40);
        assert!(accept(&c, [1, 2]));
        assert!(accept(&c, [3]));
        let mut out = Vec::new();
        c.drain(&mut out);
        assert_eq!(times(&out), vec![1, 2, 3]);
        c.recycle(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn full_backlog_drops_and_counts() {
        // 4 events' worth: 28 words; a copy of n PollEnds is 5 + 1 + 3n.
        let c = CentralCollector::new(4, 20);
        assert!(accept(&c, [1, 2, 3, 4, 5]), "21 words");
        assert!(!accept(&c, [6, 7, 8]), "another 20 do not fit");
        assert_eq!(c.dropped(), 3);
        let mut out = Vec::new();
        c.drain(&mut out);
        assert!(!accept(&c, [6, 7, 8]), "batches being written still count");
        c.recycle(&mut out);
        assert!(
            accept(&c, [6, 7, 8]),
            "recycling written batches frees the budget"
        );
    }

    /// Memory follows the records held, not the number of copies: a
    /// worker that parks after every few events is copied out in tiny
    /// pieces, and each must not pin a whole buffer's worth of memory
    /// while the writer is stalled.
    #[test]
    fn many_small_copies_stay_within_the_budget() {
        const MAX_PENDING: usize = 64 * 1024;
        const BUFFER: usize = 1024;
        let c = CentralCollector::new(MAX_PENDING, BUFFER);
        let mut next = 0;
        while accept(&c, next..next + 4) {
            next += 4;
        }
        let mut out = Vec::new();
        c.drain(&mut out);
        let held: usize = out.iter().map(|b| b.words.len()).sum();
        let capacity: usize = out.iter().map(|b| b.words.capacity()).sum();
        let budget = MAX_PENDING * WORDS_PER_EVENT;
        // A batch's tail too short for the next 18-word copy stays empty.
        assert!(held > budget / 100 * 97, "{held} of {budget} words held");
        assert!(
            capacity <= budget,
            "{} batches with room for {capacity} words hold {held}",
            out.len()
        );
        // Order is kept: the events come out as they went in.
        assert!(times(&out).into_iter().eq(0..next));
    }

    #[test]
    fn an_eighth_full_backlog_wakes_the_flusher() {
        // 32 events' worth: 224 words, an eighth is 28.
        let c = CentralCollector::new(32, 8);
        accept(&c, [1, 2]);
        assert!(!c.wait(std::time::Duration::ZERO).flush, "12 words used");
        accept(&c, [3, 4, 5, 6, 7]);
        let wake = c.wait(std::time::Duration::from_secs(60));
        assert!(wake.flush && !wake.stopping, "an eighth used");
    }

    /// A full buffer is taken by pointer (no copy) and its owner gets an
    /// empty buffer back; with no room in the backlog the events are
    /// dropped, counted, and the same buffer comes back emptied.
    #[test]
    fn hand_over_swaps_buffers_and_drops_when_full() {
        // 7 events' worth: 49 words; buffers of 20 words.
        let c = CentralCollector::new(7, 20);
        let fill = |mut buffer: Vec<u64>, times: std::ops::Range<u64>| {
            buffer.extend(poll_ends(times));
            buffer
        };
        let full = fill(Vec::with_capacity(20), 1..5);
        let address = full.as_ptr();
        // Written from the second PollEnd's record on (word 4).
        let fresh = c.hand_over(full, 4, 20);
        assert!(fresh.is_empty() && fresh.capacity() >= 20);
        assert_ne!(fresh.as_ptr(), address, "a different buffer");
        let again = c.hand_over(fill(fresh, 5..9), 0, 20);
        let third = fill(again, 9..13);
        let address = third.as_ptr();
        let back = c.hand_over(third, 0, 20);
        assert_eq!(back.as_ptr(), address, "no room: the same buffer, emptied");
        assert!(back.is_empty());
        assert_eq!(c.dropped(), 4);
        let mut out = Vec::new();
        c.drain(&mut out);
        assert_eq!(times(&out), (2..9).collect::<Vec<_>>());
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
