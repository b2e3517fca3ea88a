//! The run-time half of `#[pulse::bench]` and `pulse::bench_main!`: what
//! their expansions call (through `pulse::__private::bench`). Not a public
//! API; it may change in any release.
//!
//! The macro reads and checks the attribute; everything that runs (threads,
//! the start barrier, the cache-padded per-thread slots, batching, the
//! statistical settings and quick mode) is here, as ordinary code.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use crossbeam_utils::CachePadded;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Expansions name criterion through pulse, so a bench crate needs only
/// `pulse` (with its `bench` feature).
pub use criterion;

/// Set this environment variable (to anything but `0`) for a smoke run:
/// short warm-up and measurement, few samples, whatever the attribute or the
/// command line says. Figures from a quick run are not for publishing.
pub const QUICK_ENV: &str = "PULSE_BENCH_QUICK";

/// Seed 001's statistical settings, the defaults of every `#[pulse::bench]`.
pub const WARM_UP: Duration = Duration::from_secs(1);
/// See [`WARM_UP`].
pub const MEASUREMENT: Duration = Duration::from_secs(5);
/// See [`WARM_UP`].
pub const SAMPLE_SIZE: usize = 100;
/// See [`WARM_UP`].
pub const SIGNIFICANCE: f64 = 0.05;

/// Quick mode's settings.
const QUICK_WARM_UP: Duration = Duration::from_millis(200);
const QUICK_MEASUREMENT: Duration = Duration::from_millis(600);
const QUICK_SAMPLE_SIZE: usize = 10;

/// Whether [`QUICK_ENV`] asks for a smoke run.
pub fn quick() -> bool {
    std::env::var_os(QUICK_ENV).is_some_and(|value| value != "0")
}

/// The `Criterion` a `pulse::bench_main!` binary runs with: seed 001's
/// settings (or quick mode's), then the command line (`--quick`,
/// `--measurement-time`, `--save-baseline`, a name filter, ...) on top.
pub fn configured() -> Criterion {
    let c = Criterion::default().significance_level(SIGNIFICANCE);
    let c = if quick() {
        c.warm_up_time(QUICK_WARM_UP)
            .measurement_time(QUICK_MEASUREMENT)
            .sample_size(QUICK_SAMPLE_SIZE)
    } else {
        c.warm_up_time(WARM_UP)
            .measurement_time(MEASUREMENT)
            .sample_size(SAMPLE_SIZE)
    };
    c.configure_from_args()
}

/// One `#[pulse::bench]` function's settings, as the attribute gave them.
#[derive(Clone, Copy, Debug)]
pub struct Bench {
    name: &'static str,
    group: &'static str,
    threads: Option<&'static [usize]>,
    batch: u32,
    elements: u64,
    warm_up: Option<Duration>,
    measurement: Option<Duration>,
    sample_size: Option<usize>,
    significance: Option<f64>,
}

impl Bench {
    /// The benchmark `name` in criterion group `group`.
    pub const fn new(name: &'static str, group: &'static str) -> Bench {
        Bench {
            name,
            group,
            threads: None,
            batch: 1,
            elements: 1,
            warm_up: None,
            measurement: None,
            sample_size: None,
            significance: None,
        }
    }

    /// Runs the function on each of `threads` threads at once, one
    /// benchmark per count.
    pub const fn threads(mut self, threads: &'static [usize]) -> Bench {
        self.threads = Some(threads);
        self
    }

    /// Calls the function `batch` times per criterion iteration and reports
    /// the time of one call.
    pub const fn batch(mut self, batch: u32) -> Bench {
        self.batch = batch;
        self
    }

    /// What one call does, for criterion's throughput (per thread).
    pub const fn elements(mut self, elements: u64) -> Bench {
        self.elements = elements;
        self
    }

    /// Overrides the warm-up time.
    pub const fn warm_up_ms(mut self, ms: u64) -> Bench {
        self.warm_up = Some(Duration::from_millis(ms));
        self
    }

    /// Overrides the measurement time.
    pub const fn measurement_ms(mut self, ms: u64) -> Bench {
        self.measurement = Some(Duration::from_millis(ms));
        self
    }

    /// Overrides the number of samples.
    pub const fn sample_size(mut self, n: usize) -> Bench {
        self.sample_size = Some(n);
        self
    }

    /// Overrides the significance level.
    pub const fn significance(mut self, level: f64) -> Bench {
        self.significance = Some(level);
        self
    }

    /// A group with the attribute's overrides. Without overrides the
    /// `Criterion`'s settings (seed 001's, then the command line's) apply;
    /// quick mode wins over both.
    fn group<'c>(&self, c: &'c mut Criterion) -> BenchmarkGroup<'c, WallTime> {
        let mut group = c.benchmark_group(self.group);
        if quick() {
            group
                .warm_up_time(QUICK_WARM_UP)
                .measurement_time(QUICK_MEASUREMENT)
                .sample_size(QUICK_SAMPLE_SIZE);
        } else {
            if let Some(warm_up) = self.warm_up {
                group.warm_up_time(warm_up);
            }
            if let Some(measurement) = self.measurement {
                group.measurement_time(measurement);
            }
            if let Some(n) = self.sample_size {
                group.sample_size(n);
            }
        }
        if let Some(level) = self.significance {
            group.significance_level(level);
        }
        group
    }

    /// Runs the benchmark on the calling thread (no `threads` argument).
    ///
    /// `setup` runs once, the first time criterion runs the benchmark (not
    /// at all if a filter skips it); its result is passed to every call of
    /// `op`, with the thread's state from `per_thread(0)`. After the last
    /// sample the thread's state is dropped and `teardown` gets the shared
    /// state.
    pub fn run<S, T, R>(
        self,
        c: &mut Criterion,
        setup: impl FnOnce() -> S,
        per_thread: impl FnOnce(usize) -> T,
        op: impl Fn(&S, &mut T) -> R,
        teardown: impl FnOnce(S),
    ) {
        let mut group = self.group(c);
        group.throughput(Throughput::Elements(self.elements));
        let mut setup = Some((setup, per_thread));
        let mut state: Option<(S, CachePadded<T>)> = None;
        let batch = self.batch;
        group.bench_function(self.name, |b| {
            if let Some((setup, per_thread)) = setup.take() {
                state = Some((setup(), CachePadded::new(per_thread(0))));
            }
            let Some((shared, slot)) = state.as_mut() else {
                return;
            };
            b.iter_custom(|iters| {
                let calls = iters * u64::from(batch);
                let start = Instant::now();
                for _ in 0..calls {
                    black_box(op(black_box(&*shared), black_box(&mut **slot)));
                }
                start.elapsed() / batch
            })
        });
        group.finish();
        if let Some((shared, slot)) = state {
            drop(slot);
            teardown(shared);
        }
    }

    /// Runs the benchmark once per thread count of `threads`.
    ///
    /// For each count `n`: `setup` runs once, `per_thread(i)` once per
    /// thread `i` in `0..n`, each result in its own cache-padded slot (no
    /// false sharing between threads). Every sample spawns `n` threads that
    /// wait at a barrier, so they start together; the clock runs from the
    /// barrier until the last thread has made its calls. One iteration is
    /// one call on every thread, so criterion's time is the time of one
    /// call as each thread saw it under `n`-way contention, and its
    /// throughput counts the calls of all threads.
    pub fn run_threads<S, T, R>(
        self,
        c: &mut Criterion,
        mut setup: impl FnMut() -> S,
        mut per_thread: impl FnMut(usize) -> T,
        op: impl Fn(&S, &mut T) -> R + Sync,
        mut teardown: impl FnMut(S),
    ) where
        S: Sync,
        T: Send,
    {
        let threads = self.threads.unwrap_or(&[1]);
        let mut group = self.group(c);
        for &n in threads {
            group.throughput(Throughput::Elements(self.elements * n as u64));
            let mut state: Option<(S, Vec<CachePadded<T>>)> = None;
            let batch = self.batch;
            let op = &op;
            group.bench_function(BenchmarkId::new(self.name, n), |b| {
                let (shared, slots) = state.get_or_insert_with(|| {
                    let shared = setup();
                    let slots = (0..n).map(|i| CachePadded::new(per_thread(i))).collect();
                    (shared, slots)
                });
                b.iter_custom(|iters| {
                    let calls = iters * u64::from(batch);
                    contend(shared, slots, calls, op) / batch
                })
            });
            if let Some((shared, slots)) = state {
                drop(slots);
                teardown(shared);
            }
        }
        group.finish();
    }
}

/// One sample of a contended benchmark: a thread per slot, each making
/// `calls` calls, all released by one barrier; the time from the barrier
/// to the last thread's end.
fn contend<S: Sync, T: Send, R>(
    shared: &S,
    slots: &mut [CachePadded<T>],
    calls: u64,
    op: &(impl Fn(&S, &mut T) -> R + Sync),
) -> Duration {
    let barrier = Barrier::new(slots.len() + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = slots
            .iter_mut()
            .map(|slot| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    for _ in 0..calls {
                        black_box(op(black_box(shared), black_box(&mut **slot)));
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for thread in threads {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        start.elapsed()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A short real run (criterion's test mode is only reachable through
    /// command-line arguments, which belong to the test harness here).
    fn short_criterion(dir: &std::path::Path) -> Criterion {
        Criterion::default()
            .output_directory(dir)
            .without_plots()
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(Duration::from_millis(5))
            .sample_size(10)
    }

    #[test]
    fn every_thread_makes_its_calls_with_its_own_slot() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = short_criterion(dir.path());
        let calls = AtomicU64::new(0);
        let mut seen = Vec::new();
        Bench::new("count", "harness_test")
            .threads(&[1, 3])
            .batch(10)
            .run_threads(
                &mut c,
                || &calls,
                |i| (i, 0u64),
                |calls, (i, mine)| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    *mine += 1;
                    *i
                },
                |_| seen.push(calls.swap(0, Ordering::Relaxed)),
            );
        // Once per thread count; every sample is whole batches on every
        // thread.
        assert_eq!(seen.len(), 2);
        assert!(seen[0] > 0 && seen[0] % 10 == 0, "{seen:?}");
        assert!(seen[1] > 0 && seen[1] % 30 == 0, "{seen:?}");
    }

    #[test]
    fn single_thread_setup_runs_once_and_teardown_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = short_criterion(dir.path());
        let mut setups = 0;
        let mut finished = None;
        Bench::new("single", "harness_test").batch(5).run(
            &mut c,
            || {
                setups += 1;
                Vec::new()
            },
            |i| i,
            |_, slot| *slot += 1,
            |v: Vec<u8>| finished = Some(v.len()),
        );
        assert_eq!(setups, 1);
        assert_eq!(finished, Some(0));
    }
}
