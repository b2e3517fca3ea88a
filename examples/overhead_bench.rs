//! Overhead measurement: the same workloads on a plain Tokio runtime and on
//! runtimes recorded by pulse, timed, with the overhead in percent.
//!
//! ```text
//! cargo run --release -p examples --example overhead_bench -- [REPETITIONS]
//! ```
//!
//! Two workloads, each run REPETITIONS times (default 7) per mode, modes
//! interleaved so machine noise hits them alike; the median wall time is
//! reported:
//!
//! - **yield** — the worst case: 64 tasks that do nothing but
//!   `yield_now()`, so the runtime does almost nothing but poll, and every
//!   poll is two recorded events;
//! - **service** — closer to real code: 64 tasks that each do ~20 µs of
//!   work between awaits, with a timer every tenth step.
//!
//! Modes: `plain` (no hooks), `null` (pulse records, the writer discards:
//! the recording cost alone), `file` (pulse writes a v6 trace to a
//! temporary directory). This is a quick whole-program check; the
//! criterion benchmarks in `benches/` measure the hot path in isolation
//! (see BENCHMARKS.md).

use pulse::{Config, Recorder, WriterConfig};
use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tokio::runtime::{Builder, Runtime};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Plain,
    Null,
    File,
}

const MODES: [Mode; 3] = [Mode::Plain, Mode::Null, Mode::File];

fn builder() -> Builder {
    let mut builder = Builder::new_multi_thread();
    builder.enable_all();
    builder
}

async fn yield_workload() {
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..5_000 {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task panicked");
    }
}

fn spin(iterations: u64) -> u64 {
    (0..iterations).fold(1u64, |acc, i| {
        black_box(acc.wrapping_mul(6364136223846793005) ^ i)
    })
}

async fn service_workload() {
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            tokio::spawn(async {
                for step in 0..200 {
                    black_box(spin(8_000));
                    if step % 10 == 0 {
                        tokio::time::sleep(Duration::from_micros(100)).await;
                    } else {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task panicked");
    }
}

/// What one run measured: its wall time and, when pulse wrote a file,
/// (events, bytes).
type Measured = (Duration, Option<(u64, u64)>);

/// Runs `workload` once in `mode`.
fn run<F: std::future::Future<Output = ()>>(
    mode: Mode,
    dir: &std::path::Path,
    workload: fn() -> F,
) -> Result<Measured, Box<dyn Error>> {
    let path = dir.join("bench.bin");
    let (runtime, guard): (Runtime, _) = match mode {
        Mode::Plain => (builder().build()?, None),
        Mode::Null | Mode::File => {
            let writer = if mode == Mode::Null {
                WriterConfig::Null
            } else {
                WriterConfig::file(&path)
            };
            let config = Config::new().writer(writer);
            let (runtime, guard) = Recorder::from_config(builder(), &config)?;
            (runtime, Some(guard))
        }
    };
    let started = Instant::now();
    runtime.block_on(workload());
    let elapsed = started.elapsed();
    drop(runtime);
    let written = match guard {
        Some(guard) => {
            let summary = guard.finish()?;
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            (mode == Mode::File).then_some((summary.events_written, bytes))
        }
        None => None,
    };
    Ok((elapsed, written))
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn bench<F: std::future::Future<Output = ()>>(
    name: &str,
    repetitions: usize,
    workload: fn() -> F,
) -> Result<(), Box<dyn Error>> {
    let dir = tempfile_dir()?;
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); MODES.len()];
    let mut written = None;
    for _ in 0..repetitions {
        for (i, mode) in MODES.iter().enumerate() {
            let (elapsed, file) = run(*mode, &dir, workload)?;
            times[i].push(elapsed);
            written = written.or(file);
        }
    }
    let medians: Vec<Duration> = times.into_iter().map(median).collect();
    let plain = medians[0].as_secs_f64();
    println!("{name}:");
    for (mode, time) in MODES.iter().zip(&medians) {
        let overhead = (time.as_secs_f64() / plain - 1.0) * 100.0;
        println!(
            "  {:<6} {:>9.2} ms  {overhead:>+7.1} %",
            format!("{mode:?}").to_lowercase(),
            time.as_secs_f64() * 1e3
        );
    }
    if let Some((events, bytes)) = written {
        println!(
            "  file: {events} events, {:.1} M events/s, {:.2} bytes/event",
            events as f64 / medians[2].as_secs_f64() / 1e6,
            bytes as f64 / events.max(1) as f64
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("pulse-overhead-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn main() -> Result<(), Box<dyn Error>> {
    let repetitions: usize = std::env::args().nth(1).map_or(Ok(7), |s| s.parse())?;
    println!(
        "median of {repetitions} runs per mode, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    bench(
        "yield (worst case: polls only)",
        repetitions,
        yield_workload,
    )?;
    bench(
        "service (~20 µs of work per poll)",
        repetitions,
        service_workload,
    )?;
    Ok(())
}
