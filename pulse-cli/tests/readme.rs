//! The README's `pulse` commands, run as written (`cargo pulse` and `cargo
//! run -p tokio-pulse-cli --` stand for this package's binary) on a real
//! recording at the path the README uses, so the README cannot drift from
//! the command line: every command succeeds, every file a comment says it
//! writes is written, and every command and flag of its table exists.

use pulse::{Config, Recorder, WriterConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The lines of the README's `sh` blocks.
fn shell_lines(readme: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            inside = line == "```sh";
            continue;
        }
        if inside && !line.trim().is_empty() && !line.starts_with('#') {
            lines.push(line.to_owned());
        }
    }
    lines
}

/// Records about 1.2 s of a real traced runtime into the rotating set at
/// `base`, as the demo does.
fn record(base: &Path) {
    let config =
        Config::new()
            .sample_ms(5)
            .writer(WriterConfig::rotating(base, 64 << 10, 64 << 20));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, &config).unwrap();
    runtime.block_on(async {
        let start = tokio::time::Instant::now();
        while start.elapsed() < Duration::from_millis(1200) {
            let tasks: Vec<_> = (0..20)
                .map(|i| {
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_micros(200 + i * 50)).await;
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            // A blocking call in async code, for a finding.
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(15)) })
                .await
                .unwrap();
        }
    });
    drop(runtime);
    guard.finish().unwrap();
}

#[test]
fn the_readme_commands_run_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    record(&dir.path().join("target/pulse-demo/trace.bin"));
    let mut ran = 0;
    for line in shell_lines(&readme) {
        let (command, comment) = line.split_once(" # ").unwrap_or((&line, ""));
        let args = if let Some(rest) = command.strip_prefix("cargo pulse ") {
            rest
        } else if let Some(rest) =
            command.strip_prefix("cargo run --release -p tokio-pulse-cli -- ")
        {
            rest
        } else if let Some(path) = command.strip_prefix("cargo install --path ") {
            let manifest =
                std::fs::read_to_string(repo().join(path.trim()).join("Cargo.toml")).unwrap();
            assert!(
                manifest.contains("name = \"pulse\""),
                "{path} installs the `pulse` binary"
            );
            continue;
        } else {
            continue;
        };
        let output = Command::new(env!("CARGO_BIN_EXE_pulse"))
            .args(args.split_whitespace())
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "`{command}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if let Some(written) = comment.trim().strip_prefix("writes ") {
            assert!(
                dir.path().join(written).is_file(),
                "`{command}` writes {written}"
            );
        }
        if let Some(o) = args.split_whitespace().skip_while(|a| *a != "-o").nth(1) {
            assert!(dir.path().join(o).is_file(), "`{command}` writes {o}");
        }
        ran += 1;
    }
    assert!(ran >= 5, "the README shows pulse commands ({ran} found)");

    // The commands table: every command, and every flag it shows, exists.
    for row in readme.lines().filter(|l| l.starts_with("| `pulse ")) {
        let usage = row.split('`').nth(1).unwrap();
        let sub = usage.split_whitespace().nth(1).unwrap();
        let help = Command::new(env!("CARGO_BIN_EXE_pulse"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(help.status.success(), "`pulse {sub}` exists");
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in usage.split(|c: char| c.is_whitespace() || c == '[' || c == ']') {
            if flag.starts_with('-') {
                assert!(help.contains(flag), "`pulse {sub}` has {flag}:\n{help}");
            }
        }
    }
}
