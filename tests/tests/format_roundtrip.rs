//! Round-trip properties of the trace format: what an `Encoder` writes, a
//! `TraceReader` reads back (exactly for v6 up to time quantization; with
//! v5's documented saturation), across rotated files and around records
//! an older reader does not know.
//!
//! Also the measurement behind `DEFAULT_TIME_UNIT_NANOS` and the bytes per
//! event in FORMAT.md (ignored by default; see `measure_bytes_per_event`).

use proptest::prelude::*;
use pulse_trace::{
    Encoder, FormatVersion, LocationId, TraceEvent, TraceMetadata, TraceReader,
    DEFAULT_TIME_UNIT_NANOS,
};
use pulse_trace::{RecordedEvent, SpawnLocation};
use std::collections::HashMap;
use std::panic::Location;

// Distinct spawn sites: each helper's own location.
fn site_a() -> &'static Location<'static> {
    Location::caller()
}
fn site_b() -> &'static Location<'static> {
    Location::caller()
}
fn site_c() -> &'static Location<'static> {
    Location::caller()
}
fn site_d() -> &'static Location<'static> {
    Location::caller()
}

fn sites() -> [SpawnLocation; 4] {
    [site_a(), site_b(), site_c(), site_d()].map(SpawnLocation)
}

/// Timestamps that mostly move forward by small steps, sometimes jump, and
/// sometimes go backwards (as two threads sharing a worker index can).
fn timestamps(len: usize) -> impl Strategy<Value = Vec<u64>> {
    let step = prop_oneof![
        6 => 0..2_000u64,
        2 => 0..10_000_000u64,
        1 => any::<u64>(),
    ];
    proptest::collection::vec(step, len).prop_map(|steps| {
        steps
            .into_iter()
            .scan(0u64, |now, step| {
                *now = now.wrapping_add(step);
                Some(*now)
            })
            .collect()
    })
}

fn small_or_any_u32(small: u32) -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0..small, 1 => any::<u32>()]
}

fn small_or_any_u64(small: u64) -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0..small, 1 => any::<u64>()]
}

/// One event with timestamp 0 (see [`at`]).
fn event_kind() -> impl Strategy<Value = RecordedEvent> {
    let worker = || small_or_any_u32(4);
    let queue = || small_or_any_u32(40);
    prop_oneof![
        (worker(), queue(), small_or_any_u64(100), 0..4usize).prop_map(
            |(worker, local_queue, task_id, site)| RecordedEvent::PollStart {
                timestamp_nanos: 0,
                worker,
                local_queue,
                task_id: Some(task_id),
                spawned_at: sites()[site],
            }
        ),
        (worker(), queue()).prop_map(|(worker, local_queue)| RecordedEvent::PollEnd {
            timestamp_nanos: 0,
            worker,
            local_queue,
        }),
        (
            any::<bool>(),
            worker(),
            queue(),
            small_or_any_u64(1 << 40),
            small_or_any_u64(1 << 30)
        )
            .prop_map(|(park, worker, local_queue, cpu_nanos, run_delay_nanos)| {
                if park {
                    RecordedEvent::WorkerPark {
                        timestamp_nanos: 0,
                        worker,
                        local_queue,
                        cpu_nanos: Some(cpu_nanos),
                        run_delay_nanos: Some(run_delay_nanos),
                    }
                } else {
                    RecordedEvent::WorkerUnpark {
                        timestamp_nanos: 0,
                        worker,
                        local_queue,
                        cpu_nanos: Some(cpu_nanos),
                        run_delay_nanos: Some(run_delay_nanos),
                    }
                }
            }),
        small_or_any_u64(1_000).prop_map(|global_queue| RecordedEvent::QueueSample {
            timestamp_nanos: 0,
            global_queue,
        }),
        (worker(), any::<u64>(), any::<u64>()).prop_map(|(worker, cpu_nanos, run_delay_nanos)| {
            RecordedEvent::WorkerSample {
                timestamp_nanos: 0,
                worker,
                cpu_nanos,
                run_delay_nanos: Some(run_delay_nanos),
            }
        }),
        any::<u64>().prop_map(|count| RecordedEvent::EventsDropped {
            timestamp_nanos: 0,
            count,
        }),
    ]
}

/// `event` at time `t`.
fn at(mut event: RecordedEvent, t: u64) -> RecordedEvent {
    match &mut event {
        RecordedEvent::PollStart {
            timestamp_nanos, ..
        }
        | RecordedEvent::PollEnd {
            timestamp_nanos, ..
        }
        | RecordedEvent::WorkerPark {
            timestamp_nanos, ..
        }
        | RecordedEvent::WorkerUnpark {
            timestamp_nanos, ..
        }
        | RecordedEvent::QueueSample {
            timestamp_nanos, ..
        }
        | RecordedEvent::WorkerSample {
            timestamp_nanos, ..
        }
        | RecordedEvent::EventsDropped {
            timestamp_nanos, ..
        } => *timestamp_nanos = t,
        _ => unreachable!("a new event kind needs a generator"),
    }
    event
}

fn events(max_len: usize) -> impl Strategy<Value = Vec<RecordedEvent>> {
    (0..=max_len)
        .prop_flat_map(|len| {
            (
                proptest::collection::vec(event_kind(), len),
                timestamps(len),
            )
        })
        .prop_map(|(kinds, times)| {
            kinds
                .into_iter()
                .zip(times)
                .map(|(kind, t)| at(kind, t))
                .collect()
        })
}

fn metadata() -> impl Strategy<Value = TraceMetadata> {
    let unit = prop_oneof![
        Just(1u32),
        Just(DEFAULT_TIME_UNIT_NANOS),
        1..=100_000u32,
        Just(u32::MAX)
    ];
    let config = proptest::collection::vec(("[a-z_]{1,8}", ".{0,12}"), 0..4);
    (unit, any::<u32>(), any::<u64>(), any::<bool>(), config).prop_map(
        |(time_unit_nanos, worker_count, start_unix_nanos, has_run_delay, config)| TraceMetadata {
            time_unit_nanos,
            worker_count,
            start_unix_nanos,
            has_run_delay,
            config,
            ..TraceMetadata::default()
        },
    )
}

/// What a v6 reader must return for `event`, with the location left to
/// [`check_v6`] (ids are the encoder's choice).
fn expected_v6(event: &RecordedEvent, unit: u64, has_run_delay: bool) -> TraceEvent {
    let quantized = |t: u64| t / unit * unit;
    let delay = |d: Option<u64>| has_run_delay.then_some(d.unwrap_or(0));
    match *event {
        RecordedEvent::PollStart {
            timestamp_nanos,
            worker,
            local_queue,
            task_id,
            ..
        } => TraceEvent::PollStart {
            timestamp_nanos: quantized(timestamp_nanos),
            worker,
            local_queue,
            task_id: task_id.filter(|&id| id != 0),
            spawned_at: None,
        },
        RecordedEvent::PollEnd {
            timestamp_nanos,
            worker,
            local_queue,
        } => TraceEvent::PollEnd {
            timestamp_nanos: quantized(timestamp_nanos),
            worker,
            local_queue,
        },
        RecordedEvent::WorkerPark {
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            run_delay_nanos,
        } => TraceEvent::WorkerPark {
            timestamp_nanos: quantized(timestamp_nanos),
            worker,
            local_queue,
            cpu_nanos,
            run_delay_nanos: delay(run_delay_nanos),
        },
        RecordedEvent::WorkerUnpark {
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            run_delay_nanos,
        } => TraceEvent::WorkerUnpark {
            timestamp_nanos: quantized(timestamp_nanos),
            worker,
            local_queue,
            cpu_nanos,
            run_delay_nanos: delay(run_delay_nanos),
        },
        RecordedEvent::QueueSample {
            timestamp_nanos,
            global_queue,
        } => TraceEvent::QueueSample {
            timestamp_nanos: quantized(timestamp_nanos),
            global_queue,
        },
        RecordedEvent::WorkerSample {
            timestamp_nanos,
            worker,
            cpu_nanos,
            run_delay_nanos,
        } => TraceEvent::WorkerSample {
            timestamp_nanos: quantized(timestamp_nanos),
            worker,
            cpu_nanos,
            run_delay_nanos: delay(run_delay_nanos),
        },
        RecordedEvent::EventsDropped {
            timestamp_nanos,
            count,
        } => TraceEvent::EventsDropped {
            timestamp_nanos: quantized(timestamp_nanos),
            count,
        },
        _ => unreachable!("a new event kind needs a round-trip expectation"),
    }
}

/// What a v5 reader must return for `event`: µs truncation, saturation,
/// and nothing for kinds v5 cannot carry.
fn expected_v5(event: &RecordedEvent) -> Option<TraceEvent> {
    let micros = |nanos: u64| (nanos / 1_000).min(u32::MAX.into()) * 1_000;
    let byte = |value: u64| value.min(255) as u32;
    Some(match *event {
        RecordedEvent::PollStart {
            timestamp_nanos,
            worker,
            local_queue,
            ..
        } => TraceEvent::PollStart {
            timestamp_nanos: micros(timestamp_nanos),
            worker: byte(worker.into()),
            local_queue: byte(local_queue.into()),
            task_id: None,
            spawned_at: None,
        },
        RecordedEvent::PollEnd {
            timestamp_nanos,
            worker,
            local_queue,
        } => TraceEvent::PollEnd {
            timestamp_nanos: micros(timestamp_nanos),
            worker: byte(worker.into()),
            local_queue: byte(local_queue.into()),
        },
        RecordedEvent::WorkerPark {
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            ..
        } => TraceEvent::WorkerPark {
            timestamp_nanos: micros(timestamp_nanos),
            worker: byte(worker.into()),
            local_queue: byte(local_queue.into()),
            cpu_nanos: cpu_nanos.map(micros).filter(|&cpu| cpu != 0),
            run_delay_nanos: None,
        },
        RecordedEvent::WorkerUnpark {
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            ..
        } => TraceEvent::WorkerUnpark {
            timestamp_nanos: micros(timestamp_nanos),
            worker: byte(worker.into()),
            local_queue: byte(local_queue.into()),
            cpu_nanos: cpu_nanos.map(micros).filter(|&cpu| cpu != 0),
            run_delay_nanos: None,
        },
        RecordedEvent::QueueSample {
            timestamp_nanos,
            global_queue,
        } => TraceEvent::QueueSample {
            timestamp_nanos: micros(timestamp_nanos),
            global_queue: byte(global_queue).into(),
        },
        _ => return None,
    })
}

/// Encodes `events` as one file, returning the bytes and where each
/// event's bytes end.
fn encode(
    encoder: &mut Encoder,
    file_index: u64,
    events: &[RecordedEvent],
) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    encoder.begin_file(file_index, &mut out);
    let ends = events
        .iter()
        .map(|event| {
            encoder.encode(event, &mut out);
            out.len()
        })
        .collect();
    (out, ends)
}

fn decode<'a>(bytes: &'a [u8], name: &str) -> (TraceReader<&'a [u8]>, Vec<TraceEvent>) {
    let mut reader = TraceReader::from_reader(bytes, name).expect("header and metadata");
    let mut events = Vec::new();
    while let Some(event) = reader.next_event().unwrap_or_else(|err| panic!("{err}")) {
        events.push(event);
    }
    (reader, events)
}

/// Checks v6 output against the input; returns the location id each spawn
/// site got.
fn check_v6(
    reader: &TraceReader<&[u8]>,
    input: &[RecordedEvent],
    output: &[TraceEvent],
    metadata: &TraceMetadata,
) -> Result<HashMap<usize, LocationId>, TestCaseError> {
    prop_assert_eq!(input.len(), output.len());
    let unit = metadata.time_unit_nanos.into();
    let mut ids = HashMap::new();
    for (sent, got) in input.iter().zip(output) {
        let mut got = *got;
        if let (
            RecordedEvent::PollStart { spawned_at, .. },
            TraceEvent::PollStart {
                spawned_at: location,
                ..
            },
        ) = (sent, &mut got)
        {
            let id = location.take().expect("v6 records every spawn location");
            let site = reader.location(id).expect("a defined location");
            prop_assert_eq!(&site.file, spawned_at.0.file());
            prop_assert_eq!(site.line, spawned_at.0.line());
            prop_assert_eq!(site.column, spawned_at.0.column());
            let first = *ids.entry(spawned_at.addr()).or_insert(id);
            prop_assert_eq!(first, id, "one id per spawn site");
        }
        prop_assert_eq!(got, expected_v6(sent, unit, metadata.has_run_delay));
    }
    Ok(ids)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn v6_round_trips_exactly_up_to_the_time_unit(
        events in events(200),
        metadata in metadata(),
    ) {
        let mut encoder = Encoder::new(FormatVersion::V6, metadata.clone());
        let (bytes, _) = encode(&mut encoder, 0, &events);
        let (reader, decoded) = decode(&bytes, "trace.bin");
        prop_assert_eq!(reader.version(), FormatVersion::V6);
        prop_assert_eq!(reader.metadata(), Some(&metadata));
        check_v6(&reader, &events, &decoded, &metadata)?;
    }

    #[test]
    fn v5_round_trips_saturated_microseconds(events in events(200)) {
        let mut encoder = Encoder::new(FormatVersion::V5, TraceMetadata::default());
        let (bytes, _) = encode(&mut encoder, 0, &events);
        let (reader, decoded) = decode(&bytes, "trace.bin");
        prop_assert_eq!(reader.version(), FormatVersion::V5);
        prop_assert_eq!(reader.metadata(), None);
        let expected: Vec<TraceEvent> = events.iter().filter_map(expected_v5).collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn rotated_files_decode_on_their_own(
        events in events(120),
        metadata in metadata(),
        split in any::<proptest::sample::Index>(),
    ) {
        let split = split.index(events.len() + 1);
        let mut encoder = Encoder::new(FormatVersion::V6, metadata.clone());
        let mut first = Vec::new();
        encoder.begin_file(0, &mut first);
        for event in &events[..split] {
            encoder.encode(event, &mut first);
        }
        // As a writer rotates: the event that would overflow the file is
        // encoded, then cut off and encoded again at the start of the next.
        if let Some(event) = events.get(split) {
            let len = first.len();
            encoder.encode(event, &mut first);
            first.truncate(len);
        }
        let mut second = Vec::new();
        encoder.begin_file(1, &mut second);
        for event in &events[split..] {
            encoder.encode(event, &mut second);
        }

        let (reader, decoded) = decode(&first, "trace.0.bin");
        prop_assert_eq!(reader.metadata().map(|m| m.file_index), Some(0));
        let ids_first = check_v6(&reader, &events[..split], &decoded, &metadata)?;
        let (reader, decoded) = decode(&second, "trace.1.bin");
        prop_assert_eq!(reader.metadata().map(|m| m.file_index), Some(1));
        let ids_second = check_v6(&reader, &events[split..], &decoded, &metadata)?;
        for (site, id) in &ids_second {
            if let Some(earlier) = ids_first.get(site) {
                prop_assert_eq!(earlier, id, "ids are stable across a rotated set");
            }
        }

        // Read as one set from disk.
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("trace.bin");
        std::fs::write(pulse_trace::rotated_path(&base, 0), &first).unwrap();
        std::fs::write(pulse_trace::rotated_path(&base, 1), &second).unwrap();
        let all: Vec<TraceEvent> = TraceReader::open_rotated(&base)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(all.len(), events.len());
    }

    #[test]
    fn unknown_length_prefixed_records_are_skipped(
        events in events(100),
        inserts in proptest::collection::vec(
            (
                any::<proptest::sample::Index>(),
                // Tags this version does not define (0x85 is the end of
                // the trace, 0x86 WorkerThread, 0x87/0x88 stacks, 0x89-0x8B
                // spans and marks, 0x8C schedule latency).
                0x8Du8..=0xFF,
                proptest::collection::vec(any::<u8>(), 0..300),
            ),
            0..8,
        ),
    ) {
        let metadata = TraceMetadata::default();
        let mut encoder = Encoder::new(FormatVersion::V6, metadata.clone());
        let (bytes, ends) = encode(&mut encoder, 0, &events);
        // Record boundaries: after the metadata and after each event.
        let start = {
            let mut probe = Vec::new();
            Encoder::new(FormatVersion::V6, metadata.clone()).begin_file(0, &mut probe);
            probe.len()
        };
        let mut boundaries = vec![start];
        boundaries.extend(&ends);
        let mut at: Vec<(usize, u8, Vec<u8>)> = inserts
            .into_iter()
            .map(|(index, tag, payload)| (boundaries[index.index(boundaries.len())], tag, payload))
            .collect();
        at.sort_by_key(|(position, _, _)| *position);
        let mut patched = Vec::new();
        let mut copied = 0;
        for (position, tag, payload) in at {
            patched.extend_from_slice(&bytes[copied..position]);
            copied = position;
            patched.push(tag);
            let mut len = payload.len();
            while len >= 0x80 {
                patched.push(len as u8 | 0x80);
                len >>= 7;
            }
            patched.push(len as u8);
            patched.extend_from_slice(&payload);
        }
        patched.extend_from_slice(&bytes[copied..]);

        let (_, plain) = decode(&bytes, "plain.bin");
        let (_, with_unknown) = decode(&patched, "patched.bin");
        prop_assert_eq!(plain, with_unknown);
    }
}

/// Events recorded from a real multi-thread runtime through Tokio's hooks,
/// shaped the way pulse's pipeline hands them to a writer.
mod real_runtime {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// Tokio's task id as a number. `tokio::task::Id` only exposes it
    /// through `Display` and `Hash`; hashing writes the inner `u64`, which
    /// this hasher keeps (cheaper than formatting in a poll hook).
    fn task_id_u64(id: tokio::task::Id) -> u64 {
        use std::hash::{Hash, Hasher};
        #[derive(Default)]
        struct Keep(u64);
        impl Hasher for Keep {
            fn finish(&self) -> u64 {
                self.0
            }
            fn write(&mut self, bytes: &[u8]) {
                for &b in bytes {
                    self.0 = self.0 << 8 | u64::from(b);
                }
            }
            fn write_u64(&mut self, value: u64) {
                self.0 = value;
            }
        }
        let mut hasher = Keep::default();
        id.hash(&mut hasher);
        hasher.finish()
    }

    /// This thread's cumulative CPU time and run-queue wait in ns, from
    /// `/proc/thread-self/schedstat` (zeros where unavailable).
    fn schedstat() -> (u64, u64) {
        let Ok(text) = std::fs::read_to_string("/proc/thread-self/schedstat") else {
            return (0, 0);
        };
        let mut fields = text.split_whitespace().map(|f| f.parse().unwrap_or(0));
        (fields.next().unwrap_or(0), fields.next().unwrap_or(0))
    }

    struct Recording {
        start: Instant,
        /// One buffer per worker, so the lock is uncontended.
        per_worker: Vec<Mutex<Vec<RecordedEvent>>>,
        samples: Mutex<Vec<RecordedEvent>>,
        /// The runtime's handle, until the workload ends (holding it longer
        /// would keep the runtime, and so these hooks, alive).
        handle: Mutex<Option<tokio::runtime::Handle>>,
    }

    impl Recording {
        fn now(&self) -> u64 {
            self.start.elapsed().as_nanos() as u64
        }

        fn local_queue(&self, worker: usize) -> u32 {
            thread_local! {
                static HANDLE: std::cell::OnceCell<Option<tokio::runtime::Handle>> =
                    const { std::cell::OnceCell::new() };
            }
            HANDLE.with(|handle| {
                handle
                    .get_or_init(|| self.handle.lock().unwrap().clone())
                    .as_ref()
                    .map_or(0, |handle| {
                        handle.metrics().worker_local_queue_depth(worker) as u32
                    })
            })
        }

        fn push(&self, worker: usize, event: RecordedEvent) {
            if let Some(buffer) = self.per_worker.get(worker) {
                buffer.lock().unwrap().push(event);
            }
        }
    }

    /// What the recorded runtime runs.
    #[derive(Clone, Copy, Debug)]
    pub(super) enum Workload {
        /// The worst case for pulse: `tasks` tasks that do nothing but
        /// yield, `yields` times each, plus a few tasks doing ~1 µs of work
        /// between yields and a few sleeping in 200 µs steps.
        YieldHeavy { tasks: usize, yields: usize },
        /// Something like a service: tasks computing 1–50 µs between
        /// yields, request/response over channels, and timers.
        Mixed { tasks: usize, rounds: usize },
    }

    #[inline(never)]
    fn spawn_yielders(tasks: usize, yields: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..tasks)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..yields {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect()
    }

    /// Spins for about `iterations` × 3 ns.
    fn compute(seed: u64, iterations: u64) -> u64 {
        let mut x = seed;
        for _ in 0..iterations {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        x
    }

    #[inline(never)]
    fn spawn_computers(
        tasks: usize,
        rounds: usize,
        max_iterations: u64,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..tasks)
            .map(|i| {
                tokio::spawn(async move {
                    let mut x = i as u64 + 1;
                    for _ in 0..rounds {
                        x = compute(x, 300 + x % max_iterations);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect()
    }

    #[inline(never)]
    fn spawn_sleepers(
        tasks: usize,
        rounds: usize,
        micros: u64,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..tasks)
            .map(|i| {
                tokio::spawn(async move {
                    for round in 0..rounds {
                        let jitter = (i as u64 * 7 + round as u64 * 13) % micros;
                        tokio::time::sleep(Duration::from_micros(micros + jitter)).await;
                    }
                })
            })
            .collect()
    }

    /// `pairs` clients sending `rounds` requests each to their own server
    /// task, which does a little work per request.
    #[inline(never)]
    fn spawn_request_response(pairs: usize, rounds: usize) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        for i in 0..pairs {
            let (request_tx, mut request_rx) = tokio::sync::mpsc::channel::<u64>(8);
            handles.push(tokio::spawn(async move {
                while let Some(request) = request_rx.recv().await {
                    compute(request, 1_000);
                }
            }));
            handles.push(tokio::spawn(async move {
                for round in 0..rounds {
                    if request_tx.send((i + round) as u64).await.is_err() {
                        return;
                    }
                    if round % 4 == 0 {
                        tokio::time::sleep(Duration::from_micros(50)).await;
                    }
                }
            }));
        }
        handles
    }

    /// Runs `workload` on a runtime with `workers` workers and returns its
    /// events in the order a writer sees them: per-worker chunks of up to
    /// 1024 events (the thread-local buffer size), interleaved across
    /// workers, with queue samples every 10 ms.
    pub(super) fn record(workers: usize, workload: Workload) -> Vec<RecordedEvent> {
        let recording = Arc::new(Recording {
            start: Instant::now(),
            per_worker: (0..workers).map(|_| Mutex::new(Vec::new())).collect(),
            samples: Mutex::new(Vec::new()),
            handle: Mutex::new(None),
        });
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers).enable_all();
        let r = recording.clone();
        builder.on_before_task_poll(move |meta| {
            let Some(worker) = tokio::runtime::worker_index() else {
                return;
            };
            let event = RecordedEvent::PollStart {
                timestamp_nanos: r.now(),
                worker: worker as u32,
                local_queue: r.local_queue(worker),
                task_id: Some(task_id_u64(meta.id())),
                spawned_at: SpawnLocation(meta.spawned_at()),
            };
            r.push(worker, event);
        });
        let r = recording.clone();
        builder.on_after_task_poll(move |_| {
            let Some(worker) = tokio::runtime::worker_index() else {
                return;
            };
            let event = RecordedEvent::PollEnd {
                timestamp_nanos: r.now(),
                worker: worker as u32,
                local_queue: r.local_queue(worker),
            };
            r.push(worker, event);
        });
        for park in [true, false] {
            let r = recording.clone();
            let hook = move || {
                let Some(worker) = tokio::runtime::worker_index() else {
                    return;
                };
                let (cpu_nanos, run_delay_nanos) = schedstat();
                let timestamp_nanos = r.now();
                let worker_u32 = worker as u32;
                let local_queue = r.local_queue(worker);
                let event = if park {
                    RecordedEvent::WorkerPark {
                        timestamp_nanos,
                        worker: worker_u32,
                        local_queue,
                        cpu_nanos: Some(cpu_nanos),
                        run_delay_nanos: Some(run_delay_nanos),
                    }
                } else {
                    RecordedEvent::WorkerUnpark {
                        timestamp_nanos,
                        worker: worker_u32,
                        local_queue,
                        cpu_nanos: Some(cpu_nanos),
                        run_delay_nanos: Some(run_delay_nanos),
                    }
                };
                r.push(worker, event);
            };
            if park {
                builder.on_thread_park(hook);
            } else {
                builder.on_thread_unpark(hook);
            }
        }
        let runtime = builder.build().unwrap();
        *recording.handle.lock().unwrap() = Some(runtime.handle().clone());

        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (r, done, handle) = (recording.clone(), done.clone(), runtime.handle().clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let event = RecordedEvent::QueueSample {
                        timestamp_nanos: r.now(),
                        global_queue: handle.metrics().global_queue_depth() as u64,
                    };
                    r.samples.lock().unwrap().push(event);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        runtime.block_on(async {
            let mut handles = Vec::new();
            match workload {
                Workload::YieldHeavy { tasks, yields } => {
                    handles.extend(spawn_yielders(tasks, yields));
                    handles.extend(spawn_computers(tasks / 50, yields, 1));
                    handles.extend(spawn_sleepers(tasks / 100, yields / 10, 200));
                }
                Workload::Mixed { tasks, rounds } => {
                    handles.extend(spawn_computers(tasks, rounds, 16_000));
                    handles.extend(spawn_request_response(tasks / 2, rounds));
                    handles.extend(spawn_sleepers(tasks, rounds / 4, 500));
                }
            }
            for handle in handles {
                handle.await.unwrap();
            }
        });
        recording.handle.lock().unwrap().take();
        done.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        drop(runtime);

        let mut buffers: Vec<std::vec::IntoIter<RecordedEvent>> = recording
            .per_worker
            .iter()
            .map(|buffer| std::mem::take(&mut *buffer.lock().unwrap()).into_iter())
            .collect();
        let mut samples = std::mem::take(&mut *recording.samples.lock().unwrap()).into_iter();
        let mut out = Vec::new();
        loop {
            let before = out.len();
            for buffer in &mut buffers {
                out.extend(buffer.by_ref().take(1024));
            }
            out.extend(samples.next());
            if out.len() == before {
                return out;
            }
        }
    }
}

fn encoded_len(version: FormatVersion, time_unit_nanos: u32, events: &[RecordedEvent]) -> usize {
    let metadata = TraceMetadata {
        time_unit_nanos,
        has_run_delay: true,
        ..TraceMetadata::default()
    };
    let mut encoder = Encoder::new(version, metadata);
    encode(&mut encoder, 0, events).0.len()
}

#[test]
fn real_runtime_events_round_trip() {
    use real_runtime::Workload;
    for workload in [
        Workload::YieldHeavy {
            tasks: 200,
            yields: 50,
        },
        Workload::Mixed {
            tasks: 20,
            rounds: 40,
        },
    ] {
        let events = real_runtime::record(2, workload);
        assert!(
            events.len() > 1_000,
            "{workload:?}: {} events",
            events.len()
        );
        for version in [FormatVersion::V5, FormatVersion::V6] {
            let metadata = TraceMetadata {
                has_run_delay: true,
                ..TraceMetadata::default()
            };
            let mut encoder = Encoder::new(version, metadata.clone());
            let (bytes, _) = encode(&mut encoder, 0, &events);
            let (reader, decoded) = decode(&bytes, "real.bin");
            if version == FormatVersion::V6 {
                check_v6(&reader, &events, &decoded, &metadata).unwrap();
            } else {
                let expected: Vec<_> = events.iter().filter_map(expected_v5).collect();
                assert_eq!(decoded, expected);
            }
        }
    }
}

/// The measurement behind `DEFAULT_TIME_UNIT_NANOS` and the bytes per event
/// in FORMAT.md. Run it with
///
/// ```text
/// cargo test --release -p tests --test format_roundtrip -- --ignored --nocapture measure_bytes_per_event
/// ```
#[test]
#[ignore = "a measurement: prints bytes per event; run in release with --nocapture"]
fn measure_bytes_per_event() {
    use real_runtime::Workload;
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    for workload in [
        Workload::YieldHeavy {
            tasks: 1_000,
            yields: 500,
        },
        Workload::Mixed {
            tasks: 200,
            rounds: 400,
        },
    ] {
        measure(workers, workload);
    }
}

fn measure(workers: usize, workload: real_runtime::Workload) {
    let events = real_runtime::record(workers, workload);
    let count = events.len() as f64;
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for event in &events {
        *kinds.entry(event.event_type().name()).or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort();
    println!(
        "\n{workload:?}, {workers} workers: {} events {kinds:?}",
        events.len()
    );
    let v5 = encoded_len(FormatVersion::V5, 1, &events);
    println!("  v5:                {:.2} bytes/event", v5 as f64 / count);
    for unit in [1, 8, 16, 32, 64, 100, 128, 256, 1_000] {
        let v6 = encoded_len(FormatVersion::V6, unit, &events);
        let marker = if unit == DEFAULT_TIME_UNIT_NANOS {
            "  (default)"
        } else {
            ""
        };
        println!(
            "  v6, {unit:>4} ns/tick:  {:.2} bytes/event{marker}",
            v6 as f64 / count
        );
    }

    // Where the default's bytes go, per event kind (switch, set-time and
    // location records count towards the event that needed them).
    let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
    let mut out = Vec::new();
    encoder.begin_file(0, &mut out);
    let mut per_kind: HashMap<&str, (usize, usize)> = HashMap::new();
    for event in &events {
        let before = out.len();
        encoder.encode(event, &mut out);
        let entry = per_kind.entry(event.event_type().name()).or_default();
        entry.0 += 1;
        entry.1 += out.len() - before;
    }
    let mut per_kind: Vec<_> = per_kind.into_iter().collect();
    per_kind.sort();
    for (kind, (n, bytes)) in per_kind {
        println!("    {kind:<13} {:.2} bytes/event", bytes as f64 / n as f64);
    }
    let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
    let mut encoded = Vec::with_capacity(out.len());
    let started = std::time::Instant::now();
    encoder.begin_file(0, &mut encoded);
    for event in &events {
        encoder.encode(event, &mut encoded);
    }
    let elapsed = started.elapsed();
    println!(
        "  encoding v6: {:.1} ns/event",
        elapsed.as_nanos() as f64 / count
    );
    let started = std::time::Instant::now();
    let decoded = TraceReader::from_reader(&out[..], "measure")
        .unwrap()
        .count();
    let elapsed = started.elapsed();
    println!(
        "  decoding v6: {:.1} ns/event",
        elapsed.as_nanos() as f64 / decoded as f64
    );
}
