//! Writes a large synthetic trace with pulse's own encoder, to measure the
//! tools on traces bigger than a test can record (e.g. the Parquet
//! export's memory and bytes per poll in BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p examples --example synth_trace -- OUT.bin EVENTS [WORKERS]
//! ```
//!
//! Each worker alternates active periods (an unpark, 1 to 64 polls of
//! 2 to 60 µs, one in 5 000 of them a 15 ms blocking poll, then a park)
//! with parks of 20 µs to 1 ms; a sampler reads every worker's CPU time
//! and the global queue every 10 ms. Tasks come from 12 spawn sites. The
//! sequence is fixed (a seeded generator), so every run writes the same
//! bytes.

use pulse_trace::{Encoder, FormatVersion, RecordedEvent, SpawnLocation, TraceMetadata};
use std::error::Error;
use std::io::{BufWriter, Write};
use std::panic::Location;

const SAMPLE_NS: u64 = 10_000_000;

/// A small fixed-sequence generator (SplitMix64): no dependency, same trace
/// every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

#[derive(Clone, Copy)]
struct Worker {
    now: u64,
    cpu: u64,
    run_delay: u64,
    parked: bool,
    polls_left: u64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: synth_trace OUT.bin EVENTS [WORKERS]";
    let out = args.next().ok_or(usage)?;
    let target: u64 = args.next().ok_or(usage)?.parse()?;
    let workers: u32 = args.next().map_or(Ok(4), |w| w.parse())?;
    let sites: Vec<SpawnLocation> = vec![
        SpawnLocation(Location::caller()),
        SpawnLocation(Location::caller()),
        SpawnLocation(Location::caller()),
        SpawnLocation(Location::caller()),
        SpawnLocation(Location::caller()),
        SpawnLocation(Location::caller()),
        SpawnLocation(Location::caller()),
        SpawnLocation(Location::caller()),
        SpawnLocation(Location::caller()),
        SpawnLocation(Location::caller()),
        SpawnLocation(Location::caller()),
        SpawnLocation(Location::caller()),
    ];
    let metadata = TraceMetadata {
        worker_count: workers,
        start_unix_nanos: 1_763_928_085_000_000_000,
        has_run_delay: true,
        config: vec![
            ("sample_ms".into(), "10".into()),
            ("flush_ms".into(), "100".into()),
        ],
        ..TraceMetadata::default()
    };
    let mut encoder = Encoder::new(FormatVersion::V6, metadata);
    let mut file = BufWriter::new(std::fs::File::create(&out)?);
    let mut bytes = Vec::with_capacity(1 << 20);
    encoder.begin_file(0, &mut bytes);
    let mut rng = Rng(17);
    let mut state = vec![
        Worker {
            now: 0,
            cpu: 0,
            run_delay: 0,
            parked: true,
            polls_left: 0,
        };
        workers as usize
    ];
    let mut next_sample = SAMPLE_NS;
    let mut events = 0u64;
    let mut task = 1u64;
    while events < target {
        // Advance the worker furthest behind, so the sampler's readings
        // interleave with the workers' events as in a recorded trace.
        let (index, worker) = state
            .iter_mut()
            .enumerate()
            .min_by_key(|(_, w)| w.now)
            .ok_or("no workers")?;
        if worker.now >= next_sample {
            encoder.encode(
                &RecordedEvent::QueueSample {
                    timestamp_nanos: next_sample,
                    global_queue: rng.range(0, 3),
                },
                &mut bytes,
            );
            events += 1;
            for (i, w) in state.iter().enumerate() {
                encoder.encode(
                    &RecordedEvent::WorkerSample {
                        timestamp_nanos: next_sample,
                        worker: i as u32,
                        cpu_nanos: w.cpu,
                        run_delay_nanos: Some(w.run_delay),
                    },
                    &mut bytes,
                );
                events += 1;
            }
            next_sample += SAMPLE_NS;
            continue;
        }
        let id = index as u32;
        let local_queue = rng.range(0, 4) as u32;
        if worker.parked {
            worker.now += rng.range(20_000, 1_000_000);
            let wait = rng.range(0, 5_000);
            worker.run_delay += wait;
            worker.now += wait;
            encoder.encode(
                &RecordedEvent::WorkerUnpark {
                    timestamp_nanos: worker.now,
                    worker: id,
                    local_queue,
                    cpu_nanos: Some(worker.cpu),
                    run_delay_nanos: Some(worker.run_delay),
                },
                &mut bytes,
            );
            worker.parked = false;
            worker.polls_left = rng.range(1, 65);
            events += 1;
        } else if worker.polls_left == 0 {
            encoder.encode(
                &RecordedEvent::WorkerPark {
                    timestamp_nanos: worker.now,
                    worker: id,
                    local_queue: 0,
                    cpu_nanos: Some(worker.cpu),
                    run_delay_nanos: Some(worker.run_delay),
                },
                &mut bytes,
            );
            worker.parked = true;
            events += 1;
        } else {
            worker.polls_left -= 1;
            let blocking = rng.range(0, 5_000) == 0;
            let length = if blocking {
                15_000_000
            } else {
                rng.range(2_000, 60_000)
            };
            let site = sites[(task % sites.len() as u64) as usize];
            encoder.encode(
                &RecordedEvent::PollStart {
                    timestamp_nanos: worker.now,
                    worker: id,
                    local_queue,
                    task_id: Some(task),
                    spawned_at: site,
                },
                &mut bytes,
            );
            task += 1;
            worker.now += length;
            // A blocking poll is off the CPU; a short one is on it.
            worker.cpu += if blocking { length / 100 } else { length };
            encoder.encode(
                &RecordedEvent::PollEnd {
                    timestamp_nanos: worker.now,
                    worker: id,
                    local_queue,
                },
                &mut bytes,
            );
            events += 2;
        }
        if bytes.len() >= 1 << 20 {
            file.write_all(&bytes)?;
            bytes.clear();
        }
    }
    file.write_all(&bytes)?;
    file.flush()?;
    println!("wrote {out}: {events} events");
    Ok(())
}
