//! Shared helpers for the pulse benchmarks: the statistical settings every
//! bench binary uses, a quick mode for smoke runs, and runtime builders.

use criterion::Criterion;
use std::time::Duration;

/// Set this environment variable (to anything but `0`) for a smoke run:
/// short warm-up and measurement, few samples. Figures from a quick run are
/// not for publishing.
pub const QUICK_ENV: &str = "PULSE_BENCH_QUICK";

/// Whether [`QUICK_ENV`] asks for a smoke run.
pub fn quick() -> bool {
    std::env::var_os(QUICK_ENV).is_some_and(|value| value != "0")
}

/// The settings of seed 001 (1 s warm-up, 5 s measurement, 100 samples,
/// 0.05 significance), or short ones in quick mode. Command-line options
/// (`--measurement-time` and so on) still override them.
pub fn criterion() -> Criterion {
    let (warm_up, measurement, samples) = if quick() {
        (Duration::from_millis(200), Duration::from_millis(600), 10)
    } else {
        (Duration::from_secs(1), Duration::from_secs(5), 100)
    };
    Criterion::default()
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .sample_size(samples)
        .significance_level(0.05)
}

/// A multi-thread runtime with `workers` worker threads and every driver.
pub fn multi_thread(workers: usize) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers).enable_all();
    builder
}

/// A current-thread runtime with every driver.
pub fn current_thread() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    builder
}
