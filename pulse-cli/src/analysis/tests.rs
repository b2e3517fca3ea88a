//! The analyzer on synthetic event streams: each verdict's rule, its
//! boundaries, and independence from how a file interleaves streams.

use super::*;
use pulse_trace::{TraceEvent, TraceMetadata};

const MS: u64 = 1_000_000;

fn poll_start(t: u64, worker: u32, task: u64) -> TraceEvent {
    TraceEvent::PollStart {
        timestamp_nanos: t,
        worker,
        local_queue: 0,
        task_id: Some(task),
        spawned_at: None,
    }
}

fn poll_start_q(t: u64, worker: u32, task: u64, local_queue: u32) -> TraceEvent {
    TraceEvent::PollStart {
        timestamp_nanos: t,
        worker,
        local_queue,
        task_id: Some(task),
        spawned_at: None,
    }
}

fn poll_end(t: u64, worker: u32) -> TraceEvent {
    poll_end_q(t, worker, 0)
}

fn poll_end_q(t: u64, worker: u32, local_queue: u32) -> TraceEvent {
    TraceEvent::PollEnd {
        timestamp_nanos: t,
        worker,
        local_queue,
    }
}

fn park(t: u64, worker: u32, cpu: u64, run_delay: u64) -> TraceEvent {
    TraceEvent::WorkerPark {
        timestamp_nanos: t,
        worker,
        local_queue: 0,
        cpu_nanos: Some(cpu),
        run_delay_nanos: Some(run_delay),
    }
}

fn unpark(t: u64, worker: u32, cpu: u64, run_delay: u64) -> TraceEvent {
    TraceEvent::WorkerUnpark {
        timestamp_nanos: t,
        worker,
        local_queue: 0,
        cpu_nanos: Some(cpu),
        run_delay_nanos: Some(run_delay),
    }
}

fn sample(t: u64, worker: u32, cpu: u64, run_delay: u64) -> TraceEvent {
    TraceEvent::WorkerSample {
        timestamp_nanos: t,
        worker,
        cpu_nanos: cpu,
        run_delay_nanos: Some(run_delay),
    }
}

fn queue(t: u64, depth: u64) -> TraceEvent {
    TraceEvent::QueueSample {
        timestamp_nanos: t,
        global_queue: depth,
    }
}

fn metadata() -> TraceMetadata {
    TraceMetadata {
        worker_count: 2,
        has_run_delay: true,
        config: vec![
            ("flush_ms".into(), "250".into()),
            ("sample_ms".into(), "10".into()),
        ],
        ..TraceMetadata::default()
    }
}

fn analyze_with(events: &[TraceEvent], options: AnalysisOptions) -> Analysis {
    let mut analyzer = Analyzer::new(options);
    analyzer.begin_file(6, Some(&metadata()));
    for event in events {
        analyzer.push(event);
    }
    analyzer.finish(|_| None)
}

fn analyze(events: &[TraceEvent]) -> Analysis {
    analyze_with(events, AnalysisOptions::default())
}

/// Samples of `worker` every 10 ms over `from..=to` ms, CPU and run-queue
/// wait given as functions of the time in ms.
fn samples(
    worker: u32,
    from: u64,
    to: u64,
    cpu: impl Fn(u64) -> u64,
    run_delay: impl Fn(u64) -> u64,
) -> Vec<TraceEvent> {
    (from..=to)
        .step_by(10)
        .map(|ms| sample(ms * MS, worker, cpu(ms), run_delay(ms)))
        .collect()
}

fn sorted(mut events: Vec<TraceEvent>) -> Vec<TraceEvent> {
    events.sort_by_key(TraceEvent::timestamp_nanos);
    events
}

fn verdicts(analysis: &Analysis) -> Vec<(Verdict, u32)> {
    analysis
        .findings
        .iter()
        .map(|f| (f.verdict, f.worker))
        .collect()
}

#[test]
fn a_poll_off_cpu_is_blocked() {
    let mut events = samples(0, 0, 200, |_| 5 * MS, |_| 0);
    events.extend([poll_start(50 * MS, 0, 7), poll_end(150 * MS, 0)]);
    let analysis = analyze(&sorted(events));
    assert_eq!(verdicts(&analysis), [(Verdict::BlockedInPoll, 0)]);
    let finding = &analysis.findings[0];
    assert_eq!((finding.start_ns, finding.end_ns), (50 * MS, 150 * MS));
    assert_eq!(finding.task_id, Some(7));
    let cpu = finding.cpu.unwrap();
    assert_eq!(
        (cpu.cpu_ns, cpu.run_delay_ns, cpu.off_cpu_ns),
        (0, Some(0), 100 * MS)
    );
    assert_eq!(cpu.samples, 9);
}

#[test]
fn a_poll_on_cpu_is_cpu_bound_even_when_it_waits_for_a_cpu() {
    // On a CPU half the time, waiting the other half: the poll's own time
    // is all CPU.
    let mut events = samples(0, 0, 200, |ms| ms * MS / 2, |ms| ms * MS / 2);
    events.extend([poll_start(50 * MS, 0, 1), poll_end(150 * MS, 0)]);
    let analysis = analyze(&sorted(events));
    let poll: Vec<_> = analysis.findings_with(Verdict::CpuBoundPoll).collect();
    assert_eq!(poll.len(), 1);
    let cpu = poll[0].cpu.unwrap();
    assert_eq!(cpu.cpu_ns, 50 * MS);
    assert!(cpu.off_cpu_ns < MS, "{cpu:?}");
    // Waiting half of every interval is descheduling, over the whole run.
    let descheduled: Vec<_> = analysis.findings_with(Verdict::Descheduled).collect();
    assert_eq!(descheduled.len(), 1);
    assert_eq!(
        (descheduled[0].start_ns, descheduled[0].end_ns),
        (0, 200 * MS)
    );
    assert_eq!(
        descheduled[0].task_id,
        Some(1),
        "names the poll it overlaps"
    );
}

#[test]
fn a_poll_long_only_because_it_waited_is_descheduled() {
    // 30 ms poll: 3 ms on a CPU, the rest waiting (credited at 40 ms).
    let rd = |ms: u64| if ms >= 40 { 27 * MS } else { 0 };
    let cpu = |ms: u64| if ms >= 40 { 3 * MS } else { 0 };
    let mut events = samples(0, 0, 100, cpu, rd);
    events.extend([poll_start(10 * MS, 0, 1), poll_end(40 * MS, 0)]);
    let analysis = analyze(&sorted(events));
    assert_eq!(verdicts(&analysis), [(Verdict::Descheduled, 0)]);
    let finding = &analysis.findings[0];
    // The wait was credited in one interval: it began 27 ms before.
    assert_eq!((finding.start_ns, finding.end_ns), (13 * MS, 40 * MS));
}

#[test]
fn a_wait_credited_after_the_readings_inside_it_is_not_sleep() {
    // A CPU-bound poll on a starved thread: every 40 ms it runs 2 ms and
    // waits 38 ms, and the kernel credits each wait when it ends, so the
    // readings during a wait show neither CPU nor waiting. The sampler's
    // first reading comes after the poll started and the last wait is
    // credited after the poll ended (seen on a machine at load 10: it was
    // called "blocked in a poll").
    let cycles = |ms: u64| ms.min(240) / 40;
    let mut events = samples(
        0,
        10,
        300,
        |ms| cycles(ms) * 2 * MS,
        |ms| cycles(ms) * 38 * MS,
    );
    events.extend([poll_start(5 * MS, 0, 1), poll_end(239 * MS, 0)]);
    let analysis = analyze(&sorted(events));
    assert!(
        analysis
            .findings_with(Verdict::BlockedInPoll)
            .next()
            .is_none(),
        "{:?}",
        analysis.findings
    );
    let poll = analysis
        .findings
        .iter()
        .find(|f| f.task_id == Some(1) && f.start_ns == 5 * MS)
        .unwrap();
    let cpu = poll.cpu.unwrap();
    assert!(
        cpu.run_delay_ns.unwrap() >= poll.duration_ns * 9 / 10,
        "the waits carried back: {cpu:?}"
    );
    assert!(
        matches!(poll.verdict, Verdict::CpuBoundPoll | Verdict::Descheduled),
        "{poll:?}"
    );
}

fn thread(t: u64, worker: u32, tid: u32, kind: pulse_trace::WorkerThreadKind) -> TraceEvent {
    TraceEvent::WorkerThread {
        timestamp_nanos: t,
        worker,
        tid,
        kind,
    }
}

#[test]
fn a_wait_the_workers_own_readings_place_before_a_window_is_not_the_windows() {
    use pulse_trace::WorkerThreadKind::{Runs, Sampled};
    // A starved sampler reads worker 0 first at 80.2 ms, just before the
    // worker, woken at 50 ms and runnable since, gets a CPU at 80.3 ms
    // (the unpark credits 30 ms of waiting) and parks again. The next
    // sample (112 ms) shows that wait: the sampler's readings alone put it
    // in 80.2..112 ms, where the worker was asleep. The worker's own
    // readings come later in the file, as the recorder writes them.
    let us = MS / 1000;
    let mut events = vec![thread(80 * MS, 0, 7, Sampled)];
    events.push(sample(80_200 * us, 0, 1_050 * us, 10 * MS));
    events.extend((0..10).map(|i| sample((112 + 30 * i) * MS, 0, 1_200 * us, 40 * MS)));
    events.extend([
        thread(20 * MS, 0, 7, Runs),
        park(40 * MS, 0, MS, 10 * MS),
        unpark(80_300 * us, 0, 1_100 * us, 40 * MS),
        park(80_400 * us, 0, 1_200 * us, 40 * MS),
    ]);
    for events in [events.clone(), sorted(events)] {
        let analysis = analyze(&events);
        assert!(
            analysis
                .findings_with(Verdict::Descheduled)
                .next()
                .is_none(),
            "{:?}",
            analysis.findings
        );
    }
}

#[test]
fn a_short_poll_on_a_starved_worker_is_not_made_cpu_bound_by_interpolation() {
    // The worker is on a CPU a quarter of the time and waits the rest; a
    // 20 ms poll between two samples gets 5 ms of CPU by interpolation,
    // but nothing proves it was the poll's own: it waited.
    let mut events = samples(0, 0, 300, |ms| ms * MS / 4, |ms| ms * MS * 3 / 4);
    events.extend([poll_start(101 * MS, 0, 1), poll_end(121 * MS, 0)]);
    let analysis = analyze(&sorted(events));
    assert_eq!(verdicts(&analysis), [(Verdict::Descheduled, 0)]);
    assert_eq!(
        analysis.findings[0].duration_ns,
        300 * MS,
        "the sampled window"
    );
}

#[test]
fn a_short_poll_on_a_busy_worker_is_cpu_bound_when_the_bounds_say_so() {
    // On a CPU all the time: 30 ms of CPU around a 20 ms poll can only
    // leave 10 ms outside it, so at least 20 ms were the poll's.
    let mut events = samples(0, 0, 300, |ms| ms * MS, |_| 0);
    events.extend([poll_start(101 * MS, 0, 1), poll_end(121 * MS, 0)]);
    let analysis = analyze(&sorted(events));
    assert_eq!(verdicts(&analysis), [(Verdict::CpuBoundPoll, 0)]);
}

#[test]
fn a_poll_the_readings_cannot_attribute_is_of_unknown_cause() {
    // Busy half the time around a 12 ms poll, no waiting: the poll may
    // have been on a CPU or blocked, and nothing proves 10 ms of either.
    let mut events = samples(0, 0, 300, |ms| ms * MS / 2, |_| 0);
    events.extend([poll_start(101 * MS, 0, 1), poll_end(113 * MS, 0)]);
    let analysis = analyze(&sorted(events));
    assert_eq!(verdicts(&analysis), [(Verdict::LongPoll, 0)]);
    assert!(analysis.findings[0].cpu.is_some(), "the estimate is kept");
}

#[test]
fn a_single_poll_without_samples_is_a_long_poll_of_unknown_cause() {
    let analysis = analyze(&[poll_start(0, 1, 3), poll_end(40 * MS, 1)]);
    assert_eq!(verdicts(&analysis), [(Verdict::LongPoll, 1)]);
    assert_eq!(analysis.findings[0].cpu, None);
}

#[test]
fn short_polls_and_light_waits_are_not_findings() {
    let mut events = samples(0, 0, 100, |ms| ms * MS / 4, |ms| ms * MS / 10);
    events.extend([poll_start(10 * MS, 0, 1), poll_end(19 * MS, 0)]);
    let analysis = analyze(&sorted(events));
    assert!(analysis.findings.is_empty(), "{:?}", analysis.findings);
    assert_eq!(analysis.workers[0].polls, 1);
    assert_eq!(analysis.workers[0].long_polls, 0);
}

#[test]
fn parked_while_the_global_queue_holds_work() {
    let mut events = vec![park(0, 1, 0, 0), unpark(100 * MS, 1, 0, 0)];
    events.extend((0..=100).step_by(10).map(|ms| {
        let depth = if (30..=80).contains(&ms) { 5 } else { 0 };
        queue(ms * MS, depth)
    }));
    let analysis = analyze(&sorted(events));
    assert_eq!(verdicts(&analysis), [(Verdict::ParkedWhileQueued, 1)]);
    let finding = &analysis.findings[0];
    assert_eq!((finding.start_ns, finding.end_ns), (30 * MS, 80 * MS));
    assert_eq!(finding.queued_on, Some(QueuedOn::Global));
    assert_eq!(finding.queue_depth_max, Some(5));
    assert_eq!(finding.parked_ns, Some(100 * MS));
}

#[test]
fn one_sample_of_queued_work_is_a_blip_not_a_finding() {
    let mut events = vec![park(0, 1, 0, 0), unpark(100 * MS, 1, 0, 0)];
    events.extend(
        (0..=100)
            .step_by(10)
            .map(|ms| queue(ms * MS, u64::from(ms == 50) * 9)),
    );
    assert!(analyze(&sorted(events)).findings.is_empty());
}

#[test]
fn parked_while_another_workers_local_queue_holds_work() {
    let events = sorted(vec![
        park(0, 1, 0, 0),
        poll_start_q(10 * MS, 0, 4, 3),
        poll_end_q(9 * MS + 10 * MS, 0, 2),
        poll_start_q(60 * MS, 0, 5, 2),
        poll_end_q(61 * MS, 0, 0),
        unpark(100 * MS, 1, 0, 0),
    ]);
    let analysis = analyze(&events);
    let parked: Vec<_> = analysis.findings_with(Verdict::ParkedWhileQueued).collect();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].worker, 1);
    assert_eq!(parked[0].queued_on, Some(QueuedOn::Worker(0)));
    assert_eq!((parked[0].start_ns, parked[0].end_ns), (10 * MS, 60 * MS));
    assert_eq!(parked[0].queue_depth_max, Some(3));
}

#[test]
fn waiting_for_a_cpu_after_a_wake_up_is_not_parked() {
    // Parked 0..100 ms, but runnable (woken, waiting for a CPU) from 20 ms.
    let mut events = vec![park(0, 1, 0, 0), unpark(100 * MS, 1, 0, 80 * MS)];
    events.extend(
        (0..=100)
            .step_by(10)
            .map(|ms| queue(ms * MS, u64::from((30..=80).contains(&ms)) * 4)),
    );
    let analysis = analyze(&sorted(events));
    // Without CPU samples for worker 1, its wake-up wait is the evidence.
    assert_eq!(verdicts(&analysis), [(Verdict::Descheduled, 1)]);
    let finding = &analysis.findings[0];
    assert_eq!((finding.start_ns, finding.end_ns), (20 * MS, 100 * MS));
    assert_eq!(finding.wake_wait_ns, Some(80 * MS));
}

#[test]
fn adjacent_windows_merge_and_distant_ones_do_not() {
    // Waiting at full share in 0..40, 70..110 (30 ms apart: merged) and
    // 300..340 (apart).
    let waiting = |ms: u64| {
        let ranges = [(0, 40), (70, 110), (300, 340)];
        ranges.iter().map(|&(a, b)| ms.clamp(a, b) - a).sum::<u64>() * MS
    };
    let analysis = analyze(&samples(0, 0, 400, |_| 0, waiting));
    let windows: Vec<(u64, u64)> = analysis
        .findings
        .iter()
        .map(|f| (f.start_ns / MS, f.end_ns / MS))
        .collect();
    assert_eq!(windows, [(0, 110), (300, 340)]);
    assert_eq!(
        analysis.findings[0].cpu.unwrap().run_delay_ns,
        Some(80 * MS)
    );
}

/// A worker that gets a 4 ms slice of CPU every 20 ms and waits the rest
/// (many threads per CPU): the kernel credits each 16 ms wait when the
/// next slice begins, so the sample intervals alternate between one
/// crediting a wait and one with a slice and nothing credited. That is one
/// stretch of waiting, not pieces of 16 ms (each under
/// `descheduled_min_wait`, which were all dropped).
#[test]
fn a_wait_cut_by_short_slices_is_one_window() {
    // Slices at 0..4, 20..24, …; the wait before each slice is credited
    // at its start (readings at 0, 10, 20, … see it at 20k ms).
    let cpu = |ms: u64| (ms / 20 * 4 + (ms % 20).min(4)) * MS;
    let waiting = |ms: u64| ms / 20 * 16 * MS;
    let analysis = analyze(&samples(0, 0, 200, cpu, waiting));
    let windows: Vec<(Verdict, u64, u64, Option<u64>)> = analysis
        .findings
        .iter()
        .map(|f| {
            let waited = f.cpu.and_then(|c| c.run_delay_ns).map(|w| w / MS);
            (f.verdict, f.start_ns / MS, f.end_ns / MS, waited)
        })
        .collect();
    assert_eq!(windows, [(Verdict::Descheduled, 10, 200, Some(160))]);
}

/// A window is not stretched over running: after 50 ms of waiting the
/// worker runs for 250 ms (nothing credited) and then waits 1 ms; the
/// window ends where the waiting did.
#[test]
fn a_window_ends_where_the_waiting_did() {
    let cpu = |ms: u64| ms.clamp(50, 300).saturating_sub(50) * MS;
    let waiting = |ms: u64| (ms.min(50) + u64::from(ms >= 310)) * MS;
    let analysis = analyze(&samples(0, 0, 400, cpu, waiting));
    let windows: Vec<(u64, u64)> = analysis
        .findings
        .iter()
        .map(|f| (f.start_ns / MS, f.end_ns / MS))
        .collect();
    assert_eq!(windows, [(0, 50)]);
}

/// How long the scenario of [`streams`] lasts: longer than the analyzer's
/// resolution lag, so joins are resolved both mid-stream and at the end.
const END_MS: u64 = 5_000;

/// A scenario with every verdict, as separate per-stream event lists.
fn streams() -> (Vec<Vec<TraceEvent>>, Vec<TraceEvent>) {
    let mut w0 = vec![unpark(0, 0, 0, 0)];
    let mut w1 = vec![unpark(0, 1, 0, 0)];
    // Worker 0: a blocked poll at 100..400, a CPU-bound poll at 600..900.
    w0.extend([poll_start(100 * MS, 0, 1), poll_end(400 * MS, 0)]);
    w0.extend([poll_start(600 * MS, 0, 2), poll_end(900 * MS, 0)]);
    w0.push(park(1000 * MS, 0, 300 * MS, 0));
    // Worker 1: parked 50..950 while the global queue holds work 200..300,
    // then starved 1200..1500.
    w1.extend([park(50 * MS, 1, 0, 0), unpark(950 * MS, 1, 0, 0)]);
    w1.extend([poll_start(1200 * MS, 1, 3), poll_end(1201 * MS, 1)]);
    let cpu0 = |ms: u64| (ms.clamp(600, 900) - 600) * MS;
    let rd1 = |ms: u64| (ms.clamp(1200, 1500) - 1200) * MS;
    let mut sampler = Vec::new();
    for ms in (0..=END_MS).step_by(10) {
        sampler.push(queue(ms * MS, u64::from((200..=300).contains(&ms)) * 7));
        sampler.push(sample(ms * MS, 0, cpu0(ms), 0));
        sampler.push(sample(ms * MS, 1, 0, rd1(ms)));
    }
    (vec![w0, w1], sampler)
}

/// Cuts streams into batches of `batch` ms and writes each round as the
/// flusher does: the sampler's batch, then the workers' (or the reverse).
fn file_order(batch: u64, sampler_first: bool, lag: u64) -> Vec<TraceEvent> {
    let (workers, sampler) = streams();
    let round = |e: &TraceEvent, lag: u64| (e.timestamp_nanos() / MS + lag) / batch;
    let rounds = END_MS / batch + 2 + lag / batch;
    let mut out = Vec::new();
    for r in 0..=rounds {
        let samples = sampler.iter().filter(|e| round(e, 0) == r).copied();
        let work: Vec<TraceEvent> = workers
            .iter()
            .flat_map(|w| w.iter().filter(|e| round(e, lag) == r).copied())
            .collect();
        if sampler_first {
            out.extend(samples);
            out.extend(work);
        } else {
            out.extend(work);
            out.extend(samples);
        }
    }
    out
}

#[test]
fn findings_do_not_depend_on_how_the_file_interleaves_streams() {
    let (workers, sampler) = streams();
    let all: Vec<TraceEvent> = workers.into_iter().flatten().chain(sampler).collect();
    let reference = analyze(&sorted(all));
    let mut expected = verdicts(&reference);
    expected.sort();
    assert_eq!(
        expected,
        [
            (Verdict::ParkedWhileQueued, 1),
            (Verdict::Descheduled, 1),
            (Verdict::BlockedInPoll, 0),
            (Verdict::CpuBoundPoll, 0),
        ]
    );
    for (batch, sampler_first, lag) in [
        (250, true, 0),
        (250, false, 0),
        (100, true, 300),
        (500, false, 0),
    ] {
        let analysis = analyze(&file_order(batch, sampler_first, lag));
        assert_eq!(
            analysis.findings, reference.findings,
            "batches of {batch} ms, sampler first: {sampler_first}, workers {lag} ms late"
        );
        assert_eq!(analysis.workers, reference.workers);
    }
}

#[test]
fn worker_statistics() {
    let events = vec![
        unpark(0, 0, 0, 0),
        poll_start_q(0, 0, 1, 2),
        poll_end_q(MS, 0, 0),
        poll_start(2 * MS, 0, 2),
        poll_end(5 * MS, 0),
        park(10 * MS, 0, 6 * MS, 2 * MS),
        unpark(30 * MS, 0, 6 * MS, 2 * MS),
        park(40 * MS, 0, 11 * MS, 2 * MS),
    ];
    let analysis = analyze(&events);
    let w = &analysis.workers[0];
    assert_eq!(w.polls, 2);
    assert_eq!(w.poll_max_ns, 3 * MS);
    assert_eq!(w.busy_ns, 4 * MS);
    assert_eq!(w.active_ns, 20 * MS);
    assert_eq!(w.parked_ns, 20 * MS);
    assert_eq!(w.parks, 2);
    assert_eq!(w.cpu_ns, 11 * MS);
    assert_eq!(w.run_delay_ns, Some(2 * MS));
    assert_eq!(w.scheduling_ratio, Some(0.55));
    assert_eq!(w.local_queue_max, 2);
    // Depth 2 for the first millisecond of 40.
    assert!((w.local_queue_mean - 2.0 / 40.0).abs() < 1e-9);
    // Worker 1 is in the metadata but did nothing.
    assert_eq!(analysis.workers[1].polls, 0);
    assert_eq!(analysis.trace.event_counts.poll_start, 2);
    assert_eq!(analysis.trace.duration_ns, 40 * MS);
}

#[test]
fn lost_and_unpaired_events_make_the_trace_incomplete() {
    let analysis = analyze(&[
        poll_start(0, 0, 1),
        poll_start(MS, 0, 2),
        poll_end(2 * MS, 0),
    ]);
    assert_eq!(analysis.completeness.unpaired_events, 1);
    assert!(!analysis.completeness.complete);

    let dropped = TraceEvent::EventsDropped {
        timestamp_nanos: 5 * MS,
        count: 40,
    };
    let analysis = analyze(&[dropped]);
    assert_eq!(analysis.completeness.dropped_events, 40);
    assert_eq!(
        analysis.completeness.gaps,
        [Gap {
            at_ns: 5 * MS,
            count: 40
        }]
    );
    assert!(!analysis.completeness.complete);

    let mut analyzer = Analyzer::new(AnalysisOptions::default());
    for index in [2, 3, 5] {
        let metadata = TraceMetadata {
            file_index: index,
            ..metadata()
        };
        analyzer.begin_file(6, Some(&metadata));
    }
    let analysis = analyzer.finish(|_| None);
    assert_eq!(analysis.completeness.missing_files, [0, 1, 4]);
    assert!(!analysis.completeness.complete);

    let mut paired = analyze(&[poll_start(0, 0, 1), poll_end(1, 0)]);
    assert!(
        !paired.completeness.complete,
        "without an end record the trace ended without shutdown"
    );
    paired.completeness.end = Some(pulse_trace::TraceEnd::new(
        1,
        pulse_trace::EndReason::Shutdown,
    ));
    paired.refresh_completeness();
    assert!(paired.completeness.complete);
    let mut early = pulse_trace::TraceEnd::new(1, pulse_trace::EndReason::Shutdown);
    early.threads_still_recording = 2;
    paired.completeness.end = Some(early);
    paired.refresh_completeness();
    assert!(
        !paired.completeness.complete,
        "threads outlived the recording"
    );
}

#[test]
fn a_poll_still_running_at_the_end_is_reported() {
    let mut events = samples(0, 0, 100, |_| 0, |_| 0);
    events.push(poll_start(20 * MS, 0, 9));
    let analysis = analyze(&sorted(events));
    assert_eq!(verdicts(&analysis), [(Verdict::BlockedInPoll, 0)]);
    assert!(analysis.findings[0].ongoing);
    assert_eq!(analysis.findings[0].end_ns, 100 * MS);
}

#[test]
fn findings_beyond_the_limit_are_counted() {
    let events: Vec<TraceEvent> = (0..5)
        .flat_map(|i| {
            [
                poll_start(i * 100 * MS, 0, i),
                poll_end((i * 100 + 50) * MS, 0),
            ]
        })
        .collect();
    let options = AnalysisOptions {
        max_findings: 2,
        ..AnalysisOptions::default()
    };
    let analysis = analyze_with(&events, options);
    assert_eq!(analysis.findings.len(), 2);
    assert_eq!(analysis.findings_omitted, 3);
    assert_eq!(analysis.verdicts[0].count, 5);
    assert_eq!(analysis.verdicts[0].total_ns, 250 * MS);
}

#[test]
fn thresholds_are_honoured() {
    let mut events = samples(0, 0, 200, |_| 0, |_| 0);
    events.extend([poll_start(50 * MS, 0, 7), poll_end(80 * MS, 0)]);
    let events = sorted(events);
    assert_eq!(analyze(&events).findings.len(), 1);
    let options = AnalysisOptions {
        long_poll: std::time::Duration::from_millis(31),
        ..AnalysisOptions::default()
    };
    assert!(analyze_with(&events, options).findings.is_empty());
}

#[test]
fn the_global_queue_timeline_stays_small() {
    let events: Vec<TraceEvent> = (0..10_000u64).map(|i| queue(i * 10 * MS, i % 7)).collect();
    let analysis = analyze(&events);
    let g = &analysis.global_queue;
    assert_eq!(g.samples, 10_000);
    assert_eq!(g.max, 6);
    assert!(g.timeline.len() <= 240, "{}", g.timeline.len());
    assert_eq!(
        g.timeline.iter().map(|b| b.samples).sum::<u64>(),
        10_000,
        "every sample is in a bucket"
    );
    assert!(g.timeline.iter().all(|b| b.max == 6));
}

#[test]
fn the_text_report_leads_with_the_answer() {
    let (workers, sampler) = streams();
    let all: Vec<TraceEvent> = workers.into_iter().flatten().chain(sampler).collect();
    let text = render_text(&analyze(&sorted(all)), 10);
    let answer = text
        .find("Answer: workers were unparked but descheduled by the OS (1 finding, 300.00 ms")
        .unwrap();
    // Ordered by total time: the 100 ms park comes last.
    assert!(
        text.contains(
            "; then parked while work was queued (1 finding, 100.00 ms in all, on worker 1)."
        ),
        "{text}"
    );
    let findings = text.find("Findings (4 of 4").unwrap();
    let table = text.find("Workers\n").unwrap();
    assert!(answer < findings && findings < table, "{text}");
    assert!(text.contains("BLOCKED IN A POLL  worker 0  100.00 ms .. 400.00 ms"));
    assert!(text.contains("parked while the global queue held up to 7 tasks"));

    let quiet = render_text(&analyze(&[poll_start(0, 0, 1), poll_end(MS, 0)]), 10);
    assert!(
        quiet.contains("Answer: no worker was parked while work was queued, descheduled, blocked in a poll or in a long CPU-bound poll"),
        "{quiet}"
    );
}

#[test]
fn without_polls_unparked_stretches_stand_in_for_them() {
    // Worker 0: unparked 100..300 ms, on a CPU 190 ms of it. Worker 1:
    // unparked 100..300 ms, on a CPU 5 ms. Worker 1 again 400..600 ms,
    // waiting for a CPU 150 ms: left to the descheduled verdict. Short
    // stretches are no findings.
    let analysis = analyze(&sorted(stretch_events()));
    let stretches: Vec<(Verdict, u32, u64)> = analysis
        .findings
        .iter()
        .filter(|f| {
            matches!(
                f.verdict,
                Verdict::BusyWithoutParking | Verdict::UnparkedOffCpu
            )
        })
        .map(|f| (f.verdict, f.worker, f.start_ns / MS))
        .collect();
    assert_eq!(
        stretches,
        [
            (Verdict::BusyWithoutParking, 0, 100),
            (Verdict::UnparkedOffCpu, 1, 100)
        ]
    );
    let busy = analysis
        .findings_with(Verdict::BusyWithoutParking)
        .next()
        .unwrap();
    let cpu = busy.cpu.unwrap();
    assert_eq!(
        (cpu.cpu_ns, cpu.run_delay_ns, cpu.off_cpu_ns),
        (190 * MS, Some(2 * MS), 8 * MS)
    );
    assert!(analysis.trace.task_detail.is_some());
    let text = render_text(&analysis, 10);
    assert!(!text.contains("blocked in a poll"), "{text}");
    assert!(text.contains("busy without parking"), "{text}");

    // The same with one short poll elsewhere: a trace with polls gets the
    // poll verdicts, never the stand-ins.
    let mut with_poll = stretch_events();
    with_poll.extend([
        unpark(750 * MS, 0, 191 * MS, 2 * MS),
        poll_start(751 * MS, 0, 1),
        poll_end(752 * MS, 0),
        park(753 * MS, 0, 192 * MS, 2 * MS),
    ]);
    let analysis = analyze(&sorted(with_poll));
    assert!(analysis.trace.task_detail.is_none());
    assert!(analysis.findings.iter().all(|f| !matches!(
        f.verdict,
        Verdict::BusyWithoutParking | Verdict::UnparkedOffCpu
    )));
}

fn stretch_events() -> Vec<TraceEvent> {
    let mut events = vec![
        unpark(100 * MS, 0, 0, 0),
        park(300 * MS, 0, 190 * MS, 2 * MS),
        unpark(100 * MS, 1, 0, 0),
        park(300 * MS, 1, 5 * MS, 0),
        unpark(400 * MS, 1, 5 * MS, 0),
        park(600 * MS, 1, 45 * MS, 150 * MS),
        unpark(700 * MS, 0, 190 * MS, 2 * MS),
        park(705 * MS, 0, 191 * MS, 2 * MS),
    ];
    events.extend((0..=800).step_by(10).map(|ms| queue(ms * MS, 0)));
    events
}

// ---- schedule latencies (issue 18) ----------------------------------------

fn latency(t: u64, worker: u32, latency_nanos: u64) -> TraceEvent {
    TraceEvent::ScheduleLatency {
        timestamp_nanos: t,
        worker,
        latency_nanos,
    }
}

/// A poll of `task` on `worker` from `start` to `end` whose task waited
/// `waited` before it.
fn waited_poll(worker: u32, task: u64, start: u64, end: u64, waited: u64) -> [TraceEvent; 3] {
    [
        poll_start(start, worker, task),
        latency(start, worker, waited),
        poll_end(end, worker),
    ]
}

#[test]
fn a_blocked_poll_states_the_tasks_it_delayed_and_where_they_waited() {
    let mut events = samples(0, 0, 300, |_| 5 * MS, |_| 0);
    events.extend(samples(1, 0, 300, |ms| ms * MS / 2, |_| 0));
    // Worker 0 blocks 50..150 ms; task 8, woken at 60 ms into its LIFO
    // slot, runs at 150 ms; task 9 waited 40 ms and was stolen by worker
    // 1; task 10 waited 0.5 ms (below `delay_min`), task 11 5 ms (below
    // `long_wait`) before it.
    events.extend([poll_start(50 * MS, 0, 7), poll_end(150 * MS, 0)]);
    events.extend(waited_poll(0, 8, 150 * MS, 151 * MS, 90 * MS));
    events.extend(waited_poll(1, 9, 100 * MS, 101 * MS, 40 * MS));
    events.extend(waited_poll(1, 10, 120 * MS, 121 * MS, MS / 2));
    events.extend(waited_poll(1, 11, 40 * MS, 41 * MS, 5 * MS));
    let analysis = analyze(&sorted(events));
    assert_eq!(verdicts(&analysis), [(Verdict::BlockedInPoll, 0)]);
    let impact = analysis.findings[0].delayed.expect("latencies recorded");
    assert_eq!(
        impact,
        latency::DelayImpact {
            tasks: 2,
            total_ns: 130 * MS,
            worst_ns: 90 * MS,
            on_this_worker: 1,
            on_other_workers: 1,
        }
    );
    let stats = analysis.schedule_latency.as_ref().unwrap();
    assert_eq!(stats.all.count, 4);
    assert_eq!(stats.all.max_ns, 90 * MS);
    assert_eq!(stats.all.total_ns, 90 * MS + 40 * MS + MS / 2 + 5 * MS);
    let workers: Vec<(Option<u32>, u64)> =
        stats.workers.iter().map(|w| (w.worker, w.count)).collect();
    assert_eq!(workers, [(Some(0), 1), (Some(1), 3)]);
    assert_eq!(stats.unexplained, 0, "task 11's 5 ms wait is short");
    let text = render_text(&analysis, 10);
    assert!(
        text.contains("Delays: blocked polls delayed 2 tasks by up to 90.00 ms, 130.00 ms in all"),
        "{text}"
    );
    assert!(
        text.contains("1 polled by this worker once free (its LIFO slot or local queue)"),
        "{text}"
    );
}

#[test]
fn waits_no_finding_explains_while_every_worker_is_busy_are_saturated() {
    // Both workers run 5 ms polls back to back (never parked); tasks wait
    // 20-30 ms between 100 and 200 ms.
    let mut events = Vec::new();
    for worker in 0..2 {
        events.extend(samples(worker, 0, 300, |ms| ms * MS, |_| 0));
        for i in 0..60u64 {
            let start = i * 5 * MS;
            let waited = if (20..40).contains(&i) {
                20 * MS + i * MS / 4
            } else {
                MS / 10
            };
            events.extend(waited_poll(worker, 100 + i, start, start + 5 * MS, waited));
        }
    }
    let analysis = analyze(&sorted(events));
    let saturated: Vec<&Finding> = analysis.findings_with(Verdict::Saturated).collect();
    assert_eq!(saturated.len(), 1, "{:?}", verdicts(&analysis));
    let f = saturated[0];
    assert!(f.start_ns >= 75 * MS && f.end_ns <= 200 * MS, "{f:?}");
    assert_eq!(f.delayed.unwrap().tasks, 40);
    let text = render_text(&analysis, 10);
    assert!(text.contains("SATURATED"), "{text}");
    assert!(
        text.contains("saturation (every worker busy) delayed 40 tasks"),
        "{text}"
    );
    // The same waits while worker 1 sleeps are not saturation.
    let mut events: Vec<TraceEvent> = sorted(events_without_worker_1_polls(&analysis));
    events.extend([park(60 * MS, 1, 0, 0), unpark(250 * MS, 1, 0, 0)]);
    let analysis = analyze(&sorted(events));
    assert_eq!(analysis.findings_with(Verdict::Saturated).count(), 0);
    let stats = analysis.schedule_latency.as_ref().unwrap();
    assert_eq!(stats.unexplained, 20);
    assert_eq!(stats.unexplained_with_a_parked_worker, 20);
    assert_eq!(stats.unexplained_with_a_parked_worker_max_ns, 20 * MS);
    let text = render_text(&analysis, 10);
    assert!(
        text.contains(
            "Delays: 20 waits of 10.00 ms or more (up to 20.00 ms) that no verdict explains, \
             while a worker was parked."
        ),
        "{text}"
    );
}

/// Worker 0's polls and waits of the test above, alone.
fn events_without_worker_1_polls(_: &Analysis) -> Vec<TraceEvent> {
    let mut events = samples(0, 0, 300, |ms| ms * MS, |_| 0);
    for i in 0..60u64 {
        let start = i * 5 * MS;
        let waited = if (20..40).contains(&i) {
            20 * MS
        } else {
            MS / 10
        };
        events.extend(waited_poll(0, 100 + i, start, start + 5 * MS, waited));
    }
    events
}

#[test]
fn a_park_while_work_queued_is_confirmed_by_tasks_that_waited() {
    let mut events = vec![park(0, 1, 0, 0), unpark(100 * MS, 1, 0, 0)];
    events.extend((0..=100).step_by(10).map(|ms| {
        let depth = if (30..=80).contains(&ms) { 5 } else { 0 };
        queue(ms * MS, depth)
    }));
    // Worker 0 polls a task that waited 45 ms, from 35 ms.
    events.extend(waited_poll(0, 5, 80 * MS, 81 * MS, 45 * MS));
    let analysis = analyze(&sorted(events.clone()));
    let f = analysis
        .findings_with(Verdict::ParkedWhileQueued)
        .next()
        .unwrap();
    let impact = f.delayed.unwrap();
    assert_eq!((impact.tasks, impact.on_other_workers), (1, 1));
    assert_eq!(impact.worst_ns, 45 * MS);
    assert_eq!(f.confirmed_by_delays, Some(true));
    assert!(render_text(&analysis, 10).contains("confirmed by delays: delayed 1 task"));
    // Without a real wait, the queue depths alone are not confirmed.
    let quick: Vec<TraceEvent> = events
        .into_iter()
        .map(|e| match e {
            TraceEvent::ScheduleLatency { .. } => latency(80 * MS, 0, MS / 10),
            e => e,
        })
        .collect();
    let analysis = analyze(&sorted(quick));
    let f = analysis
        .findings_with(Verdict::ParkedWhileQueued)
        .next()
        .unwrap();
    assert_eq!(f.delayed.unwrap().tasks, 0);
    assert_eq!(f.confirmed_by_delays, Some(false));
    assert!(render_text(&analysis, 10).contains("not confirmed by delays: no task waited"));
}

#[test]
fn traces_without_latencies_say_so() {
    let mut events = samples(0, 0, 200, |_| 5 * MS, |_| 0);
    events.extend([poll_start(50 * MS, 0, 7), poll_end(150 * MS, 0)]);
    let analysis = analyze(&sorted(events));
    assert!(analysis.schedule_latency.is_none());
    assert!(analysis.findings[0].delayed.is_none());
    let text = render_text(&analysis, 10);
    assert!(
        text.contains("note: schedule latencies not recorded"),
        "{text}"
    );
    assert!(!text.contains("Delays:"));
}
