//! The sampler: every `sample_ms`, on the flusher thread, it reads the
//! global queue depth and each worker thread's CPU time and run-queue wait
//! from outside the thread, so long polls and long parks contain readings.
//!
//! A worker can move to another OS thread (`block_in_place` hands it to a
//! new one while the old thread finishes its poll, and both then say they
//! are that worker). Readings are cumulative per thread, so the sampler
//! reports one thread per worker, the one that claimed it last, and writes
//! a [`WorkerThreadKind::Sampled`] record whenever that thread changes:
//! the analysis never subtracts one thread's counters from another's.

use crate::record::buffer::NO_WORKER;
use crate::record::clock::{self, SchedStatFile};
use crate::record::shared::Shared;
use crate::record::stacks::StackCapture;
use pulse_trace::{RecordedEvent, WorkerThreadKind};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// A worker thread's `schedstat` and the sampler's previous reading of it.
#[derive(Debug)]
struct ThreadReadings {
    file: Option<SchedStatFile>,
    /// `(cpu_nanos, run_delay_nanos)` of the previous sample.
    previous: Option<(u64, Option<u64>)>,
}

/// The sampler's state, owned by the flusher thread.
#[derive(Debug)]
pub(crate) struct Sampler {
    read_run_delay: bool,
    /// Each worker thread's `schedstat` (opened on first sample) and its
    /// previous reading, by tid.
    schedstat: HashMap<i32, ThreadReadings>,
    /// The worker each thread said it runs at the previous sample.
    seen: HashMap<i32, u32>,
    /// The thread whose readings are reported for each worker.
    owner: HashMap<u32, i32>,
    /// The thread last announced in a `Sampled` record, per worker.
    reported: HashMap<u32, i32>,
    /// Samples waiting for the next flush.
    pub(crate) samples: Vec<RecordedEvent>,
    /// Stacks of long polls (`record/stacks.rs`), if enabled and allowed.
    pub(crate) stacks: Option<(StackCapture, u64)>,
}

impl Sampler {
    pub(crate) fn new(read_run_delay: bool) -> Self {
        Sampler {
            read_run_delay,
            schedstat: HashMap::new(),
            seen: HashMap::new(),
            owner: HashMap::new(),
            reported: HashMap::new(),
            samples: Vec::new(),
            stacks: None,
        }
    }

    /// Records the global queue depth and every worker's CPU and run-queue
    /// readings.
    pub(crate) fn sample(&mut self, shared: &Shared) {
        if !shared.is_enabled() {
            return;
        }
        let Some(metrics) = shared.runtime_metrics() else {
            return;
        };
        let timestamp_nanos = shared.now();
        self.samples.push(RecordedEvent::QueueSample {
            timestamp_nanos,
            global_queue: u64::try_from(metrics.global_queue_depth()).unwrap_or(u64::MAX),
        });
        let claims: Vec<(i32, u32)> = shared
            .slots()
            .iter()
            .filter_map(|slot| {
                let worker = slot.worker.load(Ordering::Relaxed);
                Some((slot.tid?, worker)).filter(|_| worker != NO_WORKER)
            })
            .collect();
        let workers = self.owners(&claims, timestamp_nanos);
        for (tid, worker) in workers {
            // The thread may have exited since it was listed.
            let Some(cpu_nanos) = clock::thread_cpu_nanos_of(tid) else {
                self.schedstat.remove(&tid);
                self.seen.remove(&tid);
                self.owner.retain(|_, owner| *owner != tid);
                continue;
            };
            let read_run_delay = self.read_run_delay;
            let readings = self.schedstat.entry(tid).or_insert_with(|| ThreadReadings {
                file: read_run_delay
                    .then(|| SchedStatFile::open_thread(tid).ok())
                    .flatten(),
                previous: None,
            });
            // A thread whose CPU time has not moved since the previous
            // sample has not been on a CPU since, and the kernel credits a
            // run-queue wait when the thread gets a CPU (`sched_info`'s
            // arrive), or when it leaves a queue without running (its
            // dequeue: a migration, or EEVDF's delayed dequeue of a
            // sleeping thread): the previous run-queue reading is
            // repeated and the `pread`, most of a sample's cost after the
            // wake-up (~12 µs here, cold), is skipped, so an idle
            // runtime's parked workers cost no read. A wait credited at
            // such a dequeue shows at the thread's next sample after it
            // ran, as a wait credited when it ends does, which the
            // analysis carries back (`cpu::accrued`).
            let run_delay_nanos = match readings.previous {
                Some((cpu, run_delay)) if cpu == cpu_nanos => run_delay,
                _ => readings
                    .file
                    .as_ref()
                    .and_then(|file| file.read().ok())
                    .map(|stat| stat.run_delay_nanos),
            };
            readings.previous = Some((cpu_nanos, run_delay_nanos));
            self.samples.push(RecordedEvent::WorkerSample {
                timestamp_nanos: shared.now(),
                worker,
                cpu_nanos,
                run_delay_nanos,
            });
        }
        // Stacks of long polls (issue 16): see `record/stacks.rs`.
        if let Some((capture, threshold_nanos)) = self.stacks.as_mut() {
            crate::record::stacks::sample(shared, capture, *threshold_nanos);
        }
    }

    /// The thread to report for each worker: the one that claimed it last
    /// (a thread whose worker changed since the previous sample, or a new
    /// one; later slots are newer threads). Writes a `Sampled` record when
    /// a worker's thread changes.
    fn owners(&mut self, claims: &[(i32, u32)], timestamp_nanos: u64) -> Vec<(i32, u32)> {
        let mut changed = Vec::new();
        for &(tid, worker) in claims {
            if self.seen.insert(tid, worker) != Some(worker) {
                changed.push((tid, worker));
            }
        }
        for &(tid, worker) in &changed {
            self.owner.insert(worker, tid);
        }
        // An owner that no longer claims its worker gives way to one that
        // does.
        let claimed: std::collections::HashSet<(i32, u32)> = claims.iter().copied().collect();
        self.owner
            .retain(|&worker, &mut tid| claimed.contains(&(tid, worker)));
        for &(tid, worker) in claims {
            self.owner.entry(worker).or_insert(tid);
        }
        let mut owners: Vec<(i32, u32)> = self.owner.iter().map(|(&w, &t)| (t, w)).collect();
        owners.sort_by_key(|&(_, worker)| worker);
        for &(tid, worker) in &owners {
            let reported = self.reported.insert(worker, tid);
            if reported != Some(tid) {
                if let Ok(tid) = u32::try_from(tid) {
                    self.samples.push(RecordedEvent::WorkerThread {
                        timestamp_nanos,
                        worker,
                        tid,
                        kind: WorkerThreadKind::Sampled,
                    });
                }
            }
        }
        owners
    }
}

#[cfg(all(test, target_os = "linux", tokio_unstable))]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::record::buffer::ThreadSlot;
    use std::sync::atomic::AtomicBool;
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    fn run_delay_of(tid: i32) -> u64 {
        SchedStatFile::open_thread(tid)
            .and_then(|file| file.read())
            .expect("schedstat readable")
            .run_delay_nanos
    }

    /// Every sample's run-queue wait of a worker thread lies between what
    /// its `schedstat` said just before and just after the sample (the
    /// witness), whether the thread slept through it (its CPU time stands
    /// still, and the sampler repeats its previous reading instead of
    /// reading again) or ran (the sampler reads).
    #[test]
    fn repeated_run_queue_readings_match_schedstat() {
        let shared = Shared::new(&Config::new());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        shared.set_runtime_metrics(runtime.metrics());
        let stop = Arc::new(AtomicBool::new(false));
        let (tids, receive) = mpsc::channel();
        // The sleeping thread blocks until `wake` is dropped.
        let (wake, asleep) = mpsc::channel::<()>();
        let mut asleep = Some(asleep);
        let threads: Vec<_> = [false, true]
            .into_iter()
            .map(|spins| {
                let (stop, tids, asleep) = (stop.clone(), tids.clone(), asleep.take());
                std::thread::spawn(move || {
                    tids.send((crate::record::clock::current_tid().unwrap(), spins))
                        .unwrap();
                    if let Some(asleep) = asleep {
                        let _ = asleep.recv();
                    }
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let mut spinning = 0;
        for worker in 0..2 {
            let (tid, spins) = receive.recv().unwrap();
            if spins {
                spinning = tid;
            }
            let slot = ThreadSlot::new(64, Some(tid));
            slot.worker.store(worker, Ordering::Relaxed);
            shared.slots().push(Arc::new(slot));
        }
        let mut sampler = Sampler::new(true);
        let mut seen = HashMap::<i32, Vec<(u64, u64)>>::new();
        for _ in 0..20 {
            let tids: Vec<i32> = shared.slots().iter().filter_map(|s| s.tid).collect();
            let before: Vec<u64> = tids.iter().map(|&tid| run_delay_of(tid)).collect();
            sampler.sample(&shared);
            let after: Vec<u64> = tids.iter().map(|&tid| run_delay_of(tid)).collect();
            for sample in sampler.samples.drain(..) {
                let RecordedEvent::WorkerSample {
                    worker,
                    cpu_nanos,
                    run_delay_nanos,
                    ..
                } = sample
                else {
                    continue;
                };
                let i = worker as usize;
                let run_delay = run_delay_nanos.expect("run-queue wait read");
                assert!(
                    (before[i]..=after[i]).contains(&run_delay),
                    "worker {worker}: sampled {run_delay}, schedstat {} then {}",
                    before[i],
                    after[i]
                );
                seen.entry(tids[i])
                    .or_default()
                    .push((cpu_nanos, run_delay));
            }
            let until = Instant::now() + Duration::from_millis(2);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        stop.store(true, Ordering::Relaxed);
        drop(wake);
        for thread in threads {
            thread.join().unwrap();
        }
        // Both kinds of samples happened: the sleeping thread's CPU time
        // stood still (repeated readings), the spinning one's moved.
        for (tid, readings) in &seen {
            assert_eq!(readings.len(), 20);
            let moved = readings.windows(2).filter(|w| w[1].0 != w[0].0).count();
            if *tid == spinning {
                assert!(moved > 0, "the spinning thread's CPU time moved");
            } else {
                assert!(
                    moved <= 1,
                    "the sleeping thread's CPU time stood still: {moved}"
                );
            }
        }
    }
}
