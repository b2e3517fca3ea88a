//! The compact records thread buffers and the backlog hold, and decoding
//! them back into events.
//!
//! # Layout
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
//! | [`POLL_START`] | task id, the spawn location's address if [`NEW_LOCATION`] (else the buffer's previous PollStart's), the schedule latency in nanoseconds if [`HAS_LATENCY`] | PollStart (and ScheduleLatency after it) |
//! | [`POLL_END`] | — | PollEnd |
//! | [`PARK`], [`UNPARK`] | CPU time if [`HAS_CPU`], run-queue wait if [`HAS_RUN_DELAY`] | WorkerPark, WorkerUnpark |
//! | [`WORKER_THREAD`] | worker, timestamp (head bits 8–15: kind, 32–63: tid) | WorkerThread (not timed: it leaves the delta base alone) |
//! | [`SET_TIME`] | timestamp | none: the next record's delta counts from here |
//! | [`SET_WORKER`] | — (head bits 32–63: worker) | none: the worker of the records that follow |
//! | [`SET_LOCATION`] | location address | none: the spawn location a PollStart without [`NEW_LOCATION`] has |
//! | [`SPAN_ENTER`] | span id, name and fields text ids (low and high 32 bits) | SpanEnter |
//! | [`SPAN_EXIT`], [`SPAN_CLOSE`] | span id | SpanExit, SpanClose |
//! | [`MARK`] | name text id, and the value if [`HAS_VALUE`] | Mark |
//!
//! A poll of a task spawned where the buffer's previous PollStart's task
//! was (every poll of a yield storm, most of a server's) is therefore 24
//! bytes instead of 112: the same memory holds 4.7× the polls.
//!
//! A buffer starts with no time (0), no worker and no location. The owner
//! writes a `SET_WORKER` record when its thread's worker changes, and every
//! buffer after a thread's first starts with one (`ThreadSlot::hand_over`);
//! a `SET_TIME` goes just before a timed record 16.8 ms or more after the
//! previous one (or the first in a buffer). Decoding
//! ([`Records`]) therefore needs a buffer from its start, or the state at
//! the point copying resumes, which the copier keeps ([`Stream`]) and writes
//! in front of each copy as `SET_*` records.

use crate::record::triggers::Watched;
use pulse_trace::{Encoder, RecordedEvent, SpanId, SpawnLocation, TextId, WorkerThreadKind};
use std::panic::Location;

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
/// Tag of a SpanEnter record (issue 19; appended after the tags above).
pub(crate) const SPAN_ENTER: u64 = 9;
/// Tag of a SpanExit record.
pub(crate) const SPAN_EXIT: u64 = 10;
/// Tag of a SpanClose record.
pub(crate) const SPAN_CLOSE: u64 = 11;
/// Tag of a Mark record.
pub(crate) const MARK: u64 = 12;
/// Mark flag: a value word follows the name.
pub(crate) const HAS_VALUE: u64 = 0x10;
/// PollStart flag: the location's address follows the task id.
pub(crate) const NEW_LOCATION: u64 = 0x10;
/// PollStart flag: the task's schedule latency (nanoseconds) is the
/// record's last word.
pub(crate) const HAS_LATENCY: u64 = 0x20;
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
/// worker change's `SET_WORKER` record, a PollStart with the `SET_TIME`
/// record before it, 6 words, then at its PollEnd a 3-word WorkerThread
/// record), so a PollStart never needs to hand over.
pub(crate) const RESERVE_WORDS: usize = 16;

/// A record's head word.
#[inline]
pub(crate) fn head(tag: u64, delta: u64, local_queue: u32) -> u64 {
    tag | (u64::from(local_queue) << 8) | (delta << 40)
}

/// A `SET_WORKER` record for `worker`.
#[inline]
pub(crate) fn set_worker(worker: u32) -> u64 {
    SET_WORKER | (u64::from(worker) << 32)
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
    pub(crate) time: u64,
    pub(crate) worker: u32,
    /// Address of the previous PollStart's spawn location (0: none).
    pub(crate) location: u64,
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
            set_worker(self.worker),
            SET_LOCATION,
            self.location,
        ]
    }
}

/// Decodes whole records from a word slice into [`RecordedEvent`]s, in
/// order, yielding those that start at or after `from`.
#[derive(Clone, Debug)]
pub(crate) struct Records<'a> {
    words: &'a [u64],
    at: usize,
    from: usize,
    state: Stream,
    /// The ScheduleLatency event of the PollStart just decoded, which
    /// comes next.
    pending: Option<RecordedEvent>,
}

impl<'a> Records<'a> {
    pub(crate) fn new(words: &'a [u64], from: usize, state: Stream) -> Self {
        Records {
            words,
            at: 0,
            from,
            state,
            pending: None,
        }
    }

    /// The time of the next record if it is a PollStart or PollEnd that
    /// [`encode_polls`](Self::encode_polls) may take.
    pub(crate) fn next_poll_time(&self) -> Option<u64> {
        if self.pending.is_some() || self.at < self.from {
            return None;
        }
        let head = *self.words.get(self.at)?;
        let tag = head & 0xFF;
        (tag == POLL_END || tag == POLL_START || tag == POLL_START | NEW_LOCATION)
            .then(|| self.state.time.wrapping_add(head >> 40))
    }

    /// The time of the latest timed record read so far.
    pub(crate) fn time(&self) -> u64 {
        self.state.time
    }

    /// Calls `f` with what `dump_on`'s watch reads ([`Watched::of`]) of
    /// each event from here on, in order, found from the records without
    /// building the events (for a yield storm, a few instructions per
    /// record instead of a decode: [`walk`], as [`scan`] does); `self` is
    /// left where it is. A proptest holds it to the events `step` decodes
    /// (`writer::compact_tests`).
    #[inline(always)]
    pub(crate) fn watched(&self, mut f: impl FnMut(Watched)) {
        let from = self.from;
        walk(self.words, self.at, self.state, |seen| {
            if seen.at < from {
                return;
            }
            let (timestamp_nanos, worker) = (seen.time, seen.worker);
            let watched = match seen.tag {
                POLL_START => Watched::PollStart {
                    timestamp_nanos,
                    worker,
                },
                POLL_END => Watched::PollEnd {
                    timestamp_nanos,
                    worker,
                },
                _ => match seen.run_delay {
                    Some(run_delay_nanos) => Watched::RunDelay {
                        timestamp_nanos,
                        worker,
                        run_delay_nanos,
                    },
                    None => return,
                },
            };
            f(watched);
        });
    }

    /// The state after the records read so far.
    #[cfg(test)]
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
        if let Some(event) = self.pending.take() {
            return Some(Some(event));
        }
        let head = *self.words.get(self.at)?;
        let tag = head & 0x0F;
        let flags = head & 0xF0;
        let high = head >> 32;
        let mut state = self.state;
        let timed = matches!(
            tag,
            POLL_START | POLL_END | PARK | UNPARK | SPAN_ENTER | SPAN_EXIT | SPAN_CLOSE | MARK
        );
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
                let mut len = if flags & NEW_LOCATION != 0 {
                    state.location = self.word(2);
                    3
                } else {
                    2
                };
                if flags & HAS_LATENCY != 0 {
                    let latency_nanos = self.word(len);
                    len += 1;
                    self.pending =
                        (self.at >= self.from).then_some(RecordedEvent::ScheduleLatency {
                            timestamp_nanos,
                            worker,
                            latency_nanos,
                        });
                }
                if state.location == 0 {
                    // Not written by the owner: stop rather than guess.
                    debug_assert!(false, "a PollStart without a location");
                    self.at = self.words.len();
                    return None;
                }
                (
                    len,
                    Some(RecordedEvent::PollStart {
                        timestamp_nanos,
                        worker,
                        local_queue: queue,
                        task_id: Some(self.word(1)),
                        spawned_at: spawn_location(state.location),
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
            SPAN_ENTER => {
                let text = self.word(2);
                (
                    3,
                    Some(RecordedEvent::SpanEnter {
                        timestamp_nanos,
                        worker,
                        span: SpanId(self.word(1)),
                        name: TextId(text as u32),
                        fields: TextId((text >> 32) as u32),
                    }),
                )
            }
            SPAN_EXIT => (
                2,
                Some(RecordedEvent::SpanExit {
                    timestamp_nanos,
                    worker,
                    span: SpanId(self.word(1)),
                }),
            ),
            SPAN_CLOSE => (
                2,
                Some(RecordedEvent::SpanClose {
                    timestamp_nanos,
                    worker,
                    span: SpanId(self.word(1)),
                }),
            ),
            MARK => {
                let has_value = flags & HAS_VALUE != 0;
                (
                    2 + usize::from(has_value),
                    Some(RecordedEvent::Mark {
                        timestamp_nanos,
                        worker,
                        name: TextId(self.word(1) as u32),
                        value: has_value.then(|| self.word(2)),
                    }),
                )
            }
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

impl Records<'_> {
    /// Encodes the records (those from `from` on) with `encoder`: the
    /// bytes encoding the events this iterator yields would give. PollStart
    /// and PollEnd records, nearly all of a busy trace, go from their words
    /// to bytes ([`Encoder::encode_poll_start`]); any other record (and a
    /// PollStart with flags this fast path does not know) is decoded into
    /// its event by [`step`](Self::step), the one place that knows every
    /// kind. Returns how many events were encoded.
    pub(crate) fn encode_into(&mut self, encoder: &mut Encoder, out: &mut Vec<u8>) -> u64 {
        self.encode_until(encoder, out, usize::MAX).0
    }

    /// Encodes events as [`encode_into`](Self::encode_into) does until
    /// `out` holds at least `limit` bytes or the records are exhausted.
    /// Runs of PollStart and PollEnd records go through
    /// [`encode_polls`](Self::encode_polls), the rest one by one. Returns
    /// how many events were encoded and whether records remain.
    pub(crate) fn encode_until(
        &mut self,
        encoder: &mut Encoder,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> (u64, bool) {
        let mut count = 0;
        loop {
            count += self.encode_polls(encoder, out, limit, u64::MAX);
            if out.len() >= limit {
                return (count, true);
            }
            if !self.encode_next(encoder, out) {
                return (count, false);
            }
            count += 1;
        }
    }

    /// Encodes the PollStart and PollEnd records from here on through an
    /// [`Encoder::poll_run`], with the decoding state in local variables,
    /// until a record the run does not take (another kind, a new spawn
    /// location, a schedule latency, time going back), a record later than
    /// `until` (ns), the end, or `out` holding `limit` bytes; returns how
    /// many. The bytes are those [`encode_next`](Self::encode_next) gives:
    /// the run refuses what it would encode differently.
    #[inline(always)]
    pub(crate) fn encode_polls(
        &mut self,
        encoder: &mut Encoder,
        out: &mut Vec<u8>,
        limit: usize,
        until: u64,
    ) -> u64 {
        if self.pending.is_some() || self.at < self.from {
            return 0;
        }
        let Some(mut run) = encoder.poll_run(self.state.worker, out) else {
            return 0;
        };
        let words = self.words;
        let (mut at, mut time, mut location) = (self.at, self.state.time, self.state.location);
        let mut count = 0;
        while run.len() < limit {
            let Some(&head) = words.get(at) else {
                break;
            };
            let next = time.wrapping_add(head >> 40);
            if next > until {
                break;
            }
            let queue = (head >> 8) as u32;
            let word = |i: usize| words.get(at + i).copied().unwrap_or(0);
            let len = match head & 0xFF {
                POLL_END if run.poll_end(next, queue) => 1,
                POLL_START
                    if location != 0
                        && run.poll_start(next, queue, word(1), spawn_location(location)) =>
                {
                    2
                }
                tag if tag == POLL_START | NEW_LOCATION
                    && word(2) != 0
                    && run.poll_start(next, queue, word(1), spawn_location(word(2))) =>
                {
                    location = word(2);
                    3
                }
                _ => break,
            };
            at += len;
            time = next;
            count += 1;
        }
        drop(run);
        self.at = at;
        self.state.time = time;
        self.state.location = location;
        count
    }

    /// Encodes the next event as [`encode_into`](Self::encode_into) does;
    /// `false` once the records are exhausted.
    #[inline(always)]
    pub(crate) fn encode_next(&mut self, encoder: &mut Encoder, out: &mut Vec<u8>) -> bool {
        loop {
            // A ScheduleLatency follows its PollStart (decoded by `step`).
            if let Some(event) = self.pending.take() {
                encoder.encode(&event, out);
                return true;
            }
            let Some(&head) = self.words.get(self.at) else {
                return false;
            };
            if self.at >= self.from {
                let queue = (head >> 8) as u32;
                let time = self.state.time.wrapping_add(head >> 40);
                let (worker, location) = (self.state.worker, self.state.location);
                match head & 0xFF {
                    POLL_END => {
                        self.state.time = time;
                        encoder.encode_poll_end(time, worker, queue, out);
                        self.at += 1;
                        return true;
                    }
                    POLL_START if location != 0 => {
                        self.state.time = time;
                        let task = Some(self.word(1));
                        let spawned_at = spawn_location(location);
                        encoder.encode_poll_start(time, worker, queue, task, spawned_at, out);
                        self.at += 2;
                        return true;
                    }
                    tag if tag == POLL_START | NEW_LOCATION && self.word(2) != 0 => {
                        let location = self.word(2);
                        self.state.time = time;
                        self.state.location = location;
                        let task = Some(self.word(1));
                        let spawned_at = spawn_location(location);
                        encoder.encode_poll_start(time, worker, queue, task, spawned_at, out);
                        self.at += 3;
                        return true;
                    }
                    _ => {}
                }
            }
            match self.step() {
                Some(Some(event)) => {
                    encoder.encode(&event, out);
                    return true;
                }
                Some(None) => {}
                None => return false,
            }
        }
    }
}

/// The decoding state after `words` (which decode from `state`) and the
/// start of the poll they end inside, if they do, given `open`, the poll
/// open before them: what decoding them with [`Records`] and following
/// each event's effect on the open poll gives, from the heads, the `SET_*`
/// records and the location words alone, without building an event.
/// PollStart opens a poll; PollEnd, park and unpark close it; the other
/// records (worker thread, span, mark, `SET_*`) leave it as it was.
pub(crate) fn scan(words: &[u64], state: Stream, mut open: Option<u64>) -> (Stream, Option<u64>) {
    let state = walk(words, 0, state, |seen| {
        open = (seen.tag == POLL_START).then_some(seen.time);
    });
    (state, open)
}

/// A poll, park or unpark record as [`walk`] sees it.
#[derive(Clone, Copy)]
struct Seen {
    /// The record's tag (without flags) and index.
    tag: u64,
    at: usize,
    time: u64,
    worker: u32,
    /// A park's or unpark's run-queue wait.
    run_delay: Option<u64>,
}

/// Follows the decoding state through `words` from index `at` (whose
/// state is `state`), from the heads, the `SET_*` records and the
/// location words alone, calling `f` for each poll, park and unpark
/// record; returns the state where it stops: the end, or where `Records`
/// stops (a record its owner does not write, a PollStart without a
/// location). What [`scan`] and [`Records::watched`] share with `step`'s
/// decoding.
#[inline(always)]
fn walk(words: &[u64], mut at: usize, mut state: Stream, mut f: impl FnMut(Seen)) -> Stream {
    while let Some(&head) = words.get(at) {
        let word = |i: usize| words.get(at + i).copied().unwrap_or(0);
        let tag = head & 0x0F;
        let flags = head & 0xF0;
        let time = state.time.wrapping_add(head >> 40);
        let mut run_delay = None;
        let len = match tag {
            POLL_END => 1,
            PARK | UNPARK => {
                let cpu = usize::from(flags & HAS_CPU != 0);
                if flags & HAS_RUN_DELAY != 0 {
                    run_delay = Some(word(1 + cpu));
                }
                1 + cpu + usize::from(run_delay.is_some())
            }
            POLL_START => {
                let location = if flags & NEW_LOCATION != 0 {
                    word(2)
                } else {
                    state.location
                };
                if location == 0 {
                    // Where `Records` stops (a PollStart without a location).
                    break;
                }
                state.location = location;
                2 + usize::from(flags & NEW_LOCATION != 0) + usize::from(flags & HAS_LATENCY != 0)
            }
            SPAN_ENTER => 3,
            SPAN_EXIT | SPAN_CLOSE => 2,
            MARK => 2 + usize::from(flags & HAS_VALUE != 0),
            WORKER_THREAD => 3,
            SET_TIME => {
                state.time = word(1);
                2
            }
            SET_WORKER => {
                state.worker = (head >> 32) as u32;
                1
            }
            SET_LOCATION => {
                state.location = word(1);
                2
            }
            // Where `Records` stops (not written by the owner).
            _ => break,
        };
        let reported = matches!(tag, POLL_END | PARK | UNPARK | POLL_START);
        if reported || matches!(tag, SPAN_ENTER | SPAN_EXIT | SPAN_CLOSE | MARK) {
            state.time = time;
        }
        if reported {
            f(Seen {
                tag,
                at,
                time,
                worker: state.worker,
                run_delay,
            });
        }
        at += len;
    }
    state
}

/// The spawn location whose address a record holds (not 0).
#[inline(always)]
fn spawn_location(address: u64) -> SpawnLocation {
    // SAFETY: the owner wrote the address of a `&'static Location<'static>`
    // (`location_word`), which is never freed; the cast back gives the
    // same reference.
    let location: &'static Location<'static> =
        unsafe { &*(address as usize as *const Location<'static>) };
    SpawnLocation(location)
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
