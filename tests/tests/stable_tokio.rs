//! pulse with and without `--cfg tokio_unstable`. CI runs this file both
//! ways (`.ci/run`, "stable Tokio"): without the cfg the recorder still
//! records every worker's parks and unparks with CPU readings, the sampler's
//! per-worker readings and the global queue, and says in the trace's
//! metadata that task-level detail is missing; with it, polls too.

use pulse::trace::{EventType, TraceEvent, TraceReader};
use pulse::{Config, Recorder, WriterConfig};
use pulse_cli::analysis::{analyze_trace, render_text, AnalysisOptions, Finding, Verdict};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

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
        match event {
            TraceEvent::WorkerPark {
                worker, cpu_nanos, ..
            } => {
                parked_workers.insert(worker);
                cpu_readings += usize::from(cpu_nanos.is_some_and(|cpu| cpu > 0));
            }
            // A hook reads the thread's counters when its previous reading
            // is 1 ms old or more: after a sleep that is the unpark.
            TraceEvent::WorkerUnpark { cpu_nanos, .. } => {
                cpu_readings += usize::from(cpu_nanos.is_some_and(|cpu| cpu > 0));
            }
            _ => {}
        }
    }
    assert_eq!(
        parked_workers,
        BTreeSet::from([0, 1]),
        "both workers park, identified by index"
    );
    assert!(
        cpu_readings > 0,
        "parks and unparks carry the thread's CPU time"
    );
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

/// The calling thread's CPU time and run-queue wait (`/proc`'s schedstat):
/// the witness of what a task's thread did, read by the task itself.
fn schedstat() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some((fields.next()??, fields.next()??))
}

/// What a task's thread did while it ran `work`, by its own schedstat:
/// (wall, on a CPU, waiting for a CPU).
fn witness(work: impl FnOnce()) -> Option<(u64, u64, u64)> {
    let before = schedstat()?;
    let start = Instant::now();
    work();
    let wall = u64::try_from(start.elapsed().as_nanos()).ok()?;
    let after = schedstat()?;
    Some((wall, after.0 - before.0, after.1 - before.1))
}

fn spin(duration: Duration) {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < duration {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
}

/// The finding of `verdict` that covers a task's stretch of `wall` ns: at
/// least that long, at most 100 ms longer (the worker's unparked stretch
/// or poll holds the task's time and little else).
fn covering(findings: &[Finding], verdict: Verdict, wall: u64) -> Option<&Finding> {
    findings.iter().find(|f| {
        f.verdict == verdict
            && f.duration_ns + 2_000_000 >= wall
            && f.duration_ns <= wall + 100_000_000
    })
}

#[test]
fn verdicts_with_or_without_tokio_unstable() {
    if schedstat().is_none() {
        eprintln!("skipped: no /proc/thread-self/schedstat to witness the threads");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let config = Config::new().sample_ms(2).writer(WriterConfig::file(&path));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, &config).unwrap();
    let (blocked, busy) = runtime.block_on(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        // `std::thread::sleep` in a task blocks its worker without parking.
        let blocked =
            tokio::spawn(async { witness(|| std::thread::sleep(Duration::from_millis(150))) })
                .await
                .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let busy = tokio::spawn(async { witness(|| spin(Duration::from_millis(150))) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        (blocked.unwrap(), busy.unwrap())
    });
    drop(runtime);
    guard.finish().unwrap();

    let analysis = analyze_trace(&path, &AnalysisOptions::default()).unwrap();
    let text = render_text(&analysis, 20);
    let findings = &analysis.findings;
    assert_eq!(
        analysis.trace.tokio_unstable,
        Some(cfg!(tokio_unstable)),
        "the analysis reads the cfg from the metadata"
    );
    let (blocked_verdict, busy_verdict, absent) = if cfg!(tokio_unstable) {
        assert!(analysis.trace.task_detail.is_none(), "{text}");
        assert!(!text.contains("no poll events"), "{text}");
        (
            Verdict::BlockedInPoll,
            Verdict::CpuBoundPoll,
            [Verdict::UnparkedOffCpu, Verdict::BusyWithoutParking],
        )
    } else {
        let note = analysis.trace.task_detail.as_deref().unwrap_or_default();
        assert!(note.contains("--cfg tokio_unstable"), "JSON note: {note:?}");
        assert!(
            text.contains("need the traced program built with RUSTFLAGS=\"--cfg tokio_unstable\""),
            "{text}"
        );
        assert!(
            !text.contains("blocked in a poll") && !text.contains("CPU-bound poll"),
            "without polls the report never talks of polls' verdicts:\n{text}"
        );
        (
            Verdict::UnparkedOffCpu,
            Verdict::BusyWithoutParking,
            [Verdict::BlockedInPoll, Verdict::CpuBoundPoll],
        )
    };
    for verdict in absent {
        assert!(
            analysis.findings_with(verdict).next().is_none(),
            "no {verdict} finding here:\n{text}"
        );
    }
    // The witness: the sleeping task's thread was off a CPU (not waiting
    // for one) nearly all the time.
    let (wall, cpu, waited) = blocked;
    assert!(cpu + waited < wall / 5, "the witness: {blocked:?}");
    let finding = covering(findings, blocked_verdict, wall)
        .unwrap_or_else(|| panic!("no {blocked_verdict} finding of ~{wall} ns:\n{text}"));
    let figures = finding.cpu.expect("CPU evidence");
    assert!(figures.off_cpu_ns > figures.cpu_ns, "{figures:?}\n{text}");
    // The spinning task: on a CPU for most of its time unless the machine
    // took the CPU away (then it is the descheduled verdict's).
    let (wall, cpu, waited) = busy;
    if waited < wall / 4 && cpu > wall / 2 {
        let finding = covering(findings, busy_verdict, wall)
            .unwrap_or_else(|| panic!("no {busy_verdict} finding of ~{wall} ns:\n{text}"));
        let figures = finding.cpu.expect("CPU evidence");
        assert!(figures.cpu_ns > figures.off_cpu_ns, "{figures:?}\n{text}");
    } else if waited > wall * 3 / 5 {
        // The machine took the CPU away: the report must not call the
        // stretch mostly on a CPU. (Whether it is a descheduled finding
        // depends on the whole unparked stretch, which can be longer.)
        let wrong = findings.iter().find(|f| {
            f.verdict == busy_verdict
                && f.duration_ns + 2_000_000 >= wall
                && f.cpu.is_some_and(|c| c.cpu_ns > f.duration_ns * 4 / 5)
        });
        assert!(
            wrong.is_none(),
            "{wrong:?} while the witness waited:\n{text}"
        );
    } else {
        eprintln!("the spinning task was partly descheduled ({busy:?}): not checked");
    }
}
