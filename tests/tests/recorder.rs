//! The recorder against real multi-thread runtimes: what the hooks record
//! must match what Tokio itself counts, in order, with nothing lost.

use pulse::{Config, EventType, RecordedEvent, Recorder, TraceWriter};
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A writer that keeps every event in memory, for assertions.
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

impl Capture {
    fn events(&self) -> Vec<RecordedEvent> {
        self.0.lock().unwrap().clone()
    }
}

fn by_worker(events: &[RecordedEvent]) -> BTreeMap<u32, Vec<RecordedEvent>> {
    let mut map: BTreeMap<u32, Vec<RecordedEvent>> = BTreeMap::new();
    for event in events {
        if let (
            Some(worker),
            EventType::PollStart
            | EventType::PollEnd
            | EventType::WorkerPark
            | EventType::WorkerUnpark,
        ) = (event.worker(), event.event_type())
        {
            map.entry(worker).or_default().push(*event);
        }
    }
    map
}

fn multi_thread(workers: usize) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers).enable_all();
    builder
}

/// A workload with many polls, yields, sleeps (so workers park) and
/// cross-worker wakeups.
async fn workload() {
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        tasks.push(tokio::spawn(async move {
            let mut acc = i;
            for j in 0..50 {
                acc = acc.wrapping_mul(31).wrapping_add(j);
                tokio::task::yield_now().await;
                if j % 10 == 0 {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
            acc
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Tokio's per-worker poll counts once every worker has gone idle: a worker
/// publishes its counters in batches (when it parks), so counts read right
/// after `block_on` can lag the polls that already happened.
fn settled_poll_counts(runtime: &tokio::runtime::Runtime) -> Vec<u64> {
    let metrics = runtime.metrics();
    let read = || -> Vec<u64> {
        (0..metrics.num_workers())
            .map(|w| metrics.worker_poll_count(w))
            .collect()
    };
    let mut last = read();
    let mut stable_reads = 0;
    while stable_reads < 5 {
        std::thread::sleep(Duration::from_millis(10));
        let now = read();
        stable_reads = if now == last { stable_reads + 1 } else { 0 };
        last = now;
    }
    last
}

#[test]
fn poll_events_match_tokio_poll_counts_and_alternate() {
    let capture = Capture::default();
    let config = Config::new().flush_ms(20);
    // Tokio's `worker_poll_count` does not count tasks run from the LIFO slot
    // (worker.rs polls them without `start_poll`), while the poll hooks fire
    // for them. Without the LIFO slot both count the same polls.
    let mut builder = multi_thread(3);
    builder.disable_lifo_slot();
    let (runtime, guard) =
        Recorder::build_with_config(builder, Box::new(capture.clone()), &config).unwrap();
    runtime.block_on(workload());
    let tokio_polls = settled_poll_counts(&runtime);
    drop(runtime);
    let summary = guard.finish().unwrap();
    assert_eq!(summary.dropped_events, 0);

    let events = capture.events();
    assert_eq!(summary.events_written, events.len() as u64);
    let workers = by_worker(&events);
    let total_polls: u64 = tokio_polls.iter().sum();
    assert!(
        total_polls >= 64 * 50,
        "workload polled {total_polls} times"
    );
    for (worker, expected) in tokio_polls.iter().enumerate() {
        let stream = workers
            .get(&(worker as u32))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let starts = stream
            .iter()
            .filter(|e| e.event_type() == EventType::PollStart)
            .count() as u64;
        let ends = stream
            .iter()
            .filter(|e| e.event_type() == EventType::PollEnd)
            .count() as u64;
        assert_eq!(
            starts, *expected,
            "worker {worker}: PollStart count vs tokio's worker_poll_count"
        );
        assert_eq!(
            ends, *expected,
            "worker {worker}: PollEnd count vs tokio's worker_poll_count"
        );

        // Strict alternation: Start, End, Start, End... and park/unpark never
        // inside a poll; parks and unparks alternate too.
        let mut in_poll = false;
        let mut parked = false;
        for event in stream {
            match event.event_type() {
                EventType::PollStart => {
                    assert!(
                        !in_poll && !parked,
                        "worker {worker}: PollStart while in poll or parked"
                    );
                    in_poll = true;
                }
                EventType::PollEnd => {
                    assert!(in_poll, "worker {worker}: PollEnd without PollStart");
                    in_poll = false;
                }
                EventType::WorkerPark => {
                    assert!(
                        !in_poll && !parked,
                        "worker {worker}: park inside poll or twice"
                    );
                    parked = true;
                }
                EventType::WorkerUnpark => {
                    // A worker's first unpark may come before any recorded park.
                    assert!(!in_poll, "worker {worker}: unpark inside poll");
                    parked = false;
                }
                _ => unreachable!(),
            }
        }
        assert!(!in_poll, "worker {worker}: trace ends inside a poll");
    }
}

#[test]
fn timestamps_and_cpu_time_are_monotonic_per_worker() {
    let capture = Capture::default();
    let (runtime, guard) = Recorder::build(multi_thread(2), Box::new(capture.clone())).unwrap();
    runtime.block_on(workload());
    drop(runtime);
    drop(guard);

    let events = capture.events();
    let workers = by_worker(&events);
    assert_eq!(workers.len(), 2, "both workers recorded events");
    for (worker, stream) in workers {
        let mut last_time = 0;
        let mut last_cpu = 0;
        let mut parks = 0;
        for event in &stream {
            assert!(
                event.timestamp_nanos() >= last_time,
                "worker {worker}: time went backwards"
            );
            last_time = event.timestamp_nanos();
            if let RecordedEvent::WorkerPark { cpu_nanos, .. }
            | RecordedEvent::WorkerUnpark { cpu_nanos, .. } = event
            {
                // A park or unpark carries a reading at most once per ms.
                if let Some(cpu_nanos) = *cpu_nanos {
                    assert!(
                        cpu_nanos >= last_cpu,
                        "worker {worker}: CPU time went backwards"
                    );
                    last_cpu = cpu_nanos;
                }
                parks += 1;
            }
        }
        assert!(parks > 0, "worker {worker} never parked or unparked");
        assert!(last_cpu > 0, "worker {worker}: CPU time was never read");
    }
}

#[test]
fn poll_start_carries_task_id_and_spawn_location() {
    let capture = Capture::default();
    let (runtime, guard) = Recorder::build(multi_thread(2), Box::new(capture.clone())).unwrap();
    let spawned_line = line!() + 1;
    let handle = runtime.spawn(async { tokio::task::yield_now().await });
    let id = handle.id();
    runtime.block_on(handle).unwrap();
    drop(runtime);
    drop(guard);

    let polls: Vec<_> = capture
        .events()
        .into_iter()
        .filter_map(|e| match e {
            RecordedEvent::PollStart {
                task_id: Some(task_id),
                spawned_at,
                ..
            } => Some((task_id, spawned_at)),
            _ => None,
        })
        .collect();
    let expected_id: u64 = id.to_string().parse().unwrap();
    let ours: Vec<_> = polls
        .iter()
        .filter(|(task, _)| *task == expected_id)
        .collect();
    assert_eq!(ours.len(), 2, "one poll before the yield, one after");
    for (_, location) in ours {
        assert!(location.0.file().ends_with("recorder.rs"), "{location}");
        assert_eq!(location.0.line(), spawned_line);
    }
}

/// A poll of 1 µs or more ends with Tokio's local queue depth at its end
/// (the witness: Tokio's own metric, read by the task just before it
/// returns), not its start's: the task queued 20 tasks.
#[test]
fn poll_ends_carry_tokios_local_queue_depth() {
    let capture = Capture::default();
    let (runtime, guard) = Recorder::build(multi_thread(1), Box::new(capture.clone())).unwrap();
    let witnessed = runtime.block_on(async {
        let spawner_line = line!() + 1;
        let spawner = tokio::spawn(async {
            // One worker: nobody steals, so the depth the task reads last
            // is the one the hook reads right after the poll.
            let spawned: Vec<_> = (0..20).map(|_| tokio::spawn(async {})).collect();
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_micros(200) {
                std::hint::spin_loop();
            }
            let depth = tokio::runtime::Handle::current()
                .metrics()
                .worker_local_queue_depth(0);
            (depth, spawned)
        });
        (spawner.await.unwrap(), spawner_line)
    });
    let ((witnessed, spawned), spawner_line) = witnessed;
    runtime.block_on(async {
        for task in spawned {
            task.await.unwrap();
        }
    });
    drop(runtime);
    drop(guard);

    let events = capture.events();
    let polls = by_worker(&events).remove(&0).expect("worker 0 polled");
    let spawner_end = polls.windows(2).find_map(|pair| match (pair[0], pair[1]) {
        (
            RecordedEvent::PollStart {
                local_queue: 0,
                spawned_at,
                ..
            },
            RecordedEvent::PollEnd { local_queue, .. },
        ) if spawned_at.0.line() == spawner_line
            && spawned_at.0.file().ends_with("recorder.rs") =>
        {
            Some(local_queue)
        }
        _ => None,
    });
    assert!(witnessed >= 19, "Tokio saw {witnessed} tasks queued");
    assert_eq!(spawner_end, Some(witnessed as u32));
}

/// A PollStart 1 µs or more after its thread's previous reading carries
/// Tokio's local queue depth at that start (the witness: Tokio's own
/// metric, read by the task as its poll begins). Every task spins 2 µs, so
/// every PollStart reads.
#[test]
fn poll_starts_carry_tokios_local_queue_depth() {
    let capture = Capture::default();
    let (runtime, guard) = Recorder::build(multi_thread(1), Box::new(capture.clone())).unwrap();
    let tasks = runtime.block_on(async {
        tokio::spawn(async {
            // One worker: nobody steals, and nothing but these tasks
            // changes its local queue. Every poll, this one too, lasts
            // 2 µs or more.
            let spin = || {
                let start = std::time::Instant::now();
                while start.elapsed() < Duration::from_micros(2) {
                    std::hint::spin_loop();
                }
            };
            let tasks = (0..20)
                .map(|_| {
                    tokio::spawn(async move {
                        let depth = tokio::runtime::Handle::current()
                            .metrics()
                            .worker_local_queue_depth(0);
                        spin();
                        depth
                    })
                })
                .collect::<Vec<_>>();
            spin();
            tasks
        })
        .await
        .unwrap()
    });
    let witnessed: BTreeMap<u64, u32> = runtime.block_on(async {
        let mut witnessed = BTreeMap::new();
        for task in tasks {
            let id = task.id().to_string().parse().unwrap();
            witnessed.insert(id, task.await.unwrap() as u32);
        }
        witnessed
    });
    drop(runtime);
    drop(guard);

    let recorded: BTreeMap<u64, u32> = capture
        .events()
        .iter()
        .filter_map(|event| match event {
            RecordedEvent::PollStart {
                task_id: Some(id),
                local_queue,
                ..
            } if witnessed.contains_key(id) => Some((*id, *local_queue)),
            _ => None,
        })
        .collect();
    assert_eq!(recorded, witnessed);
    assert!(
        witnessed.values().any(|&depth| depth >= 10),
        "the tasks saw a queue: {witnessed:?}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn park_and_unpark_carry_run_queue_wait_on_linux() {
    let capture = Capture::default();
    let (runtime, guard) = Recorder::build(multi_thread(2), Box::new(capture.clone())).unwrap();
    // Keep both cores busy with OS threads so the workers wait for a CPU.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    runtime.block_on(workload());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hogs.into_iter().for_each(|h| h.join().unwrap());
    drop(runtime);
    drop(guard);

    let max_run_delay = capture
        .events()
        .iter()
        .filter_map(|e| match e {
            RecordedEvent::WorkerUnpark {
                run_delay_nanos, ..
            } => *run_delay_nanos,
            _ => None,
        })
        .max()
        .expect("workers unparked");
    assert!(
        max_run_delay > 0,
        "four spinning threads on this machine must delay the workers"
    );
}

#[test]
fn sampler_records_global_queue_and_worker_samples() {
    let capture = Capture::default();
    let config = Config::new().sample_ms(1);
    let (runtime, guard) =
        Recorder::build_with_config(multi_thread(2), Box::new(capture.clone()), &config).unwrap();
    runtime.block_on(async {
        // Fill the global queue from outside the workers, then let it drain.
        let handle = tokio::runtime::Handle::current();
        let tasks: Vec<_> = (0..1000)
            .map(|_| handle.spawn(async { std::thread::sleep(Duration::from_micros(20)) }))
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    });
    drop(runtime);
    drop(guard);

    let events = capture.events();
    let queue: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            RecordedEvent::QueueSample { global_queue, .. } => Some(*global_queue),
            _ => None,
        })
        .collect();
    assert!(
        queue.len() >= 10,
        "sampled every 1ms over >20ms, got {}",
        queue.len()
    );
    assert!(
        queue.iter().any(|&depth| depth > 0),
        "the global queue held tasks at some sample"
    );
    let worker_samples: Vec<_> = events
        .iter()
        .filter(|e| e.event_type() == EventType::WorkerSample)
        .collect();
    assert!(!worker_samples.is_empty());
    #[cfg(target_os = "linux")]
    assert!(worker_samples
        .iter()
        .any(|e| matches!(e, RecordedEvent::WorkerSample { cpu_nanos, .. } if *cpu_nanos > 0)));
}

#[test]
fn disabling_records_nothing_and_keeps_pairs() {
    let capture = Capture::default();
    let config = Config::new().enabled(false);
    let (runtime, guard) =
        Recorder::build_with_config(multi_thread(2), Box::new(capture.clone()), &config).unwrap();
    let handle = guard.handle();
    runtime.block_on(workload());
    assert!(
        capture.events().iter().all(|e| e.worker().is_none()),
        "disabled recording recorded worker events"
    );

    // Toggle while tasks run: every recorded PollStart keeps its PollEnd.
    let toggler = {
        let handle = handle.clone();
        std::thread::spawn(move || {
            for i in 0..200 {
                if i % 2 == 0 {
                    handle.enable()
                } else {
                    handle.disable()
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            handle.enable();
        })
    };
    runtime.block_on(workload());
    toggler.join().unwrap();
    drop(runtime);
    drop(guard);

    for (worker, stream) in by_worker(&capture.events()) {
        let mut in_poll = false;
        for event in stream {
            match event.event_type() {
                EventType::PollStart => {
                    assert!(!in_poll, "worker {worker}: two starts in a row");
                    in_poll = true;
                }
                EventType::PollEnd => {
                    assert!(in_poll, "worker {worker}: end without start");
                    in_poll = false;
                }
                _ => {}
            }
        }
        assert!(!in_poll);
    }
}

/// A writer that takes far longer than the event rate allows.
struct Slow(Capture);

impl TraceWriter for Slow {
    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
        std::thread::sleep(Duration::from_millis(30));
        self.0.write_batch(events)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_slow_writer_drops_and_counts_instead_of_blocking() {
    let capture = Capture::default();
    let config = Config::new().buffer_events(64).max_pending_events(256);
    let (runtime, guard) =
        Recorder::build_with_config(multi_thread(2), Box::new(Slow(capture.clone())), &config)
            .unwrap();
    let handle = guard.handle();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..20_000 {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    drop(runtime);
    let dropped_live = handle.dropped_events();
    let summary = guard.finish().unwrap();
    assert!(
        dropped_live > 0,
        "320k events through a 256-event backlog must drop some"
    );
    assert_eq!(summary.dropped_events, dropped_live);
    let recorded_drops: u64 = capture
        .events()
        .iter()
        .filter_map(|e| match e {
            RecordedEvent::EventsDropped { count, .. } => Some(*count),
            _ => None,
        })
        .sum();
    assert_eq!(
        recorded_drops, summary.dropped_events,
        "every drop is marked in the trace"
    );
}

/// A writer whose disk is full.
struct Failing;

impl TraceWriter for Failing {
    fn write_batch(&mut self, _: &[RecordedEvent]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::StorageFull,
            "no space left on device",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_writer_stops_recording_but_not_the_program() {
    let config = Config::new().flush_ms(5);
    let (runtime, guard) =
        Recorder::build_with_config(multi_thread(2), Box::new(Failing), &config).unwrap();
    let handle = guard.handle();
    let sum = runtime.block_on(async {
        let mut sum = 0u64;
        for i in 0..200u64 {
            sum += tokio::spawn(async move { i }).await.unwrap();
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        sum
    });
    assert_eq!(
        sum,
        (0..200).sum::<u64>(),
        "the program's results are unchanged"
    );
    assert!(handle.write_error().unwrap().contains("no space left"));
    assert!(!handle.is_enabled(), "recording stops after a write error");
    handle.enable();
    assert!(
        !handle.is_enabled(),
        "and cannot be re-enabled onto a failed writer"
    );
    drop(runtime);
    let err = guard.finish().unwrap_err();
    assert!(err.to_string().contains("no space left"), "{err}");
}

#[test]
fn events_of_threads_still_alive_at_shutdown_are_kept() {
    // A current-thread runtime records on the calling thread, which outlives
    // the runtime: its buffer is not flushed by a thread stop.
    let capture = Capture::default();
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    let (runtime, guard) = Recorder::build(builder, Box::new(capture.clone())).unwrap();
    runtime.block_on(async {
        for _ in 0..10 {
            tokio::spawn(async {}).await.unwrap();
        }
    });
    let polls = runtime.metrics().worker_poll_count(0);
    drop(runtime);
    // Drop the guard from another thread, as a library might.
    std::thread::spawn(move || drop(guard)).join().unwrap();
    let starts = capture
        .events()
        .iter()
        .filter(|e| e.event_type() == EventType::PollStart)
        .count() as u64;
    assert_eq!(polls, 10);
    assert_eq!(starts, polls);
}

#[test]
fn two_runtimes_record_into_their_own_traces() {
    let (a, b) = (Capture::default(), Capture::default());
    let (rt_a, guard_a) = Recorder::build(multi_thread(1), Box::new(a.clone())).unwrap();
    let (rt_b, guard_b) = Recorder::build(multi_thread(1), Box::new(b.clone())).unwrap();
    rt_a.block_on(async {
        for _ in 0..5 {
            tokio::spawn(async {}).await.unwrap();
        }
    });
    rt_b.block_on(async {
        for _ in 0..7 {
            tokio::spawn(async {}).await.unwrap();
        }
    });
    drop((rt_a, rt_b));
    drop((guard_a, guard_b));
    let count = |c: &Capture| {
        c.events()
            .iter()
            .filter(|e| e.event_type() == EventType::PollStart)
            .count()
    };
    assert_eq!(count(&a), 5);
    assert_eq!(count(&b), 7);
}

#[test]
fn a_local_runtime_records_its_local_tasks() {
    let capture = Capture::default();
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    let (runtime, guard) = Recorder::build_local_with_config(
        builder,
        Box::new(capture.clone()),
        &Config::new(),
        tokio::runtime::LocalOptions::default(),
    )
    .unwrap();
    let not_send = std::rc::Rc::new(3);
    runtime.block_on(async move {
        for _ in 0..4 {
            let value = not_send.clone();
            tokio::task::spawn_local(async move { *value })
                .await
                .unwrap();
        }
    });
    let polls = runtime.metrics().worker_poll_count(0);
    drop(runtime);
    drop(guard);
    let starts: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|e| e.event_type() == EventType::PollStart)
        .collect();
    assert_eq!(polls, 4);
    assert_eq!(starts.len() as u64, polls);
    assert!(starts.iter().all(|e| e.worker() == Some(0)));
}
