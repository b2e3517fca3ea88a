//! The HTML viewer's JavaScript decoder (`pulse-cli/src/export/html/decoder.js`)
//! against pulse's Rust `TraceReader`: golden traces written by the Rust
//! encoder (v5 and v6, every record kind, rotated sets, extension records),
//! hand-built files for every error, every truncation of a trace, mutated
//! traces, and traces of a real traced runtime are decoded by both, and the
//! results must agree event by event: same kinds, times, workers, queue
//! depths, task ids, spawn locations, CPU and run-queue readings, and the
//! same error (file, byte offset, message) where reading stops.
//!
//! The JavaScript side runs under Node (`viewer/test/decode_cases.js`).

mod viewer_support;

use pulse_trace::{Encoder, FormatVersion, TraceErrorKind, TraceEvent, TraceMetadata, TraceReader};
use pulse_trace::{RecordedEvent, SpawnLocation};
use std::fmt::Write as _;
use std::panic::Location;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use viewer_support::{record_blocking_trace, repo_root, require};

#[track_caller]
fn here() -> SpawnLocation {
    SpawnLocation(Location::caller())
}

fn site_a() -> SpawnLocation {
    here()
}
fn site_b() -> SpawnLocation {
    here()
}
fn site_c() -> SpawnLocation {
    here()
}

// ---- the cases ------------------------------------------------------------

/// Cases written to a directory, with `cases.txt` for the Node runner.
struct Cases {
    dir: tempfile::TempDir,
    manifest: String,
    names: Vec<(String, Vec<String>)>,
}

impl Cases {
    fn new() -> Self {
        Cases {
            dir: tempfile::tempdir().expect("temp dir"),
            manifest: String::new(),
            names: Vec::new(),
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// A case of files (name, bytes), read in order as one set.
    fn add(&mut self, name: &str, files: Vec<(String, Vec<u8>)>) {
        let mut names = Vec::new();
        for (file, bytes) in files {
            let file = format!("{name}--{file}");
            std::fs::write(self.path(&file), bytes).expect("write case file");
            names.push(file);
        }
        self.add_written(name, names);
    }

    /// A case of files already in the directory.
    fn add_written(&mut self, name: &str, files: Vec<String>) {
        assert!(!name.contains('\t') && !name.contains(' '));
        let _ = writeln!(self.manifest, "{name}\t{}", files.join("\t"));
        self.names.push((name.to_owned(), files));
    }

    fn one(&mut self, name: &str, bytes: Vec<u8>) {
        self.add(name, vec![("trace.bin".to_owned(), bytes)]);
    }

    /// Runs both decoders and compares; panics with the first difference.
    fn check(self) {
        if !require("node", "the JavaScript decoder parity test") {
            return;
        }
        std::fs::write(self.path("cases.txt"), &self.manifest).expect("write manifest");
        let script = repo_root().join("viewer/test/decode_cases.js");
        let output = Command::new("node")
            .arg(&script)
            .arg(self.dir.path())
            .output()
            .expect("run node");
        assert!(
            output.status.success(),
            "node {} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let js = std::fs::read_to_string(self.path("js.txt")).expect("read js.txt");
        let mut js_cases = js.split("\nend\n");
        let mut events = 0usize;
        let mut errors = 0usize;
        for (name, files) in &self.names {
            let paths: Vec<PathBuf> = files.iter().map(|f| self.path(f)).collect();
            let rust = rust_lines(&paths);
            let js_case = js_cases.next().unwrap_or_default();
            let mut js_lines = js_case.trim_start_matches('\n').lines();
            assert_eq!(
                js_lines.next(),
                Some(format!("case {name}").as_str()),
                "case order"
            );
            let js_lines: Vec<&str> = js_lines.collect();
            for (i, (r, j)) in rust.iter().zip(&js_lines).enumerate() {
                assert!(
                    lines_match(r, j),
                    "case {name}, line {i}: the decoders differ\n  rust: {r}\n  js:   {j}\n(files in {})",
                    self.dir.path().display()
                );
            }
            assert_eq!(
                rust.len(),
                js_lines.len(),
                "case {name}: rust has {} lines, js {}; first extra: {:?} / {:?}",
                rust.len(),
                js_lines.len(),
                rust.get(js_lines.len()),
                js_lines.get(rust.len())
            );
            events += rust
                .iter()
                .filter(|l| !l.starts_with("file ") && !l.starts_with("error "))
                .count();
            errors += rust.iter().filter(|l| l.starts_with("error ")).count();
        }
        eprintln!(
            "{} cases, {events} events and {errors} errors decoded identically",
            self.names.len()
        );
    }
}

// ---- what the Rust reader says, in decode_cases.js's format ---------------

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn error_line(err: &pulse_trace::TraceError) -> String {
    let kind = match err.kind() {
        TraceErrorKind::Io(_) => "io",
        TraceErrorKind::BadMagic { .. } => "bad_magic",
        TraceErrorKind::UnsupportedVersion { .. } => "unsupported_version",
        TraceErrorKind::Truncated { .. } => "truncated",
        TraceErrorKind::Corrupt(_) => "corrupt",
        _ => "other",
    };
    format!("error kind={kind} {err}")
}

fn opt(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn rust_lines(paths: &[PathBuf]) -> Vec<String> {
    let mut lines = Vec::new();
    for path in paths {
        match TraceReader::open(path) {
            Ok(reader) => {
                let mut line = format!(
                    "file {} version={}",
                    path.display(),
                    reader.version().number()
                );
                if let Some(m) = reader.metadata() {
                    let config: Vec<String> =
                        m.config.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let _ = write!(
                        line,
                        " unit={} workers={} start={} pulse={} run_delay={} index={} config={}",
                        m.time_unit_nanos,
                        m.worker_count,
                        m.start_unix_nanos,
                        json_string(&m.pulse_version),
                        m.has_run_delay,
                        m.file_index,
                        json_string(&config.join(";"))
                    );
                }
                lines.push(line);
            }
            Err(err) => lines.push(error_line(&err)),
        }
    }
    let mut reader = match TraceReader::open_files(paths.iter().cloned()) {
        Ok(reader) => reader,
        Err(err) => {
            lines.push(error_line(&err));
            return lines;
        }
    };
    loop {
        match reader.next_event() {
            Ok(Some(event)) => lines.push(event_line(&event, &reader)),
            Ok(None) => {
                // How the trace ended: the last file's end record, if no
                // event followed it.
                if let Some(end) = reader.end() {
                    let (code, detail) = end.reason.code();
                    lines.push(format!(
                        "end-of-trace t={} code={code} detail={detail} dropped={} threads={}",
                        end.timestamp_nanos, end.dropped_events, end.threads_still_recording
                    ));
                }
                break;
            }
            Err(err) => {
                lines.push(error_line(&err));
                break;
            }
        }
    }
    lines
}

fn event_line(event: &TraceEvent, reader: &TraceReader) -> String {
    match *event {
        TraceEvent::PollStart {
            timestamp_nanos,
            worker,
            local_queue,
            task_id,
            spawned_at: location,
        } => {
            let loc = location.map_or_else(
                || "-".to_owned(),
                |id| {
                    let site = reader
                        .location(id)
                        .map_or_else(|| "?".to_owned(), ToString::to_string);
                    format!("#{}@{site}", id.0)
                },
            );
            format!(
                "PollStart t={timestamp_nanos} w={worker} q={local_queue} task={} loc={loc}",
                opt(task_id)
            )
        }
        TraceEvent::PollEnd {
            timestamp_nanos,
            worker,
            local_queue,
        } => format!("PollEnd t={timestamp_nanos} w={worker} q={local_queue}"),
        TraceEvent::WorkerPark {
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            run_delay_nanos,
        } => format!(
            "WorkerPark t={timestamp_nanos} w={worker} q={local_queue} cpu={} rd={}",
            opt(cpu_nanos),
            opt(run_delay_nanos)
        ),
        TraceEvent::WorkerUnpark {
            timestamp_nanos,
            worker,
            local_queue,
            cpu_nanos,
            run_delay_nanos,
        } => format!(
            "WorkerUnpark t={timestamp_nanos} w={worker} q={local_queue} cpu={} rd={}",
            opt(cpu_nanos),
            opt(run_delay_nanos)
        ),
        TraceEvent::QueueSample {
            timestamp_nanos,
            global_queue,
        } => format!("QueueSample t={timestamp_nanos} depth={global_queue}"),
        TraceEvent::WorkerSample {
            timestamp_nanos,
            worker,
            cpu_nanos,
            run_delay_nanos,
        } => format!(
            "WorkerSample t={timestamp_nanos} w={worker} cpu={cpu_nanos} rd={}",
            opt(run_delay_nanos)
        ),
        TraceEvent::EventsDropped {
            timestamp_nanos,
            count,
        } => format!("EventsDropped t={timestamp_nanos} count={count}"),
        TraceEvent::WorkerThread {
            timestamp_nanos,
            worker,
            tid,
            kind,
        } => format!(
            "WorkerThread t={timestamp_nanos} w={worker} tid={tid} kind={}",
            kind.name()
        ),
        TraceEvent::StackSample {
            timestamp_nanos,
            worker,
            kind,
            stack,
        } => format!(
            "StackSample t={timestamp_nanos} w={worker} kind={} stack={}",
            kind.name(),
            stack.0
        ),
        TraceEvent::ScheduleLatency {
            timestamp_nanos,
            worker,
            latency_nanos,
        } => format!("ScheduleLatency t={timestamp_nanos} w={worker} latency={latency_nanos}"),
        TraceEvent::SpanEnter {
            timestamp_nanos,
            worker,
            span,
            name,
            fields,
        } => format!(
            "SpanEnter t={timestamp_nanos} w={worker} span={} name={} fields={}",
            span.0,
            json_string(reader.text(name).unwrap_or("?")),
            json_string(reader.text(fields).unwrap_or("?"))
        ),
        TraceEvent::SpanExit {
            timestamp_nanos,
            worker,
            span,
        } => format!("SpanExit t={timestamp_nanos} w={worker} span={}", span.0),
        TraceEvent::SpanClose {
            timestamp_nanos,
            worker,
            span,
        } => format!("SpanClose t={timestamp_nanos} w={worker} span={}", span.0),
        TraceEvent::Mark {
            timestamp_nanos,
            worker,
            name,
            value,
        } => format!(
            "Mark t={timestamp_nanos} w={worker} name={} value={}",
            json_string(reader.text(name).unwrap_or("?")),
            opt(value)
        ),
        _ => format!("{event:?}"),
    }
}

/// Lines are equal, except that the JavaScript decoder keeps numbers as
/// doubles: integers above 2^53 only have to agree to double precision.
fn lines_match(rust: &str, js: &str) -> bool {
    if rust == js {
        return true;
    }
    let split = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_ascii_digit())
            .map(str::to_owned)
            .collect()
    };
    let non_digits = |s: &str| -> String { s.chars().filter(|c| !c.is_ascii_digit()).collect() };
    if non_digits(rust) != non_digits(js) {
        return false;
    }
    let (r, j) = (split(rust), split(js));
    r.len() == j.len()
        && r.iter().zip(&j).all(|(a, b)| {
            if a == b {
                return true;
            }
            match (a.parse::<u128>(), b.parse::<u128>()) {
                (Ok(x), Ok(y)) if x > 1 << 53 => {
                    let (x, y) = (x as f64, y as f64);
                    (x - y).abs() <= x * 2f64.powi(-50)
                }
                _ => false,
            }
        })
}

// ---- golden traces --------------------------------------------------------

fn poll_start(
    t: u64,
    worker: u32,
    local_queue: u32,
    task_id: u64,
    site: SpawnLocation,
) -> RecordedEvent {
    RecordedEvent::PollStart {
        timestamp_nanos: t,
        worker,
        local_queue,
        task_id: Some(task_id),
        spawned_at: site,
    }
}

fn poll_end(t: u64, worker: u32, local_queue: u32) -> RecordedEvent {
    RecordedEvent::PollEnd {
        timestamp_nanos: t,
        worker,
        local_queue,
    }
}

fn park(unpark: bool, t: u64, worker: u32, local_queue: u32, cpu: u64, rd: u64) -> RecordedEvent {
    if unpark {
        RecordedEvent::WorkerUnpark {
            timestamp_nanos: t,
            worker,
            local_queue,
            cpu_nanos: Some(cpu),
            run_delay_nanos: Some(rd),
        }
    } else {
        RecordedEvent::WorkerPark {
            timestamp_nanos: t,
            worker,
            local_queue,
            cpu_nanos: Some(cpu),
            run_delay_nanos: Some(rd),
        }
    }
}

/// Every record kind and encoding path: worker switches (including a
/// worker index above u16), local queue changes inline and escaped in both
/// directions, new and repeated spawn locations, task ids going down, CPU
/// readings going down (wrapping deltas), a worker whose time goes back
/// (set-time), samples, drops, and times that are not multiples of the
/// unit.
fn rich_events() -> Vec<RecordedEvent> {
    let (a, b, c) = (site_a(), site_b(), site_c());
    let mut events = vec![
        RecordedEvent::QueueSample {
            timestamp_nanos: 0,
            global_queue: 0,
        },
        park(true, 1_001, 0, 0, 5_000, 100),
        poll_start(2_017, 0, 0, 1, a),
        poll_end(3_555, 0, 1),
        poll_start(3_600, 0, 8, 5, a),
        poll_end(4_000, 0, 1),
        poll_start(4_100, 0, 16, 3, b),
        // Its schedule latency (issue 18's 0x8C record).
        RecordedEvent::ScheduleLatency {
            timestamp_nanos: 4_100,
            worker: 0,
            latency_nanos: 1 << 33,
        },
        poll_end(90_000, 0, 300),
        park(true, 5_000, 1, 2, 7_000_000, 0),
        poll_start(5_100, 1, 299, 1 << 40, c),
        poll_end(5_300, 1, 284),
        poll_start(5_400, 1, 285, 2, c),
        RecordedEvent::ScheduleLatency {
            timestamp_nanos: 5_400,
            worker: 1,
            latency_nanos: 0,
        },
        poll_end(5_500, 1, 0),
        RecordedEvent::QueueSample {
            timestamp_nanos: 10_000_000,
            global_queue: 255,
        },
        RecordedEvent::QueueSample {
            timestamp_nanos: 20_000_031,
            global_queue: 70_000,
        },
        RecordedEvent::WorkerSample {
            timestamp_nanos: 20_000_100,
            worker: 0,
            cpu_nanos: 12_345_678,
            run_delay_nanos: Some(999),
        },
        RecordedEvent::WorkerSample {
            timestamp_nanos: 20_000_200,
            worker: 1,
            cpu_nanos: 8_000_000,
            run_delay_nanos: Some(0),
        },
        park(false, 95_000, 0, 0, 9_000, 150),
        park(false, 6_000, 1, 0, 6_000_000, 10),
        RecordedEvent::EventsDropped {
            timestamp_nanos: 25_000_000,
            count: 4096,
        },
        park(true, 3_000_000_000, 3, 0, 1, 1),
        poll_start(3_000_000_100, 3, 0, 77, b),
        poll_end(3_700_000_100, 3, 2),
        park(true, 100_000, 4_000_000_000, 1, 0, 0),
        poll_start(100_500, 4_000_000_000, 3, 9, a),
        poll_end(100_900, 4_000_000_000, 3),
        // Worker 0 again, earlier than its last event: set-time.
        poll_start(50_000, 0, 0, 6, a),
        poll_end(51_000, 0, 0),
        park(true, 60_000, 0, 0, 8_000, 140),
        // Parks and unparks without a reading (compact tags 0x44, 0x45),
        // then one with a reading: its deltas are from the last reading.
        RecordedEvent::WorkerPark {
            timestamp_nanos: 61_000,
            worker: 0,
            local_queue: 2,
            cpu_nanos: None,
            run_delay_nanos: None,
        },
        RecordedEvent::WorkerUnpark {
            timestamp_nanos: 62_000,
            worker: 0,
            local_queue: 1,
            cpu_nanos: None,
            run_delay_nanos: None,
        },
        park(false, 2_000_000, 0, 0, 900_000, 700),
        RecordedEvent::EventsDropped {
            timestamp_nanos: 30_000_000,
            count: 1,
        },
        RecordedEvent::QueueSample {
            timestamp_nanos: 5_000_000_000_000,
            global_queue: 1 << 40,
        },
        poll_start(5_000_000_000_000, 1, 1_000_000, 3, b),
        poll_end(5_000_000_000_500, 1, 999_999),
    ];
    // Spans and marks (issue 19), with a span id as `tracing` gives them
    // after slot reuse (a generation in the high bits), a nested span, an
    // exit on another worker, a close, and text with quotes and non-ASCII.
    let get = pulse_trace::span::intern("cmd::get");
    let key = pulse_trace::span::intern("key=\"user:42\" note=é");
    let conn = pulse_trace::span::intern("connection");
    let miss = pulse_trace::span::intern("cache miss");
    let big = (3u64 << 50) + 17;
    events.extend([
        poll_start(20_000_000, 0, 0, 9, a),
        RecordedEvent::SpanEnter {
            timestamp_nanos: 20_000_100,
            worker: 0,
            span: pulse_trace::SpanId(5),
            name: conn,
            fields: pulse_trace::TextId::EMPTY,
        },
        RecordedEvent::SpanEnter {
            timestamp_nanos: 20_000_200,
            worker: 0,
            span: pulse_trace::SpanId(big),
            name: get,
            fields: key,
        },
        RecordedEvent::Mark {
            timestamp_nanos: 20_000_300,
            worker: 0,
            name: miss,
            value: Some(42),
        },
        RecordedEvent::Mark {
            timestamp_nanos: 20_000_310,
            worker: 0,
            name: miss,
            value: None,
        },
        RecordedEvent::SpanExit {
            timestamp_nanos: 20_000_400,
            worker: 0,
            span: pulse_trace::SpanId(big),
        },
        poll_end(20_000_500, 0, 0),
        poll_start(20_000_600, 1, 0, 9, a),
        RecordedEvent::SpanExit {
            timestamp_nanos: 20_000_700,
            worker: 1,
            span: pulse_trace::SpanId(5),
        },
        RecordedEvent::SpanClose {
            timestamp_nanos: 20_000_800,
            worker: 1,
            span: pulse_trace::SpanId(5),
        },
        poll_end(20_000_900, 1, 0),
    ]);
    // A run of ordinary polls on two workers, alternating in small batches.
    let mut t = 6_000_000_000_000u64;
    for i in 0..60u64 {
        let worker = (i / 5 % 2) as u32;
        let site = [a, b, c][(i % 7 % 3) as usize];
        events.push(poll_start(
            t,
            worker,
            (i % 9) as u32,
            100 + i * 3 % 17,
            site,
        ));
        t += 250 + i * 37 % 400;
        events.push(poll_end(t, worker, (i % 5) as u32));
        t += 90;
    }
    events
}

fn metadata(unit: u32, run_delay: bool) -> TraceMetadata {
    TraceMetadata {
        time_unit_nanos: unit,
        worker_count: 4,
        start_unix_nanos: 1_700_000_000_123_456_789,
        pulse_version: "0.1.0-test".to_owned(),
        has_run_delay: run_delay,
        file_index: 0,
        config: vec![
            ("flush_ms".to_owned(), "250".to_owned()),
            ("path".to_owned(), "traces/ä \"q\".bin".to_owned()),
        ],
    }
}

fn encode(version: FormatVersion, meta: TraceMetadata, events: &[RecordedEvent]) -> Vec<u8> {
    let mut encoder = Encoder::new(version, meta);
    let mut out = Vec::new();
    encoder.begin_file(0, &mut out);
    for event in events {
        encoder.encode(event, &mut out);
    }
    out
}

// ---- hand-built v6 files --------------------------------------------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(out: &mut Vec<u8>, v: i64) {
    varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn string(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn record(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    out.push(tag);
    varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

fn header(version: u32) -> Vec<u8> {
    let mut out = b"TOKIOTRC".to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out
}

/// A v6 header and metadata (unit 10 ns, run delay recorded), plus
/// `extra` bytes at the end of the metadata payload.
fn v6_start(extra: &[u8]) -> Vec<u8> {
    let mut out = header(6);
    let mut p = Vec::new();
    varint(&mut p, 10);
    varint(&mut p, 2);
    varint(&mut p, 0);
    string(&mut p, "handmade");
    varint(&mut p, 1 | 0b110); // run delay, plus reserved bits
    varint(&mut p, 0);
    varint(&mut p, 1);
    string(&mut p, "k");
    string(&mut p, "v");
    p.extend_from_slice(extra);
    record(&mut out, 0x80, &p);
    out
}

fn location_def(out: &mut Vec<u8>, id: u64, file: &str, line: u64, column: u64) {
    let mut p = Vec::new();
    varint(&mut p, id);
    string(&mut p, file);
    varint(&mut p, line);
    varint(&mut p, column);
    record(out, 0x81, &p);
}

/// Records a reader must skip or accept: unknown length-prefixed tags,
/// trailing bytes in known records and in the metadata, location id 0
/// (unknown), a redefined location, set-time.
fn extensions() -> Vec<u8> {
    let mut out = v6_start(&[0xAA, 0xBB, 0x01]);
    record(&mut out, 0x85, b"a future record");
    record(&mut out, 0xFF, &[]);
    location_def(&mut out, 7, "src/ü.rs", 3, 9);
    out.extend_from_slice(&[0x42, 0x01]); // switch to worker 1
                                          // PollStart, new location, queue +0, dt 5, task +2, location 0.
    out.extend_from_slice(&[0x30, 0x05, 0x04, 0x00]);
    out.extend_from_slice(&[0x00, 0x03]); // PollEnd, queue +0, dt 3
                                          // PollStart, new location 7, queue code +1 (zigzag 2), dt 1, task -1.
    out.extend_from_slice(&[0x32, 0x01, 0x01, 0x07]);
    // QueueSample with two trailing bytes from a later revision.
    let mut p = Vec::new();
    varint(&mut p, 1_000);
    varint(&mut p, 12);
    p.extend_from_slice(&[0x01, 0x02]);
    record(&mut out, 0x82, &p);
    let mut unknown = vec![0u8; 1_000];
    unknown[999] = 0x80;
    record(&mut out, 0xC3, &unknown);
    out.extend_from_slice(&[0x43, 0x02]); // set time: 2 ticks
    out.extend_from_slice(&[0x1F, 0x80, 0x01, 0x00]); // PollEnd, escaped queue 128, dt 0
    location_def(&mut out, 7, "src/redefined.rs", 1, 1);
    out.extend_from_slice(&[0x20, 0x01, 0x00]); // PollStart, same location, queue 128-0
                                                // WorkerSample, WorkerPark with a negative CPU delta.
    let mut p = Vec::new();
    varint(&mut p, 50);
    varint(&mut p, 1);
    varint(&mut p, 123);
    varint(&mut p, 45);
    record(&mut out, 0x83, &p);
    out.push(0x40);
    varint(&mut out, 1);
    varint(&mut out, 0);
    zigzag(&mut out, 500);
    zigzag(&mut out, 20);
    out.push(0x41);
    varint(&mut out, 7);
    varint(&mut out, 0);
    zigzag(&mut out, -100);
    zigzag(&mut out, 0);
    let mut p = Vec::new();
    varint(&mut p, 60);
    varint(&mut p, 17);
    record(&mut out, 0x84, &p);
    out
}

/// One file per way a v6 or v5 file can be rejected.
fn error_files() -> Vec<(&'static str, Vec<u8>)> {
    let mut cases = Vec::new();
    cases.push(("empty", Vec::new()));
    cases.push(("short-header", b"TOKIOTR".to_vec()));
    let mut bad = b"\x00\xffTOKIO\n".to_vec();
    bad.extend_from_slice(&6u32.to_le_bytes());
    cases.push(("bad-magic", bad));
    cases.push(("quote-magic", b"TOK'\"\\\tX\x07\x00\x00\x00".to_vec()));
    cases.push(("version-7", header(7)));
    cases.push(("version-huge", header(u32::MAX)));
    cases.push(("v6-no-metadata", header(6)));
    let mut first = header(6);
    first.extend_from_slice(&[0x42, 0x00]);
    cases.push(("v6-first-not-metadata", first));
    let mut meta_cut = header(6);
    meta_cut.extend_from_slice(&[0x80, 0x85]);
    cases.push(("v6-metadata-length-cut", meta_cut));
    let mut unit0 = header(6);
    record(
        &mut unit0,
        0x80,
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
    );
    cases.push(("v6-unit-zero", unit0));
    let mut short_meta = header(6);
    record(&mut short_meta, 0x80, &[0x0A, 0x01]);
    cases.push(("v6-metadata-missing-field", short_meta));
    let mut lying_count = header(6);
    record(
        &mut lying_count,
        0x80,
        &[0x0A, 0x01, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00],
    );
    cases.push(("v6-config-count-lies", lying_count));
    let mut utf8 = header(6);
    record(
        &mut utf8,
        0x80,
        &[0x0A, 0x01, 0x00, 0x02, 0xC3, 0x28, 0x00, 0x00, 0x00],
    );
    cases.push(("v6-bad-utf8", utf8));
    let mut long_str = header(6);
    record(&mut long_str, 0x80, &[0x0A, 0x01, 0x00, 0x09, 0x41]);
    cases.push(("v6-string-past-record", long_str));
    let mut unit_big = header(6);
    let mut p = Vec::new();
    varint(&mut p, 1 << 33);
    record(&mut unit_big, 0x80, &p);
    cases.push(("v6-unit-out-of-range", unit_big));
    let start = || v6_start(&[]);
    let mut dup = start();
    record(&mut dup, 0x80, &[0x0A]);
    cases.push(("v6-duplicate-metadata", dup));
    let mut before_switch = start();
    before_switch.extend_from_slice(&[0x00, 0x01]);
    cases.push(("v6-poll-before-switch", before_switch));
    let mut park_before = start();
    park_before.extend_from_slice(&[0x41, 0x01, 0x00, 0x00, 0x00]);
    cases.push(("v6-park-before-switch", park_before));
    let mut set_before = start();
    set_before.extend_from_slice(&[0x43, 0x01]);
    cases.push(("v6-set-time-before-switch", set_before));
    let mut unknown_tag = start();
    unknown_tag.extend_from_slice(&[0x42, 0x00, 0x50]);
    cases.push(("v6-unknown-compact-tag", unknown_tag));
    let mut undefined = start();
    undefined.extend_from_slice(&[0x42, 0x00, 0x30, 0x01, 0x02, 0x05]);
    cases.push(("v6-undefined-location", undefined));
    let mut no_prev = start();
    no_prev.extend_from_slice(&[0x42, 0x00, 0x20, 0x01, 0x02]);
    cases.push(("v6-no-previous-location", no_prev));
    let mut below_zero = start();
    below_zero.extend_from_slice(&[0x42, 0x00, 0x01, 0x01]);
    cases.push(("v6-queue-below-zero", below_zero));
    let mut too_long = start();
    too_long.extend_from_slice(&[0x42, 0x00, 0x00]);
    too_long.extend_from_slice(&[0xFF; 10]);
    cases.push(("v6-varint-too-long", too_long));
    let mut overflow = start();
    overflow.extend_from_slice(&[0x42, 0x00, 0x00]);
    overflow.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02]);
    cases.push(("v6-varint-overflow", overflow));
    let mut worker_big = start();
    worker_big.push(0x42);
    varint(&mut worker_big, 1 << 32);
    cases.push(("v6-worker-out-of-range", worker_big));
    let mut record_big = start();
    record_big.push(0x85);
    varint(&mut record_big, (1 << 20) + 1);
    cases.push(("v6-record-too-long", record_big));
    let mut payload_cut = start();
    payload_cut.extend_from_slice(&[0x85, 0x10, 0x01, 0x02]);
    cases.push(("v6-payload-cut", payload_cut));
    let mut loc_zero = start();
    location_def(&mut loc_zero, 0, "x", 1, 1);
    cases.push(("v6-location-id-zero", loc_zero));
    let mut loc_big = start();
    location_def(&mut loc_big, (1 << 20) + 1, "x", 1, 1);
    cases.push(("v6-location-id-too-big", loc_big));
    let mut sample_short = start();
    record(&mut sample_short, 0x83, &[0x01, 0x01]);
    cases.push(("v6-worker-sample-missing-field", sample_short));
    let mut ts_overflow = start();
    ts_overflow.extend_from_slice(&[0x42, 0x00, 0x43]);
    varint(&mut ts_overflow, 1 << 62);
    ts_overflow.extend_from_slice(&[0x00, 0x01]);
    cases.push(("v6-timestamp-overflow", ts_overflow));
    let mut v5_code = header(5);
    v5_code.extend_from_slice(&[0x00, 1, 0, 0, 0, 0, 0x07]);
    cases.push(("v5-unknown-code", v5_code));
    let mut v5_cut = header(5);
    v5_cut.extend_from_slice(&[0x02, 1, 0, 0, 0, 0, 0]);
    cases.push(("v5-truncated-park", v5_cut));
    cases
}

/// A small deterministic generator for mutations.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn cuts(cases: &mut Cases, name: &str, bytes: &[u8], every: usize) {
    for len in (0..bytes.len()).step_by(every) {
        cases.one(&format!("{name}-cut-{len}"), bytes[..len].to_vec());
    }
}

fn mutations(cases: &mut Cases, name: &str, bytes: &[u8], count: usize, seed: u64) {
    let mut rng = XorShift(seed);
    for i in 0..count {
        let mut mutated = bytes.to_vec();
        for _ in 0..1 + rng.below(3) {
            // Mostly after the header, sometimes in it.
            let at = if rng.below(20) == 0 {
                rng.below(12)
            } else {
                12 + rng.below(mutated.len() - 12)
            };
            mutated[at] = rng.next() as u8;
        }
        cases.one(&format!("{name}-mutated-{i}"), mutated);
    }
}

#[test]
fn js_decoder_matches_rust_reader_on_golden_traces() {
    let mut cases = Cases::new();
    let events = rich_events();
    let v6 = encode(FormatVersion::V6, metadata(32, true), &events);
    cases.one("v6-rich-unit32", v6.clone());
    cases.one(
        "v6-rich-unit1",
        encode(FormatVersion::V6, metadata(1, false), &events),
    );
    cases.one(
        "v6-rich-unit1000",
        encode(FormatVersion::V6, metadata(1000, true), &events),
    );
    let v5 = encode(FormatVersion::V5, metadata(32, true), &events);
    cases.one("v5-rich", v5.clone());
    cases.one("header-only-v5", header(5));
    cases.one(
        "metadata-only-v6",
        encode(FormatVersion::V6, metadata(32, false), &[]),
    );

    // A rotated set from one encoder: each file defines the locations it
    // uses; ids stay the same across files.
    let mut encoder = Encoder::new(FormatVersion::V6, metadata(32, true));
    let mut files = Vec::new();
    for (index, chunk) in events.chunks(events.len() / 3 + 1).enumerate() {
        let mut out = Vec::new();
        encoder.begin_file(index as u64, &mut out);
        for event in chunk {
            encoder.encode(event, &mut out);
        }
        files.push((format!("trace.{index}.bin"), out));
    }
    cases.add("v6-rotated", files.clone());
    // The same set with a middle file cut short: reading stops there.
    let mut cut = files.clone();
    let len = cut[1].1.len();
    cut[1].1.truncate(len - 3);
    cases.add("v6-rotated-cut", cut);

    cases.one("v6-extensions", extensions());
    // Ended on purpose (a signal), and a set whose last file ends so; an
    // end record that events follow says nothing (the extensions case has
    // one, with a payload from nobody).
    let mut ended = v6.clone();
    let mut end = pulse_trace::TraceEnd::new(3_000_000, pulse_trace::EndReason::Signal(15));
    end.dropped_events = 7;
    end.threads_still_recording = 1;
    {
        let mut encoder = Encoder::new(FormatVersion::V6, metadata(32, true));
        let mut scratch = Vec::new();
        encoder.begin_file(0, &mut scratch);
        encoder.encode_end(&end, &mut ended);
    }
    cases.one("v6-ended-by-signal", ended);
    let mut ended_set = files.clone();
    {
        let mut encoder = Encoder::new(FormatVersion::V6, metadata(32, true));
        let mut scratch = Vec::new();
        encoder.begin_file(0, &mut scratch);
        let last = ended_set.len() - 1;
        encoder.encode_end(
            &pulse_trace::TraceEnd::new(9_000_000, pulse_trace::EndReason::Dump),
            &mut ended_set[last].1,
        );
    }
    cases.add("v6-rotated-ended", ended_set);
    for (name, bytes) in error_files() {
        cases.one(name, bytes);
    }

    cuts(&mut cases, "v6", &v6, 1);
    cuts(&mut cases, "v5", &v5[..v5.len().min(200)], 1);
    cuts(&mut cases, "ext", &extensions(), 1);
    mutations(&mut cases, "v6", &v6, 400, 0x9E37_79B9_7F4A_7C15);
    mutations(&mut cases, "ext", &extensions(), 200, 0xD1B5_4A32_D192_ED03);
    mutations(&mut cases, "v5", &v5, 100, 0x2545_F491_4F6C_DD1D);
    cases.check();
}

#[test]
fn js_decoder_matches_rust_reader_on_real_runtime_traces() {
    let mut cases = Cases::new();
    for (name, format) in [
        ("real-v6", FormatVersion::V6),
        ("real-v5", FormatVersion::V5),
    ] {
        let file = format!("{name}.bin");
        record_blocking_trace(&cases.path(&file), format, Duration::from_millis(30));
        cases.add_written(name, vec![file.clone()]);
        // Cut in a few places, as a killed process leaves a file.
        let bytes = std::fs::read(cases.path(&file)).expect("read trace");
        assert!(bytes.len() > 1_000, "{name}: {} bytes", bytes.len());
        let mut rng = XorShift(bytes.len() as u64 | 1);
        for i in 0..5 {
            let len = 12 + rng.below(bytes.len() - 12);
            cases.one(&format!("{name}-cut{i}"), bytes[..len].to_vec());
        }
    }
    cases.check();
}

#[test]
fn lines_match_allows_only_double_rounding_above_2_pow_53() {
    assert!(lines_match("x t=5", "x t=5"));
    assert!(!lines_match("x t=5", "x t=6"));
    assert!(lines_match(
        "cpu=18446744073709551515 rd=1",
        "cpu=18446744073709551616 rd=1"
    ));
    assert!(!lines_match("cpu=9007199254740000", "cpu=9007199254740001"));
    assert!(!lines_match("a=1 b", "a=1 c"));
}
