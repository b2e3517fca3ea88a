//! The application's own words in the analysis: `tracing` spans and
//! `pulse::mark!` marks (issue 19).
//!
//! While the trace is read, each worker keeps the stack of spans its
//! thread has entered and not exited. A poll's spans are the ones on that
//! stack when it started and those entered while it ran. Spans entered
//! inside a poll and still entered when it ends (a span guard held across
//! an `.await`) belong to the task: they leave the worker's stack and come
//! back when the task is polled again, on whichever worker, so a span that
//! moves between workers is attributed to the polls of its task, not to
//! whatever the first worker runs next. (Records are in time order per
//! worker, not across workers: a task's next poll read before the end of
//! its previous one on another worker misses its suspended spans.)
//!
//! From that:
//!
//! - every finding lists the spans active in its window on its worker,
//!   innermost first ([`Finding::spans`]), for poll findings those of the
//!   poll itself: at each nesting depth the span the poll spent longest
//!   in (a poll that served two requests one after the other names the
//!   one its time went to);
//! - findings are grouped by their innermost span's name
//!   ([`SpanGroup`], "200 findings, 10.0 s, all inside `cmd::get`");
//! - per-span poll statistics ([`SpanStats`]): how many polls ran inside
//!   each span name, their busy time and the longest;
//! - marks ([`FindingMark`]) in a finding's window, on any worker.

use super::{format_duration, Analysis, Finding};
use pulse_trace::{SpanId, TextId, TraceEvent, TraceScan};
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

/// At most this many marks are listed per finding.
pub const MAX_MARKS_PER_FINDING: usize = 20;
/// At most this many marks are kept while reading (the earliest).
const MAX_MARKS: usize = 1 << 20;

/// A span active during a finding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FindingSpan {
    /// The span's name (`cmd::get`).
    pub name: String,
    /// Its recorded fields, `key="user:42" size=3` (empty if none).
    pub fields: String,
}

impl fmt::Display for FindingSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fields.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}{{{}}}", self.name, self.fields)
        }
    }
}

/// A mark recorded in a finding's window.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FindingMark {
    /// When, in nanoseconds since the trace started.
    pub at_ns: u64,
    /// The worker whose thread recorded it.
    pub worker: u32,
    /// Its name.
    pub name: String,
    /// Its value, if it had one.
    pub value: Option<u64>,
}

/// Listed findings whose innermost span has the same name.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SpanGroup {
    /// The span name.
    pub name: String,
    /// Findings inside it.
    pub findings: u64,
    /// Their total duration.
    pub duration_ns: u64,
    /// Their verdicts' keys, each once.
    pub verdicts: Vec<String>,
}

/// Polls that ran inside spans of one name (a poll inside nested spans
/// counts for each name once).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SpanStats {
    /// The span name.
    pub name: String,
    /// Times a span of this name was entered.
    pub enters: u64,
    /// Polls that ran (at least partly) inside it.
    pub polls: u64,
    /// Their total duration.
    pub busy_ns: u64,
    /// The longest of them.
    pub longest_poll_ns: u64,
}

/// A span on a worker's stack.
#[derive(Clone, Debug)]
struct Active {
    span: SpanId,
    name: Arc<str>,
    fields: Arc<str>,
    /// The task whose poll entered it (`None`: entered outside a poll).
    task: Option<u64>,
}

/// A poll in progress on a worker.
#[derive(Debug)]
struct Poll {
    start: u64,
    task: Option<u64>,
    /// Spans active in it: on the stack at its start or entered in it.
    spans: Vec<PollSpan>,
}

/// A span active in a poll.
#[derive(Debug)]
struct PollSpan {
    /// 0: outermost.
    depth: usize,
    active: Active,
    /// Time inside the poll spent in it so far.
    inside_ns: u64,
    /// Entered (again) at this time and not exited since.
    since: Option<u64>,
}

#[derive(Debug, Default)]
struct WorkerState {
    stack: Vec<Active>,
    poll: Option<Poll>,
}

/// A poll long enough to be a finding's, with its spans innermost first.
#[derive(Debug)]
struct KeptPoll {
    worker: u32,
    start: u64,
    end: u64,
    spans: Vec<FindingSpan>,
}

/// Collects spans and marks while a trace is read.
#[derive(Debug)]
pub(crate) struct Spans {
    /// Polls at least this long keep their spans for findings.
    keep_polls_from: u64,
    texts: HashMap<TextId, Arc<str>>,
    workers: HashMap<u32, WorkerState>,
    /// Spans suspended with their task between its polls.
    suspended: HashMap<u64, Vec<Active>>,
    kept: Vec<KeptPoll>,
    marks: Vec<FindingMark>,
    stats: HashMap<Arc<str>, SpanStats>,
    /// Whether the trace had any span or mark record.
    any: bool,
}

impl Spans {
    /// `keep_polls_from`: the shortest poll a finding can be about.
    pub(crate) fn new(keep_polls_from: u64) -> Spans {
        Spans {
            keep_polls_from,
            texts: HashMap::new(),
            workers: HashMap::new(),
            suspended: HashMap::new(),
            kept: Vec::new(),
            marks: Vec::new(),
            stats: HashMap::new(),
            any: false,
        }
    }

    fn text(&mut self, id: TextId, scan: &TraceScan) -> Arc<str> {
        self.texts
            .entry(id)
            .or_insert_with(|| Arc::from(scan.text(id).unwrap_or("(undefined text)")))
            .clone()
    }

    pub(crate) fn push(&mut self, event: &TraceEvent, scan: &TraceScan) {
        match *event {
            TraceEvent::PollStart {
                timestamp_nanos,
                worker,
                task_id,
                ..
            } => {
                let resumed = task_id.and_then(|task| self.suspended.remove(&task));
                let state = self.workers.entry(worker).or_default();
                if let Some(resumed) = resumed {
                    state.stack.extend(resumed);
                }
                let spans = state
                    .stack
                    .iter()
                    .enumerate()
                    .map(|(depth, active)| PollSpan {
                        depth,
                        active: active.clone(),
                        inside_ns: 0,
                        since: Some(timestamp_nanos),
                    })
                    .collect();
                state.poll = Some(Poll {
                    start: timestamp_nanos,
                    task: task_id,
                    spans,
                });
            }
            TraceEvent::PollEnd {
                timestamp_nanos,
                worker,
                ..
            } => self.end_poll(worker, timestamp_nanos),
            TraceEvent::SpanEnter {
                timestamp_nanos,
                worker,
                span,
                name,
                fields,
            } => {
                self.any = true;
                let name = self.text(name, scan);
                let fields = self.text(fields, scan);
                self.stats.entry(name.clone()).or_default().enters += 1;
                let state = self.workers.entry(worker).or_default();
                let active = Active {
                    span,
                    name,
                    fields,
                    task: state.poll.as_ref().and_then(|p| p.task),
                };
                if let Some(poll) = &mut state.poll {
                    poll.spans.push(PollSpan {
                        depth: state.stack.len(),
                        active: active.clone(),
                        inside_ns: 0,
                        since: Some(timestamp_nanos),
                    });
                }
                state.stack.push(active);
            }
            TraceEvent::SpanExit {
                timestamp_nanos,
                worker,
                span,
            } => {
                self.any = true;
                let state = self.workers.entry(worker).or_default();
                if let Some(poll) = &mut state.poll {
                    for entry in poll.spans.iter_mut().filter(|e| e.active.span == span) {
                        if let Some(since) = entry.since.take() {
                            entry.inside_ns += timestamp_nanos.saturating_sub(since);
                        }
                    }
                }
                if let Some(at) = state.stack.iter().rposition(|a| a.span == span) {
                    state.stack.remove(at);
                } else {
                    self.forget(span);
                }
            }
            TraceEvent::SpanClose { span, .. } => {
                self.any = true;
                self.forget(span);
            }
            TraceEvent::Mark {
                timestamp_nanos,
                worker,
                name,
                value,
            } => {
                self.any = true;
                if self.marks.len() < MAX_MARKS {
                    let name = self.text(name, scan).to_string();
                    self.marks.push(FindingMark {
                        at_ns: timestamp_nanos,
                        worker,
                        name,
                        value,
                    });
                }
            }
            _ => {}
        }
    }

    /// Removes `span` wherever it is still entered (its exit came on
    /// another worker, or it closed).
    fn forget(&mut self, span: SpanId) {
        for state in self.workers.values_mut() {
            state.stack.retain(|a| a.span != span);
        }
        self.suspended.retain(|_, spans| {
            spans.retain(|a| a.span != span);
            !spans.is_empty()
        });
    }

    fn end_poll(&mut self, worker: u32, end: u64) {
        let Some(state) = self.workers.get_mut(&worker) else {
            return;
        };
        let Some(mut poll) = state.poll.take() else {
            return;
        };
        for entry in &mut poll.spans {
            if let Some(since) = entry.since.take() {
                entry.inside_ns += end.saturating_sub(since);
            }
        }
        // Spans the task entered and still holds go with it.
        if let Some(task) = poll.task {
            let (held, kept): (Vec<Active>, Vec<Active>) = std::mem::take(&mut state.stack)
                .into_iter()
                .partition(|a| a.task == Some(task));
            state.stack = kept;
            if !held.is_empty() {
                self.suspended.entry(task).or_default().extend(held);
            }
        }
        if poll.spans.is_empty() {
            return;
        }
        let duration = end.saturating_sub(poll.start);
        let mut names: Vec<&Arc<str>> = poll.spans.iter().map(|e| &e.active.name).collect();
        names.sort();
        names.dedup();
        for name in names {
            let stats = self.stats.entry(name.clone()).or_default();
            stats.polls += 1;
            stats.busy_ns += duration;
            stats.longest_poll_ns = stats.longest_poll_ns.max(duration);
        }
        if duration >= self.keep_polls_from {
            self.kept.push(KeptPoll {
                worker,
                start: poll.start,
                end,
                spans: innermost_first(poll.spans),
            });
        }
    }

    /// Sets each finding's spans and marks, and the analysis's span groups
    /// and statistics.
    pub(crate) fn attach(mut self, analysis: &mut Analysis) {
        if !self.any {
            return;
        }
        // Polls still running at the end of the trace.
        let open: Vec<(u32, u64)> = self
            .workers
            .iter()
            .filter_map(|(&w, s)| Some((w, s.poll.as_ref()?.start)))
            .collect();
        let last = analysis.trace.last_ns;
        for (worker, _) in open {
            self.end_poll(worker, last);
        }
        self.kept.sort_by_key(|p| (p.worker, p.start));
        self.marks.sort_by_key(|m| (m.at_ns, m.worker));
        for finding in &mut analysis.findings {
            finding.spans = self.spans_in(finding);
            let from = self.marks.partition_point(|m| m.at_ns < finding.start_ns);
            finding.marks = self.marks[from..]
                .iter()
                .take_while(|m| m.at_ns <= finding.end_ns)
                .take(MAX_MARKS_PER_FINDING)
                .cloned()
                .collect();
        }
        analysis.span_groups = group(&analysis.findings);
        let mut stats: Vec<SpanStats> = self
            .stats
            .into_iter()
            .map(|(name, mut stats)| {
                stats.name = name.to_string();
                stats
            })
            .collect();
        stats.sort_by(|a, b| b.busy_ns.cmp(&a.busy_ns).then_with(|| a.name.cmp(&b.name)));
        analysis.spans = stats;
    }

    /// The spans of the kept polls on the finding's worker that overlap its
    /// window, innermost first, each once.
    fn spans_in(&self, f: &Finding) -> Vec<FindingSpan> {
        let from = self
            .kept
            .partition_point(|p| (p.worker, p.end) < (f.worker, f.start_ns));
        let mut spans: Vec<FindingSpan> = Vec::new();
        for poll in &self.kept[from..] {
            if poll.worker != f.worker || poll.start > f.end_ns {
                break;
            }
            if poll.end < f.start_ns {
                continue;
            }
            for span in &poll.spans {
                if !spans.contains(span) {
                    spans.push(span.clone());
                }
            }
        }
        spans
    }
}

/// A poll's spans as a chain, innermost first: at each depth the span the
/// poll spent longest in (spans entered one after the other at one depth,
/// say two requests served in one poll, are siblings: the one the poll's
/// time went to is the one that explains it); each name-and-fields once.
fn innermost_first(mut spans: Vec<PollSpan>) -> Vec<FindingSpan> {
    spans.sort_by_key(|e| (std::cmp::Reverse(e.depth), std::cmp::Reverse(e.inside_ns)));
    spans.dedup_by_key(|e| e.depth);
    let mut out: Vec<FindingSpan> = Vec::new();
    for PollSpan { active, .. } in spans {
        let span = FindingSpan {
            name: active.name.to_string(),
            fields: active.fields.to_string(),
        };
        if !out.contains(&span) {
            out.push(span);
        }
    }
    out
}

/// Groups findings by their innermost span's name, largest total first.
fn group(findings: &[Finding]) -> Vec<SpanGroup> {
    let mut groups: Vec<SpanGroup> = Vec::new();
    for finding in findings {
        let Some(span) = finding.spans.first() else {
            continue;
        };
        let index = match groups.iter().position(|g| g.name == span.name) {
            Some(index) => index,
            None => {
                groups.push(SpanGroup {
                    name: span.name.clone(),
                    findings: 0,
                    duration_ns: 0,
                    verdicts: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[index];
        group.findings += 1;
        group.duration_ns += finding.duration_ns;
        let key = finding.verdict.key().to_owned();
        if !group.verdicts.contains(&key) {
            group.verdicts.push(key);
        }
    }
    groups.sort_by(|a, b| {
        b.duration_ns
            .cmp(&a.duration_ns)
            .then_with(|| a.name.cmp(&b.name))
    });
    groups
}

/// Writes a finding's spans (after its first line) for `pulse analyze`.
pub(crate) fn write_finding_spans(out: &mut String, f: &Finding) -> fmt::Result {
    let Some((innermost, outer)) = f.spans.split_first() else {
        return Ok(());
    };
    write!(out, "    inside {innermost}")?;
    if !outer.is_empty() {
        let outer: Vec<String> = outer.iter().map(ToString::to_string).collect();
        write!(out, " (in {})", outer.join(", "))?;
    }
    writeln!(out)
}

/// Writes the marks in a finding's window.
pub(crate) fn write_finding_marks(out: &mut String, f: &Finding) -> fmt::Result {
    if f.marks.is_empty() {
        return Ok(());
    }
    let marks: Vec<String> = f
        .marks
        .iter()
        .map(|m| {
            let value = m.value.map(|v| format!("={v}")).unwrap_or_default();
            format!(
                "{} at {} (worker {})",
                format_args!("{}{value}", m.name),
                format_duration(m.at_ns),
                m.worker
            )
        })
        .collect();
    writeln!(out, "    marks: {}", marks.join("; "))
}

/// Writes findings grouped by span and the per-span statistics.
pub(crate) fn write_spans(out: &mut String, a: &Analysis) -> fmt::Result {
    if !a.span_groups.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Inside which spans (listed findings, by their innermost span)"
        )?;
        for group in &a.span_groups {
            writeln!(
                out,
                "  {} finding{}, {}, all inside {}  [{}]",
                group.findings,
                if group.findings == 1 { "" } else { "s" },
                format_duration(group.duration_ns),
                group.name,
                group.verdicts.join(", ")
            )?;
        }
    }
    if !a.spans.is_empty() {
        writeln!(out)?;
        writeln!(out, "Spans (polls that ran inside each span name)")?;
        writeln!(
            out,
            "  {:<32} {:>9} {:>9} {:>10} {:>12}",
            "span", "enters", "polls", "busy", "longest poll"
        )?;
        for s in &a.spans {
            writeln!(
                out,
                "  {:<32} {:>9} {:>9} {:>10} {:>12}",
                s.name,
                s.enters,
                s.polls,
                format_duration(s.busy_ns),
                format_duration(s.longest_poll_ns)
            )?;
        }
    }
    Ok(())
}
