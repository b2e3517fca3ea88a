//! [`AnalysisError`]: why a trace could not be analyzed or exported.

use crate::format::TraceError;
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
/// use pulse::analysis::{AnalysisError, TraceSet};
///
/// let err = TraceSet::open("/nonexistent/trace.bin").unwrap_err();
/// assert!(matches!(err, AnalysisError::NotFound { .. }));
/// assert!(err.to_string().starts_with("no trace at /nonexistent/trace.bin"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalysisError {
    /// Nothing at the path is a trace.
    #[error("no trace at {}: {reason}", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
        /// What was looked for.
        reason: String,
    },
    /// The path names more than one trace where one was expected.
    #[error(
        "{} holds {count} traces ({names}); name one of them",
        path.display()
    )]
    Ambiguous {
        /// The directory.
        path: PathBuf,
        /// How many traces it holds.
        count: usize,
        /// Their names, comma-separated.
        names: String,
    },
    /// Listing a directory or reading a file's size failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
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
