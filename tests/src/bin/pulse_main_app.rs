//! A program using `#[pulse::main]` for the behaviour tests in
//! `tests/macro_main.rs`. It runs a small workload, then ends the way
//! `argv[1]` says: `ok` (returns `Ok`), `err` (returns `Err`), or `panic`
//! (panics in the body).
//!
//! `flush_ms` is a minute, far longer than a run, so the events in its
//! trace can only have been written by the guard's final flush.

use std::error::Error;
use std::time::Duration;

#[pulse::main(
    worker_threads = 2,
    flush_ms = 60_000,
    path = "app-trace.bin",
    max_file_size = "1MiB",
    max_total_size = "8MiB",
    buffer_events = 256
)]
async fn main() -> Result<(), Box<dyn Error>> {
    let ending = std::env::args().nth(1).unwrap_or_default();
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            tokio::spawn(async move {
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                i
            })
        })
        .collect();
    let mut sum = 0;
    for task in tasks {
        sum += task.await?;
    }
    assert_eq!(sum, (0..TASKS).sum::<u64>());
    match ending.as_str() {
        "ok" => Ok(()),
        "err" => Err("the body returned an error".into()),
        "panic" => panic!("the body panicked"),
        other => Err(format!("unknown ending {other:?}: use ok, err or panic").into()),
    }
}

/// Tasks spawned by the workload; the tests expect at least this many polls.
const TASKS: u64 = 40;
