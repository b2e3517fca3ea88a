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

/// A new temporary directory that lasts until this test process exits, and
/// is removed then: for a fixture that the tests of a file share through a
/// static. (A `TempDir` kept in a static is never dropped, so it would stay
/// on disk after every run.)
///
/// The test harness returns from `main` once every test is done, which runs
/// the `atexit` handler that removes these directories; a process killed by
/// a signal leaves them behind.
pub fn process_temp_dir() -> std::path::PathBuf {
    use std::sync::{Mutex, Once};
    static DIRS: Mutex<Vec<tempfile::TempDir>> = Mutex::new(Vec::new());
    static REGISTER: Once = Once::new();
    extern "C" fn remove_dirs() {
        // Dropping a `TempDir` removes it.
        if let Ok(mut dirs) = DIRS.lock() {
            dirs.clear();
        }
    }
    REGISTER.call_once(|| {
        // SAFETY: `remove_dirs` is a plain function that neither unwinds
        // (dropping a `TempDir` ignores errors) nor calls `exit`.
        assert_eq!(unsafe { libc::atexit(remove_dirs) }, 0);
    });
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().to_path_buf();
    DIRS.lock().unwrap_or_else(|e| e.into_inner()).push(dir);
    path
}
