//! The seed design's v5 layout: fixed-width little-endian records, µs
//! timestamps, u8 depths. Encoding saturates every field; nothing wraps.

use crate::error::{Corruption, RecordKind, TraceErrorKind};
use crate::event::RecordedEvent;
use crate::event::TraceEvent;

/// Wire code of a PollStart whose local queue is empty.
pub(crate) const CODE_POLL_START: u8 = 0;
/// Wire code of a PollEnd whose local queue is empty.
pub(crate) const CODE_POLL_END: u8 = 1;
/// Wire code of a WorkerPark.
pub(crate) const CODE_WORKER_PARK: u8 = 2;
/// Wire code of a WorkerUnpark.
pub(crate) const CODE_WORKER_UNPARK: u8 = 3;
/// Wire code of a QueueSample.
pub(crate) const CODE_QUEUE_SAMPLE: u8 = 4;
/// Wire code of a PollStart that carries a local queue depth.
pub(crate) const CODE_POLL_START_QUEUED: u8 = 5;
/// Wire code of a PollEnd that carries a local queue depth.
pub(crate) const CODE_POLL_END_QUEUED: u8 = 6;

/// Size of a poll record without / with its local queue byte, a park or
/// unpark record, and a queue sample record.
pub(crate) const POLL_LEN: usize = 6;
pub(crate) const POLL_QUEUED_LEN: usize = 7;
pub(crate) const WORKER_LEN: usize = 11;
pub(crate) const QUEUE_SAMPLE_LEN: usize = 6;
/// The longest v5 record.
pub(crate) const MAX_RECORD_LEN: usize = WORKER_LEN;

#[inline]
fn sat_u8(value: u64) -> u8 {
    u8::try_from(value).unwrap_or(u8::MAX)
}

#[inline]
fn sat_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[inline]
fn micros(nanos: u64) -> [u8; 4] {
    sat_u32(nanos / 1_000).to_le_bytes()
}

/// Appends `event` as a v5 record. Events v5 cannot carry (WorkerSample,
/// EventsDropped, WorkerThread, StackSample, spans and marks) append
/// nothing.
pub(crate) fn encode(event: &RecordedEvent, out: &mut Vec<u8>) {
    match *event {
        RecordedEvent::PollStart {
            timestamp_nanos,
            worker,
            local_queue,
            ..
        } => poll(
            CODE_POLL_START,
            CODE_POLL_START_QUEUED,
            timestamp_nanos,
            worker,
            local_queue,
            out,
        ),
        RecordedEvent::PollEnd {
            timestamp_nanos,
            worker,
            local_queue,
        } => poll(
            CODE_POLL_END,
            CODE_POLL_END_QUEUED,
            timestamp_nanos,
            worker,
            local_queue,
            out,
        ),
        RecordedEvent::WorkerPark {
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            ..
        } => park(
            CODE_WORKER_PARK,
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            out,
        ),
        RecordedEvent::WorkerUnpark {
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            ..
        } => park(
            CODE_WORKER_UNPARK,
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            out,
        ),
        RecordedEvent::QueueSample {
            timestamp_nanos,
            global_queue,
        } => {
            out.push(CODE_QUEUE_SAMPLE);
            out.extend_from_slice(&micros(timestamp_nanos));
            out.push(sat_u8(global_queue));
        }
        RecordedEvent::WorkerSample { .. }
        | RecordedEvent::EventsDropped { .. }
        | RecordedEvent::WorkerThread { .. }
        | RecordedEvent::StackSample { .. }
        | RecordedEvent::ScheduleLatency { .. }
        | RecordedEvent::SpanEnter { .. }
        | RecordedEvent::SpanExit { .. }
        | RecordedEvent::SpanClose { .. }
        | RecordedEvent::Mark { .. } => {}
    }
}

fn poll(code: u8, queued_code: u8, nanos: u64, worker: u32, local_queue: u32, out: &mut Vec<u8>) {
    let queued = local_queue > 0;
    out.push(if queued { queued_code } else { code });
    out.extend_from_slice(&micros(nanos));
    out.push(sat_u8(worker.into()));
    if queued {
        out.push(sat_u8(local_queue.into()));
    }
}

/// A park or unpark; a hook that took no reading (`cpu_nanos: None`) is
/// written with `cpu_us` 0, which the reader returns as `None`.
fn park(
    code: u8,
    nanos: u64,
    worker: u32,
    local_queue: u32,
    cpu_nanos: Option<u64>,
    out: &mut Vec<u8>,
) {
    out.push(code);
    out.extend_from_slice(&micros(nanos));
    out.push(sat_u8(worker.into()));
    out.push(sat_u8(local_queue.into()));
    out.extend_from_slice(&micros(cpu_nanos.unwrap_or(0)));
}

/// Decodes the record at the start of `data`, which holds every byte left
/// in the file or at least [`MAX_RECORD_LEN`] bytes. Returns the event and
/// the record's length.
pub(crate) fn decode(data: &[u8]) -> Result<(TraceEvent, usize), TraceErrorKind> {
    let Some(&code) = data.first() else {
        return Err(truncated(RecordKind::Record, 1, 0));
    };
    let (record, len) = match code {
        CODE_POLL_START => (RecordKind::PollStart, POLL_LEN),
        CODE_POLL_END => (RecordKind::PollEnd, POLL_LEN),
        CODE_POLL_START_QUEUED => (RecordKind::PollStart, POLL_QUEUED_LEN),
        CODE_POLL_END_QUEUED => (RecordKind::PollEnd, POLL_QUEUED_LEN),
        CODE_WORKER_PARK => (RecordKind::WorkerPark, WORKER_LEN),
        CODE_WORKER_UNPARK => (RecordKind::WorkerUnpark, WORKER_LEN),
        CODE_QUEUE_SAMPLE => (RecordKind::QueueSample, QUEUE_SAMPLE_LEN),
        code => return Err(Corruption::UnknownEventCode { code }.into()),
    };
    let micros_to_nanos = |bytes: [u8; 4]| u64::from(u32::from_le_bytes(bytes)) * 1_000;
    let event = match (code, data) {
        (CODE_POLL_START | CODE_POLL_START_QUEUED, &[_, t0, t1, t2, t3, worker, ref rest @ ..]) => {
            TraceEvent::PollStart {
                timestamp_nanos: micros_to_nanos([t0, t1, t2, t3]),
                worker: worker.into(),
                local_queue: queued_depth(code == CODE_POLL_START_QUEUED, rest)
                    .ok_or_else(|| truncated(record, len, data.len()))?,
                task_id: None,
                spawned_at: None,
            }
        }
        (CODE_POLL_END | CODE_POLL_END_QUEUED, &[_, t0, t1, t2, t3, worker, ref rest @ ..]) => {
            TraceEvent::PollEnd {
                timestamp_nanos: micros_to_nanos([t0, t1, t2, t3]),
                worker: worker.into(),
                local_queue: queued_depth(code == CODE_POLL_END_QUEUED, rest)
                    .ok_or_else(|| truncated(record, len, data.len()))?,
            }
        }
        (
            CODE_WORKER_PARK | CODE_WORKER_UNPARK,
            &[_, t0, t1, t2, t3, worker, local_queue, c0, c1, c2, c3, ..],
        ) => {
            let timestamp_nanos = micros_to_nanos([t0, t1, t2, t3]);
            let worker = worker.into();
            let local_queue = local_queue.into();
            // 0 µs: no reading (a worker thread has always run for more).
            let cpu_nanos = Some(micros_to_nanos([c0, c1, c2, c3])).filter(|&cpu| cpu != 0);
            if code == CODE_WORKER_PARK {
                TraceEvent::WorkerPark {
                    timestamp_nanos,
                    worker,
                    local_queue,
                    cpu_nanos,
                    run_delay_nanos: None,
                }
            } else {
                TraceEvent::WorkerUnpark {
                    timestamp_nanos,
                    worker,
                    local_queue,
                    cpu_nanos,
                    run_delay_nanos: None,
                }
            }
        }
        (CODE_QUEUE_SAMPLE, &[_, t0, t1, t2, t3, global_queue, ..]) => TraceEvent::QueueSample {
            timestamp_nanos: micros_to_nanos([t0, t1, t2, t3]),
            global_queue: global_queue.into(),
        },
        _ => return Err(truncated(record, len, data.len())),
    };
    Ok((event, len))
}

/// The local queue depth of a poll record: the byte after the worker for
/// the "queued" codes, 0 otherwise. `None` if that byte is missing.
fn queued_depth(queued: bool, rest: &[u8]) -> Option<u32> {
    if queued {
        rest.first().map(|&depth| depth.into())
    } else {
        Some(0)
    }
}

fn truncated(record: RecordKind, needed: usize, available: usize) -> TraceErrorKind {
    TraceErrorKind::Truncated {
        record,
        needed: needed as u64,
        available: available as u64,
        exact: true,
    }
}
