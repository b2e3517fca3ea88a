//! The hot path: what Tokio's hooks run on worker threads, and installing
//! them.

// Without `--cfg tokio_unstable` there are no poll hooks: the poll side of
// the hot path is compiled (for `pulse::bench`) but not called.
#![cfg_attr(not(any(tokio_unstable, feature = "bench")), allow(dead_code))]

use crate::record::buffer::{ThreadSlot, NO_WORKER};
use crate::record::clock::{self, SchedStatFile};
use crate::record::metrics::MetricsBatch;
use crate::record::shared::Shared;
use pulse_trace::{RecordedEvent, SpawnLocation, WorkerThreadKind};
use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::runtime::Builder;
#[cfg(tokio_unstable)]
use tokio::runtime::TaskMeta;

#[inline]
pub(crate) fn saturate_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// The calling thread's buffer and cached per-thread resources.
struct Local {
    shared: Arc<Shared>,
    slot: Arc<ThreadSlot>,
    /// `/proc/thread-self/schedstat`, opened once per thread.
    schedstat: Option<SchedStatFile>,
    /// The last PollStart was recorded, so its PollEnd must be too (keeps
    /// start/end paired when recording is toggled mid-poll).
    in_poll: bool,
    /// The last park was recorded, so its unpark must be too.
    parked: bool,
    /// Last worker index seen, mirrored into `slot.worker` on change.
    worker: u32,
    /// This thread's unsubmitted metric counts.
    metrics: MetricsBatch,
}

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
            parked: false,
            worker: NO_WORKER,
            metrics: MetricsBatch::new(),
        }
    }

    #[inline]
    fn push(&mut self, event: RecordedEvent) {
        // SAFETY: `Local` lives in this thread's thread-local storage, so this
        // thread owns `slot`; a full buffer is flushed right away.
        unsafe {
            if self.slot.push(event) {
                self.slot.flush_owned(&self.shared.collector);
            }
        }
    }

    fn flush(&mut self) {
        // SAFETY: see `push`.
        unsafe { self.slot.flush_owned(&self.shared.collector) }
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
        self.slot.worker.store(worker, Ordering::Relaxed);
        self.metrics.set_worker(worker, &self.shared.metrics_totals);
        self.push_worker_thread(worker, self.shared.now(), WorkerThreadKind::Runs);
    }

    #[cold]
    fn push_worker_thread(&mut self, worker: u32, timestamp_nanos: u64, kind: WorkerThreadKind) {
        let Some(tid) = self.slot.tid.and_then(|tid| u32::try_from(tid).ok()) else {
            return;
        };
        self.push(RecordedEvent::WorkerThread {
            timestamp_nanos,
            worker,
            tid,
            kind,
        });
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

    fn read_run_delay(&self) -> Option<u64> {
        self.schedstat
            .as_ref()
            .and_then(|file| file.read().ok())
            .map(|stat| stat.run_delay_nanos)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Thread exit: nothing recorded on this thread may be lost.
        self.flush();
    }
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's buffer for `shared`, creating it on first use
/// (or when the thread switches to another recording).
#[inline]
fn with_local(shared: &Arc<Shared>, f: impl FnOnce(&mut Local)) {
    let _ = LOCAL.try_with(|cell| {
        let Ok(mut local) = cell.try_borrow_mut() else {
            return;
        };
        match &mut *local {
            Some(local) if Arc::ptr_eq(&local.shared, shared) => f(local),
            other => {
                // Rare: first event of this thread, or a thread that records
                // for two runtimes in turn. Hand the old buffer over first.
                *other = Some(Local::new(shared));
                if let Some(local) = other.as_mut() {
                    f(local);
                }
            }
        }
    });
}

/// Hands the calling thread's buffer to the collector (if it belongs to
/// `shared`).
pub(crate) fn flush_current_thread(shared: &Arc<Shared>) {
    let _ = LOCAL.try_with(|cell| {
        if let Ok(mut local) = cell.try_borrow_mut() {
            if let Some(local) = local.as_mut().filter(|l| Arc::ptr_eq(&l.shared, shared)) {
                local.flush();
            }
        }
    });
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

#[inline]
pub(crate) fn record_poll_start(
    shared: &Arc<Shared>,
    worker: u32,
    task_id: u64,
    spawned_at: SpawnLocation,
) {
    if !shared.is_enabled() {
        return;
    }
    with_local(shared, |local| {
        // Read the clock inside, after a first event's one-time set-up of
        // the thread's buffer, so set-up is not counted as poll time.
        // A worker change (rare) is noted first: its WorkerThread record
        // must not be later than this PollStart, and its set-up is not
        // poll time.
        local.note_worker(worker);
        let local_queue = local.shared.local_queue(worker as usize);
        let timestamp_nanos = local.shared.now();
        local.in_poll = true;
        local.metrics.poll_start(timestamp_nanos, local_queue);
        local.push(RecordedEvent::PollStart {
            timestamp_nanos,
            worker,
            local_queue,
            task_id: Some(task_id),
            spawned_at,
        });
    });
}

#[inline]
pub(crate) fn record_poll_end(shared: &Arc<Shared>, worker: u32) {
    with_local(shared, |local| end_poll(local, worker, false));
}

/// Polls at least this long are checked for having ended on a thread that
/// no longer runs their worker (`block_in_place`).
const DETACH_CHECK_NS: u64 = 1_000_000;

/// Ends the thread's poll; `off_worker`: Tokio no longer counts this
/// thread as a worker.
#[inline]
fn end_poll(local: &mut Local, worker: u32, off_worker: bool) {
    if !std::mem::take(&mut local.in_poll) {
        return;
    }
    let local_queue = local.shared.local_queue(worker as usize);
    let timestamp_nanos = local.shared.now();
    if off_worker
        || (timestamp_nanos.saturating_sub(local.metrics.poll_started_at()) >= DETACH_CHECK_NS
            && local.lost_worker(worker))
    {
        local.push_worker_thread(worker, timestamp_nanos, WorkerThreadKind::PollDetached);
    }
    local
        .metrics
        .poll_end(timestamp_nanos, local_queue, &local.shared.metrics_totals);
    local.push(RecordedEvent::PollEnd {
        timestamp_nanos,
        worker,
        local_queue,
    });
}

/// The end of a poll on a thread that Tokio no longer counts as a worker
/// (after `block_in_place`, in some Tokio versions): if this thread
/// recorded the poll's start, record its end too, as the worker it began
/// on, so the trace stays paired.
fn record_poll_end_off_worker(shared: &Arc<Shared>) {
    // Never set up a buffer here: only a thread that recorded a start has
    // an end to record.
    let _ = LOCAL.try_with(|cell| {
        let Ok(mut local) = cell.try_borrow_mut() else {
            return;
        };
        let Some(local) = local.as_mut().filter(|l| Arc::ptr_eq(&l.shared, shared)) else {
            return;
        };
        if local.in_poll && local.worker != NO_WORKER {
            let worker = local.worker;
            end_poll(local, worker, true);
        }
    });
}

pub(crate) fn record_park(shared: &Arc<Shared>, worker: u32) {
    if !shared.is_enabled() {
        return;
    }
    with_local(shared, |local| {
        local.note_worker(worker);
        let local_queue = local.shared.local_queue(worker as usize);
        // Fixed order, next to the timestamp: time, CPU clock, schedstat.
        let timestamp_nanos = local.shared.now();
        let cpu_nanos = clock::thread_cpu_nanos();
        let run_delay_nanos = local.read_run_delay();
        local.parked = true;
        local
            .metrics
            .park(local_queue, &local.shared.metrics_totals);
        local.push(RecordedEvent::WorkerPark {
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            run_delay_nanos,
        });
        // A parked worker may sleep for long: let its events go now.
        local.flush();
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
        let timestamp_nanos = local.shared.now();
        let cpu_nanos = clock::thread_cpu_nanos();
        let run_delay_nanos = local.read_run_delay();
        local.metrics.unpark(local_queue);
        local.push(RecordedEvent::WorkerUnpark {
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            run_delay_nanos,
        });
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
        builder.on_before_task_poll(move |meta: &TaskMeta<'_>| {
            if let Some(worker) = current_worker() {
                let spawned_at = SpawnLocation(meta.spawned_at());
                record_poll_start(&s, worker, task_id_u64(meta.id()), spawned_at);
            }
        });
        let s = shared.clone();
        builder.on_after_task_poll(move |_| match current_worker() {
            Some(worker) => record_poll_end(&s, worker),
            None => record_poll_end_off_worker(&s),
        });
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
