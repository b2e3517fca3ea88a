//! Shutdown and lifecycle (issue 8): whatever way a program ends, no event
//! recorded before shutdown is lost. Real programs run as child processes
//! (`src/bin/reliability_main.rs`, a `#[pulse::main]` program, and
//! `src/bin/reliability_app.rs`, a `Recorder` one); each counts the
//! polls its tasks get on worker threads and prints the count once no task
//! can be polled again, and the trace must hold exactly that many PollStart
//! records, each closed by a PollEnd on the same worker.
//!
//! (`macro_main.rs` checks exit statuses and that some events arrive on
//! Ok/Err/panic; `recorder.rs` covers two runtimes in one process and
//! toggling. Here the counts must be exact.)

use pulse::EventType;
use pulse_trace::{TraceEvent, TraceReader};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const MAIN: &str = env!("CARGO_BIN_EXE_reliability_main");
const APP: &str = env!("CARGO_BIN_EXE_reliability_app");

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    dir: tempfile::TempDir,
}

impl Run {
    /// The number after `key ` on stdout.
    fn number(&self, key: &str) -> u64 {
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {key:?} line in {:?}", self.stdout))
            .parse()
            .unwrap()
    }

    /// pulse's lines on stderr other than the one at start.
    fn pulse_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("pulse:") && !l.starts_with("pulse: recording to "))
            .collect()
    }
}

fn run(program: &str, arg: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(program);
    command
        .arg(arg)
        .current_dir(dir.path())
        .env_remove("RUST_BACKTRACE");
    for variable in pulse::config::env::VARIABLES {
        command.env_remove(variable);
    }
    let output = command.output().unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        dir,
    }
}

/// Every event of the trace at `path` (which must read without error).
fn read(path: &Path) -> Vec<TraceEvent> {
    TraceReader::open(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|err| panic!("{err}"))
}

/// Checks that each worker's polls are `PollStart`, `PollEnd` pairs, except
/// that `open` polls may have no end; returns the number of PollStarts.
fn check_polls(events: &[TraceEvent], workers: u32, open: std::ops::RangeInclusive<usize>) -> u64 {
    let mut in_poll: BTreeMap<u32, bool> = BTreeMap::new();
    let mut starts = 0;
    for event in events {
        let Some(worker) = event.worker() else {
            continue;
        };
        if event.event_type() == EventType::WorkerSample {
            continue;
        }
        assert!(worker < workers, "worker {worker} of {workers}: {event:?}");
        let state = in_poll.entry(worker).or_default();
        match event.event_type() {
            EventType::PollStart => {
                assert!(!*state, "worker {worker}: PollStart inside a poll");
                *state = true;
                starts += 1;
            }
            EventType::PollEnd => {
                assert!(*state, "worker {worker}: PollEnd outside a poll");
                *state = false;
            }
            _ => {}
        }
    }
    let still_open = in_poll.values().filter(|&&open| open).count();
    assert!(
        open.contains(&still_open),
        "{still_open} polls without a PollEnd at the end"
    );
    starts
}

/// Runs `reliability_main CASE` and checks that its trace holds exactly
/// the polls it counted.
fn check_main(case: &str, code: i32) -> Run {
    let run = run(MAIN, case);
    assert_eq!(run.code, Some(code), "{case}: {}", run.stderr);
    let polls = run.number("polls");
    assert!(polls >= 600, "{case}: the workload polled {polls} times");
    assert!(
        run.stderr.starts_with("pulse: recording to "),
        "{case}: the start line: {}",
        run.stderr
    );
    let events = read(&run.dir.path().join("main-trace.bin"));
    assert_eq!(
        check_polls(&events, 2, 0..=0),
        polls,
        "{case}: PollStart records vs polls made"
    );
    assert!(
        run.pulse_lines().is_empty(),
        "{case}: pulse reported {:?}",
        run.pulse_lines()
    );
    run
}

#[test]
fn normal_return_keeps_every_poll() {
    check_main("ok", 0);
}

#[test]
fn err_return_keeps_every_poll() {
    let run = check_main("err", 1);
    assert!(run.stderr.contains("the body returned an error"));
}

#[test]
fn panic_in_the_body_keeps_every_poll() {
    let run = check_main("panic", 101);
    assert!(run.stderr.contains("the body panicked on purpose"));
}

#[test]
fn panic_inside_a_task_keeps_every_poll_and_closes_it() {
    // The panicking poll has its PollEnd too (Tokio runs the after-poll
    // hook when the poll unwinds), and recording goes on after it.
    let run = check_main("task-panic", 0);
    assert!(run.stderr.contains("a task panicked on purpose"));
}

#[test]
fn runtime_dropped_with_tasks_pending_keeps_every_poll() {
    check_main("pending", 0);
}

#[test]
fn spawn_blocking_threads_record_nothing_and_break_nothing() {
    // Blocking-pool threads have no worker index: the closures (and the
    // `block_on` inside them) are not recorded, the tasks they spawn onto
    // the workers are, and only workers 0 and 1 appear (`check_polls`).
    check_main("blocking", 0);
}

#[test]
fn shutdown_timeout_keeps_every_poll_and_does_not_wait_for_stuck_threads() {
    let run = run(APP, "shutdown-timeout:trace.bin");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("done"), "{}", run.stdout);
    let polls = run.number("polls");
    let events = read(&run.dir.path().join("trace.bin"));
    // One task is still inside its 60 s poll when the program exits: its
    // PollStart was recorded before shutdown, its PollEnd never happens.
    // (If the guard waited for it, the program would not have printed
    // `done` before the test's own timeout.)
    assert_eq!(check_polls(&events, 2, 1..=1), polls);
    // The stuck worker thread outlived the recording (and, on a loaded
    // machine, the other one may still be exiting after shutdown_timeout):
    // said once on stderr and in the trace's end record.
    let lines = run.pulse_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("pulse: the recording ended while ")
            && lines[0].contains(
                " runtime threads were still running (the guard was dropped \
                before the runtime had stopped; drop the runtime first)"
            ),
        "{lines:?}"
    );
    let mut reader = TraceReader::open(run.dir.path().join("trace.bin")).unwrap();
    while reader.next_event().unwrap().is_some() {}
    let threads = reader.end().map(|e| e.threads_still_recording);
    assert!(matches!(threads, Some(1..=2)), "{threads:?}");
}

#[test]
fn guard_dropped_before_the_runtime_keeps_every_poll_made_before() {
    // As when `let (runtime, guard) = ...` is left by `?` or a panic: the
    // guard drops first. Its final flush copies what the still-running
    // workers have buffered, so every poll started before is there. A
    // worker may still be finishing a task's last poll when `block_on`
    // returns; that poll's PollEnd comes after the recording ended and is
    // not in the trace (drop the runtime first to keep it).
    let run = run(APP, "guard-first:trace.bin");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let polls = run.number("polls");
    let events = read(&run.dir.path().join("trace.bin"));
    assert_eq!(check_polls(&events, 2, 0..=2), polls);
    // The trace is not silently complete: its end record counts the
    // worker threads that outlived the recording, and stderr says so.
    let mut reader = TraceReader::open(run.dir.path().join("trace.bin")).unwrap();
    while reader.next_event().unwrap().is_some() {}
    let end = reader.end().copied().expect("an end record");
    assert_eq!(end.threads_still_recording, 2, "{end:?}");
    assert_eq!(run.pulse_lines().len(), 1, "{:?}", run.pulse_lines());
    assert!(run.pulse_lines()[0].contains("2 runtime threads were still running"));
}

// ---- several runtimes in one process ------------------------------------

mod several_runtimes {
    use super::check_polls;
    use pulse::{Config, RecordedEvent, Recorder, TraceWriter};
    use pulse_trace::TraceEvent;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    /// Keeps every event in memory.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<RecordedEvent>>>);

    impl TraceWriter for Capture {
        fn write_batch(&mut self, events: &[RecordedEvent]) -> std::io::Result<()> {
            self.0.lock().unwrap().extend_from_slice(events);
            Ok(())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        /// The events as a reader would return them (round-tripped through
        /// the v6 encoder, so `check_polls` applies).
        fn events(&self) -> Vec<TraceEvent> {
            use pulse_trace::{Encoder, FormatVersion, TraceMetadata, TraceReader};
            let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
            let mut bytes = Vec::new();
            encoder.begin_file(0, &mut bytes);
            for event in self.0.lock().unwrap().iter() {
                encoder.encode(event, &mut bytes);
            }
            TraceReader::from_reader(&bytes[..], "memory")
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        }
    }

    /// Counts its polls on worker threads into its own counter.
    struct Counted<F>(F, Arc<AtomicU64>);

    impl<F: Future> Future for Counted<F> {
        type Output = F::Output;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            if tokio::runtime::worker_index().is_some() {
                self.1.fetch_add(1, Ordering::SeqCst);
            }
            // SAFETY: the fields are never moved out of the pinned `Counted`.
            unsafe { self.map_unchecked_mut(|c| &mut c.0) }.poll(cx)
        }
    }

    async fn workload(polls: Arc<AtomicU64>, tasks: u64) {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                tokio::spawn(Counted(
                    async {
                        for _ in 0..20 {
                            tokio::task::yield_now().await;
                        }
                    },
                    polls.clone(),
                ))
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    }

    fn traced(
        builder: tokio::runtime::Builder,
    ) -> (tokio::runtime::Runtime, pulse::RecordingGuard, Capture) {
        let capture = Capture::default();
        let config = Config::new().buffer_events(64);
        let (runtime, guard) =
            Recorder::build_with_config(builder, Box::new(capture.clone()), &config).unwrap();
        (runtime, guard, capture)
    }

    #[test]
    fn two_runtimes_busy_at_once_each_trace_exactly_their_own_polls() {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(|| {
                    let mut builder = tokio::runtime::Builder::new_multi_thread();
                    builder.worker_threads(2).enable_all();
                    let (runtime, guard, capture) = traced(builder);
                    let polls = Arc::new(AtomicU64::new(0));
                    runtime.block_on(workload(polls.clone(), 100));
                    drop(runtime);
                    assert_eq!(guard.finish().unwrap().dropped_events, 0);
                    (polls.load(Ordering::SeqCst), capture)
                })
            })
            .collect();
        for run in runs {
            let (polls, capture) = run.join().unwrap();
            assert_eq!(polls, 100 * 21);
            assert_eq!(check_polls(&capture.events(), 2, 0..=0), polls);
        }
    }

    #[test]
    fn one_thread_driving_two_traced_runtimes_in_turn_loses_nothing() {
        // Two current-thread runtimes on this thread: each switch hands the
        // thread's buffer to the other recording's collector.
        let builder = || {
            let mut builder = tokio::runtime::Builder::new_current_thread();
            builder.enable_all();
            builder
        };
        let (a, guard_a, capture_a) = traced(builder());
        let (b, guard_b, capture_b) = traced(builder());
        let (polls_a, polls_b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        for _ in 0..30 {
            a.block_on(workload(polls_a.clone(), 3));
            b.block_on(workload(polls_b.clone(), 2));
        }
        drop((a, b));
        assert_eq!(guard_a.finish().unwrap().dropped_events, 0);
        assert_eq!(guard_b.finish().unwrap().dropped_events, 0);
        for (polls, capture) in [(polls_a, capture_a), (polls_b, capture_b)] {
            let polls = polls.load(Ordering::SeqCst);
            assert!(polls >= 30 * 2 * 21);
            assert_eq!(check_polls(&capture.events(), 1, 0..=0), polls);
        }
    }
}
