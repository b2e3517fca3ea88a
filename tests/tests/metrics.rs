//! Live metrics against ground truth: Tokio's own counters and a workload
//! whose poll durations are known.

use pulse::metrics::{HistogramLayout, MetricsSnapshot};
use pulse::{Config, EventType, RecordedEvent, Recorder, TraceWriter, WriterConfig};
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<RecordedEvent>>>);

impl TraceWriter for Capture {
    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
        self.0.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn builder(workers: usize) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // Tokio's worker_poll_count skips polls run from the LIFO slot.
    builder
        .worker_threads(workers)
        .enable_all()
        .disable_lifo_slot();
    builder
}

fn spin(duration: Duration) {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Tokio's counters once every worker is idle (they are published in
/// batches, at park).
fn settled_tokio_counts(runtime: &tokio::runtime::Runtime) -> (Vec<u64>, Vec<u64>) {
    let metrics = runtime.metrics();
    let read = || {
        let workers = 0..metrics.num_workers();
        (
            workers
                .clone()
                .map(|w| metrics.worker_poll_count(w))
                .collect::<Vec<_>>(),
            workers
                .map(|w| metrics.worker_park_count(w))
                .collect::<Vec<_>>(),
        )
    };
    let mut last = read();
    let mut stable = 0;
    while stable < 5 {
        std::thread::sleep(Duration::from_millis(10));
        let now = read();
        stable = if now == last { stable + 1 } else { 0 };
        last = now;
    }
    last
}

#[test]
fn counts_match_tokio_and_the_trace() {
    let capture = Capture::default();
    let (runtime, guard) = Recorder::build(builder(3), Box::new(capture.clone())).unwrap();
    let handle = guard.handle();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                tokio::spawn(async move {
                    for j in 0..30 {
                        tokio::task::yield_now().await;
                        if (i + j) % 7 == 0 {
                            tokio::time::sleep(Duration::from_micros(300)).await;
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let (tokio_polls, tokio_parks) = settled_tokio_counts(&runtime);
    // Every worker is parked now and has submitted its batch at the park.
    let live = handle.metrics();
    drop(runtime);
    drop(guard);

    let events = capture.0.lock().unwrap().clone();
    for (worker, metrics) in live.workers.iter().enumerate() {
        assert_eq!(
            metrics.polls, tokio_polls[worker],
            "worker {worker} polls vs worker_poll_count"
        );
        assert_eq!(
            metrics.poll_histogram.iter().sum::<u64>(),
            metrics.polls,
            "worker {worker}: histogram total vs polls"
        );
        let trace_parks = events
            .iter()
            .filter(|e| {
                e.event_type() == EventType::WorkerPark && e.worker() == Some(worker as u32)
            })
            .count() as u64;
        assert_eq!(
            metrics.parks, trace_parks,
            "worker {worker}: parks vs WorkerPark events"
        );
        // Tokio counts each turn of its park loop, including re-parks after
        // a wake-up that found no work, which run no hook: pulse counts park
        // *episodes*, so it can only be lower or equal.
        assert!(
            metrics.parks <= tokio_parks[worker],
            "worker {worker}: {} park episodes > tokio's {} parks",
            metrics.parks,
            tokio_parks[worker]
        );
        assert!(metrics.parks > 0);
        assert!(metrics.park_unparks >= 2 * metrics.parks - 1);
    }
}

#[test]
fn known_poll_durations_land_in_their_buckets() {
    let layout = HistogramLayout::default();
    let config = Config::new()
        .writer(WriterConfig::Null)
        .poll_histogram(layout);
    let (runtime, guard) = Recorder::from_config(builder(2), &config).unwrap();
    let before = guard.metrics();
    // Each task's one poll spins for a known time; the task also measures
    // its spin itself. On a loaded machine the OS may stretch a spin, which
    // both measurements see.
    const SPINS: [Duration; 4] = [
        Duration::from_micros(10),    // bucket 4: [8.2 µs, 16.4 µs)
        Duration::from_micros(100),   // bucket 7: [65.5 µs, 131 µs)
        Duration::from_micros(700),   // bucket 10: [524 µs, 1.05 ms)
        Duration::from_micros(3_000), // bucket 12: [2.1 ms, 4.2 ms)
    ];
    const TASKS: usize = 48;
    // Each task stores its own measurement in its own slot and nobody awaits
    // its JoinHandle: completing a task whose handle is awaited wakes the
    // waiter from inside the poll (a futex call), which is real poll time
    // but not part of the known spin.
    let measured: Arc<Vec<AtomicU64>> = Arc::new((0..TASKS).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        for i in 0..TASKS {
            let (measured, done) = (measured.clone(), done.clone());
            drop(tokio::spawn(async move {
                let start = Instant::now();
                spin(SPINS[i % SPINS.len()]);
                measured[i].store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Release);
            }));
        }
        while done.load(Ordering::Acquire) < TASKS {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let measured: Vec<Duration> = measured
        .iter()
        .map(|n| Duration::from_nanos(n.load(Ordering::Relaxed)))
        .collect();
    drop(runtime); // workers submit their batches as they stop
    let delta: MetricsSnapshot = guard.metrics().delta(&before);
    drop(guard);

    let mut recorded = vec![0u64; layout.buckets()];
    for worker in &delta.workers {
        for (bucket, count) in worker.poll_histogram.iter().enumerate() {
            recorded[bucket] += count;
        }
    }
    let mut expected = vec![0u64; layout.buckets()];
    for spin in &measured {
        expected[layout.bucket_of(spin.as_nanos() as u64)] += 1;
    }
    assert_eq!(recorded.iter().sum::<u64>(), TASKS as u64, "{recorded:?}");
    let buckets: Vec<usize> = SPINS
        .iter()
        .map(|d| layout.bucket_of(d.as_nanos() as u64))
        .collect();
    assert_eq!(buckets, vec![4, 7, 10, 12]);
    // A poll lasts at least as long as the spin inside it and only a little
    // longer (the hooks and the task's own bookkeeping): per bucket, the
    // recorded histogram is the measured one, or shifted up by one where a
    // spin ended just below a bucket boundary. The one allowance: the OS may
    // preempt a worker between the spin's end and the poll's end, so a
    // couple of polls may land further up on a loaded machine.
    const PREEMPTED: u64 = 2;
    let cumulative = |h: &[u64], upto: usize| h[..=upto].iter().sum::<u64>();
    for b in 0..layout.buckets() {
        assert!(
            cumulative(&recorded, b) <= cumulative(&expected, b),
            "bucket {b}: polls recorded shorter than their spins\nrecorded {recorded:?}\nexpected {expected:?}"
        );
        if b > 0 {
            assert!(
                cumulative(&recorded, b) + PREEMPTED >= cumulative(&expected, b - 1),
                "bucket {b}: polls recorded far longer than their spins\nrecorded {recorded:?}\nexpected {expected:?}"
            );
        }
    }
    let busy: Duration = delta.workers.iter().map(|w| w.busy).sum();
    let spun: Duration = measured.iter().sum();
    assert!(busy >= spun, "busy time {busy:?} covers the spins {spun:?}");
}
