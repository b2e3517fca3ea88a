//! The hot path: what Tokio's hooks run on worker threads, and installing
//! them. Read top to bottom, this file is everything a traced worker does.
//!
//! **A poll** (PollStart + PollEnd) costs two timestamps and two stores:
//! each hook reads the timestamp clock (`clock`: one `rdtsc`, scaled, where
//! the TSC is invariant; a record's time never goes back on this thread,
//! which costs nothing until it would: `Local::head`), reads the worker's
//! local queue depth from Tokio's metrics (a PollStart only when this
//! thread's previous reading at a PollStart is 1 µs old or more, a PollEnd
//! only after a poll of 1 µs or more: the others repeat a reading,
//! [`QUEUE_REREAD_NS`]), counts the live metrics in thread-local fields,
//! and writes one compact record into this thread's buffer (`buffer.rs`: a
//! PollEnd is one 8-byte word, a PollStart two, three when its task's
//! spawn location differs from the previous PollStart's, one more with
//! `schedule_latency` on (the task's schedule latency, which Tokio
//! measured); the time is a delta from the buffer's previous record and
//! the worker is implicit; plain stores and a release store of the
//! length). No lock, allocation, system call, hash or `dyn`.
//!
//! **A full buffer** is handed to the collector whole, by pointer, and the
//! thread continues in a recycled empty buffer: one uncontended mutex (the
//! buffer's `drain`) plus the collector's mutex, once per buffer (~2,400
//! polls at the default `buffer_events`), never between a poll's two
//! timestamps: every hook but PollStart hands over when fewer than
//! [`RESERVE_WORDS`] words are left, which holds anything a PollStart
//! writes.
//!
//! **A park or unpark** reads the timestamp and, only when at least
//! [`READING_INTERVAL_NANOS`] (1 ms) passed since this thread's previous
//! reading, the thread's CPU time and run-queue wait: one `pread` of
//! `/proc/thread-self/schedstat` (both values; `clock_gettime(
//! CLOCK_THREAD_CPUTIME_ID)` for the CPU time alone with `run_queue_wait`
//! off). The timestamp is taken after the reading, so a thread preempted
//! inside the hook has that wait counted in the stretch the reading closes,
//! never as parked. A worker therefore makes at most ~1,000 of these
//! system calls a second however often it parks; between readings the
//! sampler's per-worker readings (every `sample_ms`) cover long stretches.
//!
//! The flusher thread copies what every buffer has published on each tick,
//! so a parked worker's events leave without the worker doing anything.

// Without `--cfg tokio_unstable` there are no poll hooks: the poll side of
// the hot path is compiled (for `pulse::bench`) but not called.
#![cfg_attr(not(any(tokio_unstable, feature = "bench")), allow(dead_code))]

use crate::record::buffer::{
    self, ThreadSlot, HAS_CPU, HAS_LATENCY, HAS_RUN_DELAY, HAS_VALUE, MARK, MAX_DELTA,
    NEW_LOCATION, NO_WORKER, PARK, POLL_END, POLL_START, RESERVE_WORDS, SET_TIME, UNPARK,
    WORKER_THREAD,
};
#[cfg(feature = "tracing")]
use crate::record::buffer::{SPAN_CLOSE, SPAN_ENTER, SPAN_EXIT};
use crate::record::clock::{self, SchedStatFile};
use crate::record::metrics::MetricsBatch;
use crate::record::shared::{saturate_u32, Shared};
use pulse_trace::{SpawnLocation, WorkerThreadKind, READING_INTERVAL_NANOS};
use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::runtime::Builder;
#[cfg(tokio_unstable)]
use tokio::runtime::TaskMeta;

/// The calling thread's buffer and cached per-thread resources.
struct Local {
    shared: Arc<Shared>,
    slot: Arc<ThreadSlot>,
    /// `/proc/thread-self/schedstat`, opened once per thread.
    schedstat: Option<SchedStatFile>,
    /// The last PollStart was recorded, so its PollEnd must be too (keeps
    /// start/end paired when recording is toggled mid-poll).
    in_poll: bool,
    /// The local queue depth of this thread's latest PollStart: what a
    /// short poll's PollEnd, and a PollStart less than [`QUEUE_REREAD_NS`]
    /// after `queue_read_at`, repeat.
    queue: u32,
    /// When the latest PollStart that read `queue` from Tokio did.
    queue_read_at: u64,
    /// The last park was recorded, so its unpark must be too.
    parked: bool,
    /// Last worker index seen, mirrored into `slot.worker` on change.
    worker: u32,
    /// This thread's unsubmitted metric counts.
    metrics: MetricsBatch,
    /// A park or unpark at or after this time takes a reading.
    next_reading_at: u64,
    /// The time of this buffer's previous timed record, which the next
    /// one's delta counts from. In a fresh buffer, [`FRESH`] plus this
    /// thread's latest recorded time (see [`head`](Self::head)).
    stream_time: u64,
    /// The spawn location of this buffer's previous PollStart (0: none).
    stream_location: u64,
    /// Span enters recorded on this thread minus exits recorded: while
    /// positive, exits are recorded even with recording disabled, so the
    /// trace keeps enters and exits paired (as `in_poll` does for polls).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    open_spans: u32,
}

/// Marks a fresh buffer's `Local::stream_time` (whose other bits are the
/// thread's latest time): any timestamp's delta from it is then over
/// [`MAX_DELTA`], so the buffer's first timed record sets the time.
/// Trace times stay below it (2^63 ns is 292 years).
const FRESH: u64 = 1 << 63;

/// One CPU/run-queue reading of this thread: `(cpu_nanos, run_delay_nanos)`.
type Reading = (Option<u64>, Option<u64>);

impl Local {
    #[cold]
    fn new(shared: &Arc<Shared>) -> Local {
        let tid = clock::current_tid();
        let slot = Arc::new(ThreadSlot::new(shared.buffer_events, tid));
        shared.slots().push(slot.clone());
        let schedstat = if shared.run_queue_wait {
            SchedStatFile::open_current_thread().ok()
        } else {
            None
        };
        Local {
            shared: shared.clone(),
            slot,
            schedstat,
            in_poll: false,
            queue: 0,
            queue_read_at: 0,
            parked: false,
            worker: NO_WORKER,
            metrics: MetricsBatch::new(),
            next_reading_at: 0,
            stream_time: 0,
            stream_location: 0,
            open_spans: 0,
        }
    }

    /// Nanoseconds since the trace started, as read: a record made with
    /// it is kept from going backwards by [`head`](Self::head).
    #[inline]
    fn now(&self) -> u64 {
        self.shared.now()
    }

    /// The latest time this thread recorded (0 before its first record).
    fn latest_time(&self) -> u64 {
        self.stream_time & !FRESH
    }

    /// [`now`](Self::now), never earlier than this thread's latest
    /// recorded time: for records that carry their time whole instead of
    /// going through [`head`](Self::head) (rare ones).
    fn now_monotonic(&self) -> u64 {
        self.now().max(self.latest_time())
    }

    /// The head word of a compact record (`buffer.rs`): `tag`, the local
    /// queue depth and the time since this buffer's previous timed record.
    /// When that is 16.8 ms or more (or the buffer is fresh), it first
    /// writes the `SET_TIME` record the head relies on, which never hands
    /// over: the reserve holds it.
    ///
    /// This is also where the thread's record times are kept from going
    /// backwards (the TSC of the CPU a thread moved to may be a few ticks
    /// behind the previous one's), at no cost in the common case: an
    /// earlier `timestamp` makes the wrapping delta huge, and the out-of-
    /// line [`set_time`](Self::set_time) then records the previous time
    /// again. A fresh buffer's `stream_time` is [`FRESH`] plus the
    /// thread's latest time, so the same check covers hand-overs.
    ///
    /// The record's worker is this thread's (`self.worker`), which the
    /// buffer already says: [`change_worker`](Self::change_worker) writes a
    /// `SET_WORKER` record when it changes, and every buffer after the
    /// first starts with one (`ThreadSlot::hand_over`), so no record checks
    /// it.
    #[inline]
    fn head(&mut self, tag: u64, timestamp: u64, local_queue: u32) -> u64 {
        let mut delta = timestamp.wrapping_sub(self.stream_time);
        if delta > MAX_DELTA {
            delta = self.set_time(timestamp);
        } else {
            self.stream_time = timestamp;
        }
        buffer::head(tag, delta, local_queue)
    }

    /// A head's time is 16.8 ms or more after the previous record's, the
    /// buffer is fresh, or the time went back: sets the stream's time to
    /// `timestamp`, or to the thread's latest time if that is later
    /// (writing a `SET_TIME` record unless it stays); returns the delta
    /// the head has (0).
    #[cold]
    #[inline(never)]
    fn set_time(&mut self, timestamp: u64) -> u64 {
        let fresh = self.stream_time & FRESH != 0;
        let time = timestamp.max(self.latest_time());
        if fresh || time != self.stream_time {
            self.write([SET_TIME, time]);
        }
        self.stream_time = time;
        0
    }

    /// Appends a record without handing over (a PollStart, or `SET_*`
    /// records before a record): the reserve always holds it.
    #[inline]
    fn write<const N: usize>(&mut self, words: [u64; N]) {
        // SAFETY: `Local` belongs to this thread (see `with_local`), so this
        // thread owns `slot`.
        if unsafe { self.slot.push(words) }.is_none() {
            self.no_room(N);
        }
    }

    /// Appends a record, then hands the buffer over when fewer than
    /// [`RESERVE_WORDS`] words are left, so whatever the next PollStart
    /// writes fits without a hand-over inside its poll.
    #[inline]
    fn push<const N: usize>(&mut self, words: [u64; N]) {
        // One check in the common case: room for the record and the
        // reserve after it.
        // SAFETY: as in `write`.
        if unsafe { !self.slot.push_leaving(words, RESERVE_WORDS) } {
            self.push_and_hand_over(words);
        }
    }

    /// [`push`](Self::push) where the record leaves less than the reserve.
    #[cold]
    #[inline(never)]
    fn push_and_hand_over<const N: usize>(&mut self, words: [u64; N]) {
        // SAFETY: as in `write`.
        match unsafe { self.slot.push(words) } {
            Some(room) if room >= RESERVE_WORDS => {}
            Some(_) => self.hand_over(),
            None => self.no_room(N),
        }
    }

    /// Unreachable while the reserve rule holds (every record and the
    /// `SET_*` records before it fit in [`RESERVE_WORDS`]): counted as a
    /// dropped event rather than written out of bounds, and the full
    /// buffer is handed over, so the next record starts a fresh one.
    #[cold]
    #[inline(never)]
    fn no_room(&mut self, words: usize) {
        debug_assert!(false, "a {words}-word record did not fit in the reserve");
        self.shared.collector.add_dropped(1);
        self.hand_over();
    }

    /// The next record starts a fresh buffer, whose only record (if any)
    /// says the worker; its first timed record sets the time (no earlier
    /// than this thread's latest).
    fn reset_stream(&mut self) {
        self.stream_time = FRESH | self.latest_time();
        self.stream_location = 0;
    }

    #[cold]
    #[inline(never)]
    fn hand_over(&mut self) {
        // A span or mark record can fill the buffer inside a poll: the
        // next buffer then starts inside that poll.
        let open_poll = self.in_poll.then(|| self.metrics.poll_started_at());
        // SAFETY: see `write`.
        unsafe {
            self.slot
                .hand_over(&self.shared.collector, open_poll, self.worker)
        };
        self.reset_stream();
    }

    /// Hands over everything recorded so far; `worker`: the worker the
    /// thread's next records are for ([`NO_WORKER`] at thread exit).
    fn flush(&mut self, worker: u32) {
        // SAFETY: see `write`.
        unsafe { self.slot.flush_owned(&self.shared.collector, worker) }
        self.reset_stream();
        self.metrics.submit_pending(&self.shared.metrics_totals);
    }

    #[inline]
    fn note_worker(&mut self, worker: u32) {
        if self.worker != worker {
            self.change_worker(worker);
        }
    }

    /// This thread starts running `worker` (first event, or Tokio moved a
    /// worker here): say so in the trace, so that the analysis follows
    /// the worker to this thread (issue 12, worker identity).
    #[cold]
    fn change_worker(&mut self, worker: u32) {
        self.worker = worker;
        // The worker of every record that follows in this buffer.
        self.write([buffer::set_worker(worker)]);
        self.slot.worker.store(worker, Ordering::Relaxed);
        self.metrics.set_worker(worker, &self.shared.metrics_totals);
        let now = self.now_monotonic();
        // The previous worker's depth is no reading of this one's: the
        // next PollStart reads.
        self.queue_read_at = now.wrapping_sub(QUEUE_REREAD_NS);
        self.push_worker_thread(worker, now, WorkerThreadKind::Runs);
    }

    /// The local queue depth for a PollStart at `now`: Tokio's, or the
    /// thread's previous reading while that is less than
    /// [`QUEUE_REREAD_NS`] old (read again if this thread's clock went
    /// back).
    #[inline]
    fn start_queue(&mut self, now: u64) -> u32 {
        if now.wrapping_sub(self.queue_read_at) >= QUEUE_REREAD_NS {
            self.queue = self.shared.local_queue(self.worker as usize);
            self.queue_read_at = now;
            self.metrics.queue_read(self.queue);
        }
        self.queue
    }

    #[cold]
    fn push_worker_thread(&mut self, worker: u32, timestamp_nanos: u64, kind: WorkerThreadKind) {
        let Some(tid) = self.slot.tid.and_then(|tid| u32::try_from(tid).ok()) else {
            return;
        };
        self.push([
            WORKER_THREAD | ((kind as u64) << 8) | (u64::from(tid) << 32),
            u64::from(worker),
            timestamp_nanos,
        ]);
    }

    /// After a long poll ending at `timestamp_nanos`: if Tokio now runs
    /// the thread's worker on another thread (the poll called
    /// `block_in_place`), says so before the PollEnd.
    #[cold]
    #[inline(never)]
    fn check_detached(&mut self, timestamp_nanos: u64) {
        let worker = self.worker;
        if self.lost_worker(worker) {
            let timestamp_nanos = timestamp_nanos.max(self.latest_time());
            self.push_worker_thread(worker, timestamp_nanos, WorkerThreadKind::PollDetached);
        }
    }

    /// Whether Tokio now runs `worker` on another thread: a poll that
    /// called `block_in_place` ends on a thread that handed its worker
    /// over. Tokio's own record of the worker's thread decides.
    #[cold]
    fn lost_worker(&self, worker: u32) -> bool {
        #[cfg(tokio_unstable)]
        {
            let owner = self
                .shared
                .runtime_metrics()
                .filter(|metrics| (worker as usize) < metrics.num_workers())
                .and_then(|metrics| metrics.worker_thread_id(worker as usize));
            owner.is_some_and(|owner| owner != std::thread::current().id())
        }
        #[cfg(not(tokio_unstable))]
        {
            let _ = worker;
            false
        }
    }

    /// A park's or unpark's timestamp, with a reading when the stretch
    /// since this thread's previous one is long enough to matter.
    #[inline]
    fn park_timestamp(&mut self) -> (u64, Reading) {
        let now = self.now();
        if now < self.next_reading_at {
            return (now, (None, None));
        }
        self.take_reading()
    }

    /// Reads CPU time and run-queue wait, then the timestamp (after, so a
    /// preemption inside the read belongs to the stretch the reading
    /// closes).
    #[cold]
    #[inline(never)]
    fn take_reading(&mut self) -> (u64, Reading) {
        let stat = self.schedstat.as_ref().and_then(|file| file.read().ok());
        let reading = match stat {
            Some(stat) => (Some(stat.cpu_nanos), Some(stat.run_delay_nanos)),
            None => (cfg!(unix).then(clock::thread_cpu_nanos), None),
        };
        let timestamp = self.now();
        self.next_reading_at = timestamp.saturating_add(READING_INTERVAL_NANOS);
        (timestamp, reading)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Thread exit: nothing recorded on this thread may be lost.
        self.flush(NO_WORKER);
    }
}

thread_local! {
    /// This thread's `Local`, or null. A raw pointer has no destructor, so
    /// reading it is one thread-local load, with no lazy-registration check.
    static LOCAL: Cell<*mut Local> = const { Cell::new(std::ptr::null_mut()) };
    /// Owns the `Local` `LOCAL` points to, and frees it at thread exit.
    static OWNER: RefCell<Option<OwnedLocal>> = const { RefCell::new(None) };
}

/// The allocation behind `LOCAL`.
struct OwnedLocal(*mut Local);

impl Drop for OwnedLocal {
    fn drop(&mut self) {
        // Unpublish first: nothing may reach the `Local` while it is freed.
        LOCAL.set(std::ptr::null_mut());
        // SAFETY: the pointer came from `Box::into_raw` in `new_local`
        // and is freed only here.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

/// Runs `f` with this thread's buffer for `shared`, creating it on first use
/// (or when the thread switches to another recording).
#[inline]
fn with_local(shared: &Arc<Shared>, f: impl FnOnce(&mut Local)) {
    // SAFETY: `LOCAL` is non-null only while `OWNER` keeps the allocation,
    // only this thread uses it, and no code running inside `f` calls back
    // into a hook, so this is the only reference.
    let local = match unsafe { LOCAL.get().as_mut() } {
        Some(local) if Arc::ptr_eq(&local.shared, shared) => local,
        _ => match new_local(shared) {
            // SAFETY: as above.
            Some(local) => unsafe { &mut *local },
            None => return,
        },
    };
    f(local);
}

/// Rare: first event of this thread, or a thread that records for two
/// runtimes in turn (the old buffer is handed over first). `None` while
/// the thread is exiting.
#[cold]
#[inline(never)]
fn new_local(shared: &Arc<Shared>) -> Option<*mut Local> {
    OWNER
        .try_with(|owner| {
            let mut owner = owner.try_borrow_mut().ok()?;
            *owner = None;
            let local = Box::into_raw(Box::new(Local::new(shared)));
            *owner = Some(OwnedLocal(local));
            LOCAL.set(local);
            Some(local)
        })
        .ok()
        .flatten()
}

/// Hands the calling thread's buffer to the collector (if it belongs to
/// `shared`).
pub(crate) fn flush_current_thread(shared: &Arc<Shared>) {
    // SAFETY: see `with_local`.
    if let Some(local) = unsafe { LOCAL.get().as_mut() } {
        if Arc::ptr_eq(&local.shared, shared) {
            local.flush(local.worker);
        }
    }
}

/// Tokio's task id as a number. `tokio::task::Id` exposes it only through
/// `Display` (which would format per poll) and `Hash`; its `Hash` writes the
/// id with a single `write_u64`, which this hasher captures.
#[inline]
pub(crate) fn task_id_u64(id: tokio::task::Id) -> u64 {
    #[derive(Default)]
    struct Capture(u64);
    impl std::hash::Hasher for Capture {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            // Not reached for today's `Id`; keep any future layout's bytes.
            for &b in bytes {
                self.0 = (self.0 << 8) | u64::from(b);
            }
        }
        fn write_u64(&mut self, value: u64) {
            self.0 = value;
        }
    }
    let mut capture = Capture::default();
    std::hash::Hash::hash(&id, &mut capture);
    capture.0
}

#[inline]
fn current_worker() -> Option<u32> {
    tokio::runtime::worker_index().map(saturate_u32)
}

// The four recording functions take the worker index as an argument so that
// `bench::HotPath` drives exactly the code the hooks run.

/// `schedule_latency`: Tokio's schedule latency of the task in
/// nanoseconds, when it measures it (`Config::schedule_latency`).
#[inline]
pub(crate) fn record_poll_start(
    shared: &Arc<Shared>,
    worker: u32,
    task_id: u64,
    spawned_at: SpawnLocation,
    schedule_latency: Option<u64>,
) {
    if !shared.is_enabled() {
        return;
    }
    with_local(shared, |local| {
        // A worker change (rare) is noted first: its WorkerThread record
        // must not be later than this PollStart, and its set-up is not
        // poll time.
        local.note_worker(worker);
        let timestamp_nanos = local.now();
        let local_queue = local.start_queue(timestamp_nanos);
        local.in_poll = true;
        local.metrics.poll_start(timestamp_nanos);
        // The location only when it differs from the previous PollStart's
        // (decided without a branch: three words written, two or three
        // published).
        let location = buffer::location_word(spawned_at);
        let new_location = u64::from(location != local.stream_location);
        local.stream_location = location;
        let tag = POLL_START | (new_location * NEW_LOCATION);
        let used = 2 + new_location as usize;
        // Never a hand-over here: that would fall inside the poll.
        let pushed = match schedule_latency {
            None => {
                let head = local.head(tag, timestamp_nanos, local_queue);
                // SAFETY: `Local` belongs to this thread (see `with_local`).
                unsafe { local.slot.push_first([head, task_id, location], used) }
            }
            // The latency is the last word: the third without a new
            // location (chosen without a branch), the fourth with one.
            Some(latency) => {
                let head = local.head(tag | HAS_LATENCY, timestamp_nanos, local_queue);
                let third = if new_location == 1 { location } else { latency };
                // SAFETY: as above.
                unsafe {
                    local
                        .slot
                        .push_first([head, task_id, third, latency], used + 1)
                }
            }
        };
        if pushed.is_none() {
            local.no_room(4);
        }
    });
}

/// The end of the poll this thread started, recorded for the worker its
/// PollStart was (so the two stay paired). Tokio runs the after-poll hook
/// on the thread that ran the poll, in that worker's context, also after
/// `block_in_place` handed the worker to another thread (its
/// `worker_index()` then still names the same worker), so the hook asks
/// Tokio nothing: a poll that lost its worker is found by its length
/// ([`DETACH_CHECK_NS`]). A thread with no recorded start records nothing.
#[inline]
pub(crate) fn record_poll_end(shared: &Arc<Shared>) {
    // Never set up a buffer here: only a thread that recorded a start has
    // an end to record.
    // SAFETY: see `with_local`.
    let Some(local) = (unsafe { LOCAL.get().as_mut() }) else {
        return;
    };
    if Arc::ptr_eq(&local.shared, shared) {
        end_poll(local);
    }
}

/// Polls at least this long are checked for having ended on a thread that
/// no longer runs their worker (`block_in_place`).
const DETACH_CHECK_NS: u64 = 1_000_000;

/// How often a thread's polls read their worker's local queue depth from
/// Tokio (`primitives/worker_local_queue_depth`, ~1.7 ns a read), so
/// that a stream of short polls pays about one read per microsecond:
///
/// - A PollStart reads it when the reading of the thread's previous
///   PollStart that read it is this old or more, and repeats that reading
///   otherwise: a PollStart's depth is Tokio's as of at most 1 µs before
///   it, for the same worker (a worker change makes the next PollStart
///   read; what changed since shows at the next reading).
/// - A PollEnd reads it after a poll this long or longer; a shorter poll's
///   PollEnd repeats its PollStart's depth (what the poll queued shows at
///   the next PollStart that reads).
///
/// Parks and unparks always read.
const QUEUE_REREAD_NS: u64 = 1_000;

// `end_poll` checks for a detached worker among the polls that read the
// depth again.
const _: () = assert!(DETACH_CHECK_NS >= QUEUE_REREAD_NS);

/// Ends the thread's poll, if it recorded one's start.
#[inline]
fn end_poll(local: &mut Local) {
    if !std::mem::take(&mut local.in_poll) {
        return;
    }
    let timestamp_nanos = local.now();
    // Saturating: a clock that went back (the TSC of the CPU the thread
    // moved to) makes a poll of 0 ns (its record's time is kept in order
    // by `head`).
    let took = timestamp_nanos.saturating_sub(local.metrics.poll_started_at());
    let local_queue = if took >= QUEUE_REREAD_NS {
        // A longer poll (rare): Tokio's depth now, and whether the poll
        // ended on a thread that lost its worker.
        if took >= DETACH_CHECK_NS {
            local.check_detached(timestamp_nanos);
        }
        let depth = local.shared.local_queue(local.worker as usize);
        local.metrics.queue_read(depth);
        depth
    } else {
        local.queue
    };
    local.metrics.poll_end(took, &local.shared.metrics_totals);
    // A full buffer is handed over here, after the poll's end.
    let head = local.head(POLL_END, timestamp_nanos, local_queue);
    local.push([head]);
}

pub(crate) fn record_park(shared: &Arc<Shared>, worker: u32) {
    if !shared.is_enabled() {
        return;
    }
    with_local(shared, |local| {
        local.note_worker(worker);
        let local_queue = local.shared.local_queue(worker as usize);
        let (timestamp_nanos, reading) = local.park_timestamp();
        local.parked = true;
        local
            .metrics
            .park(local_queue, &local.shared.metrics_totals);
        push_park(local, PARK, timestamp_nanos, local_queue, reading);
    });
}

pub(crate) fn record_unpark(shared: &Arc<Shared>, worker: u32) {
    let enabled = shared.is_enabled();
    with_local(shared, |local| {
        if !std::mem::take(&mut local.parked) && !enabled {
            return;
        }
        local.note_worker(worker);
        let local_queue = local.shared.local_queue(worker as usize);
        let (timestamp_nanos, reading) = local.park_timestamp();
        local.metrics.unpark(local_queue);
        push_park(local, UNPARK, timestamp_nanos, local_queue, reading);
    });
}

/// A park or unpark record: the head, then the reading's values it has.
#[inline]
fn push_park(local: &mut Local, tag: u64, timestamp: u64, queue: u32, reading: Reading) {
    match reading {
        (None, None) => {
            let head = local.head(tag, timestamp, queue);
            local.push([head]);
        }
        (Some(cpu), None) => {
            let head = local.head(tag | HAS_CPU, timestamp, queue);
            local.push([head, cpu]);
        }
        (None, Some(run_delay)) => {
            let head = local.head(tag | HAS_RUN_DELAY, timestamp, queue);
            local.push([head, run_delay]);
        }
        (Some(cpu), Some(run_delay)) => {
            let head = local.head(tag | HAS_CPU | HAS_RUN_DELAY, timestamp, queue);
            local.push([head, cpu, run_delay]);
        }
    }
}

/// Whether this build can record schedule latencies: Tokio measures them
/// only with `--cfg tokio_unstable` and its `schedule-latency` feature,
/// which exists on 64-bit targets (this crate turns it on there).
pub(crate) const SCHEDULE_LATENCY_AVAILABLE: bool = cfg!(all(
    tokio_unstable,
    target_pointer_width = "64",
    target_has_atomic = "64"
));

/// Has Tokio measure every task's schedule latency.
#[cfg(tokio_unstable)]
fn track_schedule_latency(builder: &mut Builder) {
    #[cfg(all(target_pointer_width = "64", target_has_atomic = "64"))]
    builder.track_task_schedule_latency();
    #[cfg(not(all(target_pointer_width = "64", target_has_atomic = "64")))]
    let _ = builder;
}

/// The task's schedule latency in nanoseconds, if Tokio measured it.
#[cfg(tokio_unstable)]
#[inline]
fn schedule_latency_nanos(meta: &TaskMeta<'_>) -> Option<u64> {
    #[cfg(all(target_pointer_width = "64", target_has_atomic = "64"))]
    {
        meta.schedule_latency()
            .map(|latency| u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX))
    }
    #[cfg(not(all(target_pointer_width = "64", target_has_atomic = "64")))]
    {
        let _ = meta;
        None
    }
}

/// Runs `f` with the calling thread's `Local` if it has one, that is if it
/// is (or was) a worker of a recorded runtime. Threads without one (the
/// blocking pool, a multi-thread runtime's `block_on` caller, threads
/// outside any runtime) record no spans or marks: they have no worker to
/// put them on, and giving every such thread a buffer would cost memory
/// per thread.
#[inline]
fn with_worker_local(f: impl FnOnce(&mut Local)) {
    // SAFETY: see `with_local`; the span and mark recorders below never
    // call back into `tracing` or a hook.
    if let Some(local) = unsafe { LOCAL.get().as_mut() } {
        f(local);
    }
}

#[cfg(feature = "tracing")]
/// Whether span and mark records made on this thread now are kept: it
/// runs a recorded worker and recording is enabled. One thread-local load
/// and one relaxed atomic load.
#[inline]
pub(crate) fn thread_records() -> bool {
    // SAFETY: see `with_local`; only reads.
    unsafe { LOCAL.get().as_ref() }
        .is_some_and(|local| local.worker != NO_WORKER && local.shared.is_enabled())
}

/// A span or mark record: the head (time, worker), then `words`; hands
/// over after it when the buffer is nearly full (also inside a poll, see
/// `hand_over`).
#[inline]
fn push_timed<const N: usize>(local: &mut Local, tag: u64, words: [u64; N]) {
    let timestamp = local.now();
    let head = local.head(tag, timestamp, 0);
    // SAFETY: `Local` belongs to this thread (see `with_local`).
    let pushed = unsafe { local.slot.push_first([head, words[0], words[N - 1]], N + 1) };
    match pushed {
        Some(room) if room >= RESERVE_WORDS => {}
        Some(_) => local.hand_over(),
        None => local.no_room(N + 1),
    }
}

#[cfg(feature = "tracing")]
/// This thread entered `tracing` span `span` (its id), whose name and
/// fields are the text ids in `text` (low and high 32 bits).
#[inline]
pub(crate) fn record_span_enter(span: u64, text: u64) {
    with_worker_local(|local| {
        if !local.shared.is_enabled() || local.worker == NO_WORKER {
            return;
        }
        local.open_spans = local.open_spans.saturating_add(1);
        push_timed(local, SPAN_ENTER, [span, text]);
    });
}

#[cfg(feature = "tracing")]
/// This thread exited span `span`.
#[inline]
pub(crate) fn record_span_exit(span: u64) {
    with_worker_local(|local| {
        let recorded_enter = local.open_spans > 0;
        local.open_spans = local.open_spans.saturating_sub(1);
        if (!recorded_enter && !local.shared.is_enabled()) || local.worker == NO_WORKER {
            return;
        }
        push_timed(local, SPAN_EXIT, [span]);
    });
}

#[cfg(feature = "tracing")]
/// Span `span` closed (on this thread).
pub(crate) fn record_span_close(span: u64) {
    with_worker_local(|local| {
        if !local.shared.is_enabled() || local.worker == NO_WORKER {
            return;
        }
        push_timed(local, SPAN_CLOSE, [span]);
    });
}

/// A mark named by text id `name`, with `value` if any.
#[inline]
pub(crate) fn record_mark(name: u32, value: Option<u64>) {
    with_worker_local(|local| {
        if !local.shared.is_enabled() || local.worker == NO_WORKER {
            return;
        }
        match value {
            Some(value) => push_timed(local, MARK | HAS_VALUE, [u64::from(name), value]),
            None => push_timed(local, MARK, [u64::from(name)]),
        }
    });
}

pub(crate) fn install_hooks(builder: &mut Builder, shared: &Arc<Shared>) {
    // Threads that are not workers (blocking-pool threads, a `block_on`
    // caller on the multi-thread runtime) have no worker index: skip them.
    // Task polls need Tokio's unstable hooks; without `--cfg tokio_unstable`
    // pulse records parks, unparks and samples only.
    #[cfg(tokio_unstable)]
    {
        let s = shared.clone();
        // Only what pulse asked Tokio for: a builder that tracks latencies
        // for its own reasons does not make the trace carry them.
        let latencies = shared.schedule_latency;
        if latencies {
            track_schedule_latency(builder);
        }
        builder.on_before_task_poll(move |meta: &TaskMeta<'_>| {
            if let Some(worker) = current_worker() {
                let spawned_at = SpawnLocation(meta.spawned_at());
                let latency = if latencies {
                    schedule_latency_nanos(meta)
                } else {
                    None
                };
                record_poll_start(&s, worker, task_id_u64(meta.id()), spawned_at, latency);
            }
        });
        let s = shared.clone();
        builder.on_after_task_poll(move |_| record_poll_end(&s));
    }
    let s = shared.clone();
    builder.on_thread_park(move || {
        if let Some(worker) = current_worker() {
            record_park(&s, worker);
        }
    });
    let s = shared.clone();
    builder.on_thread_unpark(move || {
        if let Some(worker) = current_worker() {
            record_unpark(&s, worker);
        }
    });
    let s = shared.clone();
    builder.on_thread_stop(move || flush_current_thread(&s));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::record::collector::Batch;
    use pulse_trace::RecordedEvent;

    /// Issue 12 item 5: a PollStart is still in the thread's buffer when
    /// its poll runs (it was not handed over between the poll's two
    /// timestamps), and hand-overs do happen, after PollEnds. Records
    /// never restate their worker: every buffer says it once, so every
    /// event decodes with the worker it was recorded for, across
    /// hand-overs and a worker change.
    #[test]
    fn buffers_are_never_handed_over_inside_a_poll() {
        let shared = Arc::new(Shared::new(&Config::new().buffer_events(2)));
        let here = std::panic::Location::caller();
        let worker_of = |task: u64| if task < 50 { 3 } else { 5 };
        for task in 0..100 {
            let worker = worker_of(task);
            record_poll_start(&shared, worker, task, SpawnLocation(here), None);
            let slot = shared.slots()[0].clone();
            assert!(
                slot.pending() >= 1,
                "poll {task}: its PollStart was handed over"
            );
            record_poll_end(&shared);
            if task % 7 == 0 {
                record_park(&shared, worker);
                record_unpark(&shared, worker);
            }
        }
        flush_current_thread(&shared);
        let mut batches = Vec::new();
        shared.collector.drain(&mut batches);
        assert!(batches.len() > 10, "full buffers were handed over");
        // Polls and parks (the thread's WorkerThread record aside).
        let events = batches
            .iter()
            .flat_map(Batch::records)
            .filter(|e| !matches!(e, RecordedEvent::WorkerThread { .. }))
            .count();
        assert_eq!(events, 200 + 2 * 15);
        let mut worker = u32::MAX;
        for event in batches.iter().flat_map(Batch::records) {
            match event {
                RecordedEvent::PollStart { task_id, .. } => {
                    worker = worker_of(task_id.unwrap());
                    assert_eq!(event.worker(), Some(worker), "{event:?}");
                }
                RecordedEvent::WorkerThread { .. } => {}
                _ => assert_eq!(event.worker(), Some(worker), "{event:?}"),
            }
        }
        // Every batch that ends in a PollStart would be a hand-over inside
        // a poll.
        for batch in &batches {
            assert!(!matches!(
                batch.records().last(),
                Some(RecordedEvent::PollStart { .. })
            ));
        }
    }

    /// A thread takes a reading on its first park, then not again until
    /// `READING_INTERVAL_NANOS` later, and the reading's timestamp follows
    /// the reading.
    #[test]
    fn parks_read_at_most_once_per_interval() {
        let shared = Arc::new(Shared::new(&Config::new()));
        let before = shared.now();
        for _ in 0..50 {
            record_park(&shared, 0);
            record_unpark(&shared, 0);
        }
        std::thread::sleep(std::time::Duration::from_nanos(READING_INTERVAL_NANOS));
        record_park(&shared, 0);
        flush_current_thread(&shared);
        let mut batches = Vec::new();
        shared.collector.drain(&mut batches);
        let readings: Vec<(u64, bool)> = batches
            .iter()
            .flat_map(Batch::records)
            .filter_map(|e| match e {
                RecordedEvent::WorkerPark {
                    timestamp_nanos,
                    cpu_nanos,
                    ..
                }
                | RecordedEvent::WorkerUnpark {
                    timestamp_nanos,
                    cpu_nanos,
                    ..
                } => Some((timestamp_nanos, cpu_nanos.is_some())),
                _ => None,
            })
            .collect();
        assert_eq!(readings.len(), 101);
        assert!(readings[0].1 && readings[0].0 >= before, "first park reads");
        let read: Vec<_> = readings.iter().filter(|r| r.1).collect();
        // 100 hooks in well under a millisecond each: a handful of
        // readings at most (one per elapsed millisecond), and the last
        // park, a millisecond later, reads again.
        assert!(readings[100].1, "a park 1 ms later reads");
        for pair in read.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= READING_INTERVAL_NANOS);
        }
    }

    /// A PollStart reads its worker's local queue depth from Tokio when
    /// the thread's previous reading is `QUEUE_REREAD_NS` old or more, or
    /// its clock went back, or its worker changed, and repeats the reading
    /// otherwise, although the depth changed (the witness: Tokio's own
    /// metric, read by the task; times chosen, depths real).
    #[test]
    fn poll_starts_read_the_queue_depth_at_most_once_a_microsecond() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let shared = Arc::new(Shared::new(&Config::new()));
        shared.set_runtime_metrics(runtime.metrics());
        runtime.block_on(async move {
            tokio::spawn(async move {
                // One worker: nothing steals from its queue. A spawned task
                // takes the LIFO slot and pushes the previous one into the
                // queue: one more queued.
                let queue_one = || drop(tokio::spawn(async {}));
                let depth = || {
                    let metrics = tokio::runtime::Handle::current().metrics();
                    saturate_u32(metrics.worker_local_queue_depth(0))
                };
                queue_one();
                with_local(&shared, |local| {
                    local.note_worker(0);
                    let t = 1_000_000;
                    let read = local.start_queue(t);
                    assert_eq!(read, depth());
                    queue_one();
                    queue_one();
                    assert_eq!(depth(), read + 2);
                    assert_eq!(local.start_queue(t + 1), read, "repeats");
                    assert_eq!(local.start_queue(t + QUEUE_REREAD_NS - 1), read);
                    let later = t + QUEUE_REREAD_NS;
                    assert_eq!(local.start_queue(later), read + 2, "reads");
                    queue_one();
                    assert_eq!(local.start_queue(later + 10), read + 2);
                    assert_eq!(local.start_queue(later - 1), read + 3, "clock back");
                    queue_one();
                    local.note_worker(7);
                    local.note_worker(0);
                    assert_eq!(local.start_queue(later - 1), read + 4, "worker change");
                });
            })
            .await
            .unwrap()
        });
    }

    /// A thread's record times never go back, although its clock may (the
    /// TSC of a CPU the thread moved to can be a few ticks behind): an
    /// earlier time is recorded as the thread's latest, within a buffer,
    /// after gaps of more than a head's delta and across hand-overs (tiny
    /// buffers: a hand-over every few records).
    #[test]
    fn record_times_never_go_back_on_a_thread() {
        let shared = Arc::new(Shared::new(&Config::new().buffer_events(2)));
        // Steps forward, back a little, back across a hand-over, forward
        // by more than a head's delta and back again.
        let mut times = Vec::new();
        let mut t = 1_000u64;
        for i in 0..400u64 {
            t = match i % 11 {
                3 => t - 7,
                6 => t + 2 * MAX_DELTA,
                7 => t - MAX_DELTA - 5,
                9 => t - 1,
                _ => t + 40 + i % 5,
            };
            times.push(t);
        }
        with_local(&shared, |local| {
            local.note_worker(0);
            for &time in &times {
                let head = local.head(POLL_END, time, 0);
                local.push([head]);
            }
        });
        flush_current_thread(&shared);
        let mut batches = Vec::new();
        shared.collector.drain(&mut batches);
        assert!(batches.len() > 10, "hand-overs happened");
        let got: Vec<u64> = batches
            .iter()
            .flat_map(Batch::records)
            .filter(|e| matches!(e, RecordedEvent::PollEnd { .. }))
            .map(|e| e.timestamp_nanos())
            .collect();
        let expected: Vec<u64> = times
            .iter()
            .scan(0, |latest: &mut u64, &time| {
                *latest = time.max(*latest);
                Some(*latest)
            })
            .collect();
        assert_eq!(got, expected);
    }

    /// What the hooks record decodes to the events they stand for, across
    /// hand-overs, copies by another thread, worker changes and spawn
    /// locations that change from poll to poll or stay the same.
    #[test]
    fn compact_records_decode_to_what_was_recorded() {
        let shared = Arc::new(Shared::new(&Config::new().buffer_events(3)));
        let here = SpawnLocation(std::panic::Location::caller());
        let there = SpawnLocation(std::panic::Location::caller());
        let mut expected = Vec::new();
        let before = shared.now();
        for task in 0..300u64 {
            let worker = u32::from(task >= 150);
            let location = if task % 3 == 0 { there } else { here };
            record_poll_start(&shared, worker, task, location, None);
            record_poll_end(&shared);
            expected.push((0, worker, Some((task, location))));
            expected.push((1, worker, None));
            if task % 5 == 0 {
                record_park(&shared, worker);
                record_unpark(&shared, worker);
                expected.push((2, worker, None));
                expected.push((3, worker, None));
            }
            if task % 7 == 0 {
                // The flusher copying out of the live buffer.
                shared.slots()[0].copy_out(&shared.collector, false);
            }
        }
        flush_current_thread(&shared);
        let after = shared.now();
        let mut batches = Vec::new();
        shared.collector.drain(&mut batches);
        let events: Vec<RecordedEvent> = batches.iter().flat_map(Batch::records).collect();
        let mut last = before;
        let got: Vec<_> = events
            .iter()
            .filter_map(|e| {
                let t = e.timestamp_nanos();
                if !matches!(e, RecordedEvent::WorkerThread { .. }) {
                    assert!(t >= last && t <= after, "{t} after {last}, before {after}");
                    last = t;
                }
                match *e {
                    RecordedEvent::PollStart {
                        worker,
                        task_id,
                        spawned_at,
                        local_queue: 0,
                        ..
                    } => Some((0, worker, Some((task_id.unwrap(), spawned_at)))),
                    RecordedEvent::PollEnd {
                        worker,
                        local_queue: 0,
                        ..
                    } => Some((1, worker, None)),
                    RecordedEvent::WorkerPark { worker, .. } => Some((2, worker, None)),
                    RecordedEvent::WorkerUnpark { worker, .. } => Some((3, worker, None)),
                    RecordedEvent::WorkerThread { .. } => None,
                    ref other => panic!("unexpected {other:?}"),
                }
            })
            .collect();
        assert_eq!(got, expected);
        assert_eq!(shared.collector.dropped(), 0);
    }

    /// Schedule latencies ride on their PollStart (one more word, with and
    /// without a new location) and decode to a ScheduleLatency event right
    /// after it, across hand-overs and copies.
    #[test]
    fn schedule_latencies_decode_after_their_poll_start() {
        let shared = Arc::new(Shared::new(&Config::new().buffer_events(3)));
        let here = SpawnLocation(std::panic::Location::caller());
        let there = SpawnLocation(std::panic::Location::caller());
        let mut expected = Vec::new();
        for task in 0..200u64 {
            let location = if task % 3 == 0 { there } else { here };
            let latency = (task % 4 != 0).then_some(task * 1_000 + 7);
            record_poll_start(&shared, 0, task, location, latency);
            record_poll_end(&shared);
            expected.push((0, task, location.addr() as u64));
            if let Some(latency) = latency {
                expected.push((1, task, latency));
            }
            expected.push((2, 0, 0));
            if task % 11 == 0 {
                shared.slots()[0].copy_out(&shared.collector, false);
            }
        }
        flush_current_thread(&shared);
        let mut batches = Vec::new();
        shared.collector.drain(&mut batches);
        let events: Vec<RecordedEvent> = batches.iter().flat_map(Batch::records).collect();
        let mut last_start = None;
        let got: Vec<_> = events
            .iter()
            .filter_map(|e| match *e {
                RecordedEvent::PollStart {
                    timestamp_nanos,
                    task_id,
                    spawned_at,
                    ..
                } => {
                    last_start = Some((timestamp_nanos, task_id.unwrap()));
                    Some((0, task_id.unwrap(), spawned_at.addr() as u64))
                }
                RecordedEvent::ScheduleLatency {
                    timestamp_nanos,
                    worker: 0,
                    latency_nanos,
                } => {
                    let (start, task) = last_start.expect("a PollStart before");
                    assert_eq!(timestamp_nanos, start, "its PollStart's time");
                    Some((1, task, latency_nanos))
                }
                RecordedEvent::PollEnd { .. } => Some((2, 0, 0)),
                _ => None,
            })
            .collect();
        assert_eq!(got, expected);
        assert_eq!(shared.collector.dropped(), 0);
    }
}
