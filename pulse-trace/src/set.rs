//! [`TraceSet`]: what a path given by a user means — one file, a rotated
//! set, or every trace in a directory.

use crate::{rotated_files, TraceError, TraceReader, MAGIC};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a path does not name a readable trace.
///
/// [`Display`](std::fmt::Display) is one line naming the path, suitable as
/// a command-line tool's whole error message.
///
/// # Examples
///
/// ```
/// use pulse_trace::{SetError, TraceSet};
///
/// let err = TraceSet::open("/nonexistent/trace.bin").unwrap_err();
/// assert!(matches!(err, SetError::NotFound { .. }));
/// assert!(err.to_string().starts_with("no trace at /nonexistent/trace.bin"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
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
        source: std::io::Error,
    },
    /// A trace file is corrupt, of an unknown version, or unreadable.
    #[error(transparent)]
    Trace(#[from] TraceError),
}

/// One recorded trace: a single file, or the files of a rotated set in
/// index order.
///
/// A path resolves like this ([`TraceSet::find`]):
///
/// 1. a directory: every trace in it — each rotated set (`NAME.<N>.EXT`)
///    and each other file that starts with the trace magic — sorted by
///    name;
/// 2. the base path of a rotated set (`dir/trace.bin` when
///    `dir/trace.0.bin`, `dir/trace.1.bin`, ... exist): that set;
/// 3. an existing file: that file alone.
///
/// # Examples
///
/// ```
/// use pulse_trace::TraceSet;
/// use pulse_trace::{rotated_path, Encoder, FormatVersion, TraceMetadata};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let base = dir.path().join("trace.bin");
/// for index in 0..3 {
///     let mut bytes = Vec::new();
///     Encoder::new(FormatVersion::V6, TraceMetadata::default()).begin_file(index, &mut bytes);
///     std::fs::write(rotated_path(&base, index), bytes)?;
/// }
///
/// let set = TraceSet::open(&base)?;
/// assert_eq!(set.files().len(), 3);
/// // The directory holds that one set.
/// assert_eq!(TraceSet::find(dir.path())?, vec![set]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSet {
    name: PathBuf,
    files: Vec<PathBuf>,
}

impl TraceSet {
    /// A set of the given files, read in this order.
    pub fn from_files(name: impl Into<PathBuf>, files: Vec<PathBuf>) -> Self {
        TraceSet {
            name: name.into(),
            files,
        }
    }

    /// Every trace `path` names (see the type's documentation).
    ///
    /// # Errors
    ///
    /// [`SetError::NotFound`] if `path` names no trace;
    /// [`SetError::Io`] if a directory cannot be listed.
    pub fn find(path: impl AsRef<Path>) -> Result<Vec<TraceSet>, SetError> {
        let path = path.as_ref();
        if path.is_dir() {
            return find_in_directory(path);
        }
        let io = |source| SetError::Io {
            path: path.to_owned(),
            source,
        };
        let files = match rotated_files(path) {
            Ok(files) => files,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(io(err)),
        };
        if !files.is_empty() {
            return Ok(vec![TraceSet::from_files(path, files)]);
        }
        if path.is_file() {
            return Ok(vec![TraceSet::from_files(path, vec![path.to_owned()])]);
        }
        Err(SetError::NotFound {
            path: path.to_owned(),
            reason: format!(
                "no such file or directory, and no rotated files {}",
                crate::rotated_path(path, 0).display()
            ),
        })
    }

    /// The one trace `path` names.
    ///
    /// # Errors
    ///
    /// As [`find`](Self::find), and [`SetError::Ambiguous`] for a
    /// directory holding several traces.
    pub fn open(path: impl AsRef<Path>) -> Result<TraceSet, SetError> {
        let path = path.as_ref();
        let mut sets = TraceSet::find(path)?;
        if sets.len() == 1 {
            return Ok(sets.remove(0));
        }
        let names: Vec<String> = sets.iter().map(|s| s.name.display().to_string()).collect();
        Err(SetError::Ambiguous {
            path: path.to_owned(),
            count: sets.len(),
            names: names.join(", "),
        })
    }

    /// What the trace is called: the file, or the base path of the set.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// The files, in reading order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The files' total size in bytes (files that vanished count 0).
    pub fn total_bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|file| fs::metadata(file).map_or(0, |m| m.len()))
            .sum()
    }

    /// A reader over every file of the set, in order.
    ///
    /// # Errors
    ///
    /// The first file cannot be opened or its header is not a trace's.
    pub fn reader(&self) -> Result<TraceReader, TraceError> {
        TraceReader::open_files(self.files.iter().cloned())
    }
}

fn find_in_directory(dir: &Path) -> Result<Vec<TraceSet>, SetError> {
    let io = |source| SetError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut bases = BTreeSet::new();
    let mut singles = BTreeSet::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if !entry.file_type().map_err(io)?.is_file() || !starts_with_magic(&entry.path()) {
            continue;
        }
        match rotated_base(&entry.file_name()) {
            Some(base) => bases.insert(dir.join(base)),
            None => singles.insert(entry.path()),
        };
    }
    let mut sets = Vec::new();
    for base in bases {
        let files = rotated_files(&base).map_err(|source| SetError::Io {
            path: base.clone(),
            source,
        })?;
        let files: Vec<PathBuf> = files.into_iter().filter(|f| starts_with_magic(f)).collect();
        if !files.is_empty() {
            sets.push(TraceSet::from_files(base, files));
        }
    }
    sets.extend(
        singles
            .into_iter()
            .map(|file| TraceSet::from_files(file.clone(), vec![file])),
    );
    sets.sort_by(|a, b| a.name.cmp(&b.name));
    if sets.is_empty() {
        return Err(SetError::NotFound {
            path: dir.to_owned(),
            reason: "the directory holds no pulse trace files".to_owned(),
        });
    }
    Ok(sets)
}

fn starts_with_magic(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok_and(|()| &magic == MAGIC)
}

/// The base name of the rotated set a file name belongs to
/// (`trace.3.bin` → `trace.bin`, `trace.3` → `trace`), if it is named like
/// one: a canonical decimal index right before the extension, or last.
fn rotated_base(name: &OsString) -> Option<OsString> {
    let name = name.to_str()?;
    let parts: Vec<&str> = name.split('.').collect();
    let is_index = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && !(s.len() > 1 && s.starts_with('0'))
    };
    let (stem, extension) = match parts.as_slice() {
        [.., stem_end, index, extension] if is_index(index) && !stem_end.is_empty() => {
            (&parts[..parts.len() - 2], Some(*extension))
        }
        [.., stem_end, index] if is_index(index) && !stem_end.is_empty() => {
            (&parts[..parts.len() - 1], None)
        }
        _ => return None,
    };
    let mut base = stem.join(".");
    if let Some(extension) = extension {
        base.push('.');
        base.push_str(extension);
    }
    Some(base.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(name: &str) -> Option<String> {
        rotated_base(&OsString::from(name)).map(|b| b.into_string().unwrap())
    }

    #[test]
    fn rotated_names_map_to_their_base() {
        assert_eq!(base("trace.0.bin").as_deref(), Some("trace.bin"));
        assert_eq!(base("trace.12.bin").as_deref(), Some("trace.bin"));
        assert_eq!(base("my.trace.3.bin").as_deref(), Some("my.trace.bin"));
        assert_eq!(base("trace.4").as_deref(), Some("trace"));
        assert_eq!(base("trace.bin"), None);
        assert_eq!(base("trace.01.bin"), None);
        assert_eq!(base(".3.bin"), None);
    }

    #[test]
    fn a_directory_lists_sets_and_single_files_but_not_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let trace = |name: &str| {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&6u32.to_le_bytes());
            fs::write(dir.path().join(name), bytes).unwrap();
        };
        trace("a.0.bin");
        trace("a.1.bin");
        trace("b.bin");
        fs::write(dir.path().join("notes.1.txt"), b"hello").unwrap();
        fs::write(dir.path().join("chrome.json"), b"{}").unwrap();
        let sets = TraceSet::find(dir.path()).unwrap();
        let names: Vec<_> = sets
            .iter()
            .map(|s| s.name().file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.bin", "b.bin"]);
        assert_eq!(sets[0].files().len(), 2);
        assert!(matches!(
            TraceSet::open(dir.path()),
            Err(SetError::Ambiguous { count: 2, .. })
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            TraceSet::find(empty.path()),
            Err(SetError::NotFound { .. })
        ));
    }
}
