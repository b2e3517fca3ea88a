//! Trace files are private to their owner, and paths from the environment
//! are used as given (issue 8, item 6).
//!
//! `trace_files.rs` checks that new files get mode 0600. Here: a trace file
//! that already exists with a looser mode is made private too, the mode
//! does not depend on the umask, and `PULSE_PATH` is never expanded like a
//! shell would (`~`, `$HOME`, `${HOME}`, `$(...)`, globs).

#![cfg(unix)]

use pulse::{RotatingWriter, SimpleBinaryWriter, TraceWriter};
use pulse_trace::{rotated_files, TraceReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const MAIN: &str = env!("CARGO_BIN_EXE_reliability_main");

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn an_existing_world_readable_trace_file_is_made_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    std::fs::write(&path, b"an old trace").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut writer = SimpleBinaryWriter::new(&path).unwrap();
    assert_eq!(mode(&path), 0o600, "before anything is written");
    writer.finish().unwrap();
    assert_eq!(mode(&path), 0o600);
    TraceReader::open(&path).unwrap();
}

#[test]
fn a_device_given_as_the_trace_path_keeps_its_mode() {
    // Only regular files are made private: /dev/null stays usable by all.
    let before = mode(Path::new("/dev/null"));
    let mut writer = SimpleBinaryWriter::new("/dev/null").unwrap();
    writer.finish().unwrap();
    assert_eq!(mode(Path::new("/dev/null")), before);
}

/// Runs `reliability_main ok` in `dir` with umask 000 and `PULSE_*` set as
/// given, and HOME pointing at `home`.
fn run_main(dir: &Path, home: &Path, env: &[(&str, &str)]) {
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 000 && exec \"$0\" ok", MAIN])
        .current_dir(dir)
        .env("HOME", home)
        .env_remove("RUST_BACKTRACE");
    for variable in pulse::config::env::VARIABLES {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Only the line at start, saying where the trace goes.
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("pulse:")).count(),
        1,
        "{stderr}"
    );
    assert!(stderr.starts_with("pulse: recording to "), "{stderr}");
}

#[test]
fn trace_files_are_0600_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    run_main(dir.path(), dir.path(), &[]);
    assert_eq!(mode(&dir.path().join("main-trace.bin")), 0o600);
    run_main(
        dir.path(),
        dir.path(),
        &[("PULSE_WRITER", "rotating"), ("PULSE_PATH", "set.bin")],
    );
    let files = rotated_files(&dir.path().join("set.bin")).unwrap();
    assert!(!files.is_empty());
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // The same through the library, for a set that rotates.
    let base = dir.path().join("lib.bin");
    let mut writer = RotatingWriter::new(&base, 4096, 1 << 20).unwrap();
    for i in 0..5_000 {
        writer
            .write_batch(&[pulse::RecordedEvent::QueueSample {
                timestamp_nanos: i * 1_000_000,
                global_queue: i,
            }])
            .unwrap();
    }
    writer.finish().unwrap();
    let files = rotated_files(&base).unwrap();
    assert!(files.len() >= 2);
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn pulse_path_is_used_literally() {
    for literal in [
        "~/trace.bin",
        "$HOME/trace.bin",
        "${HOME}/trace.bin",
        "$(echo x)/trace.bin",
        "*/trace.bin",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        // A directory whose name is the unexpanded text.
        let (name, file) = literal.split_once('/').unwrap();
        std::fs::create_dir(dir.path().join(name)).unwrap();
        run_main(dir.path(), home.path(), &[("PULSE_PATH", literal)]);
        let written = dir.path().join(name).join(file);
        let events = TraceReader::open(&written)
            .unwrap_or_else(|err| panic!("{literal}: {err}"))
            .count();
        assert!(events > 0, "{literal}");
        assert_eq!(
            std::fs::read_dir(home.path()).unwrap().count(),
            0,
            "{literal}: nothing written in $HOME"
        );
        assert!(!dir.path().join("main-trace.bin").exists(), "{literal}");
    }
}

#[test]
fn an_unexpandable_pulse_path_is_reported_as_given() {
    // With no directory named `~`, the path cannot be created: the one
    // line on stderr names it exactly as it was set.
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(MAIN)
        .arg("ok")
        .current_dir(dir.path())
        .env("PULSE_PATH", "~/trace.bin")
        .env("HOME", dir.path())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("pulse: not recording this run: cannot write trace file ~/trace.bin: "),
        "{stderr}"
    );
    assert!(stderr.contains("`~` is not expanded here"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no directory named ~ is made"
    );
}
