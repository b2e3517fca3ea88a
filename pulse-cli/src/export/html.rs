//! The HTML viewer: one self-contained page showing a trace as an
//! interactive timeline, with the analysis' findings as markers.
//!
//! [`trace_to_html`] analyzes a trace and writes the page (what `pulse html`
//! does); [`write_html`] and [`write_html_file`] write it for an
//! [`Analysis`] you already have;
//! [`viewer_page`] is the page with no trace in it, which opens `.bin` files
//! chosen with a file picker or dropped onto it (the repository's
//! `viewer/trace_viewer.html`).
//!
//! The page needs no network and no build step and opens from `file://`.
//! It embeds the trace files themselves (base64, about 4 bytes per event
//! for the default format) and decodes them in the browser with a
//! JavaScript port of [`TraceReader`](pulse_trace::TraceReader), kept in
//! step with it by a parity test; the findings come as JSON in the
//! analysis' schema. Decoding goes straight into typed arrays, in time
//! slices, and drawing works from per-zoom-level aggregates, so traces of
//! millions of events open in seconds and pan smoothly.
//!
//! ```
//! use pulse_cli::analysis::{AnalysisOptions, TraceSet};
//! use pulse_cli::export::html::trace_to_html;
//! use std::fs::File;
//! use std::io::BufWriter;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("trace.bin");
//! # let (rt, guard) = pulse::Recorder::build(
//! #     tokio::runtime::Builder::new_multi_thread(),
//! #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
//! # )?;
//! # rt.block_on(async { tokio::spawn(async {}).await })?;
//! # drop(rt); drop(guard);
//!
//! let set = TraceSet::open(&path)?;
//! let out = BufWriter::new(File::create(dir.path().join("trace.html"))?);
//! let analysis = trace_to_html(&set, &AnalysisOptions::default(), out, "trace.html", |_, _| {})?;
//! println!("{} findings marked", analysis.findings.len());
//! # Ok(())
//! # }
//! ```

use super::json;
use crate::analysis::{
    self, Analysis, AnalysisError, AnalysisOptions, Finding, FindingStack, QueuedOn, TraceSet,
};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The trace decoder, in JavaScript (`FORMAT.md` v5 and v6).
pub const DECODER_JS: &str = include_str!("html/decoder.js");
/// The analysis's per-worker timeline and CPU accounting, mirrored in
/// JavaScript for the viewer.
pub const TIMELINE_JS: &str = include_str!("html/timeline.js");
/// The viewer, in JavaScript.
pub const VIEWER_JS: &str = include_str!("html/viewer.js");
/// The viewer's style sheet.
pub const VIEWER_CSS: &str = include_str!("html/viewer.css");
/// The page, with `{{NAME}}` placeholders.
const TEMPLATE: &str = include_str!("html/template.html");

/// The viewer page with no trace in it: open `.bin` files (and the JSON of
/// `pulse analyze --json`) with its file picker or by dropping them onto
/// it. This is `viewer/trace_viewer.html` in the repository.
pub fn viewer_page() -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and there are no files to read.
    let _ = write_page(&mut out, "pulse trace viewer", |_| Ok(()));
    String::from_utf8(out).unwrap_or_default()
}

/// Analyzes `set` and writes one self-contained page showing it, with the
/// findings as markers. Reads the trace twice (once to analyze, once to
/// embed); `progress(bytes_done, bytes_total)` is called now and then over
/// both passes. `out_name` names `out` in errors. Returns the analysis.
///
/// # Errors
///
/// The trace cannot be read (see
/// [`analyze_set`](crate::analysis::analyze_set)) or `out` cannot be
/// written.
pub fn trace_to_html(
    set: &TraceSet,
    options: &AnalysisOptions,
    out: impl Write,
    out_name: &str,
    progress: impl FnMut(u64, u64),
) -> Result<Analysis, AnalysisError> {
    trace_to_html_window(set, options, None, out, out_name, progress)
}

/// As [`trace_to_html`], but the page shows only the time window `window`
/// (durations since the trace's first event; what `pulse html --from
/// --to` does): it embeds only the files of a rotated set that hold
/// events inside the window, the page decodes only the events inside it,
/// and only the findings that overlap it are marked. Use it when a whole
/// trace is too large for one browser tab (about 0.7 billion events on
/// Chromium). The returned analysis is the whole trace's, with `findings`
/// cut to the window.
///
/// # Errors
///
/// As [`trace_to_html`]; a window that starts after the trace ends, or
/// does not start before it ends, is an [`AnalysisError::Output`] naming
/// `out_name`, and nothing is written.
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::{AnalysisOptions, TraceSet};
/// use pulse_cli::export::html::trace_to_html_window;
/// use std::time::Duration;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("trace.bin");
/// # let mut builder = tokio::runtime::Builder::new_multi_thread();
/// # builder.enable_all();
/// # let (rt, guard) = pulse::Recorder::build(
/// #     builder,
/// #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
/// # )?;
/// # rt.block_on(async { tokio::time::sleep(Duration::from_millis(30)).await });
/// # drop(rt); drop(guard);
///
/// let set = TraceSet::open(&path)?;
/// let mut page = Vec::new();
/// let window = Duration::from_millis(10)..Duration::from_millis(20);
/// trace_to_html_window(&set, &AnalysisOptions::default(), Some(window), &mut page, "memory", |_, _| {})?;
/// assert!(String::from_utf8(page)?.contains("\"window\":["));
/// # Ok(())
/// # }
/// ```
pub fn trace_to_html_window(
    set: &TraceSet,
    options: &AnalysisOptions,
    window: Option<Range<Duration>>,
    out: impl Write,
    out_name: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<Analysis, AnalysisError> {
    let total = set.total_bytes();
    // Each file's first and last timestamps, to embed only those the
    // window needs.
    let mut spans: Vec<(u64, u64)> = vec![(u64::MAX, 0); set.files().len()];
    let mut file = 0;
    let mut analysis = analysis::run(
        set,
        options,
        |event, scan| {
            if set.files().get(file).map(PathBuf::as_path) != Some(scan.reader().path()) {
                file = set
                    .files()
                    .iter()
                    .position(|path| path == scan.reader().path())
                    .unwrap_or(file);
            }
            let t = event.timestamp_nanos();
            if let Some(span) = spans.get_mut(file) {
                *span = (span.0.min(t), span.1.max(t));
            }
            Ok(())
        },
        |done, _| progress(done, 2 * total),
    )?;
    let Some(window) = window else {
        write_html(set, Some(&analysis), out, out_name, |done, _| {
            progress(total + done, 2 * total)
        })?;
        return Ok(analysis);
    };
    let first = analysis.trace.first_ns;
    let length = analysis.trace.last_ns.saturating_sub(first);
    let (from, to) = (saturating_nanos(window.start), saturating_nanos(window.end));
    if from >= to || from > length {
        return Err(AnalysisError::Output {
            path: out_name.into(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the window {:?}..{:?} holds no part of the trace, which lasts {:?} from its first event: choose a start below that and an end after the start",
                    window.start,
                    window.end,
                    Duration::from_nanos(length)
                ),
            ),
        });
    }
    let (from, to) = (first + from, first.saturating_add(to));
    let files: Vec<_> = set
        .files()
        .iter()
        .zip(spans)
        .filter(|(_, (start, end))| start <= end && *start <= to && *end >= from)
        .map(|(path, _)| path.clone())
        .collect();
    let cut = TraceSet::from_files(set.name(), files);
    analysis
        .findings
        .retain(|f| f.end_ns >= from && f.start_ns <= to);
    let cut_total = cut.total_bytes();
    write_page_for(
        &cut,
        Some(&analysis),
        Some(from..to),
        out,
        out_name,
        |done, _| progress(total + done * total / cut_total.max(1), 2 * total),
    )?;
    Ok(analysis)
}

fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Writes one self-contained page showing `set`, with `analysis`'s
/// findings as markers (without an analysis, the page marks polls of 10 ms
/// or more). The trace files are copied into the page as they are, so the
/// page is about 4/3 of their size plus 200 KiB.
///
/// # Errors
///
/// A file of `set` cannot be read ([`AnalysisError::Set`],
/// [`AnalysisError::Trace`]), or `out` cannot
/// be written ([`AnalysisError::Output`], naming `out_name`).
pub fn write_html(
    set: &TraceSet,
    analysis: Option<&Analysis>,
    out: impl Write,
    out_name: &str,
    progress: impl FnMut(u64, u64),
) -> Result<(), AnalysisError> {
    write_page_for(set, analysis, None, out, out_name, progress)
}

/// [`write_html`], with an optional window (trace timestamps).
fn write_page_for(
    set: &TraceSet,
    analysis: Option<&Analysis>,
    window: Option<Range<u64>>,
    out: impl Write,
    out_name: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<(), AnalysisError> {
    let total = set.total_bytes();
    let title = format!("pulse: {}", set.name().display());
    let mut failure = None;
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    let written = write_page(&mut out, &title, |out| {
        let mut done = 0u64;
        for path in set.files() {
            let read = embed_file(out, path, |n| progress(done + n, total)).map_err(|err| {
                failure = Some(err);
                io::Error::other("reading a trace file failed")
            })?;
            done += read;
        }
        let mut meta = String::from("{\"name\":");
        json::string(&mut meta, &set.name().display().to_string());
        if let Some(analysis) = analysis {
            let _ = write!(
                meta,
                ",\"analysis\":true,\"findings_omitted\":{}",
                analysis.findings_omitted
            );
        }
        if let Some(window) = &window {
            let _ = write!(meta, ",\"window\":[{},{}]", window.start, window.end);
            if let Some(analysis) = analysis {
                let first = analysis.trace.first_ns;
                let _ = write!(
                    meta,
                    ",\"window_since_start\":[{},{}]",
                    window.start.saturating_sub(first),
                    window.end.min(analysis.trace.last_ns).saturating_sub(first)
                );
            }
        }
        meta.push('}');
        write_json_block(out, "pulse-meta", &meta)?;
        if let Some(analysis) = analysis {
            write_json_block(out, "pulse-findings", &findings_json(&analysis.findings))?;
        }
        progress(total, total);
        Ok(())
    })
    .and_then(|()| out.flush());
    match (written, failure) {
        (_, Some(err)) => Err(err),
        (Err(source), None) => Err(AnalysisError::Output {
            path: out_name.into(),
            source,
        }),
        (Ok(()), None) => Ok(()),
    }
}

/// Writes the page for the trace at `trace` (a file, a rotated set's base
/// path or a directory holding one trace, as
/// [`TraceSet::open`](crate::analysis::TraceSet::open) resolves it), with
/// `analysis`'s findings, to the file `out`.
///
/// # Errors
///
/// As [`write_html`], and [`AnalysisError::Output`] if `out` cannot be
/// created.
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::{analyze_trace, AnalysisOptions};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("trace.bin");
/// # let (rt, guard) = pulse::Recorder::build(
/// #     tokio::runtime::Builder::new_multi_thread(),
/// #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
/// # )?;
/// # rt.block_on(async { tokio::spawn(async {}).await })?;
/// # drop(rt); drop(guard);
///
/// let analysis = analyze_trace(&path, &AnalysisOptions::default())?;
/// let page = path.with_extension("html");
/// pulse_cli::export::html::write_html_file(&path, Some(&analysis), &page)?;
/// println!("open {}", page.display());
/// # Ok(())
/// # }
/// ```
pub fn write_html_file(
    trace: impl AsRef<Path>,
    analysis: Option<&Analysis>,
    out: impl AsRef<Path>,
) -> Result<(), AnalysisError> {
    let set = TraceSet::open(trace)?;
    let out = out.as_ref();
    let file = File::create(out).map_err(|source| AnalysisError::Output {
        path: out.to_owned(),
        source,
    })?;
    write_html(&set, analysis, file, &out.display().to_string(), |_, _| {})
}

/// Writes the page, calling `data` where the embedded data goes.
fn write_page<W: Write>(
    out: &mut W,
    title: &str,
    data: impl FnOnce(&mut W) -> io::Result<()>,
) -> io::Result<()> {
    let mut data = Some(data);
    let mut rest = TEMPLATE;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.write_all(&rest.as_bytes()[..start])?;
        match &rest[start + 2..start + len] {
            "VERSION" => out.write_all(env!("CARGO_PKG_VERSION").as_bytes())?,
            "TITLE" => out.write_all(escape_html(title).as_bytes())?,
            "CSS" => out.write_all(VIEWER_CSS.as_bytes())?,
            "DECODER" => out.write_all(DECODER_JS.as_bytes())?,
            "TIMELINE" => out.write_all(TIMELINE_JS.as_bytes())?,
            "VIEWER" => out.write_all(VIEWER_JS.as_bytes())?,
            "DATA" => {
                if let Some(data) = data.take() {
                    data(out)?;
                }
            }
            other => out.write_all(format!("{{{{{other}}}}}").as_bytes())?,
        }
        rest = &rest[start + len + 2..];
    }
    out.write_all(rest.as_bytes())
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A `<script type="application/json">` block; `<` is escaped so that the
/// JSON can never end the element early.
fn write_json_block(out: &mut impl Write, id: &str, json: &str) -> io::Result<()> {
    writeln!(
        out,
        "<script type=\"application/json\" id=\"{id}\">{}</script>",
        json.replace('<', "\\u003c")
    )
}

/// Base64 characters per `<script>` element of embedded data: the browser
/// parses and decodes the page a part at a time, and stays responsive.
const PART_CHARS: usize = 4 << 20;

/// Copies one trace file into the page as base64, in parts of at most
/// [`PART_CHARS`] characters, each a whole number of 4-character groups;
/// returns the file's length.
fn embed_file(
    out: &mut impl Write,
    path: &Path,
    mut progress: impl FnMut(u64),
) -> Result<u64, AnalysisError> {
    let io_error = |source| {
        AnalysisError::Set(pulse_trace::SetError::Io {
            path: path.to_owned(),
            source,
        })
    };
    let output = |source| AnalysisError::Output {
        path: "the page".into(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let name = escape_html(&path.display().to_string());
    let open = |out: &mut dyn Write, part: usize| {
        write!(
            out,
            "<script type=\"application/x-pulse-trace\" data-name=\"{name}\" data-part=\"{part}\">"
        )
    };
    let mut part = 0;
    let mut part_chars = 0;
    open(out, part).map_err(output)?;
    // Whole groups of 3 bytes per chunk, so the base64 has no padding
    // until the end.
    let mut buf = vec![0u8; 3 << 16];
    let mut carry = 0usize;
    let mut text = Vec::with_capacity(4 << 16);
    let mut read_total = 0u64;
    loop {
        let n = match file.read(&mut buf[carry..]) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(io_error(err)),
        };
        read_total += n as u64;
        let filled = carry + n;
        let whole = if n == 0 { filled } else { filled / 3 * 3 };
        text.clear();
        base64(&buf[..whole], &mut text);
        if part_chars > 0 && part_chars + text.len() > PART_CHARS {
            out.write_all(b"</script>\n").map_err(output)?;
            part += 1;
            part_chars = 0;
            open(out, part).map_err(output)?;
        }
        out.write_all(&text).map_err(output)?;
        part_chars += text.len();
        buf.copy_within(whole..filled, 0);
        carry = filled - whole;
        progress(read_total);
        if n == 0 {
            break;
        }
    }
    out.write_all(b"</script>\n").map_err(output)?;
    Ok(read_total)
}

/// Appends the standard base64 (with padding) of `bytes`.
fn base64(bytes: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut chunks = bytes.chunks_exact(3);
    for chunk in &mut chunks {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(ALPHABET[(n >> shift & 63) as usize]);
        }
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.push(ALPHABET[(n >> 18 & 63) as usize]);
            out.push(ALPHABET[(n >> 12 & 63) as usize]);
            out.extend_from_slice(b"==");
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.push(ALPHABET[(n >> 18 & 63) as usize]);
            out.push(ALPHABET[(n >> 12 & 63) as usize]);
            out.push(ALPHABET[(n >> 6 & 63) as usize]);
            out.push(b'=');
        }
        _ => {}
    }
}

/// The findings as a JSON array, in the schema of `pulse analyze --json`.
fn findings_json(findings: &[Finding]) -> String {
    let mut out = String::from("[");
    for (i, f) in findings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"verdict\":\"{}\",\"worker\":{},\"start_ns\":{},\"end_ns\":{},\"duration_ns\":{}",
            f.verdict.key(),
            f.worker,
            f.start_ns,
            f.end_ns,
            f.duration_ns
        );
        out.push_str(",\"cpu\":");
        match &f.cpu {
            Some(cpu) => {
                let _ = write!(out, "{{\"cpu_ns\":{},\"run_delay_ns\":", cpu.cpu_ns);
                json::opt_u64(&mut out, cpu.run_delay_ns);
                let _ = write!(
                    out,
                    ",\"off_cpu_ns\":{},\"samples\":{}}}",
                    cpu.off_cpu_ns, cpu.samples
                );
            }
            None => out.push_str("null"),
        }
        let field_u64 = |out: &mut String, name: &str, value: Option<u64>| {
            let _ = write!(out, ",\"{name}\":");
            json::opt_u64(out, value);
        };
        let field_str = |out: &mut String, name: &str, value: Option<&str>| {
            let _ = write!(out, ",\"{name}\":");
            match value {
                Some(value) => json::string(out, value),
                None => out.push_str("null"),
            }
        };
        field_u64(&mut out, "task_id", f.task_id);
        field_str(&mut out, "spawned_at", f.spawned_at.as_deref());
        field_u64(
            &mut out,
            "local_queue_start",
            f.local_queue_start.map(u64::from),
        );
        field_u64(
            &mut out,
            "local_queue_end",
            f.local_queue_end.map(u64::from),
        );
        field_u64(&mut out, "next_task_id", f.next_task_id);
        field_str(&mut out, "next_spawned_at", f.next_spawned_at.as_deref());
        out.push_str(",\"other_workers_parked\":");
        match f.other_workers_parked {
            Some(share) => json::number(&mut out, share),
            None => out.push_str("null"),
        }
        field_u64(&mut out, "global_queue_max", f.global_queue_max);
        out.push_str(",\"queued_on\":");
        match f.queued_on {
            Some(QueuedOn::Global) => out.push_str("\"global\""),
            Some(QueuedOn::Worker(worker)) => {
                let _ = write!(out, "{{\"worker\":{worker}}}");
            }
            None => out.push_str("null"),
        }
        field_u64(&mut out, "queue_depth_max", f.queue_depth_max);
        field_u64(&mut out, "parked_ns", f.parked_ns);
        field_u64(&mut out, "wake_wait_ns", f.wake_wait_ns);
        let _ = write!(out, ",\"ongoing\":{}", f.ongoing);
        out.push_str(",\"stack\":");
        match &f.stack {
            Some(stack) => stack_json(&mut out, stack),
            None => out.push_str("null"),
        }
        out.push('}');
    }
    out.push(']');
    out
}

/// A finding's stack, in the analysis JSON's schema.
fn stack_json(out: &mut String, stack: &FindingStack) {
    out.push_str("{\"kind\":");
    json::string(out, &stack.kind);
    let _ = write!(
        out,
        ",\"samples\":{},\"total_samples\":{},\"frames\":[",
        stack.samples, stack.total_samples
    );
    for (i, frame) in stack.frames.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"function\":");
        json::string(out, &frame.function);
        out.push_str(",\"file\":");
        match &frame.file {
            Some(file) => json::string(out, file),
            None => out.push_str("null"),
        }
        out.push_str(",\"line\":");
        json::opt_u64(out, frame.line.map(u64::from));
        let _ = write!(
            out,
            ",\"inlined\":{},\"user\":{}}}",
            frame.inlined, frame.user
        );
    }
    out.push_str("],\"user_frame\":");
    json::opt_u64(out, stack.user_frame.map(|i| i as u64));
    let _ = write!(out, ",\"truncated\":{}}}", stack.truncated);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        base64(bytes, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"f"), "Zg==");
        assert_eq!(b64(b"fo"), "Zm8=");
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"foob"), "Zm9vYg==");
        assert_eq!(b64(b"fooba"), "Zm9vYmE=");
        assert_eq!(b64(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64(&[0xFB, 0xFF, 0xBF]), "+/+/");
    }

    #[test]
    fn embedded_files_are_whole_base64_whatever_the_read_sizes() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            PART_CHARS / 4 * 3 * 2 + 5,
            0usize,
            1,
            2,
            3,
            4,
            (3 << 16) - 1,
            3 << 16,
            (3 << 16) + 1,
            500_001,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 3) as u8).collect();
            let path = dir.path().join("t.bin");
            std::fs::write(&path, &bytes).unwrap();
            let mut out = Vec::new();
            let read = embed_file(&mut out, &path, |_| {}).unwrap();
            assert_eq!(read, len as u64);
            let text = String::from_utf8(out).unwrap();
            let parts: Vec<&str> = text
                .split("</script>\n")
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('>').unwrap().1)
                .collect();
            assert!(parts
                .iter()
                .all(|p| p.len() / 4 * 4 == p.len() && p.len() <= PART_CHARS));
            assert_eq!(parts.concat(), b64(&bytes), "length {len}");
        }
    }

    #[test]
    fn the_page_has_every_part_and_no_placeholder_left() {
        let page = viewer_page();
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("{{"), "a placeholder was not filled");
        assert!(page.contains("PulseDecoder"));
        assert!(page.contains("PulseViewer.boot()"));
        for source in [DECODER_JS, VIEWER_JS, VIEWER_CSS] {
            assert!(
                !source.to_ascii_lowercase().contains("</script"),
                "inlined code must not end its script element"
            );
            assert!(
                !source.contains("{{"),
                "inlined code must not look like a placeholder"
            );
        }
        // Nothing is fetched from anywhere.
        for needle in ["http://", "https://", "src=", "@import", "url("] {
            assert!(!page.contains(needle), "the page refers to {needle}");
        }
    }

    #[test]
    fn json_blocks_cannot_end_their_element() {
        let mut out = Vec::new();
        write_json_block(&mut out, "x", "[\"</script><b>\"]").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "<script type=\"application/json\" id=\"x\">[\"\\u003c/script>\\u003cb>\"]</script>\n"
        );
    }
}
