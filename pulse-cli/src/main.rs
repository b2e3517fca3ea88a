//! `pulse`: analyze and convert traces recorded by the pulse library.
//!
//! ```text
//! pulse analyze TRACE...          verdicts and evidence, then per-worker statistics
//! pulse analyze --json TRACE...   the same, as JSON (schema: pulse_cli::analysis docs)
//! pulse info TRACE...             files, metadata, duration, events by type
//! pulse jsonl TRACE [-o OUT]      one JSON object per event (default: standard output)
//! pulse chrome TRACE [-o OUT]     Chrome trace-event JSON for Perfetto (default: TRACE.chrome.json)
//! pulse html TRACE... [-o OUT]    one self-contained HTML page (default: TRACE.html)
//!     [--from 2s --to 3.5s]       only that time window (from the trace's first event)
//! pulse export parquet TRACE... --out DIR
//!                                 Parquet tables, partitioned service=/host=/date= (docs/fleet.md)
//! ```
//!
//! Files are written to a temporary file beside the output, with mode 0600
//! like the traces, and renamed over it only when complete: a failed
//! export leaves an earlier output as it was.
//!
//! TRACE is a trace file, the base path of a rotated set (`trace.bin` for
//! `trace.0.bin`, `trace.1.bin`, ...), or a directory of traces. Install it
//! with `cargo install --path pulse-cli` (no `tokio_unstable` needed), or run
//! it in this repository with `cargo pulse analyze TRACE`.

mod info;
mod progress;

use clap::{Args, Parser, Subcommand};
use pulse_cli::analysis::{self, AnalysisError, AnalysisOptions, TraceSet};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Analyze and convert traces recorded by pulse, the flight recorder for
/// the Tokio runtime.
///
/// TRACE is a trace file, the base path of a rotated set (`trace.bin` for
/// `trace.0.bin`, `trace.1.bin`, ...), or a directory holding traces.
#[derive(Debug, Parser)]
#[command(name = "pulse", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Say why tasks waited: verdicts and their evidence, then per-worker
    /// statistics.
    Analyze(AnalyzeArgs),
    /// Show a trace's files, metadata, duration and events by type.
    Info {
        /// Traces to describe.
        #[arg(required = true, value_name = "TRACE")]
        traces: Vec<PathBuf>,
    },
    /// Write every event as one JSON object per line (file order).
    Jsonl(ConvertArgs),
    /// Write Chrome trace-event JSON, for ui.perfetto.dev and chrome://tracing.
    Chrome(ChromeArgs),
    /// Write one self-contained HTML page: an interactive timeline of the
    /// workers, polls, parks and queues, with the findings marked. It
    /// embeds the trace and opens from a file, without network.
    Html(HtmlArgs),
    /// Export traces for other engines.
    #[command(subcommand)]
    Export(ExportCommand),
}

#[derive(Debug, Subcommand)]
enum ExportCommand {
    /// Write Parquet tables (polls, parks, samples, findings, runs) under
    /// DIR/TABLE/service=…/host=…/date=…/RUN.parquet, to query many hosts'
    /// traces as one dataset (DuckDB, Spark, Trino, ...). Schema:
    /// docs/fleet.md.
    Parquet(ParquetArgs),
}

#[derive(Debug, Args)]
struct ParquetArgs {
    /// Traces to export; each one is a run of its own.
    #[arg(required = true, value_name = "TRACE")]
    traces: Vec<PathBuf>,
    /// The dataset's root directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The service (default: the trace's service, else its executable's name).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// The host (default: the hostname the trace recorded).
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// The run (default: the recording's start time and process id). Only
    /// with one trace.
    #[arg(long, value_name = "NAME")]
    run: Option<String>,
    #[command(flatten)]
    thresholds: Thresholds,
}

#[derive(Debug, Args)]
struct HtmlArgs {
    /// The trace: a file, the base path of a rotated set, or a directory
    /// holding one trace. Several are read in the order given, as the
    /// files of one set.
    #[arg(required = true, value_name = "TRACE")]
    traces: Vec<PathBuf>,
    /// Where to write the page (default: the trace's path with the
    /// extension .html, e.g. trace.html for trace.bin).
    #[arg(short, long, value_name = "OUT.html")]
    output: Option<PathBuf>,
    /// Show only the events from this long after the trace's first event
    /// (e.g. 2s, 1500ms): for a trace too large for one browser tab, or to
    /// match the time of a log line.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    from: Option<Duration>,
    /// Show only the events up to this long after the trace's first event.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    to: Option<Duration>,
    #[command(flatten)]
    thresholds: Thresholds,
}

#[derive(Debug, Args)]
struct ChromeArgs {
    /// The trace to convert.
    #[arg(value_name = "TRACE")]
    trace: PathBuf,
    /// Where to write (default: the trace's path with the extension
    /// .chrome.json, e.g. trace.chrome.json for trace.bin; `-` for standard
    /// output, when it is not a terminal).
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Polls shorter than this that follow each other with gaps shorter
    /// than it become one `N polls` slice (spanning at most 10 times it),
    /// which keeps a busy trace's export small; 0 writes every poll.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "100us")]
    merge_below: Duration,
}

#[derive(Debug, Args)]
struct AnalyzeArgs {
    /// Traces to analyze; each one is reported on its own.
    #[arg(required = true, value_name = "TRACE")]
    traces: Vec<PathBuf>,
    /// Print JSON instead of text (one object; an array for several traces).
    #[arg(long)]
    json: bool,
    /// List every finding (the text report lists the 10 longest per verdict).
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    thresholds: Thresholds,
}

/// The analysis thresholds; defaults are pulse_cli::analysis::AnalysisOptions'.
#[derive(Debug, Args)]
struct Thresholds {
    /// Polls at least this long are classified (blocked or CPU-bound).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10ms")]
    long_poll: Duration,
    /// A long poll is CPU-bound when on a CPU for at least this share of
    /// its time not spent waiting for a CPU.
    #[arg(long, value_name = "SHARE", value_parser = parse_share, default_value = "0.5")]
    cpu_bound_share: f64,
    /// Share of time waiting for a CPU above which a worker is descheduled.
    #[arg(long, value_name = "SHARE", value_parser = parse_share, default_value = "0.5")]
    descheduled_share: f64,
    /// Least waiting for a CPU in one stretch for a descheduled finding.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "20ms")]
    descheduled_wait: Duration,
    /// Least time parked while work is queued for a finding.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10ms")]
    parked_queued: Duration,
    /// Queue depth that counts as work queued.
    #[arg(long, value_name = "TASKS", default_value = "1", value_parser = clap::value_parser!(u64).range(1..))]
    min_queue_depth: u64,
    /// Traces with schedule latencies: a finding delayed a task when at
    /// least this much of the task's wait to be polled lies in its window.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1ms")]
    delay_min: Duration,
    /// Traces with schedule latencies: waits at least this long that no
    /// finding explains are reported (saturated when every worker was busy).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10ms")]
    long_wait: Duration,
}

impl Thresholds {
    fn options(&self) -> AnalysisOptions {
        AnalysisOptions {
            long_poll: self.long_poll,
            cpu_bound_min_share: self.cpu_bound_share,
            descheduled_min_share: self.descheduled_share,
            descheduled_min_wait: self.descheduled_wait,
            parked_queued_min: self.parked_queued,
            min_queue_depth: self.min_queue_depth,
            delay_min: self.delay_min,
            long_wait: self.long_wait,
            ..AnalysisOptions::default()
        }
    }
}

#[derive(Debug, Args)]
struct ConvertArgs {
    /// The trace to convert.
    #[arg(value_name = "TRACE")]
    trace: PathBuf,
    /// Where to write (default, and `-`: standard output).
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
}

/// `10ms`, `1.5s`, `250us`, `800ns`, `0`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` needs a unit: ns, us, ms or s (e.g. 10ms)"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a number"))?;
    let nanos_per = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        other => return Err(format!("unknown unit `{other}`: use ns, us, ms or s")),
    };
    Ok(Duration::from_nanos((value * nanos_per).round() as u64))
}

fn parse_share(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not a share between 0 and 1"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`pulse jsonl trace | head`): not an error.
        Err(Failure::Output(err)) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = writeln!(io::stderr(), "pulse: error: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// What stops a command: the trace (one line naming it) or stdout.
#[derive(Debug)]
enum Failure {
    Trace(AnalysisError),
    Output(io::Error),
    /// The arguments cannot work: what is wrong and what to do.
    Usage(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Trace(err) => write!(f, "{err}"),
            Failure::Output(err) => write!(f, "writing the output: {err}"),
            Failure::Usage(message) => f.write_str(message),
        }
    }
}

impl From<AnalysisError> for Failure {
    fn from(err: AnalysisError) -> Self {
        match err {
            AnalysisError::Output { source, .. } if source.kind() == io::ErrorKind::BrokenPipe => {
                Failure::Output(source)
            }
            err => Failure::Trace(err),
        }
    }
}

impl From<pulse_trace::SetError> for Failure {
    fn from(err: pulse_trace::SetError) -> Self {
        Failure::Trace(AnalysisError::Set(err))
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Self {
        Failure::Output(err)
    }
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Analyze(args) => analyze(&args),
        Command::Info { traces } => {
            let sets = find_all(&traces)?;
            let mut stdout = io::stdout().lock();
            for (i, set) in sets.iter().enumerate() {
                if i > 0 {
                    writeln!(stdout)?;
                }
                let bar = progress::Bar::new(set);
                let report = info::describe(set, |done, total| bar.update(done, total));
                bar.finish();
                let report = report?;
                stdout.write_all(report.as_bytes())?;
            }
            Ok(())
        }
        Command::Jsonl(args) => {
            let output = args.output.clone().filter(|path| path.as_os_str() != "-");
            convert(
                &args.trace,
                output.as_deref(),
                |set, out, name, progress| {
                    pulse_cli::export::trace_to_jsonl(set, out, name, progress).map(drop)
                },
            )
        }
        Command::Chrome(args) => chrome(&args),
        Command::Html(args) => html(&args),
        Command::Export(ExportCommand::Parquet(args)) => export_parquet(&args),
    }
}

fn export_parquet(args: &ParquetArgs) -> Result<(), Failure> {
    use pulse_cli::export::parquet::{self, ExportError, ParquetOptions};
    let sets = find_all(&args.traces)?;
    if args.run.is_some() && sets.len() > 1 {
        return Err(Failure::Usage(format!(
            "--run names one run, but {} traces were given: export them one by one, or omit --run",
            sets.len()
        )));
    }
    let mut options = ParquetOptions::new().analysis(args.thresholds.options());
    options.service.clone_from(&args.service);
    options.host.clone_from(&args.host);
    options.run.clone_from(&args.run);
    let mut stdout = io::stdout().lock();
    for set in &sets {
        let bar = progress::Bar::new(set);
        let result = parquet::export_parquet(set, &args.out, &options, |done, total| {
            bar.update(done, total)
        });
        bar.finish();
        let export = result.map_err(|err| match err {
            ExportError::Trace(err) => Failure::from(err),
            err => Failure::Usage(err.to_string()),
        })?;
        let id = &export.identity;
        let bytes: u64 = export.files.iter().map(|f| f.bytes).sum();
        let rows: Vec<String> = export
            .files
            .iter()
            .map(|f| format!("{} {}", f.rows, f.table))
            .collect();
        writeln!(
            stdout,
            "{}: service={} host={} date={} run={}: {} ({:.1} MiB)",
            set.name().display(),
            id.service,
            id.host,
            id.date,
            id.run,
            rows.join(", "),
            bytes as f64 / 1_048_576.0
        )?;
    }
    Ok(())
}

fn chrome(args: &ChromeArgs) -> Result<(), Failure> {
    let set = TraceSet::open(&args.trace)?;
    let output = match &args.output {
        Some(path) if path.as_os_str() == "-" => {
            if io::stdout().is_terminal() {
                return Err(Failure::Usage(
                    "not writing Chrome JSON to a terminal: give -o FILE, or pipe it (-o - | ...)"
                        .to_owned(),
                ));
            }
            None
        }
        Some(path) => Some(path.clone()),
        None => Some(set.name().with_extension("chrome.json")),
    };
    let write = |set: &TraceSet,
                 out: Box<dyn Write + '_>,
                 name: &str,
                 progress: &mut dyn FnMut(u64, u64)| {
        pulse_cli::export::trace_to_chrome_with(
            set,
            out,
            name,
            &AnalysisOptions::default(),
            args.merge_below,
            progress,
        )
        .map(drop)
    };
    convert(&args.trace, output.as_deref(), write)?;
    if let Some(output) = output {
        println!(
            "wrote {} ({:.1} MiB): open it in ui.perfetto.dev or chrome://tracing",
            output.display(),
            mib(&output)
        );
    }
    Ok(())
}

fn mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0, |m| m.len()) as f64 / 1_048_576.0
}

fn html(args: &HtmlArgs) -> Result<(), Failure> {
    let set = match args.traces.as_slice() {
        [one] => TraceSet::open(one)?,
        many => {
            let mut files = Vec::new();
            for set in find_all(many)? {
                files.extend(set.files().iter().cloned());
            }
            TraceSet::from_files(&many[0], files)
        }
    };
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| set.name().with_extension("html"));
    let window = match (args.from, args.to) {
        (None, None) => None,
        (from, to) => {
            let (from, to) = (from.unwrap_or_default(), to.unwrap_or(Duration::MAX));
            if from >= to {
                return Err(Failure::Usage(format!(
                    "--from {from:?} is not before --to {to:?}: the window needs a start before its end"
                )));
            }
            Some(from..to)
        }
    };
    let bar = progress::Bar::new(&set);
    let analysis = write_atomically(&output, |out, name| {
        pulse_cli::export::html::trace_to_html_window(
            &set,
            &args.thresholds.options(),
            window.clone(),
            out,
            name,
            |done, _| bar.update(done / 2, 0),
        )
    });
    bar.finish();
    let analysis = analysis?;
    println!(
        "wrote {} ({:.1} MiB, {} events, {} findings{}): open it in a web browser",
        output.display(),
        mib(&output),
        analysis.trace.events,
        analysis.findings.len(),
        if window.is_some() {
            " in the window"
        } else {
            ""
        },
    );
    Ok(())
}

/// Runs `write` on a temporary file (mode 0600) in `path`'s directory, and
/// renames it to `path` only if `write` succeeded: a failure leaves what
/// was at `path` untouched.
fn write_atomically<T>(
    path: &Path,
    write: impl FnOnce(BufWriter<&File>, &str) -> Result<T, AnalysisError>,
) -> Result<T, AnalysisError> {
    let output = |source| AnalysisError::Output {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".pulse-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(output)?;
    let value = {
        let out = BufWriter::new(temp.as_file());
        write(out, &path.display().to_string())?
    };
    temp.as_file().sync_all().map_err(output)?;
    temp.persist(path).map_err(|err| output(err.error))?;
    Ok(value)
}

/// Every trace the arguments name, in order.
fn find_all(paths: &[PathBuf]) -> Result<Vec<TraceSet>, AnalysisError> {
    let mut sets = Vec::new();
    for path in paths {
        sets.extend(TraceSet::find(path)?);
    }
    Ok(sets)
}

fn analyze(args: &AnalyzeArgs) -> Result<(), Failure> {
    let options = args.thresholds.options();
    let sets = find_all(&args.traces)?;
    let mut analyses = Vec::with_capacity(sets.len());
    for set in &sets {
        let bar = progress::Bar::new(set);
        analyses.push(analysis::analyze_set(set, &options, |done, total| {
            bar.update(done, total)
        })?);
        bar.finish();
    }
    let mut stdout = io::stdout().lock();
    if args.json {
        let json = match analyses.as_slice() {
            [one] => serde_json::to_string_pretty(one),
            many => serde_json::to_string_pretty(many),
        }
        .map_err(io::Error::other)?;
        writeln!(stdout, "{json}")?;
        return Ok(());
    }
    let listed = if args.all {
        usize::MAX
    } else {
        analysis::DEFAULT_LISTED_PER_VERDICT
    };
    for (i, analysis) in analyses.iter().enumerate() {
        if i > 0 {
            writeln!(stdout, "\n{}\n", "=".repeat(72))?;
        }
        stdout.write_all(analysis::render_text(analysis, listed).as_bytes())?;
    }
    Ok(())
}

/// Converts `trace` into `output` (written atomically), or to standard
/// output.
fn convert(
    trace: &Path,
    output: Option<&Path>,
    write: impl Fn(
        &TraceSet,
        Box<dyn Write + '_>,
        &str,
        &mut dyn FnMut(u64, u64),
    ) -> Result<(), AnalysisError>,
) -> Result<(), Failure> {
    let set = TraceSet::open(trace)?;
    let bar = progress::Bar::new(&set);
    let mut progress = |done, total| bar.update(done, total);
    let result = match output {
        Some(path) => write_atomically(path, |out, name| {
            write(&set, Box::new(out), name, &mut progress)
        }),
        None => write(
            &set,
            Box::new(BufWriter::new(io::stdout().lock())),
            "stdout",
            &mut progress,
        ),
    };
    bar.finish();
    result?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert!(parse_duration("10").unwrap_err().contains("needs a unit"));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10 min")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_share("1.5").is_err());
        assert_eq!(parse_share("0.25"), Ok(0.25));
    }

    #[test]
    fn threshold_defaults_match_the_library() {
        let cli = Cli::parse_from(["pulse", "analyze", "trace.bin"]);
        let Command::Analyze(args) = cli.command else {
            panic!("analyze parses as analyze");
        };
        assert_eq!(args.thresholds.options(), AnalysisOptions::default());
    }

    #[test]
    fn merge_default_matches_the_library() {
        let cli = Cli::parse_from(["pulse", "chrome", "trace.bin"]);
        let Command::Chrome(args) = cli.command else {
            panic!("chrome parses as chrome");
        };
        assert_eq!(args.merge_below, pulse_cli::export::DEFAULT_MERGE_BELOW);
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
