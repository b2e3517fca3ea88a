//! Basic usage: trace a small workload with `Recorder`, then read the
//! trace back and summarise it.
//!
//! ```text
//! cargo run --release -p examples --example record_by_hand [-- TRACE_PATH]
//! ```
//!
//! The workload runs for about a second on four workers: a burst of short
//! tasks that yield, tasks that sleep (so workers park and unpark), and one
//! task that blocks its worker with `std::thread::sleep`. The trace goes to a
//! rotating set at `TRACE_PATH` (default `target/pulse-demo/trace.bin`).

use pulse::{EventType, Recorder, RotatingWriter};
use pulse_trace::{rotated_files, TraceReader};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/pulse-demo/trace.bin"));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(4).enable_all();
    let writer = RotatingWriter::new(&path, 8 << 20, 64 << 20)?;
    let (runtime, guard) = Recorder::build(builder, Box::new(writer))?;

    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..200u64 {
            tasks.push(tokio::spawn(async move {
                for _ in 0..100 {
                    tokio::task::yield_now().await;
                }
                tokio::time::sleep(Duration::from_millis(i % 50)).await;
            }));
        }
        // One task blocks its worker: the others must pick up its queue.
        tasks.push(tokio::spawn(async {
            std::thread::sleep(Duration::from_millis(200));
        }));
        for task in tasks {
            task.await.expect("demo task panicked");
        }
    });
    let elapsed = started.elapsed();
    drop(runtime);
    let summary = guard.finish()?;

    let files = rotated_files(&path)?;
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()))
        .sum::<Result<_, _>>()?;
    let mut by_type: BTreeMap<EventType, u64> = BTreeMap::new();
    let mut polls_by_worker: BTreeMap<u32, u64> = BTreeMap::new();
    let mut events = 0u64;
    for event in TraceReader::open_files(files.clone())? {
        let event = event?;
        events += 1;
        *by_type.entry(event.event_type()).or_default() += 1;
        if event.event_type() == EventType::PollStart {
            *polls_by_worker
                .entry(event.worker().unwrap_or(0))
                .or_default() += 1;
        }
    }

    println!("traced {elapsed:.2?} of work into {} file(s):", files.len());
    for file in &files {
        println!("  {}", file.display());
    }
    println!(
        "{events} events, {bytes} bytes ({:.2} bytes/event), {} dropped",
        bytes as f64 / events.max(1) as f64,
        summary.dropped_events
    );
    for (ty, count) in &by_type {
        println!("  {ty:<14} {count:>9}");
    }
    println!("polls per worker:");
    for (worker, polls) in &polls_by_worker {
        println!("  worker {worker}: {polls}");
    }
    Ok(())
}
