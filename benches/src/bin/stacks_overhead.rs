//! What stacks of long polls cost (issue 16), as ratios to runs measured in
//! the same process, interleaved round by round so machine load hits every
//! variant alike. CPU time is the whole process's (`getrusage`: workers,
//! the flusher/sampler and the `pulse-stacks` symbolizer thread).
//!
//! 1. `echo`: a loopback TCP echo (64 connections × 200 round trips of 64
//!    bytes): short polls only, so stacks must cost nothing but the
//!    sampler's peek. Variants: plain Tokio, pulse with `stacks(false)`,
//!    pulse with stacks on (default), both writing a trace file. The
//!    runtime is built and left to settle 1 s before the timed phase; the
//!    stacks the traces hold (polls that a loaded machine stretched past
//!    the threshold) are counted.
//! 2. `startup`: build the runtime, idle 300 ms, drop it: the one-time cost
//!    of loading unwind tables and parsing the first line tables.
//! 3. `long polls`: 8 polls blocked 50 ms in `std::thread::sleep` and 8
//!    computing ~50 ms, stacks off vs on (trace file): the extra CPU per
//!    captured stack.
//!
//! Run: `cargo run --profile bench -p benches --bin stacks_overhead [rounds]`.

use pulse::{Config, Recorder, WriterConfig};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CONNECTIONS: usize = 64;
const ROUND_TRIPS: usize = 200;
const MESSAGE: usize = 64;

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Plain,
    StacksOff,
    StacksOn,
}

impl Variant {
    const ALL: [Variant; 3] = [Variant::Plain, Variant::StacksOff, Variant::StacksOn];
    fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::StacksOff => "pulse, stacks off",
            Variant::StacksOn => "pulse, stacks on",
        }
    }
}

/// Process CPU time (user + system, all threads).
fn process_cpu() -> Duration {
    // SAFETY: `usage` is a valid rusage to write.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    builder
}

fn runtime(
    variant: Variant,
    writer: WriterConfig,
) -> (tokio::runtime::Runtime, Option<pulse::RecordingGuard>) {
    match variant {
        Variant::Plain => (builder().build().expect("runtime"), None),
        _ => {
            let config = Config::new()
                .writer(writer)
                .stacks(variant == Variant::StacksOn);
            let (rt, guard) = Recorder::from_config(builder(), &config).expect("recorder");
            (rt, Some(guard))
        }
    }
}

/// One echo run: (cpu, wall) of the timed phase, stacks recorded.
fn echo(
    variant: Variant,
    dir: &std::path::Path,
    round: usize,
) -> (Duration, Duration, u64, [Duration; 2]) {
    let path = dir.join(format!("echo-{round}-{}.bin", variant as u8));
    let (rt, guard) = runtime(variant, WriterConfig::File { path: path.clone() });
    let connections = rt.block_on(async {
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
        let mut connections = Vec::new();
        for _ in 0..CONNECTIONS {
            let stream = TcpStream::connect(address).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            connections.push(stream);
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        connections
    });
    let bg0 = [
        benches::threads_cpu("pulse-flusher"),
        benches::threads_cpu("pulse-stacks"),
    ];
    let (cpu0, wall0) = (process_cpu(), Instant::now());
    rt.block_on(async {
        let clients: Vec<_> = connections
            .into_iter()
            .map(|mut stream| {
                tokio::spawn(async move {
                    let mut buffer = [7u8; MESSAGE];
                    for _ in 0..ROUND_TRIPS {
                        stream.write_all(&buffer).await.expect("write");
                        stream.read_exact(&mut buffer).await.expect("read");
                    }
                })
            })
            .collect();
        for client in clients {
            client.await.expect("client");
        }
    });
    let (cpu, wall) = (process_cpu() - cpu0, wall0.elapsed());
    let background = [
        benches::threads_cpu("pulse-flusher").saturating_sub(bg0[0]),
        benches::threads_cpu("pulse-stacks").saturating_sub(bg0[1]),
    ];
    drop(rt);
    drop(guard);
    (cpu, wall, count_stacks(&path), background)
}

fn count_stacks(path: &std::path::Path) -> u64 {
    let Ok(mut reader) = pulse::trace::TraceReader::open(path) else {
        return 0;
    };
    let mut stacks = 0;
    while let Some(event) = reader.next_event().expect("trace") {
        if event.event_type() == pulse::EventType::StackSample {
            stacks += 1;
        }
    }
    stacks
}

/// Build, idle 300 ms, drop: CPU of the whole life.
fn startup(variant: Variant) -> Duration {
    let cpu0 = process_cpu();
    let (rt, guard) = runtime(variant, WriterConfig::Null);
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
    drop(rt);
    drop(guard);
    process_cpu() - cpu0
}

#[inline(never)]
fn spin(for_how_long: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < for_how_long {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
    x
}

/// Long polls with a trace file: (cpu, stacks recorded).
fn long_polls(variant: Variant, dir: &std::path::Path, round: usize) -> (Duration, u64) {
    let path = dir.join(format!("long-{round}-{}.bin", variant as u8));
    let cpu0 = process_cpu();
    let (rt, guard) = runtime(variant, WriterConfig::File { path: path.clone() });
    rt.block_on(async {
        for i in 0..16 {
            tokio::spawn(async move {
                if i % 2 == 0 {
                    std::thread::sleep(Duration::from_millis(50));
                } else {
                    spin(Duration::from_millis(50));
                }
            })
            .await
            .expect("task");
        }
    });
    drop(rt);
    drop(guard);
    let cpu = process_cpu() - cpu0;
    (cpu, count_stacks(&path))
}

fn median(values: Vec<Duration>) -> Duration {
    quantile(values, 2)
}

/// The value at `1/of` ... : `quantile(v, 4)` is the lower quartile,
/// `quantile(v, 2)` the median.
fn quantile(mut values: Vec<Duration>, of: usize) -> Duration {
    values.sort();
    values[values.len() / of]
}

fn upper_quartile(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() * 3 / 4]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let dir = std::env::temp_dir().join(format!("pulse-stacks-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut echo_cpu: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    let mut echo_wall: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    let mut start_cpu: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    let mut long_cpu: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    let mut stacks = 0u64;
    let mut echo_stacks = 0u64;
    let mut echo_background = [[Duration::ZERO; 2]; 3];
    for round in 0..rounds {
        // Rotate the order each round.
        for k in 0..3 {
            let v = Variant::ALL[(round + k) % 3];
            let (cpu, wall, n, background) = echo(v, &dir, round);
            echo_stacks += n;
            echo_background[v as usize][0] += background[0];
            echo_background[v as usize][1] += background[1];
            echo_cpu[v as usize].push(cpu);
            echo_wall[v as usize].push(wall);
            start_cpu[v as usize].push(startup(v));
            if v != Variant::Plain {
                let (cpu, n) = long_polls(v, &dir, round);
                long_cpu[v as usize].push(cpu);
                if v == Variant::StacksOn {
                    stacks += n;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let base_cpu = median(echo_cpu[0].clone());
    let base_wall = median(echo_wall[0].clone());
    println!("rounds: {rounds}; medians; ratios to plain in the same run; echo polls long enough for a stack: {echo_stacks} stacks in all runs");
    println!(
        "| variant | echo CPU (quartiles) | ratio | echo wall | ratio | startup+idle 300 ms CPU |"
    );
    println!("|---|---|---|---|---|---|");
    for v in Variant::ALL {
        let cpu = median(echo_cpu[v as usize].clone());
        let wall = median(echo_wall[v as usize].clone());
        println!(
            "| {} | {:.1} ms ({:.1}–{:.1}) | {:.3}× | {:.1} ms | {:.3}× | {:.1} ms |",
            v.name(),
            cpu.as_secs_f64() * 1e3,
            quantile(echo_cpu[v as usize].clone(), 4).as_secs_f64() * 1e3,
            upper_quartile(echo_cpu[v as usize].clone()).as_secs_f64() * 1e3,
            cpu.as_secs_f64() / base_cpu.as_secs_f64(),
            wall.as_secs_f64() * 1e3,
            wall.as_secs_f64() / base_wall.as_secs_f64(),
            median(start_cpu[v as usize].clone()).as_secs_f64() * 1e3,
        );
    }
    println!(
        "background threads' CPU during the echo phases (sum of all rounds): pulse-flusher stacks off {:.0} ms, on {:.0} ms; pulse-stacks {:.0} ms",
        echo_background[1][0].as_secs_f64() * 1e3,
        echo_background[2][0].as_secs_f64() * 1e3,
        echo_background[2][1].as_secs_f64() * 1e3,
    );
    let off = median(long_cpu[1].clone());
    let on = median(long_cpu[2].clone());
    let per_round = stacks as f64 / rounds as f64;
    let startup_extra =
        median(start_cpu[2].clone()).as_secs_f64() - median(start_cpu[1].clone()).as_secs_f64();
    println!(
        "long polls (8 × 50 ms blocked + 8 × 50 ms computing): CPU stacks off {:.1} ms, on {:.1} ms; {per_round:.1} stacks per run; {:.0} µs CPU per stack ((on - off - startup difference) / stacks)",
        off.as_secs_f64() * 1e3,
        on.as_secs_f64() * 1e3,
        (on.as_secs_f64() - off.as_secs_f64() - startup_extra) * 1e6 / per_round.max(1.0),
    );
}
