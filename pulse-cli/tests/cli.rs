//! The `pulse` binary as a user runs it: output, exit codes, one-line
//! errors, and no progress bar when stderr is not a terminal.

use pulse::RecordedEvent;
use pulse_trace::{
    rotated_path, Encoder, EndReason, FormatVersion, TraceEnd, TraceMetadata, MAGIC,
};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;

use support::{blocked_poll_events, pulse, MS};

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn metadata() -> TraceMetadata {
    TraceMetadata {
        worker_count: 1,
        has_run_delay: true,
        ..TraceMetadata::default()
    }
}

fn write_trace(path: &Path) {
    let bytes = trace_bytes(true);
    std::fs::write(path, bytes).unwrap();
}

/// The trace's bytes, ending with an end-of-trace record (as the recorder
/// writes at shutdown) or not (as after SIGKILL).
fn trace_bytes(with_end: bool) -> Vec<u8> {
    let mut encoder = Encoder::new(FormatVersion::V6, metadata());
    let mut bytes = Vec::new();
    encoder.begin_file(0, &mut bytes);
    let events = blocked_poll_events();
    for event in &events {
        encoder.encode(event, &mut bytes);
    }
    if with_end {
        let last = events
            .iter()
            .map(|e| e.timestamp_nanos())
            .max()
            .unwrap_or(0);
        encoder.encode_end(&TraceEnd::new(last, EndReason::Shutdown), &mut bytes);
    }
    bytes
}

/// The same events over three rotated files of the set based at `base`.
fn write_rotated(base: &Path) {
    let events = blocked_poll_events();
    let mut encoder = Encoder::new(FormatVersion::V6, metadata());
    for (index, chunk) in events.chunks(events.len().div_ceil(3)).enumerate() {
        let mut bytes = Vec::new();
        encoder.begin_file(index as u64, &mut bytes);
        for event in chunk {
            encoder.encode(event, &mut bytes);
        }
        if (index + 1) * events.len().div_ceil(3) >= events.len() {
            encoder.encode_end(&TraceEnd::new(300 * MS, EndReason::Shutdown), &mut bytes);
        }
        std::fs::write(rotated_path(base, index as u64), bytes).unwrap();
    }
}

#[test]
fn a_trace_without_an_end_record_is_never_complete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.bin");
    std::fs::write(&path, trace_bytes(false)).unwrap();
    let info = stdout(&pulse(&["info", path.to_str().unwrap()]));
    assert!(
        info.contains(
            "INCOMPLETE: ended without shutdown (killed, crashed or still running); events after \
             300.00 ms may be missing"
        ),
        "{info}"
    );
    assert!(!info.contains("complete: no events dropped"), "{info}");
    let output = pulse(&["analyze", "--json", path.to_str().unwrap()]);
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["completeness"]["complete"], false);
    assert_eq!(json["completeness"]["end"], Value::Null);
    let text = stdout(&pulse(&["analyze", path.to_str().unwrap()]));
    assert!(text.contains("ended without shutdown"), "{text}");

    // The same trace with its end record is complete and says how it ended.
    std::fs::write(&path, trace_bytes(true)).unwrap();
    let info = stdout(&pulse(&["info", path.to_str().unwrap()]));
    assert!(info.contains("ended: shutdown at 300.00 ms"), "{info}");
    assert!(info.contains("complete: no events dropped"), "{info}");
}

#[test]
fn analyze_leads_with_the_verdict_and_prints_nothing_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    write_trace(&path);
    let output = pulse(&["analyze", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(
            "Answer: workers were blocked inside polls (1 finding, 200.00 ms in all, on worker 0)"
        ),
        "{text}"
    );
    assert!(
        text.contains("BLOCKED IN A POLL  worker 0  50.00 ms .. 250.00 ms"),
        "{text}"
    );
    assert!(text.contains("task 42 (spawned at "), "{text}");
    assert!(text.find("Answer:") < text.find("Workers\n"), "{text}");
    // Not a terminal: no progress bar, no noise.
    assert_eq!(stderr(&output), "");
}

#[test]
fn analyze_json_follows_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    write_trace(&path);
    let output = pulse(&["analyze", "--json", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["schema"], "pulse-analysis/1");
    assert_eq!(json["findings"][0]["verdict"], "blocked_in_poll");
    assert_eq!(json["findings"][0]["task_id"], 42);
    assert_eq!(json["trace"]["worker_count"], 1);
    assert_eq!(json["completeness"]["complete"], true);
    assert_eq!(json["options"]["long_poll_ns"], 10 * MS);

    // Thresholds are flags.
    let output = pulse(&[
        "analyze",
        "--json",
        "--long-poll",
        "1s",
        path.to_str().unwrap(),
    ]);
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["findings"].as_array().unwrap().len(), 0);
    assert_eq!(json["options"]["long_poll_ns"], 1_000 * MS);
}

#[test]
fn a_rotated_set_and_a_directory_are_traces_too() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("set.bin");
    write_rotated(&base);
    write_trace(&dir.path().join("single.bin"));
    std::fs::write(dir.path().join("notes.txt"), "not a trace").unwrap();

    let output = pulse(&["analyze", "--json", base.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["trace"]["files"].as_array().unwrap().len(), 3);
    assert_eq!(json["findings"][0]["verdict"], "blocked_in_poll");

    let output = pulse(&["analyze", "--json", dir.path().to_str().unwrap()]);
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .expect("an array for several traces")
        .iter()
        .map(|a| a["trace"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names[0].ends_with("set.bin") && names[1].ends_with("single.bin"));

    // A conversion needs exactly one trace.
    let output = pulse(&["jsonl", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("holds 2 traces"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn info_describes_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    write_trace(&path);
    let output = pulse(&["info", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for expected in [
        "v6",
        "workers: 1",
        "written by: pulse",
        "run-queue wait recorded: yes",
        "duration: 300.00 ms",
        "events: 65",
        "PollStart                 1",
        "WorkerSample             31",
        "complete: no events dropped",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
}

#[test]
fn jsonl_and_chrome_write_files_or_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    write_trace(&path);
    let out = dir.path().join("trace.jsonl");
    let output = pulse(&["jsonl", path.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 65);
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "WorkerUnpark");

    let output = pulse(&["jsonl", path.to_str().unwrap()]);
    assert_eq!(stdout(&output), text, "stdout gets the same lines");

    let out = dir.path().join("trace.json");
    let output = pulse(&[
        "chrome",
        path.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let chrome: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let events = chrome["traceEvents"].as_array().unwrap();
    assert!(events.iter().any(|e| e["ph"] == "B" && e["ts"] == 50_000.0));
    assert!(events.iter().any(|e| e["name"] == "blocked in a poll"));
}

/// Errors are one line on stderr, starting `pulse: error:`, with exit
/// status 1.
fn assert_one_line_error(output: &Output, expected: &str) {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let err = stderr(output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("pulse: error: "), "{err}");
    assert!(err.contains(expected), "{expected:?} in {err}");
    assert_eq!(stdout(output), "");
}

#[test]
fn errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.bin");
    for command in ["analyze", "info", "jsonl", "chrome"] {
        let output = pulse(&[command, missing.to_str().unwrap()]);
        assert_one_line_error(&output, "no trace at ");
    }

    let not_a_trace = dir.path().join("notes.bin");
    std::fs::write(&not_a_trace, "these are my notes, not a trace").unwrap();
    let output = pulse(&["analyze", not_a_trace.to_str().unwrap()]);
    assert_one_line_error(&output, "byte 0: not a pulse trace");

    let future = dir.path().join("future.bin");
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&9u32.to_le_bytes());
    std::fs::write(&future, bytes).unwrap();
    let output = pulse(&["info", future.to_str().unwrap()]);
    assert_one_line_error(&output, "unsupported format version 9");

    // A corrupt record in the middle: the error names the byte.
    let corrupt = dir.path().join("corrupt.bin");
    write_trace(&corrupt);
    let mut bytes = std::fs::read(&corrupt).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 8].fill(0xff);
    std::fs::write(&corrupt, bytes).unwrap();
    let output = pulse(&["analyze", corrupt.to_str().unwrap()]);
    assert_one_line_error(&output, "corrupt.bin: byte ");

    let output = pulse(&["analyze", "--long-poll", "10", "x"]);
    assert_eq!(output.status.code(), Some(2), "usage errors are clap's");
    assert!(stderr(&output).contains("needs a unit"));
}

#[test]
fn a_truncated_trace_is_analyzed_and_marked_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    write_trace(&path);
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 3).unwrap();
    let output = pulse(&["analyze", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("INCOMPLETE"), "{text}");
    assert!(text.contains("reading stopped early: "), "{text}");
    assert!(
        text.contains("BLOCKED IN A POLL"),
        "what was read is analyzed"
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    // Enough events that the output outgrows the pipe's buffer.
    let mut encoder = Encoder::new(FormatVersion::V6, metadata());
    let mut bytes = Vec::new();
    encoder.begin_file(0, &mut bytes);
    for i in 0..200_000u64 {
        let event = RecordedEvent::QueueSample {
            timestamp_nanos: i * MS,
            global_queue: i % 5,
        };
        encoder.encode(&event, &mut bytes);
    }
    std::fs::write(&path, bytes).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(["jsonl", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stderr(&output), "");
}

#[test]
fn version_and_help() {
    let output = pulse(&["--version"]);
    assert!(stdout(&output).starts_with("pulse "));
    let output = pulse(&["--help"]);
    let help = stdout(&output);
    for command in ["analyze", "info", "jsonl", "chrome"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn a_trace_without_the_cfg_says_what_it_lacks() {
    // Recorded without `--cfg tokio_unstable`: worker 0 stays unparked for
    // 200 ms while its CPU clock stands still (blocked in some task).
    let mut events = vec![
        RecordedEvent::WorkerUnpark {
            timestamp_nanos: 50 * MS,
            worker: 0,
            local_queue: 0,
            cpu_nanos: Some(MS),
            run_delay_nanos: Some(0),
        },
        RecordedEvent::WorkerPark {
            timestamp_nanos: 250 * MS,
            worker: 0,
            local_queue: 0,
            cpu_nanos: Some(2 * MS),
            run_delay_nanos: Some(0),
        },
    ];
    for ms in (0..=300).step_by(10) {
        events.push(RecordedEvent::QueueSample {
            timestamp_nanos: ms * MS,
            global_queue: 0,
        });
    }
    events.sort_by_key(RecordedEvent::timestamp_nanos);
    let metadata = TraceMetadata {
        config: vec![("tokio_unstable".to_owned(), "false".to_owned())],
        ..metadata()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let mut encoder = Encoder::new(FormatVersion::V6, metadata);
    let mut bytes = Vec::new();
    encoder.begin_file(0, &mut bytes);
    for event in &events {
        encoder.encode(event, &mut bytes);
    }
    std::fs::write(&path, bytes).unwrap();

    let info = stdout(&pulse(&["info", path.to_str().unwrap()]));
    assert!(
        info.contains("task-level detail: none (recorded without --cfg tokio_unstable"),
        "{info}"
    );
    let report = stdout(&pulse(&["analyze", path.to_str().unwrap()]));
    assert!(
        report.contains("Answer: workers were unparked but off-CPU (blocked, task unknown)"),
        "{report}"
    );
    assert!(report.contains("--cfg tokio_unstable"), "{report}");
    assert!(!report.contains("blocked in a poll"), "{report}");
    let json: Value =
        serde_json::from_slice(&pulse(&["analyze", "--json", path.to_str().unwrap()]).stdout)
            .unwrap();
    assert_eq!(json["trace"]["tokio_unstable"], false);
    assert!(json["trace"]["task_detail"]
        .as_str()
        .is_some_and(|note| note.contains("--cfg tokio_unstable")));
    assert_eq!(json["findings"][0]["verdict"], "unparked_off_cpu");
    assert_eq!(json["findings"][0]["cpu"]["cpu_ns"], MS);
}
