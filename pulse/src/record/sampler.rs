//! The sampler: every `sample_ms`, on the flusher thread, it reads the
//! global queue depth and each worker thread's CPU time and run-queue wait
//! from outside the thread, so long polls and long parks contain readings.

use crate::record::buffer::NO_WORKER;
use crate::record::clock::{self, SchedStatFile};
use crate::record::shared::Shared;
use pulse_trace::RecordedEvent;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// The sampler's state, owned by the flusher thread.
#[derive(Debug)]
pub(crate) struct Sampler {
    read_run_delay: bool,
    /// `schedstat` of each worker thread, by tid, opened on first sample.
    schedstat: HashMap<i32, Option<SchedStatFile>>,
    /// Samples waiting for the next flush.
    pub(crate) samples: Vec<RecordedEvent>,
}

impl Sampler {
    pub(crate) fn new(read_run_delay: bool) -> Self {
        Sampler {
            read_run_delay,
            schedstat: HashMap::new(),
            samples: Vec::new(),
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
        let workers: Vec<(i32, u32)> = shared
            .slots()
            .iter()
            .filter_map(|slot| {
                let worker = slot.worker.load(Ordering::Relaxed);
                Some((slot.tid?, worker)).filter(|_| worker != NO_WORKER)
            })
            .collect();
        for (tid, worker) in workers {
            // The thread may have exited since it was listed.
            let Some(cpu_nanos) = clock::thread_cpu_nanos_of(tid) else {
                self.schedstat.remove(&tid);
                continue;
            };
            let read_run_delay = self.read_run_delay;
            let run_delay_nanos = self
                .schedstat
                .entry(tid)
                .or_insert_with(|| {
                    read_run_delay
                        .then(|| SchedStatFile::open_thread(tid).ok())
                        .flatten()
                })
                .as_ref()
                .and_then(|file| file.read().ok())
                .map(|stat| stat.run_delay_nanos);
            self.samples.push(RecordedEvent::WorkerSample {
                timestamp_nanos: shared.now(),
                worker,
                cpu_nanos,
                run_delay_nanos,
            });
        }
    }
}
