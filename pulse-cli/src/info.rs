//! `pulse info`: what a trace is, without analyzing it.

use pulse_cli::analysis::{format_duration, AnalysisError, Completeness, TraceScan, TraceSet};
use pulse_trace::EventType;
use std::fmt::Write;

/// The description `pulse info` prints for one trace; `progress` is called
/// with `(bytes_read, total_bytes)` now and then.
pub(crate) fn describe(
    set: &TraceSet,
    mut progress: impl FnMut(u64, u64),
) -> Result<String, AnalysisError> {
    let mut scan = TraceScan::open(set)?;
    let mut counts = [0u64; EventType::ALL.len()];
    let (mut first, mut last) = (u64::MAX, 0u64);
    let mut dropped = 0u64;
    let mut events = 0u64;
    while let Some(event) = scan.next_event()? {
        events += 1;
        if events.is_multiple_of(64 * 1024) {
            progress(scan.bytes_read(), scan.total_bytes());
        }
        if let Some(count) = counts.get_mut(event.event_type() as usize) {
            *count += 1;
        }
        let t = event.timestamp_nanos();
        first = first.min(t);
        last = last.max(t);
        if let pulse_trace::TraceEvent::EventsDropped { count, .. } = event {
            dropped += count;
        }
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_description(
        &mut out,
        set,
        &scan,
        &counts,
        events,
        (first, last),
        dropped,
    );
    Ok(out)
}

fn write_description(
    out: &mut String,
    set: &TraceSet,
    scan: &TraceScan,
    counts: &[u64],
    events: u64,
    (first, last): (u64, u64),
    dropped: u64,
) -> std::fmt::Result {
    writeln!(out, "trace {}", set.name().display())?;
    let files = scan.files();
    writeln!(out, "  files ({}):", files.len())?;
    for file in files {
        let version = file
            .format_version
            .map_or("not read".to_owned(), |v| format!("v{v}"));
        let index = file
            .file_index
            .map_or(String::new(), |i| format!(", file {i} of the set"));
        writeln!(
            out,
            "    {} ({} bytes, {version}{index})",
            file.path, file.bytes
        )?;
    }
    match scan.metadata() {
        Some(meta) => {
            writeln!(out, "  written by: pulse {}", meta.pulse_version)?;
            if let Some(identity) = recorded_by(meta) {
                writeln!(out, "  recorded by: {identity}")?;
            }
            writeln!(out, "  workers: {}", meta.worker_count)?;
            writeln!(out, "  started: {}", utc(meta.start_unix_nanos))?;
            writeln!(
                out,
                "  time unit: {} ns; run-queue wait recorded: {}",
                meta.time_unit_nanos,
                if meta.has_run_delay { "yes" } else { "no" }
            )?;
            // The identity pairs are on the line above.
            let identity = [
                pulse_trace::identity::HOSTNAME,
                pulse_trace::identity::PID,
                pulse_trace::identity::EXECUTABLE,
                pulse_trace::identity::SERVICE,
            ];
            let config: Vec<String> = meta
                .config
                .iter()
                .filter(|(k, _)| !identity.contains(&k.as_str()))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !config.is_empty() {
                writeln!(out, "  config: {}", config.join(" "))?;
            }
            if meta
                .config
                .iter()
                .any(|(k, v)| k == "tokio_unstable" && v == "false")
            {
                writeln!(
                    out,
                    "  task-level detail: none (recorded without --cfg tokio_unstable: polls, task \
                     ids, spawn sites and local queues need it; parks, CPU readings and the global \
                     queue are recorded)"
                )?;
            }
        }
        None => writeln!(out, "  metadata: none (a v5 trace carries none)")?,
    }
    if events == 0 {
        writeln!(out, "  events: none")?;
    } else {
        writeln!(
            out,
            "  duration: {} (first event at {}, last at {})",
            format_duration(last - first),
            format_duration(first),
            format_duration(last)
        )?;
        writeln!(
            out,
            "  events: {events} ({:.2} bytes/event)",
            scan.total_bytes() as f64 / events as f64
        )?;
        for (ty, count) in EventType::ALL.iter().zip(counts) {
            writeln!(out, "    {ty:<14} {count:>12}")?;
        }
    }
    let mut completeness = Completeness::default();
    completeness.end = scan.end().copied();
    let ending = completeness.ending_problem(last);
    if let Some(end) = scan.end() {
        writeln!(
            out,
            "  ended: {} at {}",
            end.reason,
            format_duration(end.timestamp_nanos)
        )?;
    }
    match (dropped, scan.truncated(), ending) {
        (0, None, None) => writeln!(out, "  complete: no events dropped")?,
        (dropped, truncated, ending) => {
            if dropped > 0 {
                writeln!(
                    out,
                    "  INCOMPLETE: {dropped} events dropped by the recorder"
                )?;
            }
            if let Some(error) = truncated {
                writeln!(out, "  INCOMPLETE: reading stopped early: {error}")?;
            }
            if let Some(ending) = ending {
                writeln!(out, "  INCOMPLETE: {ending}")?;
            }
        }
    }
    Ok(())
}

/// `checkout-server (pid 4242) on web-1, service checkout`, from what the
/// metadata has of it (traces before pulse recorded it have none).
fn recorded_by(meta: &pulse_trace::TraceMetadata) -> Option<String> {
    let mut parts = Vec::new();
    match (meta.executable(), meta.pid()) {
        (Some(exe), Some(pid)) => parts.push(format!("{exe} (pid {pid})")),
        (Some(exe), None) => parts.push(exe.to_owned()),
        (None, Some(pid)) => parts.push(format!("pid {pid}")),
        (None, None) => {}
    }
    if let Some(host) = meta.hostname() {
        parts.push(format!("on {host}"));
    }
    let mut line = parts.join(" ");
    if let Some(service) = meta.service() {
        if !line.is_empty() {
            line.push_str(", ");
        }
        line.push_str(&format!("service {service}"));
    }
    (!line.is_empty()).then_some(line)
}

/// `2025-11-23 20:01:25.123 UTC` from ns since the Unix epoch.
fn utc(unix_nanos: u64) -> String {
    let secs = unix_nanos / 1_000_000_000;
    let millis = (unix_nanos / 1_000_000) % 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_by_says_what_the_metadata_has() {
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let mut meta = pulse_trace::TraceMetadata::default();
        assert_eq!(recorded_by(&meta), None);
        meta.config = vec![
            pair("hostname", "web-1"),
            pair("pid", "42"),
            pair("executable", "srv"),
        ];
        assert_eq!(recorded_by(&meta).unwrap(), "srv (pid 42) on web-1");
        meta.config.push(pair("service", "checkout"));
        assert_eq!(
            recorded_by(&meta).unwrap(),
            "srv (pid 42) on web-1, service checkout"
        );
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(951_782_400_123_000_000), "2000-02-29 00:00:00.123 UTC");
        assert_eq!(
            utc(1_763_928_085_000_000_000),
            "2025-11-23 20:01:25.000 UTC"
        );
    }
}
