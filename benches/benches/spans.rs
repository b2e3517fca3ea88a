//! What `tracing` spans and `pulse::mark!` cost on a worker thread
//! (issue 19): DESIGN.md asks ≤ 30 ns per span enter/exit pair.
//!
//! - `span_pair`: one `span.enter()` + drop of the guard (enter and exit),
//!   under `tracing_subscriber::registry()` alone (the baseline every
//!   `tracing` user pays), with pulse's layer on a thread that records
//!   nothing (not a worker), and with pulse's layer on a thread that
//!   records (a worker of a recording: here the bench thread, made one by
//!   `pulse::bench::HotPath`). pulse's cost is the difference to the
//!   baseline.
//! - `mark`: one `pulse::mark!` on the recording thread, with and without
//!   a value.
//!
//! Full buffers are handed over inside the timed loop (amortised), and
//! written by the flusher thread to a null writer, as in `critical_path`.
//!
//! Run: `cargo bench -p benches --bench spans`; smoke run:
//! `PULSE_BENCH_QUICK=1 cargo bench -p benches --bench spans`.

use benches::batched;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pulse::bench::HotPath;
use pulse::Config;
use std::panic::Location;
use tracing_subscriber::layer::SubscriberExt;

/// A recording whose backlog never drops in these loops (4 Mi events)
/// and whose flusher drains it every millisecond.
fn recording() -> HotPath {
    HotPath::new(&Config::new().max_pending_events(1 << 22).flush_ms(1)).expect("valid config")
}

fn span_pair(c: &mut Criterion) {
    let mut group = c.benchmark_group("span_pair");
    group.throughput(Throughput::Elements(1));
    let baseline = tracing::Dispatch::new(tracing_subscriber::registry());
    let with_pulse =
        tracing::Dispatch::new(tracing_subscriber::registry().with(pulse::tracing_layer()));
    let pair = |dispatch: &tracing::Dispatch| {
        tracing::dispatcher::with_default(dispatch, || {
            let span = tracing::info_span!("cmd::get", key = "user:42");
            move |iters| {
                batched(iters, |_| {
                    let _entered = span.enter();
                })
            }
        })
    };

    let timed = pair(&baseline);
    group.bench_function("registry_only", |b| {
        b.iter_custom(|iters| tracing::dispatcher::with_default(&baseline, || timed(iters)))
    });
    let timed = pair(&with_pulse);
    group.bench_function("pulse_layer_not_recording", |b| {
        b.iter_custom(|iters| tracing::dispatcher::with_default(&with_pulse, || timed(iters)))
    });
    let hot = recording();
    // The bench thread becomes worker 0 of the recording.
    hot.poll_start(0, 1, Location::caller());
    hot.poll_end();
    let timed = pair(&with_pulse);
    group.bench_function("pulse_layer_recording", |b| {
        b.iter_custom(|iters| tracing::dispatcher::with_default(&with_pulse, || timed(iters)))
    });
    group.finish();
    let summary = hot.finish().expect("recording finishes");
    println!(
        "span_pair: {} events written, {} dropped",
        summary.events_written, summary.dropped_events
    );
}

fn mark(c: &mut Criterion) {
    let mut group = c.benchmark_group("mark");
    group.throughput(Throughput::Elements(1));
    let hot = recording();
    hot.poll_start(0, 1, Location::caller());
    hot.poll_end();
    group.bench_function("name", |b| {
        b.iter_custom(|iters| batched(iters, |_| pulse::mark!("cache miss")))
    });
    group.bench_function("name_and_value", |b| {
        b.iter_custom(|iters| batched(iters, |i| pulse::mark!("request id", i)))
    });
    group.finish();
    let summary = hot.finish().expect("recording finishes");
    println!(
        "mark: {} events written, {} dropped",
        summary.events_written, summary.dropped_events
    );
}

criterion_group! {
    name = benches;
    config = benches::criterion();
    targets = span_pair, mark
}
criterion_main!(benches);
