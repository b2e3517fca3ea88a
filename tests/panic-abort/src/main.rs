//! A `#[pulse::main]` program that panics inside a task, for
//! `tests/tests/panic_abort.rs`, which builds it with `panic = "abort"`
//! (the workspace's `panic-abort` profile): the panic ends the process with
//! SIGABRT, and the trace must still hold every poll counted before it.
//!
//! Four tasks yield without pause and count their polls on worker threads.
//! `flush_ms` is a minute, so events reach the file only through the flush
//! pulse's panic hook makes before the abort. After 20,000 polls a fifth
//! task prints `polls N` (a lower bound of the polls made so far) and
//! panics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static POLLS: AtomicU64 = AtomicU64::new(0);

/// A task that yields forever, counting its polls.
async fn busy() {
    loop {
        if tokio::runtime::worker_index().is_some() {
            POLLS.fetch_add(1, Ordering::SeqCst);
        }
        tokio::task::yield_now().await;
    }
}

#[pulse::main(
    worker_threads = 2,
    flush_ms = 60_000,
    writer = "file",
    path = "abort-trace.bin"
)]
async fn main() {
    for _ in 0..4 {
        tokio::spawn(busy());
    }
    let panicking = tokio::spawn(async {
        while POLLS.load(Ordering::SeqCst) < 20_000 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!("polls {}", POLLS.load(Ordering::SeqCst));
        panic!("deliberate panic for the panic=abort test");
    });
    // Not reached with `panic = "abort"`: the panic aborts the process.
    let _ = panicking.await;
}
