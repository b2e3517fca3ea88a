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
//! # Compact records
//!
//! A buffer is a sequence of `u64` words. Most records are one to three
//! words instead of a 56-byte [`RecordedEvent`]: a poll (PollStart +
//! PollEnd) takes 32 bytes instead of 112, so the same memory holds 3.5×
//! the polls. The first word of a record is its head:
//!
//! | bits | field |
//! |---|---|
//! | 0–7 | tag (below; parks and unparks add [`HAS_CPU`] and [`HAS_RUN_DELAY`]) |
//! | 8–39 | local queue depth |
//! | 40–63 | nanoseconds since the buffer's previous timed record (< 16.8 ms) |
//!
//! | tag | words after the head | event |
//! |---|---|---|
//! | [`POLL_START`] | task id, and the spawn location's address if [`NEW_LOCATION`] (else the buffer's previous PollStart's) | PollStart |
//! | [`POLL_END`] | — | PollEnd |
//! | [`PARK`], [`UNPARK`] | CPU time if [`HAS_CPU`], run-queue wait if [`HAS_RUN_DELAY`] | WorkerPark, WorkerUnpark |
//! | [`WORKER_THREAD`] | worker, timestamp (head bits 8–15: kind, 32–63: tid) | WorkerThread (not timed: it leaves the delta base alone) |
//! | [`SET_TIME`] | timestamp | none: the next record's delta counts from here |
//! | [`SET_WORKER`] | — (head bits 32–63: worker) | none: the worker of the records that follow |
//! | [`SET_LOCATION`] | location address | none: the spawn location a PollStart without [`NEW_LOCATION`] has |
//!
//! A poll of a task spawned where the buffer's previous PollStart's task
//! was (every poll of a yield storm, most of a server's) is therefore 24
//! bytes instead of 112: the same memory holds 4.7× the polls.
//!
//! A buffer starts with no time (0), no worker and no location: the owner writes the
//! `SET_*` records a record needs just before it (a new buffer, 16.8 ms or
//! more since the previous timed record, another worker). Decoding
//! ([`Records`]) therefore needs a buffer from its start, or the state at
//! the point copying resumes, which the copier keeps ([`Stream`]) and writes
//! in front of each copy as `SET_*` records.

use crate::record::collector::CentralCollector;
use pulse_trace::{RecordedEvent, SpawnLocation, WorkerThreadKind};
use std::cell::UnsafeCell;
use std::panic::Location;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Worker index stored in [`ThreadSlot::worker`] before the thread has
/// recorded a worker event.
pub(crate) const NO_WORKER: u32 = u32::MAX;

/// Tag of a PollEnd record.
pub(crate) const POLL_END: u64 = 1;
/// Tag of a PollStart record.
pub(crate) const POLL_START: u64 = 2;
/// Tag of a WorkerPark record.
pub(crate) const PARK: u64 = 3;
/// Tag of a WorkerUnpark record.
pub(crate) const UNPARK: u64 = 4;
/// Tag of a WorkerThread record.
pub(crate) const WORKER_THREAD: u64 = 5;
/// Tag of a record setting the time the next delta counts from.
pub(crate) const SET_TIME: u64 = 6;
/// Tag of a record setting the worker of the records that follow.
pub(crate) const SET_WORKER: u64 = 7;
/// Tag of a record setting the spawn location of PollStarts without
/// [`NEW_LOCATION`] (copies only).
pub(crate) const SET_LOCATION: u64 = 8;
/// PollStart flag: the location's address follows the task id.
pub(crate) const NEW_LOCATION: u64 = 0x10;
/// Park/unpark flag: a CPU time word follows the head.
pub(crate) const HAS_CPU: u64 = 0x10;
/// Park/unpark flag: a run-queue wait word follows (after the CPU time).
pub(crate) const HAS_RUN_DELAY: u64 = 0x20;
/// The largest delta a head holds (about 16.8 ms; longer stretches, mostly
/// parked ones, cost a 2-word `SET_TIME` record).
pub(crate) const MAX_DELTA: u64 = (1 << 24) - 1;

/// A buffer's capacity in words per event of `buffer_events`: the memory
/// of one [`RecordedEvent`], so the setting keeps meaning the memory it
/// always did.
pub(crate) const WORDS_PER_EVENT: usize = std::mem::size_of::<RecordedEvent>().div_ceil(8);

/// The owner hands a buffer over once a record leaves fewer than this many
/// words free: more than is ever written between two such checks (a
/// PollStart with the `SET_WORKER` and `SET_TIME` records before it, 6
/// words, then at its PollEnd a 3-word WorkerThread record), so a
/// PollStart never needs to hand over.
pub(crate) const RESERVE_WORDS: usize = 16;

/// A record's head word.
#[inline]
pub(crate) fn head(tag: u64, delta: u64, local_queue: u32) -> u64 {
    tag | (u64::from(local_queue) << 8) | (delta << 40)
}

/// A spawn location as a word. Decoding turns it back into the same
/// `&'static` reference.
#[inline]
pub(crate) fn location_word(location: SpawnLocation) -> u64 {
    location.addr() as u64
}

/// The decoding state of a record stream: what the `SET_*` records set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stream {
    time: u64,
    worker: u32,
    /// Address of the previous PollStart's spawn location (0: none).
    location: u64,
}

impl Stream {
    /// The state at the start of a buffer.
    pub(crate) const START: Stream = Stream {
        time: 0,
        worker: NO_WORKER,
        location: 0,
    };

    /// `SET_*` records that bring a decoder at [`Stream::START`] to this
    /// state.
    pub(crate) fn prefix(self) -> [u64; 5] {
        [
            SET_TIME,
            self.time,
            SET_WORKER | (u64::from(self.worker) << 32),
            SET_LOCATION,
            self.location,
        ]
    }
}

/// Decodes whole records from a word slice into [`RecordedEvent`]s, in
/// order, yielding those that start at or after `from`.
#[derive(Debug)]
pub(crate) struct Records<'a> {
    words: &'a [u64],
    at: usize,
    from: usize,
    state: Stream,
}

impl<'a> Records<'a> {
    pub(crate) fn new(words: &'a [u64], from: usize, state: Stream) -> Self {
        Records {
            words,
            at: 0,
            from,
            state,
        }
    }

    /// The state after the records read so far.
    pub(crate) fn state(&self) -> Stream {
        self.state
    }

    /// Word `i` after the current record's head (0 past the end, which the
    /// owner never publishes: records are published whole).
    fn word(&self, i: usize) -> u64 {
        self.words.get(self.at + i).copied().unwrap_or(0)
    }

    /// Appends the next events, up to `max` of them, to `out`; returns
    /// `false` once the records are exhausted.
    pub(crate) fn decode_into(&mut self, out: &mut Vec<RecordedEvent>, max: usize) -> bool {
        out.reserve(max);
        for _ in 0..max {
            match self.step() {
                Some(Some(event)) => out.push(event),
                Some(None) => {}
                None => return false,
            }
        }
        true
    }

    /// Decodes the record at `at` and moves past it.
    #[inline(always)]
    fn step(&mut self) -> Option<Option<RecordedEvent>> {
        let head = *self.words.get(self.at)?;
        let tag = head & 0x0F;
        let flags = head & 0xF0;
        let high = head >> 32;
        let mut state = self.state;
        let timed = matches!(tag, POLL_START | POLL_END | PARK | UNPARK);
        let queue = (head >> 8) as u32;
        if timed {
            state.time = state.time.wrapping_add(head >> 40);
        }
        let (timestamp_nanos, worker) = (state.time, state.worker);
        let (len, event) = match tag {
            POLL_END => (
                1,
                Some(RecordedEvent::PollEnd {
                    timestamp_nanos,
                    worker,
                    local_queue: queue,
                }),
            ),
            POLL_START => {
                let len = if flags & NEW_LOCATION != 0 {
                    state.location = self.word(2);
                    3
                } else {
                    2
                };
                if state.location == 0 {
                    // Not written by the owner: stop rather than guess.
                    debug_assert!(false, "a PollStart without a location");
                    self.at = self.words.len();
                    return None;
                }
                let address = state.location as usize;
                // SAFETY: the owner wrote the address of a
                // `&'static Location<'static>` (`location_word`), which
                // is never freed; the cast back gives the same reference.
                let location: &'static Location<'static> =
                    unsafe { &*(address as *const Location<'static>) };
                (
                    len,
                    Some(RecordedEvent::PollStart {
                        timestamp_nanos,
                        worker,
                        local_queue: queue,
                        task_id: Some(self.word(1)),
                        spawned_at: SpawnLocation(location),
                    }),
                )
            }
            PARK | UNPARK => {
                let mut len = 1;
                let mut next = || {
                    len += 1;
                    self.word(len - 1)
                };
                let cpu_nanos = (flags & HAS_CPU != 0).then(&mut next);
                let run_delay_nanos = (flags & HAS_RUN_DELAY != 0).then(&mut next);
                let event = if tag == PARK {
                    RecordedEvent::WorkerPark {
                        timestamp_nanos,
                        worker,
                        local_queue: queue,
                        cpu_nanos,
                        run_delay_nanos,
                    }
                } else {
                    RecordedEvent::WorkerUnpark {
                        timestamp_nanos,
                        worker,
                        local_queue: queue,
                        cpu_nanos,
                        run_delay_nanos,
                    }
                };
                (len, Some(event))
            }
            WORKER_THREAD => (
                3,
                WorkerThreadKind::from_u8(((head >> 8) & 0xFF) as u8).map(|kind| {
                    RecordedEvent::WorkerThread {
                        timestamp_nanos: self.word(2),
                        worker: self.word(1) as u32,
                        tid: high as u32,
                        kind,
                    }
                }),
            ),
            SET_TIME => {
                state.time = self.word(1);
                (2, None)
            }
            SET_WORKER => {
                state.worker = high as u32;
                (1, None)
            }
            SET_LOCATION => {
                state.location = self.word(1);
                (2, None)
            }
            _ => {
                // Not written by the owner: stop rather than guess.
                debug_assert!(false, "unknown compact record {head:#x}");
                self.at = self.words.len();
                return None;
            }
        };
        self.state = state;
        let start = self.at;
        self.at += len;
        Some(event.filter(|_| start >= self.from))
    }
}

impl Iterator for Records<'_> {
    type Item = RecordedEvent;

    #[inline]
    fn next(&mut self) -> Option<RecordedEvent> {
        loop {
            if let Some(event) = self.step()? {
                return Some(event);
            }
        }
    }
}

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
}

/// Whether a thread is inside a poll after `event`, given whether (and
/// since when) it was before.
fn open_poll_after(open: Option<u64>, event: RecordedEvent) -> Option<u64> {
    match event {
        RecordedEvent::PollStart {
            timestamp_nanos, ..
        } => Some(timestamp_nanos),
        // Not every record ends a poll: a worker-thread record can fall
        // inside one.
        RecordedEvent::WorkerThread { .. } => open,
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

/// An empty buffer of `capacity` words whose pages are already written,
/// so the first pushes into it take no page faults inside a measured poll.
pub(crate) fn new_buffer(capacity: usize) -> Vec<u64> {
    let mut buffer = vec![0u64; capacity];
    buffer.clear();
    buffer
}

/// A thread buffer's capacity in words for `buffer_events`.
pub(crate) fn capacity_words(buffer_events: usize) -> usize {
    buffer_events
        .max(1)
        .saturating_mul(WORDS_PER_EVENT)
        .saturating_add(RESERVE_WORDS)
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
            drain: Mutex::new(Drained {
                consumed: 0,
                state: Stream::START,
                open_poll: None,
            }),
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
        let len = self.len.load(Ordering::Relaxed);
        let room = self.capacity - len;
        if N > room {
            return None;
        }
        // SAFETY: `len + N <= capacity`; the owner is the only writer of
        // the buffer and of the `Vec` (which it replaces only under
        // `drain`, not now), and no reader reads at or beyond the
        // published length (module documentation). The pointer comes from
        // the `Vec` through the `UnsafeCell` without creating a mutable
        // reference to it.
        unsafe {
            let buffer = &*self.buffer.get();
            let end = buffer.as_ptr().cast_mut().add(len);
            end.cast::<[u64; N]>().write(words);
        }
        self.len.store(len + N, Ordering::Release);
        Some(room - N)
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
        // SAFETY: as in `push`; the words beyond `used` lie beyond the
        // published length, which no reader reads.
        unsafe {
            let buffer = &*self.buffer.get();
            let end = buffer.as_ptr().cast_mut().add(len);
            end.cast::<[u64; N]>().write(words);
        }
        self.len.store(len + used, Ordering::Release);
        Some(room - used)
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
    /// `record/stacks.rs`). It decodes only what was published since the
    /// last copy.
    pub(crate) fn open_poll_start(&self) -> Option<u64> {
        let drained = self.lock();
        let len = self.len.load(Ordering::Acquire);
        let words = self.published(drained.consumed.min(len), len);
        Records::new(words, usize::MAX, drained.state).fold(drained.open_poll, open_poll_after)
    }

    /// Hands the buffer to the collector by pointer and continues in an
    /// empty recycled one (a full buffer's normal path). The owner starts
    /// its next record as at the start of a buffer ([`Stream::START`]).
    ///
    /// # Safety
    ///
    /// Only the thread that owns this slot may call it.
    pub(crate) unsafe fn hand_over(&self, collector: &CentralCollector) {
        let mut drained = self.lock();
        let len = self.len.load(Ordering::Relaxed);
        // SAFETY: the owner holds `drain`, so no reader looks at the `Vec`.
        let buffer = unsafe { &mut *self.buffer.get() };
        let mut full = std::mem::take(buffer);
        // SAFETY: words `..len` are initialised (published by the owner).
        unsafe { full.set_len(len) };
        *buffer = collector.hand_over(full, drained.consumed, self.capacity);
        // Hand-overs happen outside polls (and this thread stops).
        *drained = Drained {
            consumed: 0,
            state: Stream::START,
            open_poll: None,
        };
        self.len.store(0, Ordering::Release);
    }

    /// Hands over a copy of everything not yet copied out and empties the
    /// buffer in place (thread exit). The owner starts its next record as
    /// at the start of a buffer.
    ///
    /// # Safety
    ///
    /// Only the thread that owns this slot may call it.
    pub(crate) unsafe fn flush_owned(&self, collector: &CentralCollector) {
        let mut drained = self.lock();
        let len = self.len.load(Ordering::Relaxed);
        if len > drained.consumed {
            collector.accept(drained.state, self.published(drained.consumed, len));
        }
        // Hand-overs happen outside polls (and this thread stops).
        *drained = Drained {
            consumed: 0,
            state: Stream::START,
            open_poll: None,
        };
        self.len.store(0, Ordering::Release);
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
            let mut records = Records::new(words, usize::MAX, drained.state);
            let open_poll = records.by_ref().fold(drained.open_poll, open_poll_after);
            drained.state = records.state();
            drained.open_poll = open_poll;
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
        unsafe { slot.hand_over(&c) };
        push_all(&poll_ends([20, 21]));
        // SAFETY: as above.
        unsafe { slot.flush_owned(&c) };
        assert_eq!(times(&c), vec![11, 12, 13, 14, 20, 21]);
        assert_eq!(slot.pending(), 0);
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
                            slot.hand_over(&c);
                            fresh = true;
                        }
                    }
                }
                // SAFETY: as above.
                unsafe { slot.flush_owned(&c) };
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
