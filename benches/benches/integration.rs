//! Whole-system overhead (issue 11, item 4): four workloads, each run
//! untraced (`plain`) and traced with the default configuration writing a
//! trace file (`pulse`), in interleaved rounds (plain, pulse, pulse, plain,
//! plain, pulse, …: the order turns every round) so that a change in the
//! machine's load, or whatever favours a round's first run, hits both
//! alike. Each round gives a ratio traced ÷ untraced of the process's CPU
//! time and of wall time (or of throughput, for the servers); the figure
//! is the median of the rounds' ratios, printed with a 95 % confidence
//! interval for it (`1.023x [1.017, 1.032]`; distribution-free, from the
//! rounds' order statistics; the range below 10 rounds). On a shared
//! machine a difference of 1 % needs a few hundred rounds to resolve.
//!
//! - `yield_storm`: 64 tasks × 40,000 `yield_now` = 2.56 M polls on 2
//!   workers: every poll is pure scheduler work, the worst case.
//! - `tcp_echo`: a loopback echo server, 32 connections of 64-byte round
//!   trips, driven by a load client in a child process (so the process CPU
//!   time measured is the server's and pulse's alone).
//! - `mixed`: 200 tasks that compute ~20–200 µs and sleep 1 ms, in turn.
//! - `resp`: a small Redis-protocol (RESP) server (SET/GET on a shared map)
//!   and its own load client in a child process: 50 connections, one
//!   request in flight each, like `redis-benchmark -P 1`.
//!
//! Then a drop check: the yield storm once more, traced with the defaults,
//! while a second process spins on a CPU (`PULSE_BENCH_HOG`, default on),
//! printing how many events were written and dropped.
//!
//! Last, with `rss` named (`-- rss`): the yield storm's peak RSS in fresh
//! processes, untraced and traced in turn, with the CPU hog running.
//!
//! Run: `cargo bench -p benches --bench integration` (7 rounds; set
//! `PULSE_BENCH_ROUNDS`; `PULSE_BENCH_QUICK=1` for 3 short rounds; name
//! workloads to run only those, e.g. `-- resp drop`). `PULSE_*` variables
//! configure the traced runs (e.g. `PULSE_RUN_QUEUE_WAIT=off`; the trace
//! goes to a file unless `PULSE_WRITER` is `memory` or `null`);
//! `PULSE_BENCH_VARIANT="PULSE_STACKS=off"` adds a third run to each round,
//! traced with those settings on top, and its own ratios and medians;
//! `PULSE_BENCH_VARIANT=untraced` makes that run untraced (an A/A test of
//! the bench itself).
//! `cargo bench` passes `--bench`; `-- --test` runs one short round.

use benches::median;
use pulse::{Config, Recorder, WriterConfig};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

const WORKERS: usize = 2;
const YIELD_TASKS: usize = 64;
const MESSAGE: usize = 64;

/// How big each workload is, per run.
#[derive(Clone, Copy)]
struct Sizes {
    yields_per_task: usize,
    echo_connections: usize,
    echo_round_trips: usize,
    mixed_tasks: usize,
    mixed_steps: usize,
    resp_connections: usize,
    resp_requests: usize,
}

fn sizes_for(short: bool) -> Sizes {
    if short {
        Sizes {
            yields_per_task: 4_000,
            echo_connections: 32,
            echo_round_trips: 200,
            mixed_tasks: 200,
            mixed_steps: 10,
            resp_connections: 50,
            resp_requests: 200,
        }
    } else {
        Sizes {
            yields_per_task: 40_000,
            echo_connections: 32,
            echo_round_trips: 2_000,
            mixed_tasks: 200,
            mixed_steps: 100,
            resp_connections: 50,
            resp_requests: 2_000,
        }
    }
}

/// CPU time of this whole process (every thread, pulse's flusher too).
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Context switches of this process so far (voluntary + involuntary, all
/// threads).
fn context_switches() -> u64 {
    // SAFETY: an all-zero `rusage` is a valid value (plain integers).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    (usage.ru_nvcsw + usage.ru_nivcsw) as u64
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(WORKERS).enable_all();
    builder
}

/// A runtime, traced (default config, trace file in the temp directory)
/// or not; the trace file is removed by [`finish`].
struct System {
    runtime: Runtime,
    guard: Option<pulse::RecordingGuard>,
    trace: Option<std::path::PathBuf>,
}

/// `PULSE_BENCH_VARIANT=untraced`: each round's third run is untraced
/// too, so the ratio of two untraced runs in the same rounds shows the
/// bench's own spread and bias (an A/A test) next to pulse's ratio.
fn variant_untraced() -> bool {
    std::env::var("PULSE_BENCH_VARIANT").is_ok_and(|v| v.trim() == "untraced")
}

/// `PULSE_BENCH_VARIANT`'s settings (`PULSE_X=value`, separated by spaces):
/// each round then also runs a third time, traced with these settings on
/// top of the environment's, so two configurations compare in one run.
fn variant() -> Vec<(String, String)> {
    if variant_untraced() {
        return Vec::new();
    }
    std::env::var("PULSE_BENCH_VARIANT")
        .unwrap_or_default()
        .split_whitespace()
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect(
                "PULSE_BENCH_VARIANT holds NAME=value pairs (e.g. PULSE_STACKS=off) or `untraced`",
            );
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// How a run is traced: not at all, with the environment's `PULSE_*`
/// settings, or with those and `PULSE_BENCH_VARIANT`'s.
#[derive(Clone, Copy, PartialEq)]
enum Tracing {
    Plain,
    Traced,
    Variant,
}

fn system(tracing: Tracing, name: &str) -> System {
    if tracing == Tracing::Plain || (tracing == Tracing::Variant && variant_untraced()) {
        return System {
            runtime: builder().build().expect("runtime"),
            guard: None,
            trace: None,
        };
    }
    let path = std::env::temp_dir().join(format!("pulse-bench-{}-{name}.bin", std::process::id()));
    // `PULSE_*` variables apply (e.g. `PULSE_RUN_QUEUE_WAIT=off`), then the
    // trace file.
    let variant = if tracing == Tracing::Variant {
        variant()
    } else {
        Vec::new()
    };
    let lookup = |name: &str| {
        variant
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into())
            .or_else(|| std::env::var_os(name))
    };
    // The flight recorder and the null writer write no file: kept as the
    // variables say (`PULSE_BENCH_VARIANT="PULSE_WRITER=memory"`).
    let in_memory = lookup("PULSE_WRITER").is_some_and(|v| v == "memory" || v == "null");
    let config =
        pulse::config::env::apply_with(Config::new(), lookup).expect("valid PULSE_* variables");
    let (config, trace) = if in_memory {
        (config, None)
    } else {
        (
            config.writer(WriterConfig::File { path: path.clone() }),
            Some(path),
        )
    };
    let (runtime, guard) = Recorder::from_config(builder(), &config).expect("traced runtime");
    System {
        runtime,
        guard: Some(guard),
        trace,
    }
}

/// What a traced run recorded: `(written, dropped, trace bytes)`.
fn finish(system: System) -> Option<(u64, u64, u64)> {
    drop(system.runtime);
    let summary = system.guard?.finish().expect("trace written");
    // No file (the flight recorder's window is dropped): 0 bytes.
    let bytes = system.trace.map_or(0, |path| {
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(&path);
        bytes
    });
    Some((summary.events_written, summary.dropped_events, bytes))
}

/// One measured run: CPU and wall time of the workload, and its own
/// throughput figure where it has one (operations per second).
struct Run {
    cpu: Duration,
    /// Of `cpu`, what pulse's own threads used (the workers' share in the
    /// hooks is not in it).
    pulse_cpu: Duration,
    /// Context switches of the process's threads during the run.
    switches: u64,
    wall: Duration,
    rate: Option<f64>,
    recorded: Option<(u64, u64, u64)>,
}

fn measure(tracing: Tracing, name: &str, work: impl FnOnce(&Runtime) -> Option<f64>) -> Run {
    let system = system(tracing, name);
    let (cpu0, pulse0, wall0) = (process_cpu(), benches::threads_cpu("pulse"), Instant::now());
    let switches0 = context_switches();
    let rate = work(&system.runtime);
    let (cpu, wall) = (process_cpu() - cpu0, wall0.elapsed());
    let switches = context_switches() - switches0;
    let pulse_cpu = benches::threads_cpu("pulse").saturating_sub(pulse0);
    let recorded = finish(system);
    Run {
        cpu,
        pulse_cpu,
        switches,
        wall,
        rate,
        recorded,
    }
}

// ---- workloads -------------------------------------------------------------

fn yield_storm(runtime: &Runtime, sizes: Sizes) -> Option<f64> {
    let yields = sizes.yields_per_task;
    runtime.block_on(async move {
        let tasks: Vec<_> = (0..YIELD_TASKS)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..yields {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("yield task");
        }
    });
    None
}

/// Spins for about `micros` of CPU.
fn compute(micros: u64) -> u64 {
    let until = Instant::now() + Duration::from_micros(micros);
    let mut x = 0u64;
    while Instant::now() < until {
        for i in 0..64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
    }
    x
}

fn mixed(runtime: &Runtime, sizes: Sizes) -> Option<f64> {
    let steps = sizes.mixed_steps;
    runtime.block_on(async move {
        let tasks: Vec<_> = (0..sizes.mixed_tasks as u64)
            .map(|i| {
                tokio::spawn(async move {
                    let mut sum = 0u64;
                    for step in 0..steps as u64 {
                        sum ^= compute(20 + (i * 37 + step * 11) % 180);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    std::hint::black_box(sum);
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("mixed task");
        }
    });
    None
}

async fn echo_server(listener: TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let mut buffer = [0u8; MESSAGE];
            while stream.read_exact(&mut buffer).await.is_ok() {
                if stream.write_all(&buffer).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// A RESP server: arrays of bulk strings, `SET k v` → `+OK`, `GET k` →
/// the value or a null bulk string, anything else → an error.
async fn resp_server(listener: TcpListener) {
    let store: Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>> = Arc::default();
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let store = store.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut read = AsyncBufReader::new(read);
            let mut line = Vec::new();
            let mut reply = Vec::new();
            loop {
                let Ok(Some(args)) = read_command(&mut read, &mut line).await else {
                    break;
                };
                reply.clear();
                match args.first().map(Vec::as_slice) {
                    Some(b"SET") if args.len() == 3 => {
                        let mut map = store.lock().expect("not poisoned");
                        map.insert(args[1].clone(), args[2].clone());
                        reply.extend_from_slice(b"+OK\r\n");
                    }
                    Some(b"GET") if args.len() == 2 => {
                        let value = store.lock().expect("not poisoned").get(&args[1]).cloned();
                        match value {
                            Some(value) => {
                                reply.extend_from_slice(format!("${}\r\n", value.len()).as_bytes());
                                reply.extend_from_slice(&value);
                                reply.extend_from_slice(b"\r\n");
                            }
                            None => reply.extend_from_slice(b"$-1\r\n"),
                        }
                    }
                    _ => reply.extend_from_slice(b"-ERR unknown command\r\n"),
                }
                if write.write_all(&reply).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn read_command(
    read: &mut AsyncBufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<Vec<Vec<u8>>>> {
    line.clear();
    if read.read_until(b'\n', line).await? == 0 {
        return Ok(None);
    }
    let count: usize = parse_header(line, b'*')?;
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        line.clear();
        read.read_until(b'\n', line).await?;
        let len: usize = parse_header(line, b'$')?;
        let mut arg = vec![0u8; len + 2];
        read.read_exact(&mut arg).await?;
        arg.truncate(len);
        args.push(arg);
    }
    Ok(Some(args))
}

fn parse_header(line: &[u8], kind: u8) -> std::io::Result<usize> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad RESP header");
    if line.first() != Some(&kind) || !line.ends_with(b"\r\n") {
        return Err(bad());
    }
    std::str::from_utf8(&line[1..line.len() - 2])
        .ok()
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)
}

/// Serves `server` on the runtime and drives it with a load client in a
/// child process; returns the client's operations per second.
fn served<F, Fut>(
    runtime: &Runtime,
    server: F,
    protocol: &str,
    connections: usize,
    requests: usize,
) -> Option<f64>
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = runtime.spawn(server(listener));
    let output = Command::new(std::env::current_exe().expect("own path"))
        .args([
            "--load-client",
            protocol,
            &address.to_string(),
            &connections.to_string(),
            &requests.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("load client runs");
    server.abort();
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim().parse().ok()
}

// ---- the load client (child process) ----------------------------------------

/// `--load-client echo|resp ADDRESS CONNECTIONS REQUESTS`: one thread per
/// connection, blocking sockets, one request in flight each; prints the
/// requests per second over all connections.
fn load_client(args: &[String]) {
    let protocol = args[0].clone();
    let address: SocketAddr = args[1].parse().expect("address");
    let connections: usize = args[2].parse().expect("connections");
    let requests: usize = args[3].parse().expect("requests");
    let start = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|c| {
            let protocol = protocol.clone();
            std::thread::spawn(move || {
                let stream = StdStream::connect(address).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                let mut buffer = [7u8; MESSAGE];
                let mut line = Vec::new();
                for i in 0..requests {
                    if protocol == "echo" {
                        writer.write_all(&buffer).expect("write");
                        reader.read_exact(&mut buffer).expect("read");
                        continue;
                    }
                    let key = format!("key:{c}:{}", i % 100);
                    let request = if i % 2 == 0 {
                        format!(
                            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$8\r\nvalue{:03}\r\n",
                            key.len(),
                            i % 1000
                        )
                    } else {
                        format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len())
                    };
                    writer.write_all(request.as_bytes()).expect("write");
                    line.clear();
                    reader.read_until(b'\n', &mut line).expect("reply");
                    if line.starts_with(b"$") && !line.starts_with(b"$-1") {
                        line.clear();
                        reader.read_until(b'\n', &mut line).expect("value");
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
    let rate = (connections * requests) as f64 / start.elapsed().as_secs_f64();
    println!("{rate}");
}

/// This process's peak resident set size (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Peak RSS of a yield storm in a fresh process, traced or not, and the
/// events it dropped.
fn rss_child(traced: bool) -> (u64, u64) {
    let output = Command::new(std::env::current_exe().expect("own path"))
        .args(["--rss", if traced { "pulse" } else { "plain" }])
        .stderr(Stdio::inherit())
        .output()
        .expect("child runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse().unwrap_or(0));
    (fields.next().unwrap_or(0), fields.next().unwrap_or(0))
}

/// A second CPU-heavy process, for the drop check.
fn hog() -> Child {
    Command::new(std::env::current_exe().expect("own path"))
        .arg("--spin")
        .stdout(Stdio::null())
        .spawn()
        .expect("hog starts")
}

// ---- main --------------------------------------------------------------------

/// The median of `values` and an approximate 95 % confidence interval for
/// it, as text: `1.023x [1.017, 1.032]`. The interval is distribution-free
/// (order statistics: the median lies between the k-th smallest and the
/// k-th largest ratio with probability ~95 % for k = n/2 - 0.98 sqrt(n)),
/// so it needs no assumption about how the machine's noise is spread;
/// below 10 rounds it is given as the range.
fn median_with_interval(values: &mut [f64], decimals: usize) -> String {
    let middle = median(values);
    let n = values.len();
    let k = (n as f64 / 2.0 - 0.98 * (n as f64).sqrt()).floor().max(0.0) as usize;
    let (low, high) = (values[k], values[n - 1 - k]);
    let kind = if n < 10 { "range " } else { "" };
    format!("{middle:.decimals$}x [{kind}{low:.decimals$}, {high:.decimals$}]")
}

/// The per-round ratios of one traced configuration to the round's plain run.
#[derive(Default)]
struct Series {
    cpu: Vec<f64>,
    wall: Vec<f64>,
    rate: Vec<f64>,
    /// Pulse's threads' CPU as a share of the plain run's CPU.
    pulse_share: Vec<f64>,
    dropped: u64,
}

impl Series {
    /// Adds a round; returns its part of the round's line.
    fn add(&mut self, label: &str, plain: &Run, traced: &Run) -> String {
        let r_cpu = traced.cpu.as_secs_f64() / plain.cpu.as_secs_f64();
        // Servers: CPU per request, and throughput loss.
        let (r_cpu, r_wall) = match (plain.rate, traced.rate) {
            (Some(p), Some(t)) => {
                let per_request = (traced.cpu.as_secs_f64() / traced.wall.as_secs_f64() / t)
                    / (plain.cpu.as_secs_f64() / plain.wall.as_secs_f64() / p);
                self.rate.push(t / p);
                (per_request, p / t)
            }
            _ => (r_cpu, traced.wall.as_secs_f64() / plain.wall.as_secs_f64()),
        };
        self.cpu.push(r_cpu);
        self.wall.push(r_wall);
        self.pulse_share
            .push(traced.pulse_cpu.as_secs_f64() / plain.cpu.as_secs_f64());
        let (written, lost, bytes) = traced.recorded.unwrap_or_default();
        self.dropped += lost;
        format!(
            "; {label} cpu {:.3}s (pulse threads {:.1} ms, {} switches) wall {:.3}s{}; cpu {r_cpu:.3}x wall {r_wall:.3}x; \
             {written} events, {lost} dropped, {:.2} B/event",
            traced.cpu.as_secs_f64(),
            traced.pulse_cpu.as_secs_f64() * 1e3,
            traced.switches,
            traced.wall.as_secs_f64(),
            traced.rate.map(|r| format!(" {r:.0}/s")).unwrap_or_default(),
            bytes as f64 / written.max(1) as f64,
        )
    }

    /// The medians, each with its 95 % interval ([`median_with_interval`]).
    fn report(&mut self, name: &str, rounds: usize) {
        let throughput = if self.rate.is_empty() {
            String::new()
        } else {
            format!(", throughput {}", median_with_interval(&mut self.rate, 4))
        };
        println!(
            "{name}: median of {rounds}: CPU {} (pulse's threads {:.2} % of plain), wall {}{throughput}, {} events dropped",
            median_with_interval(&mut self.cpu, 3),
            median(&mut self.pulse_share) * 100.0,
            median_with_interval(&mut self.wall, 3),
            self.dropped
        );
    }
}

type Workload = (&'static str, fn(&Runtime, Sizes) -> Option<f64>);

fn echo(runtime: &Runtime, sizes: Sizes) -> Option<f64> {
    served(
        runtime,
        echo_server,
        "echo",
        sizes.echo_connections,
        sizes.echo_round_trips,
    )
}

fn resp(runtime: &Runtime, sizes: Sizes) -> Option<f64> {
    served(
        runtime,
        resp_server,
        "resp",
        sizes.resp_connections,
        sizes.resp_requests,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--load-client") {
        return load_client(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("--rss") {
        // One yield storm, traced or not, then this process's peak RSS.
        let tracing = if args.get(1).map(String::as_str) == Some("pulse") {
            Tracing::Traced
        } else {
            Tracing::Plain
        };
        let run = measure(tracing, "rss", |rt| yield_storm(rt, sizes_for(false)));
        let (_, lost, _) = run.recorded.unwrap_or_default();
        println!("{} {lost}", peak_rss_kib());
        return;
    }
    if args.first().map(String::as_str) == Some("--spin") {
        loop {
            std::hint::black_box(compute(10_000));
        }
    }
    let test = args.iter().any(|a| a == "--test");
    let quick = benches::quick() || test;
    let rounds: usize = if test {
        1
    } else {
        std::env::var("PULSE_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(if quick { 3 } else { 7 })
    };
    let sizes = sizes_for(quick);
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let workloads: [Workload; 4] = [
        ("yield_storm", yield_storm),
        ("tcp_echo", echo),
        ("mixed", mixed),
        ("resp", resp),
    ];
    println!(
        "integration: {rounds} interleaved rounds, {} clock, load average at start {}",
        pulse::bench::timestamp_clock(),
        load_average()
    );
    for (name, work) in workloads {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let with_variant = variant_untraced() || !variant().is_empty();
        let (mut traced_series, mut variant_series) = (Series::default(), Series::default());
        for round in 0..rounds {
            // With a variant, its run and the default traced run swap places
            // every other round.
            let traced_runs = || {
                if with_variant && round % 2 == 1 {
                    let v = measure(Tracing::Variant, name, |rt| work(rt, sizes));
                    let t = measure(Tracing::Traced, name, |rt| work(rt, sizes));
                    (t, Some(v))
                } else {
                    let t = measure(Tracing::Traced, name, |rt| work(rt, sizes));
                    let v =
                        with_variant.then(|| measure(Tracing::Variant, name, |rt| work(rt, sizes)));
                    (t, v)
                }
            };
            // The plain run goes first in even rounds and last in odd ones,
            // so that whatever favours a round's first or second run (the
            // host's state, caches, the previous run's trace being written
            // back) falls on both sides of the median.
            let (plain, (traced, variant_run)) = if round % 2 == 0 {
                let plain = measure(Tracing::Plain, name, |rt| work(rt, sizes));
                (plain, traced_runs())
            } else {
                let traced = traced_runs();
                (measure(Tracing::Plain, name, |rt| work(rt, sizes)), traced)
            };
            let mut line = format!(
                "  {name} round {round}: plain cpu {:.3}s ({} switches) wall {:.3}s{}",
                plain.cpu.as_secs_f64(),
                plain.switches,
                plain.wall.as_secs_f64(),
                plain.rate.map(|r| format!(" {r:.0}/s")).unwrap_or_default(),
            );
            line += &traced_series.add("pulse", &plain, &traced);
            if let Some(run) = &variant_run {
                line += &variant_series.add("variant", &plain, run);
            }
            println!("{line}; load {}", load_average());
        }
        traced_series.report(name, rounds);
        if with_variant {
            let variant = std::env::var("PULSE_BENCH_VARIANT").unwrap_or_default();
            variant_series.report(&format!("{name} with {variant}"), rounds);
        }
    }
    if filter.iter().any(|f| f.contains("rss")) {
        // Memory: peak RSS of the yield storm in fresh processes, plain and
        // traced in turn, while a CPU hog runs (the backlog fills most then).
        let mut child = hog();
        let (mut plain, mut traced) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let (p, _) = rss_child(false);
            let (t, lost) = rss_child(true);
            println!(
                "  rss round {round}: plain {p} KiB, pulse {t} KiB (+{} KiB), {lost} dropped; load {}",
                t as i64 - p as i64,
                load_average()
            );
            plain.push(p as f64);
            traced.push(t as f64);
        }
        let _ = child.kill();
        let _ = child.wait();
        let (p, t) = (median(&mut plain), median(&mut traced));
        println!(
            "rss (yield storm, {WORKERS} workers, with a CPU hog): median peak plain {p:.0} KiB, \
             pulse {t:.0} KiB: +{:.0} KiB",
            t - p
        );
    }
    if filter.is_empty() || filter.iter().any(|f| f.contains("drop")) {
        let hogging = std::env::var("PULSE_BENCH_HOG").map_or(true, |v| v != "0");
        let mut child = hogging.then(hog);
        let run = measure(Tracing::Traced, "drops", |rt| {
            yield_storm(rt, sizes_for(test))
        });
        if let Some(child) = &mut child {
            let _ = child.kill();
            let _ = child.wait();
        }
        let (written, lost, _) = run.recorded.unwrap_or_default();
        println!(
            "drop check (yield storm, defaults, {} CPU hog): {written} events written, {lost} dropped, wall {:.3}s, load {}",
            if hogging { "with a" } else { "without" },
            run.wall.as_secs_f64(),
            load_average()
        );
    }
}
