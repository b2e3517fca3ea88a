//! The busy program `scripts/soak.sh` traces for a long run (see
//! RELIABILITY.md, "Long runs"). Not part of the default test run.
//!
//! ```text
//! reliability_soak run <base> <seconds> <max_file_size> <max_total_size>
//! reliability_soak verify <base>
//! ```
//!
//! `run` traces a mixed workload (yielding tasks, CPU-bound polls, channel
//! ping-pong, sleepers, `spawn_blocking`) on a 2-worker runtime into a
//! rotating set at `base`, then prints one `summary` line: the work done
//! (so a run can be checked against the same run untraced), events written
//! and dropped. `verify` reads every file of the set on its own and prints
//! one `file` line per file and a `total` line; it exits non-zero if any
//! file fails to read.

use pulse::{Config, Recorder, WriterConfig};
use pulse_trace::{rotated_files, TraceReader};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["run", base, seconds, max_file, max_total] => {
            let parse = |s: &str| s.parse::<u64>().expect("a whole number");
            run(
                Path::new(base),
                Duration::from_secs(parse(seconds)),
                parse(max_file),
                parse(max_total),
            )
        }
        ["verify", base] => verify(Path::new(base)),
        _ => {
            eprintln!(
                "usage: reliability_soak run <base> <seconds> <max_file_size> <max_total_size>\n       \
                 reliability_soak verify <base>"
            );
            ExitCode::from(2)
        }
    }
}

fn run(base: &Path, length: Duration, max_file: u64, max_total: u64) -> ExitCode {
    let config = Config::new()
        .flush_ms(100)
        .writer(WriterConfig::rotating(base, max_file, max_total));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, &config).expect("start tracing");
    let stop = Arc::new(AtomicBool::new(false));
    let work = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        // Yield-heavy tasks with ~1 µs of work per poll: the event rate.
        for i in 0..64u64 {
            let (stop, work) = (stop.clone(), work.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = i;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..400 {
                        n = std::hint::black_box(
                            n.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                    work.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
                n
            }));
        }
        // CPU-bound polls of ~50 µs.
        for _ in 0..4 {
            let (stop, work) = (stop.clone(), work.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let until = Instant::now() + Duration::from_micros(50);
                    while Instant::now() < until {
                        n = n.wrapping_add(1);
                    }
                    work.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
                n
            }));
        }
        // Request/response pairs: cross-task wake-ups.
        for _ in 0..16 {
            let (stop, work) = (stop.clone(), work.clone());
            let (to_server, mut server_rx) = tokio::sync::mpsc::channel::<u64>(1);
            let (to_client, mut client_rx) = tokio::sync::mpsc::channel::<u64>(1);
            tokio::spawn(async move {
                while let Some(n) = server_rx.recv().await {
                    if to_client.send(n + 1).await.is_err() {
                        break;
                    }
                }
            });
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    to_server.send(n).await.expect("server alive");
                    n = client_rx.recv().await.expect("server replies");
                    work.fetch_add(1, Ordering::Relaxed);
                }
                n
            }));
        }
        // Sleepers (workers park and unpark) and blocking work.
        for i in 0..32u64 {
            let (stop, work) = (stop.clone(), work.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_micros(500 + 100 * i)).await;
                    if i % 8 == 0 {
                        n += tokio::task::spawn_blocking(|| 1)
                            .await
                            .expect("blocking task");
                    }
                    work.fetch_add(1, Ordering::Relaxed);
                }
                n
            }));
        }
        tokio::time::sleep(length).await;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.expect("task");
        }
    });
    drop(runtime);
    let summary = guard.finish().expect("the trace was written");
    println!(
        "summary seconds={:.1} work={} events_written={} dropped={}",
        started.elapsed().as_secs_f64(),
        work.load(Ordering::Relaxed),
        summary.events_written,
        summary.dropped_events
    );
    ExitCode::SUCCESS
}

fn verify(base: &Path) -> ExitCode {
    let files = rotated_files(base).expect("list the set");
    let (mut events, mut bytes, mut bad) = (0u64, 0u64, 0);
    for file in &files {
        let len = std::fs::metadata(file).map_or(0, |m| m.len());
        let count = TraceReader::open(file)
            .and_then(|mut reader| reader.try_fold(0u64, |count, event| event.map(|_| count + 1)));
        match count {
            Ok(count) => {
                println!("file {} bytes={len} events={count}", file.display());
                events += count;
                bytes += len;
            }
            Err(err) => {
                println!("file {} bytes={len} error: {err}", file.display());
                bad += 1;
            }
        }
    }
    println!(
        "total files={} bytes={bytes} events={events} unreadable={bad}",
        files.len()
    );
    if bad == 0 && !files.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
