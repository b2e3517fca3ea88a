//! Reading damaged traces: files cut short at every byte, rotated sets
//! whose last file was cut by a crash, and random or mutated bytes. The
//! reader must return the sound events and then one error naming the file
//! and the offset — never panic, never loop, never allocate much more than
//! the input.

use proptest::prelude::*;
use pulse_trace::{
    rotated_path, Encoder, FormatVersion, TraceError, TraceEvent, TraceMetadata, TraceReader,
};
use pulse_trace::{RecordedEvent, SpawnLocation};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::Location;
use std::path::Path;

/// The system allocator, noting the largest single allocation the current
/// thread makes while [`largest_allocation`] runs.
struct LargestAllocation;

thread_local! {
    // `const` thread-locals without destructors never allocate, so using
    // them inside the allocator cannot recurse.
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

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// Runs `f`, returning its result and the largest single allocation it
/// made on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    ARMED.with(|armed| armed.set(true));
    let result = f();
    ARMED.with(|armed| armed.set(false));
    (result, LARGEST.with(Cell::get))
}

/// The reader's read buffer, the one allocation not proportional to input.
const READ_BUFFER: usize = 64 * 1024;

/// What a reader may allocate at once for `len` bytes of input: its read
/// buffer, plus per-worker state (at most 56 bytes per 2-byte worker
/// switch, doubled by `Vec` growth).
fn allocation_bound(len: usize) -> usize {
    READ_BUFFER + 64 * len + 4096
}

fn site_a() -> SpawnLocation {
    SpawnLocation(Location::caller())
}

fn site_b() -> SpawnLocation {
    SpawnLocation(Location::caller())
}

/// A trace with every event kind, several workers, two spawn sites, a
/// timestamp going backwards, deep local queues and extreme values.
fn sample_events() -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    let mut t = 1_000_000;
    for i in 0..40u64 {
        let worker = (i % 3) as u32;
        t += 350 + i * 37;
        events.push(RecordedEvent::WorkerUnpark {
            timestamp_nanos: t,
            worker,
            local_queue: 0,
            cpu_nanos: Some(5_000_000 + i * 90_000),
            run_delay_nanos: Some(i * 1_000),
        });
        for j in 0..3u64 {
            events.push(RecordedEvent::PollStart {
                timestamp_nanos: t + 100 * j,
                worker,
                local_queue: (i * 7 + j) as u32 % 300,
                task_id: Some(1_000 + (i * 13 + j * 5) % 97),
                spawned_at: if j == 1 { site_b() } else { site_a() },
            });
            events.push(RecordedEvent::PollEnd {
                timestamp_nanos: t + 100 * j + 60,
                worker,
                local_queue: (i * 7 + j) as u32 % 300,
            });
        }
        if i % 5 == 0 {
            events.push(RecordedEvent::QueueSample {
                timestamp_nanos: t,
                global_queue: i * 100,
            });
            events.push(RecordedEvent::WorkerSample {
                timestamp_nanos: t,
                worker,
                cpu_nanos: u64::MAX - i,
                run_delay_nanos: Some(i),
            });
        }
        if i == 17 {
            // A second thread reusing worker index 0, a little behind.
            events.push(RecordedEvent::PollEnd {
                timestamp_nanos: t - 50_000,
                worker: 0,
                local_queue: u32::MAX,
            });
            events.push(RecordedEvent::EventsDropped {
                timestamp_nanos: t,
                count: 12_345,
            });
        }
        events.push(RecordedEvent::WorkerPark {
            timestamp_nanos: t + 400,
            worker,
            local_queue: 1,
            cpu_nanos: Some(5_000_000 + i * 90_000 + 350),
            run_delay_nanos: Some(i * 1_000 + 20),
        });
    }
    events
}

/// The bytes of a one-file trace of [`sample_events`], and where the bytes
/// of the header and of each event end.
fn sample_trace(version: FormatVersion) -> (Vec<u8>, Vec<usize>) {
    let metadata = TraceMetadata {
        time_unit_nanos: 10,
        has_run_delay: true,
        config: vec![("flush_ms".into(), "250".into())],
        ..TraceMetadata::default()
    };
    let mut encoder = Encoder::new(version, metadata);
    let mut bytes = Vec::new();
    encoder.begin_file(0, &mut bytes);
    let mut ends = vec![bytes.len()];
    for event in sample_events() {
        encoder.encode(&event, &mut bytes);
        if ends.last() != Some(&bytes.len()) {
            ends.push(bytes.len());
        }
    }
    (bytes, ends)
}

/// Every event of the file at `path` until the end or the first error.
fn read_file(path: &Path) -> (Vec<TraceEvent>, Option<TraceError>) {
    let mut reader = match TraceReader::open(path) {
        Ok(reader) => reader,
        Err(err) => return (Vec::new(), Some(err)),
    };
    let mut events = Vec::new();
    for event in &mut reader {
        match event {
            Ok(event) => events.push(event),
            Err(err) => return (events, Some(err)),
        }
    }
    (events, None)
}

/// Every event until the end or the first error, asserting that reading
/// terminates and that the reader stays stopped after an error.
fn read_bytes(bytes: &[u8]) -> (Vec<TraceEvent>, Option<TraceError>) {
    let mut reader = match TraceReader::from_reader(bytes, "fuzz.bin") {
        Ok(reader) => reader,
        Err(err) => return (Vec::new(), Some(err)),
    };
    let mut events = Vec::new();
    // Every record takes at least one byte.
    for _ in 0..=bytes.len() {
        match reader.next_event() {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return (events, None),
            Err(err) => {
                assert!(matches!(reader.next_event(), Ok(None)));
                return (events, Some(err));
            }
        }
    }
    panic!("more events than bytes");
}

fn check_truncation_at_every_byte(version: FormatVersion) {
    let (bytes, ends) = sample_trace(version);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    std::fs::write(&path, &bytes).unwrap();
    let (all, err) = read_file(&path);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(all.len(), ends.len() - 1);

    let mut errors = 0;
    for cut in 0..bytes.len() {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let (events, err) = read_file(&path);
        // The events whose bytes all precede the cut, exactly.
        let whole = ends.iter().skip(1).take_while(|&&end| end <= cut).count();
        assert_eq!(events, all[..whole], "{version:?} cut at {cut}");
        let at_event_boundary = ends.contains(&cut);
        match err {
            None => assert!(
                cut >= ends[0],
                "{version:?} cut at {cut}: a cut header or metadata must be an error"
            ),
            Some(err) => {
                errors += 1;
                assert!(!at_event_boundary, "{version:?} cut at {cut}: {err}");
                assert!(err.is_truncation(), "{version:?} cut at {cut}: {err}");
                assert_eq!(err.path(), path);
                // The failing record starts after the last whole event (in
                // the header or metadata if the cut is there) and before
                // the cut.
                let failing = if cut < ends[0] {
                    0..=12
                } else {
                    ends[whole] as u64..=cut as u64
                };
                assert!(
                    failing.contains(&err.offset()),
                    "{version:?} cut at {cut}: {err}"
                );
                let message = err.to_string();
                assert!(
                    message.starts_with(&format!(
                        "{}: byte {}: truncated ",
                        path.display(),
                        err.offset()
                    )),
                    "{message}"
                );
                assert!(!message.contains('\n'));
            }
        }
    }
    // Cuts inside records are caught (some cuts fall between the records
    // of one event, e.g. after a worker switch, and read as a clean end).
    assert!(errors > bytes.len() / 2, "{errors} errors");
}

#[test]
fn truncating_a_v6_trace_at_every_byte() {
    check_truncation_at_every_byte(FormatVersion::V6);
}

#[test]
fn truncating_a_v5_trace_at_every_byte() {
    check_truncation_at_every_byte(FormatVersion::V5);
}

#[test]
fn crash_truncated_last_file_of_a_rotated_set() {
    let events = sample_events();
    let (first_half, second_half) = events.split_at(events.len() / 2);
    let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("trace.bin");
    let mut files = Vec::new();
    for (index, events) in [first_half, second_half].into_iter().enumerate() {
        let mut bytes = Vec::new();
        encoder.begin_file(index as u64, &mut bytes);
        for event in events {
            encoder.encode(event, &mut bytes);
        }
        files.push(bytes);
    }
    let last = files[1].len() - 3;
    std::fs::write(rotated_path(&base, 0), &files[0]).unwrap();
    std::fs::write(rotated_path(&base, 1), &files[1][..last]).unwrap();

    let mut reader = TraceReader::open_rotated(&base).unwrap();
    let mut count = 0;
    let err = loop {
        match reader.next_event() {
            Ok(Some(_)) => count += 1,
            Ok(None) => panic!("the cut record went unnoticed"),
            Err(err) => break err,
        }
    };
    assert!(count >= first_half.len() && count < events.len());
    assert!(err.is_truncation(), "{err}");
    assert_eq!(err.path(), rotated_path(&base, 1));
    assert!(err.offset() < last as u64);
    assert_eq!(reader.metadata().map(|m| m.file_index), Some(1));
}

#[test]
fn huge_length_claims_in_tiny_files_allocate_nothing_big() {
    let (bytes, ends) = sample_trace(FormatVersion::V6);
    let header_and_metadata = &bytes[..ends[0]];
    // A location definition claiming 1 MiB, an unknown record claiming the
    // same, and a metadata-sized config count, each in a file of ~100 bytes.
    for tail in [
        &[0x81, 0x80, 0x80, 0x40, 1, 2, 3][..],
        &[0xF0, 0x80, 0x80, 0x40, 1, 2, 3],
        &[0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
    ] {
        let mut file = header_and_metadata.to_vec();
        file.extend_from_slice(tail);
        let ((_, err), largest) = largest_allocation(|| read_bytes(&file));
        assert!(err.is_some());
        assert!(
            largest <= allocation_bound(file.len()),
            "{largest} bytes for a {}-byte file",
            file.len()
        );
    }
}

/// Bytes that start like a trace of `version` (header, and for v6 the
/// metadata), then go wrong.
fn with_valid_start(version: FormatVersion, tail: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    Encoder::new(version, TraceMetadata::default()).begin_file(0, &mut bytes);
    bytes.extend_from_slice(tail);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (_, largest) = largest_allocation(|| read_bytes(&bytes));
        prop_assert!(largest <= allocation_bound(bytes.len()));
    }

    #[test]
    fn random_records_after_a_valid_start_never_panic(
        v6 in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let version = if v6 { FormatVersion::V6 } else { FormatVersion::V5 };
        let bytes = with_valid_start(version, &tail);
        let ((_, err), largest) = largest_allocation(|| read_bytes(&bytes));
        prop_assert!(largest <= allocation_bound(bytes.len()));
        if let Some(err) = err {
            prop_assert!(err.offset() <= bytes.len() as u64);
            prop_assert!(err.to_string().starts_with("fuzz.bin: byte "));
        }
    }

    #[test]
    fn mutated_traces_never_panic(
        v6 in any::<bool>(),
        mutations in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<proptest::sample::Index>(),
    ) {
        let version = if v6 { FormatVersion::V6 } else { FormatVersion::V5 };
        let (mut bytes, _) = sample_trace(version);
        for (at, byte) in mutations {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let ((_, err), largest) = largest_allocation(|| read_bytes(&bytes));
        prop_assert!(largest <= allocation_bound(bytes.len()));
        if let Some(err) = err {
            prop_assert!(err.offset() <= bytes.len() as u64);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_files_never_panic(
        v6 in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let version = if v6 { FormatVersion::V6 } else { FormatVersion::V5 };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("random.bin");
        std::fs::write(&path, with_valid_start(version, &tail)).unwrap();
        let (_, err) = read_file(&path);
        if let Some(err) = err {
            prop_assert_eq!(err.path(), path.as_path());
        }
    }
}
