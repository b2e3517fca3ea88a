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
//! two timer readings, so the timer's own cost is spread over the whole batch.
//! `PULSE_BENCH_TIMER=cpu` times those batches with the thread's CPU clock
//! instead of the wall clock, which on a shared machine leaves out the time
//! the bench thread spent descheduled (see `benches::Timer`), and times
//! `runtime_yield` with the CPU time of the whole process.
//!
//! Full buffers are handed to the collector inside the timed loop, so their
//! cost is included, amortised over `buffer_events` (default 1024) events.
//! After each recording the bench prints how many events were written and
//! dropped: a benchmark that mostly drops would time the wrong path (a
//! dropped buffer costs less than a kept one). See [`poll_recording`] for how
//! the poll benchmarks avoid drops.
//!
//! Run: `cargo bench -p benches --bench critical_path`; smoke run:
//! `PULSE_BENCH_QUICK=1 cargo bench -p benches --bench critical_path`.
//! `benches/report.py` turns criterion's output into BENCHMARKS.md's tables.

use benches::{batched, whole_process};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, Bencher, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use pulse::bench::HotPath;
use pulse::clock::{self, SchedStatFile};
use pulse::{Config, NullWriter, Recorder, RecordingSummary};
use std::hint::black_box;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Backlog bound for the poll benchmarks: 4 Mi events (~160 MiB); see
/// [`poll_recording`].
const POLL_MAX_PENDING: usize = 1 << 22;

/// Flush interval for the poll benchmarks; see [`poll_recording`].
const POLL_FLUSH_MS: u64 = 1;

/// Tasks and yields per task of one `runtime_yield` iteration.
const YIELD_TASKS: usize = 64;
const YIELDS_PER_TASK: usize = 200;

/// Runs one benchmark of `group` and says whether criterion ran it (a name
/// filter skips the others), so that skipped recordings stay silent.
fn bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    mut f: impl FnMut(&mut Bencher<'_>),
) -> bool {
    let mut ran = false;
    group.bench_function(id, |b| {
        ran = true;
        f(b)
    });
    ran
}

/// Prints what a recording kept and lost, if its benchmark ran.
fn report(label: &str, ran: bool, summary: RecordingSummary) {
    if !ran {
        return;
    }
    let total = summary.events_written + summary.dropped_events;
    let share = summary.dropped_events as f64 * 100.0 / total.max(1) as f64;
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

fn finish(label: &str, ran: bool, hot: HotPath) {
    report(label, ran, hot.finish().expect("a NullWriter cannot fail"));
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
///
/// Recording flat out (~25 M events/s on one thread, far above what a real
/// runtime produces) needs two changes from the defaults to time the path a
/// real runtime takes:
///
/// - With the default backlog (64 Ki events, ~2.5 ms of recording here) the
///   flusher must be scheduled within ~1 ms of its half-full wake-up, which a
///   shared 2-core machine does not guarantee; when it is late, whole buffers
///   are dropped (0.01-0.25 % in trial runs), which is cheaper than keeping
///   them. [`POLL_MAX_PENDING`] leaves room for a late flusher.
/// - A larger backlog alone would let ~2 Mi events pile up before the
///   half-full wake-up, more batches than the collector recycles (64), so
///   every drain would allocate and page-fault fresh batches, which the
///   default configuration never does in steady state (it drains every 32
///   buffers). Flushing every [`POLL_FLUSH_MS`] ms keeps each drain at
///   ~25 buffers, as the defaults do.
///
/// The traced runtime of `runtime_yield` uses the same settings.
fn poll_recording(config: Config) -> HotPath {
    HotPath::new(&poll_config(config)).expect("valid config")
}

fn poll_config(config: Config) -> Config {
    config
        .max_pending_events(POLL_MAX_PENDING)
        .flush_ms(POLL_FLUSH_MS)
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
        let ran = bench(&mut group, BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                batched(iters, |task| {
                    hot.poll_start(black_box(0), black_box(task), here);
                    hot.poll_end();
                })
            })
        });
        finish(&format!("poll_event/{name}"), ran, hot);
    }

    // With `schedule_latency` on, the PollStart carries the latency Tokio
    // measured (issue 18): pulse's own share of that setting's cost.
    let hot = poll_recording(Config::new().schedule_latency(true));
    let ran = bench(
        &mut group,
        BenchmarkId::from_parameter("pair_with_latency"),
        |b| {
            b.iter_custom(|iters| {
                batched(iters, |task| {
                    hot.poll_start_with_latency(black_box(0), black_box(task), here, task & 0xFFFF);
                    hot.poll_end();
                })
            })
        },
    );
    finish("poll_event/pair_with_latency", ran, hot);

    // What the poll hooks run, on a worker thread: before the poll, the
    // worker index from Tokio, then the recording (with that runtime's
    // local queue depth); after it, the recording alone.
    let one_worker = benches::multi_thread(1).build().expect("runtime");
    let hot = Arc::new(poll_recording(Config::new()).with_runtime_metrics(one_worker.metrics()));
    let id = BenchmarkId::from_parameter("pair_hook_in_worker");
    let ran = bench(&mut group, id, |b| {
        b.iter_custom(|iters| {
            let hot = hot.clone();
            one_worker.block_on(async move {
                tokio::spawn(async move {
                    batched(iters, |task| {
                        if let Some(worker) = tokio::runtime::worker_index() {
                            hot.poll_start(worker as u32, black_box(task), here);
                        }
                        hot.poll_end();
                    })
                })
                .await
                .expect("bench task")
            })
        })
    });
    drop(one_worker);
    let hot = Arc::into_inner(hot).expect("the bench task has finished");
    finish("poll_event/pair_hook_in_worker", ran, hot);
    group.finish();
}

fn poll_flush(c: &mut Criterion) {
    let mut group = c.benchmark_group("poll_flush");
    group.throughput(Throughput::Elements(2));
    let here = Location::caller();
    for buffer_events in [64usize, 1024, 16 * 1024] {
        let hot = poll_recording(Config::new().buffer_events(buffer_events));
        let id = BenchmarkId::new("pair_buffer_events", buffer_events);
        let ran = bench(&mut group, id, |b| {
            b.iter_custom(|iters| {
                batched(iters, |task| {
                    hot.poll_start(black_box(0), black_box(task), here);
                    hot.poll_end();
                })
            })
        });
        finish(&format!("poll_flush/{buffer_events}"), ran, hot);
    }
    group.finish();
}

fn park_unpark(c: &mut Criterion) {
    let mut group = c.benchmark_group("park_unpark");
    group.throughput(Throughput::Elements(2));
    // Default configuration otherwise. A park or unpark reads the thread's
    // CPU time and run-queue wait only when 1 ms passed since its previous
    // reading (`READING_INTERVAL_NANOS`), so in this tight loop one pair in
    // several thousand pays the reading: the figure is the amortised cost
    // at any park rate; `primitives/schedstat_read` and
    // `primitives/thread_cpu_nanos` are what one reading costs.
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
        let ran = bench(&mut group, BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                batched(iters, |_| {
                    hot.park(black_box(0));
                    hot.unpark(black_box(0));
                })
            })
        });
        finish(&format!("park_unpark/{name}"), ran, hot);
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
        bench(&mut group, BenchmarkId::new("plain", flavor), |b| {
            b.iter_custom(|iters| whole_process(iters, || plain.block_on(yield_storm())))
        });
        drop(plain);

        let config = poll_config(Config::new());
        let (traced, guard) =
            Recorder::build_with_config(builder(), Box::new(NullWriter::new()), &config)
                .expect("traced runtime");
        let ran = bench(&mut group, BenchmarkId::new("traced", flavor), |b| {
            b.iter_custom(|iters| whole_process(iters, || traced.block_on(yield_storm())))
        });
        // Workers hand over their buffers as the runtime shuts down.
        drop(traced);
        let summary = guard.finish().expect("a NullWriter cannot fail");
        report(&format!("runtime_yield/traced/{flavor}"), ran, summary);

        // Issue 18: Tokio's schedule-latency tracking alone (its clock
        // reads at every schedule and poll), then pulse recording it.
        #[cfg(tokio_unstable)]
        {
            let mut tracking = builder();
            tracking.track_task_schedule_latency();
            let plain = tracking.build().expect("runtime");
            bench(
                &mut group,
                BenchmarkId::new("plain_tracking", flavor),
                |b| b.iter_custom(|iters| whole_process(iters, || plain.block_on(yield_storm()))),
            );
            drop(plain);
            let config = poll_config(Config::new().schedule_latency(true));
            let (traced, guard) =
                Recorder::build_with_config(builder(), Box::new(NullWriter::new()), &config)
                    .expect("traced runtime");
            let ran = bench(
                &mut group,
                BenchmarkId::new("traced_latency", flavor),
                |b| b.iter_custom(|iters| whole_process(iters, || traced.block_on(yield_storm()))),
            );
            drop(traced);
            let summary = guard.finish().expect("a NullWriter cannot fail");
            report(
                &format!("runtime_yield/traced_latency/{flavor}"),
                ran,
                summary,
            );
        }
    }
    group.finish();
}

/// The flusher's v6 encoding of what a yield storm records (issue 11, item
/// 2): 1024 events, PollStart/PollEnd pairs of 64 tasks, half on one
/// worker and half on the other (as the flusher writes them: batch by
/// batch, each from one thread), encoded into a cleared buffer; per event.
fn encode(c: &mut Criterion) {
    use pulse::trace::{Encoder, FormatVersion, TraceMetadata};
    let mut group = c.benchmark_group("encode");
    const EVENTS: u64 = 1024;
    group.throughput(Throughput::Elements(EVENTS));
    let here = pulse::SpawnLocation(Location::caller());
    let events: Vec<pulse::RecordedEvent> = (0..EVENTS / 2)
        .flat_map(|i| {
            let worker = u32::from(i >= EVENTS / 4);
            let t = i * 130;
            [
                pulse::RecordedEvent::PollStart {
                    timestamp_nanos: t,
                    worker,
                    local_queue: (i % 7) as u32,
                    task_id: Some(1 + i % 64),
                    spawned_at: here,
                },
                pulse::RecordedEvent::PollEnd {
                    timestamp_nanos: t + 65,
                    worker,
                    local_queue: (i % 7) as u32,
                },
            ]
        })
        .collect();
    let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
    let mut out = Vec::with_capacity(64 * 1024);
    encoder.begin_file(0, &mut out);
    bench(&mut group, BenchmarkId::from_parameter("v6_each"), |b| {
        b.iter(|| {
            out.clear();
            for event in &events {
                encoder.encode(event, &mut out);
            }
            black_box(out.len())
        })
    });
    bench(&mut group, BenchmarkId::from_parameter("v6_all"), |b| {
        b.iter(|| {
            out.clear();
            encoder.encode_all(&events, &mut out);
            black_box(out.len())
        })
    });
    // What the flusher does with a yield storm's compact records (issue
    // 11): decode into slices then encode, or encode directly.
    let batches = pulse::bench::RecordedBatches::yield_storm(8192);
    group.throughput(Throughput::Elements(batches.events()));
    bench(
        &mut group,
        BenchmarkId::from_parameter("compact_decoded"),
        |b| {
            b.iter(|| {
                out.clear();
                batches.encode_decoded(&mut encoder, &mut out);
                black_box(out.len())
            })
        },
    );
    bench(
        &mut group,
        BenchmarkId::from_parameter("compact_direct"),
        |b| {
            b.iter(|| {
                out.clear();
                batches.encode_direct(&mut encoder, &mut out);
                black_box(out.len())
            })
        },
    );
    group.finish();
}

criterion_group! {
    name = critical_path;
    config = benches::criterion();
    targets = primitives, poll_event, poll_flush, park_unpark, runtime_yield, encode
}
criterion_main!(critical_path);
