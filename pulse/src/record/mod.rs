//! Hook installation and the recording hot path: [`Recorder`],
//! [`RecordingGuard`] and [`RecordingHandle`].
//!
//! The hot path itself, what it does and costs, is `hooks.rs`, read top to
//! bottom.

pub(crate) mod buffer;
pub mod clock;
pub(crate) mod collector;
pub(crate) mod control;
pub(crate) mod flusher;
mod guard;
pub(crate) mod hooks;
mod identity;
pub mod metrics;
#[cfg(feature = "metrics")]
pub mod metrics_facade;
pub(crate) mod records;
pub(crate) mod sampler;
pub(crate) mod shared;
pub(crate) mod signals;
pub(crate) mod stacks;
pub(crate) mod triggers;

pub use guard::{RecordingGuard, RecordingHandle, RecordingSummary};
pub(crate) use hooks::SCHEDULE_LATENCY_AVAILABLE;

use crate::config::Config;
use crate::error::Error;
use crate::record::clock::SchedStatFile;
use crate::record::hooks::install_hooks;
use crate::record::shared::{saturate_u32, unix_nanos_at_epoch, Shared};
use crate::writer::TraceWriter;
use pulse_trace::TraceMetadata;
use std::sync::Arc;
use tokio::runtime::{Builder, LocalOptions, LocalRuntime, Runtime, RuntimeMetrics};

/// Builds Tokio runtimes with pulse's hooks installed.
///
/// # Examples
///
/// The seed design's usage pattern:
///
/// ```
/// use pulse::{RotatingWriter, Recorder};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("trace.bin");
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// builder.worker_threads(2).enable_all();
/// let writer = RotatingWriter::new(&path, 1 << 20, 5 << 20)?;
/// let (runtime, guard) = Recorder::build(builder, Box::new(writer))?;
///
/// // Use the runtime normally.
/// runtime.block_on(async {
///     tokio::spawn(async { 1 + 1 }).await.unwrap();
/// });
///
/// // Drop the runtime, then the guard performs the final flush.
/// drop(runtime);
/// drop(guard);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Recorder {
    _private: (),
}

impl Recorder {
    /// Installs pulse's hooks on `builder`, builds the runtime and starts the
    /// flush/sample thread writing to `writer`, with the default [`Config`].
    ///
    /// pulse sets `on_thread_park`, `on_thread_unpark`,
    /// `on_before_task_poll`, `on_after_task_poll` and `on_thread_stop`;
    /// Tokio keeps one callback of each kind, so hooks of those kinds set on
    /// `builder` earlier are replaced.
    pub fn build(
        builder: Builder,
        writer: Box<dyn TraceWriter>,
    ) -> Result<(Runtime, RecordingGuard), Error> {
        Self::build_with_config(builder, writer, &Config::default())
    }

    /// Like [`Recorder::build`], with the intervals, buffer sizes and
    /// format of `config` (its writer setting is not used: `writer` is).
    pub fn build_with_config(
        builder: Builder,
        writer: Box<dyn TraceWriter>,
        config: &Config,
    ) -> Result<(Runtime, RecordingGuard), Error> {
        build_traced(builder, writer, config, Builder::build, Runtime::metrics)
    }

    /// Like [`Recorder::build_with_config`], for a [`LocalRuntime`]
    /// (Tokio's `!Send`-friendly single-thread runtime), built with
    /// `options`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse::{Config, NullWriter, Recorder};
    /// use tokio::runtime::LocalOptions;
    ///
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// builder.enable_all();
    /// let (runtime, guard) = Recorder::build_local_with_config(
    ///     builder,
    ///     Box::new(NullWriter::new()),
    ///     &Config::new(),
    ///     LocalOptions::default(),
    /// )?;
    /// let shared = std::rc::Rc::new(5); // not Send
    /// let doubled = runtime.block_on(async move {
    ///     tokio::task::spawn_local(async move { *shared * 2 }).await.unwrap()
    /// });
    /// assert_eq!(doubled, 10);
    /// drop(runtime);
    /// assert_eq!(guard.finish()?.dropped_events, 0);
    /// # Ok::<(), pulse::Error>(())
    /// ```
    pub fn build_local_with_config(
        builder: Builder,
        writer: Box<dyn TraceWriter>,
        config: &Config,
        options: LocalOptions,
    ) -> Result<(LocalRuntime, RecordingGuard), Error> {
        build_traced(
            builder,
            writer,
            config,
            move |builder| builder.build_local(options),
            LocalRuntime::metrics,
        )
    }

    /// Builds a runtime recording as `config` describes, creating its writer.
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse::{Config, Recorder, WriterConfig};
    ///
    /// let config = Config::new().writer(WriterConfig::Null);
    /// let mut builder = tokio::runtime::Builder::new_current_thread();
    /// builder.enable_all();
    /// let (runtime, guard) = Recorder::from_config(builder, &config)?;
    /// runtime.block_on(async { tokio::task::yield_now().await });
    /// drop(runtime);
    /// let summary = guard.finish()?;
    /// assert_eq!(summary.dropped_events, 0);
    /// # Ok::<(), pulse::Error>(())
    /// ```
    pub fn from_config(
        builder: Builder,
        config: &Config,
    ) -> Result<(Runtime, RecordingGuard), Error> {
        let writer = config.make_writer()?;
        Self::build_with_config(builder, writer, config)
    }

    /// Like [`Recorder::from_config`], for a [`LocalRuntime`].
    pub fn from_config_local(
        builder: Builder,
        config: &Config,
        options: LocalOptions,
    ) -> Result<(LocalRuntime, RecordingGuard), Error> {
        let writer = config.make_writer()?;
        Self::build_local_with_config(builder, writer, config, options)
    }
}

/// Installs the hooks, builds the runtime with `build`, and starts the
/// flusher writing to `writer`.
fn build_traced<R>(
    mut builder: Builder,
    mut writer: Box<dyn TraceWriter>,
    config: &Config,
    build: impl FnOnce(&mut Builder) -> std::io::Result<R>,
    runtime_metrics: impl FnOnce(&R) -> RuntimeMetrics,
) -> Result<(R, RecordingGuard), Error> {
    config.validate()?;
    let shared = Arc::new(Shared::new(config));
    install_hooks(&mut builder, &shared);
    let runtime = build(&mut builder).map_err(Error::Runtime)?;
    let metrics = runtime_metrics(&runtime);
    let worker_count = saturate_u32(metrics.num_workers());
    shared.set_runtime_metrics(metrics);

    let metadata = TraceMetadata {
        time_unit_nanos: config.time_unit_nanos,
        worker_count,
        start_unix_nanos: unix_nanos_at_epoch(&shared),
        pulse_version: env!("CARGO_PKG_VERSION").to_owned(),
        has_run_delay: config.run_queue_wait && SchedStatFile::open_current_thread().is_ok(),
        file_index: 0,
        // Who recorded first: the encoder keeps the leading pairs that fit.
        config: identity::pairs()
            .into_iter()
            .chain(config.describe())
            .chain([("stacks".to_owned(), stacks::status(config))])
            .collect(),
    };
    writer.begin(&metadata).map_err(Error::Write)?;
    let guard = RecordingGuard::start(shared, writer, config)?;
    Ok((runtime, guard))
}
