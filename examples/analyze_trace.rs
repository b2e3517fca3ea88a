//! Offline analysis: read a trace back and say why tasks waited.
//!
//! ```text
//! cargo run --release -p examples --example analyze_trace -- [TRACE] [--periods]
//! ```
//!
//! TRACE is a trace file, the base path of a rotated set, or a directory
//! of traces (default: `target/pulse-demo/trace.bin`, which the `demo`
//! example writes). For each trace it prints the report `pulse analyze`
//! prints: the verdicts with their evidence, then per-worker statistics.
//!
//! With `--periods` it also goes through the seed design's own steps, the
//! lower-level API the report is built on: every active period (unpark →
//! park) with its scheduling ratio (CPU time / wall time), and the idle
//! ones among them — unparked but not running — with the reason.

use pulse_cli::analysis::{
    analyze_set, compute_active_periods, detect_idle_workers, format_duration, render_text,
    AnalysisOptions, IdleCause, TraceSet,
};
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let mut trace = "target/pulse-demo/trace.bin".to_owned();
    let mut periods = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--periods" => periods = true,
            _ => trace = arg,
        }
    }
    let options = AnalysisOptions::default();
    for set in TraceSet::find(&trace)? {
        let analysis = analyze_set(&set, &options, |_, _| {})?;
        print!("{}", render_text(&analysis, 10));
        if periods {
            print_periods(&set, &options)?;
        }
        println!();
    }
    Ok(())
}

fn print_periods(set: &TraceSet, options: &AnalysisOptions) -> Result<(), Box<dyn Error>> {
    // Collecting is fine for a demo; `ActivePeriods` streams for long traces.
    let periods = compute_active_periods(set.reader()?)?;
    let idle = detect_idle_workers(&periods, options);
    println!("\nActive periods: {}", periods.len());
    // Periods of a few microseconds have ratios dominated by the cost of
    // reading the clocks; look at those of 1 ms or more.
    let mut ratios: Vec<f64> = periods
        .iter()
        .filter(|p| p.wall_ns() >= 1_000_000)
        .map(|p| p.ratio())
        .collect();
    ratios.sort_by(f64::total_cmp);
    if let (Some(min), Some(median), Some(max)) =
        (ratios.first(), ratios.get(ratios.len() / 2), ratios.last())
    {
        println!(
            "  scheduling ratio (CPU / wall) of the {} lasting 1 ms or more: \
             min {min:.2}, median {median:.2}, max {max:.2}",
            ratios.len()
        );
    }
    println!(
        "Idle periods (at least {} long, ratio below {}): {}",
        format_duration(options.idle_min_wall.as_nanos() as u64),
        options.idle_max_ratio,
        idle.len()
    );
    for period in idle.iter().take(20) {
        let p = &period.period;
        let why = match period.cause {
            IdleCause::Descheduled => "waiting for a CPU",
            IdleCause::Blocked => "blocked (off-CPU)",
            _ => "cause unknown (no run-queue wait recorded)",
        };
        println!(
            "  worker {} at {}: {} unparked, ratio {:.2}, {why}",
            p.worker,
            format_duration(p.start_ns),
            format_duration(p.wall_ns()),
            p.ratio()
        );
    }
    Ok(())
}
