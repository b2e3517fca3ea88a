//! `#[pulse::main]` end to end: real programs built with the macro
//! (`src/bin/pulse_main_*.rs`) run as child processes in a fresh directory;
//! their exit status, stderr and the trace they leave are checked, the trace
//! read back with `TraceReader`.

use pulse_trace::{EventType, FormatVersion};
use pulse_trace::{TraceEvent, TraceReader};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const APP: &str = env!("CARGO_BIN_EXE_pulse_main_app");
const SETTINGS: &str = env!("CARGO_BIN_EXE_pulse_main_settings");
/// Tasks `pulse_main_app` spawns (and so, polls it records at least).
const APP_TASKS: usize = 40;

struct Run {
    code: Option<i32>,
    stderr: String,
    dir: tempfile::TempDir,
}

impl Run {
    /// Names of the files the program left in its working directory.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// stderr lines written by pulse itself.
    /// pulse's lines on stderr other than the one at start.
    fn pulse_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("pulse:") && !l.starts_with("pulse: recording "))
            .collect()
    }
}

/// Runs `program case` in an empty directory with only `env` among pulse's
/// variables set.
fn run(program: &str, case: &str, env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(program);
    command
        .arg(case)
        .current_dir(dir.path())
        .env_remove("RUST_BACKTRACE");
    for variable in pulse::config::env::VARIABLES {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    Run {
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        dir,
    }
}

struct Trace {
    version: FormatVersion,
    config: BTreeMap<String, String>,
    events: Vec<TraceEvent>,
}

impl Trace {
    fn polls(&self) -> usize {
        self.events
            .iter()
            .filter(|e| e.event_type() == EventType::PollStart)
            .count()
    }
}

/// Reads a whole trace (a single file or a rotated set based at `base`).
fn read(base: &Path) -> Trace {
    let mut reader = TraceReader::open_rotated(base)
        .unwrap_or_else(|err| panic!("no readable trace at {}: {err}", base.display()));
    let version = reader.version();
    let config = reader
        .metadata()
        .map(|m| m.config.iter().cloned().collect())
        .unwrap_or_default();
    let events = reader
        .by_ref()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|err| panic!("{} does not decode: {err}", base.display()));
    Trace {
        version,
        config,
        events,
    }
}

fn setting<'a>(trace: &'a Trace, key: &str) -> &'a str {
    trace
        .config
        .get(key)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no `{key}` in the trace metadata: {:?}", trace.config))
}

// ---- the body's result, and the final flush ------------------------------

#[test]
fn ok_exits_zero_with_every_event_flushed() {
    let run = run(APP, "ok", &[]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.pulse_lines(), Vec::<&str>::new());
    // One line at start says where the trace goes.
    let start = format!(
        "pulse: recording to {} (rotating, 8 MiB max); PULSE=off to disable",
        run.path("app-trace.*.bin").display()
    );
    assert_eq!(
        run.stderr.lines().next(),
        Some(start.as_str()),
        "{}",
        run.stderr
    );
    assert_eq!(run.files(), ["app-trace.0.bin"]);
    let trace = read(&run.path("app-trace.bin"));
    // flush_ms is a minute: only the final flush can have written these.
    assert!(trace.polls() >= APP_TASKS, "{} polls", trace.polls());
    // The attribute's settings reached the recording through `Config`.
    assert_eq!(setting(&trace, "flush_ms"), "60000");
    assert_eq!(setting(&trace, "buffer_events"), "256");
    assert_eq!(setting(&trace, "writer"), "rotating");
    assert_eq!(setting(&trace, "max_file_size"), "1048576");
    assert_eq!(setting(&trace, "max_total_size"), "8388608");
}

#[test]
fn err_exits_one_with_every_event_flushed() {
    let run = run(APP, "err", &[]);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("Error: \"the body returned an error\""),
        "{}",
        run.stderr
    );
    let trace = read(&run.path("app-trace.bin"));
    assert!(trace.polls() >= APP_TASKS, "{} polls", trace.polls());
}

#[test]
fn panic_exits_101_with_every_event_flushed() {
    let run = run(APP, "panic", &[]);
    assert_eq!(run.code, Some(101), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("the body panicked"), "{}", run.stderr);
    let trace = read(&run.path("app-trace.bin"));
    assert!(trace.polls() >= APP_TASKS, "{} polls", trace.polls());
}

// ---- environment overrides -------------------------------------------------

#[test]
fn pulse_off_runs_untraced_and_writes_nothing() {
    let run = run(APP, "ok", &[("PULSE", "off")]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(run.files(), Vec::<String>::new());
}

#[test]
fn pulse_path_redirects_the_trace() {
    let run = run(APP, "ok", &[("PULSE_PATH", "redirected.bin")]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.files(), ["redirected.0.bin"]);
    let trace = read(&run.path("redirected.bin"));
    assert!(trace.polls() >= APP_TASKS);
    // The attribute's other settings still apply.
    assert_eq!(setting(&trace, "max_file_size"), "1048576");
}

#[test]
fn environment_overrides_writer_and_settings() {
    let run = run(
        APP,
        "ok",
        &[
            ("PULSE_WRITER", "file"),
            ("PULSE_PATH", "single.bin"),
            ("PULSE_FLUSH_MS", "123"),
            ("PULSE_SAMPLE_MS", "7"),
            ("PULSE_BUFFER_EVENTS", "64"),
        ],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.files(), ["single.bin"]);
    let trace = read(&run.path("single.bin"));
    assert_eq!(setting(&trace, "writer"), "file");
    assert_eq!(setting(&trace, "flush_ms"), "123");
    assert_eq!(setting(&trace, "sample_ms"), "7");
    assert_eq!(setting(&trace, "buffer_events"), "64");
    assert!(trace.polls() >= APP_TASKS);
}

/// Issue 18: `PULSE_SCHEDULE_LATENCY=on` makes every poll carry its
/// task's schedule latency; by default none does.
#[test]
fn schedule_latency_is_one_variable_away() {
    let latencies = |trace: &Trace| {
        trace
            .events
            .iter()
            .filter(|e| e.event_type() == EventType::ScheduleLatency)
            .count()
    };
    let run_on = run(APP, "ok", &[("PULSE_SCHEDULE_LATENCY", "on")]);
    assert_eq!(run_on.code, Some(0), "stderr: {}", run_on.stderr);
    let trace = read(&run_on.path("app-trace.bin"));
    assert_eq!(setting(&trace, "schedule_latency"), "true");
    assert!(trace.polls() >= APP_TASKS);
    assert_eq!(latencies(&trace), trace.polls(), "one per PollStart");
    let run_off = run(APP, "ok", &[]);
    let trace = read(&run_off.path("app-trace.bin"));
    assert_eq!(setting(&trace, "schedule_latency"), "false");
    assert_eq!(latencies(&trace), 0);
    let bad = run(APP, "ok", &[("PULSE_SCHEDULE_LATENCY", "sometimes")]);
    assert_eq!(bad.code, Some(0), "the program still runs");
    assert!(
        bad.pulse_lines()
            .iter()
            .any(|l| l.contains("PULSE_SCHEDULE_LATENCY=\"sometimes\": expected on or off")),
        "{}",
        bad.stderr
    );
}

#[test]
fn pulse_format_selects_the_version() {
    let run = run(APP, "ok", &[("PULSE_FORMAT", "v5")]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let trace = read(&run.path("app-trace.bin"));
    assert_eq!(trace.version, FormatVersion::V5);
    assert!(trace.polls() >= APP_TASKS);
}

#[test]
fn bad_value_prints_one_line_and_runs_untraced() {
    let run = run(
        APP,
        "ok",
        &[("PULSE_FLUSH_MS", "soon"), ("PULSE_WRITER", "s3")],
    );
    assert_eq!(run.code, Some(0), "the program still runs: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let line = run.stderr.trim_end();
    assert!(
        line.starts_with("pulse: not recording this run: "),
        "{line}"
    );
    assert!(line.contains("PULSE_FLUSH_MS=\"soon\""), "{line}");
    assert!(
        line.contains("PULSE_WRITER=\"s3\": expected rotating, file, null or memory"),
        "{line}"
    );
    assert_eq!(run.files(), Vec::<String>::new(), "untraced");
}

#[test]
fn a_misspelled_variable_gets_a_did_you_mean_and_the_run_is_recorded() {
    let run = run(
        APP,
        "ok",
        &[
            ("PULSE_FLUSH_MSEC", "50"),
            ("PULSE_SERVER", "unix:/run/pulse/native"),
            ("PULSE_QUIET", "on"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        "pulse: PULSE_FLUSH_MSEC is not one of pulse's variables, so it is ignored; did you mean PULSE_FLUSH_MS?",
        "PulseAudio's PULSE_SERVER is left alone"
    );
    assert!(!run.files().is_empty(), "recorded");
}

#[test]
fn a_path_in_a_missing_directory_creates_it() {
    let run = run(
        APP,
        "ok",
        &[("PULSE_PATH", "traces/api.bin"), ("PULSE_QUIET", "on")],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(run.files(), ["traces"]);
    assert!(run.path("traces").join("api.0.bin").is_file());
}

#[test]
fn unwritable_path_prints_one_line_and_runs_untraced() {
    // No directory can be made inside /dev/null, even by root.
    let run = run(
        APP,
        "ok",
        &[("PULSE_PATH", "/dev/null/missing-dir/trace.bin")],
    );
    assert_eq!(run.code, Some(0), "the program still runs: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("missing-dir"), "{}", run.stderr);
    assert!(
        run.stderr.contains("PULSE_PATH"),
        "says how to fix it: {}",
        run.stderr
    );
    assert_eq!(run.files(), Vec::<String>::new());
}

#[test]
fn out_of_range_value_prints_one_line_and_runs_untraced() {
    let run = run(APP, "ok", &[("PULSE_MAX_FILE_SIZE", "1KiB")]);
    assert_eq!(run.code, Some(0), "the program still runs: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("`max_file_size`"), "{}", run.stderr);
    assert_eq!(run.files(), Vec::<String>::new());
}

// ---- settings ---------------------------------------------------------------

#[test]
fn defaults_write_a_rotating_set_at_pulse_trace_bin() {
    let run = run(SETTINGS, "defaults", &[]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "pulse: recording to {} (rotating, 512 MiB max); PULSE=off to disable\n",
            run.path("pulse-trace.*.bin").display()
        )
    );
    assert_eq!(run.files(), ["pulse-trace.0.bin"]);
    let trace = read(&run.path("pulse-trace.bin"));
    assert_eq!(trace.version, FormatVersion::V6);
    for (key, value) in [
        ("flush_ms", "250"),
        ("sample_ms", "10"),
        ("buffer_events", "1024"),
        ("writer", "rotating"),
        ("max_file_size", "67108864"),
        ("max_total_size", "536870912"),
    ] {
        assert_eq!(setting(&trace, key), value, "{key}");
    }
    assert!(trace.polls() >= 20);
}

#[test]
fn null_writer_writes_nothing() {
    let run = run(SETTINGS, "null_writer", &[]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(
        run.stderr,
        "pulse: recording without writing (writer = null); PULSE=off to disable\n"
    );
    let quiet = super_quiet(SETTINGS);
    assert_eq!(quiet, "", "PULSE_QUIET=1 silences the start line");
    assert_eq!(run.files(), Vec::<String>::new());
}

fn super_quiet(program: &str) -> String {
    run(program, "null_writer", &[("PULSE_QUIET", "1")]).stderr
}

/// The macro checks literal values against copies of pulse's limits (it
/// cannot read pulse's constants). Every boundary it accepts must be
/// accepted by pulse at run time too: no "not recording" line, a trace.
#[test]
fn limits_the_macro_accepts_are_accepted_by_pulse() {
    for (case, file) in [
        ("smallest_rotation", "smallest.0.bin"),
        ("file_size_at_default_total", "largest-file.0.bin"),
        ("largest_buffer", "largest-buffer.bin"),
        ("buffer_at_default_backlog", "buffer-at-backlog.bin"),
    ] {
        let run = run(SETTINGS, case, &[]);
        assert_eq!(run.code, Some(0), "{case}: {}", run.stderr);
        assert_eq!(run.pulse_lines(), Vec::<&str>::new(), "{case}");
        assert_eq!(run.files(), [file], "{case}");
        let trace = read(&run.path(file));
        assert!(trace.polls() >= 20, "{case}: {} polls", trace.polls());
    }
}
