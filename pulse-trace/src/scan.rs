//! [`TraceScan`]: reads a [`TraceSet`] event by event, keeping track of
//! files, progress and a truncated ending.

use crate::set::SetError;
use crate::set::TraceSet;
use crate::{LocationId, SpawnSite, TraceEnd, TraceEvent, TraceMetadata, TraceReader};
use std::fs::File;

/// One file of a scanned set.
///
/// ```
/// use pulse_trace::FileInfo;
///
/// let info = FileInfo::default();
/// assert_eq!((info.bytes, info.format_version), (0, None));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct FileInfo {
    /// The file.
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// Its format version, once read.
    pub format_version: Option<u32>,
    /// Its index in a rotated set (v6 metadata).
    pub file_index: Option<u64>,
}

/// Reads every event of a [`TraceSet`] in file order.
///
/// Compared with a bare [`TraceReader`], it knows which file it is in and
/// how many bytes of the set it has read (for a progress bar), and it
/// treats a file that ends mid-record (the recording process was killed)
/// as the end of that file: it notes the error, goes on with the next
/// file, and [`truncated`](Self::truncated) reports it. Any other error
/// (corrupt data, unknown version, I/O) ends the scan.
///
/// # Examples
///
/// ```
/// use pulse_trace::{Encoder, FormatVersion, TraceEvent, TraceMetadata, TraceScan, TraceSet};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("trace.bin");
/// # let mut bytes = Vec::new();
/// # let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
/// # encoder.encode(&pulse_trace::RecordedEvent::QueueSample { timestamp_nanos: 5, global_queue: 1 }, &mut bytes);
/// # std::fs::write(&path, bytes)?;
///
/// let mut scan = TraceScan::open(&TraceSet::open(&path)?)?;
/// let mut events = 0;
/// while let Some(_event) = scan.next_event()? {
///     events += 1;
/// }
/// assert!(events > 0);
/// assert_eq!(scan.bytes_read(), scan.total_bytes());
/// assert!(scan.truncated().is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TraceScan {
    reader: TraceReader<File>,
    files: Vec<FileInfo>,
    /// Index in `files` of the file being read.
    current: usize,
    /// Bytes of the files before `current`.
    done_bytes: u64,
    total_bytes: u64,
    truncated: Option<String>,
    /// The last file whose start was noted.
    started: Option<usize>,
    /// Starts not yet handed out by `take_started_files`.
    new_files: Vec<(u32, Option<TraceMetadata>)>,
    first_metadata: Option<TraceMetadata>,
}

impl TraceScan {
    /// Opens the set's first file.
    ///
    /// # Errors
    ///
    /// The first file cannot be opened, or is not a trace this version of
    /// pulse reads.
    pub fn open(set: &TraceSet) -> Result<TraceScan, SetError> {
        let files: Vec<FileInfo> = set
            .files()
            .iter()
            .map(|path| FileInfo {
                path: path.display().to_string(),
                bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
                format_version: None,
                file_index: None,
            })
            .collect();
        let total_bytes = files.iter().map(|f| f.bytes).sum();
        let reader = set.reader()?;
        let mut scan = TraceScan {
            reader,
            files,
            current: 0,
            done_bytes: 0,
            total_bytes,
            truncated: None,
            started: None,
            new_files: Vec::new(),
            first_metadata: None,
        };
        scan.note_file();
        Ok(scan)
    }

    /// The next event; `Ok(None)` after the last.
    ///
    /// # Errors
    ///
    /// A file is corrupt, of an unknown version, or cannot be read.
    pub fn next_event(&mut self) -> Result<Option<TraceEvent>, SetError> {
        loop {
            match self.reader.next_event() {
                Ok(event) => {
                    self.note_file();
                    return Ok(event);
                }
                Err(err) if err.is_truncation() => {
                    if self.truncated.is_none() {
                        self.truncated = Some(err.to_string());
                    }
                    if !self.reader.skip_file()? {
                        self.done_bytes = self.total_bytes;
                        return Ok(None);
                    }
                    self.note_file();
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Records the start of the file the reader is in, if it is new.
    fn note_file(&mut self) {
        let path = self.reader.path().display().to_string();
        let Some(index) = self
            .files
            .iter()
            .skip(self.current)
            .position(|f| f.path == path)
            .map(|offset| self.current + offset)
        else {
            return;
        };
        if self.started == Some(index) {
            return;
        }
        self.done_bytes += self
            .files
            .get(self.current..index)
            .map_or(0, |done| done.iter().map(|f| f.bytes).sum());
        self.current = index;
        self.started = Some(index);
        let metadata = self.reader.metadata().cloned();
        let version = self.reader.version().number();
        if let Some(file) = self.files.get_mut(index) {
            file.format_version = Some(version);
            file.file_index = metadata.as_ref().map(|m| m.file_index);
        }
        if self.first_metadata.is_none() {
            self.first_metadata.clone_from(&metadata);
        }
        self.new_files.push((version, metadata));
    }

    /// The files started since the last call, in order: each one's
    /// format version and (v6) metadata, for an analysis that reads each
    /// file's metadata. Call it after
    /// [`open`](Self::open) and after each event.
    pub fn take_started_files(&mut self) -> Vec<(u32, Option<TraceMetadata>)> {
        std::mem::take(&mut self.new_files)
    }

    /// The reader, e.g. for [`TraceReader::location`].
    pub fn reader(&self) -> &TraceReader<File> {
        &self.reader
    }

    /// Where a PollStart's location id points.
    pub fn location(&self, id: LocationId) -> Option<&SpawnSite> {
        self.reader.location(id)
    }

    /// The text a span or mark names (see [`TraceReader::text`]).
    pub fn text(&self, id: crate::TextId) -> Option<&str> {
        self.reader.text(id)
    }

    /// The stack a StackSample names (see [`TraceReader::stack`]).
    pub fn stack(&self, id: crate::StackId) -> Option<&crate::Stack> {
        self.reader.stack(id)
    }

    /// The first file's metadata (v6).
    pub fn metadata(&self) -> Option<&TraceMetadata> {
        self.first_metadata.as_ref()
    }

    /// Bytes of the set read so far.
    pub fn bytes_read(&self) -> u64 {
        (self.done_bytes + self.reader.offset()).min(self.total_bytes)
    }

    /// The set's size in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The set's files, with each one's version and index once read.
    pub fn files(&self) -> &[FileInfo] {
        &self.files
    }

    /// How the recording ended: the last file's end-of-trace record, once
    /// the scan is done. `None` means the trace ended without a shutdown
    /// (killed, crashed or still running; v5 traces have no end record), so
    /// events after the last one read may be missing.
    pub fn end(&self) -> Option<&TraceEnd> {
        self.reader.end()
    }

    /// The error that ended a file early, if one did.
    pub fn truncated(&self) -> Option<&str> {
        self.truncated.as_deref()
    }
}
