//! A `#[pulse::main]` program with the in-memory flight recorder for
//! `tests/flight_recorder.rs`: tasks poll without pause; SIGUSR2 dumps;
//! `argv[1] = "block"` also blocks one poll for 100 ms after 300 ms, which
//! `dump_on = "poll>50ms"` turns into a dump 300 ms later; `"panic"` has a
//! task panic after 200 ms (Tokio catches it; the program goes on).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static POLLS: AtomicU64 = AtomicU64::new(0);

#[pulse::main(
    worker_threads = 2,
    flush_ms = 20,
    writer = "memory",
    path = "flight.bin",
    memory_seconds = 2,
    dump_on = "poll>50ms",
    dump_after_ms = 300
)]
async fn main() {
    let case = std::env::args().nth(1).unwrap_or_default();
    for _ in 0..2 {
        tokio::spawn(async {
            loop {
                POLLS.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
    }
    if case == "block" {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::spawn(async {
            println!("blocking");
            // A blocking call inside a poll: what dump_on looks for.
            std::thread::sleep(Duration::from_millis(100));
            println!("unblocked");
        });
    }
    if case == "panic" {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let task = tokio::spawn(async { panic!("a task panicked on purpose") });
        assert!(task.await.unwrap_err().is_panic());
        println!("panicked");
    }
    loop {
        println!("polls {}", POLLS.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
