//! The per-thread event buffer and the compact records it holds.
//!
//! One thread (the owner) appends records with plain stores and a release
//! store of the length: no lock, no atomic read-modify-write, no allocation.
//! When the buffer is nearly full the owner hands it to the
//! [`CentralCollector`] whole, by pointer, and continues in a recycled empty
//! buffer (no copy of the records). Other threads can also copy out what the
//! owner has published: the flusher does so on every tick (so a worker that
//! parks or stays in a long poll does not hold its events back) and at
//! shutdown (so events of threads that are still alive are not lost).
//!
//! Synchronisation: the owner writes words `len..len + n` and then publishes
//! `len + n` (release). Copying out happens under `drain`, a mutex that also
//! guards `consumed`, the index up to which records were already copied,
//! and the decoding state there. Only the owner resets `len` to 0 or swaps
//! the buffer, and only while holding `drain`; between resets it writes only
//! at indices `>= len`, which no reader touches, since readers copy
//! `consumed..len` as published (acquire) while holding the mutex.
//!
//! The records themselves, and decoding them, are in `records.rs`.

use crate::record::collector::CentralCollector;
pub(crate) use crate::record::records::*;
#[cfg(test)]
use pulse_trace::RecordedEvent;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Where copying out of a live buffer resumes: guarded by `drain`.
#[derive(Debug)]
struct Drained {
    /// Words before this index were already copied out.
    consumed: usize,
    /// The decoding state at `consumed`.
    state: Stream,
    /// The timestamp of the PollStart the records before `consumed` end
    /// with, if they end inside a poll (for [`ThreadSlot::open_poll_start`]).
    open_poll: Option<u64>,
    /// How far [`ThreadSlot::open_poll_start`] has decoded (it resumes
    /// there when that is past `consumed`), the decoding state there, and
    /// the open poll's start there.
    peeked: usize,
    peek_state: Stream,
    peek_open: Option<u64>,
}

impl Drained {
    /// An empty buffer's: nothing copied out or peeked at.
    const START: Drained = Drained {
        consumed: 0,
        state: Stream::START,
        open_poll: None,
        peeked: 0,
        peek_state: Stream::START,
        peek_open: None,
    };
}

/// Whether a thread is inside a poll after `event`, given whether (and
/// since when) it was before: the witness [`scan`] is tested against.
#[cfg(test)]
fn open_poll_after(open: Option<u64>, event: RecordedEvent) -> Option<u64> {
    match event {
        RecordedEvent::PollStart {
            timestamp_nanos, ..
        } => Some(timestamp_nanos),
        // Not every record ends a poll: worker-thread, schedule-latency,
        // span and mark records can fall inside one.
        RecordedEvent::WorkerThread { .. }
        | RecordedEvent::ScheduleLatency { .. }
        | RecordedEvent::SpanEnter { .. }
        | RecordedEvent::SpanExit { .. }
        | RecordedEvent::SpanClose { .. }
        | RecordedEvent::Mark { .. } => open,
        _ => None,
    }
}

/// A fixed-capacity record buffer owned by one thread.
pub(crate) struct ThreadSlot {
    /// The buffer the owner writes into: a `Vec` whose own length stays 0
    /// (the words live in its spare capacity, published by `len`).
    /// Replaced only by the owner, holding `drain`.
    buffer: UnsafeCell<Vec<u64>>,
    /// In words.
    capacity: usize,
    /// Published length in words; written only by the owner.
    len: AtomicUsize,
    drain: Mutex<Drained>,
    /// The owner's kernel thread id, for the sampler's per-thread readings.
    pub(crate) tid: Option<i32>,
    /// The worker index the owner last recorded for (`NO_WORKER` if none).
    pub(crate) worker: AtomicU32,
}

// SAFETY: the buffer's words are written only by the owning thread at
// indices no other thread reads, and the `Vec` itself is replaced only by
// the owner under `drain` (see the module documentation); every
// cross-thread read is of published, initialised words under the `drain`
// mutex.
unsafe impl Sync for ThreadSlot {}
// SAFETY: the raw buffer is plain words owned by the slot.
unsafe impl Send for ThreadSlot {}

impl std::fmt::Debug for ThreadSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadSlot")
            .field("capacity", &self.capacity)
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("tid", &self.tid)
            .finish()
    }
}

impl ThreadSlot {
    /// A slot with room for `buffer_events` full-size events' worth of
    /// words (plus the reserve).
    pub(crate) fn new(buffer_events: usize, tid: Option<i32>) -> Self {
        let capacity = capacity_words(buffer_events);
        ThreadSlot {
            buffer: UnsafeCell::new(new_buffer(capacity)),
            capacity,
            len: AtomicUsize::new(0),
            drain: Mutex::new(Drained::START),
            tid,
            worker: AtomicU32::new(NO_WORKER),
        }
    }

    /// Appends one record (or `SET_*` record) and publishes it; returns the
    /// words left, or `None` (nothing written) if it does not fit, which
    /// the reserve rule keeps from happening.
    ///
    /// # Safety
    ///
    /// Only the thread that owns this slot may call it.
    #[inline]
    pub(crate) unsafe fn push<const N: usize>(&self, words: [u64; N]) -> Option<usize> {
        // SAFETY: the caller owns this slot.
        unsafe { self.push_first(words, N) }
    }

    /// Appends one record and publishes it if at least `leave` words stay
    /// free after it; `false` (nothing written) otherwise.
    ///
    /// # Safety
    ///
    /// Only the thread that owns this slot may call it.
    #[inline]
    pub(crate) unsafe fn push_leaving<const N: usize>(
        &self,
        words: [u64; N],
        leave: usize,
    ) -> bool {
        let len = self.len.load(Ordering::Relaxed);
        if self.capacity - len < N + leave {
            return false;
        }
        // SAFETY: the caller owns this slot; `len + N <= capacity`.
        unsafe { self.write_at(len, words, N) };
        true
    }

    /// Like [`push`](Self::push), but publishes only the first `used`
    /// (≤ `N`) of the words written: a record whose length is decided
    /// without a branch.
    ///
    /// # Safety
    ///
    /// Only the thread that owns this slot may call it.
    #[inline]
    pub(crate) unsafe fn push_first<const N: usize>(
        &self,
        words: [u64; N],
        used: usize,
    ) -> Option<usize> {
        debug_assert!(used <= N);
        let len = self.len.load(Ordering::Relaxed);
        let room = self.capacity - len;
        if N > room {
            return None;
        }
        // SAFETY: the caller owns this slot; `len + N <= capacity`.
        unsafe { self.write_at(len, words, used) };
        Some(room - used)
    }

    /// Writes `words` at `len` and publishes the first `used` of them.
    ///
    /// # Safety
    ///
    /// Only the thread that owns this slot may call it, with `len` the
    /// published length and `len + N <= capacity`.
    #[inline(always)]
    unsafe fn write_at<const N: usize>(&self, len: usize, words: [u64; N], used: usize) {
        // SAFETY: `len + N <= capacity` (the caller's promise); the owner is
        // the only writer of the buffer and of the `Vec` (which it replaces
        // only under `drain`, not now), and no reader reads at or beyond
        // the published length (module documentation), so not the words
        // beyond `used` either. The pointer comes from the `Vec` through
        // the `UnsafeCell` without creating a mutable reference to it.
        unsafe {
            let buffer = &*self.buffer.get();
            let end = buffer.as_ptr().cast_mut().add(len);
            end.cast::<[u64; N]>().write(words);
        }
        self.len.store(len + used, Ordering::Release);
    }

    /// Words published and not yet copied out.
    pub(crate) fn pending(&self) -> usize {
        let consumed = self.lock().consumed;
        self.len.load(Ordering::Acquire).saturating_sub(consumed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Drained> {
        self.drain.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The timestamp of the PollStart the owner's published records end
    /// with, if they end inside a poll: the owner is in that poll.
    /// Read-only; any thread may call it (the stack sampler,
    /// `record/stacks.rs`, every `sample_ms`). It decodes only what was
    /// published since its previous call or the last copy, whichever is
    /// later: each record at most once, however often it is called.
    pub(crate) fn open_poll_start(&self) -> Option<u64> {
        let mut drained = self.lock();
        let len = self.len.load(Ordering::Acquire);
        let (from, state, open) = if drained.peeked > drained.consumed {
            (drained.peeked, drained.peek_state, drained.peek_open)
        } else {
            (drained.consumed, drained.state, drained.open_poll)
        };
        let from = from.min(len);
        let (state, open) = scan(self.published(from, len), state, open);
        drained.peeked = len;
        drained.peek_state = state;
        drained.peek_open = open;
        open
    }

    /// Hands the buffer to the collector by pointer and continues in an
    /// empty recycled one (a full buffer's normal path). The new buffer
    /// starts with a `SET_WORKER` record for `worker` (unless it is
    /// [`NO_WORKER`]): the owner's records never restate their worker
    /// (`hooks.rs`). `open_poll`: the start of the poll the owner is in, if
    /// it is in one (a span record inside a poll can fill the buffer).
    ///
    /// # Safety
    ///
    /// Only the thread that owns this slot may call it.
    pub(crate) unsafe fn hand_over(
        &self,
        collector: &CentralCollector,
        open_poll: Option<u64>,
        worker: u32,
    ) {
        let mut drained = self.lock();
        let len = self.len.load(Ordering::Relaxed);
        // SAFETY: the owner holds `drain`, so no reader looks at the `Vec`.
        let buffer = unsafe { &mut *self.buffer.get() };
        let mut full = std::mem::take(buffer);
        // SAFETY: words `..len` are initialised (published by the owner).
        unsafe { full.set_len(len) };
        *buffer = collector.hand_over(full, drained.consumed, self.capacity);
        *drained = Drained {
            open_poll,
            ..Drained::START
        };
        // SAFETY: the owner holds `drain`; the new buffer is empty.
        unsafe { self.start_buffer(worker) };
    }

    /// Empties the buffer (the owner holds `drain`) and, unless `worker` is
    /// [`NO_WORKER`], starts it with a `SET_WORKER` record for `worker`.
    ///
    /// # Safety
    ///
    /// Only the owner may call it, holding `drain`.
    unsafe fn start_buffer(&self, worker: u32) {
        if worker == NO_WORKER || self.capacity == 0 {
            self.len.store(0, Ordering::Release);
        } else {
            // SAFETY: `1 <= capacity`; the owner holds `drain`, so no
            // reader looks at the buffer's words.
            unsafe { self.write_at(0, [set_worker(worker)], 1) };
        }
    }

    /// Hands over a copy of everything not yet copied out and empties the
    /// buffer in place (thread exit, or a flush on request), starting it
    /// as [`hand_over`](Self::hand_over) does for `worker` ([`NO_WORKER`]
    /// at thread exit: nothing follows).
    ///
    /// # Safety
    ///
    /// Only the thread that owns this slot may call it.
    pub(crate) unsafe fn flush_owned(&self, collector: &CentralCollector, worker: u32) {
        let mut drained = self.lock();
        let len = self.len.load(Ordering::Relaxed);
        if len > drained.consumed {
            collector.accept(drained.state, self.published(drained.consumed, len));
        }
        // Flushes happen outside polls (or this thread stops).
        *drained = Drained::START;
        // SAFETY: the owner holds `drain`; the buffer is emptied.
        unsafe { self.start_buffer(worker) };
    }

    /// Copies what the owner has published since the last copy to the
    /// collector, leaving the owner's buffer in place. Any thread may call
    /// it. Unless `wait`, it skips the copy when the owner holds `drain`
    /// (it is handing the buffer over, records and all): the flusher never
    /// waits for a worker that the OS descheduled inside a hand-over.
    pub(crate) fn copy_out(&self, collector: &CentralCollector, wait: bool) {
        let mut drained = if wait {
            self.lock()
        } else {
            match self.drain.try_lock() {
                Ok(drained) => drained,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return,
            }
        };
        let len = self.len.load(Ordering::Acquire);
        if len > drained.consumed {
            let words = self.published(drained.consumed, len);
            collector.accept(drained.state, words);
            (drained.state, drained.open_poll) = scan(words, drained.state, drained.open_poll);
            drained.consumed = len;
        }
    }

    /// The published words `from..to`. The caller holds `drain`.
    fn published(&self, from: usize, to: usize) -> &[u64] {
        debug_assert!(from <= to && to <= self.capacity);
        // SAFETY: the `Vec` is only replaced under `drain`, which the caller
        // holds; words below the published length are initialised and the
        // owner does not write them until it resets the length, which also
        // needs `drain`.
        unsafe {
            let buffer = &*self.buffer.get();
            std::slice::from_raw_parts(buffer.as_ptr().add(from), to - from)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pulse_trace::{SpawnLocation, WorkerThreadKind};
    use std::panic::Location;
    use std::sync::Arc;

    /// Self-contained records of PollEnds at `times` on worker 0: each
    /// sets its own time, so any slice of whole ones decodes alone.
    pub(crate) fn poll_ends(times: impl IntoIterator<Item = u64>) -> Vec<u64> {
        let mut words = vec![SET_WORKER];
        for time in times {
            words.extend([SET_TIME, time, head(POLL_END, 0, 0)]);
        }
        words
    }

    fn times(c: &CentralCollector) -> Vec<u64> {
        let mut out = Vec::new();
        c.drain(&mut out);
        out.iter()
            .flat_map(crate::record::collector::Batch::records)
            .map(|e| e.timestamp_nanos())
            .collect()
    }

    /// Every record kind and `SET_*` record decodes to the event it
    /// stands for; `from` skips records already written.
    #[test]
    fn records_decode_to_the_events_they_stand_for() {
        let here = SpawnLocation(Location::caller());
        let start = 5_000_000_000_000;
        let deep = u32::MAX;
        let words = [
            SET_WORKER | (3 << 32),
            SET_TIME,
            start,
            head(POLL_START | NEW_LOCATION, 0, 7),
            42,
            location_word(here),
            head(POLL_END, 100, 6),
            head(PARK | HAS_CPU | HAS_RUN_DELAY, 10, deep),
            11,
            12,
            head(UNPARK | HAS_CPU, MAX_DELTA, 0),
            13,
            WORKER_THREAD | (2 << 8) | (77 << 32),
            4,
            9,
            SET_WORKER | (4 << 32),
            head(UNPARK, 1, 0),
            head(POLL_START, 2, 1),
            43,
        ];
        let expected = [
            RecordedEvent::PollStart {
                timestamp_nanos: start,
                worker: 3,
                local_queue: 7,
                task_id: Some(42),
                spawned_at: here,
            },
            RecordedEvent::PollEnd {
                timestamp_nanos: start + 100,
                worker: 3,
                local_queue: 6,
            },
            RecordedEvent::WorkerPark {
                timestamp_nanos: start + 110,
                worker: 3,
                local_queue: deep,
                cpu_nanos: Some(11),
                run_delay_nanos: Some(12),
            },
            RecordedEvent::WorkerUnpark {
                timestamp_nanos: start + 110 + MAX_DELTA,
                worker: 3,
                local_queue: 0,
                cpu_nanos: Some(13),
                run_delay_nanos: None,
            },
            RecordedEvent::WorkerThread {
                timestamp_nanos: 9,
                worker: 4,
                tid: 77,
                kind: WorkerThreadKind::PollDetached,
            },
            RecordedEvent::WorkerUnpark {
                timestamp_nanos: start + 111 + MAX_DELTA,
                worker: 4,
                local_queue: 0,
                cpu_nanos: None,
                run_delay_nanos: None,
            },
            RecordedEvent::PollStart {
                timestamp_nanos: start + 113 + MAX_DELTA,
                worker: 4,
                local_queue: 1,
                task_id: Some(43),
                spawned_at: here,
            },
        ];
        let decoded: Vec<_> = Records::new(&words, 0, Stream::START).collect();
        assert_eq!(decoded, expected);
        // From the PollEnd's word on: the state before it still applies.
        let skipped: Vec<_> = Records::new(&words, 6, Stream::START).collect();
        assert_eq!(skipped, expected[1..]);
        // A state and its prefix decode the rest alone.
        let mut prefix_then_rest = Stream {
            time: start + 100,
            worker: 3,
            location: location_word(here),
        }
        .prefix()
        .to_vec();
        prefix_then_rest.extend_from_slice(&words[7..]);
        let rest: Vec<_> = Records::new(&prefix_then_rest, 0, Stream::START).collect();
        assert_eq!(rest, expected[2..]);
    }

    /// Span and mark records decode to their events, are timed like the
    /// others, and keep a thread inside its poll.
    #[test]
    fn span_and_mark_records_decode() {
        use pulse_trace::{SpanId, TextId};
        let here = SpawnLocation(Location::caller());
        let words = [
            SET_WORKER | (2 << 32),
            SET_TIME,
            1_000,
            head(POLL_START | NEW_LOCATION, 0, 0),
            7,
            location_word(here),
            head(SPAN_ENTER, 5, 0),
            1 << 50,
            3 | (4 << 32),
            head(MARK | HAS_VALUE, 5, 0),
            9,
            42,
            head(MARK, 1, 0),
            9,
            head(SPAN_EXIT, 1, 0),
            1 << 50,
            head(SPAN_CLOSE, 1, 0),
            1 << 50,
        ];
        let decoded: Vec<_> = Records::new(&words, 0, Stream::START).skip(1).collect();
        assert_eq!(
            decoded,
            [
                RecordedEvent::SpanEnter {
                    timestamp_nanos: 1_005,
                    worker: 2,
                    span: SpanId(1 << 50),
                    name: TextId(3),
                    fields: TextId(4),
                },
                RecordedEvent::Mark {
                    timestamp_nanos: 1_010,
                    worker: 2,
                    name: TextId(9),
                    value: Some(42),
                },
                RecordedEvent::Mark {
                    timestamp_nanos: 1_011,
                    worker: 2,
                    name: TextId(9),
                    value: None,
                },
                RecordedEvent::SpanExit {
                    timestamp_nanos: 1_012,
                    worker: 2,
                    span: SpanId(1 << 50),
                },
                RecordedEvent::SpanClose {
                    timestamp_nanos: 1_013,
                    worker: 2,
                    span: SpanId(1 << 50),
                },
            ]
        );
        let open = Records::new(&words, 0, Stream::START).fold(None, open_poll_after);
        assert_eq!(open, Some(1_000), "still inside the poll");
    }

    /// `scan` gives the state and the open poll that decoding every
    /// record and folding the events with `open_poll_after` gives, after
    /// every whole record of a stream holding every kind, flag and
    /// `SET_*` record.
    #[test]
    fn scan_agrees_with_decoding() {
        let here = location_word(SpawnLocation(Location::caller()));
        let there = location_word(SpawnLocation(Location::caller()));
        let records: Vec<Vec<u64>> = vec![
            vec![SET_WORKER | (3 << 32)],
            vec![SET_TIME, 1_000],
            vec![head(POLL_START | NEW_LOCATION, 5, 2), 7, here],
            vec![head(SPAN_ENTER, 1, 0), 1 << 50, 3 | (4 << 32)],
            vec![head(MARK | HAS_VALUE, 1, 0), 9, 42],
            vec![head(MARK, 1, 0), 9],
            vec![WORKER_THREAD | (2 << 8) | (77 << 32), 4, 9],
            vec![WORKER_THREAD | (200 << 8) | (77 << 32), 4, 9],
            vec![head(SPAN_EXIT, 1, 0), 1 << 50],
            vec![head(SPAN_CLOSE, 1, 0), 1 << 50],
            vec![head(POLL_END, 100, 1)],
            vec![head(PARK | HAS_CPU | HAS_RUN_DELAY, 10, 0), 11, 12],
            vec![head(UNPARK | HAS_CPU, MAX_DELTA, 0), 13],
            vec![head(POLL_START | HAS_LATENCY, 3, 0), 8, 500],
            vec![head(POLL_END, 1, 0)],
            vec![SET_LOCATION, there],
            vec![
                head(POLL_START | NEW_LOCATION | HAS_LATENCY, 2, 0),
                9,
                here,
                600,
            ],
            vec![head(PARK, 1, 0)],
            vec![head(UNPARK, 1, 0)],
            vec![SET_WORKER | (4 << 32)],
            vec![head(POLL_START, 1, 0), 10],
        ];
        for start in [None, Some(17)] {
            for end in 0..=records.len() {
                let words = records[..end].concat();
                let mut decoded = Records::new(&words, 0, Stream::START);
                let open = decoded.by_ref().fold(start, open_poll_after);
                assert_eq!(
                    scan(&words, Stream::START, start),
                    (decoded.state(), open),
                    "after {end} records, open before {start:?}"
                );
            }
        }
    }

    #[test]
    fn push_reports_room_and_refuses_what_does_not_fit() {
        let slot = ThreadSlot::new(1, None);
        let capacity = WORDS_PER_EVENT + RESERVE_WORDS;
        // SAFETY: this test thread is the only user of `slot`.
        unsafe {
            assert_eq!(slot.push([SET_WORKER]), Some(capacity - 1));
            assert_eq!(slot.push([SET_TIME, 1]), Some(capacity - 3));
            for _ in 3..capacity {
                assert!(slot.push([head(POLL_END, 1, 0)]).is_some());
            }
            assert_eq!(slot.push([head(POLL_END, 1, 0)]), None, "full");
        }
        assert_eq!(slot.pending(), capacity);
    }

    #[test]
    fn hand_over_and_copy_out_take_each_record_once() {
        let slot = ThreadSlot::new(8, None);
        let c = CentralCollector::new(1000, slot.capacity);
        let push_all = |words: &[u64]| {
            for &word in words {
                // SAFETY: this test thread is the only user of `slot`.
                unsafe { slot.push([word]) };
            }
        };
        // A worker and a time, then deltas: copies must carry the state.
        push_all(&[SET_WORKER, SET_TIME, 10, head(POLL_END, 1, 0)]);
        slot.copy_out(&c, true);
        slot.copy_out(&c, true);
        push_all(&[head(POLL_END, 1, 0), head(POLL_END, 1, 0)]);
        slot.copy_out(&c, true);
        push_all(&[head(POLL_END, 1, 0)]);
        // SAFETY: as above.
        unsafe { slot.hand_over(&c, None, NO_WORKER) };
        push_all(&poll_ends([20, 21]));
        // SAFETY: as above.
        unsafe { slot.flush_owned(&c, NO_WORKER) };
        assert_eq!(times(&c), vec![11, 12, 13, 14, 20, 21]);
        assert_eq!(slot.pending(), 0);
    }

    /// The open poll seen by repeated peeks, with copies and a hand-over in
    /// between, is the one a decode of everything published gives.
    #[test]
    fn open_poll_start_resumes_and_agrees_with_a_full_decode() {
        let slot = ThreadSlot::new(64, None);
        let c = CentralCollector::new(1000, slot.capacity);
        let push_all = |words: &[u64]| {
            for &word in words {
                // SAFETY: this test thread is the only user of `slot`.
                unsafe { slot.push([word]) };
            }
        };
        let here = SpawnLocation(Location::caller());
        let start = |delta| {
            [
                head(POLL_START | NEW_LOCATION, delta, 0),
                7,
                location_word(here),
            ]
        };
        push_all(&[SET_WORKER, SET_TIME, 1_000]);
        assert_eq!(slot.open_poll_start(), None);
        push_all(&start(5));
        assert_eq!(slot.open_poll_start(), Some(1_005));
        assert_eq!(
            slot.open_poll_start(),
            Some(1_005),
            "nothing new: same answer"
        );
        push_all(&[head(POLL_END, 10, 0)]);
        assert_eq!(slot.open_poll_start(), None);
        push_all(&start(3));
        // The copy goes past the peek: the peek resumes at the copy's end.
        slot.copy_out(&c, true);
        assert_eq!(slot.open_poll_start(), Some(1_018));
        push_all(&[head(POLL_END, 2, 0)]);
        push_all(&start(4));
        assert_eq!(slot.open_poll_start(), Some(1_024));
        // The peek is past the copy: a copy in between changes nothing.
        slot.copy_out(&c, true);
        push_all(&[head(POLL_END, 1, 0), head(PARK, 1, 0)]);
        assert_eq!(slot.open_poll_start(), None);
        push_all(&[head(UNPARK, 1, 0)]);
        push_all(&start(1));
        assert_eq!(slot.open_poll_start(), Some(1_028));
        push_all(&[head(POLL_END, 1, 0)]);
        // SAFETY: as above.
        unsafe { slot.hand_over(&c, None, NO_WORKER) };
        assert_eq!(
            slot.open_poll_start(),
            None,
            "a handed-over buffer starts afresh"
        );
        push_all(&[SET_WORKER, SET_TIME, 2_000]);
        push_all(&start(1));
        assert_eq!(slot.open_poll_start(), Some(2_001));
        let _drained = slot.lock();
        let len = slot.len.load(Ordering::Acquire);
        let full =
            Records::new(slot.published(0, len), 0, Stream::START).fold(None, open_poll_after);
        assert_eq!(full, Some(2_001));
    }

    /// An owner pushing at full speed while another thread copies out loses
    /// and duplicates nothing, and keeps per-thread order.
    #[test]
    fn concurrent_copy_out_is_exact() {
        const N: u64 = 200_000;
        let slot = Arc::new(ThreadSlot::new(8, None));
        let c = Arc::new(CentralCollector::new(usize::MAX / 64, slot.capacity));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let owner = {
            let (slot, c) = (slot.clone(), c.clone());
            std::thread::spawn(move || {
                let mut fresh = true;
                for i in 0..N {
                    // SAFETY: this spawned thread is the slot's only owner.
                    unsafe {
                        if fresh {
                            slot.push([SET_WORKER]);
                            slot.push([SET_TIME, i]);
                            fresh = false;
                        }
                        let room = slot.push([head(POLL_END, 0, 0), SET_TIME, i + 1]);
                        if room.is_some_and(|room| room < RESERVE_WORDS) {
                            slot.hand_over(&c, None, NO_WORKER);
                            fresh = true;
                        }
                    }
                }
                // SAFETY: as above.
                unsafe { slot.flush_owned(&c, NO_WORKER) };
            })
        };
        let reader = {
            let (slot, c, done) = (slot.clone(), c.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    slot.copy_out(&c, false);
                }
            })
        };
        owner.join().unwrap();
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        let got = times(&c);
        assert_eq!(got.len() as u64, N);
        assert!(
            got.iter().copied().eq(0..N),
            "events out of order or duplicated"
        );
    }
}
