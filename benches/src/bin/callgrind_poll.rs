//! Records `N` PollStart/PollEnd pairs through `pulse::bench::HotPath` (the
//! poll hooks' exact code) on the main thread, for an instruction count
//! under callgrind: `benches/callgrind.sh` runs it for two `N` and divides
//! the difference in the main thread's instructions by the difference in
//! events, so set-up, teardown and the flusher thread (counted separately)
//! cancel out.
//!
//! Usage: `callgrind_poll N` (default 100000).

use pulse::bench::HotPath;
use pulse::Config;
use std::hint::black_box;
use std::panic::Location;

/// The measured loop, not inlined, so callgrind's per-function view shows
/// it too.
#[inline(never)]
fn record_pairs(hot: &HotPath, pairs: u64) {
    // Opaque to the optimiser once, then in registers, as a hook's worker
    // index and task id are: a `black_box` per call would add a stack
    // store and load per argument (9 instructions per pair) that no hook
    // runs.
    let (worker, here) = black_box((0, Location::caller()));
    for task in 0..pairs {
        hot.poll_start(worker, task, here);
        hot.poll_end();
    }
}

fn main() {
    let pairs: u64 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("N: a number of pairs"))
        .unwrap_or(100_000);
    // The default configuration: the backlog bounds how many buffers are
    // ever allocated (and zeroed), so N1 and N2 allocate the same and the
    // difference is the steady state, buffers recycled. Nothing may drop
    // (asserted below): a dropped buffer costs fewer instructions.
    let config = Config::new();
    let hot = HotPath::new(&config).expect("valid config");
    record_pairs(&hot, pairs);
    let summary = hot.finish().expect("a NullWriter cannot fail");
    eprintln!(
        "callgrind_poll: {pairs} pairs, {} events written, {} dropped",
        summary.events_written, summary.dropped_events
    );
    assert_eq!(summary.dropped_events, 0, "the figure would time drops");
}
