//! What the trace-reader fuzz target checks, shared by the libFuzzer target
//! (`fuzz_targets/trace_reader.rs`), the libFuzzer-free `replay` harness and
//! the normal test suite (`tests/tests/reliability_fuzz.rs` includes this
//! file), so all three hold the reader to the same promises:
//!
//! - no input makes it panic, loop or allocate much more than the input;
//! - it ends: at most one event per input byte, then `Ok(None)` or one
//!   error, after which it returns `Ok(None)`;
//! - an error is one line, `<file>: byte <offset>: <what>`, with the offset
//!   inside the input;
//! - reading the bytes in small pieces (as a pipe or a slow disk delivers
//!   them) gives exactly the same events, spawn sites and error as reading
//!   them at once: the 64 KiB streaming buffer never changes a result.
//!
//! The first byte of an input picks the piece size (1 to 16 bytes) for the
//! second reading; the whole input, first byte included, is the trace.

use pulse_trace::{
    Encoder, FormatVersion, SpawnSite, TraceError, TraceEvent, TraceMetadata, TraceReader,
};
use pulse_trace::{RecordedEvent, SpawnLocation};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Read;
use std::panic::Location;

/// The name errors give the input.
pub const NAME: &str = "fuzz.bin";

/// The reader's read buffer: the one allocation not proportional to input.
const READ_BUFFER: usize = 64 * 1024;

/// The most a reader may allocate at once for `len` bytes of input (the
/// bound `tests/format_errors.rs` holds it to): its read buffer, plus state
/// growing with the input, at most 64 bytes per input byte.
pub fn allocation_bound(len: usize) -> usize {
    READ_BUFFER + 64 * len + 4096
}

/// A reader that hands out at most `step` bytes per `read` call.
struct Pieces<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        buf[..n].copy_from_slice(head);
        self.data = rest;
        Ok(n)
    }
}

/// What one reading of an input produced.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    /// Every event before the end or the error.
    pub events: Vec<TraceEvent>,
    /// The spawn site of each PollStart that names one (`None` if the id
    /// is undefined, which must not happen).
    pub sites: Vec<Option<SpawnSite>>,
    /// The error, as displayed, and its offset.
    pub error: Option<(String, u64)>,
}

/// Reads `reader` to the end, checking the promises that do not need a
/// second reading.
fn read_all<R: Read>(reader: Result<TraceReader<R>, TraceError>, len: usize) -> Outcome {
    let mut outcome = Outcome {
        events: Vec::new(),
        sites: Vec::new(),
        error: None,
    };
    let mut reader = match reader {
        Ok(reader) => reader,
        Err(err) => {
            outcome.error = Some(checked(err, len));
            return outcome;
        }
    };
    // Every record takes at least one byte.
    for _ in 0..=len {
        match reader.next_event() {
            Ok(Some(event)) => {
                if let TraceEvent::PollStart {
                    spawned_at: Some(id),
                    ..
                } = event
                {
                    outcome.sites.push(reader.location(id).cloned());
                }
                outcome.events.push(event);
            }
            Ok(None) => return outcome,
            Err(err) => {
                outcome.error = Some(checked(err, len));
                assert!(
                    matches!(reader.next_event(), Ok(None)),
                    "the reader goes on after an error"
                );
                assert!(
                    matches!(reader.skip_file(), Ok(false)),
                    "a single input has no next file"
                );
                return outcome;
            }
        }
    }
    panic!("more events than input bytes");
}

/// Checks an error's form; returns its message and offset.
fn checked(err: TraceError, len: usize) -> (String, u64) {
    let message = err.to_string();
    let prefix = format!("{NAME}: byte {}: ", err.offset());
    assert!(message.starts_with(&prefix), "{message:?}");
    assert!(message.len() > prefix.len(), "{message:?} says nothing");
    assert!(!message.contains('\n'), "{message:?} is not one line");
    assert!(
        err.offset() <= len as u64,
        "{message:?}: offset past the input ({len} bytes)"
    );
    (message, err.offset())
}

/// Runs every check on one input; panics (with what went wrong) if the
/// reader breaks a promise. Allocation is checked by the callers that
/// install [`LargestAllocation`].
pub fn check(data: &[u8]) {
    let whole = read_all(TraceReader::from_reader(data, NAME), data.len());
    let step = usize::from(data.first().copied().unwrap_or(0) % 16) + 1;
    let pieces = Pieces { data, step };
    let in_pieces = read_all(TraceReader::from_reader(pieces, NAME), data.len());
    assert_eq!(whole, in_pieces, "reading {step} bytes at a time differs");
    assert!(
        whole.sites.iter().all(Option::is_some),
        "a PollStart names an undefined spawn location"
    );
}

/// [`check`], also asserting that no single allocation exceeded
/// [`allocation_bound`]. The program must use [`LargestAllocation`] as its
/// global allocator.
pub fn check_with_allocation_bound(data: &[u8]) {
    let ((), largest) = largest_allocation(|| check(data));
    assert!(
        largest <= allocation_bound(data.len()),
        "{largest} bytes allocated at once for {} bytes of input",
        data.len()
    );
}

/// The system allocator, noting the largest single allocation the current
/// thread makes inside [`largest_allocation`].
#[derive(Debug)]
pub struct LargestAllocation;

thread_local! {
    // `const` thread-locals without destructors never allocate, so the
    // allocator can use them without recursing.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; `note` only touches plain thread-local cells.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f`, returning its result and the largest single allocation it made
/// on this thread (0 unless [`LargestAllocation`] is the global allocator).
pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    ARMED.with(|armed| armed.set(true));
    let result = f();
    ARMED.with(|armed| armed.set(false));
    (result, LARGEST.with(Cell::get))
}

fn site(location: &'static Location<'static>) -> SpawnLocation {
    SpawnLocation(location)
}

/// Events of every kind: three workers, two spawn sites, deep and
/// changing local queues, a worker index reused a little back in time,
/// extreme values.
fn seed_events() -> Vec<RecordedEvent> {
    let sites = [site(Location::caller()), site(Location::caller())];
    let mut events = Vec::new();
    let mut t = 1_000_000u64;
    for i in 0..24u64 {
        let worker = (i % 3) as u32;
        t += 300 + i * 41;
        events.push(RecordedEvent::WorkerUnpark {
            timestamp_nanos: t,
            worker,
            local_queue: (i % 4) as u32,
            cpu_nanos: Some(2_000_000 + i * 70_000),
            run_delay_nanos: Some(i * 900),
        });
        for j in 0..3u64 {
            events.push(RecordedEvent::PollStart {
                timestamp_nanos: t + 90 * j,
                worker,
                local_queue: ((i * 11 + j * 7) % 70) as u32,
                task_id: Some(500 + (i * 17 + j) % 61),
                spawned_at: sites[(j % 2) as usize],
            });
            events.push(RecordedEvent::PollEnd {
                timestamp_nanos: t + 90 * j + 50,
                worker,
                local_queue: ((i * 11 + j * 7) % 70) as u32,
            });
        }
        if i % 4 == 0 {
            events.push(RecordedEvent::QueueSample {
                timestamp_nanos: t,
                global_queue: i * 300,
            });
            events.push(RecordedEvent::WorkerSample {
                timestamp_nanos: t,
                worker,
                cpu_nanos: u64::MAX - i,
                run_delay_nanos: Some(i),
            });
        }
        if i == 9 {
            events.push(RecordedEvent::PollEnd {
                timestamp_nanos: t - 40_000,
                worker: 0,
                local_queue: u32::MAX,
            });
            events.push(RecordedEvent::EventsDropped {
                timestamp_nanos: t,
                count: 4_321,
            });
        }
        events.push(RecordedEvent::WorkerPark {
            timestamp_nanos: t + 350,
            worker,
            local_queue: 0,
            cpu_nanos: Some(2_000_000 + i * 70_000 + 300),
            run_delay_nanos: Some(i * 900 + 10),
        });
    }
    events
}

/// Inputs to start fuzzing from, by name: traces in both versions with
/// every record kind, one with an unknown record kind, and bare headers.
/// The first byte of each is the `T` of the magic, which picks 5-byte
/// pieces for the second reading.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for version in FormatVersion::ALL {
        let name = format!("v{}", version.number());
        let mut bytes = Vec::new();
        let mut encoder = Encoder::new(version, TraceMetadata::default());
        encoder.begin_file(0, &mut bytes);
        seeds.push((format!("{name}-empty"), bytes.clone()));
        let metadata = TraceMetadata {
            time_unit_nanos: 10,
            worker_count: 3,
            has_run_delay: true,
            config: vec![("flush_ms".into(), "250".into())],
            ..TraceMetadata::default()
        };
        let mut encoder = Encoder::new(version, metadata);
        let mut bytes = Vec::new();
        encoder.begin_file(0, &mut bytes);
        for event in seed_events() {
            encoder.encode(&event, &mut bytes);
        }
        if version == FormatVersion::V6 {
            // An unknown length-prefixed record, which readers skip.
            let mut unknown = bytes.clone();
            unknown.extend_from_slice(&[0xA0, 3, 1, 2, 3]);
            seeds.push((format!("{name}-unknown-record"), unknown));
        }
        seeds.push((format!("{name}-all-kinds"), bytes));
    }
    seeds
}
