//! Production-style recording: a rotating set of trace files with a bounded
//! total size, controlled at run time through the recording's handle.
//!
//! ```text
//! cargo run --release -p examples --example rotating -- [SECONDS] [DIR]
//! ```
//!
//! A small "service" runs for SECONDS (default 3) on four workers: requests
//! arrive every 200 µs from outside the runtime, each handler does a little
//! work, awaits a timer, does a little more. It is recorded into
//! `DIR/service.0.bin`, `DIR/service.1.bin`, ... (default DIR:
//! `target/pulse-rotating`), at most 64 KiB per file and 256 KiB in all:
//! the oldest files are deleted as new ones are written, as a long-running
//! service would want.
//!
//! Halfway through, recording is paused for a quarter of the run with
//! `RecordingHandle::disable` and resumed with `enable` — e.g. to record
//! only around an incident. At the end the example lists the files, checks
//! the set stays within its limit, and reads what is left back in order.

use pulse::{Config, EventType, Recorder, WriterConfig};
use pulse_trace::{rotated_files, TraceReader};
use std::error::Error;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const MAX_FILE: u64 = 64 << 10;
const MAX_TOTAL: u64 = 256 << 10;

fn work(iterations: u64) -> u64 {
    (0..iterations).fold(0u64, |acc, i| {
        black_box(acc.wrapping_mul(31).wrapping_add(i))
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map_or(Ok(3.0), |s| s.parse())?;
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/pulse-rotating".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let base = dir.join("service.bin");
    for old in rotated_files(&base)? {
        std::fs::remove_file(old)?;
    }

    let config = Config::new()
        .flush_ms(100)
        .writer(WriterConfig::rotating(&base, MAX_FILE, MAX_TOTAL));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(4).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, &config)?;
    let handle = guard.handle();

    let run = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut requests = 0u64;
    let mut paused = false;
    while started.elapsed() < run {
        // Requests come from outside the runtime, like an acceptor thread.
        runtime.spawn(async {
            black_box(work(2_000));
            tokio::time::sleep(Duration::from_micros(300)).await;
            black_box(work(1_000));
        });
        requests += 1;
        let progress = started.elapsed().as_secs_f64() / run.as_secs_f64();
        if !paused && (0.5..0.75).contains(&progress) {
            handle.disable();
            paused = true;
        } else if paused && progress >= 0.75 {
            handle.enable();
            paused = false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    handle.flush();
    drop(runtime);
    let summary = guard.finish()?;

    let files = rotated_files(&base)?;
    let mut total = 0;
    println!(
        "{requests} requests in {:.1} s; {} events written, {} dropped",
        started.elapsed().as_secs_f64(),
        summary.events_written,
        summary.dropped_events
    );
    println!("files left (at most {MAX_FILE} bytes each, {MAX_TOTAL} in all):");
    for file in &files {
        let len = std::fs::metadata(file)?.len();
        total += len;
        println!("  {} {len:>8} bytes", file.display());
    }
    assert!(total <= MAX_TOTAL, "the set outgrew its limit");

    let mut polls = 0u64;
    let mut first = None;
    let mut last = 0;
    let mut reader = TraceReader::open_rotated(&base)?;
    while let Some(event) = reader.next_event()? {
        if event.event_type() == EventType::PollStart {
            polls += 1;
        }
        first.get_or_insert(event.timestamp_nanos());
        last = last.max(event.timestamp_nanos());
    }
    let rotated_away = files
        .first()
        .is_some_and(|f| f != &pulse_trace::rotated_path(&base, 0));
    println!(
        "{total} bytes hold {polls} polls from {:.2} s to {:.2} s of the run{}",
        first.unwrap_or(0) as f64 / 1e9,
        last as f64 / 1e9,
        if rotated_away {
            " (the oldest files were deleted to stay within the limit)"
        } else {
            ""
        }
    );
    println!("analyze them with: cargo pulse analyze {}", base.display());
    Ok(())
}
