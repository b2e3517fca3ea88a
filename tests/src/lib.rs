//! Integration tests for pulse live in `tests/`: real runtimes, real threads, real files.

// README snippets are held to the lints code is: an unused import fails.
#![doc(test(attr(deny(warnings))))]

/// Every Rust block of the repository's README.md, compiled (and, unless
/// marked `no_run`, run) as a doctest of this crate, which depends on all
/// the README uses: a snippet that stops compiling fails the build.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

use std::time::{Duration, Instant, SystemTime};

/// Keeps this thread on a CPU for `duration`: what a poll that computes
/// without yielding does.
pub fn spin_for(duration: Duration) {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < duration {
        for _ in 0..100 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    std::hint::black_box(x);
}

/// `t` in nanoseconds since the Unix epoch (the clock traces' start time
/// is given in).
pub fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos() as u64
}

/// Now, in nanoseconds since the Unix epoch.
pub fn unix_now_ns() -> u64 {
    unix_ns(SystemTime::now())
}

/// The current task's Tokio id, as traces write it. Call it inside a task.
pub fn task_id() -> u64 {
    tokio::task::id()
        .to_string()
        .parse()
        .expect("a task id is a number")
}
