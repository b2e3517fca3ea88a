//! The recorder's hot path, against DESIGN.md's targets.
//!
//! Each group answers one question:
//!
//! - `primitives`: what the building blocks cost (clocks, the per-thread
//!   CPU clock, a `schedstat` read, Tokio's worker index and local queue
//!   depth), measured side by side so the hot-path figures can be broken down.
//! - `poll_event`: what recording one PollStart/PollEnd pair costs, through
//!   the exact functions the poll hooks call (`pulse::bench::HotPath`).
//! - `poll_flush`: what handing a full buffer to the collector costs,
//!   amortised, by varying the buffer size.
//! - `park_unpark`: what recording one park/unpark pair costs, with and
//!   without the run-queue wait (`schedstat`) reading.
//! - `runtime_yield`: what a traced runtime costs end to end on the worst
//!   case workload (tasks that only yield), against the same runtime untraced.
//!
//! Operations under ~50 ns are timed in batches: each `iter_custom` call runs
//! the operation `iters` times (criterion picks thousands to millions) between
//! two clock reads, so the timer's own cost is spread over the whole batch.
//!
//! After each recording the bench prints how many events were written and
//! dropped: a benchmark that mostly drops would time the wrong path, so the
//! poll benchmarks raise `max_pending_events` (see [`POLL_MAX_PENDING`]).
//!
//! Run: `cargo bench -p benches --bench critical_path`; smoke run:
//! `PULSE_BENCH_QUICK=1 cargo bench -p benches --bench critical_path`.
//! `benches/report.py` turns criterion's output into BENCHMARKS.md's tables.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pulse::bench::HotPath;
use pulse::clock::{self, SchedStatFile};
use pulse::{Config, NullWriter, TraceSummary, TracedRuntime};
use std::hint::black_box;
use std::panic::Location;
use std::time::{Duration, Instant};

/// Backlog bound for the poll benchmarks: 4 Mi events (~160 MiB). The
/// default (64 Ki events, ~1.3 ms of recording at full speed) relies on the
/// flusher thread being scheduled within ~0.6 ms of its wake-up, which a
/// shared 2-core machine does not guarantee; when it is late, the collector
/// drops whole buffers, which is cheaper than keeping them and would flatter
/// the figures.
const POLL_MAX_PENDING: usize = 1 << 22;

/// Tasks and yields per task of one `runtime_yield` iteration.
const YIELD_TASKS: usize = 64;
const YIELDS_PER_TASK: usize = 200;

/// Runs `op` `iters` times between two reads of the clock, keeping each
/// result alive (`black_box`) so the work cannot be optimised away.
fn batched<R>(iters: u64, mut op: impl FnMut(u64) -> R) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        black_box(op(i));
    }
    start.elapsed()
}

/// Prints what a finished recording kept and lost; silent when the
/// benchmark was filtered out (nothing recorded).
fn report(label: &str, summary: TraceSummary) {
    let total = summary.events_written + summary.dropped_events;
    if total == 0 {
        return;
    }
    let share = summary.dropped_events as f64 * 100.0 / total as f64;
    println!(
        "pulse[{label}]: {} events written, {} dropped ({share:.3}%)",
        summary.events_written, summary.dropped_events
    );
    if summary.dropped_events > 0 {
        println!(
            "pulse[{label}]: WARNING: events were dropped; this figure times the drop path in part"
        );
    }
}

fn finish(label: &str, hot: HotPath) {
    report(label, hot.finish().expect("a NullWriter cannot fail"));
}

fn primitives(c: &mut Criterion) {
    let mut group = c.benchmark_group("primitives");

    // Timestamp candidates.
    group.bench_function("monotonic_nanos", |b| {
        b.iter_custom(|iters| batched(iters, |_| clock::monotonic_nanos()))
    });
    group.bench_function("std_instant_now", |b| {
        b.iter_custom(|iters| batched(iters, |_| Instant::now()))
    });
    let tsc = quanta::Clock::new();
    probe_quanta(&tsc);
    group.bench_function("quanta_now", |b| {
        b.iter_custom(|iters| batched(iters, |_| tsc.now()))
    });
    group.bench_function("quanta_raw", |b| {
        b.iter_custom(|iters| batched(iters, |_| tsc.raw()))
    });

    // Park/unpark readings (system calls).
    group.bench_function("thread_cpu_nanos", |b| {
        b.iter_custom(|iters| batched(iters, |_| clock::thread_cpu_nanos()))
    });
    if let Ok(schedstat) = SchedStatFile::open_current_thread() {
        group.bench_function("schedstat_read", |b| {
            b.iter_custom(|iters| batched(iters, |_| schedstat.read()))
        });
    }

    // Tokio's worker index, from a plain thread (`None`) and from a worker.
    group.bench_function("worker_index_outside", |b| {
        b.iter_custom(|iters| batched(iters, |_| tokio::runtime::worker_index()))
    });
    let one_worker = benches::multi_thread(1).build().expect("runtime");
    group.bench_function("worker_index_inside", |b| {
        b.iter_custom(|iters| {
            one_worker.block_on(async move {
                tokio::spawn(async move { batched(iters, |_| tokio::runtime::worker_index()) })
                    .await
                    .expect("bench task")
            })
        })
    });

    // One worker's local queue depth, as the poll hooks read it.
    let two_workers = benches::multi_thread(2).build().expect("runtime");
    let metrics = two_workers.metrics();
    group.bench_function("worker_local_queue_depth", |b| {
        b.iter_custom(|iters| batched(iters, |_| metrics.worker_local_queue_depth(black_box(0))))
    });
    group.finish();
}

/// Says whether quanta found an invariant TSC (raw ticks are not
/// nanoseconds) or fell back to the monotonic clock (they are).
fn probe_quanta(tsc: &quanta::Clock) {
    let (raw0, ns0) = (tsc.raw(), clock::monotonic_nanos());
    std::thread::sleep(Duration::from_millis(20));
    let (raw1, ns1) = (tsc.raw(), clock::monotonic_nanos());
    let ticks_per_ns = (raw1 - raw0) as f64 / (ns1 - ns0).max(1) as f64;
    println!(
        "pulse[quanta]: {ticks_per_ns:.3} raw ticks per ns ({})",
        if (ticks_per_ns - 1.0).abs() < 0.01 {
            "fell back to the monotonic clock"
        } else {
            "TSC"
        }
    );
}

/// A recording for the poll benchmarks.
fn poll_recording(config: Config) -> HotPath {
    HotPath::new(&config.max_pending_events(POLL_MAX_PENDING)).expect("valid config")
}

fn poll_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("poll_event");
    // One iteration is one PollStart/PollEnd pair: two events.
    group.throughput(Throughput::Elements(2));
    let here = Location::caller();
    let runtime = benches::multi_thread(2).build().expect("runtime");

    let cases = [
        ("pair_no_metrics", Config::new(), false),
        ("pair_with_metrics", Config::new(), true),
        ("pair_disabled", Config::new().enabled(false), true),
    ];
    for (name, config, with_metrics) in cases {
        let mut hot = poll_recording(config);
        if with_metrics {
            hot = hot.with_runtime_metrics(runtime.metrics());
        }
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                batched(iters, |task| {
                    hot.poll_start(black_box(0), black_box(task), here);
                    hot.poll_end(black_box(0));
                })
            })
        });
        finish(&format!("poll_event/{name}"), hot);
    }
    group.finish();
}

fn poll_flush(c: &mut Criterion) {
    let mut group = c.benchmark_group("poll_flush");
    group.throughput(Throughput::Elements(2));
    let here = Location::caller();
    for buffer_events in [64usize, 1024, 16 * 1024] {
        let hot = poll_recording(Config::new().buffer_events(buffer_events));
        group.bench_with_input(
            BenchmarkId::new("pair_buffer_events", buffer_events),
            &buffer_events,
            |b, _| {
                b.iter_custom(|iters| {
                    batched(iters, |task| {
                        hot.poll_start(black_box(0), black_box(task), here);
                        hot.poll_end(black_box(0));
                    })
                })
            },
        );
        finish(&format!("poll_flush/{buffer_events}"), hot);
    }
    group.finish();
}

fn park_unpark(c: &mut Criterion) {
    let mut group = c.benchmark_group("park_unpark");
    group.throughput(Throughput::Elements(2));
    // Default backlog bound: every park hands over its own (small) batch, so
    // the collector's count of pending events understates its memory.
    let cases = [
        ("pair_cpu_time", Config::new().run_queue_wait(false)),
        (
            "pair_cpu_time_schedstat",
            Config::new().run_queue_wait(true),
        ),
        ("pair_disabled", Config::new().enabled(false)),
    ];
    for (name, config) in cases {
        let hot = HotPath::new(&config).expect("valid config");
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                batched(iters, |_| {
                    hot.park(black_box(0));
                    hot.unpark(black_box(0));
                })
            })
        });
        finish(&format!("park_unpark/{name}"), hot);
    }
    group.finish();
}

/// Tasks that do nothing but yield: every poll is pure scheduler work, so
/// the recording's share is as large as it gets.
async fn yield_storm() {
    let tasks: Vec<_> = (0..YIELD_TASKS)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..YIELDS_PER_TASK {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("yield task");
    }
}

/// Builds the runtime under test, untraced or traced, identically.
type MakeBuilder = fn() -> tokio::runtime::Builder;

fn runtime_yield(c: &mut Criterion) {
    let mut group = c.benchmark_group("runtime_yield");
    // Task polls per iteration (each task is polled once per yield, once more
    // to finish).
    group.throughput(Throughput::Elements(
        (YIELD_TASKS * (YIELDS_PER_TASK + 1)) as u64,
    ));
    let flavors: [(&str, MakeBuilder); 2] = [
        ("multi_thread_2", || benches::multi_thread(2)),
        ("current_thread", benches::current_thread),
    ];
    for (flavor, builder) in flavors {
        let plain = builder().build().expect("runtime");
        group.bench_function(BenchmarkId::new("plain", flavor), |b| {
            b.iter(|| plain.block_on(yield_storm()))
        });
        drop(plain);

        let config = Config::new().max_pending_events(POLL_MAX_PENDING);
        let (traced, guard) =
            TracedRuntime::build_with_config(builder(), Box::new(NullWriter::new()), &config)
                .expect("traced runtime");
        group.bench_function(BenchmarkId::new("traced", flavor), |b| {
            b.iter(|| traced.block_on(yield_storm()))
        });
        drop(traced);
        report(
            &format!("runtime_yield/traced/{flavor}"),
            guard.finish().expect("a NullWriter cannot fail"),
        );
    }
    group.finish();
}

criterion_group! {
    name = critical_path;
    config = benches::criterion();
    targets = primitives, poll_event, poll_flush, park_unpark, runtime_yield
}
criterion_main!(critical_path);
