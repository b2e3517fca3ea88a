//! The human-readable report `pulse analyze` prints: the answer and the
//! evidence first, then the per-worker table.

use super::findings::{Finding, Verdict};
use super::report::{Analysis, WorkerStats};
use std::fmt::{self, Write as _};

/// Findings listed per verdict by default; the rest are counted.
pub const DEFAULT_LISTED_PER_VERDICT: usize = 10;

/// A duration in the unit that reads best: `412 ns`, `12.3 µs`, `4.56 ms`,
/// `1.234 s`.
///
/// ```
/// use pulse_cli::analysis::format_duration;
///
/// assert_eq!(format_duration(412), "412 ns");
/// assert_eq!(format_duration(12_345), "12.3 µs");
/// assert_eq!(format_duration(4_560_000), "4.56 ms");
/// assert_eq!(format_duration(1_234_000_000), "1.234 s");
/// ```
pub fn format_duration(ns: u64) -> String {
    let ns_f = ns as f64;
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns_f / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} ms", ns_f / 1e6),
        _ => format!("{:.3} s", ns_f / 1e9),
    }
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// Renders an [`Analysis`] as the report `pulse analyze` prints.
///
/// At most `listed_per_verdict` findings of each verdict are listed in
/// full (the longest ones, shown in time order); the rest are counted.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("trace.bin");
/// # let (rt, guard) = pulse::Recorder::build(
/// #     tokio::runtime::Builder::new_multi_thread(),
/// #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
/// # )?;
/// # rt.block_on(async { tokio::spawn(async {}).await })?;
/// # drop(rt); drop(guard);
/// use pulse_cli::analysis::{analyze_trace, render_text, AnalysisOptions};
///
/// let analysis = analyze_trace(&path, &AnalysisOptions::default())?;
/// let report = render_text(&analysis, 10);
/// assert!(report.contains("Answer:"));
/// # Ok(())
/// # }
/// ```
pub fn render_text(analysis: &Analysis, listed_per_verdict: usize) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, analysis, listed_per_verdict);
    out
}

fn write_report(out: &mut String, a: &Analysis, listed: usize) -> fmt::Result {
    write_header(out, a)?;
    writeln!(out)?;
    writeln!(out, "Answer: {}", answer(a))?;
    if let Some(delays) = delay_ranking(a) {
        writeln!(out, "Delays: {delays}")?;
    }
    write_findings(out, a, listed)?;
    super::stacks::write_code_groups(out, a)?;
    super::spans::write_spans(out, a)?;
    writeln!(out)?;
    write_workers(out, &a.workers)?;
    writeln!(out)?;
    write_global_queue(out, a)?;
    write_schedule_latency(out, a)?;
    Ok(())
}

/// The causes ranked by the delay they caused (traces with schedule
/// latencies): "blocked polls delayed 31 tasks by up to 598 ms, 4.1 s in
/// all; ...".
fn delay_ranking(a: &Analysis) -> Option<String> {
    let stats = a.schedule_latency.as_ref()?;
    let cause = |verdict: Verdict| match verdict {
        Verdict::ParkedWhileQueued => "parked workers",
        Verdict::Descheduled => "OS descheduling",
        Verdict::BlockedInPoll => "blocked polls",
        Verdict::CpuBoundPoll => "long CPU-bound polls",
        Verdict::LongPoll => "long polls of unknown cause",
        Verdict::BlockInPlace => "block_in_place sections",
        Verdict::UnparkedOffCpu => "off-CPU workers",
        Verdict::BusyWithoutParking => "workers busy without parking",
        Verdict::Saturated => "saturation (every worker busy)",
    };
    let mut by_verdict: Vec<(Verdict, u64, u64, u64)> = Vec::new();
    for verdict in Verdict::ALL {
        let (mut tasks, mut worst, mut total) = (0u64, 0u64, 0u64);
        for impact in a.findings_with(verdict).filter_map(|f| f.delayed) {
            tasks += impact.tasks;
            worst = worst.max(impact.worst_ns);
            total = total.saturating_add(impact.total_ns);
        }
        if a.findings_with(verdict).next().is_some() {
            by_verdict.push((verdict, tasks, worst, total));
        }
    }
    by_verdict.sort_by_key(|&(verdict, tasks, _, total)| {
        (std::cmp::Reverse(total), std::cmp::Reverse(tasks), verdict)
    });
    let mut parts: Vec<String> = by_verdict
        .iter()
        .map(|&(verdict, tasks, worst, total)| {
            if tasks == 0 {
                format!(
                    "{} delayed no task by {} or more",
                    cause(verdict),
                    d(a.options.delay_min)
                )
            } else {
                format!(
                    "{} delayed {tasks} task{} by up to {}, {} in all",
                    cause(verdict),
                    if tasks == 1 { "" } else { "s" },
                    format_duration(worst),
                    format_duration(total)
                )
            }
        })
        .collect();
    let unexplained = stats.unexplained_with_a_parked_worker;
    if unexplained > 0 {
        parts.push(format!(
            "{unexplained} wait{} of {} or more (up to {}) that no verdict explains, while a \
             worker was parked",
            if unexplained == 1 { "" } else { "s" },
            d(a.options.long_wait),
            format_duration(stats.unexplained_with_a_parked_worker_max_ns)
        ));
    }
    if parts.is_empty() {
        parts.push(format!(
            "no finding; tasks waited up to {} to be polled (p99 {})",
            format_duration(stats.all.max_ns),
            format_duration(stats.all.p99_ns)
        ));
    }
    Some(format!("{}.", parts.join("; ")))
}

fn d(duration: std::time::Duration) -> String {
    format_duration(super::options::nanos(duration))
}

fn write_schedule_latency(out: &mut String, a: &Analysis) -> fmt::Result {
    let Some(stats) = &a.schedule_latency else {
        return Ok(());
    };
    writeln!(out)?;
    let all = &stats.all;
    writeln!(
        out,
        "Schedule latency (woken to polled): {} polls, p50 {}, p99 {}, max {}, {} in all",
        all.count,
        format_duration(all.p50_ns),
        format_duration(all.p99_ns),
        format_duration(all.max_ns),
        format_duration(all.total_ns)
    )?;
    let row = |out: &mut String, name: &str, l: &super::LatencyDistribution| {
        writeln!(
            out,
            "  {:>9} {:>9} {:>9} {:>9}  {name}",
            l.count,
            format_duration(l.p50_ns),
            format_duration(l.p99_ns),
            format_duration(l.max_ns),
        )
    };
    writeln!(
        out,
        "  {:>9} {:>9} {:>9} {:>9}  worker",
        "polls", "p50", "p99", "max"
    )?;
    for w in &stats.workers {
        row(out, &w.worker.map_or("?".to_owned(), |w| w.to_string()), w)?;
    }
    writeln!(
        out,
        "  {:>9} {:>9} {:>9} {:>9}  spawn site (longest tail first)",
        "polls", "p50", "p99", "max"
    )?;
    for site in stats.spawn_sites.iter().take(10) {
        row(out, site.spawned_at.as_deref().unwrap_or("(unknown)"), site)?;
    }
    if stats.spawn_sites.len() > 10 {
        writeln!(
            out,
            "  ... and {} more spawn sites (pulse analyze --json lists them)",
            stats.spawn_sites.len() - 10
        )?;
    }
    if stats.waits_not_kept > 0 {
        writeln!(
            out,
            "  note: {} waits beyond the first {} are in these figures but not in the findings'              delays",
            stats.waits_not_kept,
            super::latency::MAX_KEPT
        )?;
    }
    Ok(())
}

fn write_header(out: &mut String, a: &Analysis) -> fmt::Result {
    let t = &a.trace;
    writeln!(out, "trace {}", t.name)?;
    let total: u64 = t.files.iter().map(|f| f.bytes).sum();
    let mut facts = vec![format!(
        "{} file{}, {}",
        t.files.len(),
        if t.files.len() == 1 { "" } else { "s" },
        bytes(total)
    )];
    if let Some(version) = t.format_version {
        facts.push(format!("format v{version}"));
    }
    if let Some(version) = &t.pulse_version {
        facts.push(format!("pulse {version}"));
    }
    if let Some(workers) = t.worker_count {
        facts.push(format!("{workers} workers"));
    }
    facts.push(format!("{} of events", format_duration(t.duration_ns)));
    facts.push(format!("{} events", t.events));
    writeln!(out, "  {}", facts.join(", "))?;
    let c = &a.completeness;
    if c.complete {
        writeln!(
            out,
            "  complete: no events dropped, no file missing, every poll and park paired"
        )?;
    } else {
        writeln!(
            out,
            "  INCOMPLETE: verdicts near these gaps may be missing or cut short"
        )?;
        if c.dropped_events > 0 {
            let at: Vec<String> = c
                .gaps
                .iter()
                .take(5)
                .map(|g| format!("{} at {}", g.count, format_duration(g.at_ns)))
                .collect();
            writeln!(
                out,
                "    {} events dropped by the recorder ({}{})",
                c.dropped_events,
                at.join(", "),
                if c.gaps.len() > 5 { ", ..." } else { "" }
            )?;
        }
        if !c.missing_files.is_empty() {
            writeln!(
                out,
                "    {} file(s) of the rotated set are gone (indices {}): the trace misses what they held",
                c.missing_files.len(),
                list(&c.missing_files, 8)
            )?;
        }
        if let Some(error) = &c.truncated {
            writeln!(out, "    reading stopped early: {error}")?;
        }
        if c.unpaired_events > 0 {
            writeln!(
                out,
                "    {} poll/park events without their partner",
                c.unpaired_events
            )?;
        }
        if let Some(problem) = c.ending_problem(t.last_ns) {
            writeln!(out, "    {problem}")?;
        }
    }
    if !t.has_run_delay && t.format_version.is_some() {
        writeln!(
            out,
            "  note: run-queue wait was not recorded, so waiting for a CPU cannot be told from being blocked"
        )?;
    }
    if t.task_detail.is_some() {
        writeln!(
            out,
            "  note: no poll events ({}): polls, task ids, spawn sites and local queues need the \
             traced program built with RUSTFLAGS=\"--cfg tokio_unstable\"; unparked stretches stand \
             in for polls, and parks, CPU readings and the global queue are complete",
            match t.tokio_unstable {
                Some(false) => "recorded without --cfg tokio_unstable",
                _ => "the trace holds none",
            }
        )?;
    }
    if a.schedule_latency.is_none() && t.format_version.is_some() {
        let setting = t
            .config
            .iter()
            .find(|(k, _)| k == "schedule_latency")
            .map(|(_, v)| v.as_str());
        let why = match setting {
            Some("unavailable") => {
                "the recorder was built without --cfg tokio_unstable on a 64-bit target"
            }
            Some("true") => "on, but no poll carried one",
            _ => "schedule_latency = true or PULSE_SCHEDULE_LATENCY=on records them",
        };
        writeln!(
            out,
            "  note: schedule latencies not recorded ({why}): findings cannot say which tasks \
             they delayed"
        )?;
    }
    if t.event_counts.worker_sample == 0 && t.event_counts.poll_start > 0 {
        writeln!(
            out,
            "  note: no per-worker CPU samples (v5 trace?): long polls cannot be classified"
        )?;
    }
    Ok(())
}

fn list(values: &[u64], max: usize) -> String {
    let mut shown: Vec<String> = values.iter().take(max).map(u64::to_string).collect();
    if values.len() > max {
        shown.push("...".to_owned());
    }
    shown.join(", ")
}

/// One sentence answering the project's question.
fn answer(a: &Analysis) -> String {
    let phrase = |verdict: Verdict| match verdict {
        Verdict::ParkedWhileQueued => "parked while work was queued",
        Verdict::Descheduled => "unparked but descheduled by the OS",
        Verdict::BlockedInPoll => "blocked inside polls",
        Verdict::CpuBoundPoll => "busy in long CPU-bound polls",
        Verdict::LongPoll => "in long polls of unknown cause",
        Verdict::BlockInPlace => "in block_in_place sections",
        Verdict::UnparkedOffCpu => "unparked but off-CPU (blocked, task unknown)",
        Verdict::BusyWithoutParking => "busy without parking (task unknown)",
        Verdict::Saturated => "saturated (every worker busy while tasks waited)",
    };
    // The dominant cause first: by total time, then by count.
    let mut verdicts: Vec<&super::report::VerdictSummary> = a.verdicts.iter().collect();
    verdicts.sort_by_key(|v| (std::cmp::Reverse(v.total_ns), std::cmp::Reverse(v.count)));
    let dominant = match verdicts.as_slice() {
        [first, second, ..] => first.total_ns > second.total_ns,
        _ => false,
    };
    let found: Vec<String> = verdicts
        .iter()
        .map(|v| {
            format!(
                "{} ({} finding{}, {} in all, on worker{} {})",
                phrase(v.verdict),
                v.count,
                if v.count == 1 { "" } else { "s" },
                format_duration(v.total_ns),
                if v.workers.len() == 1 { "" } else { "s" },
                v.workers
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    // Without poll events, the poll verdicts cannot be reached: say what
    // was checked instead, never "no worker was blocked in a poll".
    let checked = if a.trace.task_detail.is_some() {
        [
            Verdict::ParkedWhileQueued,
            Verdict::Descheduled,
            Verdict::UnparkedOffCpu,
            Verdict::BusyWithoutParking,
        ]
    } else {
        [
            Verdict::ParkedWhileQueued,
            Verdict::Descheduled,
            Verdict::BlockedInPoll,
            Verdict::CpuBoundPoll,
        ]
    };
    let missing: Vec<&str> = checked
        .into_iter()
        .filter(|v| !a.verdicts.iter().any(|s| s.verdict == *v))
        .map(|v| match v {
            Verdict::ParkedWhileQueued => "parked while work was queued",
            Verdict::Descheduled => "descheduled",
            Verdict::BlockedInPoll => "blocked in a poll",
            Verdict::UnparkedOffCpu => "unparked but off-CPU",
            Verdict::BusyWithoutParking => "busy without parking",
            _ => "in a long CPU-bound poll",
        })
        .collect();
    let none = if missing.is_empty() {
        String::new()
    } else {
        format!("no worker was {}", join_or(&missing))
    };
    match (found.is_empty(), none.is_empty()) {
        (true, _) => format!(
            "{none} (polls of {} or more, waits of {} or more).",
            format_duration(super::options::nanos(a.options.long_poll)),
            format_duration(super::options::nanos(a.options.descheduled_min_wait))
        ),
        (false, true) => format!(
            "workers were {}{}.",
            if dominant { "mostly " } else { "" },
            found.join("; then ")
        ),
        (false, false) => format!(
            "workers were {}{}; {none}.",
            if dominant { "mostly " } else { "" },
            found.join("; then ")
        ),
    }
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn write_findings(out: &mut String, a: &Analysis, listed: usize) -> fmt::Result {
    if a.findings.is_empty() {
        return Ok(());
    }
    // The longest findings of each verdict, shown in time order.
    let mut shown: Vec<&Finding> = Vec::new();
    let mut hidden = 0u64;
    for verdict in Verdict::ALL {
        let mut of_kind: Vec<&Finding> = a.findings_with(verdict).collect();
        of_kind.sort_by_key(|f| std::cmp::Reverse(f.duration_ns));
        hidden += of_kind.len().saturating_sub(listed) as u64;
        shown.extend(of_kind.into_iter().take(listed));
    }
    shown.sort_by_key(|f| (f.start_ns, f.worker));
    writeln!(out)?;
    writeln!(
        out,
        "Findings ({} of {}, in time order; times since the trace started)",
        shown.len(),
        a.findings.len() as u64 + a.findings_omitted
    )?;
    let incidents = blocked_incidents(&shown);
    for finding in &shown {
        if let Some(incident) = incidents.iter().find(|i| i.first == finding.start_ns) {
            writeln!(out)?;
            writeln!(
                out,
                "  INCIDENT  {} workers blocked at once, {} .. {} ({}): likely a shared lock or \
                 resource; each poll is listed below",
                incident.workers,
                format_duration(incident.start),
                format_duration(incident.end),
                format_duration(incident.end - incident.start)
            )?;
        }
        write_finding(out, finding, super::options::nanos(a.options.delay_min))?;
    }
    let more = hidden + a.findings_omitted;
    if more > 0 {
        writeln!(
            out,
            "  ... and {more} shorter finding(s) not listed (pulse analyze --all or --json lists them)"
        )?;
    }
    write_next_steps(out, a)
}

/// What to do next about the longest poll finding: a spawn site often
/// serves many tasks (one per connection), so it does not say which
/// request it was; the time does, with the logs.
fn write_next_steps(out: &mut String, a: &Analysis) -> fmt::Result {
    let Some(f) = a
        .findings
        .iter()
        .filter(|f| f.verdict.is_poll() && f.spawned_at.is_some())
        .max_by_key(|f| f.duration_ns)
    else {
        return Ok(());
    };
    let since_first = |ns: u64| ns.saturating_sub(a.trace.first_ns) as f64 / 1e9;
    let margin = f.duration_ns / 2;
    let when = match a.trace.start_unix_ns.filter(|&t| t > 0) {
        Some(start) => format!(" ({} UTC)", utc(start.saturating_add(f.start_ns))),
        None => String::new(),
    };
    writeln!(out)?;
    writeln!(
        out,
        "Next: a spawn site often serves many tasks (one per connection or request), so \
         {} may be any of them. To find which one, match the time of the longest poll finding, \
         {}{when}, with your logs; look around it with `pulse html {} --from {:.3}s --to {:.3}s`; \
         or spawn each kind of work from its own call site (a helper per route or job) so \
         that findings name it.",
        f.spawned_at.as_deref().unwrap_or("its spawn site"),
        format_duration(f.start_ns),
        if a.trace.name.is_empty() {
            "TRACE"
        } else {
            &a.trace.name
        },
        since_first(f.start_ns.saturating_sub(margin)),
        since_first(f.end_ns.saturating_add(margin)),
    )
}

/// `2026-11-27 14:39:48.123456` for nanoseconds since the Unix epoch.
fn utc(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:06}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        unix_ns % 1_000_000_000 / 1000
    )
}

/// Blocked polls on several workers at the same time.
struct Incident {
    /// The start of the incident's first listed poll (where to print it).
    first: u64,
    start: u64,
    end: u64,
    workers: usize,
}

/// Groups blocked polls that overlap on two or more workers: polls blocked
/// at once usually wait for one thing (a lock, a file, a DNS server).
fn blocked_incidents(shown: &[&Finding]) -> Vec<Incident> {
    let mut blocked: Vec<&Finding> = shown
        .iter()
        .copied()
        .filter(|f| f.verdict == Verdict::BlockedInPoll)
        .collect();
    blocked.sort_by_key(|f| f.start_ns);
    let mut incidents = Vec::new();
    let mut i = 0;
    while i < blocked.len() {
        let (start, mut end) = (blocked[i].start_ns, blocked[i].end_ns);
        let mut workers = std::collections::BTreeSet::from([blocked[i].worker]);
        let mut j = i + 1;
        while j < blocked.len() && blocked[j].start_ns < end {
            end = end.max(blocked[j].end_ns);
            workers.insert(blocked[j].worker);
            j += 1;
        }
        if workers.len() >= 2 {
            incidents.push(Incident {
                first: start,
                start,
                end,
                workers: workers.len(),
            });
        }
        i = j;
    }
    incidents
}

fn task(id: Option<u64>, at: Option<&str>) -> String {
    match (id, at) {
        (Some(id), Some(at)) => format!("task {id} (spawned at {at})"),
        (Some(id), None) => format!("task {id}"),
        (None, Some(at)) => format!("a task spawned at {at}"),
        (None, None) => "a task".to_owned(),
    }
}

fn write_finding(out: &mut String, f: &Finding, delay_min: u64) -> fmt::Result {
    writeln!(out)?;
    writeln!(
        out,
        "  {}  worker {}  {} .. {} ({})",
        f.verdict.label().to_uppercase(),
        f.worker,
        format_duration(f.start_ns),
        format_duration(f.end_ns),
        format_duration(f.duration_ns)
    )?;
    super::spans::write_finding_spans(out, f)?;
    write_delayed(out, f, delay_min)?;
    let cpu_line = |out: &mut String| -> fmt::Result {
        if let Some(cpu) = &f.cpu {
            let waited = cpu
                .run_delay_ns
                .map_or("not recorded".to_owned(), format_duration);
            writeln!(
                out,
                "    on a CPU {}, waiting for a CPU {}, off-CPU {} ({} CPU sample{} inside)",
                format_duration(cpu.cpu_ns),
                waited,
                format_duration(cpu.off_cpu_ns),
                cpu.samples,
                if cpu.samples == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    };
    match f.verdict {
        Verdict::BlockedInPoll | Verdict::CpuBoundPoll | Verdict::LongPoll => {
            let what = match f.verdict {
                Verdict::BlockedInPoll => {
                    "blocked its worker (sleep, blocking I/O or a lock inside async code)"
                }
                Verdict::CpuBoundPoll => "computed without yielding",
                _ => "ran without yielding",
            };
            writeln!(
                out,
                "    {} {what} for {}{}",
                task(f.task_id, f.spawned_at.as_deref()),
                format_duration(f.duration_ns),
                if f.ongoing {
                    " (still running when the trace ended)"
                } else {
                    ""
                }
            )?;
            cpu_line(out)?;
            let mut context = Vec::new();
            if let (Some(a), Some(b)) = (f.local_queue_start, f.local_queue_end) {
                context.push(format!("its local queue went {a} -> {b}"));
            }
            if let Some(share) = f.other_workers_parked {
                context.push(format!("the other workers were parked {}", percent(share)));
            }
            if let Some(max) = f.global_queue_max {
                context.push(format!("global queue max {max}"));
            }
            if !context.is_empty() {
                writeln!(out, "    meanwhile {}", context.join("; "))?;
            }
            if f.next_task_id.is_some() || f.next_spawned_at.is_some() {
                let next = task(f.next_task_id, f.next_spawned_at.as_deref());
                // Only the queue depths are evidence that tasks waited
                // behind this poll; a task woken by its own timer, or one
                // other workers could have taken, did not.
                match f.local_queue_end.filter(|&n| n > 0) {
                    Some(queued) => writeln!(
                        out,
                        "    then the worker polled {next}; {queued} task{} waited behind this poll \
                         in its local queue (depth when the poll ended){}",
                        if queued == 1 { "" } else { "s" },
                        match f.other_workers_parked {
                            Some(share) if share >= 0.5 => format!(
                                " while the other workers were parked {}",
                                percent(share)
                            ),
                            _ => String::new(),
                        }
                    )?,
                    None => writeln!(out, "    next polled: {next}")?,
                }
            }
            super::stacks::write_finding_stack(out, f)?;
        }
        Verdict::UnparkedOffCpu | Verdict::BusyWithoutParking => {
            let what = if f.verdict == Verdict::UnparkedOffCpu {
                "unparked but mostly asleep (blocked somewhere: a blocking call, a lock, a sleep)"
            } else {
                "unparked and mostly on a CPU (one long poll or many in a row)"
            };
            writeln!(
                out,
                "    the worker was {what} for {}{}; the task is unknown without --cfg tokio_unstable",
                format_duration(f.duration_ns),
                if f.ongoing {
                    " (still unparked when the trace ended)"
                } else {
                    ""
                }
            )?;
            cpu_line(out)?;
            if let Some(max) = f.global_queue_max {
                writeln!(out, "    meanwhile global queue max {max}")?;
            }
        }
        Verdict::BlockInPlace => {
            writeln!(
                out,
                "    {} ran a blocking section in tokio::task::block_in_place for {}: Tokio moved \
                 the worker to another thread meanwhile (legitimate, but the task held a thread \
                 all that time)",
                task(f.task_id, f.spawned_at.as_deref()),
                format_duration(f.duration_ns)
            )?;
        }
        Verdict::Descheduled => {
            let waited = f.cpu.and_then(|c| c.run_delay_ns).unwrap_or(0);
            writeln!(
                out,
                "    runnable but waiting for a CPU {} of {} ({}){}",
                format_duration(waited),
                format_duration(f.duration_ns),
                percent(waited as f64 / f.duration_ns.max(1) as f64),
                if f.wake_wait_ns.is_some() {
                    ", after being woken"
                } else {
                    ""
                }
            )?;
            cpu_line(out)?;
            if f.task_id.is_some() || f.spawned_at.is_some() {
                writeln!(
                    out,
                    "    during the long poll of {}",
                    task(f.task_id, f.spawned_at.as_deref())
                )?;
            }
            if let Some(max) = f.global_queue_max {
                writeln!(out, "    global queue max {max}")?;
            }
        }
        Verdict::Saturated => {
            writeln!(
                out,
                "    tasks waited to be polled while every worker was busy: more work than the \
                 workers could run (no blocked, CPU-bound or descheduled worker explains it)"
            )?;
            if let Some(max) = f.global_queue_max {
                writeln!(out, "    global queue max {max}")?;
            }
        }
        Verdict::ParkedWhileQueued => {
            writeln!(
                out,
                "    parked while {} held up to {} task{}",
                f.queued_on.map_or("a queue".to_owned(), |q| q.to_string()),
                f.queue_depth_max.unwrap_or(0),
                if f.queue_depth_max == Some(1) {
                    ""
                } else {
                    "s"
                }
            )?;
            if let Some(parked) = f.parked_ns {
                let wake = f
                    .wake_wait_ns
                    .map(|w| {
                        format!(
                            "; after its wake-up it waited {} for a CPU",
                            format_duration(w)
                        )
                    })
                    .unwrap_or_default();
                writeln!(out, "    parked {} in all{wake}", format_duration(parked))?;
            }
        }
    }
    super::spans::write_finding_marks(out, f)?;
    Ok(())
}

/// The tasks a finding delayed, when the trace has schedule latencies.
fn write_delayed(out: &mut String, f: &Finding, delay_min: u64) -> fmt::Result {
    let Some(impact) = f.delayed else {
        return Ok(());
    };
    let verdict = match f.confirmed_by_delays {
        Some(true) => "confirmed by delays: ",
        Some(false) => "not confirmed by delays: ",
        None => "",
    };
    if impact.tasks == 0 {
        return writeln!(
            out,
            "    {verdict}no task waited {} or more to be polled in this window",
            format_duration(delay_min)
        );
    }
    let mut wher = Vec::new();
    if impact.on_this_worker > 0 {
        wher.push(format!(
            "{} polled by this worker once free (its LIFO slot or local queue)",
            impact.on_this_worker
        ));
    }
    if impact.on_other_workers > 0 {
        wher.push(format!(
            "{} by other workers (stolen or from the global queue)",
            impact.on_other_workers
        ));
    }
    writeln!(
        out,
        "    {verdict}delayed {} task{} by up to {}, {} in all: {}",
        impact.tasks,
        if impact.tasks == 1 { "" } else { "s" },
        format_duration(impact.worst_ns),
        format_duration(impact.total_ns),
        wher.join(", ")
    )
}

fn write_workers(out: &mut String, workers: &[WorkerStats]) -> fmt::Result {
    writeln!(out, "Workers")?;
    writeln!(
        out,
        "  {:>6} {:>9} {:>9} {:>9} {:>9} {:>5} {:>9} {:>9} {:>9} {:>7} {:>6} {:>7} {:>9}",
        "worker",
        "polls",
        "p50",
        "p99",
        "max",
        "long",
        "busy",
        "active",
        "parked",
        "parks",
        "cpu %",
        "waited",
        "local q"
    )?;
    for w in workers {
        writeln!(
            out,
            "  {:>6} {:>9} {:>9} {:>9} {:>9} {:>5} {:>9} {:>9} {:>9} {:>7} {:>6} {:>7} {:>9}",
            w.worker,
            w.polls,
            format_duration(w.poll_p50_ns),
            format_duration(w.poll_p99_ns),
            format_duration(w.poll_max_ns),
            w.long_polls,
            format_duration(w.busy_ns),
            format_duration(w.active_ns),
            format_duration(w.parked_ns),
            w.parks,
            w.scheduling_ratio.map_or("-".to_owned(), percent),
            match (w.run_delay_ns, w.active_ns) {
                (Some(waited), active) if active > 0 => percent(waited as f64 / active as f64),
                _ => "-".to_owned(),
            },
            format!("{}/{:.1}", w.local_queue_max, w.local_queue_mean),
        )?;
    }
    writeln!(
        out,
        "  (busy: inside polls; active: unparked; cpu % and waited: CPU time and run-queue wait \
         over active time; local q: max/mean depth)"
    )
}

fn write_global_queue(out: &mut String, a: &Analysis) -> fmt::Result {
    let g = &a.global_queue;
    if g.samples == 0 {
        return writeln!(out, "Global queue: not sampled");
    }
    writeln!(
        out,
        "Global queue: {} samples, max {}, mean {:.2}, non-empty in {}",
        g.samples,
        g.max,
        g.mean,
        percent(g.nonempty_share)
    )?;
    if g.max > 0 {
        const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
        let line: String = g
            .timeline
            .iter()
            .map(|b| {
                if b.samples == 0 {
                    ' '
                } else {
                    let level = (b.max as f64 / g.max as f64 * 7.0).round() as usize;
                    BARS.get(level.min(7)).copied().unwrap_or('█')
                }
            })
            .collect();
        writeln!(
            out,
            "  max depth per {}: {line}",
            format_duration(g.bucket_ns)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00.000000");
        // A leap day, and a time with microseconds.
        assert_eq!(
            super::utc(951_782_400_000_000_000),
            "2000-02-29 00:00:00.000000"
        );
        assert_eq!(
            super::utc(1_795_789_188_123_456_789),
            "2026-11-27 14:19:48.123456"
        );
    }
}
