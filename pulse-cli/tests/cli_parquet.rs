//! `pulse export parquet` as a user runs it: the partitioned layout, the
//! rows read back with the Parquet reader, the schema's metadata, and
//! one-line errors for arguments that cannot work.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pulse_trace::{Encoder, FormatVersion, RecordedEvent, SpawnLocation, TraceMetadata};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MS: u64 = 1_000_000;
/// 2025-11-23 20:01:25 UTC.
const START: u64 = 1_763_928_085_000_000_000;

fn pulse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(args)
        .output()
        .expect("runs the pulse binary")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Two workers over 300 ms: worker 0 polls task 1 briefly 20 times, then
/// blocks 200 ms in a poll of task 42 while its CPU clock stands still;
/// worker 1 parks twice. The sampler reads both every 10 ms.
fn write_trace(path: &Path, config: Vec<(String, String)>) {
    let short = SpawnLocation(std::panic::Location::caller());
    let blocking = SpawnLocation(std::panic::Location::caller());
    let mut events = Vec::new();
    for i in 0..20 {
        events.push(RecordedEvent::PollStart {
            timestamp_nanos: i * MS,
            worker: 0,
            local_queue: 1,
            task_id: Some(1),
            spawned_at: short,
        });
        events.push(RecordedEvent::PollEnd {
            timestamp_nanos: i * MS + MS / 2,
            worker: 0,
            local_queue: 0,
        });
    }
    events.push(RecordedEvent::PollStart {
        timestamp_nanos: 50 * MS,
        worker: 0,
        local_queue: 0,
        task_id: Some(42),
        spawned_at: blocking,
    });
    // Its task waited 3 ms to be polled (issue 18's schedule latency).
    events.push(RecordedEvent::ScheduleLatency {
        timestamp_nanos: 50 * MS,
        worker: 0,
        latency_nanos: 3 * MS,
    });
    events.push(RecordedEvent::PollEnd {
        timestamp_nanos: 250 * MS,
        worker: 0,
        local_queue: 2,
    });
    for (park, unpark) in [(10, 40), (100, 200)] {
        events.push(RecordedEvent::WorkerPark {
            timestamp_nanos: park * MS,
            worker: 1,
            local_queue: 0,
            cpu_nanos: Some(park * MS / 2),
            run_delay_nanos: Some(0),
        });
        events.push(RecordedEvent::WorkerUnpark {
            timestamp_nanos: unpark * MS,
            worker: 1,
            local_queue: 0,
            cpu_nanos: Some(park * MS / 2),
            run_delay_nanos: Some(MS),
        });
    }
    for ms in (0..=300).step_by(10) {
        events.push(RecordedEvent::QueueSample {
            timestamp_nanos: ms * MS,
            global_queue: 0,
        });
        for worker in 0..2 {
            events.push(RecordedEvent::WorkerSample {
                timestamp_nanos: ms * MS,
                worker,
                cpu_nanos: ms.min(50) * MS / 2,
                run_delay_nanos: Some(0),
            });
        }
    }
    events.sort_by_key(RecordedEvent::timestamp_nanos);
    let metadata = TraceMetadata {
        worker_count: 2,
        has_run_delay: true,
        start_unix_nanos: START,
        config,
        ..TraceMetadata::default()
    };
    let mut encoder = Encoder::new(FormatVersion::V6, metadata);
    let mut bytes = Vec::new();
    encoder.begin_file(0, &mut bytes);
    for event in &events {
        encoder.encode(event, &mut bytes);
    }
    std::fs::write(path, bytes).unwrap();
}

fn read(path: &Path) -> (RecordBatch, std::collections::HashMap<String, String>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let metadata = builder.schema().metadata().clone();
    let mut batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1, "a small table reads as one batch");
    (batches.remove(0), metadata)
}

fn i64s(batch: &RecordBatch, column: &str) -> Vec<Option<i64>> {
    batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"))
        .as_primitive::<Int64Type>()
        .iter()
        .collect()
}

fn i32s(batch: &RecordBatch, column: &str) -> Vec<Option<i32>> {
    batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"))
        .as_primitive::<Int32Type>()
        .iter()
        .collect()
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"))
        .as_string::<i32>()
        .iter()
        .map(|s| s.map(str::to_owned))
        .collect()
}

fn table(out: &Path, table: &str, run: &str) -> PathBuf {
    out.join(table)
        .join("service=api/host=web-1/date=2025-11-23")
        .join(format!("{run}.parquet"))
}

#[test]
fn export_writes_partitioned_tables_that_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.bin");
    write_trace(&trace, Vec::new());
    let out = dir.path().join("dataset");
    let output = pulse(&[
        "export",
        "parquet",
        trace.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--service",
        "api",
        "--host",
        "web-1",
        "--run",
        "r1",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("service=api host=web-1 date=2025-11-23 run=r1: 21 polls, 2 parks, 93 samples, 1 findings, 1 runs"),
        "{said}"
    );
    // No temporary file is left behind.
    for name in ["polls", "parks", "samples", "findings", "runs"] {
        let dir = table(&out, name, "r1").parent().unwrap().to_owned();
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files, ["r1.parquet"], "{name}");
    }

    let (polls, metadata) = read(&table(&out, "polls", "r1"));
    assert_eq!(metadata["pulse.schema"], "pulse-parquet/1");
    assert_eq!(metadata["pulse.table"], "polls");
    assert_eq!(polls.num_rows(), 21);
    assert!(strings(&polls, "service")
        .iter()
        .all(|s| s.as_deref() == Some("api")));
    assert!(strings(&polls, "host")
        .iter()
        .all(|s| s.as_deref() == Some("web-1")));
    assert!(strings(&polls, "run")
        .iter()
        .all(|s| s.as_deref() == Some("r1")));
    // The blocking poll: its row carries the finding's verdict and split.
    let long = i64s(&polls, "duration_ns")
        .iter()
        .position(|d| *d == Some(200 * MS as i64))
        .expect("the 200 ms poll is a row");
    assert_eq!(i64s(&polls, "start_ns")[long], Some(50 * MS as i64));
    assert_eq!(i64s(&polls, "task_id")[long], Some(42));
    assert_eq!(i32s(&polls, "local_queue_end")[long], Some(2));
    assert_eq!(
        strings(&polls, "verdict")[long].as_deref(),
        Some("blocked_in_poll")
    );
    let (cpu, wait, off) = (
        i64s(&polls, "cpu_ns")[long].unwrap(),
        i64s(&polls, "run_delay_ns")[long].unwrap(),
        i64s(&polls, "off_cpu_ns")[long].unwrap(),
    );
    assert_eq!(cpu + wait + off, 200 * MS as i64);
    assert!(
        off > 190 * MS as i64,
        "blocked: off the CPU ({cpu}, {wait}, {off})"
    );
    let site = strings(&polls, "spawned_at")[long].clone().unwrap();
    assert!(
        site.starts_with("pulse-cli/tests/cli_parquet.rs:"),
        "{site}"
    );
    // Short polls have no verdict; wall-clock times follow the trace's start.
    let short = i64s(&polls, "duration_ns")
        .iter()
        .position(|d| *d == Some(MS as i64 / 2))
        .unwrap();
    assert_eq!(strings(&polls, "verdict")[short], None);
    assert_eq!(i64s(&polls, "cpu_ns")[short], None);
    // Schedule latency: where the trace has one, and NULL elsewhere.
    assert_eq!(
        i64s(&polls, "schedule_latency_ns")[long],
        Some(3 * MS as i64)
    );
    assert_eq!(i64s(&polls, "schedule_latency_ns")[short], None);
    let start_time = polls
        .column_by_name("start_time")
        .unwrap()
        .as_primitive::<arrow_array::types::TimestampMicrosecondType>();
    assert_eq!(start_time.value(long), ((START + 50 * MS) / 1000) as i64);

    let (parks, _) = read(&table(&out, "parks", "r1"));
    assert_eq!(
        i64s(&parks, "duration_ns"),
        [Some(30 * MS as i64), Some(100 * MS as i64)]
    );
    assert_eq!(
        i64s(&parks, "wake_wait_ns"),
        [Some(MS as i64), Some(MS as i64)]
    );

    let (samples, _) = read(&table(&out, "samples", "r1"));
    let kinds = strings(&samples, "kind");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| k.as_deref() == Some("worker"))
            .count(),
        62
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| k.as_deref() == Some("global_queue"))
            .count(),
        31
    );

    let (findings, _) = read(&table(&out, "findings", "r1"));
    assert_eq!(
        strings(&findings, "verdict"),
        [Some("blocked_in_poll".to_owned())]
    );
    assert_eq!(i64s(&findings, "cpu_ns"), [Some(cpu)]);
    assert_eq!(strings(&findings, "spawned_at"), [Some(site)]);
    // The trace has a latency, so the finding says whom it delayed: the
    // one wait (47-50 ms) ended as the blocked poll began.
    assert_eq!(i64s(&findings, "delayed_tasks"), [Some(0)]);

    let (runs, _) = read(&table(&out, "runs", "r1"));
    assert_eq!(i64s(&runs, "polls"), [Some(21)]);
    assert_eq!(i64s(&runs, "parks"), [Some(2)]);
    assert_eq!(i64s(&runs, "findings"), [Some(1)]);

    // Exporting the same run again replaces its files.
    let again = pulse(&[
        "export",
        "parquet",
        trace.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--service",
        "api",
        "--host",
        "web-1",
        "--run",
        "r1",
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(read(&table(&out, "polls", "r1")).0.num_rows(), 21);
}

#[test]
fn identity_defaults_come_from_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.bin");
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    write_trace(
        &trace,
        vec![
            pair("hostname", "web-1"),
            pair("pid", "4242"),
            pair("service", "api"),
        ],
    );
    let out = dir.path().join("dataset");
    let output = pulse(&[
        "export",
        "parquet",
        trace.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(table(&out, "polls", "20251123T200125Z-4242").is_file());
}

#[test]
fn arguments_that_cannot_work_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.bin");
    write_trace(&trace, Vec::new());
    let out = dir.path().join("dataset");
    let (trace, out) = (trace.to_str().unwrap(), out.to_str().unwrap());
    let cases: [(&[&str], &str); 3] = [
        (
            &[],
            "the trace records no service or executable name (traces from before pulse recorded its identity lack it): pass --service NAME",
        ),
        (
            &["--service", "api", "--host", "web/1"],
            "--host `web/1` cannot name a directory",
        ),
        (
            &["--service", "api", "--host", "h", "--run", "r", trace],
            "--run names one run, but 2 traces were given",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["export", "parquet", trace, "--out", out];
        all.extend_from_slice(args);
        let output = pulse(&all);
        assert!(!output.status.success(), "{all:?}");
        let err = stderr(&output);
        assert!(err.starts_with("pulse: error: "), "{err}");
        assert!(err.contains(expected), "{all:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(
        !Path::new(out).join("polls").exists(),
        "nothing written on error"
    );
}
