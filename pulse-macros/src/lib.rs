//! Procedural macros for [pulse](https://docs.rs/pulse).
//!
//! `#[pulse::main]` and `#[pulse::bench]` live here and are re-exported by
//! the `pulse` crate; depend on `pulse`, not on this crate directly. Each
//! macro's logic is in its own module (`main_attr`, `bench_attr`: read the
//! function, read the arguments, check them together, expand), so it can be
//! unit-tested without a compiler.

mod args;
mod bench_attr;
mod errors;
mod main_attr;
mod size;
mod suggest;

use proc_macro::TokenStream;

/// Runs an `async fn main` on a Tokio runtime that pulse records: a drop-in
/// replacement for `#[tokio::main]`.
///
/// ```
/// # mod app {
/// #[pulse::main]
/// async fn main() {
///     let answer = tokio::spawn(async { 6 * 7 }).await.unwrap();
///     assert_eq!(answer, 42);
/// }
/// # pub fn run() { main() }
/// # }
/// # fn main() {
/// #     let dir = tempfile::tempdir().unwrap();
/// #     std::env::set_current_dir(dir.path()).unwrap();
/// #     app::run();
/// #     assert!(dir.path().join("pulse-trace.0.bin").exists());
/// # }
/// ```
///
/// The function runs on the runtime `#[tokio::main]` would build, with the
/// same arguments, and pulse records every task poll, every worker park and
/// unpark, and queue-depth samples into `pulse-trace.bin` (a rotating set:
/// `pulse-trace.0.bin`, `pulse-trace.1.bin`, ...) in the working directory.
/// When `main` returns, returns `Err` or panics, the runtime is shut down
/// and then the last events are written.
///
/// The runtime is built the way a library user builds one: the arguments
/// become a [`pulse::Config`], the `PULSE_*` environment variables are
/// applied on top (see [below](#environment-variables)), and
/// [`Recorder::from_config`] installs the hooks. If anything about the
/// recording is wrong at run time (a bad variable, a trace file that cannot
/// be created), one line on stderr says what and how to fix it, and the
/// program runs on the same runtime without recording: recording never
/// stops a program.
///
/// The body is run with `block_on` on the calling thread, so it need not
/// be `Send`, and its return type is returned unchanged: `()`,
/// `Result<(), Box<dyn Error>>` (without `Send + Sync`), any `Result<T, E>`,
/// `!`, `impl Termination`. The function must be `async`, take no
/// arguments and not be generic. Like `#[tokio::main]`, it need not be
/// called `main`.
///
/// # Tokio's arguments
///
/// Every argument of `#[tokio::main]` in Tokio 1.54 means the same here,
/// with the same defaults and the same checks:
///
/// | argument | values | default |
/// |---|---|---|
/// | `flavor` | `"multi_thread"`, `"current_thread"`, `"local"` (a `LocalRuntime`: spawned tasks need not be `Send`) | `"multi_thread"` |
/// | `worker_threads` | integer ≥ 1 (multi-thread only) | one per core |
/// | `start_paused` | `true`, `false` (current-thread and local only; Tokio's `test-util` feature) | `false` |
/// | `unhandled_panic` | `"ignore"`, `"shutdown_runtime"` (current-thread and local only) | `"ignore"` |
/// | `name` | string: the runtime's name | none |
/// | `crate` | string: the path pulse is reachable at | `"::pulse"` |
///
/// ```
/// use tokio::runtime::{Handle, RuntimeFlavor};
///
/// #[pulse::main(flavor = "multi_thread", worker_threads = 2, name = "api", writer = "null")]
/// async fn main() {
///     let handle = Handle::current();
///     assert_eq!(handle.runtime_flavor(), RuntimeFlavor::MultiThread);
///     assert_eq!(handle.metrics().num_workers(), 2);
///     assert_eq!(handle.name(), Some("api"));
/// }
/// ```
///
/// ```
/// use std::time::{Duration, Instant};
///
/// // Time starts paused and jumps ahead when every task waits on a timer.
/// #[pulse::main(flavor = "current_thread", start_paused = true, writer = "null")]
/// async fn main() {
///     let started = Instant::now();
///     tokio::time::sleep(Duration::from_secs(3600)).await;
///     assert!(started.elapsed() < Duration::from_secs(60));
/// }
/// ```
///
/// `crate` names pulse's path when it is not `::pulse` (a renamed
/// dependency, a re-export). The expansion reaches Tokio through pulse, so
/// no path to Tokio is needed: a program needs `pulse` and `tokio` as
/// dependencies, and `tokio` without its `macros` feature.
///
/// ```
/// mod deps {
///     pub use pulse as telemetry;
/// }
///
/// #[deps::telemetry::main(crate = "crate::deps::telemetry", writer = "null")]
/// async fn main() {}
/// ```
///
/// # Recording arguments
///
/// | argument | values | default |
/// |---|---|---|
/// | `flush_ms` | integer ≥ 1: how often events are written | `250` |
/// | `sample_ms` | integer ≥ 1: how often queue depths and worker CPU time are sampled; each sample wakes pulse's thread, which costs CPU also while the program idles (`pulse::Config::sample_ms` gives the figures) | `10` |
/// | `buffer_events` | 1 to 1048576: events buffered per thread | `1024` |
/// | `max_pending_events` | ≥ `buffer_events`: events waiting for the writer before new ones are dropped (and counted) | `65536` |
/// | `format` | `"v6"`, `"v5"` | `"v6"` |
/// | `enabled` | `true`, `false`: `false` runs without pulse unless `PULSE=on` | `true` |
/// | `schedule_latency` | `true`, `false`: every poll carries how long its task waited between being woken and being polled (Tokio's schedule latency; needs `--cfg tokio_unstable`); costs up to 2× CPU on a yield storm, see `Config::schedule_latency` | `false` |
/// | `run_queue_wait` | `true`, `false`: read each worker's OS run-queue wait (Linux schedstat); `false` saves those reads, and the analysis can no longer tell waiting for a CPU from sleeping | `true` |
/// | `service` | a string: the service this program is, recorded in the trace's metadata and used by `pulse export parquet` (`PULSE_SERVICE` overrides it) | none (the export then uses the executable's name) |
/// | `stacks` | `true`, `false`: capture the user stack of a worker whose poll lasts longer than `stack_threshold_ms`, at most once per `sample_ms` and 5 ms (Linux x86_64; no frame pointers needed; file:line needs line tables, e.g. `debug = "line-tables-only"`); nothing is done for shorter polls | `true` |
/// | `stack_threshold_ms` | an integer ≥ 1: how long a poll must have lasted before its stacks are captured | `5` |
/// | `signals` | `true`, `false`: on SIGTERM, SIGINT and SIGHUP (and panics) write everything recorded so far, then let the program's own handler or the default action happen as without pulse (same exit status); `false` (or `PULSE_SIGNALS=off`) leaves signals alone | `true` |
/// | `quiet` | `true`, `false`: no line on stderr at start (lines about lost events are still printed; also `PULSE_QUIET=1`) | `false` |
///
/// With `config = ...` the function decides `signals` too, and
/// `pulse::Config::new()` leaves it off: call `.signals(true)`.
///
/// ```
/// #[pulse::main(flush_ms = 100, sample_ms = 5, buffer_events = 512, format = "v6", writer = "null")]
/// async fn main() {
///     // ...
/// }
/// ```
///
/// # Where the trace goes
///
/// | argument | values | default |
/// |---|---|---|
/// | `writer` | `"rotating"`, `"file"`, `"null"` (record, write nothing) | `"rotating"` |
/// | `path` | string: the file, or the base of the rotating set | `"pulse-trace.bin"` |
/// | `max_file_size` | size of one rotated file, ≥ 4 KiB | `"64MiB"` |
/// | `max_total_size` | size of the whole rotated set, ≥ `max_file_size` | `"512MiB"` |
///
/// `writer = "memory"` is the in-memory flight recorder: nothing is written
/// until a dump, which writes the window as a rotated set every tool reads.
///
/// | argument | values | default |
/// |---|---|---|
/// | `path` | automatic dumps are named after it: `pulse-dump-<trigger>-<unix s>-<n>.0.bin`, ... | `"pulse-dump.bin"` |
/// | `memory_size` | most encoded bytes kept, ≥ 64 KiB | `"64MiB"` |
/// | `memory_seconds` | most seconds kept (the window is the smaller of the two) | `30` |
/// | `dump_signal` | `"SIGUSR2"`, `"SIGUSR1"`, a number, `"off"`: dumps on that signal (left alone if the program already handles it) | `"SIGUSR2"` |
/// | `dump_on` | `"poll>50ms"`, `"descheduled>100ms"` (commas between several): dump by itself when a poll lasts that long, or a worker waits that long for a CPU | none |
/// | `dump_after_ms` | how long an automatic dump waits after its trigger, so it holds what followed | `1000` |
/// | `dump_cooldown_ms` | least time between automatic dumps | `60000` |
/// | `dump_max_per_hour` | most automatic dumps in an hour | `10` |
///
/// ```
/// #[pulse::main(writer = "memory", memory_size = "16MiB", dump_on = "poll>50ms")]
/// async fn main() {
///     // `kill -USR2 <pid>` dumps the last seconds; so does a poll > 50 ms.
/// }
/// ```
///
/// Sizes are integers (bytes) or strings with a unit: `"4096"`, `"64MiB"`,
/// `"64 MiB"`, `"2GB"`. `KiB`, `MiB`, `GiB`, `TiB` are powers of 1024; `KB`,
/// `MB`, `GB`, `TB` powers of 1000.
///
/// ```
/// # fn main() {
/// #     let dir = tempfile::tempdir().unwrap();
/// #     std::env::set_current_dir(dir.path()).unwrap();
/// #     std::fs::create_dir("traces").unwrap();
/// #     record();
/// #     assert!(dir.path().join("traces/api.0.bin").exists());
/// # }
/// // At most 16 MiB per file and 128 MiB for the set, oldest files deleted.
/// #[pulse::main(path = "traces/api.bin", max_file_size = "16MiB", max_total_size = "128MiB")]
/// async fn record() {
///     tokio::spawn(async { /* ... */ }).await.unwrap();
/// }
/// ```
///
/// # `config = ...`
///
/// For every setting [`pulse::Config`] has, pass a function or closure that
/// returns one. It replaces all recording arguments (combining it with one
/// is a compile error, since one would silently override the other); Tokio's
/// arguments still apply, and so do the environment variables.
///
/// ```
/// use pulse::{Config, WriterConfig};
/// use std::time::Duration;
///
/// fn recording() -> Config {
///     Config::new()
///         .flush_ms(100)
///         .run_queue_wait(false)
///         .writer(WriterConfig::Null)
/// }
///
/// #[pulse::main(flavor = "current_thread", config = recording)]
/// async fn main() {}
/// ```
///
/// ```
/// #[pulse::main(config = || pulse::Config::new().writer(pulse::WriterConfig::Null))]
/// async fn main() {}
/// ```
///
/// # Return types
///
/// ```
/// use std::error::Error;
/// use std::rc::Rc;
///
/// #[pulse::main(writer = "null")]
/// async fn main() -> Result<(), Box<dyn Error>> {
///     // Not `Send`: fine, the body is not spawned.
///     let shared = Rc::new(String::from("7"));
///     tokio::task::yield_now().await;
///     let n: u32 = shared.parse()?;
///     assert_eq!(n, 7);
///     Ok(())
/// }
/// ```
///
/// # Environment variables
///
/// Set at run time, they override the arguments (and what a `config`
/// function returns) without recompiling: `PULSE=off` runs the program on a
/// plain runtime and writes nothing, `PULSE=on` records even with
/// `enabled = false`, `PULSE_PATH` redirects the trace, and `PULSE_WRITER`,
/// `PULSE_FLUSH_MS`, `PULSE_SAMPLE_MS`, `PULSE_BUFFER_EVENTS`,
/// `PULSE_MAX_PENDING_EVENTS`, `PULSE_MAX_FILE_SIZE`,
/// `PULSE_MAX_TOTAL_SIZE` and `PULSE_FORMAT` set the argument of the same
/// name. See [`pulse::env`] for the accepted values.
///
/// ```text
/// PULSE_PATH=/tmp/slow-request.bin PULSE_FLUSH_MS=50 ./my-server
/// PULSE=off ./my-server
/// ```
///
/// # Errors
///
/// Mistakes in the arguments are compile errors at the offending tokens,
/// all reported at once: unknown arguments (with the closest valid name
/// suggested and every valid name listed), repeated arguments, values of
/// the wrong type or out of range, unknown writers, formats or flavors,
/// combinations that cannot work (`worker_threads` with
/// `flavor = "current_thread"`, `path` with `writer = "null"`, `config`
/// with a recording argument), and a function that is not `async`, takes
/// arguments or is generic.
///
/// ```compile_fail
/// #[pulse::main(flush_msec = 100)] // unknown argument `flush_msec`; did you mean `flush_ms`?
/// async fn main() {}
/// ```
///
/// ```compile_fail
/// #[pulse::main(flavor = "current_thread", worker_threads = 4)]
/// async fn main() {}
/// ```
///
/// # What it expands to
///
/// In essence, `#[pulse::main(flavor = "current_thread", flush_ms = 100)]`
/// on `async fn main() -> R { body }` produces:
///
/// ```text
/// fn main() -> R {
///     let body = async { body };
///     let config: pulse::Config =
///         pulse::Config::new().flush_ms(100);
///     return pulse::__private::Main::start(
///         || {
///             let mut builder = tokio::runtime::Builder::new_current_thread();
///             builder.enable_all();
///             builder
///         },
///         config, // PULSE_* applied, then Recorder::from_config(builder(), &config)
///     )
///     .block_on(body); // runtime dropped, then the guard: the final flush
/// }
/// ```
///
/// [`pulse::Config`]: ../pulse/struct.Config.html
/// [`Recorder::from_config`]: ../pulse/struct.Recorder.html#method.from_config
/// [`pulse::env`]: ../pulse/env/index.html
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    main_attr::main(args.into(), item.into()).into()
}

/// Turns a function into a [criterion] benchmark of pulse's kind: batched,
/// optionally contended from many threads, with seed 001's statistics.
/// Needs pulse's `bench` feature; a bench binary lists its benchmarks in
/// [`pulse::bench_main!`], which writes `main`.
///
/// ```no_run
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// // Timed call by call; the result goes through `black_box`.
/// #[pulse::bench(batch = 100)]
/// fn relaxed_load() -> u64 {
///     static COUNTER: AtomicU64 = AtomicU64::new(0);
///     COUNTER.load(Ordering::Relaxed)
/// }
///
/// // The same counter incremented from 1, 2, 4, 8 and 16 threads at once.
/// #[pulse::bench(setup = AtomicU64::default, threads = [1, 2, 4, 8, 16], batch = 100)]
/// fn shared_fetch_add(counter: &AtomicU64) -> u64 {
///     counter.fetch_add(1, Ordering::Relaxed)
/// }
///
/// // One counter per thread, each in its own cache-padded slot.
/// #[pulse::bench(per_thread = |_thread| 0u64, threads = [1, 2, 4, 8, 16], batch = 100)]
/// fn own_counter(count: &mut u64) -> u64 {
///     *count += 1;
///     *count
/// }
///
/// pulse::bench_main!(relaxed_load, shared_fetch_add, own_counter);
/// ```
///
/// Each function becomes `fn name(&mut Criterion)` (same name and
/// visibility) that runs benchmark `group/name`, or `group/name/N` for `N`
/// threads; the group is the module's path (the bench file's name at its
/// root) unless `group` says otherwise. With `harness = false` in the
/// `[[bench]]` entry, `pulse::bench_main!(a, b, ...)` generates `main` the
/// way criterion's `criterion_group!`/`criterion_main!` pair does: it
/// configures one `Criterion` (the defaults below, then the command line),
/// runs each benchmark in order and ends with `final_summary()`. A bench
/// crate needs only `pulse` (with feature `bench`): criterion is reached
/// through it. `cargo test --benches` runs every benchmark once, untimed.
///
/// # Arguments
///
/// | argument | value | default |
/// |---|---|---|
/// | `setup` | `fn() -> S`: state shared by every thread, made once per benchmark (per thread count) before it is first timed; the function takes `&S` | none |
/// | `per_thread` | `fn(usize) -> T`: each thread's own state, made with its index `0..N` and kept in a cache-padded slot between calls; the function takes `&mut T` (after `&S`) | none |
/// | `teardown` | `fn(S)`: given the shared state after the benchmark's last sample (to finish a recording and report what it wrote) | drop |
/// | `threads` | array of distinct counts ≥ 1: run on that many threads at once, all released by one barrier; one benchmark per count | the calling thread |
/// | `batch` | integer ≥ 1: calls per timed iteration; the reported time is one call's | `1` |
/// | `elements` | integer ≥ 1: what one call does, for throughput (times the thread count) | `1` |
/// | `group` | string: the criterion group | the module path |
/// | `warm_up_ms` | integer ≥ 1 | `1000` |
/// | `measurement_ms` | integer ≥ 1 | `5000` |
/// | `sample_size` | integer ≥ 10 | `100` |
/// | `significance` | number in (0, 1) | `0.05` |
/// | `crate` | string: the path pulse is reachable at | `"::pulse"` |
///
/// The four statistical settings default to seed 001's (1 s warm-up, 5 s
/// measurement, 100 samples, 0.05 significance) on the `Criterion` that
/// `bench_main!` builds, so criterion's command-line options
/// (`--warm-up-time`, `--measurement-time`, `--sample-size`,
/// `--significance-level`) replace them; a value written in the attribute
/// is that benchmark's own and wins over the command line.
///
/// **Quick mode**: with `PULSE_BENCH_QUICK=1` every benchmark runs with a
/// 0.2 s warm-up, 0.6 s measurement and 10 samples, whatever the attribute
/// and the command line say, for smoke runs; criterion's own `--quick`
/// works too. Quick figures are not for publishing.
///
/// # Measurement
///
/// Inputs (`&S`, `&mut T`) and the result pass through
/// [`std::hint::black_box`] on every call, so the compiler can neither fold
/// the call nor discard it. Criterion times its iterations with
/// `iter_custom`: one clock reading before and one after `iters × batch`
/// calls, so under ~50 ns the timer's own cost is spread thin. With
/// `threads`, every sample spawns the threads, they meet at a
/// [`std::sync::Barrier`] with the timing thread, and the clock stops when
/// the last one has made its calls: the reported time is one call as each
/// thread saw it under that contention; throughput counts all threads'
/// calls. `S` must be `Sync` and `T` `Send` then.
///
/// ```no_run
/// use pulse::bench::HotPath;
/// use pulse::Config;
/// use std::panic::Location;
///
/// fn recording() -> HotPath {
///     HotPath::new(&Config::new()).expect("valid config")
/// }
///
/// fn report(hot: HotPath) {
///     let summary = hot.finish().expect("a NullWriter cannot fail");
///     println!("{} events written", summary.events_written);
/// }
///
/// // Each thread records PollStart/PollEnd pairs as its own worker.
/// #[pulse::bench(
///     setup = recording,
///     per_thread = |thread| thread as u32,
///     teardown = report,
///     threads = [1, 2, 4],
///     elements = 2,
///     group = "poll_event",
/// )]
/// fn poll_pair(hot: &HotPath, worker: &mut u32) {
///     hot.poll_start(*worker, 0, Location::caller());
///     hot.poll_end();
/// }
///
/// pulse::bench_main!(poll_pair);
/// ```
///
/// # Errors
///
/// Mistakes are compile errors at the offending tokens, all reported at
/// once: unknown arguments (with the closest name suggested and every name
/// listed), repeated arguments, values of the wrong type or out of range
/// (`threads = [0]`, a repeated thread count, `sample_size = 5`,
/// `significance = 1.5`), `teardown` without `setup`, an item that is not a
/// function, and a function that is `async`, `unsafe`, `extern`, generic,
/// a method, or whose parameters do not match `setup`/`per_thread`.
///
/// ```compile_fail
/// #[pulse::bench(thread = [1, 2])] // unknown argument `thread`; did you mean `threads`?
/// fn op() {}
/// ```
///
/// ```compile_fail
/// #[pulse::bench(threads = [0, 4])] // a benchmark cannot run on zero threads
/// fn op() {}
/// ```
///
/// [criterion]: https://docs.rs/criterion/0.5
/// [`pulse::bench_main!`]: ../pulse/macro.bench_main.html
#[proc_macro_attribute]
pub fn bench(args: TokenStream, item: TokenStream) -> TokenStream {
    bench_attr::bench(args.into(), item.into()).into()
}
