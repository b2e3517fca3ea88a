//! A program traced through `Recorder`, for the writer-fault tests in
//! `tests/reliability_writer_faults.rs`: they run it as a child process,
//! break its trace writer in one way or another, and check its results,
//! its exit status and what pulse printed on stderr.
//!
//! ```text
//! reliability_app WRITER [--pause]
//! ```
//!
//! WRITER is one of
//!
//! - `untraced`: no pulse at all (the reference results);
//! - `file:PATH`: a `SimpleBinaryWriter` (e.g. `file:/dev/full`);
//! - `rotating:BASE:MAX_FILE:MAX_TOTAL`: a `RotatingWriter`;
//! - `failing:N`: a writer whose `write_batch` fails from the N+1-th call on;
//! - `slow:PATH:MS`: a `SimpleBinaryWriter` that sleeps MS ms per batch.
//!
//! Two more modes end the runtime in ways only `Recorder` users can,
//! for `tests/reliability_lifecycle.rs`; both write a `SimpleBinaryWriter`
//! trace to PATH and print `polls N`, the polls made on worker threads
//! before shutdown began (see `reliability_main.rs` for how they are
//! counted):
//!
//! - `shutdown-timeout:PATH`: one task is stuck in a 60 s blocking poll and
//!   a `spawn_blocking` closure sleeps 60 s when the runtime is shut down
//!   with `shutdown_timeout(300 ms)`; then the guard is dropped and the
//!   program exits without waiting for either;
//! - `guard-first:PATH`: the guard is dropped before the runtime (as an
//!   early `?` return does when both are bound by one `let`).
//!
//! The program runs two phases of a deterministic workload. With `--pause`
//! it prints `paused` after the first (and after a flush) and waits for a
//! line on stdin, so the test can break something mid-run. It prints
//! `result N` (the same for every WRITER), then drops the runtime and the
//! guard (whose drop prints pulse's shutdown summary on stderr), then
//! prints `dropped N` and `write_error MESSAGE|none` from the guard's handle.

use pulse::{Config, RecordedEvent, Recorder, RotatingWriter, SimpleBinaryWriter, TraceWriter};
use std::future::Future;
use std::io::{self, BufRead};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Polls of [`Counted`] futures made on worker threads.
static POLLS: AtomicU64 = AtomicU64::new(0);

/// A future that counts its polls on worker threads.
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

/// Fails every `write_batch` after the first `ok` calls.
struct Failing {
    ok: u64,
    calls: u64,
}

impl TraceWriter for Failing {
    fn write_batch(&mut self, _events: &[RecordedEvent]) -> io::Result<()> {
        self.calls += 1;
        if self.calls > self.ok {
            return Err(io::Error::other("the test writer failed on purpose"));
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A real file writer behind a slow device.
struct Slow {
    inner: SimpleBinaryWriter,
    delay: Duration,
}

impl TraceWriter for Slow {
    fn begin(&mut self, metadata: &pulse_trace::TraceMetadata) -> io::Result<()> {
        self.inner.begin(metadata)
    }
    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
        std::thread::sleep(self.delay);
        self.inner.write_batch(events)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
    fn finish(&mut self) -> io::Result<()> {
        self.inner.finish()
    }
}

fn writer(spec: &str) -> Option<Box<dyn TraceWriter>> {
    let parts: Vec<&str> = spec.split(':').collect();
    let number = |s: &str| s.parse::<u64>().expect("a whole number");
    Some(match parts.as_slice() {
        ["untraced"] => return None,
        ["file", path] => Box::new(SimpleBinaryWriter::new(path).expect("create the trace")),
        ["rotating", base, max_file, max_total] => Box::new(
            RotatingWriter::new(base, number(max_file), number(max_total))
                .expect("create the trace"),
        ),
        ["failing", ok] => Box::new(Failing {
            ok: number(ok),
            calls: 0,
        }),
        ["slow", path, millis] => Box::new(Slow {
            inner: SimpleBinaryWriter::new(path).expect("create the trace"),
            delay: Duration::from_millis(number(millis)),
        }),
        _ => panic!("unknown writer {spec:?}"),
    })
}

/// Spawns `tasks` tasks that each compute, yield and sleep; returns the sum
/// of their results, which depends only on the arguments.
async fn phase(seed: u64, tasks: u64, yields: u64) -> u64 {
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            tokio::spawn(Counted(async move {
                let mut acc = seed ^ i;
                for j in 0..yields {
                    acc = acc.wrapping_mul(6364136223846793005).wrapping_add(j);
                    tokio::task::yield_now().await;
                    if j % 50 == 0 {
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                }
                acc
            }))
        })
        .collect();
    let mut sum = 0u64;
    for handle in handles {
        sum = sum.wrapping_add(handle.await.expect("task"));
    }
    sum
}

/// The `shutdown-timeout` and `guard-first` modes.
fn lifecycle(mode: &str, path: &str) {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let config = Config::new().flush_ms(60_000);
    let writer = Box::new(SimpleBinaryWriter::new(path).expect("create the trace"));
    let (runtime, guard) =
        Recorder::build_with_config(builder, writer, &config).expect("start tracing");
    runtime.block_on(phase(3, 20, 100));
    match mode {
        "shutdown-timeout" => {
            let stuck = Arc::new(AtomicBool::new(false));
            let flag = stuck.clone();
            runtime.spawn(Counted(async move {
                flag.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(60));
            }));
            runtime.spawn_blocking(|| std::thread::sleep(Duration::from_secs(60)));
            while !stuck.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            println!("polls {}", POLLS.load(Ordering::SeqCst));
            runtime.shutdown_timeout(Duration::from_millis(300));
            drop(guard);
        }
        "guard-first" => {
            println!("polls {}", POLLS.load(Ordering::SeqCst));
            drop(guard);
            drop(runtime);
        }
        _ => unreachable!(),
    }
    println!("done");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let spec = args.first().map_or("untraced", String::as_str);
    if let Some((mode @ ("shutdown-timeout" | "guard-first"), path)) = spec.split_once(':') {
        return lifecycle(mode, path);
    }
    let pause = args.iter().any(|a| a == "--pause");

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let config = Config::new()
        .flush_ms(10)
        .buffer_events(256)
        .max_pending_events(4096);
    let (runtime, guard) = match writer(spec) {
        None => (builder.build().expect("runtime"), None),
        Some(writer) => {
            let (runtime, guard) =
                Recorder::build_with_config(builder, writer, &config).expect("start tracing");
            (runtime, Some(guard))
        }
    };
    let handle = guard.as_ref().map(|guard| guard.handle());

    let first = runtime.block_on(phase(1, 40, 300));
    if pause {
        if let Some(handle) = &handle {
            handle.flush();
        }
        // Let the flusher write the first phase before the test acts.
        std::thread::sleep(Duration::from_millis(100));
        println!("paused");
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line).expect("stdin");
    }
    let second = runtime.block_on(phase(2, 40, 300));
    println!("result {}", first.wrapping_add(second));

    drop(runtime);
    drop(guard);
    if let Some(handle) = handle {
        println!("dropped {}", handle.dropped_events());
        println!(
            "write_error {}",
            handle.write_error().unwrap_or_else(|| "none".to_owned())
        );
    }
}
