//! The demo: reproduce, one after the other, each way tasks can wait while
//! workers look idle, record it with `#[pulse::main]`, and let pulse's
//! analysis say which is which.
//!
//! ```text
//! cargo run --release -p examples --example demo
//! ```
//!
//! A 4-worker runtime goes through four timed phases (about 5 s in all):
//!
//! - **(a) blocked worker**: a task wakes its consumer (which Tokio puts
//!   in the worker's LIFO slot) and then blocks the worker with
//!   `std::thread::sleep`; messages pile up in the channel while the other
//!   workers, with nothing they can steal, park. Expect *blocked in a
//!   poll*, naming the task and the consumer stuck behind it.
//! - **(b) OS starvation**: twice as many spinning OS threads as cores
//!   compete with the four busy workers, while the main thread keeps
//!   injecting tasks. Expect *descheduled by the OS* on every worker.
//! - **(c) long CPU-bound poll**: one task computes for 500 ms without
//!   yielding. Expect *long CPU-bound poll*.
//! - **(d) clean**: short tasks and timers. Expect nothing.
//!
//! The trace goes to `target/pulse-demo/trace.bin` (a rotating set:
//! `trace.0.bin`, ...; `PULSE_PATH` moves it). The demo then prints when
//! each phase ran and `pulse analyze`'s report, and writes the interactive
//! timeline `target/pulse-demo/trace.html` (open it in a browser).

use pulse::{Config, WriterConfig};
use pulse_cli::analysis::{
    analyze_trace, format_duration, render_text, AnalysisOptions, TraceSet, Verdict,
};
use pulse_cli::export::html::trace_to_html;
use std::error::Error;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const TRACE: &str = "target/pulse-demo/trace.bin";

fn recording() -> Config {
    Config::new()
        .writer(WriterConfig::rotating(TRACE, 64 << 20, 256 << 20))
        // Each poll's scheduling delay, so the findings say which tasks
        // they delayed (off by default: it costs up to 2x CPU on
        // yield-heavy loads, BENCHMARKS.md).
        .schedule_latency(true)
}

/// One phase's name and wall-clock bounds.
struct Phase {
    name: &'static str,
    expect: &'static str,
    start: SystemTime,
    end: SystemTime,
}

async fn phase<F: std::future::Future<Output = ()>>(
    phases: &mut Vec<Phase>,
    name: &'static str,
    expect: &'static str,
    run: F,
) {
    let start = SystemTime::now();
    run.await;
    phases.push(Phase {
        name,
        expect,
        start,
        end: SystemTime::now(),
    });
    // A quiet gap so phases do not bleed into each other in the trace.
    tokio::time::sleep(Duration::from_millis(150)).await;
}

#[pulse::main(worker_threads = 4, config = recording)]
async fn record() -> Vec<Phase> {
    let mut phases = Vec::new();
    tokio::time::sleep(Duration::from_millis(100)).await;
    phase(
        &mut phases,
        "(a) a task blocks its worker",
        "blocked in a poll",
        blocked_worker(),
    )
    .await;
    phase(
        &mut phases,
        "(b) more busy OS threads than cores",
        "descheduled by the OS",
        os_starvation(),
    )
    .await;
    phase(
        &mut phases,
        "(c) one long CPU-bound poll",
        "long CPU-bound poll",
        long_cpu_poll(),
    )
    .await;
    phase(&mut phases, "(d) clean", "nothing", clean()).await;
    phases
}

/// (a): the producer wakes the consumer, then blocks. The consumer sits
/// in the blocked worker's LIFO slot, which other workers cannot steal.
async fn blocked_worker() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let consumer = tokio::spawn(async move {
        let mut sum = 0;
        while let Some(n) = rx.recv().await {
            sum += n;
        }
        sum
    });
    // Let the consumer reach its first `recv` and wait there.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let producer = tokio::spawn(async move {
        for request in 0..100 {
            let _ = tx.send(request);
            if request == 0 {
                // A blocking call in async code: the bug this phase shows.
                std::thread::sleep(Duration::from_millis(600));
            }
        }
    });
    producer.await.expect("producer panicked");
    consumer.await.expect("consumer panicked");
}

/// (b): spinning OS threads (twice the cores) and four busy workers.
async fn os_starvation() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..cores * 2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let workers: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    spin_for(Duration::from_micros(200));
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    // Requests keep arriving from outside the workers (the global queue).
    let handle = tokio::runtime::Handle::current();
    while Instant::now() < deadline {
        handle.spawn(async { spin_for(Duration::from_micros(50)) });
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for worker in workers {
        worker.await.expect("busy task panicked");
    }
    stop.store(true, Ordering::Relaxed);
    for hog in hogs {
        hog.join().expect("hog thread panicked");
    }
}

/// (c): half a second of computation in one poll.
async fn long_cpu_poll() {
    tokio::spawn(async { spin_for(Duration::from_millis(500)) })
        .await
        .expect("computation panicked");
}

/// (d): what a healthy service looks like: short polls, timers.
async fn clean() {
    let deadline = Instant::now() + Duration::from_millis(1000);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    spin_for(Duration::from_micros(20));
                    tokio::time::sleep(Duration::from_millis(1 + i % 5)).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("clean task panicked");
    }
}

/// Keeps the CPU busy for `duration`.
fn spin_for(duration: Duration) {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < duration {
        for _ in 0..100 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    black_box(x);
}

fn main() -> Result<(), Box<dyn Error>> {
    // `PULSE_*` variables apply on top of `recording()`, as the attribute
    // applies them: find out where the trace really goes.
    let config = recording().apply_env()?;
    let Some(path) = config.writer.path().map(PathBuf::from) else {
        return Err("PULSE_WRITER=null: the demo needs a trace file to analyze".into());
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    if !config.enabled {
        return Err("PULSE=off: the demo needs a recording to analyze".into());
    }

    let started = Instant::now();
    let phases = record();
    let recorded = started.elapsed();

    let analysis = analyze_trace(&path, &AnalysisOptions::default())?;
    let start_unix = analysis.trace.start_unix_ns.unwrap_or(0);
    let since_start = |t: SystemTime| {
        let unix = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        unix.saturating_sub(start_unix)
    };

    let files = TraceSet::open(&path)?.files().to_vec();
    println!(
        "pulse demo: recorded {} into {} (a rotating set of {} file{} named after {}; give that path to pulse)\n",
        format_duration(recorded.as_nanos() as u64),
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        path.display()
    );
    println!("The phases (times since the trace started) and what pulse should say:");
    for phase in &phases {
        let (from, to) = (since_start(phase.start), since_start(phase.end));
        let found: Vec<&str> = Verdict::ALL
            .iter()
            .filter(|&&v| analysis.findings_with(v).any(|f| f.overlaps(from, to)))
            .map(|v| v.label())
            .collect();
        println!(
            "  {:<38} {:>9} .. {:>9}   expected: {:<22} found: {}",
            phase.name,
            format_duration(from),
            format_duration(to),
            phase.expect,
            if found.is_empty() {
                "nothing".to_owned()
            } else {
                found.join(", ")
            }
        );
    }
    println!(
        "\n`pulse analyze`'s report, listing the 5 longest findings per verdict \
         (`cargo pulse analyze --all {}` lists them all):",
        path.display()
    );
    println!("{}", "-".repeat(100));
    print!("{}", render_text(&analysis, 5));
    println!("{}", "-".repeat(100));
    // The interactive timeline: one self-contained page, no network needed.
    let html = path.with_extension("html");
    let out = std::io::BufWriter::new(std::fs::File::create(&html)?);
    let set = TraceSet::open(&path)?;
    trace_to_html(
        &set,
        &AnalysisOptions::default(),
        out,
        &html.display().to_string(),
        |_, _| {},
    )?;
    println!("Timeline: open {} in a web browser.", html.display());
    println!(
        "For Perfetto: cargo pulse chrome {} (writes {}), then open it in https://ui.perfetto.dev",
        path.display(),
        path.with_extension("chrome.json").display()
    );
    Ok(())
}
