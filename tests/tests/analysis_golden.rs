//! Golden files for what pulse writes for other programs: the analysis
//! JSON (`pulse analyze --json`), JSON Lines and Chrome trace-event JSON,
//! from one deterministic trace written through the real encoder. Chrome
//! output is also checked structurally (every `B` has its `E`, slices nest,
//! timestamps are microseconds), on that trace and on a real recording.
//!
//! After an intended change of output, regenerate the goldens with
//! `PULSE_BLESS=1 cargo test -p tests --test analysis_golden` and review
//! the diff.

use pulse::{RecordedEvent, Recorder, SpawnLocation, WriterConfig};
use pulse_cli::analysis::{analyze_trace, AnalysisOptions, TraceSet};
use pulse_cli::export::{trace_to_chrome, trace_to_jsonl};
use pulse_trace::{Encoder, FormatVersion, TraceMetadata};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MS: u64 = 1_000_000;

/// A trace with one finding of every verdict (see `analysis/tests.rs` for
/// the same scenario as bare events), a dropped-events record, and spawn
/// locations.
fn write_trace(path: &Path) -> SpawnLocation {
    let spawned_at = SpawnLocation(std::panic::Location::caller());
    let poll_start =
        |t: u64, worker: u32, task_id: u64, local_queue: u32| RecordedEvent::PollStart {
            timestamp_nanos: t,
            worker,
            local_queue,
            task_id: Some(task_id),
            spawned_at,
        };
    let poll_end = |t: u64, worker: u32, local_queue: u32| RecordedEvent::PollEnd {
        timestamp_nanos: t,
        worker,
        local_queue,
    };
    let park = |t: u64, worker: u32, cpu: u64, run_delay: u64| RecordedEvent::WorkerPark {
        timestamp_nanos: t,
        worker,
        local_queue: 0,
        cpu_nanos: Some(cpu),
        run_delay_nanos: Some(run_delay),
    };
    let unpark = |t: u64, worker: u32, cpu: u64| RecordedEvent::WorkerUnpark {
        timestamp_nanos: t,
        worker,
        local_queue: 0,
        cpu_nanos: Some(cpu),
        run_delay_nanos: Some(0),
    };
    let worker0 = vec![
        unpark(0, 0, 0),
        poll_start(MS, 0, 1, 0),
        poll_end(2 * MS, 0, 0),
        poll_start(100 * MS, 0, 2, 1),
        poll_end(400 * MS, 0, 3),
        poll_start(400 * MS, 0, 3, 2),
        poll_end(401 * MS, 0, 0),
        poll_start(600 * MS, 0, 4, 0),
        poll_end(900 * MS, 0, 0),
        park(1000 * MS, 0, 302 * MS, 0),
    ];
    let worker1 = vec![
        unpark(0, 1, 0),
        park(50 * MS, 1, 0, 0),
        unpark(950 * MS, 1, 0),
        poll_start(1200 * MS, 1, 5, 0),
        poll_end(1201 * MS, 1, 0),
        park(1550 * MS, 1, 775_000, 300 * MS),
    ];
    let cpu0 = |ms: u64| (ms.clamp(600, 900) - 600) * MS + ms.min(2) * MS / 2;
    let rd1 = |ms: u64| (ms.clamp(1200, 1500) - 1200) * MS;
    let mut sampler = Vec::new();
    for ms in (0..=1600).step_by(10) {
        sampler.push(RecordedEvent::QueueSample {
            timestamp_nanos: ms * MS,
            global_queue: u64::from((200..=300).contains(&ms)) * 7,
        });
        sampler.push(RecordedEvent::WorkerSample {
            timestamp_nanos: ms * MS,
            worker: 0,
            cpu_nanos: cpu0(ms),
            run_delay_nanos: Some(0),
        });
        sampler.push(RecordedEvent::WorkerSample {
            timestamp_nanos: ms * MS,
            worker: 1,
            cpu_nanos: ms.min(1550) * MS / 2000,
            run_delay_nanos: Some(rd1(ms)),
        });
    }
    sampler.push(RecordedEvent::EventsDropped {
        timestamp_nanos: 1600 * MS,
        count: 12,
    });

    let metadata = TraceMetadata {
        time_unit_nanos: 32,
        worker_count: 2,
        start_unix_nanos: 1_700_000_000_000_000_000,
        pulse_version: "0.0.0-golden".to_owned(),
        has_run_delay: true,
        file_index: 0,
        config: vec![
            ("flush_ms".to_owned(), "250".to_owned()),
            ("sample_ms".to_owned(), "10".to_owned()),
        ],
    };
    let mut encoder = Encoder::new(FormatVersion::V6, metadata);
    let mut bytes = Vec::new();
    encoder.begin_file(0, &mut bytes);
    // As the flusher writes: per 250 ms round, the sampler's batch, then
    // each worker's.
    for round in 0..=7u64 {
        let in_round = |e: &&RecordedEvent| e.timestamp_nanos() / (250 * MS) == round;
        for event in sampler.iter().filter(in_round) {
            encoder.encode(event, &mut bytes);
        }
        for worker in [&worker0, &worker1] {
            for event in worker.iter().filter(in_round) {
                encoder.encode(event, &mut bytes);
            }
        }
    }
    std::fs::write(path, bytes).unwrap();
    spawned_at
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// Compares `actual` with the golden file, or rewrites it under
/// `PULSE_BLESS=1`.
fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("PULSE_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{}: {err} (PULSE_BLESS=1 creates it)", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the golden file at line {}:\n  golden: {:?}\n  actual: {:?}\n\
             (PULSE_BLESS=1 rewrites the golden files; review the diff)",
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

/// The golden trace, and a function normalizing what depends on where it
/// was written and on this file's line numbers.
fn golden_trace() -> (tempfile::TempDir, PathBuf, impl Fn(String) -> String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let site = write_trace(&path);
    let dir_text = dir.path().display().to_string();
    let site_text = site.to_string();
    let normalize = move |text: String| {
        text.replace(&dir_text, "TRACE_DIR")
            .replace(&site_text, "tests/analysis_golden.rs:LINE:COL")
    };
    (dir, path, normalize)
}

#[test]
fn analysis_json_schema_is_stable() {
    let (_dir, path, normalize) = golden_trace();
    let analysis = analyze_trace(&path, &AnalysisOptions::default()).unwrap();
    let json = serde_json::to_string_pretty(&analysis).unwrap();
    check_golden("analysis.json", &normalize(json + "\n"));

    // The schema's shape, independently of the golden: every verdict once.
    let value: Value = serde_json::to_value(&analysis).unwrap();
    assert_eq!(value["schema"], "pulse-analysis/1");
    let verdicts: Vec<&str> = value["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        [
            "blocked_in_poll",
            "parked_while_queued",
            "cpu_bound_poll",
            "descheduled"
        ]
    );
    assert_eq!(value["completeness"]["complete"], false);
    assert_eq!(value["completeness"]["dropped_events"], 12);
    let blocked = &value["findings"][0];
    assert_eq!(blocked["next_task_id"], 3, "the task queued behind it");
    assert_eq!(blocked["local_queue_end"], 3);
    // Round trip: the JSON reads back into the same analysis.
    let back: pulse_cli::analysis::Analysis = serde_json::from_value(value).unwrap();
    assert_eq!(back, analysis);
}

#[test]
fn jsonl_is_stable_and_one_object_per_event() {
    let (_dir, path, normalize) = golden_trace();
    let mut out = Vec::new();
    let set = TraceSet::open(&path).unwrap();
    let events = trace_to_jsonl(&set, &mut out, "memory", |_, _| {}).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count() as u64, events);
    for line in text.lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        assert!(
            value["type"].is_string() && value["t_ns"].is_u64(),
            "{line}"
        );
    }
    check_golden("trace.jsonl", &normalize(text));
}

/// Checks Chrome trace-event JSON as viewers read it; returns the events.
fn check_chrome_structure(json: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(json).expect("valid JSON");
    assert_eq!(doc["displayTimeUnit"], "ms");
    let events = doc["traceEvents"].as_array().expect("traceEvents").clone();
    let mut stacks: HashMap<(u64, u64), Vec<f64>> = HashMap::new();
    let mut last_ts: HashMap<(u64, u64), f64> = HashMap::new();
    for event in &events {
        let ph = event["ph"].as_str().expect("every event has a phase");
        assert!(["B", "E", "C", "i", "M"].contains(&ph), "{event}");
        if ph == "M" {
            continue;
        }
        let ts = event["ts"].as_f64().expect("numeric ts");
        assert!(ts >= 0.0);
        let key = (
            event["pid"].as_u64().unwrap(),
            event["tid"].as_u64().unwrap_or(0),
        );
        match ph {
            "B" | "E" => {
                let last = last_ts.entry(key).or_insert(0.0);
                assert!(ts >= *last, "time runs forward on a track: {event}");
                *last = ts;
                let stack = stacks.entry(key).or_default();
                if ph == "B" {
                    assert!(event["name"].is_string(), "{event}");
                    stack.push(ts);
                } else {
                    let begun = stack.pop().expect("every E closes a B");
                    assert!(ts >= begun);
                }
                assert!(stack.len() <= 1, "polls and parks never overlap: {event}");
            }
            "C" => assert!(event["args"].is_object(), "{event}"),
            _ => {}
        }
    }
    for (track, stack) in stacks {
        assert!(stack.is_empty(), "unclosed slice on {track:?}");
    }
    events
}

#[test]
fn chrome_json_is_stable_and_well_formed() {
    let (_dir, path, normalize) = golden_trace();
    let mut out = Vec::new();
    let set = TraceSet::open(&path).unwrap();
    let analysis = trace_to_chrome(
        &set,
        &mut out,
        "memory",
        &AnalysisOptions::default(),
        |_, _| {},
    )
    .unwrap();
    let json = String::from_utf8(out).unwrap();
    let events = check_chrome_structure(&json);
    // Microseconds: the poll that started at 100 ms starts at ts 100000.
    assert!(events.iter().any(|e| e["ph"] == "B"
        && e["ts"].as_f64() == Some(100_000.0)
        && e["args"]["task_id"] == 2));
    let instants = events.iter().filter(|e| e["cat"] == "finding").count();
    assert_eq!(instants, analysis.findings.len());
    check_golden("chrome.json", &normalize(json));
}

#[test]
fn chrome_json_of_a_real_recording_is_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let config = pulse::Config::new()
        .sample_ms(1)
        .writer(WriterConfig::file(&path));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(3).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, &config).unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..50u64)
            .map(|i| {
                tokio::spawn(async move {
                    for j in 0..40 {
                        tokio::task::yield_now().await;
                        if (i + j) % 10 == 0 {
                            tokio::time::sleep(Duration::from_micros(300)).await;
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // The tasks can finish within a couple of sample ticks; on a loaded
        // machine the sampler may then not have read any worker twice (no
        // CPU counter). 50 ms more gives it dozens of ticks.
        tokio::time::sleep(Duration::from_millis(50)).await;
    });
    drop(runtime);
    guard.finish().unwrap();

    let mut out = Vec::new();
    let set = TraceSet::open(&path).unwrap();
    trace_to_chrome(
        &set,
        &mut out,
        "memory",
        &AnalysisOptions::default(),
        |_, _| {},
    )
    .unwrap();
    let events = check_chrome_structure(&String::from_utf8(out).unwrap());
    // Short polls close together are merged into `N polls` slices; each
    // poll is in exactly one slice.
    let polls: u64 = events
        .iter()
        .filter(|e| e["ph"] == "B")
        .map(|e| match e["cat"].as_str() {
            Some("poll") => 1,
            Some("polls") => e["args"]["polls"].as_u64().expect("a count"),
            _ => 0,
        })
        .sum();
    let reader_polls = pulse_trace::TraceReader::open(&path)
        .unwrap()
        .filter(|e| matches!(e, Ok(pulse_trace::TraceEvent::PollStart { .. })))
        .count() as u64;
    assert_eq!(polls, reader_polls, "polls in slices");
    assert!(polls >= 50 * 40, "{polls} polls");
    assert!(
        events.iter().any(|e| e["cat"] == "polls"),
        "some short polls were merged"
    );
    // Without merging, every poll is its own slice.
    let mut out = Vec::new();
    pulse_cli::export::trace_to_chrome_with(
        &set,
        &mut out,
        "memory",
        &AnalysisOptions::default(),
        Duration::ZERO,
        |_, _| {},
    )
    .unwrap();
    let every = check_chrome_structure(&String::from_utf8(out).unwrap());
    let slices = every
        .iter()
        .filter(|e| e["ph"] == "B" && e["cat"] == "poll")
        .count() as u64;
    assert_eq!(slices, reader_polls);
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    assert!(names.contains(&"worker 0"), "{names:?}");
    assert!(events.iter().any(|e| e["name"] == "global queue"));
    assert!(events
        .iter()
        .any(|e| e["name"].as_str().is_some_and(|n| n.ends_with(" CPU"))));
}
