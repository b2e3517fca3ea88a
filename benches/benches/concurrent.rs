//! Recording and flushing from 1 to 16 threads at once against one
//! collector: each thread records as its own worker through
//! `pulse::bench::HotPath` (the hooks' exact code), so full buffers and
//! parks hand over to the shared collector concurrently while the flusher
//! drains it.
//!
//! - `poll_pair`: PollStart/PollEnd pairs; a full buffer (1024 events)
//!   goes to the collector every 512 pairs.
//! - `park_unpark_pair`: park/unpark pairs; every park hands the thread's
//!   buffer over (the most collector traffic per event there is), and
//!   reads the thread's CPU clock.
//!
//! Criterion's time is one pair as each thread saw it; its throughput is
//! all threads' events. After each thread count the bench prints what the
//! recording wrote and dropped: drops mean the collector's bound was hit
//! and the figure partly times the (cheaper) drop path. With more threads
//! than cores (2 here) threads also time-share.
//!
//! Run: `cargo bench -p benches --bench concurrent`; smoke run:
//! `PULSE_BENCH_QUICK=1 cargo bench -p benches --bench concurrent`.

use pulse::bench::HotPath;
use pulse::Config;
use std::panic::Location;

/// A thread's worker index and its next task id.
struct Worker {
    index: u32,
    task: u64,
}

fn worker(thread: usize) -> Worker {
    Worker {
        index: thread as u32,
        task: 0,
    }
}

/// Room for a late flusher on a shared machine (see `critical_path`'s
/// `poll_recording`), flushing often enough that drains stay small.
fn poll_recording() -> HotPath {
    let config = Config::new().max_pending_events(1 << 22).flush_ms(1);
    HotPath::new(&config).expect("valid config")
}

fn park_recording() -> HotPath {
    HotPath::new(&Config::new().run_queue_wait(false)).expect("valid config")
}

fn report(hot: HotPath) {
    let summary = hot.finish().expect("a NullWriter cannot fail");
    let total = summary.events_written + summary.dropped_events;
    println!(
        "pulse[concurrent]: {} events written, {} dropped ({:.3}%)",
        summary.events_written,
        summary.dropped_events,
        summary.dropped_events as f64 * 100.0 / total.max(1) as f64
    );
}

#[pulse::bench(
    setup = poll_recording,
    per_thread = worker,
    teardown = report,
    threads = [1, 2, 4, 8, 16],
    batch = 64,
    elements = 2,
)]
fn poll_pair(hot: &HotPath, worker: &mut Worker) {
    worker.task += 1;
    hot.poll_start(worker.index, worker.task, Location::caller());
    hot.poll_end();
}

#[pulse::bench(
    setup = park_recording,
    per_thread = worker,
    teardown = report,
    threads = [1, 2, 4, 8, 16],
    elements = 2,
)]
fn park_unpark_pair(hot: &HotPath, worker: &mut Worker) {
    hot.park(worker.index);
    hot.unpark(worker.index);
}

pulse::bench_main!(poll_pair, park_unpark_pair);
