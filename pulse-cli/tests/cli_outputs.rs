//! Where `pulse` writes, and what a failure leaves behind: outputs go to a
//! temporary file renamed at the end (an earlier output survives a failed
//! export), are private (0600) like the traces, `chrome` writes next to the
//! trace and never to a terminal, and `html --from/--to` cuts a window.

use pulse_trace::{rotated_path, Encoder, FormatVersion, TraceMetadata};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

mod support;

use support::{blocked_poll_events, pulse, MS};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The events over `files` rotated files at `base` (one plain file at
/// `base` when `files` is 0).
fn write_trace(base: &Path, files: usize) {
    let events = blocked_poll_events();
    let metadata = TraceMetadata {
        worker_count: 1,
        has_run_delay: true,
        ..TraceMetadata::default()
    };
    let mut encoder = Encoder::new(FormatVersion::V6, metadata);
    for (index, chunk) in events
        .chunks(events.len().div_ceil(files.max(1)))
        .enumerate()
    {
        let mut bytes = Vec::new();
        encoder.begin_file(index as u64, &mut bytes);
        for event in chunk {
            encoder.encode(event, &mut bytes);
        }
        let path = if files == 0 {
            base.to_owned()
        } else {
            rotated_path(base, index as u64)
        };
        std::fs::write(path, &bytes).unwrap();
    }
}

/// A trace whose second half is corrupt: reading it fails midway, after
/// the exports have started writing.
fn write_corrupt(path: &Path) {
    write_trace(path, 0);
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 8].fill(0xff);
    std::fs::write(path, bytes).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_failed_export_leaves_the_earlier_output_intact() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.bin");
    write_corrupt(&bad);
    let earlier = b"the output of an earlier, good run";
    let cases = [
        (vec!["html"], "bad.html"),
        (vec!["html", "-o", "page.html"], "page.html"),
        (vec!["chrome"], "bad.chrome.json"),
        (vec!["chrome", "-o", "out.json"], "out.json"),
        (vec!["jsonl", "-o", "out.jsonl"], "out.jsonl"),
    ];
    for (args, output) in &cases {
        std::fs::write(dir.path().join(output), earlier).unwrap();
        let mut argv: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        if let Some(o) = argv.iter().position(|a| a == "-o") {
            argv[o + 1] = dir.path().join(&argv[o + 1]).display().to_string();
        }
        argv.insert(1, bad.display().to_string());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let result = pulse(&argv);
        assert_eq!(result.status.code(), Some(1), "{argv:?}: {result:?}");
        assert!(
            stderr(&result).contains("bad.bin: byte "),
            "{}",
            stderr(&result)
        );
        assert_eq!(
            std::fs::read(dir.path().join(output)).unwrap(),
            earlier,
            "{argv:?} kept the earlier {output}"
        );
    }
    // No temporary file is left behind.
    let mut expected: Vec<String> = cases.iter().map(|(_, o)| (*o).to_owned()).collect();
    expected.push("bad.bin".to_owned());
    expected.sort();
    expected.dedup();
    assert_eq!(entries(dir.path()), expected);
}

#[test]
fn outputs_are_private_and_chrome_writes_next_to_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.bin");
    write_trace(&trace, 0);
    let t = trace.to_str().unwrap();

    let result = pulse(&["chrome", t]);
    assert!(result.status.success(), "{}", stderr(&result));
    let chrome = dir.path().join("trace.chrome.json");
    let out = String::from_utf8(result.stdout).unwrap();
    assert!(
        out.starts_with(&format!("wrote {}", chrome.display())),
        "{out}"
    );
    assert_eq!(
        out.lines().count(),
        1,
        "a one-line note, never the JSON: {out}"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&chrome).unwrap()).unwrap();
    assert!(json["traceEvents"].as_array().unwrap().len() > 10);

    // `-o -` writes to standard output when it is a pipe.
    let result = pulse(&["chrome", t, "-o", "-"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let piped: Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(piped, json);

    assert!(pulse(&["html", t]).status.success());
    let jsonl = dir.path().join("trace.jsonl");
    assert!(pulse(&["jsonl", t, "-o", jsonl.to_str().unwrap()])
        .status
        .success());
    for path in [&chrome, &dir.path().join("trace.html"), &jsonl] {
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
    assert_eq!(
        mode(&trace),
        0o644,
        "the test's own trace file is not private"
    );
}

/// The embedded files and the meta block of a page.
fn page_parts(page: &str) -> (Vec<String>, Value, Value) {
    let mut names = Vec::new();
    let open = "<script type=\"application/x-pulse-trace\" data-name=\"";
    let mut rest = page;
    while let Some(start) = rest.find(open) {
        rest = &rest[start + open.len()..];
        let (name, after) = rest.split_once('"').unwrap();
        if names.last().map(String::as_str) != Some(name) {
            names.push(name.to_owned());
        }
        rest = after;
    }
    let block = |id: &str| -> Value {
        let open = format!("<script type=\"application/json\" id=\"{id}\">");
        let start = page.find(&open).expect("the block") + open.len();
        let end = start + page[start..].find("</script>").unwrap();
        serde_json::from_str(&page[start..end]).unwrap()
    };
    (names, block("pulse-meta"), block("pulse-findings"))
}

#[test]
fn html_cuts_a_time_window() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("trace.bin");
    write_trace(&base, 3);
    let b = base.to_str().unwrap();
    let page = dir.path().join("trace.html");

    // The whole set: three files, the blocked poll marked.
    assert!(pulse(&["html", b]).status.success());
    let (files, meta, findings) = page_parts(&std::fs::read_to_string(&page).unwrap());
    assert_eq!(files.len(), 3);
    assert!(meta.get("window").is_none());
    assert_eq!(findings.as_array().unwrap().len(), 1);

    // The last 40 ms: only the last file, no finding (the poll ended at 250 ms).
    let result = pulse(&["html", b, "--from", "260ms", "--to", "300ms"]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(String::from_utf8(result.stdout)
        .unwrap()
        .contains("0 findings in the window"));
    let (files, meta, findings) = page_parts(&std::fs::read_to_string(&page).unwrap());
    assert_eq!(files, [rotated_path(&base, 2).display().to_string()]);
    assert_eq!(meta["window"], serde_json::json!([260 * MS, 300 * MS]));
    assert_eq!(findings.as_array().unwrap().len(), 0);

    // A window inside the poll keeps its finding; --to alone runs from the start.
    assert!(pulse(&["html", b, "--from", "0.1s", "--to", "120ms"])
        .status
        .success());
    let (_, meta, findings) = page_parts(&std::fs::read_to_string(&page).unwrap());
    assert_eq!(meta["window"], serde_json::json!([100 * MS, 120 * MS]));
    assert_eq!(findings[0]["task_id"], 42);
    assert!(pulse(&["html", b, "--to", "20ms"]).status.success());
    let (files, ..) = page_parts(&std::fs::read_to_string(&page).unwrap());
    assert_eq!(files, [rotated_path(&base, 0).display().to_string()]);

    // Windows that cannot work are one-line errors, and the page stays.
    let before = std::fs::read(&page).unwrap();
    for (args, expected) in [
        (
            ["--from", "2s", "--to", "3s"],
            "holds no part of the trace, which lasts 300ms",
        ),
        (
            ["--from", "50ms", "--to", "10ms"],
            "--from 50ms is not before --to 10ms",
        ),
    ] {
        let mut argv = vec!["html", b];
        argv.extend(args);
        let result = pulse(&argv);
        assert_eq!(result.status.code(), Some(1));
        let err = stderr(&result);
        assert!(
            err.starts_with("pulse: error: ") && err.contains(expected),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(std::fs::read(&page).unwrap(), before);
}

/// A poll finding's spawn site may serve every connection: the report says
/// what to do next, with the finding's time and a `pulse html` window
/// command that works as printed.
#[test]
fn the_report_says_what_to_do_next_about_a_spawn_site() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.bin");
    write_trace(&trace, 0);
    let result = pulse(&["analyze", trace.to_str().unwrap()]);
    assert!(result.status.success(), "{}", stderr(&result));
    let text = String::from_utf8(result.stdout).unwrap();
    let next = text
        .lines()
        .find(|l| l.starts_with("Next: a spawn site often serves many tasks"))
        .unwrap_or_else(|| panic!("no next step in\n{text}"));
    assert!(
        next.contains("tests/support/mod.rs"),
        "names the site: {next}"
    );
    assert!(
        next.contains("match the time of the longest poll finding, 50.00 ms"),
        "{next}"
    );
    let command = next.split('`').nth(1).expect("a command in backticks");
    assert_eq!(
        command,
        format!("pulse html {} --from 0.000s --to 0.350s", trace.display())
    );
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    assert!(
        pulse(&args).status.success(),
        "`{command}` works as printed"
    );
}
