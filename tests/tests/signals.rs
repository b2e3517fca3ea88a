//! Termination signals (issue 13): a `#[pulse::main]` server under load
//! (`src/bin/signals_main.rs`, which only flushes at the end) is sent
//! SIGTERM, SIGINT or SIGHUP. The trace must hold every poll the program
//! counted before the signal, and the program must behave as without
//! pulse: killed by the signal when it has no handler, its own
//! `tokio::signal` handler running (and a normal exit) when it has one.
//! SIGKILL cannot be caught: the trace must then say it ended without a
//! shutdown.

#[path = "support/running.rs"]
#[allow(dead_code)]
mod running;

use pulse_trace::{EndReason, TraceEvent, TraceScan, TraceSet};
use running::{collect, Running};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const PROGRAM: &str = env!("CARGO_BIN_EXE_signals_main");

/// The trace's PollStart and PollEnd counts, and how it ended.
fn read_trace(path: &Path) -> (u64, u64, Option<pulse_trace::TraceEnd>) {
    let mut scan = TraceScan::open(&TraceSet::open(path).unwrap()).unwrap();
    let (mut starts, mut ends) = (0, 0);
    while let Some(event) = scan.next_event().unwrap() {
        match event {
            TraceEvent::PollStart { .. } => starts += 1,
            TraceEvent::PollEnd { .. } => ends += 1,
            _ => {}
        }
    }
    assert!(scan.truncated().is_none(), "{:?}", scan.truncated());
    (starts, ends, scan.end().copied())
}

/// Starts the server, lets it run under load, sends `signal`; returns the
/// polls counted before the signal, the exit status and the program.
fn signal_under_load(case: &str, signal: i32) -> (u64, ExitStatus, Running) {
    let mut running = Running::start(PROGRAM, case);
    running.wait_for("load", |r| r.polls() > 20_000);
    let before = running.polls();
    running.signal(signal);
    let status = running.wait();
    (before, status, running)
}

fn check_start_line(running: &Running) {
    let lines = running.stderr_lines();
    let expected = format!(
        "pulse: recording to {}; PULSE=off to disable",
        running.dir.path().join("signals-trace.bin").display()
    );
    assert_eq!(
        lines.first().map(String::as_str),
        Some(expected.as_str()),
        "{lines:?}"
    );
}

fn default_action(signal: i32) {
    let (before, status, running) = signal_under_load("default", signal);
    // Behaviour unchanged: the default action ended the process.
    assert_eq!(status.signal(), Some(signal), "{status:?}");
    check_start_line(&running);
    let (starts, ends, end) = read_trace(&running.dir.path().join("signals-trace.bin"));
    assert!(
        starts >= before,
        "{starts} PollStart records, but {before} polls were counted before the signal"
    );
    // Two workers: at most one poll each was in progress.
    assert!(ends + 2 >= starts, "{starts} starts, {ends} ends");
    let end = end.expect("the trace says how it ended");
    assert_eq!(end.reason, EndReason::Signal(signal as u32));
}

fn handled_by_the_program(signal: i32, name: &str) {
    let (before, status, running) = signal_under_load("handled", signal);
    // Behaviour unchanged: the program's own handler ran, and it exited
    // normally.
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?} {:?}",
        running.stderr_lines()
    );
    assert!(running.stdout_has(&format!("handled {name}")));
    check_start_line(&running);
    let (starts, ends, end) = read_trace(&running.dir.path().join("signals-trace.bin"));
    assert!(starts >= before, "{starts} < {before}");
    assert_eq!(starts, ends, "every poll ended before the clean shutdown");
    assert_eq!(end.map(|e| e.reason), Some(EndReason::Shutdown));
}

#[test]
fn sigterm_default_action_keeps_the_last_events() {
    default_action(libc::SIGTERM);
}

#[test]
fn sigint_default_action_keeps_the_last_events() {
    default_action(libc::SIGINT);
}

#[test]
fn sighup_default_action_keeps_the_last_events() {
    default_action(libc::SIGHUP);
}

#[test]
fn sigterm_handled_by_tokio_signal_runs_the_programs_handler() {
    handled_by_the_program(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_handled_by_ctrl_c_runs_the_programs_handler() {
    handled_by_the_program(libc::SIGINT, "SIGINT");
}

#[test]
fn sighup_handled_by_tokio_signal_runs_the_programs_handler() {
    handled_by_the_program(libc::SIGHUP, "SIGHUP");
}

#[test]
fn sigkill_leaves_a_trace_that_says_it_ended_without_shutdown() {
    let (_, status, running) = signal_under_load("default", libc::SIGKILL);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let (_, _, end) = read_trace(&running.dir.path().join("signals-trace.bin"));
    assert_eq!(end, None);
    let analysis = pulse_cli::analysis::analyze_trace(
        running.dir.path().join("signals-trace.bin"),
        &pulse_cli::analysis::AnalysisOptions::default(),
    )
    .unwrap();
    assert!(!analysis.completeness.complete);
    let problem = analysis
        .completeness
        .ending_problem(analysis.trace.last_ns)
        .unwrap();
    assert!(
        problem.starts_with("ended without shutdown (killed, crashed or still running)"),
        "{problem}"
    );
}

#[test]
fn signals_off_leaves_the_default_action_alone() {
    let mut command = Command::new(PROGRAM);
    let dir = tempfile::tempdir().unwrap();
    command
        .arg("default")
        .current_dir(dir.path())
        .env("PULSE_SIGNALS", "off")
        .env("PULSE_QUIET", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stdout = collect(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stdout
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("polls ") && l != "polls 0")
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.signal(), Some(libc::SIGTERM));
    assert!(
        output.stderr.is_empty(),
        "quiet: {:?}",
        String::from_utf8_lossy(&output.stderr)
    );
    // No final flush: the file holds the header and metadata written at
    // start and no event (flush_ms is a minute), as without pulse's
    // handler, and no end record.
    let path = dir.path().join("signals-trace.bin");
    assert_eq!(read_trace(&path), (0, 0, None));
}
