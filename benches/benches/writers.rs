//! What the flusher pays per event to hand batches to each writer: the
//! in-memory flight recorder (`MemoryWriter`, default 64 MiB / 30 s
//! window) against the trace file (`SimpleBinaryWriter`) and the
//! `NullWriter` (no encoding). One iteration is one 1024-event batch of
//! realistic events (polls of two workers with spawn locations, a park and
//! unpark every 64 events), timestamps advancing 300 ns per event, as
//! `write_batch` receives them from the collector.
//!
//! Run: `cargo bench -p benches --bench writers`; smoke run:
//! `PULSE_BENCH_QUICK=1 cargo bench -p benches --bench writers`.

use pulse::{
    MemoryWriter, NullWriter, RecordedEvent, SimpleBinaryWriter, SpawnLocation, TraceWriter,
};
use std::panic::Location;
use std::sync::Mutex;

const BATCH: usize = 1024;

/// A writer and the clock of the events it is given.
struct Target {
    writer: Box<dyn TraceWriter>,
    now: u64,
    batch: Vec<RecordedEvent>,
    locations: [SpawnLocation; 4],
    _dir: Option<std::path::PathBuf>,
}

#[track_caller]
fn here() -> SpawnLocation {
    SpawnLocation(Location::caller())
}

fn target(writer: Box<dyn TraceWriter>, dir: Option<std::path::PathBuf>) -> Mutex<Target> {
    Mutex::new(Target {
        writer,
        now: 0,
        batch: Vec::with_capacity(BATCH),
        locations: [here(), here(), here(), here()],
        _dir: dir,
    })
}

fn memory() -> Mutex<Target> {
    let writer = MemoryWriter::new(pulse::config::DEFAULT_MEMORY_SIZE, 30).expect("memory writer");
    target(Box::new(writer), None)
}

fn file() -> Mutex<Target> {
    let path = std::env::temp_dir().join(format!("pulse-bench-writers-{}.bin", std::process::id()));
    let writer = SimpleBinaryWriter::new(&path).expect("trace file");
    target(Box::new(writer), Some(path))
}

fn null() -> Mutex<Target> {
    target(Box::new(NullWriter::new()), None)
}

fn remove(target: Mutex<Target>) {
    let target = target.into_inner().expect("not poisoned");
    if let Some(path) = &target._dir {
        let _ = std::fs::remove_file(path);
    }
}

/// One batch of events, then `write_batch`.
fn write(target: &Mutex<Target>) {
    let mut guard = target.lock().expect("not poisoned");
    let t = &mut *guard;
    t.batch.clear();
    for i in 0..BATCH {
        t.now += 300;
        let worker = (i / 32 % 2) as u32;
        let event = match i % 64 {
            62 => RecordedEvent::WorkerPark {
                timestamp_nanos: t.now,
                worker,
                local_queue: 0,
                cpu_nanos: Some(t.now / 2),
                run_delay_nanos: Some(t.now / 50),
            },
            63 => RecordedEvent::WorkerUnpark {
                timestamp_nanos: t.now,
                worker,
                local_queue: 1,
                cpu_nanos: Some(t.now / 2),
                run_delay_nanos: Some(t.now / 50),
            },
            n if n % 2 == 0 => RecordedEvent::PollStart {
                timestamp_nanos: t.now,
                worker,
                local_queue: (n % 5) as u32,
                task_id: Some((n / 2) as u64 + 1),
                spawned_at: t.locations[n % 4],
            },
            n => RecordedEvent::PollEnd {
                timestamp_nanos: t.now,
                worker,
                local_queue: (n % 5) as u32,
            },
        };
        t.batch.push(event);
    }
    let batch = std::mem::take(&mut t.batch);
    t.writer.write_batch(&batch).expect("write");
    t.batch = batch;
}

#[pulse::bench(setup = memory, teardown = remove, group = "writers", elements = 1024)]
fn memory_writer(target: &Mutex<Target>) {
    write(target);
}

#[pulse::bench(setup = file, teardown = remove, group = "writers", elements = 1024)]
fn file_writer(target: &Mutex<Target>) {
    write(target);
}

#[pulse::bench(setup = null, teardown = remove, group = "writers", elements = 1024)]
fn null_writer(target: &Mutex<Target>) {
    write(target);
}

pulse::bench_main!(null_writer, file_writer, memory_writer);
