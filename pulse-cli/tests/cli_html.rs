//! `pulse html` as a user runs it: one page per trace, holding every file
//! of the trace byte for byte and the analysis' findings; the default
//! output next to the trace; one-line errors.

use pulse_trace::{rotated_path, Encoder, FormatVersion, TraceMetadata};
use serde_json::Value;
use std::path::Path;

mod support;

use support::{blocked_poll_events, pulse, MS};

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The events over `files` rotated files based at `base`; returns each
/// file's bytes.
fn write_rotated(base: &Path, files: usize) -> Vec<Vec<u8>> {
    let events = blocked_poll_events();
    let metadata = TraceMetadata {
        worker_count: 1,
        has_run_delay: true,
        ..TraceMetadata::default()
    };
    let mut encoder = Encoder::new(FormatVersion::V6, metadata);
    let mut written = Vec::new();
    for (index, chunk) in events.chunks(events.len().div_ceil(files)).enumerate() {
        let mut bytes = Vec::new();
        encoder.begin_file(index as u64, &mut bytes);
        for event in chunk {
            encoder.encode(event, &mut bytes);
        }
        std::fs::write(rotated_path(base, index as u64), &bytes).unwrap();
        written.push(bytes);
    }
    written
}

fn unbase64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            other => panic!("not base64: {:?}", other as char),
        }
    };
    let mut out = Vec::new();
    for group in text.as_bytes().chunks(4) {
        let data: Vec<u8> = group.iter().copied().filter(|&c| c != b'=').collect();
        let n = data
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | value(c) << (18 - 6 * i));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..data.len()]);
    }
    out
}

/// The files a page embeds, in order: (name, bytes).
fn embedded(page: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, String)> = Vec::new();
    let mut rest = page;
    let open = "<script type=\"application/x-pulse-trace\" data-name=\"";
    while let Some(start) = rest.find(open) {
        rest = &rest[start + open.len()..];
        let (name, after) = rest.split_once('"').unwrap();
        let (_, after) = after.split_once('>').unwrap();
        let (body, after) = after.split_once("</script>").unwrap();
        match files.last_mut() {
            Some((last, text)) if last == name => text.push_str(body),
            _ => files.push((name.to_owned(), body.to_owned())),
        }
        rest = after;
    }
    files
        .into_iter()
        .map(|(name, text)| (name, unbase64(&text)))
        .collect()
}

fn findings(page: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"pulse-findings\">";
    let start = page.find(open).expect("a findings block") + open.len();
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).unwrap()
}

#[test]
fn html_writes_one_page_with_the_whole_trace_and_its_findings() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("trace.bin");
    let files = write_rotated(&base, 3);
    let out = dir.path().join("out.html");
    let output = pulse(&["html", base.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let said = text(&output.stdout);
    assert!(
        said.starts_with(&format!("wrote {}", out.display())),
        "{said}"
    );
    assert!(said.contains("1 findings"), "{said}");
    assert_eq!(text(&output.stderr), "");

    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    let embedded = embedded(&page);
    assert_eq!(embedded.len(), 3);
    for (index, ((name, bytes), written)) in embedded.iter().zip(&files).enumerate() {
        assert_eq!(
            Path::new(name),
            rotated_path(&base, index as u64),
            "files in set order"
        );
        assert_eq!(bytes, written, "{name} is embedded byte for byte");
    }
    let findings = findings(&page);
    assert_eq!(findings[0]["verdict"], "blocked_in_poll");
    assert_eq!(findings[0]["worker"], 0);
    assert_eq!(findings[0]["task_id"], 42);
    assert_eq!(findings[0]["start_ns"], 50 * MS);
    assert_eq!(findings[0]["end_ns"], 250 * MS);
}

#[test]
fn html_writes_next_to_the_trace_by_default_and_reads_several_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("run.bin");
    let files = write_rotated(&base, 2);
    let output = pulse(&["html", base.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let page = std::fs::read_to_string(dir.path().join("run.html")).unwrap();
    assert_eq!(embedded(&page).len(), 2);

    // Files named one by one are one trace, in the order given.
    let first = rotated_path(&base, 0);
    let second = rotated_path(&base, 1);
    let out = dir.path().join("both.html");
    let output = pulse(&[
        "html",
        first.to_str().unwrap(),
        second.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let page = std::fs::read_to_string(&out).unwrap();
    let embedded: Vec<Vec<u8>> = embedded(&page).into_iter().map(|(_, b)| b).collect();
    assert_eq!(embedded, files);
    assert_eq!(findings(&page)[0]["verdict"], "blocked_in_poll");
}

#[test]
fn html_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.bin");
    let output = pulse(&["html", missing.to_str().unwrap()]);
    assert!(!output.status.success());
    let err = text(&output.stderr);
    assert!(err.starts_with("pulse: error: no trace at "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let base = dir.path().join("trace.bin");
    write_rotated(&base, 1);
    let out = dir.path().join("no-such-dir").join("out.html");
    let output = pulse(&["html", base.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(!output.status.success());
    let err = text(&output.stderr);
    assert!(err.contains("out.html"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
