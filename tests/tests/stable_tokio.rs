//! pulse with and without `--cfg tokio_unstable`. CI runs this file both
//! ways (`.ci/run`, "stable Tokio"): without the cfg the recorder still
//! records every worker's parks and unparks with CPU readings, the sampler's
//! per-worker readings and the global queue, and says in the trace's
//! metadata that task-level detail is missing; with it, polls too.

use pulse::trace::{EventType, TraceEvent, TraceReader};
use pulse::{Config, Recorder, WriterConfig};
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn records_workers_with_or_without_tokio_unstable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let config = Config::new().sample_ms(2).writer(WriterConfig::file(&path));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, &config).unwrap();
    runtime.block_on(async {
        for round in 0..20u64 {
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(1 + (i + round) % 3)).await;
                        std::hint::black_box(i * round)
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        }
    });
    drop(runtime);
    let summary = guard.finish().unwrap();
    assert_eq!(summary.dropped_events, 0);

    let mut reader = TraceReader::open(&path).unwrap();
    let metadata = reader.metadata().cloned().expect("v6 metadata");
    let recorded_cfg = metadata
        .config
        .iter()
        .find(|(key, _)| key == "tokio_unstable")
        .map(|(_, value)| value.clone());
    assert_eq!(
        recorded_cfg.as_deref(),
        Some(if cfg!(tokio_unstable) {
            "true"
        } else {
            "false"
        }),
        "the metadata says whether task-level detail was recorded"
    );
    let mut kinds = BTreeSet::new();
    let mut parked_workers = BTreeSet::new();
    let mut cpu_readings = 0;
    while let Some(event) = reader.next_event().unwrap() {
        kinds.insert(event.event_type());
        if let TraceEvent::WorkerPark {
            worker, cpu_nanos, ..
        } = event
        {
            parked_workers.insert(worker);
            if cpu_nanos > 0 {
                cpu_readings += 1;
            }
        }
    }
    assert_eq!(
        parked_workers,
        BTreeSet::from([0, 1]),
        "both workers park, identified by index"
    );
    assert!(cpu_readings > 0, "parks carry the thread's CPU time");
    for kind in [
        EventType::WorkerUnpark,
        EventType::QueueSample,
        EventType::WorkerSample,
    ] {
        assert!(kinds.contains(&kind), "no {kind} recorded");
    }
    assert_eq!(
        kinds.contains(&EventType::PollStart),
        cfg!(tokio_unstable),
        "task polls are recorded exactly when the cfg is set"
    );
}
