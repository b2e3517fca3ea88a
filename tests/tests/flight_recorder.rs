//! The in-memory flight recorder (issue 13): nothing written in steady
//! state; `handle.dump`, SIGUSR2 and `dump_on` write the window as a trace
//! every tool reads.

#[path = "support/running.rs"]
#[allow(dead_code)]
mod running;

use pulse::{Config, Recorder, RecordingHandle, WriterConfig};
use pulse_trace::{EndReason, TraceEvent, TraceScan, TraceSet};
use running::Running;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MS: u64 = 1_000_000;

struct Dump {
    events: Vec<TraceEvent>,
    end: Option<pulse_trace::TraceEnd>,
}

/// Reads the dump whose first file is `first` (`x.0.bin`) as its set.
fn read_dump(first: &Path) -> Dump {
    let name = first.file_name().unwrap().to_str().unwrap();
    let base = first.with_file_name(name.replace(".0.bin", ".bin"));
    let mut scan = TraceScan::open(&TraceSet::open(&base).unwrap()).unwrap();
    let mut events = Vec::new();
    while let Some(event) = scan.next_event().unwrap() {
        events.push(event);
    }
    assert!(scan.truncated().is_none());
    Dump {
        events,
        end: scan.end().copied(),
    }
}

fn poll_starts(dump: &Dump) -> u64 {
    dump.events
        .iter()
        .filter(|e| matches!(e, TraceEvent::PollStart { .. }))
        .count() as u64
}

/// A multi-thread runtime recording into memory, with tasks yielding as
/// fast as they can and counting their polls.
fn storm(
    config: &Config,
) -> (
    tokio::runtime::Runtime,
    pulse::RecordingGuard,
    Arc<AtomicU64>,
    Arc<AtomicBool>,
) {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, config).unwrap();
    let polls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..4 {
        let (polls, stop) = (polls.clone(), stop.clone());
        runtime.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                polls.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        });
    }
    (runtime, guard, polls, stop)
}

fn wait_polls(polls: &AtomicU64, at_least: u64) {
    while polls.load(Ordering::SeqCst) < at_least {
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_dump_at_full_speed_holds_every_poll_before_it_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Room for the backlog an unoptimised test build's flusher leaves at
    // full speed: what is checked is that the dump itself loses nothing.
    let config = Config::new()
        .writer(WriterConfig::memory(dir.path().join("auto.bin")))
        .max_pending_events(1 << 20);
    let (runtime, guard, polls, stop) = storm(&config);
    let handle: RecordingHandle = guard.handle();
    wait_polls(&polls, 100_000);
    let before = polls.load(Ordering::SeqCst);
    let first = handle.dump(dir.path().join("full-speed.bin")).unwrap();
    let after = polls.load(Ordering::SeqCst);
    // Recording went on at full speed during the dump.
    wait_polls(&polls, after + 50_000);
    stop.store(true, Ordering::SeqCst);
    drop(runtime);
    let summary = guard.finish().unwrap();
    assert_eq!(summary.dropped_events, 0, "nothing lost");
    let dump = read_dump(&first);
    let starts = poll_starts(&dump);
    // The window (64 MiB, 30 s) holds the whole run: every poll counted
    // before the call, none counted after it returned.
    assert!(
        starts >= before,
        "{starts} PollStart records < {before} polls before the dump"
    );
    assert!(starts <= after + 8, "{starts} > {after}");
    assert!(!dump
        .events
        .iter()
        .any(|e| matches!(e, TraceEvent::EventsDropped { .. })));
    assert_eq!(dump.end.map(|e| e.reason), Some(EndReason::Dump));
    // Nothing was written in steady state: only the dump's files.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.iter().all(|n| n.starts_with("full-speed.")),
        "{names:?}"
    );
}

#[test]
fn two_dumps_in_a_row_and_an_unwritable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new()
        .writer(WriterConfig::memory(dir.path().join("auto.bin")))
        .max_pending_events(1 << 20);
    let (runtime, guard, polls, stop) = storm(&config);
    let handle = guard.handle();
    wait_polls(&polls, 20_000);
    let first = handle.dump(dir.path().join("one.bin")).unwrap();
    let second = handle.dump(dir.path().join("two.bin")).unwrap();
    let (one, two) = (read_dump(&first), read_dump(&second));
    assert!(
        poll_starts(&two) >= poll_starts(&one),
        "the second holds the first's window and more"
    );

    // A directory that does not exist: a clear error naming the path, and
    // recording goes on.
    let missing = dir.path().join("no-such-dir").join("x.bin");
    let err = handle.dump(&missing).unwrap_err().to_string();
    assert!(err.contains("no-such-dir"), "{err}");
    assert!(err.contains("cannot dump the flight recorder"), "{err}");
    let resumed = polls.load(Ordering::SeqCst);
    wait_polls(&polls, resumed + 20_000);
    let third = read_dump(&handle.dump(dir.path().join("three.bin")).unwrap());
    assert!(poll_starts(&third) > poll_starts(&two));
    assert!(handle.is_enabled());
    stop.store(true, Ordering::SeqCst);
    drop(runtime);
    assert_eq!(guard.finish().unwrap().dropped_events, 0);
}

#[test]
fn dumps_need_the_memory_writer() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new().writer(WriterConfig::file(dir.path().join("t.bin")));
    let (runtime, guard) =
        Recorder::from_config(tokio::runtime::Builder::new_current_thread(), &config).unwrap();
    let err = guard.handle().dump(dir.path().join("d.bin")).unwrap_err();
    assert!(err.to_string().contains("writer = \"memory\""), "{err}");
    drop(runtime);
    guard.finish().unwrap();
}

/// The dump that `dump_on = "poll>50ms"` writes, and the lines on stderr.
fn dumped_path(line: &str) -> Option<PathBuf> {
    Some(PathBuf::from(line.split("dumped to ").nth(1)?))
}

#[test]
fn a_blocking_poll_triggers_a_dump_with_the_window_around_it() {
    let mut running = Running::start(env!("CARGO_BIN_EXE_flight_main"), "block");
    running.wait_for("the triggered dump", |r| {
        r.stderr_lines()
            .iter()
            .any(|l| l.contains("poll>50ms fired"))
    });
    // SIGUSR2 dumps too, twice in a row; the program goes on.
    running.signal(libc::SIGUSR2);
    running.wait_for("a signal dump", |r| {
        r.stderr_lines()
            .iter()
            .filter(|l| l.starts_with("pulse: flight recorder dumped to"))
            .count()
            == 1
    });
    running.signal(libc::SIGUSR2);
    running.wait_for("a second signal dump", |r| {
        r.stderr_lines()
            .iter()
            .filter(|l| l.starts_with("pulse: flight recorder dumped to"))
            .count()
            == 2
    });
    let before = running.polls();
    running.wait_for("the program going on", |r| r.polls() > before + 1000);
    running.signal(libc::SIGTERM);
    let status = running.wait();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));

    let lines = running.stderr_lines();
    assert!(
        lines[0].starts_with("pulse: recording into memory (the last 64 MiB or 2 s)"),
        "{lines:?}"
    );
    let triggered = lines
        .iter()
        .find(|l| l.contains("poll>50ms fired"))
        .unwrap();
    let dump = read_dump(&dumped_path(triggered).unwrap());
    assert_eq!(dump.end.map(|e| e.reason), Some(EndReason::Dump));
    // The poll the trigger reported ("N ms at T ms into the trace") is in
    // it: on a loaded machine it may be another poll made long by the
    // scheduler, before the 100 ms blocking one.
    let number_before = |marker: &str| -> u64 {
        triggered
            .split(marker)
            .next()
            .and_then(|head| head.rsplit(['(', ' ']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number before {marker:?} in {triggered}"))
    };
    let (took_ms, at_ms) = (
        number_before(" ms at "),
        number_before(" ms into the trace"),
    );
    assert!(took_ms >= 50, "{triggered}");
    let mut open: HashMap<u32, u64> = HashMap::new();
    let mut polls = Vec::new();
    for event in &dump.events {
        match *event {
            TraceEvent::PollStart {
                timestamp_nanos,
                worker,
                ..
            } => {
                open.insert(worker, timestamp_nanos);
            }
            TraceEvent::PollEnd {
                timestamp_nanos,
                worker,
                ..
            } => {
                if let Some(start) = open.remove(&worker) {
                    polls.push((start, timestamp_nanos));
                }
            }
            _ => {}
        }
    }
    let (start, end) = *polls
        .iter()
        .find(|(start, end)| {
            (end / MS).abs_diff(at_ms) <= 1 && ((end - start) / MS).abs_diff(took_ms) <= 1
        })
        .unwrap_or_else(|| panic!("the triggering poll is in the dump: {triggered}"));
    let first = dump
        .events
        .iter()
        .map(|e| e.timestamp_nanos())
        .min()
        .unwrap();
    let last = dump
        .events
        .iter()
        .map(|e| e.timestamp_nanos())
        .max()
        .unwrap();
    // The window before it: everything since the trace began
    // (memory_seconds = 2 keeps the whole run).
    assert!(first < 50 * MS, "the dump starts at {} ms", first / MS);
    assert!(start > first);
    // And dump_after_ms = 300 after it.
    assert!(
        last - end >= 280 * MS,
        "window after: {} ms",
        (last - end) / MS
    );
    // When the trigger was the blocking poll (the usual case), it is that
    // 100 ms poll.
    if took_ms >= 100 {
        assert!(end - start >= 100 * MS);
    }
    // The signal dumps read too.
    for line in lines
        .iter()
        .filter(|l| l.starts_with("pulse: flight recorder dumped to"))
    {
        let dump = read_dump(&dumped_path(line).unwrap());
        assert!(poll_starts(&dump) > 0);
        assert_eq!(dump.end.map(|e| e.reason), Some(EndReason::Dump));
    }
}

/// A writer that panics on its third batch.
#[derive(Debug, Default)]
struct Panicking {
    batches: u32,
}

impl pulse::TraceWriter for Panicking {
    fn write_batch(&mut self, _: &[pulse::RecordedEvent]) -> std::io::Result<()> {
        self.batches += 1;
        if self.batches == 3 {
            panic!("disk on fire");
        }
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_panicking_writer_is_a_writer_failure_with_its_message() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let config = Config::new().flush_ms(5).buffer_events(64);
    let (runtime, guard) =
        Recorder::build_with_config(builder, Box::new(Panicking::default()), &config).unwrap();
    let handle = guard.handle();
    runtime.block_on(async {
        for _ in 0..200 {
            tokio::spawn(async {
                for _ in 0..50 {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .unwrap();
            if handle.write_error().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    // The panic (and its backtrace, under RUST_BACKTRACE) may still be
    // on its way on a loaded machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while handle.write_error().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let error = handle.write_error().expect("the panic is a writer failure");
    assert_eq!(error, "the trace writer panicked: disk on fire");
    assert!(!handle.is_enabled(), "recording stopped");
    drop(runtime);
    let err = guard.finish().unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
}

#[test]
fn guard_dropped_before_the_runtime_counts_what_comes_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let config = Config::new().writer(WriterConfig::file(&path));
    let (runtime, guard) = Recorder::from_config(builder, &config).unwrap();
    let handle = guard.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let task = {
        let stop = stop.clone();
        runtime.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                tokio::task::yield_now().await;
            }
        })
    };
    // A task inside a 500 ms poll when the recording ends: its PollEnd
    // comes after, to nobody.
    let inside = Arc::new(AtomicBool::new(false));
    let long = {
        let inside = inside.clone();
        runtime.spawn(async move {
            inside.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(500));
        })
    };
    while !inside.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let summary = guard.finish().unwrap();
    assert_eq!(summary.threads_still_recording, 2);
    // Recording has stopped; the worker still inside a poll hands over
    // its PollEnd later, to nobody: it is counted, not kept.
    assert!(!handle.is_enabled());
    handle.enable();
    assert!(!handle.is_enabled(), "an ended recording cannot be resumed");
    stop.store(true, Ordering::SeqCst);
    runtime.block_on(task).unwrap();
    runtime.block_on(long).unwrap();
    drop(runtime);
    let mut reader = pulse_trace::TraceReader::open(&path).unwrap();
    while reader.next_event().unwrap().is_some() {}
    let end = reader.end().copied().expect("an end record");
    assert_eq!(end.threads_still_recording, 2);
    assert!(
        handle.dropped_events() >= 1,
        "the poll in progress at the end was counted as lost"
    );
}

#[test]
fn a_panic_dumps_the_flight_recorder_and_the_program_goes_on() {
    let mut running = Running::start(env!("CARGO_BIN_EXE_flight_main"), "panic");
    running.wait_for("the panic's dump", |r| {
        r.stderr_lines()
            .iter()
            .any(|l| l.starts_with("pulse: flight recorder dumped to") && l.contains("-panic-"))
    });
    running.wait_for("the panic", |r| r.stdout_has("panicked"));
    let before = running.polls();
    running.wait_for("the program going on", |r| r.polls() > before + 1000);
    running.signal(libc::SIGTERM);
    running.wait();
    let lines = running.stderr_lines();
    let line = lines.iter().find(|l| l.contains("-panic-")).unwrap();
    let dump = read_dump(&dumped_path(line).unwrap());
    assert!(poll_starts(&dump) > 0);
    assert_eq!(dump.end.map(|e| e.reason), Some(EndReason::Dump));
    // The panic's own message is still printed, as without pulse.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("a task panicked on purpose")),
        "{lines:?}"
    );
}
