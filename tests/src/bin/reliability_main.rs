//! A `#[pulse::main]` program for the lifecycle tests in
//! `tests/reliability_lifecycle.rs`: `argv[1]` picks how the run ends.
//!
//! | case | what happens |
//! |---|---|
//! | `ok` | the workload, then `Ok(())` |
//! | `err` | the workload, then `Err(..)` (exit status 1) |
//! | `panic` | the workload, then a panic in the body (exit status 101) |
//! | `task-panic` | the workload, plus a task that panics inside a poll; the body goes on |
//! | `pending` | the workload, plus tasks still pending, and one inside a long poll, when the runtime is dropped |
//! | `blocking` | the workload, plus `spawn_blocking` closures that spawn tasks |
//!
//! Every task future is wrapped in [`Counted`], which counts the polls made
//! on worker threads. Before ending, the body prints `polls N` once no task
//! can be polled again, so the test can compare N with the PollStart and
//! PollEnd records in the trace: every poll made before shutdown must be
//! there. `flush_ms` is a minute, longer than any run: the events can only
//! reach the file through the hand-overs at shutdown and the final flush.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// Polls of [`Counted`] futures made on worker threads.
static POLLS: AtomicU64 = AtomicU64::new(0);

/// A future that counts its polls on worker threads (the threads pulse
/// records; a `block_on` caller or blocking-pool thread has no worker
/// index).
struct Counted<F>(F);

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if tokio::runtime::worker_index().is_some() {
            POLLS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: `self.0` is never moved out of the pinned `Counted`.
        unsafe { self.map_unchecked_mut(|c| &mut c.0) }.poll(cx)
    }
}

fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(Counted(future))
}

/// Tasks that yield, sleep and wake each other; returns their checksum.
async fn workload() -> Result<u64, Box<dyn Error>> {
    let tasks: Vec<_> = (0..30u64)
        .map(|i| {
            spawn(async move {
                let mut acc = i;
                for j in 0..20 {
                    acc = acc.wrapping_mul(31).wrapping_add(j);
                    tokio::task::yield_now().await;
                    if j % 7 == 0 {
                        tokio::time::sleep(Duration::from_micros(300)).await;
                    }
                }
                acc
            })
        })
        .collect();
    let mut sum = 0u64;
    for task in tasks {
        sum = sum.wrapping_add(task.await?);
    }
    Ok(sum)
}

#[pulse::main(
    worker_threads = 2,
    flush_ms = 60_000,
    writer = "file",
    path = "main-trace.bin",
    buffer_events = 128
)]
async fn main() -> Result<(), Box<dyn Error>> {
    let case = std::env::args().nth(1).unwrap_or_default();
    let sum = workload().await?;
    println!("checksum {sum}");
    match case.as_str() {
        "ok" | "err" | "panic" => {}
        "task-panic" => {
            let task = spawn(async {
                tokio::task::yield_now().await;
                panic!("a task panicked on purpose");
            });
            let err = task.await.expect_err("the task panicked");
            assert!(err.is_panic());
            // The runtime and pulse go on after the panic.
            workload().await?;
        }
        "pending" => {
            // Tasks that end up waiting forever; each says so from inside
            // its last poll, after that poll was counted.
            let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
            for _ in 0..10 {
                let ready = ready_tx.clone();
                spawn(async move {
                    tokio::task::yield_now().await;
                    ready.send(()).expect("the body waits");
                    std::future::pending::<()>().await;
                });
            }
            // And one still inside a 100 ms poll when the body returns: the
            // runtime's drop waits for it, and its PollEnd must be kept.
            let ready = ready_tx.clone();
            spawn(async move {
                tokio::task::yield_now().await;
                ready.send(()).expect("the body waits");
                let until = std::time::Instant::now() + Duration::from_millis(100);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            });
            for _ in 0..11 {
                ready_rx.recv().await.expect("a pending task");
            }
        }
        "blocking" => {
            let handles: Vec<_> = (0..8u64)
                .map(|i| {
                    tokio::task::spawn_blocking(move || {
                        std::thread::sleep(Duration::from_millis(2));
                        // Work spawned from a blocking thread runs on the
                        // workers and is recorded there.
                        let runtime = tokio::runtime::Handle::current();
                        let inner = runtime.spawn(Counted(async move {
                            tokio::task::yield_now().await;
                            i * 2
                        }));
                        runtime.block_on(inner).expect("inner task") + 1
                    })
                })
                .collect();
            let mut total = 0;
            for handle in handles {
                total += handle.await?;
            }
            assert_eq!(total, (0..8).map(|i| i * 2 + 1).sum::<u64>());
        }
        other => return Err(format!("unknown case {other:?}").into()),
    }
    // No counted task can be polled again: finished, or pending forever.
    println!("polls {}", POLLS.load(Ordering::SeqCst));
    match case.as_str() {
        "err" => Err("the body returned an error".into()),
        "panic" => panic!("the body panicked on purpose"),
        _ => Ok(()),
    }
}
