//! The background thread: every `flush_interval` it moves recorded events to
//! the writer; every `sample_interval` it samples the global queue depth and
//! each worker thread's CPU time and run-queue wait. It is a plain OS thread,
//! never a task on the traced runtime, so it does not appear in the trace.

use crate::config::Config;
use crate::record::collector::Batch;
use crate::record::sampler::Sampler;
use crate::record::shared::Shared;
use crate::writer::TraceWriter;
use pulse_trace::RecordedEvent;
use std::io::{self, Write};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the flusher did, returned when it exits.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FlushStats {
    pub(crate) events_written: u64,
}

/// Starts the flusher thread.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    writer: Box<dyn TraceWriter>,
    config: &Config,
) -> io::Result<JoinHandle<FlushStats>> {
    let flusher = Flusher {
        shared,
        writer,
        flush_every: Duration::from_millis(config.flush_ms),
        sample_every: Duration::from_millis(config.sample_ms),
        sampler: Sampler::new(config.run_queue_wait),
        stats: FlushStats::default(),
        batches: Vec::new(),
        reported_dropped: 0,
        failed: false,
    };
    std::thread::Builder::new()
        .name("pulse-flusher".to_owned())
        .spawn(move || flusher.run())
}

struct Flusher {
    shared: Arc<Shared>,
    writer: Box<dyn TraceWriter>,
    flush_every: Duration,
    sample_every: Duration,
    sampler: Sampler,
    stats: FlushStats,
    /// Reused across flushes (the collector swaps its batches in here).
    batches: Vec<Batch>,
    /// Dropped events already recorded in the trace.
    reported_dropped: u64,
    /// The writer failed; batches are counted and discarded.
    failed: bool,
}

impl Flusher {
    fn run(mut self) -> FlushStats {
        let start = Instant::now();
        let mut next_sample = start;
        let mut next_flush = start + self.flush_every;
        loop {
            let now = Instant::now();
            if now >= next_sample {
                self.sampler.sample(&self.shared);
                next_sample = advance(next_sample, self.sample_every, now);
            }
            if now >= next_flush {
                self.flush();
                next_flush = advance(next_flush, self.flush_every, now);
            }
            let deadline = next_sample.min(next_flush);
            let wake = self
                .shared
                .collector
                .wait(deadline.saturating_duration_since(Instant::now()));
            if wake.stopping {
                break;
            }
            if wake.flush {
                self.flush();
            }
        }
        self.sampler.sample(&self.shared);
        self.flush();
        if !self.failed {
            if let Err(err) = self.writer.finish() {
                self.fail(err, 0);
            }
        }
        self.stats
    }

    /// Moves everything recorded so far to the writer.
    fn flush(&mut self) {
        self.collect_thread_buffers();
        self.shared.collector.drain(&mut self.batches);
        let dropped = self.shared.collector.dropped();
        if dropped > self.reported_dropped && !self.failed {
            self.sampler.samples.push(RecordedEvent::EventsDropped {
                timestamp_nanos: self.shared.now(),
                count: dropped - self.reported_dropped,
            });
            self.reported_dropped = dropped;
        }
        let mut batches = std::mem::take(&mut self.batches);
        let samples = std::mem::take(&mut self.sampler.samples);
        let result = self
            .write(std::iter::once(samples.as_slice()).chain(batches.iter().map(Batch::events)));
        if let Err((err, unwritten)) = result {
            self.fail(err, unwritten);
        }
        self.sampler.samples = samples;
        self.sampler.samples.clear();
        self.shared.collector.recycle(&mut batches);
        self.batches = batches;
    }

    /// Copies what every thread has published but not yet handed over, and
    /// forgets buffers of threads that have exited (they flush on exit).
    fn collect_thread_buffers(&mut self) {
        let mut slots = self.shared.slots();
        for slot in slots.iter() {
            slot.copy_out(&self.shared.collector);
        }
        slots.retain(|slot| Arc::strong_count(slot) > 1 || slot.pending() > 0);
    }

    /// Writes the batches and flushes the writer; on failure returns the
    /// error and how many events were not confirmed written (those written
    /// since the last successful flush count as lost: they may sit in a
    /// buffer that never reached the disk).
    fn write<'a>(
        &mut self,
        batches: impl Iterator<Item = &'a [RecordedEvent]>,
    ) -> Result<(), (io::Error, u64)> {
        let mut batches = batches.filter(|b| !b.is_empty());
        if self.failed {
            let lost: usize = batches.map(<[RecordedEvent]>::len).sum();
            self.shared.collector.add_dropped(lost as u64);
            return Ok(());
        }
        let mut unflushed = 0u64;
        while let Some(batch) = batches.next() {
            if let Err(err) = self.writer.write_batch(batch) {
                let rest: usize = batch.len() + batches.map(<[RecordedEvent]>::len).sum::<usize>();
                return Err((err, unflushed + rest as u64));
            }
            unflushed += batch.len() as u64;
        }
        self.writer.flush().map_err(|err| (err, unflushed))?;
        self.stats.events_written += unflushed;
        Ok(())
    }

    /// Stops recording after a writer error, reporting it once.
    fn fail(&mut self, err: io::Error, unwritten: u64) {
        self.failed = true;
        self.shared.collector.add_dropped(unwritten);
        let message = err.to_string();
        // Not `eprintln!`, which panics if stderr is a broken pipe: then
        // the failure would not be recorded and recording would go on.
        let _ = writeln!(
            io::stderr(),
            "pulse: writing the trace failed, recording stopped (the program continues): {message}"
        );
        self.shared.fail_writer(message);
    }
}

/// The next deadline after `previous`, skipping missed ones rather than
/// running them back to back.
fn advance(previous: Instant, every: Duration, now: Instant) -> Instant {
    let next = previous + every;
    if next <= now {
        now + every
    } else {
        next
    }
}
