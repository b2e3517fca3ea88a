//! A `#[pulse::main]` server under load for `tests/signals.rs`: tasks poll
//! without pause and count their polls on worker threads; the body prints
//! `polls N` every 20 ms, so the test knows a lower bound of the polls
//! made before it sends a signal. `flush_ms` is a minute: events reach the
//! file only through the final flush (signal, or shutdown).
//!
//! `argv[1]`:
//!
//! | case | the program's own signal handling |
//! |---|---|
//! | `default` | none: the signal's default action ends it |
//! | `handled` | `tokio::signal` for SIGINT, SIGTERM and SIGHUP: prints `handled SIG`, stops the load and returns `Ok` |

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

static POLLS: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicBool = AtomicBool::new(false);

/// A task that yields forever (until STOP), counting its polls.
async fn busy() {
    loop {
        if tokio::runtime::worker_index().is_some() {
            POLLS.fetch_add(1, Ordering::SeqCst);
        }
        if STOP.load(Ordering::SeqCst) {
            return;
        }
        tokio::task::yield_now().await;
    }
}

async fn run(case: &str) {
    for _ in 0..4 {
        tokio::spawn(busy());
    }
    let report = async {
        loop {
            println!("polls {}", POLLS.load(Ordering::SeqCst));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if case == "handled" {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).unwrap();
        let mut hangup = signal(SignalKind::hangup()).unwrap();
        let name = tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
            _ = hangup.recv() => "SIGHUP",
            () = report => unreachable!(),
        };
        STOP.store(true, Ordering::SeqCst);
        println!("handled {name}");
    } else {
        report.await;
    }
}

#[pulse::main(
    worker_threads = 2,
    flush_ms = 60_000,
    writer = "file",
    path = "signals-trace.bin"
)]
async fn main() {
    let case = std::env::args().nth(1).unwrap_or_default();
    run(&case).await;
}
