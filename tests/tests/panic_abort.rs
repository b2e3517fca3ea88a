//! `panic = "abort"` (issue 13): a panic ends the process at once, with no
//! unwinding and no guard drop, so pulse's panic hook is the only chance
//! to write what was recorded. This test builds `tests/panic-abort` with
//! the workspace's `panic-abort` profile (a `cargo build` of its own, in
//! `CARGO_TARGET_TMPDIR`), runs it, and checks that the program behaves as
//! without pulse (its panic message, then SIGABRT) and that the trace
//! holds every poll counted before the panic and says it ended by a panic.

#[path = "support/running.rs"]
#[allow(dead_code)]
mod running;

use pulse_trace::{EndReason, TraceEvent, TraceScan, TraceSet};
use running::Running;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the program with `panic = "abort"` and returns its path.
fn build_aborting_program() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("panic-abort");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--profile", "panic-abort"])
        .args(["-p", "panic-abort-app", "--bin", "panic-abort-app"])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building tests/panic-abort: {status:?}");
    target.join("panic-abort").join("panic-abort-app")
}

#[test]
fn an_aborting_panic_writes_the_trace_first() {
    let program = build_aborting_program();
    let mut running = Running::start(program.to_str().unwrap(), "");
    let status = running.wait();
    // Behaviour unchanged: the panic message, then the abort.
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}");
    let stderr = running.stderr_lines().join("\n");
    assert!(
        stderr.contains("deliberate panic for the panic=abort test"),
        "{stderr}"
    );
    let before = running.polls();
    assert!(
        before >= 20_000,
        "the program printed no poll count: {before}"
    );

    let path = running.dir.path().join("abort-trace.bin");
    let mut scan = TraceScan::open(&TraceSet::open(&path).unwrap()).unwrap();
    let mut starts = 0u64;
    while let Some(event) = scan.next_event().unwrap() {
        if let TraceEvent::PollStart { .. } = event {
            starts += 1;
        }
    }
    assert!(scan.truncated().is_none(), "{:?}", scan.truncated());
    // The four counting tasks' polls, the panicking task's and the main
    // task's: at least the count printed before the panic.
    assert!(
        starts >= before,
        "{starts} PollStart records, but {before} polls were counted before the panic"
    );
    let end = scan.end().copied().expect("the trace says how it ended");
    assert_eq!(end.reason, EndReason::Panic);
}
