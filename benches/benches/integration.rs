//! Whole-system overhead on real workloads, each run three ways on the same
//! 2-worker multi-thread runtime: `plain` (Tokio alone), `pulse_null`
//! (traced, events recorded and discarded by a `NullWriter`) and
//! `pulse_file` (traced, written to a trace file in the temp directory).
//! The ratio traced/plain is the overhead; compare figures from one run.
//!
//! - `yield_storm`: 64 tasks that only yield, 200 times each: every poll is
//!   pure scheduler work, the worst case for a recorder (DESIGN.md: ≤ 1.3×).
//! - `tcp_echo`: a loopback TCP echo server with 64 connections, each
//!   making 20 round trips of 64 bytes per iteration: a realistic workload
//!   (DESIGN.md: ≤ 1 %). After each variant the bench prints the
//!   round-trip latency p50/p99 over all its samples.
//!
//! Throughput is task polls (yield) or round trips (echo) per second. After
//! each traced variant the bench prints what the recording wrote and
//! dropped.
//!
//! Run: `cargo bench -p benches --bench integration`; smoke run:
//! `PULSE_BENCH_QUICK=1 cargo bench -p benches --bench integration`.

use pulse::{Config, Recorder, RecordingGuard, WriterConfig};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const WORKERS: usize = 2;
const YIELD_TASKS: usize = 64;
const YIELDS_PER_TASK: usize = 200;
const CONNECTIONS: usize = 64;
const ROUND_TRIPS: usize = 20;
const MESSAGE: usize = 64;

/// A runtime under test, traced or not, and what it measured.
struct System {
    label: &'static str,
    runtime: Option<Runtime>,
    guard: Option<RecordingGuard>,
    trace: Option<PathBuf>,
    connections: Mutex<Vec<TcpStream>>,
    /// Round-trip latencies in nanoseconds, over every sample.
    latencies: Mutex<Vec<u64>>,
}

fn builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(WORKERS).enable_all();
    builder
}

fn system(label: &'static str, writer: Option<WriterConfig>) -> System {
    let (runtime, guard, trace) = match writer {
        None => (builder().build().expect("runtime"), None, None),
        Some(writer) => {
            let trace = match &writer {
                WriterConfig::File { path } => Some(path.clone()),
                _ => None,
            };
            let config = Config::new().writer(writer);
            let (runtime, guard) =
                Recorder::from_config(builder(), &config).expect("traced runtime");
            (runtime, Some(guard), trace)
        }
    };
    System {
        label,
        runtime: Some(runtime),
        guard,
        trace,
        connections: Mutex::new(Vec::new()),
        latencies: Mutex::new(Vec::new()),
    }
}

fn trace_file(name: &str) -> WriterConfig {
    let path = std::env::temp_dir().join(format!("pulse-bench-{}-{name}.bin", std::process::id()));
    WriterConfig::File { path }
}

fn plain() -> System {
    system("plain", None)
}

fn pulse_null() -> System {
    system("pulse_null", Some(WriterConfig::Null))
}

fn pulse_file() -> System {
    system("pulse_file", Some(trace_file("yield")))
}

/// An echo server on `system`'s runtime and [`CONNECTIONS`] clients
/// connected to it.
fn with_echo_server(system: System) -> System {
    let runtime = system.runtime.as_ref().expect("running");
    let connections = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; MESSAGE];
                    while stream.read_exact(&mut buffer).await.is_ok() {
                        if stream.write_all(&buffer).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let mut connections = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let stream = TcpStream::connect(address).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            connections.push(stream);
        }
        connections
    });
    *system.connections.lock().expect("not poisoned") = connections;
    system
}

fn echo_plain() -> System {
    with_echo_server(system("plain", None))
}

fn echo_pulse_null() -> System {
    with_echo_server(system("pulse_null", Some(WriterConfig::Null)))
}

fn echo_pulse_file() -> System {
    with_echo_server(system("pulse_file", Some(trace_file("echo"))))
}

/// Stops the runtime (workers hand over their last events), then the
/// recording, and reports.
fn finish(mut system: System) {
    drop(system.runtime.take());
    if let Some(guard) = system.guard.take() {
        let summary = guard.finish().expect("trace written");
        println!(
            "pulse[integration/{}]: {} events written, {} dropped",
            system.label, summary.events_written, summary.dropped_events
        );
    }
    if let Some(path) = &system.trace {
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!(
            "pulse[integration/{}]: trace file {bytes} bytes",
            system.label
        );
        let _ = std::fs::remove_file(path);
    }
    let mut latencies = system.latencies.into_inner().expect("not poisoned");
    if !latencies.is_empty() {
        latencies.sort_unstable();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64 / 1e3;
        println!(
            "pulse[integration/{}]: round trip p50 {:.1} µs, p99 {:.1} µs ({} round trips)",
            system.label,
            at(0.50),
            at(0.99),
            latencies.len()
        );
    }
}

async fn yield_storm() {
    let tasks: Vec<_> = (0..YIELD_TASKS)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..YIELDS_PER_TASK {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("yield task");
    }
}

fn run_yield_storm(system: &System) {
    let runtime = system.runtime.as_ref().expect("running");
    runtime.block_on(yield_storm());
}

/// Every connection makes [`ROUND_TRIPS`] round trips, concurrently.
fn run_echo(system: &System) {
    let runtime = system.runtime.as_ref().expect("running");
    let connections = std::mem::take(&mut *system.connections.lock().expect("not poisoned"));
    let (connections, latencies) = runtime.block_on(async {
        let clients: Vec<_> = connections
            .into_iter()
            .map(|mut stream| {
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(ROUND_TRIPS);
                    let mut buffer = [7u8; MESSAGE];
                    for _ in 0..ROUND_TRIPS {
                        let sent = Instant::now();
                        stream.write_all(&buffer).await.expect("write");
                        stream.read_exact(&mut buffer).await.expect("read");
                        latencies.push(sent.elapsed().as_nanos() as u64);
                    }
                    (stream, latencies)
                })
            })
            .collect();
        let mut connections = Vec::with_capacity(CONNECTIONS);
        let mut latencies = Vec::with_capacity(CONNECTIONS * ROUND_TRIPS);
        for client in clients {
            let (stream, mine) = client.await.expect("client");
            connections.push(stream);
            latencies.extend(mine);
        }
        (connections, latencies)
    });
    *system.connections.lock().expect("not poisoned") = connections;
    system
        .latencies
        .lock()
        .expect("not poisoned")
        .extend(latencies);
}

/// `yield_storm/{plain,pulse_null,pulse_file}`; throughput: 64 tasks ×
/// (200 yields + 1) = 12864 polls per iteration.
mod yield_storm {
    use super::*;

    #[pulse::bench(setup = super::plain, teardown = finish, group = "yield_storm", elements = 12864)]
    pub fn plain(system: &System) {
        run_yield_storm(system);
    }

    #[pulse::bench(setup = super::pulse_null, teardown = finish, group = "yield_storm", elements = 12864)]
    pub fn pulse_null(system: &System) {
        run_yield_storm(system);
    }

    #[pulse::bench(setup = super::pulse_file, teardown = finish, group = "yield_storm", elements = 12864)]
    pub fn pulse_file(system: &System) {
        run_yield_storm(system);
    }
}

/// `tcp_echo/{plain,pulse_null,pulse_file}`; throughput: 64 connections ×
/// 20 round trips = 1280 round trips per iteration.
mod tcp_echo {
    use super::*;

    #[pulse::bench(setup = echo_plain, teardown = finish, group = "tcp_echo", elements = 1280)]
    pub fn plain(system: &System) {
        run_echo(system);
    }

    #[pulse::bench(setup = echo_pulse_null, teardown = finish, group = "tcp_echo", elements = 1280)]
    pub fn pulse_null(system: &System) {
        run_echo(system);
    }

    #[pulse::bench(setup = echo_pulse_file, teardown = finish, group = "tcp_echo", elements = 1280)]
    pub fn pulse_file(system: &System) {
        run_echo(system);
    }
}

pulse::bench_main!(
    yield_storm::plain,
    yield_storm::pulse_null,
    yield_storm::pulse_file,
    tcp_echo::plain,
    tcp_echo::pulse_null,
    tcp_echo::pulse_file,
);
