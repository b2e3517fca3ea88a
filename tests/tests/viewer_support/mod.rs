//! Shared by the viewer tests: finding Node and Chromium, the repository
//! root, and real traces recorded from a traced runtime.

#![allow(dead_code)] // each test file uses part of it

use pulse::{Config, Recorder, WriterConfig};
use pulse_trace::FormatVersion;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
pub use tests::spin_for;

/// Set (to anything) by `.ci/run`: a missing Node or Chromium is then a
/// failure instead of a skipped test.
pub const REQUIRE_ENV: &str = "PULSE_REQUIRE_BROWSER";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Whether `program` can run. If not: fails the test when
/// [`REQUIRE_ENV`] is set, otherwise prints one `SKIPPED` line that
/// survives cargo's output capture (the test then counts as passed).
pub fn require(program: &str, what: &str) -> bool {
    if have(program) {
        return true;
    }
    if std::env::var_os(REQUIRE_ENV).is_some() {
        panic!("`{program}` is needed for {what} ({REQUIRE_ENV} is set): install it");
    }
    // Straight to the process's stderr, not through `eprintln!`, which the
    // test harness captures and shows only for failures: a skipped test
    // counts as passed, so this line is what tells it apart.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {}: `{program}` is not installed, so {what} did not run \
         (.ci/run installs it and sets {REQUIRE_ENV})",
        std::thread::current().name().unwrap_or("a viewer test"),
    );
    false
}

/// The Chromium binary: `$CHROMIUM`, else `chromium` on the PATH.
pub fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

/// Records a real 2-worker traced runtime into `path` (one file) in
/// `format`: short polls, yields, timers, cross-worker wake-ups, and one
/// task that blocks its worker with `std::thread::sleep(blocked)`.
///
/// Returns where the blocking task was spawned, as the trace names it
/// (`file:line:column`).
pub fn record_blocking_trace(path: &Path, format: FormatVersion, blocked: Duration) -> String {
    let config = Config::new()
        .writer(WriterConfig::file(path))
        .format(format)
        .flush_ms(20)
        .sample_ms(5);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, &config).expect("traced runtime");
    let site = runtime.block_on(async move {
        let mut tasks = Vec::new();
        for i in 0..24u64 {
            tasks.push(tokio::spawn(async move {
                for j in 0..20 {
                    spin_for(Duration::from_micros(20 + (i * 7 + j) % 30));
                    if j % 4 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    } else {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        // Cross-worker wake-ups through a channel.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(4);
        tasks.push(tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                std::hint::black_box(n);
            }
        }));
        tasks.push(tokio::spawn(async move {
            for n in 0..200 {
                let _ = tx.send(n).await;
            }
        }));
        tokio::time::sleep(Duration::from_millis(30)).await;
        // The blocking call in async code.
        let (task, site) = spawn_here(async move { std::thread::sleep(blocked) });
        task.await.expect("blocking task");
        tokio::time::sleep(Duration::from_millis(30)).await;
        for task in tasks {
            task.await.expect("task");
        }
        site
    });
    drop(runtime);
    let summary = guard.finish().expect("final flush");
    let site = format!("{}:{}:{}", site.file(), site.line(), site.column());
    assert_eq!(
        summary.dropped_events, 0,
        "the test trace should be complete"
    );
    site
}

/// `tokio::spawn`, and the location Tokio records as the task's spawn site.
#[track_caller]
fn spawn_here<F>(
    future: F,
) -> (
    tokio::task::JoinHandle<F::Output>,
    &'static std::panic::Location<'static>,
)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    (tokio::spawn(future), std::panic::Location::caller())
}

/// Runs browser.js; returns its report as a JSON value.
pub fn run_browser(page: &Path, out_dir: &Path, options: &[&str]) -> serde_json::Value {
    let report = out_dir.join("report.json");
    let script = repo_root().join("viewer/test/browser.js");
    let output = Command::new("node")
        .arg(&script)
        .arg(page)
        .arg(&report)
        .args(options)
        .env("CHROMIUM", chromium())
        .output()
        .expect("run node");
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    assert!(
        output.status.success(),
        "browser.js failed ({}):\n{}\nreport: {text}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&text).expect("browser.js writes JSON")
}

pub fn have_browser() -> bool {
    require("node", "the browser tests") && require(&chromium(), "the browser tests")
}
