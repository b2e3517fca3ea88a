//! # pulse: a flight recorder for the Tokio runtime
//!
//! pulse records every task poll, every worker park and unpark (with the
//! thread's CPU time and, on Linux, its OS run-queue wait), and periodic
//! samples of the global queue depth and of each worker's CPU time, into a
//! compact binary trace. From the trace, the `pulse` command-line tool
//! (crate `tokio-pulse-cli`) answers one question precisely: *tasks are
//! queued but workers look idle: are the workers parked, unparked but
//! descheduled by the OS, blocked inside a poll, or busy in a long poll?*
//!
//! The package is `tokio-pulse`; the library is `pulse`:
//!
//! ```toml
//! [dependencies]
//! pulse = { package = "tokio-pulse", version = "0.1" }
//! ```
//!
//! ## Recording
//!
//! The shortest way is to replace `#[tokio::main]` with [`#[pulse::main]`](main):
//!
//! ```no_run
//! #[pulse::main(flush_ms = 250, sample_ms = 10, writer = "rotating")]
//! async fn main() {
//!     // the application, unchanged
//! }
//! ```
//!
//! or build the runtime yourself:
//!
//! ```
//! use pulse::{Recorder, RotatingWriter};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("trace.bin");
//! let mut builder = tokio::runtime::Builder::new_multi_thread();
//! builder.worker_threads(2).enable_all();
//! let writer = RotatingWriter::new(&path, 16 << 20, 64 << 20)?;
//! let (runtime, guard) = Recorder::build(builder, Box::new(writer))?;
//! runtime.block_on(async {
//!     let tasks: Vec<_> = (0..10).map(|i| tokio::spawn(async move { i * 2 })).collect();
//!     for task in tasks {
//!         task.await?;
//!     }
//!     Ok::<_, tokio::task::JoinError>(())
//! })?;
//! drop(runtime); // workers hand over their buffers as they stop
//! drop(guard); // final flush
//! # Ok(())
//! # }
//! ```
//!
//! ## Reading
//!
//! The trace format lives in its own crate, re-exported as [`trace`]:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("trace.bin");
//! # let (rt, guard) = pulse::Recorder::build(
//! #     tokio::runtime::Builder::new_multi_thread(),
//! #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
//! # )?;
//! # rt.block_on(async { tokio::spawn(async {}).await })?;
//! # drop(rt); drop(guard);
//! use pulse::trace::{EventType, TraceReader};
//!
//! let mut polls = 0;
//! for event in TraceReader::open(&path)? {
//!     if event?.event_type() == EventType::PollStart {
//!         polls += 1;
//!     }
//! }
//! assert!(polls >= 1);
//! # Ok(())
//! # }
//! ```
//!
//! ## Spans and marks
//!
//! [`mark!`] puts a timestamped application event (a request id, a cache
//! miss, a deploy) on the current worker's timeline. With the `tracing`
//! feature, `tracing_layer()` returns a `tracing_subscriber::Layer` that
//! records `tracing` spans entered on worker threads, so that `pulse
//! analyze` names the span (`cmd::get{key="user:42"}`) each finding
//! happened in. Both cost a few bytes per record: names and fields are
//! interned in the trace.
//!
//! ## How it works
//!
//! ```text
//! tokio hooks ─► record (hot path) ─► thread buffer ─► collector ─► flusher thread ─► TraceWriter ─► file(s)
//! ```
//!
//! The hooks append to a per-thread buffer with no lock or allocation;
//! full buffers, and each worker's buffer when it parks, go to a bounded
//! collector; a background OS thread hands them to a [`TraceWriter`] every
//! `flush_ms` and samples queue depths and worker CPU readings every
//! `sample_ms`. Live per-worker totals are in [`metrics`].
//!
//! ## Requirements
//!
//! Task polls, task ids, spawn locations and local queue depths come from
//! Tokio's unstable hooks: build with `--cfg tokio_unstable` to get them
//! (put `rustflags = ["--cfg", "tokio_unstable"]` under `[build]` in
//! `.cargo/config.toml`). Without it pulse records what stable Tokio
//! exposes: worker park/unpark with CPU time and run-queue wait, per-worker
//! samples and the global queue, enough to tell parked workers from
//! descheduled, blocked or busy ones, but not which task ran.
#![warn(missing_docs)]

/// Passes `#[pulse::bench]`'s expansion through when the `bench` feature
/// is on; without it, says so (rather than leaving paths unresolved). Not
/// a public API.
#[cfg(not(feature = "bench"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __bench_items {
    ($($tokens:tt)*) => {
        ::core::compile_error!(
            "`#[pulse::bench]` needs pulse's `bench` feature: \
             pulse = { package = \"tokio-pulse\", version = \"0.1\", features = [\"bench\"] }"
        );
    };
}

/// See `pulse::bench_main!` (feature `bench`); without the feature, says
/// it is missing. Not a public API in this form.
#[cfg(not(feature = "bench"))]
#[doc(hidden)]
#[macro_export]
macro_rules! bench_main {
    ($($tokens:tt)*) => {
        ::core::compile_error!(
            "`pulse::bench_main!` needs pulse's `bench` feature: \
             pulse = { package = \"tokio-pulse\", version = \"0.1\", features = [\"bench\"] }"
        );
    };
}

#[cfg(feature = "bench")]
pub mod bench;
pub mod config;
mod error;
mod macro_support;
mod mark;
mod record;
#[cfg(feature = "tracing")]
mod tracing_layer;
mod writer;

pub use mark::{MarkSite, MarkValue};
#[cfg(feature = "tracing")]
pub use tracing_layer::{tracing_layer, PulseLayer};

pub use config::{Config, WriterConfig};
pub use error::Error;
pub use pulse_macros::main;
/// The trace format: events, encoding, [`TraceReader`](trace::TraceReader)
/// (the `tokio-pulse-trace` crate).
pub use pulse_trace as trace;
pub use pulse_trace::{EventType, RecordedEvent, SpawnLocation};
/// Clock and `schedstat` readers, for pulse's own benchmarks. Not a public API.
#[doc(hidden)]
pub use record::clock;
pub use record::metrics;
/// The live metrics through the `metrics` crate's facade (feature `metrics`).
#[cfg(feature = "metrics")]
pub use record::metrics_facade;
pub use record::{Recorder, RecordingGuard, RecordingHandle, RecordingSummary};
pub use writer::{
    CompactEvents, DumpJob, MemoryWriter, NullWriter, RotatingWriter, SimpleBinaryWriter,
    TraceWriter, COMPACT_CHUNK,
};
// Always exported, so that without the `bench` feature its expansion
// can say which feature is missing (see `__bench_items!`).
#[doc(hidden)]
pub use macro_support::__private;
pub use pulse_macros::bench;
