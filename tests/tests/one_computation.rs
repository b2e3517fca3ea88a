//! One computation, everywhere: for the same poll and the same active
//! period, the text report, the analysis JSON, the Chrome export's
//! arguments and the viewer (its model, built by `viewer.js` with
//! `timeline.js` under Node, as the page builds it) show the same CPU,
//! run-queue and off-CPU figures.
//!
//! The trace is recorded from a real traced runtime with a poll blocked in
//! `std::thread::sleep`, a CPU-bound poll, and CPU-bound polls while
//! spinning OS threads (twice as many as there are CPUs) take the CPUs
//! away from the workers.

mod viewer_support;

use pulse::{Config, Recorder, WriterConfig};
use pulse_cli::analysis::{
    analyze_trace, compute_active_periods, format_duration, render_text, AnalysisOptions, TraceSet,
};
use pulse_cli::export::trace_to_chrome;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use viewer_support::{repo_root, require, spin_for};

fn record(path: &Path) {
    let config = Config::new()
        .writer(WriterConfig::file(path))
        .flush_ms(20)
        .sample_ms(2);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let (runtime, guard) = Recorder::from_config(builder, &config).expect("traced runtime");
    runtime.block_on(async {
        let background = tokio::spawn(async {
            for i in 0..400u64 {
                spin_for(Duration::from_micros(50 + i % 50));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // A blocking call in async code.
        tokio::spawn(async { std::thread::sleep(Duration::from_millis(150)) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // A long CPU-bound poll.
        tokio::spawn(async { spin_for(Duration::from_millis(150)) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Shorter polls of both kinds, on idle CPUs.
        for i in 0..12u64 {
            let poll = tokio::spawn(async move {
                if i % 2 == 0 {
                    std::thread::sleep(Duration::from_millis(3 + i % 4));
                } else {
                    spin_for(Duration::from_millis(3 + i % 5));
                }
            });
            poll.await.unwrap();
        }
        // Spinning OS threads take the CPUs away from the workers.
        let stop = Arc::new(AtomicBool::new(false));
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let spinners: Vec<_> = (0..2 * cpus)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        spin_for(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        let polls: Vec<_> = (0..2)
            .map(|_| tokio::spawn(async { spin_for(Duration::from_millis(120)) }))
            .collect();
        for poll in polls {
            poll.await.unwrap();
        }
        // Shorter polls of both kinds, while descheduled.
        for i in 0..12u64 {
            let poll = tokio::spawn(async move {
                if i % 3 == 0 {
                    std::thread::sleep(Duration::from_millis(3 + i % 4));
                } else {
                    spin_for(Duration::from_millis(3 + i % 5));
                }
            });
            poll.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        stop.store(true, Ordering::Relaxed);
        for spinner in spinners {
            spinner.join().unwrap();
        }
        background.await.unwrap();
    });
    drop(runtime);
    let summary = guard.finish().expect("final flush");
    assert_eq!(
        summary.dropped_events, 0,
        "the test trace should be complete"
    );
}

/// CPU figures: (cpu_ns, run_delay_ns, off_cpu_ns, samples).
type Figures = (u64, Option<u64>, u64, u64);

fn figures(v: &Value) -> Figures {
    (
        v["cpu_ns"].as_u64().expect("cpu_ns"),
        v["run_delay_ns"].as_u64(),
        v["off_cpu_ns"].as_u64().expect("off_cpu_ns"),
        v["samples"].as_u64().expect("samples"),
    )
}

#[test]
fn report_json_chrome_and_viewer_show_the_same_figures() {
    if !require("node", "comparing the viewer's figures with the analysis") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.bin");
    record(&path);
    // Polls of 2 ms or more are findings: many polls to compare.
    let options = AnalysisOptions {
        long_poll: Duration::from_millis(2),
        ..AnalysisOptions::default()
    };
    let long_poll = 2_000_000u64;

    // The analysis, as `pulse analyze` prints it (text and JSON).
    let analysis = analyze_trace(&path, &options).unwrap();
    let text = render_text(&analysis, usize::MAX);
    let json: Value = serde_json::from_str(&serde_json::to_string(&analysis).unwrap()).unwrap();
    let findings = json["findings"].as_array().unwrap().clone();

    // The Chrome export: one finding instant per finding, in order.
    let mut chrome = Vec::new();
    trace_to_chrome(
        &TraceSet::open(&path).unwrap(),
        &mut chrome,
        "memory",
        &options,
        |_, _| {},
    )
    .unwrap();
    let chrome: Value = serde_json::from_slice(&chrome).unwrap();
    let instants: Vec<&Value> = chrome["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["cat"] == "finding")
        .collect();
    assert_eq!(instants.len(), findings.len());

    // The viewer's model, under Node.
    let out = dir.path().join("figures.txt");
    let script = repo_root().join("viewer/test/figures.js");
    let run = Command::new("node")
        .arg(&script)
        .arg(&out)
        .arg(long_poll.to_string())
        .arg(&path)
        .output()
        .expect("run node");
    assert!(
        run.status.success(),
        "node {} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    let viewer = std::fs::read_to_string(&out).unwrap();
    let mut viewer_polls: HashMap<(u32, u64, u64), Option<Figures>> = HashMap::new();
    let mut viewer_periods: HashMap<(u32, u64, u64), (String, String)> = HashMap::new();
    for line in viewer.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let key = (
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
        );
        match f[0] {
            "poll" if f[4] == "none" => {
                viewer_polls.insert(key, None);
            }
            "poll" => {
                viewer_polls.insert(
                    key,
                    Some((
                        f[4].parse().unwrap(),
                        f[5].parse().ok(),
                        f[6].parse().unwrap(),
                        f[7].parse().unwrap(),
                    )),
                );
            }
            "period" => {
                viewer_periods.insert(key, (f[4].to_owned(), f[5].to_owned()));
            }
            other => panic!("unexpected line {other}"),
        }
    }

    // Poll by poll: every finding about one poll has the same figures in
    // the JSON, the Chrome export, the text report and the viewer.
    let mut compared: HashMap<String, usize> = HashMap::new();
    let mut waited = 0u64;
    for (finding, instant) in findings.iter().zip(&instants) {
        let verdict = finding["verdict"].as_str().unwrap().to_owned();
        let worker = finding["worker"].as_u64().unwrap() as u32;
        let (start, end) = (
            finding["start_ns"].as_u64().unwrap(),
            finding["end_ns"].as_u64().unwrap(),
        );
        assert_eq!(instant["args"]["verdict"], finding["verdict"]);
        assert_eq!(instant["tid"].as_u64(), Some(u64::from(worker) + 1));
        let Some(viewer) = viewer_polls.get(&(worker, start, end)) else {
            assert!(
                !matches!(
                    verdict.as_str(),
                    "blocked_in_poll" | "cpu_bound_poll" | "long_poll"
                ),
                "the viewer has no poll {start}..{end} on worker {worker} ({verdict})"
            );
            continue;
        };
        let json_figures = figures(&finding["cpu"]);
        let chrome_figures = figures(&instant["args"]);
        assert_eq!(
            chrome_figures, json_figures,
            "{verdict} on worker {worker} at {start}: Chrome export vs JSON"
        );
        assert_eq!(
            *viewer,
            Some(json_figures),
            "{verdict} on worker {worker} at {start}: viewer vs JSON"
        );
        let (cpu, run_delay, off, samples) = json_figures;
        let line = format!(
            "on a CPU {}, waiting for a CPU {}, off-CPU {} ({samples} CPU sample{} inside)",
            format_duration(cpu),
            run_delay.map_or("not recorded".to_owned(), format_duration),
            format_duration(off),
            if samples == 1 { "" } else { "s" }
        );
        assert!(
            text.contains(&line),
            "the text report lacks {line:?} for {verdict} on worker {worker}:\n{text}"
        );
        waited += run_delay.unwrap_or(0);
        *compared.entry(verdict).or_default() += 1;
    }
    eprintln!("polls compared: {compared:?}");
    assert!(
        compared.values().sum::<usize>() >= 10,
        "enough polls compared: {compared:?}\n{text}"
    );
    assert!(
        compared.get("blocked_in_poll").copied().unwrap_or(0) >= 1,
        "the blocked poll is compared: {compared:?}\n{text}"
    );
    assert!(
        compared.get("cpu_bound_poll").copied().unwrap_or(0) >= 1,
        "the CPU-bound poll is compared: {compared:?}\n{text}"
    );
    if analysis.trace.has_run_delay {
        assert!(
            waited > 0,
            "the spinning threads made a long poll wait for a CPU\n{text}"
        );
    }
    assert!(
        viewer_polls.values().all(Option::is_some),
        "the viewer has figures for every long poll"
    );

    // Period by period: the viewer's active periods are the analysis's,
    // with the same CPU time and run-queue wait. The viewer adds at most
    // the two it cannot close (open when the trace began or ended).
    let periods = compute_active_periods(TraceSet::open(&path).unwrap().reader().unwrap()).unwrap();
    assert!(periods.len() > 10, "{} periods", periods.len());
    for p in &periods {
        let viewer = viewer_periods
            .remove(&(p.worker, p.start_ns, p.end_ns))
            .unwrap_or_else(|| panic!("the viewer lacks the period {p:?}"));
        // A period without a reading at both ends (parks and unparks read
        // at most once per ms) is unmeasured: 0 CPU and no run-queue wait
        // in the analysis (as `analyzer.rs` tells them apart), and the
        // viewer estimates it from the sampler's readings: only its bounds
        // are compared.
        if p.cpu_ns == 0 && p.run_delay_ns.is_none() {
            continue;
        }
        let expected = (
            p.cpu_ns.to_string(),
            p.run_delay_ns.map_or("?".to_owned(), |r| r.to_string()),
        );
        assert_eq!(viewer, expected, "period {p:?}");
    }
    let workers = analysis.workers.len();
    assert!(
        viewer_periods.len() <= 2 * workers,
        "periods only the viewer has: {viewer_periods:?}"
    );
}
