//! Issue 18, item 5: the schedule latencies pulse records, against the
//! program's own measurement, and the cause each wait is attributed to.
//!
//! Each scenario wakes a task at a known instant (a channel send, from a
//! task or from a plain thread) and the task notes when its code runs
//! again. The program's measurement, send to first instruction after the
//! `.await`, contains Tokio's (the task's transition to "scheduled" inside
//! the send, to just before the poll hook), so the recorded latency must
//! lie in `[measured - TOLERANCE, measured + CLOCK_SLACK]`, where
//! `TOLERANCE` is 1 ms plus 3 % of the wait: the send's own work before
//! its wake-up and the poll's work between the hook and the task's first
//! instruction. Under OS descheduling the worker can be preempted between
//! the hook and that instruction, so there 90 % of the waits must be
//! within it (and every one within the upper bound).
//!
//! The causes: a task woken into the LIFO slot of a worker whose poll then
//! blocks is delayed by that *blocked in a poll* finding, on that worker;
//! tasks woken while every worker runs short CPU-bound polls are
//! *saturated* (or *descheduled*, when the witness shows the machine's
//! other load took the workers' CPUs); tasks of workers pinned to one CPU
//! beside spinning threads are delayed by *descheduled by the OS*
//! findings, and `/proc/<tid>/schedstat` (the kernel's run-queue wait of
//! the worker threads) witnesses that they really waited for a CPU.

#![cfg(all(tokio_unstable, target_os = "linux", target_pointer_width = "64"))]

use pulse::{Config, Recorder, WriterConfig};
use pulse_cli::analysis::{analyze_trace, render_text, Analysis, AnalysisOptions, Verdict};
use pulse_trace::{TraceEvent, TraceReader};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::{spin_for, task_id, unix_now_ns as unix_ns};

static SERIAL: Mutex<()> = Mutex::new(());
const MS: u64 = 1_000_000;
/// Recorded may exceed measured by this much (two clocks read µs apart).
const CLOCK_SLACK_NS: u64 = 100_000;
/// Slack between a measurement's wall-clock time and its poll's trace
/// time (the worker can be preempted between its clock reads).
const MATCH_SLACK_NS: u64 = 50 * MS;

fn tolerance(measured: u64) -> u64 {
    MS + measured * 3 / 100
}

/// One wake-up as the program saw it.
#[derive(Clone, Copy, Debug)]
struct Measured {
    task: u64,
    /// When its code ran again (Unix ns).
    resumed_unix: u64,
    /// Send to first instruction.
    wait_ns: u64,
}

impl Measured {
    /// Call right after the `.await` the wake-up ended.
    fn now(woken: Instant) -> Measured {
        let wait_ns = woken.elapsed().as_nanos() as u64;
        let resumed_unix = unix_ns();
        Measured {
            task: task_id(),
            resumed_unix,
            wait_ns,
        }
    }
}

/// One recorded latency: the PollStart it follows, in Unix time.
#[derive(Clone, Copy, Debug)]
struct Recorded {
    task: u64,
    poll_unix: u64,
    latency_ns: u64,
}

struct Traced {
    analysis: Analysis,
    recorded: Vec<Recorded>,
    /// Trace time 0 in Unix ns.
    origin: u64,
    _dir: tempfile::TempDir,
}

/// Runs `scenario` on a traced 2-worker runtime recording schedule
/// latencies; `on_start` runs on every runtime thread as it starts.
fn traced<T>(
    options: AnalysisOptions,
    on_start: impl Fn() + Send + Sync + 'static,
    scenario: impl FnOnce(&tokio::runtime::Runtime) -> T,
) -> (Traced, T) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    let config = Config::new()
        .schedule_latency(true)
        .writer(WriterConfig::file(&path));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(2)
        .enable_all()
        .on_thread_start(on_start);
    let (runtime, guard) = Recorder::from_config(builder, &config).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let result = scenario(&runtime);
    std::thread::sleep(Duration::from_millis(20));
    drop(runtime);
    guard.finish().unwrap();
    let analysis = analyze_trace(&path, &options).unwrap();
    let origin = analysis.trace.start_unix_ns.expect("v6 metadata");
    let mut last_start: HashMap<u32, (u64, u64)> = HashMap::new();
    let mut recorded = Vec::new();
    for event in TraceReader::open(&path).unwrap() {
        match event.unwrap() {
            TraceEvent::PollStart {
                timestamp_nanos,
                worker,
                task_id,
                ..
            } => {
                last_start.insert(worker, (task_id.unwrap_or(0), timestamp_nanos));
            }
            TraceEvent::ScheduleLatency {
                timestamp_nanos,
                worker,
                latency_nanos,
            } => {
                let (task, start) = last_start[&worker];
                assert_eq!(start, timestamp_nanos, "a latency has its PollStart's time");
                recorded.push(Recorded {
                    task,
                    poll_unix: origin + timestamp_nanos,
                    latency_ns: latency_nanos,
                });
            }
            _ => {}
        }
    }
    assert!(!recorded.is_empty(), "the trace carries schedule latencies");
    (
        Traced {
            analysis,
            recorded,
            origin,
            _dir: dir,
        },
        result,
    )
}

/// The recorded latency of the poll `m` ran in. Every measured task is
/// woken once, so that is the task's last poll; matching by time instead
/// would need the program's clock reads and the trace's wall-clock anchor
/// to agree within a few ms, which a preemption between two reads breaks.
fn recorded_for(t: &Traced, m: &Measured) -> Recorded {
    let r = *t
        .recorded
        .iter()
        .filter(|r| r.task == m.task)
        .max_by_key(|r| r.poll_unix)
        .unwrap_or_else(|| panic!("no recorded latency for {m:?}"));
    // A sanity check of the anchor only: the poll is the one that resumed.
    assert!(
        r.poll_unix.abs_diff(m.resumed_unix) <= MATCH_SLACK_NS,
        "the last poll of task {} is {} ns from {m:?}",
        m.task,
        r.poll_unix.abs_diff(m.resumed_unix)
    );
    r
}

/// Checks every measurement against its recorded latency; returns how
/// many were within the tolerance below (all are checked above).
fn compare(t: &Traced, measured: &[Measured]) -> usize {
    let mut within = 0;
    let mut gaps = Vec::new();
    for m in measured {
        let r = recorded_for(t, m);
        gaps.push(m.wait_ns as i64 - r.latency_ns as i64);
        assert!(
            r.latency_ns <= m.wait_ns + CLOCK_SLACK_NS,
            "recorded {} ns, more than the program measured ({} ns): {m:?}",
            r.latency_ns,
            m.wait_ns
        );
        if r.latency_ns + tolerance(m.wait_ns) >= m.wait_ns {
            within += 1;
        } else {
            eprintln!(
                "recorded {:.3} ms, measured {:.3} ms (beyond the tolerance)",
                r.latency_ns as f64 / 1e6,
                m.wait_ns as f64 / 1e6
            );
        }
    }
    gaps.sort_unstable();
    eprintln!(
        "compared {} waits (measured {:.3}..{:.3} ms): measured - recorded median {} µs, max {} µs",
        gaps.len(),
        measured.iter().map(|m| m.wait_ns).min().unwrap_or(0) as f64 / 1e6,
        measured.iter().map(|m| m.wait_ns).max().unwrap_or(0) as f64 / 1e6,
        gaps.get(gaps.len() / 2).copied().unwrap_or(0) / 1000,
        gaps.last().copied().unwrap_or(0) / 1000
    );
    within
}

/// Trace-time interval of a measured wait.
fn wait_window(t: &Traced, m: &Measured) -> (u64, u64) {
    let end = m.resumed_unix.saturating_sub(t.origin);
    (end.saturating_sub(m.wait_ns), end)
}

fn overlap(a: (u64, u64), b: (u64, u64)) -> u64 {
    a.1.min(b.1).saturating_sub(a.0.max(b.0))
}

/// The verdicts of the findings that delayed the task, by the analysis's
/// own rule: at least `delay_min` (1 ms) of its wait lies in the window.
fn causes(t: &Traced, m: &Measured) -> Vec<Verdict> {
    let wait = wait_window(t, m);
    let delay_min = t.analysis.options.delay_min.as_nanos() as u64;
    t.analysis
        .findings
        .iter()
        .filter(|f| overlap(wait, (f.start_ns, f.end_ns)) >= delay_min)
        .map(|f| f.verdict)
        .collect()
}

/// Every runtime thread's kernel thread id, collected by `on_thread_start`.
#[derive(Clone, Default)]
struct Tids(Arc<Mutex<Vec<i32>>>);

impl Tids {
    fn note(&self) {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        self.0.lock().unwrap().push(tid);
    }

    /// Their total run-queue wait so far (the kernel's schedstat).
    fn run_delay_ns(&self) -> u64 {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|tid| {
                let text =
                    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
                text.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .sum()
    }
}

fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes
    // within it; sched_setaffinity(0, ...) applies to the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Spawns `count` tasks that each wait for their own one-shot channel,
/// waits until every one of them is waiting, then, from this thread,
/// sends on one channel every `interval`: each task is woken exactly once,
/// by its send, so the send is its transition to "scheduled". Returns the
/// program's measurements and the phase's length.
fn wake_one_by_one(
    rt: &tokio::runtime::Runtime,
    count: usize,
    interval: Duration,
) -> (Vec<Measured>, Duration) {
    let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..count {
        let (tx, rx) = tokio::sync::oneshot::channel::<Instant>();
        let waiting = waiting.clone();
        senders.push(tx);
        tasks.push(rt.spawn(async move {
            let mut rx = rx;
            // The first poll registers for the send. If the value is
            // already there (the worker was preempted for longer than the
            // sender's head start), this task was never woken: nothing to
            // measure.
            let early = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(std::pin::Pin::new(&mut rx).poll(cx))
            })
            .await;
            waiting.fetch_add(1, Ordering::Relaxed);
            match early {
                std::task::Poll::Ready(_) => None,
                std::task::Poll::Pending => Some(Measured::now(rx.await.unwrap())),
            }
        }));
    }
    while waiting.load(Ordering::Relaxed) < count {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let each task's first poll return (it is past the counter).
    std::thread::sleep(Duration::from_millis(30));
    let start = Instant::now();
    for tx in senders {
        tx.send(Instant::now()).unwrap();
        std::thread::sleep(interval);
    }
    let phase = start.elapsed();
    let measured: Vec<Measured> = tasks
        .into_iter()
        .filter_map(|t| rt.block_on(t).unwrap())
        .collect();
    (measured, phase)
}

#[test]
fn a_task_behind_a_blocking_poll_waits_as_long_as_it_blocks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (t, (measured, blocked_worker)) = traced(
        AnalysisOptions::default(),
        || {},
        |rt| {
            rt.block_on(async {
                tokio::spawn(async {
                    let (tx, rx) = tokio::sync::oneshot::channel::<Instant>();
                    let woken = tokio::spawn(async move {
                        let sent = rx.await.unwrap();
                        Measured::now(sent)
                    });
                    tokio::task::yield_now().await;
                    // Wakes `woken` into this worker's LIFO slot (other
                    // workers cannot steal it), then blocks the worker.
                    let worker = tokio::runtime::worker_index().unwrap() as u32;
                    tx.send(Instant::now()).unwrap();
                    std::thread::sleep(Duration::from_millis(200));
                    (woken.await.unwrap(), worker)
                })
                .await
                .unwrap()
            })
        },
    );
    assert!(measured.wait_ns >= 190 * MS, "{measured:?}");
    assert_eq!(compare(&t, &[measured]), 1, "within the tolerance");
    let blocked = t
        .analysis
        .findings_with(Verdict::BlockedInPoll)
        .find(|f| f.worker == blocked_worker && f.duration_ns >= 150 * MS)
        .expect("the blocking poll is found");
    let impact = blocked.delayed.expect("the finding says whom it delayed");
    assert!(
        impact.tasks >= 1 && impact.on_this_worker >= 1,
        "{impact:?}"
    );
    // The woken task's wait lies inside the blocked poll: the finding's
    // worst delay is that wait, less what fell outside the poll.
    assert!(
        impact.worst_ns + tolerance(measured.wait_ns) >= measured.wait_ns
            && impact.worst_ns <= measured.wait_ns + CLOCK_SLACK_NS,
        "worst {} ns vs measured {} ns",
        impact.worst_ns,
        measured.wait_ns
    );
    assert!(causes(&t, &measured).contains(&Verdict::BlockedInPoll));
    let report = render_text(&t.analysis, 10);
    assert!(report.contains("Delays: blocked polls delayed"), "{report}");
}

/// Tasks woken from a plain thread, one every 25 ms, while both workers run
/// short (4 ms, below the 10 ms long-poll threshold) CPU-bound polls back
/// to back, twelve tasks of them.
#[test]
fn tasks_woken_into_a_saturated_runtime() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tids = Tids::default();
    let noted = tids.clone();
    // Waits of 5 ms or more need an explanation here (the default is
    // 10 ms): behind 4 ms polls they happen in every run.
    let options = AnalysisOptions {
        long_wait: Duration::from_millis(5),
        ..AnalysisOptions::default()
    };
    let long_wait = 5 * MS;
    let (t, (measured, phase, witnessed_wait)) = traced(
        options,
        move || noted.note(),
        |rt| {
            let stop = Arc::new(AtomicBool::new(false));
            let busy: Vec<_> = (0..12)
                .map(|_| {
                    let stop = stop.clone();
                    rt.spawn(async move {
                        while !stop.load(Ordering::Relaxed) {
                            spin_for(Duration::from_millis(4));
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(50));
            let before = tids.run_delay_ns();
            let (measured, phase) = wake_one_by_one(rt, 16, Duration::from_millis(25));
            let witnessed = tids.run_delay_ns() - before;
            stop.store(true, Ordering::Relaxed);
            for b in busy {
                rt.block_on(b).unwrap();
            }
            (measured, phase.as_nanos() as u64, witnessed)
        },
    );
    assert!(measured.len() >= 8, "{measured:?}");
    let within = compare(&t, &measured);
    assert_eq!(within, measured.len(), "every wait within the tolerance");
    let long: Vec<&Measured> = measured.iter().filter(|m| m.wait_ns >= long_wait).collect();
    assert!(
        !long.is_empty(),
        "behind 4 ms polls on both workers, some wake-up waits 5 ms or more: {measured:?}"
    );
    // The witness: how much of the phase the worker threads waited for a
    // CPU (the machine's other load).
    let starved = witnessed_wait as f64 / (2.0 * phase as f64);
    eprintln!(
        "saturated: {} wake-ups, {} waited 5 ms or more; workers waited for a CPU {:.0}% of the phase",
        measured.len(),
        long.len(),
        starved * 100.0
    );
    let verdicts: Vec<_> = t
        .analysis
        .verdicts
        .iter()
        .map(|v| (v.verdict, v.count))
        .collect();
    eprintln!("saturated: verdicts {verdicts:?}");
    for m in &long {
        let causes = causes(&t, m);
        // No blocking, no CPU-bound poll of 10 ms: the runtime was
        // saturated, or the OS took the workers' CPUs.
        assert!(
            causes.contains(&Verdict::Saturated)
                || (causes.contains(&Verdict::Descheduled) && starved >= 0.1),
            "a {} ms wait attributed to {causes:?}",
            m.wait_ns / MS
        );
        // On a quiet machine no poll is long (4 ms each); on a loaded one a
        // descheduled poll can stretch past 10 ms and hold part of a wait.
        assert!(
            starved >= 0.1 || !causes.iter().any(|v| v.is_poll()),
            "no poll finding can explain it: {causes:?}"
        );
    }
    if starved < 0.1 {
        let saturated: Vec<_> = t.analysis.findings_with(Verdict::Saturated).collect();
        assert!(!saturated.is_empty(), "a quiet machine: saturated");
        assert!(saturated
            .iter()
            .all(|f| f.delayed.is_some_and(|i| i.tasks >= 1)));
        let report = render_text(&t.analysis, 10);
        assert!(
            report.contains("saturation (every worker busy) delayed"),
            "{report}"
        );
    }
}

/// Both workers pinned to CPU 0 with two spinning threads, kept busy with
/// short polls; a plain thread on another CPU wakes a task, one every 20
/// ms.
#[test]
fn tasks_of_workers_descheduled_by_the_os() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("skipped: needs 2 CPUs (the waker must not share the workers' CPU)");
        return;
    }
    let tids = Tids::default();
    let noted = tids.clone();
    let (t, (measured, phase, witnessed_wait)) = traced(
        AnalysisOptions::default(),
        move || {
            pin_to_cpu(0);
            noted.note();
        },
        |rt| {
            let stop = Arc::new(AtomicBool::new(false));
            let busy: Vec<_> = (0..2)
                .map(|_| {
                    let stop = stop.clone();
                    rt.spawn(async move {
                        while !stop.load(Ordering::Relaxed) {
                            spin_for(Duration::from_micros(200));
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(50));
            let hogs: Vec<_> = (0..2)
                .map(|_| {
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        pin_to_cpu(0);
                        while !stop.load(Ordering::Relaxed) {
                            spin_for(Duration::from_millis(1));
                        }
                    })
                })
                .collect();
            let before = tids.run_delay_ns();
            // The waker runs on CPU 1, in a thread of its own (a pinned
            // test thread would pin the threads later tests create).
            let (measured, phase) = std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        pin_to_cpu(1);
                        wake_one_by_one(rt, 25, Duration::from_millis(20))
                    })
                    .join()
                    .unwrap()
            });
            let witnessed = tids.run_delay_ns() - before;
            stop.store(true, Ordering::Relaxed);
            for h in hogs {
                h.join().unwrap();
            }
            for b in busy {
                rt.block_on(b).unwrap();
            }
            (measured, phase.as_nanos() as u64, witnessed)
        },
    );
    // The witness: with four threads runnable on one CPU, the two worker
    // threads waited for it for most of the phase.
    let starved = witnessed_wait as f64 / (2.0 * phase as f64);
    eprintln!(
        "descheduled: {} wake-ups; workers waited for a CPU {:.0}% of the phase",
        measured.len(),
        starved * 100.0
    );
    assert!(starved >= 0.3, "the kernel saw the workers wait: {starved}");
    assert!(measured.len() >= 10, "{measured:?}");
    let within = compare(&t, &measured);
    assert!(
        within * 10 >= measured.len() * 9,
        "{within} of {} waits within the tolerance",
        measured.len()
    );
    let long: Vec<&Measured> = measured.iter().filter(|m| m.wait_ns >= 2 * MS).collect();
    assert!(!long.is_empty(), "{measured:?}");
    let attributed = long
        .iter()
        .filter(|m| {
            let causes = causes(&t, m);
            eprintln!("  waited {:.3} ms: {causes:?}", m.wait_ns as f64 / 1e6);
            causes.contains(&Verdict::Descheduled)
        })
        .count();
    assert!(
        attributed * 10 >= long.len() * 8,
        "{attributed} of {} waits of 2 ms or more attributed to descheduling",
        long.len()
    );
    let descheduled: Vec<_> = t.analysis.findings_with(Verdict::Descheduled).collect();
    assert!(descheduled
        .iter()
        .any(|f| f.delayed.is_some_and(|i| i.tasks >= 1)));
    let report = render_text(&t.analysis, 10);
    assert!(report.contains("OS descheduling delayed"), "{report}");
}
