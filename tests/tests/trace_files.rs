//! End to end through real files: a traced runtime writes, `TraceReader`
//! reads back, and what comes back is what Tokio did.

use pulse::{
    Config, EventType, Recorder, RotatingWriter, SimpleBinaryWriter, TraceWriter, WriterConfig,
};
use pulse_trace::{rotated_files, FormatVersion, TraceEvent, TraceReader};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

fn builder(workers: usize) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // See recorder.rs: Tokio's poll count skips LIFO-slot polls.
    builder
        .worker_threads(workers)
        .enable_all()
        .disable_lifo_slot();
    builder
}

async fn workload(tasks: u64, yields: u64) {
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            tokio::spawn(async move {
                for j in 0..yields {
                    tokio::task::yield_now().await;
                    if (i + j) % 25 == 0 {
                        tokio::time::sleep(Duration::from_micros(100)).await;
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
}

fn settled_poll_counts(runtime: &tokio::runtime::Runtime) -> Vec<u64> {
    let metrics = runtime.metrics();
    let read = || -> Vec<u64> {
        (0..metrics.num_workers())
            .map(|w| metrics.worker_poll_count(w))
            .collect()
    };
    let mut last = read();
    let mut stable_reads = 0;
    while stable_reads < 5 {
        std::thread::sleep(Duration::from_millis(10));
        let now = read();
        stable_reads = if now == last { stable_reads + 1 } else { 0 };
        last = now;
    }
    last
}

fn read_all(files: Vec<std::path::PathBuf>) -> Vec<TraceEvent> {
    TraceReader::open_files(files)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn poll_starts_by_worker(events: &[TraceEvent]) -> BTreeMap<u32, u64> {
    let mut map = BTreeMap::new();
    for event in events {
        if event.event_type() == EventType::PollStart {
            *map.entry(event.worker().unwrap()).or_default() += 1;
        }
    }
    map
}

fn check_shutdown_loses_nothing(format: FormatVersion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let config = Config::new()
        .format(format)
        .writer(WriterConfig::file(&path));
    let (runtime, guard) = Recorder::from_config(builder(3), &config).unwrap();
    runtime.block_on(workload(50, 40));
    let expected = settled_poll_counts(&runtime);
    drop(runtime);
    let summary = guard.finish().unwrap();
    assert_eq!(summary.dropped_events, 0);

    let events = read_all(vec![path]);
    let got = poll_starts_by_worker(&events);
    for (worker, polls) in expected.iter().enumerate() {
        assert_eq!(
            got.get(&(worker as u32)).copied().unwrap_or(0),
            *polls,
            "{format:?}: worker {worker} polls in the file vs tokio's count"
        );
    }
    let ends = events
        .iter()
        .filter(|e| e.event_type() == EventType::PollEnd)
        .count() as u64;
    assert_eq!(ends, expected.iter().sum::<u64>());
}

#[test]
fn shutdown_loses_no_events_v6() {
    check_shutdown_loses_nothing(FormatVersion::V6);
}

#[test]
fn shutdown_loses_no_events_v5() {
    check_shutdown_loses_nothing(FormatVersion::V5);
}

#[test]
fn v6_file_carries_metadata_task_ids_and_spawn_locations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let config = Config::new().writer(WriterConfig::file(&path));
    let (runtime, guard) = Recorder::from_config(builder(2), &config).unwrap();
    let line = line!() + 1;
    let handle = runtime.spawn(async { tokio::task::yield_now().await });
    let id: u64 = handle.id().to_string().parse().unwrap();
    runtime.block_on(handle).unwrap();
    drop(runtime);
    drop(guard);

    let mut reader = TraceReader::open(&path).unwrap();
    let mut ours = Vec::new();
    while let Some(event) = reader.next_event().unwrap() {
        if let TraceEvent::PollStart {
            task_id: Some(task),
            spawned_at: Some(location),
            ..
        } = event
        {
            if task == id {
                ours.push(reader.location(location).unwrap().clone());
            }
        }
    }
    assert_eq!(ours.len(), 2);
    assert!(ours[0].file.ends_with("trace_files.rs"), "{}", ours[0]);
    assert_eq!(ours[0].line, line);
    let metadata = reader.metadata().unwrap();
    assert_eq!(metadata.worker_count, 2);
    assert_eq!(
        metadata.pulse_version.split('.').count(),
        3,
        "a semver version"
    );
    assert!(metadata
        .config
        .iter()
        .any(|(k, v)| k == "flush_ms" && v == "250"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        now - metadata.start_unix_nanos < 60_000_000_000,
        "start time is recent"
    );
}

fn total_size(files: &[std::path::PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum()
}

#[test]
fn rotation_honours_limits_and_every_file_reads_back_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("trace.bin");
    let (max_file, max_total) = (16 * 1024, 48 * 1024);
    let config = Config::new()
        .flush_ms(10)
        .writer(WriterConfig::rotating(&base, max_file, max_total));
    let (runtime, guard) = Recorder::from_config(builder(2), &config).unwrap();
    runtime.block_on(workload(100, 400));
    drop(runtime);
    let summary = guard.finish().unwrap();

    let files = rotated_files(&base).unwrap();
    assert!(
        files.len() >= 2,
        "{} bytes of events must rotate",
        summary.events_written
    );
    assert!(
        !files[0].ends_with("trace.0.bin"),
        "the oldest files were deleted to honour max_total_size"
    );
    assert!(total_size(&files) <= max_total);
    let mut last_index = None;
    for file in &files {
        assert!(
            std::fs::metadata(file).unwrap().len() <= max_file,
            "{}",
            file.display()
        );
        let mut reader = TraceReader::open(file).unwrap();
        let mut count = 0;
        while reader.next_event().unwrap().is_some() {
            count += 1;
        }
        assert!(count > 0, "{} has events", file.display());
        let index = reader.metadata().unwrap().file_index;
        assert!(
            last_index.is_none_or(|last| index == last + 1),
            "files are consecutive"
        );
        last_index = Some(index);
    }
    // The set reads in order too: per worker, the events its thread
    // recorded never go back in time. (The sampler's records, samples,
    // stacks of long polls and worker-thread changes, are written in their
    // own batches, which interleave with the workers' batches.)
    let mut last_time: BTreeMap<u32, u64> = BTreeMap::new();
    for event in read_all(files) {
        let recorded_by_the_worker = matches!(
            event.event_type(),
            EventType::PollStart
                | EventType::PollEnd
                | EventType::WorkerPark
                | EventType::WorkerUnpark
        );
        if !recorded_by_the_worker {
            continue;
        }
        if let Some(worker) = event.worker() {
            let last = last_time.entry(worker).or_default();
            assert!(event.timestamp_nanos() >= *last);
            *last = event.timestamp_nanos();
        }
    }
}

#[cfg(unix)]
#[test]
fn trace_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single.bin");
    SimpleBinaryWriter::new(&single).unwrap().finish().unwrap();
    let rotating = dir.path().join("set.bin");
    RotatingWriter::new(&rotating, 4096, 8192)
        .unwrap()
        .finish()
        .unwrap();
    for file in [single, rotating.with_file_name("set.0.bin")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

#[test]
fn a_truncated_trace_reports_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let config = Config::new().writer(WriterConfig::file(&path));
    let (runtime, guard) = Recorder::from_config(builder(2), &config).unwrap();
    runtime.block_on(workload(10, 10));
    drop(runtime);
    drop(guard);

    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.bin");
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    let err = TraceReader::open(&cut)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("cut.bin"), "{message}");
    assert!(message.contains("byte "), "{message}");
}

#[test]
fn missing_directories_are_created_and_an_impossible_path_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/trace.bin");
    Config::new()
        .writer(WriterConfig::file(&path))
        .make_writer()
        .expect("the missing directories are created");
    assert!(path.is_file());
    // A directory cannot be made inside a regular file.
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let path = dir.path().join("a-file/dir/trace.bin");
    let Err(err) = Config::new()
        .writer(WriterConfig::file(&path))
        .make_writer()
    else {
        panic!("a file under a regular file cannot be created");
    };
    let message = err.to_string();
    assert!(message.contains("a-file/dir/trace.bin"), "{message}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_stops_recording_and_the_program_carries_on() {
    // /dev/full accepts the open and fails every write with ENOSPC.
    if !Path::new("/dev/full").exists() {
        return;
    }
    let writer = SimpleBinaryWriter::new("/dev/full").unwrap();
    let config = Config::new().flush_ms(5);
    let (runtime, guard) =
        Recorder::build_with_config(builder(2), Box::new(writer), &config).unwrap();
    let handle = guard.handle();
    runtime.block_on(workload(20, 200));
    drop(runtime);
    let err = guard.finish().unwrap_err();
    assert!(err.to_string().contains("/dev/full"), "{err}");
    assert!(handle.write_error().is_some());
    assert!(
        handle.dropped_events() > 0,
        "events that could not be written are counted"
    );
}
