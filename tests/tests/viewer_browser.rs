//! The HTML viewer in a real browser: pages written by
//! `pulse_cli::export::html` (what `pulse html` writes) and the repository's
//! standalone `viewer/trace_viewer.html` are opened in headless Chromium
//! (driven over the DevTools protocol by `viewer/test/browser.js`), and what
//! they render is checked against pulse's Rust reader and analysis: a lane
//! for every worker, the summary's counts, a marker for the blocked phase
//! (drawn on the canvas, and hoverable), and no JavaScript error.

mod viewer_support;

use pulse_cli::analysis::{analyze_set, Analysis, AnalysisOptions, TraceSet, Verdict};
use pulse_trace::TraceReader;
use pulse_trace::{EventType, FormatVersion};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use viewer_support::{have_browser, record_blocking_trace, repo_root, run_browser};

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
        // A cut trace: the page shows what comes before the cut.
        let Ok(event) = event else {
            break;
        };
        *truth.counts.entry(event.event_type().name()).or_default() += 1;
        truth.events += 1;
        if let Some(worker) = event.worker() {
            truth.workers.insert(worker);
        }
        if let pulse_trace::TraceEvent::EventsDropped { count, .. } = event {
            truth.dropped += count;
        }
    }
    truth
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

/// Records the blocking workload; returns the trace and the blocking
/// task's spawn site.
fn record(dir: &Path, format: FormatVersion) -> (PathBuf, String) {
    let path = dir.join("trace.bin");
    let site = record_blocking_trace(&path, format, BLOCKED);
    (path, site)
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
    let (trace, site) = record(dir.path(), FormatVersion::V6);
    let truth = truth(&trace);
    let (set, analysis) = analyze(&trace);
    // The finding about the blocking task's poll. The analysis calls it
    // blocked when CPU readings surround it; on a machine so loaded that
    // the sampler thread got no CPU during the poll it can only say "long
    // poll, cause unknown", and that is the marker to find then.
    let blocked = analysis
        .findings
        .iter()
        .find(|f| {
            f.verdict.is_poll()
                && f.spawned_at.as_deref() == Some(site.as_str())
                && f.duration_ns >= BLOCKED.as_nanos() as u64 * 9 / 10
        })
        .unwrap_or_else(|| {
            panic!(
                "no finding for the poll of the task spawned at {site}: {:#?}",
                analysis.findings
            )
        })
        .clone();
    assert!(
        blocked.verdict == Verdict::BlockedInPoll
            || (blocked.verdict == Verdict::LongPoll && blocked.cpu.is_none()),
        "the blocking poll is {:?}",
        blocked
    );
    if blocked.verdict != Verdict::BlockedInPoll {
        eprintln!("note: no CPU readings around the blocking poll (a loaded machine): {blocked:?}");
    }
    let (key, label) = (blocked.verdict.key(), blocked.verdict.label());

    let page = dir.path().join("trace.html");
    let out = BufWriter::new(File::create(&page).expect("create page"));
    pulse_cli::export::html::write_html(&set, Some(&analysis), out, "trace.html", |_, _| {})
        .expect("write the page");
    let which = format!("{}:{}", blocked.worker, blocked.start_ns);
    let report = run_browser(
        &page,
        dir.path(),
        &["--focus-verdict", key, "--finding", &which, "--interact"],
    );
    check_page(&report, &truth);
    // A recording that ended normally: the page says so.
    assert_eq!(report["page"]["model"]["ended"], "shutdown");

    // Every finding is listed, and the blocked one on its worker.
    assert_eq!(
        u64_at(&report, "/page/findings"),
        analysis.findings.len() as u64
    );
    let items = report["page"]["findingItems"].as_array().expect("items");
    assert!(
        items.iter().any(|i| i["verdict"] == key
            && i["worker"] == blocked.worker
            && i["text"].as_str().unwrap_or("").contains(label)),
        "no list item for the blocked poll: {items:#?}"
    );

    // Stepping to it draws its marker on the blocked worker's lane ...
    let target = &report["target"];
    assert_eq!(target["finding"]["verdict"], key);
    assert_eq!(target["finding"]["start_ns"], blocked.start_ns);
    let index = target["index"].as_u64().expect("index");
    let markers = report["markers"].as_array().expect("markers");
    let marker = markers
        .iter()
        .find(|m| m["index"].as_u64() == Some(index))
        .unwrap_or_else(|| panic!("no marker drawn for the finding: {markers:#?}"));
    assert_eq!(marker["verdict"], key);
    assert_eq!(marker["worker"].as_u64(), Some(u64::from(blocked.worker)));
    // ... really, on the canvas: the verdict's colour at the marker's edge
    // (red, #d62728, for blocked; brown, #8c564b, for a long poll), in one
    // of the pixels across it (its line is 3 pixels wide, and antialiased).
    let expected = if blocked.verdict == Verdict::BlockedInPoll {
        [214, 39, 40]
    } else {
        [140, 86, 75]
    };
    let pixels = report["markerPixel"].as_array().expect("pixels");
    let distance = |pixel: &serde_json::Value| -> i64 {
        let channel = |c: usize| pixel[c].as_i64().expect("channel");
        if channel(3) != 255 {
            return i64::MAX;
        }
        (0..3)
            .map(|c| (channel(c) - expected[c]).abs())
            .max()
            .unwrap_or(0)
    };
    assert!(
        pixels.iter().any(|p| distance(p) <= 30),
        "no pixel across the marker's edge is the verdict's {expected:?}: {pixels:?}"
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
    assert!(text.contains(label), "{text}");
    assert!(text.contains("duration"), "{text}");
    assert!(text.contains("CPU/wall ratio"), "{text}");
    if let Some(site) = &blocked.spawned_at {
        assert!(text.contains(site.as_str()), "{text} lacks {site}");
    }

    check_interaction(&report, analysis.findings.len());
}

/// Wheel, drag and keys move the view as they say, and n / p step through
/// the findings.
fn check_interaction(report: &serde_json::Value, findings: usize) {
    let steps = report["interact"].as_array().expect("interaction steps");
    let step = |what: &str| {
        let s = steps
            .iter()
            .find(|s| s["what"] == what)
            .unwrap_or_else(|| panic!("no step {what}"));
        let t0 = s["t0"].as_f64().expect("t0");
        let t1 = s["t1"].as_f64().expect("t1");
        let pos = s["pos"].as_str().expect("pos").to_owned();
        (t0, t1 - t0, pos)
    };
    let (fit0, fit_w, _) = step("fit");
    let (_, up_w, _) = step("wheel up");
    assert!(up_w < fit_w * 0.9, "the wheel zooms in: {up_w} vs {fit_w}");
    let (down0, down_w, _) = step("wheel down");
    assert!(down_w > up_w * 1.1, "and out: {down_w} vs {up_w}");
    let (drag0, drag_w, _) = step("drag left");
    assert!(
        (drag_w - down_w).abs() < 1.0 && drag0 > down0,
        "dragging pans"
    );
    let (_, w_w, _) = step("key w");
    assert!(w_w < drag_w * 0.9, "w zooms in");
    let (s0, s_w, _) = step("key s");
    assert!(s_w > w_w * 1.1, "s zooms out");
    let (d0, d_w, _) = step("key d");
    assert!(d0 > s0 && (d_w - s_w).abs() < 1.0, "d pans right");
    let (l0, _, _) = step("key ArrowLeft");
    assert!(l0 < d0, "the left arrow pans left");
    let (z0, z_w, _) = step("key 0");
    assert!(
        (z0 - fit0).abs() < 1.0 && (z_w - fit_w).abs() < 1.0,
        "0 fits"
    );
    let index = |pos: &str| -> usize {
        let (current, total) = pos.split_once(" / ").expect("k / n");
        assert_eq!(total, findings.to_string());
        current.parse().expect("current finding")
    };
    let (n0, n_w, n1) = step("key n");
    let (_, _, n2) = step("key n again");
    let (_, _, p1) = step("key p");
    if findings > 1 {
        assert_eq!(index(&n2), index(&n1) % findings + 1, "n steps forward");
        assert_eq!(index(&p1), index(&n1), "p steps back");
        assert!(
            (n0 - fit0).abs() > 1.0 || (n_w - fit_w).abs() > 1.0,
            "stepping moves the view to the finding"
        );
    }
}

#[test]
fn standalone_viewer_opens_a_chosen_trace_file() {
    if !have_browser() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // A v5 trace (no task ids, no metadata), through the file picker.
    let (trace, _) = record(dir.path(), FormatVersion::V5);
    let truth = truth(&trace);
    let page = repo_root().join("viewer/trace_viewer.html");
    // The worker whose longest poll is the blocking one.
    let mut longest = (0u64, 0u32);
    let mut open = BTreeMap::new();
    for event in TraceReader::open(&trace).expect("open") {
        match event.expect("event") {
            pulse_trace::TraceEvent::PollStart {
                timestamp_nanos,
                worker,
                ..
            } => {
                open.insert(worker, timestamp_nanos);
            }
            pulse_trace::TraceEvent::PollEnd {
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
    assert_duration_shown(text, longest.0);
    assert!(text.contains("v5 traces have none"), "{text}");
}

/// Asserts that the tooltip `text` gives `ns` as `duration X ms` with one
/// decimal, read as a number: within half a unit of that decimal of the
/// exact value, whichever way a half is rounded (the page's `toFixed(1)`
/// gives 150.3 for 150.25, Rust's `{:.1}` gives 150.2).
fn assert_duration_shown(text: &str, ns: u64) {
    let shown = text
        .split("duration ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .unwrap_or_else(|| panic!("no `duration ... ms` in the tooltip: {text}"));
    let (_, decimals) = shown.split_once('.').unwrap_or((shown, ""));
    assert_eq!(decimals.len(), 1, "one decimal: {shown:?} in {text}");
    let value: f64 = shown
        .parse()
        .unwrap_or_else(|_| panic!("{shown:?} is not a number: {text}"));
    let exact = ns as f64 / 1e6;
    assert!(
        (value - exact).abs() <= 0.05 + 1e-9,
        "the tooltip should give the poll's {ns} ns ({exact} ms) to 0.1 ms: {text}"
    );
}

/// A trace of `workers` workers, each polling `polls` tasks of 12 ms with
/// 1 ms between them: every poll is a long-poll finding.
fn write_many_long_polls(path: &Path, workers: u32, polls: u64) {
    use pulse_trace::{Encoder, RecordedEvent, SpawnLocation, TraceMetadata};
    let site = SpawnLocation(std::panic::Location::caller());
    let ms = 1_000_000u64;
    let metadata = TraceMetadata {
        worker_count: workers,
        ..TraceMetadata::default()
    };
    let mut encoder = Encoder::new(FormatVersion::V6, metadata);
    let mut bytes = Vec::new();
    for i in 0..polls {
        for worker in 0..workers {
            let start = i * 13 * ms + u64::from(worker) * 100_000;
            let task_id = Some(i * u64::from(workers) + u64::from(worker));
            let events = [
                RecordedEvent::PollStart {
                    timestamp_nanos: start,
                    worker,
                    local_queue: 0,
                    task_id,
                    spawned_at: site,
                },
                RecordedEvent::PollEnd {
                    timestamp_nanos: start + 12 * ms,
                    worker,
                    local_queue: 0,
                },
            ];
            for event in &events {
                encoder.encode(event, &mut bytes);
            }
        }
    }
    std::fs::write(path, bytes).expect("write trace");
}

/// Thousands of findings over the whole trace: zoomed out, they gather
/// into one marker per pixel column and lane with a count (every finding
/// in some marker); the page says how many findings the analysis left
/// out; and `pulse html --from/--to`'s window shows only its events.
#[test]
fn many_findings_gather_into_counted_markers_and_omissions_are_said() {
    if !have_browser() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("many.bin");
    write_many_long_polls(&trace, 2, 1500);
    let set = TraceSet::open(&trace).expect("set");
    let options = AnalysisOptions {
        max_findings: 2000,
        ..AnalysisOptions::default()
    };
    let analysis = analyze_set(&set, &options, |_, _| {}).expect("analysis");
    assert_eq!(analysis.findings.len(), 2000);
    assert_eq!(analysis.findings_omitted, 1000);
    let page = dir.path().join("many.html");
    let out = BufWriter::new(File::create(&page).expect("create page"));
    pulse_cli::export::html::write_html(&set, Some(&analysis), out, "many.html", |_, _| {})
        .expect("write the page");
    let report = run_browser(&page, dir.path(), &[]);
    check_page(&report, &truth(&trace));
    let markers = report["page"]["markers"].as_array().expect("markers");
    let counts: Vec<u64> = markers
        .iter()
        .map(|m| m["count"].as_u64().expect("count"))
        .collect();
    assert_eq!(
        counts.iter().sum::<u64>(),
        2000,
        "every finding is in a marker"
    );
    assert!(
        markers.len() <= 2 * 1400 / 6 + 2,
        "at most one marker per 6-pixel column and lane: {}",
        markers.len()
    );
    assert!(counts.iter().any(|&c| c > 1), "{counts:?}");
    let note = report["page"]["findingNote"]
        .as_str()
        .expect("a note on omitted findings");
    assert!(note.contains("1,000 more findings were left out"), "{note}");
    assert!(note.contains("pulse html TRACE --from"), "{note}");

    // A window cut by pulse html: only the events inside it are decoded.
    let cut = dir.path().join("cut.html");
    let window = Duration::from_millis(1300)..Duration::from_millis(2600);
    let out = BufWriter::new(File::create(&cut).expect("create page"));
    pulse_cli::export::html::trace_to_html_window(
        &set,
        &options,
        Some(window),
        out,
        "cut.html",
        |_, _| {},
    )
    .expect("write the page");
    let report = run_browser(&cut, dir.path(), &[]);
    assert_eq!(report["state"], "ready", "{report:#}");
    // Polls start every 13 ms from 0 (worker 1: 0.1 ms later) and last 12 ms:
    // starts and ends inside [1300, 2600] ms.
    let inside = (0..1500u64)
        .flat_map(|i| [i * 13_000_000, i * 13_000_000 + 100_000])
        .flat_map(|s| [s, s + 12_000_000])
        .filter(|t| (1_300_000_000..=2_600_000_000).contains(t))
        .count() as u64;
    assert_eq!(u64_at(&report, "/page/summary/events"), inside);
    let status = report["page"]["status"].as_str().expect("status");
    assert!(status.contains("cut by pulse html --from/--to"), "{status}");
    assert!(report["page"]["findingNote"].is_string());
}

/// Without Chromium the browser tests pass as skipped, but say so on a line
/// that cargo's capture does not swallow; with `PULSE_REQUIRE_BROWSER`
/// (as CI runs) they fail instead.
#[test]
fn a_missing_browser_is_a_visible_skip_or_a_failure_in_ci() {
    let run = |require: bool| {
        let mut command = Command::new(std::env::current_exe().expect("this test binary"));
        command
            .args([
                "--exact",
                "a_poll_duration_on_a_rounding_half_is_shown_right",
            ])
            .env("CHROMIUM", "/nonexistent/chromium")
            .env_remove(viewer_support::REQUIRE_ENV);
        if require {
            command.env(viewer_support::REQUIRE_ENV, "1");
        }
        command.output().expect("run this test binary")
    };
    let skipped = run(false);
    assert!(skipped.status.success(), "{skipped:?}");
    let err = String::from_utf8_lossy(&skipped.stderr);
    assert!(
        err.contains("SKIPPED a_poll_duration_on_a_rounding_half_is_shown_right: `/nonexistent/chromium` is not installed"),
        "stderr: {err}"
    );
    let required = run(true);
    assert!(!required.status.success(), "{required:?}");
}

/// A poll of exactly 150.25 ms (a half at the shown precision, where
/// JavaScript and Rust round differently) is shown as such.
#[test]
fn a_poll_duration_on_a_rounding_half_is_shown_right() {
    if !have_browser() {
        return;
    }
    use pulse_trace::{Encoder, RecordedEvent, SpawnLocation, TraceMetadata};
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("half.bin");
    let site = SpawnLocation(std::panic::Location::caller());
    let ms = 1_000_000u64;
    let duration = 150 * ms + 250_000;
    let metadata = TraceMetadata {
        worker_count: 1,
        ..TraceMetadata::default()
    };
    let mut encoder = Encoder::new(FormatVersion::V6, metadata);
    let mut bytes = Vec::new();
    for (start, length, task) in [
        (ms, 2 * ms, 1),
        (10 * ms, duration, 2),
        (200 * ms, 5 * ms, 3),
    ] {
        encoder.encode(
            &RecordedEvent::PollStart {
                timestamp_nanos: start,
                worker: 0,
                local_queue: 0,
                task_id: Some(task),
                spawned_at: site,
            },
            &mut bytes,
        );
        encoder.encode(
            &RecordedEvent::PollEnd {
                timestamp_nanos: start + length,
                worker: 0,
                local_queue: 0,
            },
            &mut bytes,
        );
    }
    std::fs::write(&trace, bytes).expect("write trace");
    let set = TraceSet::open(&trace).expect("set");
    let page = dir.path().join("half.html");
    let out = BufWriter::new(File::create(&page).expect("create page"));
    pulse_cli::export::html::write_html(&set, None, out, "half.html", |_, _| {})
        .expect("write the page");
    let report = run_browser(&page, dir.path(), &["--hover-longest", "0"]);
    check_page(&report, &truth(&trace));
    let text = report["tooltip"]["text"].as_str().expect("tooltip");
    assert!(text.contains("Poll of task 2"), "{text}");
    assert_duration_shown(text, duration);
}

/// Issue 18: a poll whose task waited (its schedule latency, a 0x8C
/// record) says so in its tooltip, with the wait the trace holds.
#[test]
fn a_polls_schedule_latency_is_in_its_tooltip() {
    if !have_browser() {
        return;
    }
    use pulse_trace::{Encoder, RecordedEvent, SpawnLocation, TraceMetadata};
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("waited.bin");
    let site = SpawnLocation(std::panic::Location::caller());
    let ms = 1_000_000u64;
    let metadata = TraceMetadata {
        worker_count: 1,
        ..TraceMetadata::default()
    };
    let mut encoder = Encoder::new(FormatVersion::V6, metadata);
    let mut bytes = Vec::new();
    for (start, length, task, waited) in [
        (ms, 2 * ms, 1, 10_000),
        (10 * ms, 80 * ms, 2, 37 * ms + 400_000),
        (200 * ms, 5 * ms, 3, 0),
    ] {
        for event in [
            RecordedEvent::PollStart {
                timestamp_nanos: start,
                worker: 0,
                local_queue: 0,
                task_id: Some(task),
                spawned_at: site,
            },
            RecordedEvent::ScheduleLatency {
                timestamp_nanos: start,
                worker: 0,
                latency_nanos: waited,
            },
            RecordedEvent::PollEnd {
                timestamp_nanos: start + length,
                worker: 0,
                local_queue: 0,
            },
        ] {
            encoder.encode(&event, &mut bytes);
        }
    }
    std::fs::write(&trace, bytes).expect("write trace");
    let set = TraceSet::open(&trace).expect("set");
    let page = dir.path().join("waited.html");
    let out = BufWriter::new(File::create(&page).expect("create page"));
    pulse_cli::export::html::write_html(&set, None, out, "waited.html", |_, _| {})
        .expect("write the page");
    let report = run_browser(&page, dir.path(), &["--hover-longest", "0"]);
    let text = report["tooltip"]["text"].as_str().expect("tooltip");
    assert!(text.contains("Poll of task 2"), "{text}");
    assert!(text.contains("waited 37.4 ms to be polled"), "{text}");
}

#[test]
fn page_of_a_busy_trace_marks_drops_and_survives_a_cut() {
    if !have_browser() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // Busy enough that the whole trace is drawn from the pyramids, with
    // dropped events, then cut mid-record as a killed process leaves it.
    let whole = dir.path().join("whole.bin");
    write_synthetic_trace(&whole, 8, 300_000);
    let whole_truth = truth(&whole);
    assert!(whole_truth.dropped > 0, "the trace has drops");
    let bytes = std::fs::read(&whole).expect("read");
    let trace = dir.path().join("trace.bin");
    // About 6/7 of the way, at the first length that ends inside a record.
    let cut_inside = |len: usize| {
        TraceReader::from_reader(&bytes[..len], "cut")
            .expect("header")
            .any(|event| event.is_err_and(|err| err.is_truncation()))
    };
    let len = (bytes.len() * 6 / 7..bytes.len())
        .find(|&len| cut_inside(len))
        .expect("some cut ends inside a record");
    std::fs::write(&trace, &bytes[..len]).expect("cut");
    let truth = truth(&trace);

    let (set, analysis) = analyze(&trace);
    let page = dir.path().join("trace.html");
    let out = BufWriter::new(File::create(&page).expect("create page"));
    pulse_cli::export::html::write_html(&set, Some(&analysis), out, "trace.html", |_, _| {})
        .expect("write the page");
    let report = run_browser(&page, dir.path(), &[]);
    check_page(&report, &truth);
    assert!(truth.dropped > 0);
    // Whole trace in view: every lane from the pyramid, not poll by poll.
    for lane in report["page"]["lanes"].as_array().expect("lanes") {
        assert_eq!(lane["raw"], false, "{lane}");
    }
    // The cut is reported, and where.
    let summary = report["page"]["summaryText"].as_str().expect("summary");
    assert!(summary.contains("truncated"), "{summary}");
    // Cut short, so no end record: never shown as complete.
    assert_eq!(report["page"]["model"]["ended"], serde_json::Value::Null);
    assert!(summary.contains("without shutdown"), "{summary}");
    let error = report["page"]["model"]["error"].as_str().expect("error");
    assert!(error.contains("truncated"), "{error}");
    let status = report["page"]["status"].as_str().expect("status");
    assert!(status.contains("cut short"), "{status}");
}

// ---- the 10-million-event measurement (BENCHMARKS.md) ----------------------

/// A synthetic but runtime-shaped workload for `workers` workers: bursts of
/// polls (1–200 µs, a few long ones, some blocked) between parks, with the
/// sampler's queue and CPU samples every 10 ms, and a few drops.
struct Synthetic {
    rng: u64,
    workers: Vec<SyntheticWorker>,
    next_sample: u64,
    sites: Vec<pulse::SpawnLocation>,
}

struct SyntheticWorker {
    t: u64,
    cpu: u64,
    run_delay: u64,
    queue: u32,
    task: u64,
    /// Polls left in the current burst (0: parked next).
    burst: u32,
    /// The spawn site being polled (tasks of one kind come in runs).
    site: usize,
    pending: std::collections::VecDeque<pulse::RecordedEvent>,
}

#[track_caller]
fn synthetic_site() -> pulse::SpawnLocation {
    pulse::SpawnLocation(std::panic::Location::caller())
}

impl Synthetic {
    fn new(workers: usize) -> Self {
        Synthetic {
            rng: 0x2545_F491_4F6C_DD1D,
            workers: (0..workers)
                .map(|w| SyntheticWorker {
                    t: 1_000_000 + w as u64 * 1_000,
                    cpu: 0,
                    run_delay: 0,
                    queue: 0,
                    task: 1 + w as u64 * 1_000_000,
                    burst: 0,
                    site: w % 4,
                    pending: std::collections::VecDeque::new(),
                })
                .collect(),
            next_sample: 0,
            sites: vec![
                synthetic_site(),
                synthetic_site(),
                synthetic_site(),
                synthetic_site(),
            ],
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The next chunk (up to 1024 events) of worker `w`, as the flusher
    /// hands the encoder one worker's buffer.
    fn chunk(&mut self, w: usize, out: &mut Vec<pulse::RecordedEvent>) {
        use pulse::RecordedEvent as E;
        out.clear();
        while out.len() < 1024 {
            if let Some(e) = self.workers[w].pending.pop_front() {
                out.push(e);
                continue;
            }
            let r = self.random();
            let sites = self.sites.len();
            let ws = &mut self.workers[w];
            if (r >> 8) & 7 == 0 {
                ws.site = (r >> 11) as usize % sites;
            }
            let site = self.sites[ws.site];
            if ws.burst == 0 {
                // Park for 20 µs .. 5 ms, then unpark into a burst of polls.
                ws.pending.push_back(E::WorkerPark {
                    timestamp_nanos: ws.t,
                    worker: w as u32,
                    local_queue: 0,
                    cpu_nanos: Some(ws.cpu),
                    run_delay_nanos: Some(ws.run_delay),
                });
                ws.t += 20_000 + (r >> 20) % 5_000_000;
                let wait = (r >> 40) % 20_000;
                ws.run_delay += wait;
                ws.t += wait;
                ws.burst = 1 + ((r >> 12) % 400) as u32;
                ws.queue = ((r >> 30) % 40) as u32;
                ws.pending.push_back(E::WorkerUnpark {
                    timestamp_nanos: ws.t,
                    worker: w as u32,
                    local_queue: ws.queue,
                    cpu_nanos: Some(ws.cpu),
                    run_delay_nanos: Some(ws.run_delay),
                });
                continue;
            }
            ws.burst -= 1;
            // 0.5–200 µs, mostly short; one in 20 000 polls 10–300 ms (one
            // in 4 of those blocked).
            let d = (r >> 24) % 450;
            let mut duration = 500 + d * d;
            let mut blocked = false;
            if (r >> 4) % 20_000 == 7 {
                duration = 10_000_000 + (r >> 16) % 290_000_000;
                blocked = (r >> 50) & 3 == 0;
            }
            ws.task = ws.task.wrapping_add(1 + (r >> 56) % 5);
            let start = ws.t;
            ws.pending.push_back(E::PollStart {
                timestamp_nanos: start,
                worker: w as u32,
                local_queue: ws.queue,
                task_id: Some(ws.task),
                spawned_at: site,
            });
            ws.t += duration;
            if !blocked {
                ws.cpu += duration;
            }
            ws.queue = ws.queue.saturating_sub(1) + u32::from((r >> 35) & 3 == 0);
            ws.pending.push_back(E::PollEnd {
                timestamp_nanos: ws.t,
                worker: w as u32,
                local_queue: ws.queue,
            });
            ws.t += 300 + (r >> 44) % 3_000;
        }
    }

    /// Sampler events up to time `until`.
    fn samples(&mut self, until: u64, out: &mut Vec<pulse::RecordedEvent>) {
        out.clear();
        while self.next_sample <= until {
            let t = self.next_sample;
            let r = self.random();
            out.push(pulse::RecordedEvent::QueueSample {
                timestamp_nanos: t,
                global_queue: (r >> 20) % 50,
            });
            for (w, ws) in self.workers.iter().enumerate() {
                out.push(pulse::RecordedEvent::WorkerSample {
                    timestamp_nanos: t,
                    worker: w as u32,
                    cpu_nanos: ws.cpu,
                    run_delay_nanos: Some(ws.run_delay),
                });
            }
            // Now and then (and on the 8th sample, so short traces have one)
            // the writer fell behind.
            if (r >> 8) % 500 == 3 || t == 70_000_000 {
                out.push(pulse::RecordedEvent::EventsDropped {
                    timestamp_nanos: t,
                    count: 1 + (r >> 30) % 5_000,
                });
            }
            self.next_sample += 10_000_000;
        }
    }
}

/// Writes a v6 trace of about `events` events; returns the exact count.
fn write_synthetic_trace(path: &Path, workers: usize, events: u64) -> u64 {
    use pulse_trace::{Encoder, TraceMetadata};
    let metadata = TraceMetadata {
        worker_count: workers as u32,
        has_run_delay: true,
        ..TraceMetadata::default()
    };
    let mut encoder = Encoder::new(FormatVersion::V6, metadata);
    let mut bytes = Vec::new();
    encoder.begin_file(0, &mut bytes);
    let mut synthetic = Synthetic::new(workers);
    let mut chunk = Vec::new();
    let mut written = 0u64;
    while written < events {
        // The worker furthest behind goes next, as buffers fill in time.
        let w = (0..workers)
            .min_by_key(|&w| synthetic.workers[w].t)
            .unwrap_or(0);
        synthetic.chunk(w, &mut chunk);
        let until = synthetic.workers.iter().map(|ws| ws.t).min().unwrap_or(0);
        for event in &chunk {
            encoder.encode(event, &mut bytes);
        }
        written += chunk.len() as u64;
        synthetic.samples(until, &mut chunk);
        for event in &chunk {
            encoder.encode(event, &mut bytes);
        }
        written += chunk.len() as u64;
    }
    std::fs::write(path, &bytes).expect("write trace");
    written
}

/// Opens a page of a 10-million-event trace in headless Chromium and
/// prints what it took (see BENCHMARKS.md, "The HTML viewer"):
///
/// ```text
/// cargo test --release -p tests --test viewer_browser -- --ignored --nocapture measure_ten_million_events
/// ```
#[test]
#[ignore = "a measurement (about a minute), not a test: run it with --ignored"]
fn measure_ten_million_events() {
    if !have_browser() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // PULSE_BENCH_DIR keeps the trace and the page for a closer look.
    let kept = std::env::var_os("PULSE_BENCH_DIR").map(PathBuf::from);
    let dir_path = kept.clone().unwrap_or_else(|| dir.path().to_owned());
    std::fs::create_dir_all(&dir_path).expect("bench dir");
    let trace = dir_path.join("trace.bin");
    let started = std::time::Instant::now();
    let events = write_synthetic_trace(&trace, 8, 10_000_000);
    let trace_bytes = std::fs::metadata(&trace).expect("trace").len();
    println!(
        "trace: {events} events, 8 workers, {:.1} MiB ({:.2} bytes/event), generated in {:.1} s",
        trace_bytes as f64 / 1_048_576.0,
        trace_bytes as f64 / events as f64,
        started.elapsed().as_secs_f64()
    );
    let (set, analysis) = analyze(&trace);
    let page = dir_path.join("trace.html");
    let started = std::time::Instant::now();
    let out = BufWriter::new(File::create(&page).expect("create page"));
    pulse_cli::export::html::write_html(&set, Some(&analysis), out, "trace.html", |_, _| {})
        .expect("write the page");
    let page_bytes = std::fs::metadata(&page).expect("page").len();
    println!(
        "page: {:.1} MiB, {} findings, written in {:.2} s",
        page_bytes as f64 / 1_048_576.0,
        analysis.findings.len(),
        started.elapsed().as_secs_f64()
    );
    for run in 1..=3 {
        let report = run_browser(
            &page,
            &dir_path,
            &["--bench", "--timeout", "300", "--size", "1600x1000"],
        );
        assert_eq!(report["state"], "ready", "{report:#}");
        assert_eq!(report["errors"], serde_json::json!([]));
        assert_eq!(u64_at(&report, "/page/summary/events"), events);
        let t = &report["page"]["timings"];
        let long_tasks: Vec<f64> = report["page"]["longTasks"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t[1].as_f64()).collect())
            .unwrap_or_default();
        let longest_task = long_tasks.iter().cloned().fold(0.0, f64::max);
        println!(
            "run {run}: navigation to interactive {} ms (unpack {:.0}, decode {:.0}, build {:.0}, first frame {:.0}); longest main-thread task {longest_task:.0} ms; heap {:.0} MiB",
            report["ready_ms"],
            t["unpack_ms"].as_f64().unwrap_or(f64::NAN),
            t["decode_ms"].as_f64().unwrap_or(f64::NAN),
            t["build_ms"].as_f64().unwrap_or(f64::NAN),
            t["first_draw_ms"].as_f64().unwrap_or(f64::NAN),
            report["bench"]["heapMB"].as_f64().unwrap_or(f64::NAN),
        );
        for (name, key) in [
            ("pan, whole trace in view", "panWhole"),
            ("pan, zoomed 10x .. 100000x", "panZoomed"),
            ("zoom out step by step", "zoomOut"),
        ] {
            let b = &report["bench"][key];
            println!(
                "  {name}: frame median {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} frames)",
                b["median"].as_f64().unwrap_or(f64::NAN),
                b["p95"].as_f64().unwrap_or(f64::NAN),
                b["max"].as_f64().unwrap_or(f64::NAN),
                b["n"]
            );
        }
    }
}

/// Issue 19: `tracing` spans and marks in the viewer: nested span bars on
/// the worker's lane and a mark tick, with names, fields and the mark's
/// value in the tooltip of the poll they fall in.
#[test]
fn spans_and_marks_show_in_the_tooltip() {
    if !have_browser() {
        return;
    }
    use pulse_trace::{Encoder, RecordedEvent, SpanId, SpawnLocation, TextId, TraceMetadata};
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("spans.bin");
    let site = SpawnLocation(std::panic::Location::caller());
    let ms = 1_000_000u64;
    let text = pulse_trace::span::intern;
    let (conn, get, key, miss) = (
        text("connection"),
        text("cmd::get"),
        text("key=\"user:42\""),
        text("cache miss"),
    );
    let metadata = TraceMetadata {
        worker_count: 1,
        ..TraceMetadata::default()
    };
    let mut encoder = Encoder::new(FormatVersion::V6, metadata);
    let mut bytes = Vec::new();
    let (start, end) = (10 * ms, 160 * ms);
    let events = [
        RecordedEvent::PollStart {
            timestamp_nanos: ms,
            worker: 0,
            local_queue: 0,
            task_id: Some(1),
            spawned_at: site,
        },
        RecordedEvent::PollEnd {
            timestamp_nanos: 3 * ms,
            worker: 0,
            local_queue: 0,
        },
        RecordedEvent::PollStart {
            timestamp_nanos: start,
            worker: 0,
            local_queue: 0,
            task_id: Some(2),
            spawned_at: site,
        },
        RecordedEvent::SpanEnter {
            timestamp_nanos: start + 100_000,
            worker: 0,
            span: SpanId(1),
            name: conn,
            fields: TextId::EMPTY,
        },
        RecordedEvent::SpanEnter {
            timestamp_nanos: start + 200_000,
            worker: 0,
            span: SpanId(2),
            name: get,
            fields: key,
        },
        RecordedEvent::Mark {
            timestamp_nanos: (start + end) / 2,
            worker: 0,
            name: miss,
            value: Some(7),
        },
        RecordedEvent::SpanExit {
            timestamp_nanos: end - 200_000,
            worker: 0,
            span: SpanId(2),
        },
        RecordedEvent::SpanExit {
            timestamp_nanos: end - 100_000,
            worker: 0,
            span: SpanId(1),
        },
        RecordedEvent::PollEnd {
            timestamp_nanos: end,
            worker: 0,
            local_queue: 0,
        },
        RecordedEvent::PollStart {
            timestamp_nanos: 200 * ms,
            worker: 0,
            local_queue: 0,
            task_id: Some(3),
            spawned_at: site,
        },
        RecordedEvent::PollEnd {
            timestamp_nanos: 205 * ms,
            worker: 0,
            local_queue: 0,
        },
    ];
    for event in &events {
        encoder.encode(event, &mut bytes);
    }
    std::fs::write(&trace, bytes).expect("write trace");
    let set = TraceSet::open(&trace).expect("set");
    let page = dir.path().join("spans.html");
    let out = BufWriter::new(File::create(&page).expect("create page"));
    pulse_cli::export::html::write_html(&set, None, out, "spans.html", |_, _| {})
        .expect("write the page");
    let shot = std::env::var_os("PULSE_SPANS_SCREENSHOT");
    let mut args = vec!["--hover-longest".to_owned(), "0".to_owned()];
    if let Some(shot) = &shot {
        args.extend([
            "--screenshot".to_owned(),
            shot.to_string_lossy().into_owned(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = run_browser(&page, dir.path(), &args);
    check_page(&report, &truth(&trace));
    let text = report["tooltip"]["text"].as_str().expect("tooltip");
    assert!(text.contains("Poll of task 2"), "{text}");
    assert!(text.contains("inside spans (innermost first)"), "{text}");
    let inner = text
        .find("cmd::get{key=\"user:42\"}")
        .expect("the inner span");
    let outer = text.find("connection —").expect("the outer span");
    assert!(inner < outer, "innermost first: {text}");
    assert!(text.contains("mark cache miss=7"), "{text}");
}
