//! The background thread: every `flush_interval` it moves recorded events to
//! the writer; every `sample_interval` it samples the global queue depth and
//! each worker thread's CPU time and run-queue wait. It is a plain OS thread,
//! never a task on the traced runtime, so it does not appear in the trace.

use crate::config::Config;
use crate::record::collector::Batch;
use crate::record::control::{Control, Outcome, Request};
use crate::record::sampler::Sampler;
use crate::record::shared::Shared;
use crate::record::triggers::{Fired, Watch};
use crate::writer::{CompactEvents, TraceWriter, COMPACT_CHUNK};
use pulse_trace::{EndReason, RecordedEvent, TraceEnd};
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Compact records are decoded (for writers that take slices) this many
/// events at a time, so decoding needs only this much memory (56 KiB)
/// whatever the backlog.
const DECODE_CHUNK: usize = COMPACT_CHUNK;

/// What the flusher did, returned when it exits.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FlushStats {
    pub(crate) events_written: u64,
}

/// Starts the flusher thread.
pub(crate) fn spawn(
    control: Arc<Control>,
    writer: Box<dyn TraceWriter>,
    config: &Config,
) -> io::Result<JoinHandle<FlushStats>> {
    let flusher = Flusher {
        shared: control.shared.clone(),
        control,
        writer,
        flush_every: Duration::from_millis(config.flush_ms),
        sample_every: Duration::from_millis(config.sample_ms),
        sampler: Sampler::new(config.run_queue_wait),
        stats: FlushStats::default(),
        batches: Vec::new(),
        decoded: Vec::with_capacity(DECODE_CHUNK),
        reported_dropped: 0,
        failed: false,
        watch: Watch::new(
            if matches!(config.writer, crate::WriterConfig::Memory { .. }) {
                config.dump_on.clone()
            } else {
                Vec::new()
            },
        ),
        dump_after: Duration::from_millis(config.dump_after_ms),
        pending_dump: None,
        sealed: false,
    };
    let stacks_config = config.clone();
    std::thread::Builder::new()
        .name("pulse-flusher".to_owned())
        .spawn(move || {
            // Termination signals go to other threads: the handler waits
            // for this thread to write the end of the trace.
            crate::record::signals::block_on_this_thread();
            let mut flusher = flusher;
            // Stacks of long polls (issue 16): probed here, off the
            // application's threads; nothing is loaded before a long poll.
            flusher.sampler.stacks = crate::record::stacks::start(&stacks_config, &flusher.shared)
                .ok()
                .flatten();
            flusher.run()
        })
}

struct Flusher {
    shared: Arc<Shared>,
    control: Arc<Control>,
    writer: Box<dyn TraceWriter>,
    flush_every: Duration,
    sample_every: Duration,
    sampler: Sampler,
    stats: FlushStats,
    /// Reused across flushes (the collector swaps its batches in here).
    batches: Vec<Batch>,
    /// Events decoded from a batch's compact records, up to
    /// [`DECODE_CHUNK`] at a time, for the writer.
    decoded: Vec<RecordedEvent>,
    /// Dropped events already recorded in the trace.
    reported_dropped: u64,
    /// The writer failed; batches are counted and discarded.
    failed: bool,
    /// `dump_on` triggers.
    watch: Watch,
    /// How long a triggered dump waits, so it holds what followed.
    dump_after: Duration,
    /// A triggered dump waiting for its window after the trigger.
    pending_dump: Option<(PathBuf, Instant, Fired)>,
    /// The end record is written and the process is ending (a signal's
    /// default action, an aborting panic): nothing may follow it in the
    /// file, so later batches are counted as dropped.
    sealed: bool,
}

/// The time slice the flusher asks for (see [`request_short_slice`]).
const FLUSHER_SLICE_NANOS: u64 = 100_000;

/// Asks the kernel for a short time slice for the calling thread
/// (`sched_runtime` of a normal `SCHED_OTHER` thread, which Linux's EEVDF
/// scheduler honours since 6.12): a thread that wakes with a short slice
/// gets an early deadline, so the flusher runs soon after the collector
/// wakes it instead of after every runnable thread's 3 ms slice. Its
/// priority, weight and so its share of the CPU stay a normal thread's;
/// the program's threads keep theirs. Best effort: a kernel that refuses
/// or ignores it changes nothing.
#[cfg(target_os = "linux")]
fn request_short_slice() {
    let size = std::mem::size_of::<libc::sched_attr>() as u32;
    // SAFETY: an all-zero `sched_attr` is a valid value of the plain C
    // struct.
    let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
    // SAFETY: `attr` is a writable `sched_attr` of `size` bytes; pid 0 is
    // the calling thread.
    let read = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut attr as *mut libc::sched_attr,
            size,
            0,
        )
    };
    if read != 0 || attr.sched_policy != libc::SCHED_OTHER as u32 {
        return;
    }
    attr.size = size;
    attr.sched_flags = 0;
    attr.sched_runtime = FLUSHER_SLICE_NANOS;
    // SAFETY: `attr` is a valid `sched_attr` that keeps the thread's
    // policy and nice value; pid 0 is the calling thread.
    let _ = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0,
            &attr as *const libc::sched_attr,
            0,
        )
    };
}

#[cfg(not(target_os = "linux"))]
fn request_short_slice() {}

impl Flusher {
    fn run(mut self) -> FlushStats {
        request_short_slice();
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
            if let Some((_, due, _)) = &self.pending_dump {
                if now >= *due {
                    self.flush();
                    self.triggered_dump();
                }
            }
            let mut deadline = next_sample.min(next_flush);
            if let Some((_, due, _)) = &self.pending_dump {
                deadline = deadline.min(*due);
            }
            let wake = self
                .shared
                .collector
                .wait(deadline.saturating_duration_since(Instant::now()));
            if wake.stopping {
                break;
            }
            if wake.flush {
                self.flush();
                self.serve_requests();
            }
        }
        self.sampler.sample(&self.shared);
        // Stacks still being symbolized reach the collector first.
        self.sampler.stacks = None;
        // The last copy waits for buffers being handed over.
        self.collect_thread_buffers(true);
        self.flush_collected();
        // From now on hand-overs are counted as dropped; write what
        // arrived before that.
        self.shared.collector.close();
        self.flush_collected();
        // Requests made while stopping (a signal during shutdown) are
        // served by the final flush and the end record below.
        let requests = self.control.take();
        let threads = self.control.threads_still_recording();
        if !self.sealed {
            self.end(EndReason::Shutdown, threads);
        }
        if !self.failed {
            let writer = &mut self.writer;
            if let Err(err) = guarded(|| writer.finish()) {
                self.fail(err, 0);
            }
        }
        for (ticket, request) in requests {
            let outcome = matches!(request, Request::Dump(_))
                .then(|| Err("the recording ended before the dump was written".to_owned()));
            self.control.complete(ticket, outcome);
        }
        self.control.close();
        self.stats
    }

    /// Does what other threads asked, in order.
    fn serve_requests(&mut self) {
        for (ticket, request) in self.control.take() {
            let outcome = match request {
                Request::Seal(reason) => {
                    if self.sealed {
                        self.control.complete(ticket, None);
                        continue;
                    }
                    self.sampler.sample(&self.shared);
                    // Nothing may follow the end record: wait for buffers
                    // being handed over.
                    self.collect_thread_buffers(true);
                    self.flush_collected();
                    self.end(reason, 0);
                    self.sealed = true;
                    if !self.failed {
                        let writer = &mut self.writer;
                        if let Err(err) = guarded(|| writer.flush()) {
                            self.fail(err, 0);
                        }
                    }
                    None
                }
                Request::Flush => None,
                Request::Dump(path) => {
                    self.flush();
                    let control = self.control.clone();
                    self.dump(&path, move |outcome| {
                        control.complete(ticket, Some(outcome))
                    });
                    continue;
                }
            };
            self.control.complete(ticket, outcome);
        }
    }

    /// A `dump_on` trigger fired on events about to be written: schedules
    /// a dump `dump_after` from now (cooldown and hourly cap permitting),
    /// unless one is pending or writing failed.
    fn triggered(&mut self, fired: Fired) {
        if self.pending_dump.is_some() || self.failed {
            return;
        }
        let what = match fired.trigger.when {
            crate::config::DumpWhen::Poll => "poll",
            crate::config::DumpWhen::Descheduled => "descheduled",
        };
        if let Some(path) = self.control.auto_dump_path(what) {
            self.pending_dump = Some((path, Instant::now() + self.dump_after, fired));
        }
    }

    /// Writes the dump a trigger scheduled, and says so on stderr.
    fn triggered_dump(&mut self) {
        let Some((path, _, fired)) = self.pending_dump.take() else {
            return;
        };
        let control = self.control.clone();
        self.dump(&path, move |outcome| {
            if let Ok(Some(first)) = &outcome {
                if !control.dumps_quietly() {
                    let _ = writeln!(
                        io::stderr(),
                        "pulse: {} fired on worker {} ({} ms at {} ms into the trace): flight \
                         recorder dumped to {}",
                        fired.trigger,
                        fired.worker,
                        fired.measured_nanos / 1_000_000,
                        fired.timestamp_nanos / 1_000_000,
                        first.display()
                    );
                }
                return;
            }
            control.report_dump(Some(outcome));
        });
    }

    /// Prepares a dump of the flight recorder's window to `path` and
    /// writes it on a `pulse-dump` thread (recording goes on meanwhile);
    /// `done` receives the outcome.
    fn dump(&mut self, path: &std::path::Path, done: impl FnOnce(Outcome) + Send + 'static) {
        if self.failed {
            done(Err(
                "the recording stopped after a writer failure".to_owned()
            ));
            return;
        }
        let end = self.end_record(EndReason::Dump, 0);
        let writer = &mut self.writer;
        let job = match guarded(|| writer.dump(path, &end)) {
            Ok(job) => job,
            Err(err) => {
                done(Err(err.to_string()));
                return;
            }
        };
        let run = move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| job.run()))
                .unwrap_or_else(|payload| {
                    Err(io::Error::other(format!(
                        "the dump panicked: {}",
                        panic_message(payload.as_ref())
                    )))
                })
                .map(Some)
                .map_err(|err| err.to_string());
            done(outcome);
        };
        let run = std::sync::Arc::new(std::sync::Mutex::new(Some(run)));
        let spawned = {
            let run = run.clone();
            std::thread::Builder::new()
                .name("pulse-dump".to_owned())
                .spawn(move || {
                    crate::record::signals::block_on_this_thread();
                    if let Some(run) = run.lock().ok().and_then(|mut r| r.take()) {
                        run();
                    }
                })
        };
        if spawned.is_err() {
            // No thread to spare: write it here.
            if let Some(run) = run.lock().ok().and_then(|mut r| r.take()) {
                run();
            }
        }
    }

    fn end_record(&self, reason: EndReason, threads_still_recording: u32) -> TraceEnd {
        let mut end = TraceEnd::new(self.shared.now(), reason);
        end.dropped_events = self.shared.collector.dropped();
        end.threads_still_recording = threads_still_recording;
        end
    }

    /// Writes the end-of-trace record (unless the writer failed).
    fn end(&mut self, reason: EndReason, threads_still_recording: u32) {
        if self.failed {
            return;
        }
        let end = self.end_record(reason, threads_still_recording);
        let writer = &mut self.writer;
        if let Err(err) = guarded(|| writer.end(&end)) {
            self.fail(err, 0);
        }
    }

    /// Moves everything recorded so far to the writer (a buffer whose
    /// owner is handing it over at this instant arrives with the next).
    fn flush(&mut self) {
        self.collect_thread_buffers(false);
        self.flush_collected();
    }

    /// Moves what the collector holds to the writer.
    fn flush_collected(&mut self) {
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
        self.shared.collector.take_events(&mut self.sampler.samples);
        let samples = std::mem::take(&mut self.sampler.samples);
        if let Err((err, unwritten)) = self.write(&samples, &mut batches) {
            self.fail(err, unwritten);
        }
        self.sampler.samples = samples;
        self.sampler.samples.clear();
        self.batches = batches;
    }

    /// Copies what every thread has published but not yet handed over, and
    /// forgets buffers of threads that have exited (they flush on exit).
    /// Unless `wait`, skips a buffer whose owner is handing it over.
    fn collect_thread_buffers(&mut self, wait: bool) {
        let mut slots = self.shared.slots();
        for slot in slots.iter() {
            slot.copy_out(&self.shared.collector, wait);
        }
        slots.retain(|slot| Arc::strong_count(slot) > 1 || slot.pending() > 0);
    }

    /// Writes the samples and the batches (each shown to the `dump_on`
    /// triggers first, then given to the writer as compact records) and
    /// flushes the writer; on failure returns the error and how many events
    /// were not confirmed written (those written since the last successful
    /// flush count as lost: they may sit in a buffer that never reached the
    /// disk). Each batch goes back to the collector as soon as it is
    /// written, so its memory takes new events while the rest of a large
    /// backlog is still being written.
    fn write(
        &mut self,
        samples: &[RecordedEvent],
        batches: &mut Vec<Batch>,
    ) -> Result<(), (io::Error, u64)> {
        let shared = self.shared.clone();
        let collector = &shared.collector;
        let mut batches = batches.drain(..);
        // Counts the remaining batches' events and returns them.
        let discard = |batches: &mut dyn Iterator<Item = Batch>| -> u64 {
            batches
                .map(|batch| {
                    let events = batch.records().count() as u64;
                    collector.recycle_one(batch);
                    events
                })
                .sum()
        };
        if self.failed || self.sealed {
            let lost = samples.len() as u64 + discard(&mut batches);
            collector.add_dropped(lost);
            return Ok(());
        }
        let mut decoded = std::mem::take(&mut self.decoded);
        let result = self.write_batches(samples, &mut batches, &mut decoded, &discard);
        self.decoded = decoded;
        result
    }

    fn write_batches(
        &mut self,
        samples: &[RecordedEvent],
        batches: &mut dyn Iterator<Item = Batch>,
        decoded: &mut Vec<RecordedEvent>,
        discard: &dyn Fn(&mut dyn Iterator<Item = Batch>) -> u64,
    ) -> Result<(), (io::Error, u64)> {
        let mut unflushed = 0u64;
        if !samples.is_empty() {
            if !self.watch.is_empty() {
                if let Some(fired) = self.watch.observe(samples) {
                    self.triggered(fired);
                }
            }
            let writer = &mut self.writer;
            if let Err(err) = guarded(|| writer.write_batch(samples)) {
                return Err((err, samples.len() as u64 + discard(batches)));
            }
            unflushed += samples.len() as u64;
        }
        while let Some(batch) = batches.next() {
            if !self.watch.is_empty() {
                // What the triggers read, found in the compact records
                // without building the events.
                let mut fired = None;
                let watch = &mut self.watch;
                batch.records().watched(|watched| {
                    let hit = watch.observe_one(watched);
                    fired = fired.or(hit);
                });
                if let Some(fired) = fired {
                    self.triggered(fired);
                }
            }
            // The writer takes the compact records (pulse's writers encode
            // them straight into the trace; others get them decoded
            // `DECODE_CHUNK` events at a time).
            let mut events = CompactEvents::new(batch.records(), decoded);
            let writer = &mut self.writer;
            let written = guarded(|| writer.write_compact(&mut events));
            let taken = events.taken();
            if let Err(err) = written {
                // What was taken may sit in a buffer that never reaches
                // the disk: the whole batch counts as lost.
                let rest = batch.records().count() as u64;
                self.shared.collector.recycle_one(batch);
                return Err((err, unflushed + rest + discard(batches)));
            }
            // A writer that left events untaken lost them: counted.
            let untaken = events.count() as u64;
            self.shared.collector.add_dropped(untaken);
            unflushed += taken;
            self.shared.collector.recycle_one(batch);
        }
        let writer = &mut self.writer;
        guarded(|| writer.flush()).map_err(|err| (err, unflushed))?;
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

/// Runs a writer call, turning a panic into an error that carries the
/// panic's message (the writer is not used again after an error).
fn guarded<T>(call: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(result) => result,
        Err(payload) => Err(io::Error::other(format!(
            "the trace writer panicked: {}",
            panic_message(payload.as_ref())
        ))),
    }
}

/// The message of a panic payload (`panic!` with a literal or a format).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_owned()
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
