//! Overload (issue 8): with a writer slower than the event rate, or one
//! that stops answering, pulse's memory stays within a bound that follows
//! from its configuration, workers never wait for the writer, and every
//! dropped event is counted and marked in the trace.
//!
//! Memory is measured with a counting global allocator: the bytes live in
//! the whole process, from just after the runtime is built (pulse's thread
//! buffers are created on first use, so they count as pulse's). The
//! workloads allocate next to nothing themselves, so the growth is pulse's
//! plus a little of Tokio's.
//!
//! The bound, for `T` recording threads, thread buffers of `C` events,
//! a backlog of `M` events and events of `S` bytes:
//!
//! ```text
//!   T·C·S              thread buffers
//! + 2·(2·M + C)·S      the backlog, and the batches the writer is busy with
//!                      (each at most twice its events' size: small
//!                      hand-overs share batches)
//! + 64·C·S             spare batches kept for reuse
//! ```
//!
//! `measure_memory_under_overload` (ignored; run it with `--ignored
//! --nocapture`) prints the figures RELIABILITY.md quotes.

use pulse::{Config, RecordedEvent, Recorder, TraceWriter};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        grew(new_size);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tests in this file measure the whole process: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const EVENT: usize = std::mem::size_of::<RecordedEvent>();

/// The bound above, in bytes.
fn bound(threads: usize, buffer: usize, max_pending: usize) -> usize {
    threads * buffer * EVENT + 2 * (2 * max_pending + buffer) * EVENT + 64 * buffer * EVENT
}

/// What the writer saw.
#[derive(Default)]
struct Seen {
    events: AtomicU64,
    /// Sum of the `EventsDropped` counts.
    marked_dropped: AtomicU64,
}

/// Opened once to let a [`Gated`] writer write.
type Gate = Arc<(Mutex<bool>, Condvar)>;

/// A writer that blocks until the gate opens, then sleeps `delay` per
/// batch.
struct Gated {
    gate: Gate,
    delay: Duration,
    seen: Arc<Seen>,
}

impl Gated {
    fn new(delay: Duration, open: bool) -> (Gated, Gate, Arc<Seen>) {
        let gate = Arc::new((Mutex::new(open), Condvar::new()));
        let seen = Arc::new(Seen::default());
        let writer = Gated {
            gate: gate.clone(),
            delay,
            seen: seen.clone(),
        };
        (writer, gate, seen)
    }
}

fn open(gate: &(Mutex<bool>, Condvar)) {
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
}

impl TraceWriter for Gated {
    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
        let (lock, opened) = &*self.gate;
        let _open = opened
            .wait_while(lock.lock().unwrap(), |open| !*open)
            .unwrap();
        std::thread::sleep(self.delay);
        self.seen
            .events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        for event in events {
            if let RecordedEvent::EventsDropped { count, .. } = event {
                self.seen
                    .marked_dropped
                    .fetch_add(*count, Ordering::Relaxed);
            }
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A worker wakes, polls one task, and parks again, `round_trips` times:
/// the smallest hand-overs (about four events each) a runtime makes. With
/// `pause`, the driving thread sleeps between round trips, so that no poll
/// can serve two of them (without it, a task may find the next message
/// already there and serve many in one poll).
async fn ping_pong(round_trips: u64, pause: bool) {
    let (to_task, mut task_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let (to_thread, thread_rx) = std::sync::mpsc::channel::<u64>();
    let task = tokio::spawn(async move {
        while let Some(n) = task_rx.recv().await {
            to_thread.send(n).unwrap();
        }
    });
    let driver = std::thread::spawn(move || {
        for n in 0..round_trips {
            to_task.send(n).unwrap();
            assert_eq!(thread_rx.recv().unwrap(), n);
            if pause {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    });
    tokio::task::spawn_blocking(move || driver.join().unwrap())
        .await
        .unwrap();
    task.await.unwrap();
}

/// Tasks that only yield: the highest event rate.
async fn yield_storm(tasks: u64, yields: u64) {
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..yields {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
}

struct Measured {
    /// Bytes live when the workload ended, above the start.
    held: usize,
    /// The most bytes live at once during the run, above the start.
    peak: usize,
    dropped: u64,
    written: u64,
    marked: u64,
    seconds: f64,
}

/// Runs `workload` on `workers` workers recording into a gated writer
/// (closed until the workload ends if `stall`), measuring memory.
fn measure<F>(
    workers: usize,
    config: &Config,
    delay: Duration,
    stall: bool,
    workload: impl FnOnce() -> F,
) -> Measured
where
    F: std::future::Future<Output = ()>,
{
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers).enable_all();
    let (writer, gate, seen) = Gated::new(delay, !stall);
    let (runtime, guard) = Recorder::build_with_config(builder, Box::new(writer), config).unwrap();
    let handle = guard.handle();
    // Let the workers start and park before taking the baseline.
    std::thread::sleep(Duration::from_millis(50));
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let started = std::time::Instant::now();
    // With a stalled writer this returns only because no worker waits for
    // it.
    runtime.block_on(workload());
    let seconds = started.elapsed().as_secs_f64();
    let held = LIVE.load(Ordering::Relaxed).saturating_sub(start);
    open(&gate);
    drop(runtime);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(start);
    let summary = guard.finish().unwrap();
    assert_eq!(summary.dropped_events, handle.dropped_events());
    Measured {
        held,
        peak,
        dropped: summary.dropped_events,
        written: seen.events.load(Ordering::Relaxed),
        marked: seen.marked_dropped.load(Ordering::Relaxed),
        seconds,
    }
}

#[test]
fn a_stalled_writer_with_tiny_hand_overs_keeps_memory_bounded() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (buffer, max_pending) = (1024, 16 * 1024);
    let config = Config::new()
        .flush_ms(5)
        .buffer_events(buffer)
        .max_pending_events(max_pending);
    // At least one poll (two events) per round trip, so at least twice the
    // backlog in all; about four events per hand-over.
    let m = measure(2, &config, Duration::ZERO, true, || ping_pong(16_000, true));
    let limit = bound(3, buffer, max_pending) + (512 << 10);
    assert!(
        m.peak <= limit,
        "pulse held {} KiB at peak, {} KiB at the end, for {} events; the bound is {} KiB",
        m.peak >> 10,
        m.held >> 10,
        m.written + m.dropped,
        limit >> 10
    );
    assert!(m.dropped > 0, "the backlog overflowed");
    assert_eq!(m.marked, m.dropped, "every drop is marked in the trace");
}

#[test]
fn a_slow_writer_under_a_yield_storm_keeps_memory_bounded() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (buffer, max_pending) = (1024, 16 * 1024);
    let config = Config::new()
        .flush_ms(5)
        .buffer_events(buffer)
        .max_pending_events(max_pending);
    // At most ~50k events/s get through; the storm offers 400k events.
    let m = measure(4, &config, Duration::from_millis(20), false, || {
        yield_storm(200, 1_000)
    });
    let limit = bound(5, buffer, max_pending) + (512 << 10);
    assert!(m.dropped > 0, "200k polls through a 20 ms-per-batch writer");
    assert!(
        m.peak <= limit,
        "pulse held {} KiB at peak; the bound is {} KiB",
        m.peak >> 10,
        limit >> 10
    );
    assert_eq!(m.marked, m.dropped, "every drop is marked in the trace");
    assert!(m.written > 0);
}

/// The figures for RELIABILITY.md: default settings (and a smaller
/// backlog), 8 workers.
#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn measure_memory_under_overload() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    println!("event size {EVENT} B");
    println!("| max_pending_events | workload | writer | events/s offered | dropped | peak KiB | held at end KiB |");
    type Workload = fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
    let storm: Workload = || Box::pin(yield_storm(400, 2_500));
    let pings: Workload = || Box::pin(ping_pong(100_000, false));
    for max_pending in [Config::new().max_pending_events, 32 * 1024] {
        let config = Config::new().max_pending_events(max_pending);
        println!(
            "bound at 8 workers (+1 block_on thread), max_pending_events {max_pending}: {} KiB",
            bound(9, config.buffer_events, max_pending) >> 10
        );
        for (name, workload) in [("yield storm", storm), ("ping-pong", pings)] {
            for (writer, delay, stall) in [
                ("keeps up", Duration::ZERO, false),
                ("2 ms/batch", Duration::from_millis(2), false),
                ("stalled", Duration::ZERO, true),
            ] {
                let m = measure(8, &config, delay, stall, workload);
                let offered = (m.written + m.dropped) as f64 / m.seconds;
                println!(
                    "| {max_pending} | {name} | {writer} | {:.2} M | {} | {} | {} |",
                    offered / 1e6,
                    m.dropped,
                    m.peak >> 10,
                    m.held >> 10
                );
            }
        }
    }
}
