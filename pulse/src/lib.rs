//! # pulse: a flight recorder for the Tokio runtime
//!
//! pulse records every task poll, every worker park and unpark (with the
//! thread's CPU time and, on Linux, its OS run-queue wait), and periodic
//! samples of the global queue depth and of each worker's CPU time, into a
//! compact binary trace. From the trace it answers one question precisely:
//! *tasks are queued but workers look idle: are the workers parked,
//! unparked but descheduled by the OS, blocked inside a poll, or busy in a
//! long poll?*
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
//! use pulse::{RotatingWriter, TracedRuntime};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("trace.bin");
//! let mut builder = tokio::runtime::Builder::new_multi_thread();
//! builder.worker_threads(2).enable_all();
//! let writer = RotatingWriter::new(&path, 16 << 20, 64 << 20)?;
//! let (runtime, guard) = TracedRuntime::build(builder, Box::new(writer))?;
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
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("trace.bin");
//! # let (rt, guard) = pulse::TracedRuntime::build(
//! #     tokio::runtime::Builder::new_multi_thread(),
//! #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
//! # )?;
//! # rt.block_on(async { tokio::spawn(async {}).await })?;
//! # drop(rt); drop(guard);
//! use pulse::format::TraceReader;
//! use pulse::EventType;
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
//! ## How it works
//!
//! ```text
//! tokio hooks ─► recorder (hot path) ─► thread-local buffer ─► collector ─► flusher thread ─► TraceWriter ─► file(s)
//! ```
//!
//! The hooks ([`recorder`]) append to a per-thread buffer with no lock or
//! allocation; full buffers, and each worker's buffer when it parks, go to a
//! bounded collector; a background OS thread hands them to a [`TraceWriter`]
//! every `flush_interval` and samples queue depths every `sample_interval`.
//! The byte layout is in [`format`](mod@format) and `FORMAT.md`; live
//! per-worker totals are in [`metrics`].
//!
//! ## Requirements
//!
//! Tokio's poll hooks and worker index are unstable APIs: build with
//! `--cfg tokio_unstable` (put `rustflags = ["--cfg", "tokio_unstable"]`
//! under `[build]` in `.cargo/config.toml`). Without it this crate stops with
//! a compile error saying so.

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
             pulse = { version = \"0.1\", features = [\"bench\"] }"
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
             pulse = { version = \"0.1\", features = [\"bench\"] }"
        );
    };
}

#[cfg(not(tokio_unstable))]
compile_error!(
    "pulse needs Tokio's unstable hooks: build with `--cfg tokio_unstable`. \
     Add these two lines to `.cargo/config.toml` in your workspace root:\n\
     [build]\n\
     rustflags = [\"--cfg\", \"tokio_unstable\"]"
);

// Without the cfg, only the error above is reported, not a cascade of
// "private item" errors from Tokio's unstable APIs.
macro_rules! cfg_tokio_unstable {
    ($($item:item)*) => { $( #[cfg(tokio_unstable)] $item )* };
}

cfg_tokio_unstable! {
    pub mod analysis;
    #[cfg(feature = "bench")]
    pub mod bench;
    mod buffer;
    pub mod clock;
    mod collector;
    pub mod config;
    pub mod env;
    mod error;
    pub mod event;
    pub mod export;
    mod flusher;
    pub mod format;
    mod macro_support;
    pub mod metrics;
    pub mod recorder;
    pub mod writer;

    pub use config::{Config, WriterConfig};
    pub use error::Error;
    pub use event::{EventType, SpawnLocation, TelemetryEvent};
    pub use format::{FormatVersion, TraceError, TraceEvent, TraceReader};
    pub use recorder::{TelemetryGuard, TelemetryHandle, TraceSummary, TracedRuntime};
    pub use writer::{NullWriter, RotatingWriter, SimpleBinaryWriter, TraceWriter};
    pub use pulse_macros::main;
    // Always exported, so that without the `bench` feature its expansion
    // can say which feature is missing (see `__bench_items!`).
    pub use pulse_macros::bench;
    #[doc(hidden)]
    pub use macro_support::__private;
}
