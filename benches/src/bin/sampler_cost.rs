//! What pulse's own thread costs while the application does nothing, and
//! how much of it is the machine's price of a timed wake-up (issue 11:
//! BENCHMARKS.md, "Eleventh pass").
//!
//! pulse's flusher thread wakes every `sample_ms` (default 10) to sample
//! the workers and every `flush_ms` (default 250) to flush. Each round
//! runs, for `SECONDS` each, in an order that turns every round:
//!
//! - a traced 2-worker runtime with nothing to run, for each `sample_ms`
//!   in 10, 50 and 1000 (`flush_ms` 250): the CPU time of pulse's threads
//!   (`pulse-*`, from their `schedstat`) per second, and per wake-up;
//! - a bare thread that waits on a condition variable with a timeout of
//!   1, 2, 4 and 10 ms in a loop and does nothing else: the CPU time one
//!   timed wake-up costs this machine, whatever the thread does after it.
//!   On a virtual machine it grows with how long the CPU stayed idle
//!   (BENCHMARKS.md, "Twelfth pass"), so it is measured at several waits.
//!
//! Usage: `sampler_cost [ROUNDS] [SECONDS]` (default 5 rounds of 2 s);
//! prints each round, then the medians. `PULSE_*` variables configure the
//! traced runs (e.g. `PULSE_STACKS=off`), but for `sample_ms`, `flush_ms`
//! and the writer.

use benches::{median, schedstat_cpu, threads_cpu};
use pulse::{Config, Recorder, WriterConfig};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// CPU nanoseconds a second of pulse's threads beside an idle traced
/// runtime sampling every `sample_ms`, measured over `seconds` after the
/// recording's start-up.
fn idle_traced(sample_ms: u64, seconds: f64, dir: &std::path::Path) -> f64 {
    let config = Config::new()
        .apply_env()
        .expect("valid PULSE_* variables")
        .sample_ms(sample_ms)
        .flush_ms(250)
        .quiet(true)
        .writer(WriterConfig::file(
            dir.join(format!("idle-{sample_ms}.bin")),
        ));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, &config).expect("traced runtime");
    // The workers start, run nothing and park.
    runtime.block_on(async { tokio::task::yield_now().await });
    std::thread::sleep(Duration::from_millis(200));
    let (cpu, start) = (threads_cpu("pulse"), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let per_second =
        threads_cpu("pulse").saturating_sub(cpu).as_nanos() as f64 / start.elapsed().as_secs_f64();
    drop(runtime);
    drop(guard);
    per_second
}

/// CPU nanoseconds one timed wake-up costs a thread that does nothing
/// else: a condition variable's `wait_ms` wait, `seconds` of them.
fn bare_wake(wait_ms: u64, seconds: f64) -> f64 {
    std::thread::spawn(move || {
        let (lock, wake) = (Mutex::new(()), Condvar::new());
        let path = std::path::Path::new("/proc/thread-self/schedstat");
        let (cpu, start) = (schedstat_cpu(path), Instant::now());
        let mut wakes = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            drop(wake.wait_timeout(guard, Duration::from_millis(wait_ms)));
            wakes += 1;
        }
        schedstat_cpu(path).saturating_sub(cpu).as_nanos() as f64 / wakes.max(1) as f64
    })
    .join()
    .expect("the waking thread runs")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .map_or(5, |r| r.parse().expect("ROUNDS: a number"));
    let seconds: f64 = args
        .next()
        .map_or(2.0, |s| s.parse().expect("SECONDS: a number"));
    let dir = std::env::temp_dir().join(format!("pulse-sampler-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    const SAMPLE_MS: [u64; 3] = [10, 50, 1000];
    const WAIT_MS: [u64; 4] = [1, 2, 4, 10];
    let runs = SAMPLE_MS.len() + WAIT_MS.len();
    let mut traced: Vec<Vec<f64>> = vec![Vec::new(); SAMPLE_MS.len()];
    let mut bare: Vec<Vec<f64>> = vec![Vec::new(); WAIT_MS.len()];
    for round in 0..rounds {
        // Seven runs a round, the first moving one place each round.
        let mut line = format!("round {round}:");
        for step in 0..runs {
            let which = (step + round) % runs;
            if let Some(bare_index) = which.checked_sub(SAMPLE_MS.len()) {
                let wait_ms = WAIT_MS[bare_index];
                let nanos = bare_wake(wait_ms, seconds);
                line += &format!(" bare {wait_ms} ms wake {:.1} µs;", nanos / 1e3);
                bare[bare_index].push(nanos);
            } else {
                let sample_ms = SAMPLE_MS[which];
                let per_second = idle_traced(sample_ms, seconds, &dir);
                line += &format!(" sample_ms={sample_ms} {:.2} ms/s;", per_second / 1e6);
                traced[which].push(per_second);
            }
        }
        println!("{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("median of {rounds} rounds:");
    for (wait_ms, values) in WAIT_MS.iter().zip(&mut bare) {
        println!(
            "  a bare timed wake-up after {wait_ms} ms costs {:.1} µs of CPU",
            median(values) / 1e3
        );
    }
    for (sample_ms, values) in SAMPLE_MS.iter().zip(&mut traced) {
        let per_second = median(values);
        // Distinct deadlines a second: the sample ticks and the flush
        // ticks (every 250 ms), counted once where they coincide.
        let wakes = (0..1000u64)
            .filter(|ms| ms % sample_ms == 0 || ms % 250 == 0)
            .count() as f64;
        println!(
            "  idle traced runtime, sample_ms={sample_ms}: pulse's threads {:.2} ms of CPU a second \
             ({:.3} % of a core), ~{wakes:.0} wake-ups a second: {:.1} µs each",
            per_second / 1e6,
            per_second / 1e7,
            per_second / wakes / 1e3
        );
    }
}
