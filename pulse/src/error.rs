//! The error type for setting pulse up.
//!
//! Recording itself never returns errors to the application: a failing
//! writer is reported once on stderr and counted (see
//! [`RecordingHandle::write_error`](crate::RecordingHandle::write_error)).

use std::io;
use std::path::PathBuf;

/// Why pulse could not be set up.
///
/// # Examples
///
/// ```
/// use pulse::{Config, Error};
///
/// let err = Config::new().buffer_events(0).validate().unwrap_err();
/// assert!(matches!(err, Error::InvalidConfig { setting: "buffer_events", .. }));
/// assert!(err.to_string().contains("buffer_events"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid pulse setting `{setting}`: {message}")]
    InvalidConfig {
        /// The setting's name, as spelled in `Config` and `#[pulse::main]`.
        setting: &'static str,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// A trace file could not be created or written.
    #[error("cannot write trace file {}: {source}", path.display())]
    TraceFile {
        /// The file pulse tried to create or write.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// Tokio could not build the runtime.
    #[error("failed to build the Tokio runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The background flush thread could not be started.
    #[error("failed to start pulse's flush thread: {0}")]
    FlushThread(#[source] io::Error),
    /// The writer failed while writing the trace.
    #[error("trace writer failed: {0}")]
    Write(#[source] io::Error),
    /// A flight-recorder dump could not be written (recording goes on).
    #[error("cannot dump the flight recorder to {}: {message}", path.display())]
    Dump {
        /// Where the dump was to go.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match &err {
            Error::InvalidConfig { .. } => io::ErrorKind::InvalidInput,
            Error::TraceFile { source, .. } | Error::Runtime(source) => source.kind(),
            Error::FlushThread(source) | Error::Write(source) => source.kind(),
            Error::Dump { .. } => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

impl Error {
    pub(crate) fn invalid(setting: &'static str, message: impl Into<String>) -> Error {
        Error::InvalidConfig {
            setting,
            message: message.into(),
        }
    }
}
