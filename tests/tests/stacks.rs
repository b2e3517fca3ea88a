//! Stacks of long polls (issue 16), in real processes: `stacks_app` runs a
//! request that blocks (100 ms) three calls below the spawned future, one that
//! burns the CPU in a named function, and short ones, all spawned from one
//! line. The trace must name the function and file:line of each, and the
//! short polls must carry no stack.

mod viewer_support;

use pulse_trace::{Stack, StackKind, TraceEvent, TraceReader};
use std::process::Command;

/// A poll read from the trace, with the stacks captured inside it.
#[derive(Debug)]
struct Poll {
    worker: u32,
    start: u64,
    end: u64,
    stacks: Vec<(StackKind, Stack)>,
}

/// Runs `stacks_app` in a fresh directory and reads its polls and stacks.
/// The polls of a run and its metadata's settings.
type Run = (Vec<Poll>, Vec<(String, String)>);

fn run_app(env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (polls, config) = run_app_in(dir.path(), env);
    (polls, config)
}

fn run_app_in(dir: &std::path::Path, env: &[(&str, &str)]) -> Run {
    run_app_with(dir, env, &[]).0
}

/// Runs `stacks_app args` in `dir`: the polls, the metadata's settings and
/// what the program printed.
fn run_app_with(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> (Run, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_stacks_app"))
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stacks_app failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut reader = TraceReader::open_rotated(dir.join("stacks-trace.bin")).unwrap();
    let mut polls: Vec<Poll> = Vec::new();
    let mut open: Vec<Option<u64>> = vec![None; 8];
    let mut samples = Vec::new();
    while let Some(event) = reader.next_event().unwrap() {
        match event {
            TraceEvent::PollStart {
                timestamp_nanos,
                worker,
                ..
            } => open[worker as usize] = Some(timestamp_nanos),
            TraceEvent::PollEnd {
                timestamp_nanos,
                worker,
                ..
            } => {
                if let Some(start) = open[worker as usize].take() {
                    polls.push(Poll {
                        worker,
                        start,
                        end: timestamp_nanos,
                        stacks: Vec::new(),
                    });
                }
            }
            TraceEvent::StackSample {
                timestamp_nanos,
                worker,
                kind,
                stack,
            } => {
                let stack = reader.stack(stack).expect("stack defined").clone();
                samples.push((timestamp_nanos, worker, kind, stack));
            }
            _ => {}
        }
    }
    for (at, worker, kind, stack) in samples {
        let poll = polls
            .iter_mut()
            .find(|p| p.worker == worker && p.start <= at && at <= p.end);
        match poll {
            Some(poll) => poll.stacks.push((kind, stack)),
            None => panic!("a stack outside any poll at {at} on worker {worker}: {stack:?}"),
        }
    }
    let config = reader.metadata().unwrap().config.clone();
    ((polls, config), stdout)
}

fn source_line(file: &str, marker: &str) -> u32 {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .unwrap();
    text.lines().position(|l| l.contains(marker)).unwrap() as u32 + 1
}

/// The frame of `function` in `stack` (matching the end of its path).
fn frame<'a>(stack: &'a Stack, function: &str) -> Option<&'a pulse_trace::StackFrame> {
    stack.frames.iter().find(|f| f.function.ends_with(function))
}

#[test]
fn long_polls_carry_stacks_that_name_the_code() {
    let (polls, config) = run_app(&[]);
    let status = config
        .iter()
        .find(|(k, _)| k == "stacks")
        .map(|(_, v)| v.as_str());
    assert_eq!(status, Some("on"), "the kernel must allow stacks here");

    // Blocked: 60 ms in std::thread::sleep three calls below `serve`.
    let blocked: Vec<&Poll> = polls
        .iter()
        .filter(|p| {
            p.stacks
                .iter()
                .any(|(k, s)| *k == StackKind::OffCpu && frame(s, "storage::read_disk").is_some())
        })
        .collect();
    assert_eq!(blocked.len(), 2, "two `get` requests: {polls:#?}");
    let sleep_line = source_line("src/bin/stacks_app/storage.rs", "BLOCKING CALL");
    for poll in &blocked {
        // Sampled every 5 ms; a loaded machine delays the sampler, so ask
        // for a fraction of the 20 ticks.
        assert!(
            poll.stacks.len() >= 3,
            "a 100 ms poll sampled every 5 ms: {poll:#?}"
        );
        assert!(poll.end - poll.start >= 100_000_000);
        let (_, stack) = poll
            .stacks
            .iter()
            .find(|(k, _)| *k == StackKind::OffCpu)
            .unwrap();
        let read = frame(stack, "storage::read_disk").unwrap_or_else(|| panic!("{stack:#?}"));
        assert!(
            read.file.as_deref().unwrap().ends_with("storage.rs"),
            "{read:?}"
        );
        assert_eq!(read.line, Some(sleep_line), "{read:?}");
        for caller in [
            "storage::lookup",
            "handler::get",
            "handler::serve::{{closure}}",
            "thread::functions::sleep",
        ] {
            assert!(
                frame(stack, caller).is_some(),
                "{caller} missing: {stack:#?}"
            );
        }
    }

    // CPU-bound: on-CPU stacks in compute::checksum at its loop.
    // The loop: its `for` line (the range's `next`, not inlined in
    // unoptimised builds) or its body, after the marker comment.
    let loop_line = source_line("src/bin/stacks_app/compute.rs", "CPU LOOP") + 1;
    let for_line = loop_line - 2;
    let busy: Vec<&Poll> = polls
        .iter()
        .filter(|p| {
            p.stacks
                .iter()
                .any(|(k, s)| *k == StackKind::OnCpu && frame(s, "compute::checksum").is_some())
        })
        .collect();
    assert_eq!(busy.len(), 2, "two `sum` requests: {polls:#?}");
    for poll in busy {
        let (_, stack) = poll
            .stacks
            .iter()
            .find(|(k, s)| *k == StackKind::OnCpu && frame(s, "compute::checksum").is_some())
            .unwrap();
        let checksum = frame(stack, "compute::checksum").unwrap();
        assert!(checksum.file.as_deref().unwrap().ends_with("compute.rs"));
        let line = checksum.line.unwrap();
        assert!(
            line == for_line || line == loop_line,
            "checksum at line {line}, the loop is at {for_line} and {loop_line}: {stack:#?}"
        );
    }

    // Short polls (`ping`, the main task's) carry no stack.
    for poll in polls.iter().filter(|p| p.end - p.start < 2_000_000) {
        assert!(
            poll.stacks.is_empty(),
            "a short poll has a stack: {poll:#?}"
        );
    }
}

#[test]
fn pulse_stacks_off_records_none_and_says_so() {
    let (polls, config) = run_app(&[("PULSE_STACKS", "off")]);
    assert!(polls.iter().any(|p| p.end - p.start >= 50_000_000));
    assert!(polls.iter().all(|p| p.stacks.is_empty()));
    let status = config
        .iter()
        .find(|(k, _)| k == "stacks")
        .map(|(_, v)| v.as_str());
    assert_eq!(status, Some("off"));
}

/// Without stacks, `analyze` says why its long polls have none.
#[test]
fn analyze_says_why_there_are_no_stacks() {
    use pulse_cli::analysis::{analyze_trace, render_text, AnalysisOptions};
    let dir = tempfile::tempdir().unwrap();
    run_app_in(dir.path(), &[("PULSE_STACKS", "off")]);
    let analysis = analyze_trace(
        dir.path().join("stacks-trace.bin"),
        &AnalysisOptions::default(),
    )
    .unwrap();
    assert!(analysis.findings.iter().any(|f| f.verdict.is_poll()));
    assert!(analysis.findings.iter().all(|f| f.stack.is_none()));
    let text = render_text(&analysis, 10);
    assert!(
        text.contains("No stacks for the long polls: stack capture was turned off"),
        "{text}"
    );
}

/// `pulse analyze` (text and JSON) names the function and line of each
/// finding's code and groups the findings by it.
#[test]
fn analyze_names_the_code_of_each_finding() {
    use pulse_cli::analysis::{analyze_trace, render_text, AnalysisOptions, Verdict};
    let dir = tempfile::tempdir().unwrap();
    run_app_in(dir.path(), &[]);
    let analysis = analyze_trace(
        dir.path().join("stacks-trace.bin"),
        &AnalysisOptions::default(),
    )
    .unwrap();
    let sleep_line = source_line("src/bin/stacks_app/storage.rs", "BLOCKING CALL");
    // The loop: its `for` line (the range's `next`, not inlined in
    // unoptimised builds) or its body, after the marker comment.
    let loop_line = source_line("src/bin/stacks_app/compute.rs", "CPU LOOP") + 1;
    let for_line = loop_line - 2;
    let mut blocked = 0;
    let mut computing = 0;
    for finding in analysis.findings.iter().filter(|f| f.verdict.is_poll()) {
        let stack = finding
            .stack
            .as_ref()
            .unwrap_or_else(|| panic!("no stack: {finding:#?}"));
        let code = stack
            .user_code()
            .unwrap_or_else(|| panic!("no user frame: {stack:#?}"));
        let file = code.file.as_deref().unwrap();
        if code.function.ends_with("storage::read_disk") {
            assert!(file.ends_with("stacks_app/storage.rs"), "{code:?}");
            assert_eq!(code.line, Some(sleep_line));
            assert_eq!(stack.kind, "off-cpu");
            assert_eq!(finding.verdict, Verdict::BlockedInPoll);
            blocked += 1;
        } else {
            assert!(code.function.ends_with("compute::checksum"), "{code:?}");
            assert!(file.ends_with("stacks_app/compute.rs"), "{code:?}");
            assert!(
                [for_line, loop_line].contains(&code.line.unwrap()),
                "{code:?}"
            );
            computing += 1;
        }
    }
    assert_eq!((blocked, computing), (2, 2), "{:#?}", analysis.findings);
    let groups: Vec<(&str, u64)> = analysis
        .code_groups
        .iter()
        .map(|g| (g.frame.function.as_str(), g.findings))
        .collect();
    assert!(
        groups.contains(&("stacks_app::storage::read_disk", 2)),
        "{groups:?}"
    );
    assert!(
        groups.contains(&("stacks_app::compute::checksum", 2)),
        "{groups:?}"
    );

    let text = render_text(&analysis, 10);
    assert!(
        text.contains("in your code: stacks_app::storage::read_disk ("),
        "{text}"
    );
    assert!(
        text.contains(&format!("storage.rs:{sleep_line})")),
        "{text}"
    );
    assert!(text.contains("2 findings"), "{text}");

    let json = serde_json::to_value(&analysis).unwrap();
    let first = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["verdict"] == "blocked_in_poll")
        .unwrap();
    let user = first["stack"]["user_frame"].as_u64().unwrap() as usize;
    assert_eq!(
        first["stack"]["frames"][user]["function"],
        "stacks_app::storage::read_disk"
    );
    assert_eq!(json["code_groups"].as_array().unwrap().len(), 2);
}

/// The views name the code too: the Chrome export's finding arguments
/// and the HTML viewer's finding list and tooltip (in headless Chromium)
/// carry the blocked poll's function and line, as `pulse analyze` does.
#[test]
fn chrome_export_and_viewer_name_the_code() {
    use pulse_cli::analysis::{AnalysisOptions, TraceSet};
    let dir = tempfile::tempdir().unwrap();
    run_app_in(dir.path(), &[]);
    let set = TraceSet::open(dir.path().join("stacks-trace.bin")).unwrap();
    let sleep_line = source_line("src/bin/stacks_app/storage.rs", "BLOCKING CALL");
    let code = "in your code: stacks_app::storage::read_disk (";
    let at = format!("storage.rs:{sleep_line})");

    let mut chrome = Vec::new();
    let analysis = pulse_cli::export::trace_to_chrome(
        &set,
        &mut chrome,
        "trace.json",
        &AnalysisOptions::default(),
        |_, _| {},
    )
    .unwrap();
    let chrome: serde_json::Value = serde_json::from_slice(&chrome).unwrap();
    let blocked: Vec<&serde_json::Value> = chrome["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["cat"] == "finding" && e["args"]["verdict"] == "blocked_in_poll")
        .collect();
    assert_eq!(blocked.len(), 2, "{blocked:#?}");
    for finding in &blocked {
        let args = &finding["args"];
        let named = args["in_your_code"].as_str().unwrap_or_default();
        assert!(
            named.starts_with("stacks_app::storage::read_disk (") && named.ends_with(&at),
            "{args:#}"
        );
        assert_eq!(args["stack_kind"], "off-cpu", "{args:#}");
        let frames = args["stack"].as_array().unwrap();
        assert!(frames.iter().any(|f| f.as_str() == Some(named)), "{args:#}");
    }

    let page = dir.path().join("trace.html");
    let out = std::io::BufWriter::new(std::fs::File::create(&page).unwrap());
    pulse_cli::export::html::write_html(&set, Some(&analysis), out, "trace.html", |_, _| {})
        .unwrap();
    // The page embeds each finding's stack exactly as the analysis JSON has it.
    let html = std::fs::read_to_string(&page).unwrap();
    let open = "<script type=\"application/json\" id=\"pulse-findings\">";
    let embedded = &html[html.find(open).unwrap() + open.len()..];
    let embedded: serde_json::Value =
        serde_json::from_str(&embedded[..embedded.find("</script>").unwrap()]).unwrap();
    let expected = serde_json::to_value(&analysis.findings).unwrap();
    let stacks = |findings: &serde_json::Value| -> Vec<serde_json::Value> {
        let all = findings.as_array().unwrap();
        all.iter().map(|f| f["stack"].clone()).collect()
    };
    assert_eq!(stacks(&embedded), stacks(&expected));
    assert!(stacks(&embedded).iter().any(|s| !s.is_null()));

    if !viewer_support::have_browser() {
        return;
    }
    let first = analysis
        .findings
        .iter()
        .find(|f| f.verdict.key() == "blocked_in_poll")
        .unwrap();
    let which = format!("{}:{}", first.worker, first.start_ns);
    let report = viewer_support::run_browser(
        &page,
        dir.path(),
        &["--focus-verdict", "blocked_in_poll", "--finding", &which],
    );
    assert_eq!(report["state"], "ready", "{report:#}");
    let items: Vec<&str> = report["page"]["findingItems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["verdict"] == "blocked_in_poll")
        .map(|item| item["text"].as_str().unwrap())
        .collect();
    assert_eq!(items.len(), 2, "{report:#}");
    for text in items {
        assert!(text.contains(code) && text.contains(&at), "{text}");
    }
    let tooltip = report["tooltip"]["text"].as_str().unwrap_or_default();
    assert!(tooltip.contains(code), "{:#}", report["tooltip"]);
    assert!(
        tooltip.contains("stack, innermost first:")
            && tooltip.contains("» stacks_app::storage::read_disk"),
        "{tooltip}"
    );
}

/// A program with its own SIGUSR1 and SIGPROF handlers (no `SA_RESTART`)
/// whose workers block in raw `read(2)`s: stacks are captured during the
/// reads, and no signal reaches the program, so no read sees `EINTR`.
#[test]
fn own_signal_handlers_and_blocking_reads_see_no_eintr() {
    let dir = tempfile::tempdir().unwrap();
    let ((polls, _), stdout) = run_app_with(dir.path(), &[], &["signals"]);
    assert_eq!(
        stdout.trim(),
        "eintr=0 sigusr1=0 sigprof=0 reads=6",
        "{stdout}"
    );
    let read_stacks = polls
        .iter()
        .flat_map(|p| &p.stacks)
        .filter(|(kind, stack)| {
            *kind == StackKind::OffCpu && frame(stack, "signals::blocking_read").is_some()
        })
        .count();
    assert!(
        read_stacks >= 6,
        "stacks were captured during the reads: {read_stacks}"
    );
}
