//! The code behind poll findings: stacks the recorder captured during long
//! polls (`StackSample` records), attached to the findings they fall in.
//!
//! Each blocked, CPU-bound or unexplained long-poll finding gets the most
//! frequent stack sampled on its worker inside its window, with the
//! innermost frame of the user's own code marked ([`CodeFrame::user`]:
//! frames of std/core/alloc, of crates from a Cargo registry or git
//! checkout, and C library functions are not the user's), and findings are
//! grouped by that frame ([`CodeGroup`]).

use super::{format_duration, Analysis, Finding};
use pulse_trace::{Stack, StackFrame, StackId, StackKind, TraceEvent, TraceScan};
use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;

/// One frame of a finding's stack.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CodeFrame {
    /// The demangled function.
    pub function: String,
    /// Source file, when the binary had line tables.
    pub file: Option<String>,
    /// Line, when known.
    pub line: Option<u32>,
    /// Inlined into the next frame.
    pub inlined: bool,
    /// The user's own code (not std, a dependency, or libc).
    pub user: bool,
}

impl fmt::Display for CodeFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.function)?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " ({file}:{line})"),
            (Some(file), None) => write!(f, " ({file})"),
            _ => Ok(()),
        }
    }
}

/// The most frequent stack sampled inside a finding.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FindingStack {
    /// `"off-cpu"` (where it slept) or `"on-cpu"` (where it computed).
    pub kind: String,
    /// How many samples inside the finding had this stack.
    pub samples: u32,
    /// How many stack samples the finding had in all.
    pub total_samples: u32,
    /// Innermost first.
    pub frames: Vec<CodeFrame>,
    /// Index in `frames` of the innermost frame of the user's own code.
    pub user_frame: Option<usize>,
    /// The unwinder stopped before the thread's first frame.
    pub truncated: bool,
}

impl FindingStack {
    /// The innermost frame of the user's own code, if any.
    pub fn user_code(&self) -> Option<&CodeFrame> {
        self.frames.get(self.user_frame?)
    }
}

/// Findings whose stacks point at the same function of the user's code.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CodeGroup {
    /// The user frame (function, file, and the line most of the group's
    /// findings had).
    pub frame: CodeFrame,
    /// Listed findings pointing there.
    pub findings: u64,
    /// Their total duration.
    pub duration_ns: u64,
    /// Their verdicts' keys (`"blocked_in_poll"`, ...), each once.
    pub verdicts: Vec<String>,
}

/// Collects stack samples while a trace is read.
#[derive(Debug, Default)]
pub(crate) struct StackSamples {
    /// (timestamp, worker, kind, stack) in file order.
    samples: Vec<(u64, u32, StackKind, StackId)>,
    stacks: HashMap<StackId, Stack>,
}

impl StackSamples {
    pub(crate) fn push(&mut self, event: &TraceEvent, scan: &TraceScan) {
        if let TraceEvent::StackSample {
            timestamp_nanos,
            worker,
            kind,
            stack,
        } = *event
        {
            if let std::collections::hash_map::Entry::Vacant(entry) = self.stacks.entry(stack) {
                let Some(resolved) = scan.stack(stack) else {
                    return;
                };
                entry.insert(resolved.clone());
            }
            self.samples.push((timestamp_nanos, worker, kind, stack));
        }
    }

    /// Gives each poll finding its most frequent stack and fills
    /// `analysis.code_groups`.
    pub(crate) fn attach(mut self, analysis: &mut Analysis) {
        if self.samples.is_empty() {
            return;
        }
        self.samples.sort_by_key(|s| (s.1, s.0));
        for finding in &mut analysis.findings {
            if finding.verdict.is_poll() {
                finding.stack = self.most_frequent(finding);
            }
        }
        analysis.code_groups = group(&analysis.findings);
    }

    fn most_frequent(&self, f: &Finding) -> Option<FindingStack> {
        let from = self
            .samples
            .partition_point(|s| (s.1, s.0) < (f.worker, f.start_ns));
        let mut counts: HashMap<(StackKind, StackId), u32> = HashMap::new();
        let mut total = 0;
        for &(at, worker, kind, stack) in &self.samples[from..] {
            if worker != f.worker || at > f.end_ns {
                break;
            }
            *counts.entry((kind, stack)).or_default() += 1;
            total += 1;
        }
        // Most samples; ties to the lower id (first seen), for stable output.
        let ((kind, id), samples) = counts
            .into_iter()
            .max_by_key(|&((kind, id), n)| (n, std::cmp::Reverse((id, kind))))?;
        let stack = self.stacks.get(&id)?;
        let frames: Vec<CodeFrame> = stack.frames.iter().map(code_frame).collect();
        let user_frame = frames.iter().position(|frame| frame.user);
        Some(FindingStack {
            kind: kind.name().to_owned(),
            samples,
            total_samples: total,
            frames,
            user_frame,
            truncated: stack.truncated,
        })
    }
}

/// Groups findings by their stack's user function (and file), largest
/// total first; a group's frame carries the line most of its findings had.
fn group(findings: &[Finding]) -> Vec<CodeGroup> {
    let mut groups: Vec<(CodeGroup, HashMap<Option<u32>, u64>)> = Vec::new();
    for finding in findings {
        let Some(frame) = finding.stack.as_ref().and_then(FindingStack::user_code) else {
            continue;
        };
        let key = finding.verdict.key().to_owned();
        let same = |g: &CodeGroup| g.frame.function == frame.function && g.frame.file == frame.file;
        let index = match groups.iter().position(|(g, _)| same(g)) {
            Some(index) => index,
            None => {
                let group = CodeGroup {
                    frame: frame.clone(),
                    findings: 0,
                    duration_ns: 0,
                    verdicts: Vec::new(),
                };
                groups.push((group, HashMap::new()));
                groups.len() - 1
            }
        };
        let (group, lines) = &mut groups[index];
        group.findings += 1;
        group.duration_ns += finding.duration_ns;
        if !group.verdicts.contains(&key) {
            group.verdicts.push(key);
        }
        *lines.entry(frame.line).or_default() += 1;
    }
    let mut groups: Vec<CodeGroup> = groups
        .into_iter()
        .map(|(mut group, lines)| {
            group.frame.line = lines
                .into_iter()
                .max_by_key(|&(line, n)| (n, std::cmp::Reverse(line)))
                .and_then(|(line, _)| line);
            group
        })
        .collect();
    groups.sort_by(|a, b| {
        b.duration_ns
            .cmp(&a.duration_ns)
            .then_with(|| a.frame.function.cmp(&b.frame.function))
    });
    groups
}

fn code_frame(frame: &StackFrame) -> CodeFrame {
    CodeFrame {
        function: frame.function.clone(),
        file: frame.file.clone(),
        line: frame.line,
        inlined: frame.inlined,
        user: is_user_code(frame),
    }
}

/// Crates that are never the user's: the standard library, the runtime and
/// pulse itself (for frames without a file to tell).
const LIBRARY_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "tokio",
    "pulse",
    "tokio_pulse",
    "futures",
    "futures_util",
    "futures_core",
    "libc",
    "__rust_try",
    "__rust_begin_short_backtrace",
];

/// Whether a frame is the user's own code.
///
/// ```
/// # use pulse_trace::StackFrame;
/// # use pulse_cli::analysis::is_user_code;
/// let frame = |function: &str, file: Option<&str>| StackFrame {
///     function: function.into(), file: file.map(Into::into), line: None, inlined: false, module: None,
/// };
/// assert!(is_user_code(&frame("app::cmd::get", Some("/home/me/app/src/cmd/get.rs"))));
/// assert!(!is_user_code(&frame("std::thread::sleep", Some("/rustc/abc/library/std/src/thread/mod.rs"))));
/// assert!(!is_user_code(&frame("tokio::runtime::task::raw::poll",
///     Some("/home/me/.cargo/registry/src/index.crates.io-1/tokio-1.48.0/src/runtime/task/raw.rs"))));
/// assert!(!is_user_code(&frame("clock_nanosleep", None)));
/// ```
pub fn is_user_code(frame: &StackFrame) -> bool {
    if let Some(file) = &frame.file {
        let file = file.replace('\\', "/");
        return !(file.starts_with("/rustc/")
            || file.contains("/.cargo/registry/")
            || file.contains("/.cargo/git/")
            || file.contains("/rustlib/src/"));
    }
    // No line tables: judge by the crate the name starts with.
    let name = frame.function.trim_start_matches('<');
    let Some((krate, _)) = name.split_once("::") else {
        return false; // a C function or an address
    };
    !LIBRARY_CRATES.contains(&krate)
}

/// Frames of a stack shown around the user's frame in text reports.
const SHOWN_FRAMES: usize = 4;

/// Writes a poll finding's stack: the user's frame highlighted (`>>`),
/// std/tokio/dependency frames folded into counts.
pub(crate) fn write_finding_stack(out: &mut String, f: &Finding) -> fmt::Result {
    let Some(stack) = &f.stack else {
        return Ok(());
    };
    let share = format!("{} of {} stack samples", stack.samples, stack.total_samples);
    match stack.user_code() {
        Some(frame) => writeln!(out, "    in your code: {frame}  [{}, {share}]", stack.kind)?,
        None => writeln!(
            out,
            "    no frame of your code in the stack  [{}, {share}]",
            stack.kind
        )?,
    }
    // Innermost frames down to (and a few past) the user's frame; runs of
    // library frames are folded.
    let last = stack
        .user_frame
        .map_or(SHOWN_FRAMES, |i| i + SHOWN_FRAMES)
        .min(stack.frames.len());
    let mut folded = 0usize;
    for (i, frame) in stack.frames[..last].iter().enumerate() {
        let keep = frame.user || i == 0 || Some(i + 1) == stack.user_frame;
        if !keep {
            folded += 1;
            continue;
        }
        if folded > 0 {
            writeln!(out, "          ... {folded} std/dependency frame(s)")?;
            folded = 0;
        }
        let mark = if Some(i) == stack.user_frame {
            ">>"
        } else {
            "  "
        };
        let inlined = if frame.inlined { " [inlined]" } else { "" };
        writeln!(out, "       {mark} {frame}{inlined}")?;
    }
    let rest = folded + stack.frames.len() - last;
    if rest > 0 {
        writeln!(out, "          ... {rest} more frame(s)")?;
    }
    if stack.truncated {
        writeln!(
            out,
            "          (stack truncated: the unwinder stopped early)"
        )?;
    }
    Ok(())
}

/// Writes the findings grouped by the user frame their stacks point at,
/// or, when poll findings have no stacks, why.
pub(crate) fn write_code_groups(out: &mut String, a: &Analysis) -> fmt::Result {
    if a.code_groups.is_empty() {
        let polls_without = a
            .findings
            .iter()
            .any(|f| f.verdict.is_poll() && f.stack.is_none());
        if polls_without {
            writeln!(out)?;
            writeln!(out, "No stacks for the long polls: {}", why_no_stacks(a))?;
        }
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "Where in your code (listed poll findings, by their most frequent stack)"
    )?;
    for group in &a.code_groups {
        let mut line = String::new();
        write!(
            line,
            "  {} finding{}, {}, all in {}",
            group.findings,
            if group.findings == 1 { "" } else { "s" },
            format_duration(group.duration_ns),
            group.frame
        )?;
        writeln!(out, "{line}  [{}]", group.verdicts.join(", "))?;
    }
    Ok(())
}

/// Why a trace's long polls carry no stacks, from its metadata.
fn why_no_stacks(a: &Analysis) -> String {
    let setting = |key: &str| {
        a.trace
            .config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    match setting("stacks") {
        None => "the recorder did not capture stacks (recorded before stack capture existed, or not by pulse's recorder)".to_owned(),
        Some("off") => "stack capture was turned off (stacks = false / PULSE_STACKS=off)".to_owned(),
        Some("on") => format!(
            "none was captured inside them (stacks start once a poll has lasted stack_threshold_ms = {} ms, at most once per sample_ms; the recorder's queue may have been full)",
            setting("stack_threshold_ms").unwrap_or("?")
        ),
        Some(other) => format!("stack capture was {other}"),
    }
}
