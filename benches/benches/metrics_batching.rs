//! What batching buys the live metrics (issue 7): the counts of one poll
//! (poll count, busy time, a histogram bucket) recorded from 1 to 16 threads
//! at once, three ways:
//!
//! - `batched`: pulse's code (`pulse::bench::MetricsHotPath`): plain adds to
//!   the thread's own batch, submitted to its worker's cache-padded atomics
//!   every 256 polls (`Config::metrics_submit_every`'s default).
//! - `submit_every_poll`: the same code with `submit_every = 1`: each poll
//!   updates its worker's own atomics (uncontended, but atomic).
//! - `shared_atomic`: the naive design, one set of atomics for the whole
//!   runtime, three `fetch_add`s per poll from every thread.
//!
//! One iteration is one poll on every thread; criterion's time is one poll
//! as a thread saw it, its throughput all threads' polls. With more threads
//! than cores (2 here), threads also time-share, so compare the three
//! designs at each count rather than counts with each other.
//!
//! Run: `cargo bench -p benches --bench metrics_batching`; smoke run:
//! `PULSE_BENCH_QUICK=1 cargo bench -p benches --bench metrics_batching`.

use pulse::bench::{MetricsHotPath, MetricsWorker};
use pulse::metrics::HistogramLayout;
use std::sync::atomic::{AtomicU64, Ordering};

/// Worker indices the counters are sized for (the largest thread count).
const WORKERS: usize = 16;
/// A poll's duration: 1.5 µs, histogram bucket 1.
const POLL_NANOS: u64 = 1_500;

/// A thread's batch and its clock.
struct Worker {
    batch: MetricsWorker,
    now: u64,
}

fn worker(thread: usize) -> Worker {
    Worker {
        batch: MetricsWorker::new(thread as u32),
        now: thread as u64,
    }
}

fn poll(metrics: &MetricsHotPath, worker: &mut Worker) {
    let started = worker.now;
    worker.now += POLL_NANOS + 500;
    worker.batch.poll(metrics, started, started + POLL_NANOS, 0);
}

fn check_totals(metrics: MetricsHotPath) {
    // Every submitted poll landed in bucket 1; what was not yet submitted
    // was dropped with the thread's slot.
    let snapshot = metrics.snapshot();
    let in_bucket: u64 = snapshot.workers.iter().map(|w| w.poll_histogram[1]).sum();
    assert_eq!(in_bucket, snapshot.total_polls());
}

#[pulse::bench(
    setup = || MetricsHotPath::new(WORKERS, pulse::config::DEFAULT_METRICS_SUBMIT_EVERY),
    per_thread = worker,
    teardown = check_totals,
    threads = [1, 2, 4, 8, 16],
    batch = 100,
)]
fn batched(metrics: &MetricsHotPath, worker: &mut Worker) {
    poll(metrics, worker);
}

#[pulse::bench(
    setup = || MetricsHotPath::new(WORKERS, 1),
    per_thread = worker,
    teardown = check_totals,
    threads = [1, 2, 4, 8, 16],
    batch = 100,
)]
fn submit_every_poll(metrics: &MetricsHotPath, worker: &mut Worker) {
    poll(metrics, worker);
}

/// One set of counters for every thread, updated on every poll.
struct SharedCounters {
    polls: AtomicU64,
    busy_nanos: AtomicU64,
    histogram: [AtomicU64; 20],
    layout: HistogramLayout,
}

#[pulse::bench(
    setup = || SharedCounters {
        polls: AtomicU64::new(0),
        busy_nanos: AtomicU64::new(0),
        histogram: std::array::from_fn(|_| AtomicU64::new(0)),
        layout: HistogramLayout::default(),
    },
    per_thread = |thread| thread as u64,
    threads = [1, 2, 4, 8, 16],
    batch = 100,
)]
fn shared_atomic(counters: &SharedCounters, now: &mut u64) {
    let started = *now;
    *now += POLL_NANOS + 500;
    let took = (started + POLL_NANOS) - started;
    counters.polls.fetch_add(1, Ordering::Relaxed);
    counters.busy_nanos.fetch_add(took, Ordering::Relaxed);
    counters.histogram[counters.layout.bucket_of(took)].fetch_add(1, Ordering::Relaxed);
}

pulse::bench_main!(batched, submit_every_poll, shared_atomic);
