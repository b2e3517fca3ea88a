//! Ground truth for the verdicts: real traced runtimes reproduce each fault
//! in a short phase, the test notes where it really happened (worker, task,
//! wall-clock window), and the analysis must name it — and must name
//! nothing on a clean phase.
//!
//! The machine these run on is small and shared: other processes can
//! starve the traced runtime at any time, and when they do, *descheduled*
//! is the truth. So every test runs a witness, independent of pulse's
//! sampler: a thread that reads every Tokio worker thread's run-queue wait
//! (`/proc/self/task/<tid>/schedstat`, the kernel's own count) every
//! millisecond, ten times as often as pulse samples. A *descheduled*
//! finding outside an injected fault must be backed by a worker thread
//! having really waited for a CPU then, at least half as long as the
//! finding claims. Any other finding outside an injected fault needs some
//! real wait then too: a worker parked while another one, woken, waits for
//! a CPU, or a short poll blocked on a lock (Tokio's timer lock, say)
//! whose holder was descheduled, are real effects of contention. On a
//! quiet machine all of this means there must be no finding outside the
//! faults. The injected faults are large (hundreds of milliseconds
//! against 10–20 ms thresholds), and the tests take a lock so that one
//! phase's spinning threads never disturb another.

use pulse::{Config, Recorder, WriterConfig};
use pulse_cli::analysis::{analyze_trace, Analysis, AnalysisOptions, Finding, Verdict};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tests::{spin_for, task_id, unix_ns};

static SERIAL: Mutex<()> = Mutex::new(());

/// Slack for converting wall-clock times to trace times.
const CLOCK_SLACK_NS: u64 = 10_000_000;
/// Slack for ending a fault: the test's own code around it.
const SLACK_NS: u64 = 30_000_000;
/// Least real wait (on some worker thread) that backs a finding other
/// than *descheduled* outside an injected fault.
const CORROBORATING_WAIT_NS: u64 = 2_000_000;

const WORKERS: usize = 4;

/// A window of wall-clock time, converted to trace time once the trace's
/// start is known.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: SystemTime,
    end: SystemTime,
}

impl Window {
    fn around(f: impl FnOnce()) -> Window {
        let start = SystemTime::now();
        f();
        Window {
            start,
            end: SystemTime::now(),
        }
    }

    fn in_trace(&self, analysis: &Analysis) -> (u64, u64) {
        let origin = analysis.trace.start_unix_ns.expect("v6 metadata");
        (
            unix_ns(self.start).saturating_sub(origin),
            unix_ns(self.end).saturating_sub(origin),
        )
    }
}

/// Reads every Tokio worker thread's run-queue wait every millisecond,
/// independently of pulse.
struct Witness {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Contention>,
}

/// Tokio's worker threads, by their default name (`tokio-rt-worker` in
/// Tokio 1.54; `tokio-runtime-worker`, truncated by the kernel, before).
fn worker_threads() -> Vec<u64> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            let tid = task.file_name().to_str()?.parse().ok()?;
            let worker = comm.starts_with("tokio-rt-worker") || comm.starts_with("tokio-runtime-w");
            worker.then_some(tid)
        })
        .collect()
}

/// A thread's cumulative run-queue wait, from its schedstat.
fn run_delay_of(tid: u64) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// One reading of every worker thread, at the same instant.
fn read_all(tids: &[u64], readings: &mut HashMap<u64, Vec<(u64, u64)>>) {
    let now = unix_ns(SystemTime::now());
    for &tid in tids {
        if let Some(waited) = run_delay_of(tid) {
            readings.entry(tid).or_default().push((now, waited));
        }
    }
}

impl Witness {
    /// Starts reading; the first reading is taken now, on the calling
    /// thread, so that even a witness starved of CPU brackets every window.
    fn start() -> Witness {
        let stop = Arc::new(AtomicBool::new(false));
        // Worker threads name themselves as they start: wait for all.
        let mut tids = worker_threads();
        for _ in 0..1000 {
            if tids.len() >= WORKERS {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            tids = worker_threads();
        }
        assert_eq!(tids.len(), WORKERS, "the witness finds every worker thread");
        let mut first = HashMap::new();
        read_all(&tids, &mut first);
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut readings = first;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    read_all(&tids, &mut readings);
                }
                Contention { tids, readings }
            })
        };
        Witness { stop, thread }
    }

    /// Stops reading, after a last reading on the calling thread.
    fn finish(self) -> Contention {
        self.stop.store(true, Ordering::Relaxed);
        let mut contention = self.thread.join().unwrap();
        read_all(&contention.tids, &mut contention.readings);
        contention
    }
}

/// The witness's readings per worker thread: (unix ns, run-queue wait).
struct Contention {
    tids: Vec<u64>,
    readings: HashMap<u64, Vec<(u64, u64)>>,
}

impl Contention {
    /// The longest run-queue wait any worker thread accumulated around
    /// `start..end` (trace time), with 20 ms of margin each side.
    fn waited(&self, analysis: &Analysis, start: u64, end: u64) -> u64 {
        let origin = analysis.trace.start_unix_ns.expect("v6 metadata");
        let from = origin + start - start.min(20_000_000);
        let to = origin + end + 20_000_000;
        self.readings
            .values()
            .filter_map(|series| {
                let first = series
                    .iter()
                    .rev()
                    .find(|(t, _)| *t <= from)
                    .or(series.first())?;
                let last = series.iter().find(|(t, _)| *t >= to).or(series.last())?;
                Some(last.1.saturating_sub(first.1))
            })
            .max()
            .unwrap_or(0)
    }

    /// Whether a worker thread really waited as the finding says.
    fn corroborates(&self, analysis: &Analysis, finding: &Finding) -> bool {
        let waited = self.waited(analysis, finding.start_ns, finding.end_ns);
        let claimed = match finding.verdict {
            Verdict::Descheduled => finding.cpu.and_then(|c| c.run_delay_ns).unwrap_or(0),
            _ => 0,
        };
        waited >= (claimed / 2).max(CORROBORATING_WAIT_NS)
    }

    /// Findings of `verdict` that the witness does not back.
    fn uncorroborated<'a>(
        &self,
        analysis: &'a Analysis,
        verdict: Verdict,
        exempt: Option<(u64, u64)>,
    ) -> Vec<&'a Finding> {
        analysis
            .findings_with(verdict)
            .filter(|f| exempt.is_none_or(|(a, b)| !f.overlaps(a, b)))
            .filter(|f| !self.corroborates(analysis, f))
            .collect()
    }
}

/// Runs `workload` on a traced 4-worker runtime and analyzes the trace.
fn record<T>(workload: impl FnOnce(&tokio::runtime::Runtime) -> T) -> (T, Analysis, Contention) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let config = Config::new().writer(WriterConfig::file(&path));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(WORKERS).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, &config).unwrap();
    // The worker threads exist once the runtime is built.
    let witness = Witness::start();
    // Let every worker start and park before the phase.
    std::thread::sleep(Duration::from_millis(50));
    let truth = workload(&runtime);
    std::thread::sleep(Duration::from_millis(50));
    drop(runtime);
    let summary = guard.finish().unwrap();
    assert_eq!(summary.dropped_events, 0, "the trace must be complete");
    let contention = witness.finish();
    let analysis = analyze_trace(&path, &AnalysisOptions::default()).unwrap();
    assert!(
        analysis.completeness.complete,
        "{:?}",
        analysis.completeness
    );
    (truth, analysis, contention)
}

fn describe(findings: &[&Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "\n  {} worker {} {}..{} ms cpu {:?} task {:?}",
                f.verdict,
                f.worker,
                f.start_ns / 1_000_000,
                f.end_ns / 1_000_000,
                f.cpu,
                f.task_id
            )
        })
        .collect()
}

fn everything(analysis: &Analysis) -> String {
    describe(&analysis.findings.iter().collect::<Vec<_>>())
}

fn of(analysis: &Analysis, verdict: Verdict) -> Vec<&Finding> {
    analysis.findings_with(verdict).collect()
}

/// A poll finding's window must contain the fault, measured inside the
/// poll, and exceed it only by the test's own code around the fault plus
/// any time the poll spent waiting for a CPU.
fn assert_poll_window(finding: &Finding, (start, end): (u64, u64)) {
    let waited = finding.cpu.and_then(|c| c.run_delay_ns).unwrap_or(0);
    let excess = finding.duration_ns.saturating_sub(end - start);
    assert!(
        finding.start_ns <= start + CLOCK_SLACK_NS
            && finding.end_ns + CLOCK_SLACK_NS >= end
            && excess <= SLACK_NS + waited,
        "finding {}..{} ms (waited {} ms) vs fault {}..{} ms",
        finding.start_ns / 1_000_000,
        finding.end_ns / 1_000_000,
        waited / 1_000_000,
        start / 1_000_000,
        end / 1_000_000
    );
}

/// Findings outside the injected fault (`exempt`) are real effects of
/// contention, which the witness must have seen.
fn assert_corroborated(analysis: &Analysis, contention: &Contention, exempt: Option<(u64, u64)>) {
    for verdict in Verdict::ALL {
        let false_findings = contention.uncorroborated(analysis, verdict, exempt);
        assert!(
            false_findings.is_empty(),
            "{verdict} without such a run-queue wait on any worker thread:{}",
            describe(&false_findings)
        );
    }
}

#[test]
fn a_blocking_call_in_a_poll_is_blocked_in_a_poll() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ((worker, task, consumer, window), analysis, contention) = record(|runtime| {
        runtime.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
            let consumer = tokio::spawn(async move {
                let id = task_id();
                while rx.recv().await.is_some() {}
                id
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            let blocker = tokio::spawn(async move {
                let worker = tokio::runtime::worker_index().unwrap() as u32;
                let task = task_id();
                // Wake the consumer onto this worker, then block it.
                tx.send(1).unwrap();
                let window = Window::around(|| std::thread::sleep(Duration::from_millis(300)));
                drop(tx);
                (worker, task, window)
            });
            let (worker, task, window) = blocker.await.unwrap();
            (worker, task, consumer.await.unwrap(), window)
        })
    });
    let fault = window.in_trace(&analysis);
    let blocked: Vec<&Finding> = of(&analysis, Verdict::BlockedInPoll)
        .into_iter()
        .filter(|f| f.overlaps(fault.0, fault.1))
        .collect();
    assert_eq!(blocked.len(), 1, "{}", everything(&analysis));
    let finding = blocked[0];
    assert_eq!(finding.worker, worker);
    assert_eq!(finding.task_id, Some(task));
    assert_poll_window(finding, window.in_trace(&analysis));
    let cpu = finding
        .cpu
        .expect("the sampler read the worker's CPU inside");
    assert!(
        cpu.off_cpu_ns > 200_000_000 && cpu.cpu_ns < 50_000_000,
        "{cpu:?}"
    );
    assert!(cpu.samples >= 2, "{cpu:?}");
    assert!(
        finding
            .spawned_at
            .as_deref()
            .unwrap()
            .contains("analysis_ground_truth.rs"),
        "{:?}",
        finding.spawned_at
    );
    // The consumer was woken onto the blocked worker's LIFO slot: it ran
    // right after, on the same worker.
    assert_eq!(finding.next_task_id, Some(consumer));
    assert!(
        finding.other_workers_parked.unwrap() > 0.5,
        "the other workers had nothing to do: {:?}",
        finding.other_workers_parked
    );
    let (start, end) = window.in_trace(&analysis);
    let wrong: Vec<&Finding> = analysis
        .findings
        .iter()
        .filter(|f| f.verdict == Verdict::CpuBoundPoll && f.overlaps(start, end))
        .collect();
    assert!(wrong.is_empty(), "{}", describe(&wrong));
    assert_corroborated(&analysis, &contention, Some(fault));
}

#[test]
fn a_long_computation_is_a_long_cpu_bound_poll() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ((worker, task, window), analysis, contention) = record(|runtime| {
        runtime.block_on(async {
            tokio::spawn(async {
                let worker = tokio::runtime::worker_index().unwrap() as u32;
                let task = task_id();
                let window = Window::around(|| spin_for(Duration::from_millis(300)));
                (worker, task, window)
            })
            .await
            .unwrap()
        })
    });
    let fault = window.in_trace(&analysis);
    let polls: Vec<&Finding> = of(&analysis, Verdict::CpuBoundPoll)
        .into_iter()
        .filter(|f| f.overlaps(fault.0, fault.1))
        .collect();
    assert_eq!(polls.len(), 1, "{}", everything(&analysis));
    let finding = polls[0];
    assert_eq!((finding.worker, finding.task_id), (worker, Some(task)));
    assert_poll_window(finding, window.in_trace(&analysis));
    let cpu = finding.cpu.unwrap();
    // On a busy machine the poll may wait for a CPU, but it never sleeps.
    assert!(
        cpu.off_cpu_ns < cpu.cpu_ns / 2,
        "a spinning poll is on a CPU or waiting for one: {cpu:?}"
    );
    let blocked: Vec<&Finding> = of(&analysis, Verdict::BlockedInPoll)
        .into_iter()
        .filter(|f| f.overlaps(fault.0, fault.1))
        .collect();
    assert!(blocked.is_empty(), "{}", describe(&blocked));
    // Waiting for a CPU during the poll is descheduling; everything else
    // must be backed by the witness.
    let corroborate: Vec<&Finding> = analysis
        .findings
        .iter()
        .filter(|f| f.verdict != Verdict::CpuBoundPoll || !f.overlaps(fault.0, fault.1))
        .filter(|f| !contention.corroborates(&analysis, f))
        .collect();
    assert!(corroborate.is_empty(), "{}", describe(&corroborate));
}

#[test]
fn more_busy_threads_than_cores_is_descheduled_not_blocked() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (window, analysis, contention) = record(|runtime| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let stop = Arc::new(AtomicBool::new(false));
        let hogs: Vec<_> = (0..cores * 2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let window = Window::around(|| {
            runtime.block_on(async {
                let deadline = Instant::now() + Duration::from_millis(800);
                let busy: Vec<_> = (0..WORKERS * 2)
                    .map(|_| {
                        tokio::spawn(async move {
                            while Instant::now() < deadline {
                                spin_for(Duration::from_micros(200));
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for task in busy {
                    task.await.unwrap();
                }
            })
        });
        stop.store(true, Ordering::Relaxed);
        for hog in hogs {
            hog.join().unwrap();
        }
        window
    });
    let (start, end) = window.in_trace(&analysis);
    let descheduled = of(&analysis, Verdict::Descheduled);
    for worker in 0..WORKERS as u32 {
        let waited: u64 = descheduled
            .iter()
            .filter(|f| f.worker == worker && f.overlaps(start, end))
            .map(|f| f.cpu.and_then(|c| c.run_delay_ns).unwrap_or(0))
            .sum();
        // Eight runnable threads or more on two cores: each waits most of
        // the time. Require a quarter of the phase.
        assert!(
            waited > (end - start) / 4,
            "worker {worker} waited {} ms of {} ms:{}",
            waited / 1_000_000,
            (end - start) / 1_000_000,
            describe(&descheduled)
        );
    }
    assert_corroborated(&analysis, &contention, Some((start, end)));
    // Starved 200 µs polls are not long polls. A few may truly block for
    // a while (a lock whose holder, Tokio's or pulse's, was descheduled
    // while holding it), but the phase is explained as descheduling.
    let waited: u64 = descheduled
        .iter()
        .filter(|f| f.overlaps(start, end))
        .map(|f| f.cpu.and_then(|c| c.run_delay_ns).unwrap_or(0))
        .sum();
    let polls: Vec<&Finding> = analysis
        .findings
        .iter()
        .filter(|f| matches!(f.verdict, Verdict::BlockedInPoll | Verdict::CpuBoundPoll))
        .collect();
    let in_polls: u64 = polls.iter().map(|f| f.duration_ns).sum();
    assert!(
        in_polls < waited / 10,
        "{} ms in long polls against {} ms of waiting for a CPU:{}",
        in_polls / 1_000_000,
        waited / 1_000_000,
        describe(&polls)
    );
}

#[test]
fn a_clean_workload_has_no_findings() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ((), analysis, contention) = record(|runtime| {
        runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_millis(1000);
            let tasks: Vec<_> = (0..8u64)
                .map(|i| {
                    tokio::spawn(async move {
                        while Instant::now() < deadline {
                            spin_for(Duration::from_micros(20));
                            tokio::time::sleep(Duration::from_millis(1 + i % 4)).await;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        })
    });
    assert_corroborated(&analysis, &contention, None);
    let polls: u64 = analysis.workers.iter().map(|w| w.polls).sum();
    assert!(polls > 100, "the workload ran: {polls} polls");
}
