//! Ground truth for the verdicts: real traced runtimes reproduce each fault
//! in a short phase, the test notes where it really happened (worker, task,
//! wall-clock window), and the analysis must name it — and must name
//! nothing on a clean phase.
//!
//! The machine these run on is small and shared: other processes can
//! starve the traced runtime at any time, and when they do, *descheduled*
//! is the truth. So every test runs a witness, independent of pulse, that
//! reads the kernel's CPU pressure (`/proc/pressure/cpu`, the time during
//! which some task waited for a CPU) every millisecond. A *descheduled*
//! (or *parked while work queued*) finding outside an injected fault must
//! be corroborated by that pressure having grown by at least half the
//! wait the finding claims; on a quiet machine that means there must be
//! none. (Without PSI the witness falls back on its own run-queue wait,
//! which is weaker: the scheduler favours a thread that mostly sleeps.)
//! The injected faults are large (hundreds of milliseconds against
//! 10–20 ms thresholds), and the tests take a lock so that one phase's
//! spinning threads never disturb another.

use pulse::analysis::{analyze_trace, Analysis, AnalysisOptions, Finding, Verdict};
use pulse::clock::SchedStatFile;
use pulse::{Config, TracedRuntime, WriterConfig};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

static SERIAL: Mutex<()> = Mutex::new(());

/// Slack for converting wall-clock times to trace times.
const CLOCK_SLACK_NS: u64 = 10_000_000;
/// Slack for ending a fault: the test's own code around it.
const SLACK_NS: u64 = 30_000_000;
/// Run-queue wait of the witness thread that corroborates contention when
/// the kernel has no PSI.
const CORROBORATING_WAIT_NS: u64 = 2_000_000;

const WORKERS: usize = 4;

fn spin_for(duration: Duration) {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < duration {
        for _ in 0..100 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    black_box(x);
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn current_task_id() -> u64 {
    tokio::task::id().to_string().parse().unwrap()
}

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

/// Measures the OS's contention independently of pulse: a thread that
/// wakes every millisecond and reads the kernel's CPU pressure stall time
/// (or, without PSI, its own run-queue wait).
struct Witness {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Contention>,
}

/// Cumulative CPU "some" stall time in ns, from `/proc/pressure/cpu`.
fn cpu_pressure_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    let some = text.lines().find(|l| l.starts_with("some"))?;
    let total = some
        .split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?;
    total.parse::<u64>().ok().map(|us| us * 1000)
}

impl Witness {
    fn start() -> Witness {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let psi = cpu_pressure_ns().is_some();
                let schedstat = SchedStatFile::open_current_thread().expect("Linux schedstat");
                let mut readings = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    let stalled = if psi {
                        cpu_pressure_ns().unwrap_or(0)
                    } else {
                        schedstat.read().unwrap().run_delay_nanos
                    };
                    readings.push((unix_ns(SystemTime::now()), stalled));
                }
                Contention { psi, readings }
            })
        };
        Witness { stop, thread }
    }

    fn finish(self) -> Contention {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The witness's readings: (unix ns, cumulative stall time).
struct Contention {
    psi: bool,
    readings: Vec<(u64, u64)>,
}

impl Contention {
    /// Stall time the witness saw around `start..end` (trace time), with
    /// 20 ms of margin each side.
    fn stalled(&self, analysis: &Analysis, start: u64, end: u64) -> u64 {
        let origin = analysis.trace.start_unix_ns.expect("v6 metadata");
        let (from, to) = (
            origin + start - start.min(20_000_000),
            origin + end + 20_000_000,
        );
        let readings = &self.readings;
        let first = readings
            .iter()
            .rev()
            .find(|(t, _)| *t <= from)
            .or(readings.first());
        let last = readings.iter().find(|(t, _)| *t >= to).or(readings.last());
        match (first, last) {
            (Some(&(_, a)), Some(&(_, b))) => b.saturating_sub(a),
            _ => 0,
        }
    }

    /// Whether the witness saw the contention a finding claims.
    fn corroborates(&self, analysis: &Analysis, finding: &Finding) -> bool {
        let stalled = self.stalled(analysis, finding.start_ns, finding.end_ns);
        if !self.psi {
            return stalled >= CORROBORATING_WAIT_NS;
        }
        // Some task must have waited for a CPU at least half as long as
        // the worker is said to have (at least 2 ms).
        let claimed = finding
            .cpu
            .and_then(|c| c.run_delay_ns)
            .or(finding.wake_wait_ns)
            .unwrap_or(finding.duration_ns);
        stalled >= (claimed / 2).max(CORROBORATING_WAIT_NS)
    }

    /// Findings of `verdict` that the witness does not corroborate.
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
    let witness = Witness::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let config = Config::new().writer(WriterConfig::file(&path));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(WORKERS).enable_all();
    let (runtime, guard) = TracedRuntime::from_config(builder, &config).unwrap();
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

/// Ambient contention may be reported, but only where the witness saw it.
fn assert_corroborated(analysis: &Analysis, contention: &Contention, exempt: Option<(u64, u64)>) {
    for verdict in [Verdict::Descheduled, Verdict::ParkedWhileQueued] {
        let false_findings = contention.uncorroborated(analysis, verdict, exempt);
        assert!(
            false_findings.is_empty(),
            "{verdict} while the witness saw no such contention (PSI: {}):{}",
            contention.psi,
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
                let id = current_task_id();
                while rx.recv().await.is_some() {}
                id
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            let blocker = tokio::spawn(async move {
                let worker = tokio::runtime::worker_index().unwrap() as u32;
                let task = current_task_id();
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
    let blocked = of(&analysis, Verdict::BlockedInPoll);
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
    assert_corroborated(&analysis, &contention, None);
}

#[test]
fn a_long_computation_is_a_long_cpu_bound_poll() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ((worker, task, window), analysis, contention) = record(|runtime| {
        runtime.block_on(async {
            tokio::spawn(async {
                let worker = tokio::runtime::worker_index().unwrap() as u32;
                let task = current_task_id();
                let window = Window::around(|| spin_for(Duration::from_millis(300)));
                (worker, task, window)
            })
            .await
            .unwrap()
        })
    });
    let polls = of(&analysis, Verdict::CpuBoundPoll);
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
    let blocked = of(&analysis, Verdict::BlockedInPoll);
    assert!(blocked.is_empty(), "{}", describe(&blocked));
    // A poll that waits for a CPU is descheduled meanwhile; the witness
    // must have seen that contention.
    assert_corroborated(&analysis, &contention, None);
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
    let polls: Vec<&Finding> = analysis
        .findings
        .iter()
        .filter(|f| matches!(f.verdict, Verdict::BlockedInPoll | Verdict::CpuBoundPoll))
        .collect();
    assert!(
        polls.is_empty(),
        "200 µs polls slowed by the OS are not long polls:{}",
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
    let polls: Vec<&Finding> = analysis
        .findings
        .iter()
        .filter(|f| f.verdict.is_poll())
        .collect();
    assert!(polls.is_empty(), "20 µs polls:{}", describe(&polls));
    assert_corroborated(&analysis, &contention, None);
    let polls: u64 = analysis.workers.iter().map(|w| w.polls).sum();
    assert!(polls > 1000, "the workload ran: {polls} polls");
}
