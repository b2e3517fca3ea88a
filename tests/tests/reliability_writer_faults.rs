//! Writer faults (issue 8) in real processes: a full disk, permission
//! denied (at start and mid-run), the trace directory deleted mid-run, a
//! writer that fails, and one that is too slow. In every case the program
//! (`src/bin/reliability_app.rs`, or the `#[pulse::main]` program
//! `src/bin/reliability_main.rs`) exits normally with the same results as
//! an untraced run, pulse says what happened in exactly one line on stderr,
//! lost events are counted, and what was written before the fault reads
//! back.
//!
//! (`recorder.rs` and `trace_files.rs` check the same in-process through
//! the handle and `finish()`; here it is what a user sees.)

use pulse_trace::{rotated_files, TraceEvent, TraceReader};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const APP: &str = env!("CARGO_BIN_EXE_reliability_app");
const MAIN: &str = env!("CARGO_BIN_EXE_reliability_main");

/// What the flusher prints when the writer fails.
const WRITE_FAILED: &str =
    "pulse: writing the trace failed, recording stopped (the program continues): ";

/// A user without privileges, for the child when the tests run as root
/// (root ignores permission bits).
const NOBODY: u32 = 65534;

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Copies of the test programs that any user can run (the build directory
/// may not be open to `nobody`), made once, before any test starts a
/// process: a child forked while a copy is still open for writing would
/// keep it open and make running the copy fail with "text file busy".
fn programs() -> &'static Path {
    static PROGRAMS: OnceLock<PathBuf> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let dir = tests::process_temp_dir();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for program in [APP, MAIN] {
            let name = Path::new(program).file_name().unwrap();
            std::fs::copy(program, dir.join(name)).unwrap();
        }
        dir
    })
}

/// A directory the child can write to.
struct Sandbox {
    root: tempfile::TempDir,
    dir: PathBuf,
    as_user: Option<u32>,
}

impl Sandbox {
    fn new() -> Sandbox {
        programs();
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = root.path().join("traces");
        std::fs::create_dir(&dir).unwrap();
        let as_user = running_as_root().then_some(NOBODY);
        if let Some(user) = as_user {
            std::os::unix::fs::chown(&dir, Some(user), Some(user)).unwrap();
        }
        Sandbox { root, dir, as_user }
    }

    fn command(&self, program: &str) -> Command {
        let name = Path::new(program).file_name().unwrap();
        let mut command = Command::new(programs().join(name));
        command.current_dir(&self.dir).env_remove("RUST_BACKTRACE");
        for variable in pulse::config::env::VARIABLES {
            command.env_remove(variable);
        }
        if let Some(user) = self.as_user {
            command.uid(user).gid(user);
        }
        command
    }

    /// Makes the trace directory read-only for the child.
    fn deny_writes(&self) {
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Output {
    fn value(&self, key: &str) -> &str {
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {key:?} line in {:?}", self.stdout))
    }

    fn number(&self, key: &str) -> u64 {
        self.value(key).parse().unwrap()
    }

    fn pulse_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("pulse:"))
            .collect()
    }

    /// Exit status 0, the untraced run's results, and one problem line from
    /// pulse on stderr, which starts with `prefix` (returned), followed at
    /// most by the guard's shutdown summary of what was lost.
    fn check_carried_on(&self, prefix: &str) -> &str {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        assert_eq!(
            self.value("result"),
            reference_result(),
            "the program's results changed"
        );
        let lines = self.pulse_lines();
        let (problem, summary) = match lines.as_slice() {
            [problem] => (*problem, None),
            [problem, summary] => (*problem, Some(*summary)),
            _ => panic!("pulse reports once, then sums up: {}", self.stderr),
        };
        assert!(problem.starts_with(prefix), "{problem}");
        if let Some(summary) = summary {
            assert!(
                summary.starts_with("pulse: the trace is incomplete: ")
                    || summary.contains("events were dropped"),
                "{summary}"
            );
        }
        problem
    }

    /// After a write failure: the guard's shutdown summary says how many
    /// events were lost, the same count the handle reports, and why.
    fn check_incomplete_summary(&self) {
        let dropped = self.number("dropped");
        assert!(dropped > 0, "lost events are counted");
        let expected = format!(
            "pulse: the trace is incomplete: {dropped} events were not written after the \
             writer failed ({})",
            self.value("write_error")
        );
        assert_eq!(self.pulse_lines().last(), Some(&expected.as_str()));
    }
}

/// Runs `command`; if `mid_run` is given, the program is run with
/// `--pause` and `mid_run` is called while it waits between its phases.
fn run(mut command: Command, mid_run: Option<&dyn Fn()>) -> Output {
    if mid_run.is_some() {
        command.arg("--pause");
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    if let Some(mid_run) = mid_run {
        stdout.read_line(&mut text).unwrap();
        assert_eq!(text, "paused\n", "the program did not pause");
        mid_run();
        child.stdin.take().unwrap().write_all(b"go on\n").unwrap();
    }
    stdout.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    Output {
        code: status.code(),
        stdout: text,
        stderr: stderr.join().unwrap(),
    }
}

/// The untraced program's `result`.
fn reference_result() -> &'static str {
    static RESULT: OnceLock<String> = OnceLock::new();
    RESULT.get_or_init(|| {
        let output = run(Sandbox::new().command(APP), None);
        assert_eq!(output.code, Some(0), "{}", output.stderr);
        output.value("result").to_owned()
    })
}

/// Every file of the rotated set at `base` reads back without error;
/// returns how many files had events.
fn check_set_reads_back(base: &Path) -> usize {
    let mut with_events = 0;
    for file in rotated_files(base).unwrap() {
        let events: Vec<TraceEvent> = TraceReader::open(&file)
            .and_then(|reader| reader.collect())
            .unwrap_or_else(|err| panic!("{err}"));
        if !events.is_empty() {
            with_events += 1;
        }
    }
    with_events
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_reported_once_and_the_program_carries_on() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command(APP);
    command.arg("file:/dev/full");
    let output = run(command, None);
    let line = output.check_carried_on(WRITE_FAILED);
    assert!(line.contains("/dev/full"), "{line}");
    assert!(line.contains("No space left on device"), "{line}");
    assert!(output.number("dropped") > 0, "lost events are counted");
    output.check_incomplete_summary();
    assert!(output.value("write_error").contains("/dev/full"));
}

#[test]
fn permission_denied_at_start_runs_the_program_untraced() {
    let sandbox = Sandbox::new();
    sandbox.deny_writes();
    let mut command = sandbox.command(MAIN);
    command.arg("ok").env("PULSE_PATH", "trace.bin");
    let output = run(command, None);
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let lines = output.pulse_lines();
    assert_eq!(lines.len(), 1, "{}", output.stderr);
    assert!(
        lines[0].starts_with("pulse: not recording this run: cannot write trace file trace.bin"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("Permission denied"), "{}", lines[0]);
    // The program ran, untraced: same results, no file.
    assert!(output.stdout.contains("checksum "), "{}", output.stdout);
    assert_eq!(std::fs::read_dir(&sandbox.dir).unwrap().count(), 0);
}

#[test]
fn permission_denied_mid_run_stops_recording_once() {
    let sandbox = Sandbox::new();
    let base = sandbox.dir.join("trace.bin");
    let mut command = sandbox.command(APP);
    command.arg(format!("rotating:{}:4096:100000000", base.display()));
    let output = run(command, Some(&|| sandbox.deny_writes()));
    let line = output.check_carried_on(WRITE_FAILED);
    assert!(line.contains("Permission denied"), "{line}");
    assert!(line.contains("cannot write trace file"), "{line}");
    assert!(output.number("dropped") > 0);
    output.check_incomplete_summary();
    // The files written before the fault are whole.
    assert!(check_set_reads_back(&base) >= 2);
}

/// Removes `dir` while the paused program's flusher may still rotate a
/// new file into it (its ticks go on): a file created during the removal
/// makes it fail with "directory not empty", so it tries again.
fn remove_dir_while_written(dir: &std::path::Path) {
    for _ in 0..100 {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return,
            Err(err) if err.kind() == std::io::ErrorKind::DirectoryNotEmpty => {}
            Err(err) => panic!("removing {}: {err}", dir.display()),
        }
    }
    panic!("{} kept filling while being removed", dir.display());
}

#[test]
fn trace_directory_deleted_mid_run_stops_recording_once() {
    let sandbox = Sandbox::new();
    let base = sandbox.dir.join("trace.bin");
    let mut command = sandbox.command(APP);
    // The program runs in the sandbox's root: its working directory goes.
    command.current_dir(sandbox.root.path());
    command.arg(format!("rotating:{}:4096:100000000", base.display()));
    let output = run(command, Some(&|| remove_dir_while_written(&sandbox.dir)));
    let line = output.check_carried_on(WRITE_FAILED);
    assert!(line.contains("No such file or directory"), "{line}");
    assert!(line.contains(&sandbox.dir.display().to_string()), "{line}");
    assert!(output.number("dropped") > 0);
    output.check_incomplete_summary();
    assert!(
        !sandbox.dir.exists(),
        "pulse does not recreate the directory"
    );
}

#[test]
fn a_failing_writer_is_reported_once_and_counted() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command(APP);
    command.arg("failing:3");
    let output = run(command, None);
    let line = output.check_carried_on(WRITE_FAILED);
    assert!(
        line.ends_with("the test writer failed on purpose"),
        "{line}"
    );
    assert!(output.number("dropped") > 0);
    output.check_incomplete_summary();
    assert_eq!(
        output.value("write_error"),
        "the test writer failed on purpose"
    );
}

#[test]
fn a_slow_writer_drops_counts_and_marks_the_gap() {
    let sandbox = Sandbox::new();
    let path = sandbox.dir.join("trace.bin");
    let mut command = sandbox.command(APP);
    command.arg(format!("slow:{}:50", path.display()));
    let output = run(command, None);
    let line = output.check_carried_on("pulse: ");
    // The guard's shutdown summary: how many, and that the trace shows where.
    let dropped = output.number("dropped");
    assert!(dropped > 0, "a 50 ms-per-batch writer cannot keep up");
    assert_eq!(
        line,
        format!(
            "pulse: {dropped} events were dropped because the trace writer fell behind \
             (raise max_pending_events or flush more often); the trace marks where"
        )
    );
    assert_eq!(output.value("write_error"), "none");
    let marked: u64 = TraceReader::open(&path)
        .unwrap()
        .map(|event| match event.unwrap() {
            TraceEvent::EventsDropped { count, .. } => count,
            _ => 0,
        })
        .sum();
    assert_eq!(marked, dropped, "every drop is marked in the file");
}

/// Runs `command` with a stderr nobody reads (a pipe whose reading end is
/// closed, as when a program's stderr goes to a pager that has quit):
/// every write to it fails with "broken pipe".
fn run_with_broken_stderr(mut command: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = command.stderr(writer).output().unwrap();
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::new(),
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_writer_failure_with_a_broken_stderr_still_stops_recording_quietly() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command(APP);
    command.arg("file:/dev/full");
    let output = run_with_broken_stderr(command);
    assert_eq!(output.code, Some(0), "pulse took the program down");
    assert_eq!(output.value("result"), reference_result());
    assert!(
        output
            .value("write_error")
            .contains("No space left on device"),
        "the failure was recorded although it could not be printed"
    );
}

#[test]
fn a_drop_summary_with_a_broken_stderr_does_not_take_the_program_down() {
    let sandbox = Sandbox::new();
    let path = sandbox.dir.join("trace.bin");
    let mut command = sandbox.command(APP);
    command.arg(format!("slow:{}:50", path.display()));
    let output = run_with_broken_stderr(command);
    assert_eq!(output.value("result"), reference_result());
    assert_eq!(output.code, Some(0), "pulse took the program down");
}
