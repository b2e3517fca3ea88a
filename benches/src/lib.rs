//! Shared helpers for the pulse benchmarks: the statistical settings every
//! bench binary uses, a quick mode for smoke runs, and runtime builders.

use criterion::Criterion;
use std::hint::black_box;
use std::time::{Duration, Instant};

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

/// Set this environment variable to `cpu` to time batches with the calling
/// thread's CPU clock instead of the wall clock (see [`Timer`]).
pub const TIMER_ENV: &str = "PULSE_BENCH_TIMER";

/// What [`batched`] measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Elapsed wall-clock time (criterion's usual measure).
    Wall,
    /// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`): on a shared
    /// machine it leaves out the time the thread waited while another
    /// process ran, which wall time counts. It still counts the thread's own
    /// kernel time (page faults, system calls), but not time spent blocked
    /// (for example on a lock another thread holds), which wall time shows.
    /// [`batched`] uses it for work done on the timing thread;
    /// [`whole_process`] uses the process's CPU time instead (every thread,
    /// including pulse's flusher).
    ThreadCpu,
}

/// The timer [`TIMER_ENV`] selects; [`Timer::Wall`] unless it says `cpu`.
pub fn timer() -> Timer {
    match std::env::var(TIMER_ENV) {
        Ok(value) if value.eq_ignore_ascii_case("cpu") => Timer::ThreadCpu,
        _ => Timer::Wall,
    }
}

/// Runs `op` `iters` times between two readings of [`timer()`], keeping
/// each result alive (`black_box`) so the work cannot be optimised away.
///
/// Criterion asks for thousands to millions of iterations per sample, so
/// the two readings (even the ~0.6 µs CPU clock) are spread over the whole
/// batch rather than paid per operation.
pub fn batched<R>(iters: u64, mut op: impl FnMut(u64) -> R) -> Duration {
    match timer() {
        Timer::Wall => {
            let start = Instant::now();
            for i in 0..iters {
                black_box(op(i));
            }
            start.elapsed()
        }
        Timer::ThreadCpu => {
            let start = pulse::clock::thread_cpu_nanos();
            for i in 0..iters {
                black_box(op(i));
            }
            Duration::from_nanos(pulse::clock::thread_cpu_nanos().saturating_sub(start))
        }
    }
}

/// Runs `op` `iters` times and measures it with [`timer()`]: wall time, or
/// in CPU mode the CPU time of the whole process (all runtime workers and
/// pulse's flusher thread), for benchmarks that spread work over threads.
pub fn whole_process<R>(iters: u64, mut op: impl FnMut() -> R) -> Duration {
    let clock = match timer() {
        Timer::Wall => None,
        Timer::ThreadCpu => Some(libc::CLOCK_PROCESS_CPUTIME_ID),
    };
    let read = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
        let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime({clock}) failed");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    };
    let wall = Instant::now();
    let cpu = clock.map(read);
    for _ in 0..iters {
        black_box(op());
    }
    match (clock, cpu) {
        (Some(clock), Some(start)) => read(clock).saturating_sub(start),
        _ => wall.elapsed(),
    }
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

/// A thread's time on a CPU so far, from its `schedstat` file (the first
/// field, in nanoseconds; `/proc/thread-self/schedstat` for the calling
/// thread); zero if it cannot be read (the thread exited).
pub fn schedstat_cpu(path: &std::path::Path) -> Duration {
    let nanos = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

/// CPU time so far of this process's live threads whose names start with
/// `prefix` (`pulse`: all of pulse's threads; `pulse-flusher`: the flusher,
/// which also runs the sampler; `pulse-stacks`: the stacks' symbolizer),
/// from their `schedstat`.
pub fn threads_cpu(prefix: &str) -> Duration {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.starts_with(prefix) {
            total += schedstat_cpu(&path.join("schedstat"));
        }
    }
    total
}

/// The median of `values` (sorted in place; the mean of the two middle
/// values for an even count; NaN for none).
///
/// ```
/// assert_eq!(benches::median(&mut [3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(benches::median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
/// ```
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}
