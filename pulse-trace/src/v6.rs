//! pulse's v6 layout: a metadata record, then compact per-worker records
//! (tag byte + varint deltas) mixed with length-prefixed records that old
//! readers can skip. `FORMAT.md` is the specification; this file follows it.

use crate::error::{Corruption, RecordKind, TraceErrorKind};
use crate::event::{LocationId, SpawnSite, TraceEvent, WorkerThreadKind};
use crate::event::{RecordedEvent, SpawnLocation};
use crate::span::{SpanId, TextId, TextRegistry, OVERFLOW_TEXT};
use crate::stack::{Stack, StackFrame, StackId, StackKind, StackModule, StackRegistry};
use crate::varint::{
    put_str, put_varint, put_zigzag, unzigzag, zigzag, Cursor, ReadError, MAX_VARINT_LEN,
};
use crate::{
    EndReason, TraceEnd, TraceMetadata, MAX_LOCATIONS, MAX_RECORD_LEN, MAX_WORKERS_PER_FILE,
};
use std::collections::HashMap;

/// PollEnd: `0x00..=0x1F`; the low five bits hold the local queue depth
/// change ([`POLL_END_QUEUE_BITS`]).
pub(crate) const TAG_POLL_END: u8 = 0x00;
/// PollStart: `0x20..=0x3F`; bit [`NEW_LOCATION`] says a location id
/// follows, the low four bits hold the local queue depth change
/// ([`POLL_START_QUEUE_BITS`]).
pub(crate) const TAG_POLL_START: u8 = 0x20;
/// The bits of a PollEnd tag holding the zigzag change of the local queue
/// depth from the worker's previous record; all ones is the escape.
pub(crate) const POLL_END_QUEUE_BITS: u8 = 0x1F;
/// The bits of a PollStart tag holding the zigzag change of the local
/// queue depth; all ones is the escape.
pub(crate) const POLL_START_QUEUE_BITS: u8 = 0x0F;
/// PollStart tag bit: the spawn location differs from this worker's
/// previous PollStart in this file, and its id follows.
pub(crate) const NEW_LOCATION: u8 = 0x10;
/// WorkerPark.
pub(crate) const TAG_WORKER_PARK: u8 = 0x40;
/// WorkerUnpark.
pub(crate) const TAG_WORKER_UNPARK: u8 = 0x41;
/// Worker switch: the following worker records belong to this worker.
pub(crate) const TAG_WORKER_SWITCH: u8 = 0x42;
/// Set time: the current worker's previous time, in absolute ticks.
pub(crate) const TAG_SET_TIME: u8 = 0x43;
/// WorkerPark without a CPU/run-queue reading.
pub(crate) const TAG_WORKER_PARK_NO_READING: u8 = 0x44;
/// WorkerUnpark without a CPU/run-queue reading.
pub(crate) const TAG_WORKER_UNPARK_NO_READING: u8 = 0x45;
/// Tags at and above this one are followed by a varint payload length.
pub(crate) const FIRST_LENGTH_PREFIXED_TAG: u8 = 0x80;
/// Metadata (must be a file's first record).
pub(crate) const TAG_METADATA: u8 = 0x80;
/// Spawn location definition.
pub(crate) const TAG_LOCATION: u8 = 0x81;
/// QueueSample.
pub(crate) const TAG_QUEUE_SAMPLE: u8 = 0x82;
/// WorkerSample.
pub(crate) const TAG_WORKER_SAMPLE: u8 = 0x83;
/// EventsDropped.
pub(crate) const TAG_EVENTS_DROPPED: u8 = 0x84;
/// WorkerThread: which OS thread runs a worker (issue 12's tag).
pub(crate) const TAG_WORKER_THREAD: u8 = 0x86;
/// Length-prefixed end-of-trace record: the recording ended on purpose.
pub(crate) const TAG_TRACE_END: u8 = 0x85;
/// Length-prefixed: a stack module, frame or stack definition (issue 16).
pub(crate) const TAG_STACK_DEFINITION: u8 = 0x87;
/// Length-prefixed: a stack sample of a worker during a long poll.
pub(crate) const TAG_STACK_SAMPLE: u8 = 0x88;
/// Length-prefixed: the schedule latency of the worker's latest PollStart
/// (issue 18).
pub(crate) const TAG_SCHEDULE_LATENCY: u8 = 0x8C;
/// Length-prefixed: a text definition (span name, field text, mark name;
/// issue 19).
pub(crate) const TAG_TEXT: u8 = 0x89;
/// Length-prefixed: a span enter, exit or close.
pub(crate) const TAG_SPAN: u8 = 0x8A;
/// Length-prefixed: a mark (`pulse::mark!`).
pub(crate) const TAG_MARK: u8 = 0x8B;
/// Span record kinds (third field of a `0x8A` record).
const SPAN_ENTER: u64 = 0;
const SPAN_EXIT: u64 = 1;
const SPAN_CLOSE: u64 = 2;
/// Mark flag: a value follows the name.
const MARK_HAS_VALUE: u64 = 1;
/// Stack definition kinds (first field of a `0x87` record).
const STACK_DEF_MODULE: u64 = 0;
const STACK_DEF_FRAME: u64 = 1;
const STACK_DEF_STACK: u64 = 2;
/// Frame flag: inlined into the next (outer) frame.
const FRAME_INLINED: u64 = 1;
/// Stack flag: the unwinder stopped early.
const STACK_TRUNCATED: u64 = 1;
/// At most this many frames are kept per stack (innermost first).
pub(crate) const MAX_STACK_FRAMES: usize = 256;

/// Metadata flag: park, unpark and worker-sample records carry run-queue
/// wait.
pub(crate) const FLAG_HAS_RUN_DELAY: u64 = 1 << 0;

/// The longest compact record: a tag and four varints (PollStart with a
/// varint local queue and a location, or park/unpark).
pub(crate) const MAX_COMPACT_LEN: usize = 1 + 4 * MAX_VARINT_LEN;
/// The longest tag + payload length prefix.
pub(crate) const MAX_PREFIX_LEN: usize = 1 + MAX_VARINT_LEN;
/// Room one poll or park record takes at most, with a worker switch and a
/// set-time record before it.
const MAX_EVENT_LEN: usize = MAX_COMPACT_LEN + 2 * MAX_PREFIX_LEN;
/// Longest file name (in a location definition) or version string (in the
/// metadata) the encoder writes, in bytes; longer ones are cut at a
/// character boundary so these records never near [`MAX_RECORD_LEN`].
const MAX_NAME_LEN: usize = 4096;

/// The record kind of a compact tag, or `None` if v6 does not define it.
pub(crate) fn compact_kind(tag: u8) -> Option<RecordKind> {
    match tag {
        0x00..=0x1F => Some(RecordKind::PollEnd),
        0x20..=0x3F => Some(RecordKind::PollStart),
        TAG_WORKER_PARK | TAG_WORKER_PARK_NO_READING => Some(RecordKind::WorkerPark),
        TAG_WORKER_UNPARK | TAG_WORKER_UNPARK_NO_READING => Some(RecordKind::WorkerUnpark),
        TAG_WORKER_SWITCH => Some(RecordKind::WorkerSwitch),
        TAG_SET_TIME => Some(RecordKind::SetTime),
        _ => None,
    }
}

/// The record kind of a length-prefixed tag; [`RecordKind::Unknown`] for
/// tags this version does not define (they are skipped).
pub(crate) fn length_prefixed_kind(tag: u8) -> RecordKind {
    match tag {
        TAG_METADATA => RecordKind::Metadata,
        TAG_LOCATION => RecordKind::LocationDefinition,
        TAG_QUEUE_SAMPLE => RecordKind::QueueSample,
        TAG_WORKER_SAMPLE => RecordKind::WorkerSample,
        TAG_EVENTS_DROPPED => RecordKind::EventsDropped,
        TAG_WORKER_THREAD => RecordKind::WorkerThread,
        TAG_TRACE_END => RecordKind::TraceEnd,
        TAG_STACK_DEFINITION => RecordKind::StackDefinition,
        TAG_STACK_SAMPLE => RecordKind::StackSample,
        TAG_SCHEDULE_LATENCY => RecordKind::ScheduleLatency,
        TAG_TEXT => RecordKind::TextDefinition,
        TAG_SPAN => RecordKind::Span,
        TAG_MARK => RecordKind::Mark,
        tag => RecordKind::Unknown(tag),
    }
}

/// What the encoder remembers about one worker within one file.
#[derive(Clone, Copy, Debug, Default)]
struct EncoderWorker {
    prev_ticks: u64,
    prev_task: u64,
    prev_cpu: u64,
    prev_run_delay: u64,
    prev_local_queue: u32,
    /// The spawn location of this worker's previous PollStart in this file
    /// (address, 0 for none) and its id, which is therefore defined in
    /// this file.
    last_location: usize,
    last_location_id: u32,
}

/// The v6 half of an [`Encoder`](super::Encoder).
#[derive(Debug)]
pub(crate) struct V6Encoder {
    unit: u64,
    /// `log2(unit)` when the unit is a power of two (the default, 32 ns):
    /// a shift instead of a 64-bit division per event.
    unit_shift: Option<u32>,
    /// Location ids, for the encoder's whole life, keyed by address.
    location_ids: HashMap<usize, u32>,
    /// For location id `i`, entry `i - 1` is the file (a generation
    /// number) that last defined it.
    defined_in: Vec<u64>,
    /// The current file's generation; 0 before the first file.
    file: u64,
    /// Per-file worker state: worker index → slot in `workers`.
    slots: HashMap<u32, usize>,
    workers: Vec<EncoderWorker>,
    /// The worker the last switch record selected, and its slot.
    current: Option<(u32, usize)>,
    /// Payload of the length-prefixed record being built.
    scratch: Vec<u8>,
    /// The file (generation) that last defined each stack module, frame
    /// and stack id of the [`StackRegistry`].
    stack_defined: HashMap<(u64, u32), u64>,
    /// The file (generation) that last defined each text id of the
    /// [`TextRegistry`].
    text_defined: HashMap<u32, u64>,
    /// Per worker, the span of its previous span record in this file: a
    /// span record holds the change from it (`tracing`'s ids carry a
    /// generation in their high bits, 8-byte varints; an exit is mostly
    /// of the span just entered, a 1-byte change).
    prev_span: HashMap<u32, u64>,
}

impl V6Encoder {
    pub(crate) fn new(time_unit_nanos: u32) -> Self {
        V6Encoder {
            unit: u64::from(time_unit_nanos.max(1)),
            unit_shift: time_unit_nanos
                .is_power_of_two()
                .then(|| time_unit_nanos.trailing_zeros()),
            location_ids: HashMap::new(),
            defined_in: Vec::new(),
            file: 0,
            slots: HashMap::new(),
            workers: Vec::new(),
            current: None,
            scratch: Vec::new(),
            stack_defined: HashMap::new(),
            text_defined: HashMap::new(),
            prev_span: HashMap::new(),
        }
    }

    /// Resets per-file state and appends the metadata record (the header is
    /// the caller's).
    pub(crate) fn begin_file(&mut self, metadata: &TraceMetadata, out: &mut Vec<u8>) {
        self.file += 1;
        self.slots.clear();
        self.workers.clear();
        self.current = None;
        self.prev_span.clear();
        self.write_metadata(metadata, out);
    }

    fn write_metadata(&mut self, metadata: &TraceMetadata, out: &mut Vec<u8>) {
        let mut flags = 0;
        if metadata.has_run_delay {
            flags |= FLAG_HAS_RUN_DELAY;
        }
        let fixed = &mut self.scratch;
        fixed.clear();
        put_varint(fixed, self.unit);
        put_varint(fixed, metadata.worker_count.into());
        put_varint(fixed, metadata.start_unix_nanos);
        put_str(fixed, truncate_str(&metadata.pulse_version, MAX_NAME_LEN));
        put_varint(fixed, flags);
        put_varint(fixed, metadata.file_index);
        // Keep the configuration pairs that fit under the record limit, so a
        // reader never rejects the file for an oversized metadata record.
        let mut budget = MAX_RECORD_LEN as usize - fixed.len() - MAX_VARINT_LEN;
        let mut pairs = Vec::new();
        for (key, value) in &metadata.config {
            let mut pair = Vec::new();
            put_str(&mut pair, key);
            put_str(&mut pair, value);
            if pair.len() > budget {
                break;
            }
            budget -= pair.len();
            pairs.push(pair);
        }
        put_varint(fixed, pairs.len() as u64);
        for pair in &pairs {
            fixed.extend_from_slice(pair);
        }
        finish_record(out, TAG_METADATA, &self.scratch);
    }

    /// `timestamp_nanos` in the file's time unit.
    #[inline]
    fn ticks(&self, timestamp_nanos: u64) -> u64 {
        match self.unit_shift {
            Some(shift) => timestamp_nanos >> shift,
            None => timestamp_nanos / self.unit,
        }
    }

    pub(crate) fn encode(&mut self, event: &RecordedEvent, out: &mut Vec<u8>) {
        out.reserve(MAX_EVENT_LEN);
        self.encode_reserved(event, out);
    }

    /// Encodes a batch with one reservation for the poll and park records
    /// (a record past it, like a location definition, grows `out` as
    /// `Vec` does).
    pub(crate) fn encode_all(&mut self, events: &[RecordedEvent], out: &mut Vec<u8>) {
        out.reserve(events.len().saturating_mul(MAX_EVENT_LEN));
        for event in events {
            self.encode_reserved(event, out);
        }
    }

    /// Encodes what `events` yields, exactly as [`encode`](Self::encode)
    /// called for each would; returns how many. Generic, so a caller's
    /// iterator (pulse's compact records) is compiled into this loop and
    /// its events go from registers to bytes without being stored.
    #[inline]
    pub(crate) fn encode_iter(
        &mut self,
        events: impl Iterator<Item = RecordedEvent>,
        out: &mut Vec<u8>,
    ) -> u64 {
        let mut count = 0;
        for event in events {
            out.reserve(MAX_EVENT_LEN);
            self.encode_reserved(&event, out);
            count += 1;
        }
        count
    }

    #[inline(always)]
    fn encode_reserved(&mut self, event: &RecordedEvent, out: &mut Vec<u8>) {
        match *event {
            RecordedEvent::PollStart {
                timestamp_nanos,
                worker,
                local_queue,
                task_id,
                spawned_at,
            } => self.poll_start(
                timestamp_nanos,
                worker,
                local_queue,
                // Tokio's task ids start at 1, so 0 stands for "unknown".
                task_id.unwrap_or(0),
                spawned_at,
                out,
            ),
            RecordedEvent::PollEnd {
                timestamp_nanos,
                worker,
                local_queue,
            } => self.poll_end(timestamp_nanos, worker, local_queue, out),
            RecordedEvent::WorkerPark {
                timestamp_nanos,
                worker,
                local_queue,
                cpu_nanos,
                run_delay_nanos,
            } => self.park(
                TAG_WORKER_PARK,
                timestamp_nanos,
                worker,
                local_queue,
                cpu_nanos.map(|cpu| (cpu, run_delay_nanos.unwrap_or(0))),
                out,
            ),
            RecordedEvent::WorkerUnpark {
                timestamp_nanos,
                worker,
                local_queue,
                cpu_nanos,
                run_delay_nanos,
            } => self.park(
                TAG_WORKER_UNPARK,
                timestamp_nanos,
                worker,
                local_queue,
                cpu_nanos.map(|cpu| (cpu, run_delay_nanos.unwrap_or(0))),
                out,
            ),
            RecordedEvent::QueueSample {
                timestamp_nanos,
                global_queue,
            } => {
                self.scratch.clear();
                let ticks = self.ticks(timestamp_nanos);
                put_varint(&mut self.scratch, ticks);
                put_varint(&mut self.scratch, global_queue);
                finish_record(out, TAG_QUEUE_SAMPLE, &self.scratch);
            }
            RecordedEvent::WorkerSample {
                timestamp_nanos,
                worker,
                cpu_nanos,
                run_delay_nanos,
            } => {
                self.scratch.clear();
                let ticks = self.ticks(timestamp_nanos);
                put_varint(&mut self.scratch, ticks);
                put_varint(&mut self.scratch, worker.into());
                put_varint(&mut self.scratch, cpu_nanos);
                put_varint(&mut self.scratch, run_delay_nanos.unwrap_or(0));
                finish_record(out, TAG_WORKER_SAMPLE, &self.scratch);
            }
            RecordedEvent::EventsDropped {
                timestamp_nanos,
                count,
            } => {
                self.scratch.clear();
                let ticks = self.ticks(timestamp_nanos);
                put_varint(&mut self.scratch, ticks);
                put_varint(&mut self.scratch, count);
                finish_record(out, TAG_EVENTS_DROPPED, &self.scratch);
            }
            RecordedEvent::WorkerThread {
                timestamp_nanos,
                worker,
                tid,
                kind,
            } => {
                self.scratch.clear();
                let ticks = self.ticks(timestamp_nanos);
                put_varint(&mut self.scratch, ticks);
                put_varint(&mut self.scratch, worker.into());
                put_varint(&mut self.scratch, tid.into());
                put_varint(&mut self.scratch, kind as u64);
                finish_record(out, TAG_WORKER_THREAD, &self.scratch);
            }
            RecordedEvent::StackSample {
                timestamp_nanos,
                worker,
                kind,
                stack,
            } => {
                if !self.define_stack(stack, out) {
                    return;
                }
                self.scratch.clear();
                put_varint(&mut self.scratch, timestamp_nanos / self.unit);
                put_varint(&mut self.scratch, worker.into());
                put_varint(&mut self.scratch, u64::from(kind == StackKind::OnCpu));
                put_varint(&mut self.scratch, stack.0.into());
                finish_record(out, TAG_STACK_SAMPLE, &self.scratch);
            }
            RecordedEvent::ScheduleLatency {
                worker,
                latency_nanos,
                ..
            } => {
                // No time of its own: it is its PollStart's, the worker's
                // latest (a record old readers skip must not move the
                // worker's clock).
                self.scratch.clear();
                put_varint(&mut self.scratch, worker.into());
                put_varint(&mut self.scratch, latency_nanos);
                finish_record(out, TAG_SCHEDULE_LATENCY, &self.scratch);
            }
            RecordedEvent::SpanEnter {
                timestamp_nanos,
                worker,
                span,
                name,
                fields,
            } => {
                let name = self.define_text(name, out);
                let fields = self.define_text(fields, out);
                self.span_head(timestamp_nanos, worker, SPAN_ENTER, span);
                put_varint(&mut self.scratch, name.0.into());
                put_varint(&mut self.scratch, fields.0.into());
                finish_record(out, TAG_SPAN, &self.scratch);
            }
            RecordedEvent::SpanExit {
                timestamp_nanos,
                worker,
                span,
            } => {
                self.span_head(timestamp_nanos, worker, SPAN_EXIT, span);
                finish_record(out, TAG_SPAN, &self.scratch);
            }
            RecordedEvent::SpanClose {
                timestamp_nanos,
                worker,
                span,
            } => {
                self.span_head(timestamp_nanos, worker, SPAN_CLOSE, span);
                finish_record(out, TAG_SPAN, &self.scratch);
            }
            RecordedEvent::Mark {
                timestamp_nanos,
                worker,
                name,
                value,
            } => {
                let name = self.define_text(name, out);
                let dt = self.worker_relative(worker, timestamp_nanos);
                self.scratch.clear();
                put_varint(&mut self.scratch, worker.into());
                put_zigzag(&mut self.scratch, dt);
                put_varint(&mut self.scratch, name.0.into());
                match value {
                    Some(value) => {
                        put_varint(&mut self.scratch, MARK_HAS_VALUE);
                        put_varint(&mut self.scratch, value);
                    }
                    None => put_varint(&mut self.scratch, 0),
                }
                finish_record(out, TAG_MARK, &self.scratch);
            }
        }
    }

    /// A PollStart record (room reserved by the caller); `task_id` 0 is
    /// unknown.
    #[inline(always)]
    pub(crate) fn poll_start(
        &mut self,
        timestamp_nanos: u64,
        worker: u32,
        local_queue: u32,
        task_id: u64,
        spawned_at: SpawnLocation,
        out: &mut Vec<u8>,
    ) {
        let slot = self.select_worker(worker, out);
        let dt = self.advance(slot, timestamp_nanos, out);
        let new_location = self.new_location(slot, spawned_at, out);
        let state = &mut self.workers[slot];
        let task_delta = task_id.wrapping_sub(state.prev_task) as i64;
        state.prev_task = task_id;
        let queue_code = queue_change(
            &mut state.prev_local_queue,
            local_queue,
            POLL_START_QUEUE_BITS,
        );
        let location_bit = if new_location.is_some() {
            NEW_LOCATION
        } else {
            0
        };
        out.push(TAG_POLL_START | location_bit | queue_code);
        if queue_code == POLL_START_QUEUE_BITS {
            put_varint(out, local_queue.into());
        }
        put_varint(out, dt);
        put_zigzag(out, task_delta);
        if let Some(id) = new_location {
            put_varint(out, id.into());
        }
    }

    /// A PollEnd record (room reserved by the caller).
    #[inline(always)]
    pub(crate) fn poll_end(
        &mut self,
        timestamp_nanos: u64,
        worker: u32,
        local_queue: u32,
        out: &mut Vec<u8>,
    ) {
        let slot = self.select_worker(worker, out);
        let dt = self.advance(slot, timestamp_nanos, out);
        let state = &mut self.workers[slot];
        let queue_code = queue_change(
            &mut state.prev_local_queue,
            local_queue,
            POLL_END_QUEUE_BITS,
        );
        out.push(TAG_POLL_END | queue_code);
        if queue_code == POLL_END_QUEUE_BITS {
            put_varint(out, local_queue.into());
        }
        put_varint(out, dt);
    }

    /// A run of the current worker's PollStart and PollEnd records
    /// ([`V6PollRun`]) appending to `out`, or `None` if `worker` is not the
    /// worker the last switch selected, it has no previous PollStart in
    /// this file, or the time unit is not a power of two.
    #[inline(always)]
    pub(crate) fn poll_run<'a>(
        &'a mut self,
        worker: u32,
        out: &'a mut Vec<u8>,
    ) -> Option<V6PollRun<'a>> {
        V6PollRun::new(self, worker, out)
    }

    /// Reserves room for one poll or park record (with a worker switch and
    /// a set-time record before it).
    #[inline(always)]
    pub(crate) fn reserve_event(out: &mut Vec<u8>) {
        out.reserve(MAX_EVENT_LEN);
    }

    /// `timestamp_nanos` in ticks relative to `worker`'s previous compact
    /// record in this file (0 if it has none), which a reader knows without
    /// this record: old readers that skip it keep the same clock.
    fn worker_relative(&self, worker: u32, timestamp_nanos: u64) -> i64 {
        let prev = self
            .slots
            .get(&worker)
            .and_then(|&slot| self.workers.get(slot))
            .map_or(0, |state| state.prev_ticks);
        self.ticks(timestamp_nanos).wrapping_sub(prev) as i64
    }

    /// Starts a span record's payload in `scratch`: worker, time, kind, span.
    fn span_head(&mut self, timestamp_nanos: u64, worker: u32, kind: u64, span: SpanId) {
        let dt = self.worker_relative(worker, timestamp_nanos);
        let prev = self.prev_span.insert(worker, span.0).unwrap_or(0);
        let change = span.0.wrapping_sub(prev) as i64;
        self.scratch.clear();
        put_varint(&mut self.scratch, worker.into());
        put_zigzag(&mut self.scratch, dt);
        put_varint(&mut self.scratch, kind);
        put_zigzag(&mut self.scratch, change);
    }

    /// The id to write for `text`, appending its definition if this file
    /// lacks it. Text the registry does not know (another process's id)
    /// is written as the overflow text.
    fn define_text(&mut self, text: TextId, out: &mut Vec<u8>) -> TextId {
        if text == TextId::EMPTY || text == TextId::OVERFLOW {
            return text;
        }
        if self.text_defined.get(&text.0) == Some(&self.file) {
            return text;
        }
        let Some(value) = TextRegistry::global()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .text(text)
        else {
            return TextId::OVERFLOW;
        };
        self.text_defined.insert(text.0, self.file);
        self.scratch.clear();
        put_varint(&mut self.scratch, text.0.into());
        put_str(&mut self.scratch, &value);
        finish_record(out, TAG_TEXT, &self.scratch);
        text
    }

    /// Appends the end-of-trace record.
    pub(crate) fn encode_end(&mut self, end: &TraceEnd, out: &mut Vec<u8>) {
        let (code, detail) = end.reason.code();
        self.scratch.clear();
        put_varint(&mut self.scratch, end.timestamp_nanos / self.unit);
        put_varint(&mut self.scratch, code);
        put_varint(&mut self.scratch, detail);
        put_varint(&mut self.scratch, end.dropped_events);
        put_varint(&mut self.scratch, end.threads_still_recording.into());
        finish_record(out, TAG_TRACE_END, &self.scratch);
    }

    /// Whether `kind`/`id` still needs a definition in this file; marks it
    /// defined.
    fn needs_definition(&mut self, kind: u64, id: u32) -> bool {
        let file = self.file;
        self.stack_defined.insert((kind, id), file) != Some(file)
    }

    /// Appends the definitions of `stack`, its frames and their modules
    /// that this file lacks. `false` if the registry does not know the
    /// stack (the sample is then not written).
    fn define_stack(&mut self, stack: StackId, out: &mut Vec<u8>) -> bool {
        if self.stack_defined.get(&(STACK_DEF_STACK, stack.0)) == Some(&self.file) {
            return true;
        }
        let registry = StackRegistry::global()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(interned) = registry.stack(stack).cloned() else {
            return false;
        };
        let frame_ids: Vec<u32> = interned
            .frames
            .iter()
            .take(MAX_STACK_FRAMES)
            .copied()
            .collect();
        for &frame_id in &frame_ids {
            if !self.needs_definition(STACK_DEF_FRAME, frame_id) {
                continue;
            }
            let Some(frame) = registry.frame(frame_id).cloned() else {
                continue;
            };
            let module_id = frame.module.unwrap_or(0);
            if module_id != 0 && self.needs_definition(STACK_DEF_MODULE, module_id) {
                if let Some(module) = registry.module_by_id(module_id) {
                    self.scratch.clear();
                    put_varint(&mut self.scratch, STACK_DEF_MODULE);
                    put_varint(&mut self.scratch, module_id.into());
                    put_str(&mut self.scratch, truncate_str(&module.path, MAX_NAME_LEN));
                    put_str(&mut self.scratch, truncate_str(&module.build_id_hex(), 128));
                    finish_record(out, TAG_STACK_DEFINITION, &self.scratch);
                }
            }
            self.scratch.clear();
            put_varint(&mut self.scratch, STACK_DEF_FRAME);
            put_varint(&mut self.scratch, frame_id.into());
            put_varint(&mut self.scratch, module_id.into());
            put_str(
                &mut self.scratch,
                truncate_str(&frame.function, MAX_NAME_LEN),
            );
            put_str(
                &mut self.scratch,
                truncate_str(frame.file.as_deref().unwrap_or(""), MAX_NAME_LEN),
            );
            put_varint(&mut self.scratch, frame.line.unwrap_or(0).into());
            put_varint(
                &mut self.scratch,
                if frame.inlined { FRAME_INLINED } else { 0 },
            );
            finish_record(out, TAG_STACK_DEFINITION, &self.scratch);
        }
        drop(registry);
        self.needs_definition(STACK_DEF_STACK, stack.0);
        self.scratch.clear();
        put_varint(&mut self.scratch, STACK_DEF_STACK);
        put_varint(&mut self.scratch, stack.0.into());
        let truncated = interned.truncated || interned.frames.len() > MAX_STACK_FRAMES;
        put_varint(
            &mut self.scratch,
            if truncated { STACK_TRUNCATED } else { 0 },
        );
        put_varint(&mut self.scratch, frame_ids.len() as u64);
        for id in frame_ids {
            put_varint(&mut self.scratch, id.into());
        }
        finish_record(out, TAG_STACK_DEFINITION, &self.scratch);
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn park(
        &mut self,
        tag: u8,
        timestamp_nanos: u64,
        worker: u32,
        local_queue: u32,
        reading: Option<(u64, u64)>,
        out: &mut Vec<u8>,
    ) {
        let slot = self.select_worker(worker, out);
        let dt = self.advance(slot, timestamp_nanos, out);
        let state = &mut self.workers[slot];
        state.prev_local_queue = local_queue;
        let Some((cpu_nanos, run_delay_nanos)) = reading else {
            // No reading: the worker's previous CPU and run-queue values
            // stay what the next reading is a delta from.
            out.push(if tag == TAG_WORKER_PARK {
                TAG_WORKER_PARK_NO_READING
            } else {
                TAG_WORKER_UNPARK_NO_READING
            });
            put_varint(out, dt);
            put_varint(out, local_queue.into());
            return;
        };
        let cpu_delta = cpu_nanos.wrapping_sub(state.prev_cpu) as i64;
        let run_delay_delta = run_delay_nanos.wrapping_sub(state.prev_run_delay) as i64;
        state.prev_cpu = cpu_nanos;
        state.prev_run_delay = run_delay_nanos;
        out.push(tag);
        put_varint(out, dt);
        put_varint(out, local_queue.into());
        put_zigzag(out, cpu_delta);
        put_zigzag(out, run_delay_delta);
    }

    /// The slot of `worker`'s state, appending a worker switch if the
    /// current worker is another one.
    #[inline(always)]
    fn select_worker(&mut self, worker: u32, out: &mut Vec<u8>) -> usize {
        match self.current {
            Some((current, slot)) if current == worker => slot,
            _ => self.switch_worker(worker, out),
        }
    }

    fn switch_worker(&mut self, worker: u32, out: &mut Vec<u8>) -> usize {
        let next = self.workers.len();
        let slot = *self.slots.entry(worker).or_insert(next);
        if slot == next {
            self.workers.push(EncoderWorker::default());
        }
        out.push(TAG_WORKER_SWITCH);
        put_varint(out, worker.into());
        self.current = Some((worker, slot));
        slot
    }

    /// Moves the worker's clock to `timestamp_nanos` and returns the delta
    /// in ticks, appending a set-time record first if time went backwards.
    #[inline(always)]
    fn advance(&mut self, slot: usize, timestamp_nanos: u64, out: &mut Vec<u8>) -> u64 {
        let ticks = self.ticks(timestamp_nanos);
        let state = &mut self.workers[slot];
        if ticks < state.prev_ticks {
            out.push(TAG_SET_TIME);
            put_varint(out, ticks);
            state.prev_ticks = ticks;
        }
        let dt = ticks - state.prev_ticks;
        state.prev_ticks = ticks;
        dt
    }

    /// The id of `location` if it differs from the one of this worker's
    /// previous PollStart in this file (`None` if it is the same),
    /// appending its definition if this file has not defined it yet.
    #[inline]
    fn new_location(
        &mut self,
        slot: usize,
        location: SpawnLocation,
        out: &mut Vec<u8>,
    ) -> Option<u32> {
        let addr = location.addr();
        let state = &self.workers[slot];
        if state.last_location == addr {
            return None;
        }
        let had_location = state.last_location != 0;
        let previous_id = state.last_location_id;
        let id = self.location_id(location, out);
        let state = &mut self.workers[slot];
        state.last_location = addr;
        state.last_location_id = id;
        // Two addresses share an id only once ids ran out (both 0).
        (!had_location || id != previous_id).then_some(id)
    }

    /// The id of `location`, appending its definition if this file has not
    /// defined it yet. Ids run out after [`MAX_LOCATIONS`] locations; later
    /// ones are written as 0 (unknown).
    fn location_id(&mut self, location: SpawnLocation, out: &mut Vec<u8>) -> u32 {
        let next = self.defined_in.len() + 1;
        let id = match self.location_ids.get(&location.addr()) {
            Some(&id) => id,
            None => {
                let Some(id) = u32::try_from(next).ok().filter(|&id| id <= MAX_LOCATIONS) else {
                    return 0;
                };
                self.location_ids.insert(location.addr(), id);
                self.defined_in.push(0);
                id
            }
        };
        let Some(defined_in) = self.defined_in.get_mut(id as usize - 1) else {
            return 0;
        };
        if *defined_in != self.file {
            *defined_in = self.file;
            let site = location.0;
            self.scratch.clear();
            put_varint(&mut self.scratch, id.into());
            put_str(&mut self.scratch, truncate_str(site.file(), MAX_NAME_LEN));
            put_varint(&mut self.scratch, site.line().into());
            put_varint(&mut self.scratch, site.column().into());
            finish_record(out, TAG_LOCATION, &self.scratch);
        }
        id
    }
}

/// Bytes a [`V6PollRun`] collects before it appends them to the output.
const RUN_BYTES: usize = 512;
/// The longest record a run writes: tag, queue (5), time (10), task (10).
pub(crate) const RUN_RECORD_LEN: usize = 26;

/// PollStart and PollEnd records of one worker, encoded with the worker's
/// state in local variables (registers, in a loop the caller inlines)
/// instead of the encoder's tables, into a local array appended to the
/// output every [`RUN_BYTES`] and when the run is dropped (no vector
/// length or capacity to load and store per byte): the same bytes as
/// [`V6Encoder::poll_start`] and [`V6Encoder::poll_end`] give, for the
/// cases that need nothing but the record itself (same worker, same spawn
/// location as the worker's previous PollStart, time not going back). A
/// record of any other case is refused (`false`, nothing written), for
/// the caller to encode the ordinary way once the run is dropped. The
/// state goes back to the encoder when the run is dropped.
#[derive(Debug)]
pub(crate) struct V6PollRun<'a> {
    encoder: &'a mut V6Encoder,
    out: &'a mut Vec<u8>,
    bytes: [u8; RUN_BYTES],
    /// Bytes of `bytes` written, not yet appended to `out`.
    len: usize,
    slot: usize,
    shift: u32,
    prev_ticks: u64,
    prev_task: u64,
    prev_local_queue: u32,
    /// The address of the worker's previous PollStart's spawn location.
    location: usize,
}

impl<'a> V6PollRun<'a> {
    #[inline(always)]
    fn new(encoder: &'a mut V6Encoder, worker: u32, out: &'a mut Vec<u8>) -> Option<Self> {
        let shift = encoder.unit_shift?;
        let (current, slot) = encoder.current?;
        let state = *encoder.workers.get(slot)?;
        if current != worker || state.last_location == 0 {
            return None;
        }
        Some(V6PollRun {
            encoder,
            out,
            bytes: [0; RUN_BYTES],
            len: 0,
            slot,
            shift,
            prev_ticks: state.prev_ticks,
            prev_task: state.prev_task,
            prev_local_queue: state.prev_local_queue,
            location: state.last_location,
        })
    }

    /// The output's length with what the run holds.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.out.len() + self.len
    }

    /// Makes room for a record in `bytes`.
    #[inline(always)]
    fn room(&mut self) {
        if self.len > RUN_BYTES - RUN_RECORD_LEN {
            self.out.extend_from_slice(&self.bytes[..self.len]);
            self.len = 0;
        }
    }

    /// Writes `value` as a varint at `at` in `bytes`; returns the index
    /// after it. (The index is a local, not the run's field: stores into
    /// the array would otherwise make the compiler reload and store that
    /// field per byte.)
    #[inline(always)]
    fn varint(bytes: &mut [u8; RUN_BYTES], mut at: usize, mut value: u64) -> usize {
        while value >= 0x80 {
            bytes[at] = (value as u8) | 0x80;
            at += 1;
            value >>= 7;
        }
        bytes[at] = value as u8;
        at + 1
    }

    /// Appends a PollStart, or returns `false` (nothing written) if its
    /// location or time needs more than the record.
    #[inline(always)]
    pub(crate) fn poll_start(
        &mut self,
        timestamp_nanos: u64,
        local_queue: u32,
        task_id: u64,
        spawned_at: SpawnLocation,
    ) -> bool {
        let ticks = timestamp_nanos >> self.shift;
        if ticks < self.prev_ticks || spawned_at.addr() != self.location {
            return false;
        }
        let dt = ticks - self.prev_ticks;
        self.prev_ticks = ticks;
        let task_delta = task_id.wrapping_sub(self.prev_task) as i64;
        self.prev_task = task_id;
        let queue_code = queue_change(
            &mut self.prev_local_queue,
            local_queue,
            POLL_START_QUEUE_BITS,
        );
        self.room();
        let bytes = &mut self.bytes;
        let mut at = self.len;
        bytes[at] = TAG_POLL_START | queue_code;
        at += 1;
        if queue_code == POLL_START_QUEUE_BITS {
            at = Self::varint(bytes, at, local_queue.into());
        }
        at = Self::varint(bytes, at, dt);
        self.len = Self::varint(bytes, at, zigzag(task_delta));
        true
    }

    /// Appends a PollEnd, or returns `false` (nothing written) if its time
    /// goes back (it needs a set-time record first).
    #[inline(always)]
    pub(crate) fn poll_end(&mut self, timestamp_nanos: u64, local_queue: u32) -> bool {
        let ticks = timestamp_nanos >> self.shift;
        if ticks < self.prev_ticks {
            return false;
        }
        let dt = ticks - self.prev_ticks;
        self.prev_ticks = ticks;
        let queue_code = queue_change(&mut self.prev_local_queue, local_queue, POLL_END_QUEUE_BITS);
        self.room();
        let bytes = &mut self.bytes;
        let mut at = self.len;
        bytes[at] = TAG_POLL_END | queue_code;
        at += 1;
        if queue_code == POLL_END_QUEUE_BITS {
            at = Self::varint(bytes, at, local_queue.into());
        }
        self.len = Self::varint(bytes, at, dt);
        true
    }
}

impl Drop for V6PollRun<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.out.extend_from_slice(&self.bytes[..self.len]);
        if let Some(state) = self.encoder.workers.get_mut(self.slot) {
            state.prev_ticks = self.prev_ticks;
            state.prev_task = self.prev_task;
            state.prev_local_queue = self.prev_local_queue;
        }
    }
}

/// The tag bits for a poll record's local queue depth: the zigzag change
/// from the worker's previous depth if it fits below `escape`, otherwise
/// `escape` (and the caller writes the depth as a varint). Records the
/// depth as the worker's previous one.
#[inline(always)]
fn queue_change(previous: &mut u32, local_queue: u32, escape: u8) -> u8 {
    let change = i64::from(local_queue) - i64::from(*previous);
    *previous = local_queue;
    let code = zigzag(change);
    if code < u64::from(escape) {
        code as u8
    } else {
        escape
    }
}

/// Appends a length-prefixed record.
fn finish_record(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    out.push(tag);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// `s` cut to at most `max` bytes at a character boundary.
fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Reads the fields of one record, turning [`ReadError`]s into the right
/// error: truncation for a compact record (its end is the end of the
/// file), a missing field for a length-prefixed one (its payload is whole).
struct Fields<'a> {
    cursor: Cursor<'a>,
    record: RecordKind,
    compact: bool,
}

impl<'a> Fields<'a> {
    fn compact(data: &'a [u8], record: RecordKind) -> Self {
        Fields {
            cursor: Cursor::new(data),
            record,
            compact: true,
        }
    }

    fn payload(data: &'a [u8], record: RecordKind) -> Self {
        Fields {
            cursor: Cursor::new(data),
            record,
            compact: false,
        }
    }

    /// A varint; `fields_after` counts the record's fields after this one
    /// (each at least a byte) to report how short a truncated record is.
    #[inline]
    fn varint(&mut self, field: &'static str, fields_after: u64) -> Result<u64, TraceErrorKind> {
        match self.cursor.varint() {
            Ok(value) => Ok(value),
            Err(err) => Err(self.error(err, field, fields_after)),
        }
    }

    #[inline]
    fn zigzag(&mut self, field: &'static str, fields_after: u64) -> Result<i64, TraceErrorKind> {
        match self.cursor.zigzag() {
            Ok(value) => Ok(value),
            Err(err) => Err(self.error(err, field, fields_after)),
        }
    }

    #[inline]
    fn u32(&mut self, field: &'static str, fields_after: u64) -> Result<u32, TraceErrorKind> {
        let value = self.varint(field, fields_after)?;
        u32::try_from(value).map_err(|_| {
            Corruption::OutOfRange {
                record: self.record,
                field,
                value,
                max: u32::MAX.into(),
            }
            .into()
        })
    }

    /// A varint byte length and that many bytes of UTF-8 (payloads only).
    fn string(&mut self, field: &'static str) -> Result<&'a str, TraceErrorKind> {
        let len = self.varint(field, 0)?;
        let left = self.cursor.remaining();
        let bytes = usize::try_from(len)
            .ok()
            .filter(|&len| len <= left)
            .and_then(|len| self.cursor.bytes(len).ok())
            .ok_or(Corruption::LengthPastRecord {
                record: self.record,
                field,
                len,
                left: left as u64,
            })?;
        std::str::from_utf8(bytes).map_err(|_| {
            Corruption::InvalidUtf8 {
                record: self.record,
                field,
            }
            .into()
        })
    }

    fn error(&self, err: ReadError, field: &'static str, fields_after: u64) -> TraceErrorKind {
        let record = self.record;
        match err {
            ReadError::Incomplete if self.compact => {
                let available = (self.cursor.position() + self.cursor.remaining()) as u64;
                TraceErrorKind::Truncated {
                    record,
                    needed: available + 1 + fields_after,
                    available,
                    exact: false,
                }
            }
            ReadError::Incomplete => Corruption::MissingField { record, field }.into(),
            ReadError::VarintTooLong => Corruption::VarintTooLong { record, field }.into(),
            ReadError::VarintOverflow => Corruption::VarintOverflow { record, field }.into(),
        }
    }

    fn consumed(&self) -> usize {
        self.cursor.position()
    }
}

/// What the decoder remembers about one worker within one file.
#[derive(Clone, Copy, Debug, Default)]
struct DecoderWorker {
    prev_ticks: u64,
    prev_task: u64,
    prev_cpu: u64,
    prev_run_delay: u64,
    prev_local_queue: u32,
    /// The location id of this worker's previous PollStart in this file
    /// (checked to be defined in this file), if it had one.
    prev_location: Option<u64>,
}

/// A location definition and the file (generation) that last defined it.
#[derive(Debug)]
struct Definition {
    site: SpawnSite,
    file: u64,
}

/// Decoding state for v6 files; the location table lives across files.
#[derive(Debug, Default)]
pub(crate) struct V6Decoder {
    unit: u64,
    has_run_delay: bool,
    file: u64,
    slots: HashMap<u32, usize>,
    workers: Vec<DecoderWorker>,
    current: Option<(u32, usize)>,
    locations: HashMap<u32, Definition>,
    /// The end-of-trace record of this file, if no event followed it.
    pub(crate) end: Option<TraceEnd>,
    stack_modules: HashMap<u32, StackModule>,
    /// Frames and stacks, each with the file (generation) that last
    /// defined it: a file must define what it uses.
    stack_frames: HashMap<u32, (StackFrame, u64)>,
    stacks: HashMap<u32, (Stack, u64)>,
    /// Texts (span names, field text, mark names), each with the file
    /// (generation) that last defined it.
    texts: HashMap<u32, (std::sync::Arc<str>, u64)>,
    /// Per worker, the span of its previous span record in this file.
    prev_span: HashMap<u32, u64>,
}

impl V6Decoder {
    /// Forgets per-file state before a new file.
    pub(crate) fn begin_file(&mut self) {
        self.file += 1;
        self.unit = 0;
        self.has_run_delay = false;
        self.slots.clear();
        self.workers.clear();
        self.current = None;
        self.end = None;
        self.prev_span.clear();
    }

    /// The location defined under `id`, by this file or an earlier one.
    pub(crate) fn location(&self, id: LocationId) -> Option<&SpawnSite> {
        self.locations.get(&id.0).map(|definition| &definition.site)
    }

    /// The stack defined under `id`, by this file or an earlier one.
    pub(crate) fn stack(&self, id: StackId) -> Option<&Stack> {
        self.stacks.get(&id.0).map(|(stack, _)| stack)
    }

    /// The stack module defined under `id` (see [`StackFrame::module`]).
    pub(crate) fn stack_module(&self, id: u32) -> Option<&StackModule> {
        self.stack_modules.get(&id)
    }

    /// The text defined under `id`, by this file or an earlier one (the
    /// empty and overflow texts always).
    pub(crate) fn text(&self, id: TextId) -> Option<&str> {
        match id {
            TextId::EMPTY => Some(""),
            TextId::OVERFLOW => Some(OVERFLOW_TEXT),
            TextId(id) => self.texts.get(&id).map(|(text, _)| &**text),
        }
    }

    /// A text id read from a span or mark record, checked to be defined in
    /// this file.
    fn text_id(
        &self,
        fields: &mut Fields<'_>,
        field: &'static str,
    ) -> Result<TextId, TraceErrorKind> {
        let id = TextId(fields.u32(field, 0)?);
        if id == TextId::EMPTY || id == TextId::OVERFLOW {
            return Ok(id);
        }
        match self.texts.get(&id.0) {
            Some((_, file)) if *file == self.file => Ok(id),
            _ => Err(Corruption::UndefinedText { id: id.0.into() }.into()),
        }
    }

    /// The time of a span or mark record: `dt` ticks after `worker`'s
    /// previous compact record in this file (or after 0).
    fn worker_relative(
        &self,
        record: RecordKind,
        worker: u32,
        dt: i64,
    ) -> Result<u64, TraceErrorKind> {
        let prev = self
            .slots
            .get(&worker)
            .and_then(|&slot| self.workers.get(slot))
            .map_or(0, |state| state.prev_ticks);
        let ticks = prev
            .checked_add_signed(dt)
            .ok_or(Corruption::TimestampOverflow { record })?;
        self.timestamp(record, ticks)
    }

    /// Decodes a `0x87` stack definition payload into the tables.
    fn decode_stack_definition(&mut self, fields: &mut Fields<'_>) -> Result<(), TraceErrorKind> {
        let record = RecordKind::StackDefinition;
        let kind = fields.varint("kind", 0)?;
        let id = fields.u32("id", 0)?;
        if id == 0 {
            return Err(Corruption::Zero {
                record,
                field: "id",
            }
            .into());
        }
        match kind {
            STACK_DEF_MODULE => {
                let path = fields.string("path")?.to_owned();
                let hex = fields.string("build_id")?;
                let build_id = (0..hex.len() / 2)
                    .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                    .collect();
                self.stack_modules
                    .insert(id, StackModule { path, build_id });
            }
            STACK_DEF_FRAME => {
                let module = fields.u32("module", 0)?;
                let function = fields.string("function")?.to_owned();
                let file = fields.string("file")?.to_owned();
                let line = fields.u32("line", 0)?;
                let flags = fields.varint("flags", 0)?;
                self.stack_frames.insert(
                    id,
                    (
                        StackFrame {
                            function,
                            file: (!file.is_empty()).then_some(file),
                            line: (line != 0).then_some(line),
                            inlined: flags & FRAME_INLINED != 0,
                            module: (module != 0).then_some(module),
                        },
                        self.file,
                    ),
                );
            }
            STACK_DEF_STACK => {
                let flags = fields.varint("flags", 0)?;
                let count = fields.varint("frame count", 0)?;
                if count > MAX_STACK_FRAMES as u64 {
                    return Err(Corruption::OutOfRange {
                        record,
                        field: "frame count",
                        value: count,
                        max: MAX_STACK_FRAMES as u64,
                    }
                    .into());
                }
                let mut frames = Vec::new();
                for _ in 0..count {
                    let frame_id = fields.u32("frame", 0)?;
                    match self.stack_frames.get(&frame_id) {
                        Some((frame, file)) if *file == self.file => frames.push(frame.clone()),
                        _ => {
                            return Err(Corruption::UndefinedStackPart {
                                what: "frame",
                                id: frame_id.into(),
                            }
                            .into())
                        }
                    }
                }
                self.stacks.insert(
                    id,
                    (
                        Stack {
                            frames,
                            truncated: flags & STACK_TRUNCATED != 0,
                        },
                        self.file,
                    ),
                );
            }
            // Later revisions may define more kinds: skip them.
            _ => {}
        }
        Ok(())
    }

    /// Decodes a metadata payload and adopts its time unit and flags.
    pub(crate) fn decode_metadata(
        &mut self,
        payload: &[u8],
    ) -> Result<TraceMetadata, TraceErrorKind> {
        let record = RecordKind::Metadata;
        let mut fields = Fields::payload(payload, record);
        let time_unit_nanos = fields.u32("time_unit_nanos", 0)?;
        if time_unit_nanos == 0 {
            return Err(Corruption::Zero {
                record,
                field: "time_unit_nanos",
            }
            .into());
        }
        let worker_count = fields.u32("worker_count", 0)?;
        let start_unix_nanos = fields.varint("start_unix_nanos", 0)?;
        let pulse_version = fields.string("pulse_version")?.to_owned();
        let flags = fields.varint("flags", 0)?;
        let file_index = fields.varint("file_index", 0)?;
        let count = fields.varint("config count", 0)?;
        // Each pair takes at least two bytes, so a larger count is a lie.
        let left = fields.cursor.remaining() as u64;
        if count > left / 2 {
            return Err(Corruption::LengthPastRecord {
                record,
                field: "config count",
                len: count,
                left,
            }
            .into());
        }
        let mut config = Vec::new();
        for _ in 0..count {
            let key = fields.string("config key")?.to_owned();
            let value = fields.string("config value")?.to_owned();
            config.push((key, value));
        }
        // Bytes after the known fields belong to later format revisions.
        self.unit = time_unit_nanos.into();
        self.has_run_delay = flags & FLAG_HAS_RUN_DELAY != 0;
        Ok(TraceMetadata {
            time_unit_nanos,
            worker_count,
            start_unix_nanos,
            pulse_version,
            has_run_delay: flags & FLAG_HAS_RUN_DELAY != 0,
            file_index,
            config,
        })
    }

    /// Decodes the compact record at the start of `data`, which holds every
    /// byte left in the file or at least [`MAX_COMPACT_LEN`] bytes. Returns
    /// the event, if the record is one, and the record's length.
    pub(crate) fn decode_compact(
        &mut self,
        data: &[u8],
    ) -> Result<(Option<TraceEvent>, usize), TraceErrorKind> {
        let Some(&tag) = data.first() else {
            return Err(TraceErrorKind::Truncated {
                record: RecordKind::Record,
                needed: 1,
                available: 0,
                exact: false,
            });
        };
        let record = compact_kind(tag).ok_or(Corruption::UnknownTag { tag })?;
        let mut fields = Fields::compact(data, record);
        // Skip the tag.
        fields
            .cursor
            .u8()
            .map_err(|err| fields.error(err, "tag", 0))?;
        let event = match tag {
            TAG_WORKER_SWITCH => {
                let worker = fields.u32("worker", 0)?;
                let next = self.workers.len();
                if next >= MAX_WORKERS_PER_FILE && !self.slots.contains_key(&worker) {
                    return Err(Corruption::TooManyWorkers {
                        max: MAX_WORKERS_PER_FILE as u64,
                    }
                    .into());
                }
                let slot = *self.slots.entry(worker).or_insert(next);
                if slot == next {
                    self.workers.push(DecoderWorker::default());
                }
                self.current = Some((worker, slot));
                None
            }
            TAG_SET_TIME => {
                let ticks = fields.varint("ticks", 0)?;
                let (_, slot, mut state) = self.current_worker(record)?;
                state.prev_ticks = ticks;
                self.store(slot, state);
                None
            }
            TAG_WORKER_PARK | TAG_WORKER_UNPARK => Some(self.park(tag, &mut fields)?),
            TAG_WORKER_PARK_NO_READING | TAG_WORKER_UNPARK_NO_READING => {
                Some(self.park_without_reading(tag, &mut fields)?)
            }
            _ => Some(self.poll(tag, &mut fields)?),
        };
        Ok((event, fields.consumed()))
    }

    /// The current worker, its slot, and a copy of its state.
    fn current_worker(
        &self,
        record: RecordKind,
    ) -> Result<(u32, usize, DecoderWorker), TraceErrorKind> {
        self.current
            .and_then(|(worker, slot)| Some((worker, slot, *self.workers.get(slot)?)))
            .ok_or_else(|| Corruption::NoCurrentWorker { record }.into())
    }

    fn store(&mut self, slot: usize, state: DecoderWorker) {
        if let Some(stored) = self.workers.get_mut(slot) {
            *stored = state;
        }
    }

    fn timestamp(&self, record: RecordKind, ticks: u64) -> Result<u64, TraceErrorKind> {
        ticks
            .checked_mul(self.unit)
            .ok_or_else(|| Corruption::TimestampOverflow { record }.into())
    }

    /// Moves `state`'s clock `dt` ticks on; returns the time in nanoseconds.
    fn advance(
        &self,
        record: RecordKind,
        state: &mut DecoderWorker,
        dt: u64,
    ) -> Result<u64, TraceErrorKind> {
        let ticks = state
            .prev_ticks
            .checked_add(dt)
            .ok_or(Corruption::TimestampOverflow { record })?;
        let nanos = self.timestamp(record, ticks)?;
        state.prev_ticks = ticks;
        Ok(nanos)
    }

    fn poll(&mut self, tag: u8, fields: &mut Fields<'_>) -> Result<TraceEvent, TraceErrorKind> {
        let start = tag & 0xE0 == TAG_POLL_START;
        let record = fields.record;
        let (escape, new_location) = if start {
            (POLL_START_QUEUE_BITS, tag & NEW_LOCATION != 0)
        } else {
            (POLL_END_QUEUE_BITS, false)
        };
        let queue_code = tag & escape;
        // Fields after the local queue: dt, and for PollStart the task id
        // and maybe the location.
        let after_queue = if start {
            2 + u64::from(new_location)
        } else {
            1
        };
        let absolute_queue = if queue_code == escape {
            Some(fields.u32("local_queue", after_queue)?)
        } else {
            None
        };
        let dt = fields.varint("dt", after_queue - 1)?;
        let (task_delta, location) = if start {
            let task_delta = fields.zigzag("task_id", u64::from(new_location))?;
            let location = if new_location {
                Some(fields.varint("location", 0)?)
            } else {
                None
            };
            (task_delta, location)
        } else {
            (0, None)
        };
        let (worker, slot, mut state) = self.current_worker(record)?;
        let local_queue = match absolute_queue {
            Some(depth) => depth,
            None => {
                let change = unzigzag(queue_code.into());
                u32::try_from(i64::from(state.prev_local_queue) + change).map_err(|_| {
                    Corruption::QueueChangeOutOfRange {
                        record,
                        previous: state.prev_local_queue,
                        change,
                    }
                })?
            }
        };
        state.prev_local_queue = local_queue;
        let timestamp_nanos = self.advance(record, &mut state, dt)?;
        let event = if start {
            let id = match location {
                Some(id) => {
                    self.check_location(id)?;
                    id
                }
                None => state.prev_location.ok_or(Corruption::NoPreviousLocation)?,
            };
            state.prev_location = Some(id);
            state.prev_task = state.prev_task.wrapping_add(task_delta as u64);
            TraceEvent::PollStart {
                timestamp_nanos,
                worker,
                local_queue,
                task_id: Some(state.prev_task).filter(|&id| id != 0),
                // Checked to fit when it was defined.
                spawned_at: u32::try_from(id).ok().filter(|&id| id != 0).map(LocationId),
            }
        } else {
            TraceEvent::PollEnd {
                timestamp_nanos,
                worker,
                local_queue,
            }
        };
        self.store(slot, state);
        Ok(event)
    }

    /// Checks that location `id` (0: unknown) was defined in this file.
    fn check_location(&self, id: u64) -> Result<(), TraceErrorKind> {
        if id == 0 {
            return Ok(());
        }
        let defined = u32::try_from(id).ok().is_some_and(|id| {
            self.locations
                .get(&id)
                .is_some_and(|definition| definition.file == self.file)
        });
        if defined {
            Ok(())
        } else {
            Err(Corruption::UndefinedLocation { id }.into())
        }
    }

    fn park(&mut self, tag: u8, fields: &mut Fields<'_>) -> Result<TraceEvent, TraceErrorKind> {
        let record = fields.record;
        let dt = fields.varint("dt", 3)?;
        let local_queue = fields.u32("local_queue", 2)?;
        let cpu_delta = fields.zigzag("cpu_nanos", 1)?;
        let run_delay_delta = fields.zigzag("run_delay_nanos", 0)?;
        let (worker, slot, mut state) = self.current_worker(record)?;
        let timestamp_nanos = self.advance(record, &mut state, dt)?;
        state.prev_local_queue = local_queue;
        state.prev_cpu = state.prev_cpu.wrapping_add(cpu_delta as u64);
        state.prev_run_delay = state.prev_run_delay.wrapping_add(run_delay_delta as u64);
        self.store(slot, state);
        let cpu_nanos = Some(state.prev_cpu);
        let run_delay_nanos = self.has_run_delay.then_some(state.prev_run_delay);
        Ok(Self::park_event(
            tag == TAG_WORKER_PARK,
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            run_delay_nanos,
        ))
    }

    /// A park or unpark that took no reading (tags `0x44`, `0x45`).
    fn park_without_reading(
        &mut self,
        tag: u8,
        fields: &mut Fields<'_>,
    ) -> Result<TraceEvent, TraceErrorKind> {
        let record = fields.record;
        let dt = fields.varint("dt", 1)?;
        let local_queue = fields.u32("local_queue", 0)?;
        let (worker, slot, mut state) = self.current_worker(record)?;
        let timestamp_nanos = self.advance(record, &mut state, dt)?;
        state.prev_local_queue = local_queue;
        self.store(slot, state);
        Ok(Self::park_event(
            tag == TAG_WORKER_PARK_NO_READING,
            timestamp_nanos,
            worker,
            local_queue,
            None,
            None,
        ))
    }

    /// A WorkerPark (`park`) or WorkerUnpark event.
    fn park_event(
        park: bool,
        timestamp_nanos: u64,
        worker: u32,
        local_queue: u32,
        cpu_nanos: Option<u64>,
        run_delay_nanos: Option<u64>,
    ) -> TraceEvent {
        if park {
            TraceEvent::WorkerPark {
                timestamp_nanos,
                worker,
                local_queue,
                cpu_nanos,
                run_delay_nanos,
            }
        } else {
            TraceEvent::WorkerUnpark {
                timestamp_nanos,
                worker,
                local_queue,
                cpu_nanos,
                run_delay_nanos,
            }
        }
    }

    /// Decodes the whole payload of a length-prefixed record with a known
    /// tag (see [`length_prefixed_kind`]); unknown tags decode to nothing.
    pub(crate) fn decode_length_prefixed(
        &mut self,
        tag: u8,
        payload: &[u8],
    ) -> Result<Option<TraceEvent>, TraceErrorKind> {
        let record = length_prefixed_kind(tag);
        let mut fields = Fields::payload(payload, record);
        let event = match tag {
            TAG_METADATA => return Err(Corruption::DuplicateMetadata.into()),
            TAG_LOCATION => {
                let id = fields.u32("id", 0)?;
                if id == 0 {
                    return Err(Corruption::Zero {
                        record,
                        field: "id",
                    }
                    .into());
                }
                if id > MAX_LOCATIONS {
                    return Err(Corruption::OutOfRange {
                        record,
                        field: "id",
                        value: id.into(),
                        max: MAX_LOCATIONS.into(),
                    }
                    .into());
                }
                let file = fields.string("file")?.to_owned();
                let line = fields.u32("line", 0)?;
                let column = fields.u32("column", 0)?;
                self.locations.insert(
                    id,
                    Definition {
                        site: SpawnSite { file, line, column },
                        file: self.file,
                    },
                );
                None
            }
            TAG_QUEUE_SAMPLE => {
                let ticks = fields.varint("ticks", 0)?;
                let global_queue = fields.varint("global_queue", 0)?;
                Some(TraceEvent::QueueSample {
                    timestamp_nanos: self.timestamp(record, ticks)?,
                    global_queue,
                })
            }
            TAG_WORKER_SAMPLE => {
                let ticks = fields.varint("ticks", 0)?;
                let worker = fields.u32("worker", 0)?;
                let cpu_nanos = fields.varint("cpu_nanos", 0)?;
                let run_delay = fields.varint("run_delay_nanos", 0)?;
                Some(TraceEvent::WorkerSample {
                    timestamp_nanos: self.timestamp(record, ticks)?,
                    worker,
                    cpu_nanos,
                    run_delay_nanos: self.has_run_delay.then_some(run_delay),
                })
            }
            TAG_EVENTS_DROPPED => {
                let ticks = fields.varint("ticks", 0)?;
                let count = fields.varint("count", 0)?;
                Some(TraceEvent::EventsDropped {
                    timestamp_nanos: self.timestamp(record, ticks)?,
                    count,
                })
            }
            TAG_WORKER_THREAD => {
                let ticks = fields.varint("ticks", 0)?;
                let worker = fields.u32("worker", 0)?;
                let tid = fields.u32("tid", 0)?;
                let kind = fields.varint("kind", 0)?;
                // A kind this reader does not know says nothing it can use.
                match u8::try_from(kind).ok().and_then(WorkerThreadKind::from_u8) {
                    Some(kind) => Some(TraceEvent::WorkerThread {
                        timestamp_nanos: self.timestamp(record, ticks)?,
                        worker,
                        tid,
                        kind,
                    }),
                    None => None,
                }
            }
            TAG_TRACE_END => {
                let ticks = fields.varint("ticks", 0)?;
                let code = fields.varint("reason", 0)?;
                let detail = fields.varint("detail", 0)?;
                let dropped_events = fields.varint("dropped_events", 0)?;
                let threads_still_recording = fields.u32("threads_still_recording", 0)?;
                self.end = Some(TraceEnd {
                    timestamp_nanos: self.timestamp(record, ticks)?,
                    reason: EndReason::from_code(code, detail),
                    dropped_events,
                    threads_still_recording,
                });
                None
            }
            TAG_STACK_DEFINITION => {
                self.decode_stack_definition(&mut fields)?;
                None
            }
            TAG_TEXT => {
                let id = fields.u32("id", 0)?;
                if id == TextId::EMPTY.0 || id == TextId::OVERFLOW.0 {
                    return Err(Corruption::OutOfRange {
                        record,
                        field: "id",
                        value: id.into(),
                        max: (TextId::OVERFLOW.0 - 1).into(),
                    }
                    .into());
                }
                let text = fields.string("text")?;
                self.texts
                    .insert(id, (std::sync::Arc::from(text), self.file));
                None
            }
            TAG_SPAN => {
                let worker = fields.u32("worker", 0)?;
                let dt = fields.zigzag("dt", 0)?;
                let timestamp_nanos = self.worker_relative(record, worker, dt)?;
                let kind = fields.varint("kind", 0)?;
                let change = fields.zigzag("span", 0)?;
                let prev = self.prev_span.get(&worker).copied().unwrap_or(0);
                let span = SpanId(prev.wrapping_add(change as u64));
                self.prev_span.insert(worker, span.0);
                match kind {
                    SPAN_ENTER => {
                        let name = self.text_id(&mut fields, "name")?;
                        let span_fields = self.text_id(&mut fields, "fields")?;
                        Some(TraceEvent::SpanEnter {
                            timestamp_nanos,
                            worker,
                            span,
                            name,
                            fields: span_fields,
                        })
                    }
                    SPAN_EXIT => Some(TraceEvent::SpanExit {
                        timestamp_nanos,
                        worker,
                        span,
                    }),
                    SPAN_CLOSE => Some(TraceEvent::SpanClose {
                        timestamp_nanos,
                        worker,
                        span,
                    }),
                    // A kind a later revision added: nothing this reader
                    // can use.
                    _ => None,
                }
            }
            TAG_MARK => {
                let worker = fields.u32("worker", 0)?;
                let dt = fields.zigzag("dt", 0)?;
                let timestamp_nanos = self.worker_relative(record, worker, dt)?;
                let name = self.text_id(&mut fields, "name")?;
                let flags = fields.varint("flags", 0)?;
                let value = if flags & MARK_HAS_VALUE != 0 {
                    Some(fields.varint("value", 0)?)
                } else {
                    None
                };
                Some(TraceEvent::Mark {
                    timestamp_nanos,
                    worker,
                    name,
                    value,
                })
            }
            TAG_STACK_SAMPLE => {
                let ticks = fields.varint("ticks", 0)?;
                let worker = fields.u32("worker", 0)?;
                let kind = match fields.varint("kind", 0)? {
                    0 => StackKind::OffCpu,
                    _ => StackKind::OnCpu,
                };
                let stack = StackId(fields.u32("stack", 0)?);
                if !matches!(self.stacks.get(&stack.0), Some((_, file)) if *file == self.file) {
                    return Err(Corruption::UndefinedStackPart {
                        what: "stack",
                        id: stack.0.into(),
                    }
                    .into());
                }
                Some(TraceEvent::StackSample {
                    timestamp_nanos: self.timestamp(record, ticks)?,
                    worker,
                    kind,
                    stack,
                })
            }
            TAG_SCHEDULE_LATENCY => {
                let worker = fields.u32("worker", 1)?;
                let latency_nanos = fields.varint("latency_nanos", 0)?;
                // Its time is the worker's latest record's (its PollStart);
                // a worker without records in this file has no poll for it.
                match self
                    .slots
                    .get(&worker)
                    .and_then(|&slot| self.workers.get(slot))
                {
                    Some(state) => Some(TraceEvent::ScheduleLatency {
                        timestamp_nanos: self.timestamp(record, state.prev_ticks)?,
                        worker,
                        latency_nanos,
                    }),
                    None => None,
                }
            }
            _ => None,
        };
        Ok(event)
    }
}
