//! The HTML viewer in a real browser: pages written by
//! `pulse::export::html` (what `pulse html` writes) and the repository's
//! standalone `viewer/trace_viewer.html` are opened in headless Chromium
//! (driven over the DevTools protocol by `viewer/test/browser.js`), and what
//! they render is checked against pulse's Rust reader and analysis: a lane
//! for every worker, the summary's counts, a marker for the blocked phase
//! (drawn on the canvas, and hoverable), and no JavaScript error.

mod viewer_support;

use pulse::analysis::{analyze_set, Analysis, AnalysisOptions, TraceSet, Verdict};
use pulse::format::TraceReader;
use pulse::{EventType, FormatVersion};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use viewer_support::{chromium, record_blocking_trace, repo_root, require};

/// How long the blocking task sleeps inside its poll.
const BLOCKED: Duration = Duration::from_millis(150);

/// What the Rust reader says about a trace.
struct Truth {
    counts: BTreeMap<&'static str, u64>,
    events: u64,
    dropped: u64,
    workers: BTreeSet<u32>,
}

fn truth(path: &Path) -> Truth {
    let mut counts = BTreeMap::new();
    for kind in EventType::ALL {
        counts.insert(kind.name(), 0);
    }
    let mut truth = Truth {
        counts,
        events: 0,
        dropped: 0,
        workers: BTreeSet::new(),
    };
    for event in TraceReader::open(path).expect("open trace") {
        let event = event.expect("trace reads back");
        *truth.counts.entry(event.event_type().name()).or_default() += 1;
        truth.events += 1;
        if let Some(worker) = event.worker() {
            truth.workers.insert(worker);
        }
        if let pulse::TraceEvent::EventsDropped { count, .. } = event {
            truth.dropped += count;
        }
    }
    truth
}

/// Runs browser.js; returns its report as a JSON value.
fn run_browser(page: &Path, out_dir: &Path, options: &[&str]) -> serde_json::Value {
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

fn have_browser() -> bool {
    require("node", "the browser tests") && require(&chromium(), "the browser tests")
}

fn u64_at(value: &serde_json::Value, pointer: &str) -> u64 {
    value
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} missing in {value:#}"))
}

/// The checks both pages share: it loaded, without JavaScript errors, with
/// one lane per worker and the reader's counts in the summary.
fn check_page(report: &serde_json::Value, truth: &Truth) {
    assert_eq!(
        report["state"], "ready",
        "the page did not load: {report:#}"
    );
    assert_eq!(
        report["errors"],
        serde_json::json!([]),
        "JavaScript errors were logged"
    );
    assert_eq!(report["page"]["viewerErrors"], serde_json::json!([]));
    let page = &report["page"];

    // A lane, labelled in the page, for every worker and no other.
    let labels: BTreeSet<u32> = page["laneLabels"]
        .as_array()
        .expect("lane labels")
        .iter()
        .map(|l| l["worker"].as_u64().expect("worker") as u32)
        .collect();
    assert_eq!(labels, truth.workers, "lane labels");
    let lanes: BTreeSet<u32> = page["lanes"]
        .as_array()
        .expect("lanes")
        .iter()
        .map(|l| l["worker"].as_u64().expect("worker") as u32)
        .collect();
    assert_eq!(lanes, truth.workers, "lanes drawn");
    assert_eq!(u64_at(page, "/workersShown"), truth.workers.len() as u64);

    // The summary shows the reader's counts.
    assert_eq!(u64_at(page, "/summary/events"), truth.events, "events");
    assert_eq!(u64_at(page, "/summary/dropped"), truth.dropped, "dropped");
    for (kind, count) in &truth.counts {
        assert_eq!(
            u64_at(page, &format!("/summary/kinds/{kind}")),
            *count,
            "{kind} count in the summary"
        );
    }
    let text = page["summaryText"].as_str().expect("summary text");
    assert!(
        text.contains(&format_count(truth.events)),
        "the summary reads {text:?}"
    );
}

/// 12345 → "12,345", as the page writes counts.
fn format_count(n: u64) -> String {
    let mut groups = Vec::new();
    let mut rest = n;
    loop {
        groups.push(rest % 1000);
        rest /= 1000;
        if rest == 0 {
            break;
        }
    }
    let mut out = groups.pop().unwrap_or(0).to_string();
    while let Some(group) = groups.pop() {
        out.push_str(&format!(",{group:03}"));
    }
    out
}

#[test]
fn counts_are_formatted_as_the_page_formats_them() {
    assert_eq!(format_count(0), "0");
    assert_eq!(format_count(999), "999");
    assert_eq!(format_count(1_000), "1,000");
    assert_eq!(format_count(12_345_678), "12,345,678");
}

fn record(dir: &Path, format: FormatVersion) -> PathBuf {
    let path = dir.join("trace.bin");
    record_blocking_trace(&path, format, BLOCKED);
    path
}

fn analyze(path: &Path) -> (TraceSet, Analysis) {
    let set = TraceSet::open(path).expect("trace set");
    let analysis = analyze_set(&set, &AnalysisOptions::default(), |_, _| {}).expect("analysis");
    (set, analysis)
}

#[test]
fn pulse_html_page_shows_lanes_counts_and_the_blocked_poll_marker() {
    if !have_browser() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = record(dir.path(), FormatVersion::V6);
    let truth = truth(&trace);
    let (set, analysis) = analyze(&trace);
    let blocked = analysis
        .findings_with(Verdict::BlockedInPoll)
        .find(|f| f.duration_ns >= BLOCKED.as_nanos() as u64 * 9 / 10)
        .unwrap_or_else(|| {
            panic!(
                "the analysis finds the blocked poll: {:#?}",
                analysis.findings
            )
        })
        .clone();

    let page = dir.path().join("trace.html");
    let out = BufWriter::new(File::create(&page).expect("create page"));
    pulse::export::html::write_html(&set, Some(&analysis), out, "trace.html", |_, _| {})
        .expect("write the page");
    let report = run_browser(&page, dir.path(), &["--focus-verdict", "blocked_in_poll"]);
    check_page(&report, &truth);

    // Every finding is listed, and the blocked one on its worker.
    assert_eq!(
        u64_at(&report, "/page/findings"),
        analysis.findings.len() as u64
    );
    let items = report["page"]["findingItems"].as_array().expect("items");
    assert!(
        items.iter().any(|i| i["verdict"] == "blocked_in_poll"
            && i["worker"] == blocked.worker
            && i["text"]
                .as_str()
                .unwrap_or("")
                .contains("blocked in a poll")),
        "no list item for the blocked poll: {items:#?}"
    );

    // Stepping to it draws its marker on the blocked worker's lane ...
    let target = &report["target"];
    assert_eq!(target["finding"]["verdict"], "blocked_in_poll");
    let index = target["index"].as_u64().expect("index");
    let markers = report["markers"].as_array().expect("markers");
    let marker = markers
        .iter()
        .find(|m| m["index"].as_u64() == Some(index))
        .unwrap_or_else(|| panic!("no marker drawn for the finding: {markers:#?}"));
    assert_eq!(marker["verdict"], "blocked_in_poll");
    assert_eq!(marker["worker"].as_u64(), Some(u64::from(blocked.worker)));
    // ... really, on the canvas: the verdict's red at the marker's edge.
    let pixel: Vec<u64> = report["markerPixel"]
        .as_array()
        .expect("pixel")
        .iter()
        .map(|v| v.as_u64().expect("channel"))
        .collect();
    assert!(
        pixel[0] > 150 && pixel[1] < 90 && pixel[2] < 90 && pixel[3] == 255,
        "the marker's edge is not red: {pixel:?}"
    );

    // Hovering it shows the poll's times, task and spawn location and the
    // finding's verdict.
    let tooltip = &report["tooltip"];
    assert_eq!(tooltip["visible"], true, "no tooltip: {report:#}");
    let text = tooltip["text"].as_str().expect("tooltip text");
    assert!(
        text.contains(&format!("Worker {}", blocked.worker)),
        "{text}"
    );
    let task = blocked.task_id.expect("the blocked poll's task");
    assert!(text.contains(&format!("Poll of task {task}")), "{text}");
    assert!(text.contains("blocked in a poll"), "{text}");
    assert!(text.contains("duration"), "{text}");
    assert!(text.contains("CPU/wall ratio"), "{text}");
    if let Some(site) = &blocked.spawned_at {
        assert!(text.contains(site.as_str()), "{text} lacks {site}");
    }
}

#[test]
fn standalone_viewer_opens_a_chosen_trace_file() {
    if !have_browser() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // A v5 trace (no task ids, no metadata), through the file picker.
    let trace = record(dir.path(), FormatVersion::V5);
    let truth = truth(&trace);
    let page = repo_root().join("viewer/trace_viewer.html");
    // The worker whose longest poll is the blocking one.
    let mut longest = (0u64, 0u32);
    let mut open = BTreeMap::new();
    for event in TraceReader::open(&trace).expect("open") {
        match event.expect("event") {
            pulse::TraceEvent::PollStart {
                timestamp_nanos,
                worker,
                ..
            } => {
                open.insert(worker, timestamp_nanos);
            }
            pulse::TraceEvent::PollEnd {
                timestamp_nanos,
                worker,
                ..
            } => {
                if let Some(start) = open.remove(&worker) {
                    longest = longest.max((timestamp_nanos - start, worker));
                }
            }
            _ => {}
        }
    }
    assert!(longest.0 >= BLOCKED.as_nanos() as u64 * 9 / 10);
    let report = run_browser(
        &page,
        dir.path(),
        &[
            "--open-files",
            trace.to_str().expect("utf-8 path"),
            "--hover-longest",
            &longest.1.to_string(),
        ],
    );
    assert_eq!(report["stateBeforeOpen"], "empty");
    check_page(&report, &truth);
    // Without an analysis the page marks long polls: the blocked one is
    // among them.
    assert!(u64_at(&report, "/page/findings") >= 1);
    let items = report["page"]["findingItems"].as_array().expect("items");
    assert!(
        items
            .iter()
            .any(|i| i["verdict"] == "long_poll" && i["worker"] == longest.1),
        "{items:#?}"
    );
    let text = report["tooltip"]["text"].as_str().expect("tooltip");
    assert_eq!(report["tooltip"]["visible"], true);
    assert!(text.contains(&format!("Worker {}", longest.1)), "{text}");
    let duration = format!("duration {:.1} ms", longest.0 as f64 / 1e6);
    assert!(
        text.contains(&duration),
        "the tooltip should give the poll's {} ns: {text}",
        longest.0
    );
    assert!(text.contains("v5 traces have none"), "{text}");
}
