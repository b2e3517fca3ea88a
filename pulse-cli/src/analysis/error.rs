//! [`AnalysisError`]: why a trace could not be analyzed or exported.

use pulse_trace::{SetError, TraceError};
use std::io;
use std::path::PathBuf;

/// Why a trace could not be found, read or written out.
///
/// [`Display`](std::fmt::Display) is one line naming the path, suitable as
/// a command-line tool's whole error message.
///
/// # Examples
///
/// ```
/// use pulse_cli::analysis::{analyze_trace, AnalysisError, AnalysisOptions};
/// use pulse_trace::SetError;
///
/// let err = analyze_trace("/nonexistent/trace.bin", &AnalysisOptions::default()).unwrap_err();
/// assert!(matches!(err, AnalysisError::Set(SetError::NotFound { .. })));
/// assert!(err.to_string().starts_with("no trace at /nonexistent/trace.bin"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalysisError {
    /// The path names no trace, or more than one, or cannot be listed.
    #[error(transparent)]
    Set(#[from] SetError),
    /// A trace file is corrupt, of an unknown version, or unreadable.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// Writing the output failed.
    #[error("writing {}: {source}", path.display())]
    Output {
        /// Where the output went (`-` for stdout).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}
