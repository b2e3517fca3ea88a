//! [`TraceReader`]: streams events out of one trace file or a rotated set.

use crate::error::{Corruption, RecordKind, TraceError, TraceErrorKind};
use crate::event::{LocationId, SpawnSite, TraceEvent};
use crate::rotation::{rotated_files, rotated_pattern};
use crate::v6::{self, V6Decoder};
use crate::varint::{Cursor, ReadError};
use crate::{v5, FormatVersion, TraceEnd, TraceMetadata, HEADER_LEN, MAGIC, MAX_RECORD_LEN};
use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Bytes read from the underlying reader at a time.
const BUFFER_LEN: usize = 64 * 1024;
/// Bytes a record decoder may look at: more than any compact record, v5
/// record, header, or length prefix.
const LOOKAHEAD: usize = 64;

const _: () = assert!(LOOKAHEAD >= v6::MAX_COMPACT_LEN);
const _: () = assert!(LOOKAHEAD >= v6::MAX_PREFIX_LEN);
const _: () = assert!(LOOKAHEAD >= v5::MAX_RECORD_LEN);
const _: () = assert!(LOOKAHEAD >= HEADER_LEN);

/// A read buffer that can show the next [`LOOKAHEAD`] bytes contiguously
/// and knows its offset in the file.
struct Source<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// File offset of `buf[pos]`.
    offset: u64,
}

impl<R: Read> Source<R> {
    fn new(inner: R) -> Self {
        Source {
            inner,
            buf: vec![0; BUFFER_LEN].into_boxed_slice(),
            pos: 0,
            end: 0,
            offset: 0,
        }
    }

    /// Starts over on another file, keeping the buffer's memory.
    fn reset(&mut self, inner: R) {
        self.inner = inner;
        self.pos = 0;
        self.end = 0;
        self.offset = 0;
    }

    /// The unconsumed bytes, at least `want` (at most [`BUFFER_LEN`]) of
    /// them unless the data ends first.
    fn fill(&mut self, want: usize) -> io::Result<&[u8]> {
        if self.end - self.pos < want {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            while self.end < want.min(self.buf.len()) {
                let spare = self.buf.get_mut(self.end..).unwrap_or_default();
                match self.inner.read(spare) {
                    Ok(0) => break,
                    // `min` guards against a `Read` impl claiming more bytes
                    // than it was given room for.
                    Ok(n) => self.end += n.min(spare.len()),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(self.buf.get(self.pos..self.end).unwrap_or_default())
    }

    /// Marks `n` bytes of what [`fill`](Self::fill) returned as read.
    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.pos);
        self.pos += n;
        self.offset += n as u64;
    }

    /// Reads `len` bytes into `sink` (or discards them), returning how many
    /// there were before the data ended.
    fn copy(&mut self, len: u64, mut sink: Option<&mut Vec<u8>>) -> io::Result<u64> {
        let mut left = len;
        while left > 0 {
            let available = self.fill(1)?;
            if available.is_empty() {
                break;
            }
            let n = available
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            if let Some(sink) = sink.as_deref_mut() {
                sink.extend_from_slice(available.get(..n).unwrap_or_default());
            }
            self.consume(n);
            left -= n as u64;
        }
        Ok(len - left)
    }
}

/// Opens the next file of a set.
type Opener<R> = fn(&Path) -> io::Result<R>;

/// Where a reader is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Reading,
    /// An error was returned; nothing more comes until
    /// [`TraceReader::skip_file`].
    Failed,
    /// Every file has been read.
    Finished,
}

/// Reads events from a v5 or v6 trace: one file, a list of files, or a
/// rotated set, streaming through a fixed 64 KiB buffer so files of any size
/// can be read.
///
/// Open it with [`open`](Self::open), [`open_files`](Self::open_files),
/// [`open_rotated`](Self::open_rotated) or [`from_reader`](Self::from_reader),
/// then call [`next_event`](Self::next_event) or iterate. Errors name the
/// file and the byte offset of the bad record; after an error the reader
/// returns no more events (see [`skip_file`](Self::skip_file) to go on with
/// the next file of a set). Nothing in a file, however malformed, makes the
/// reader panic or allocate much more than the file's size.
///
/// # Examples
///
/// ```
/// use pulse_trace::{Encoder, FormatVersion, TraceEvent, TraceMetadata, TraceReader};
/// use pulse_trace::RecordedEvent;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("trace.bin");
///
/// let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
/// let mut bytes = Vec::new();
/// encoder.begin_file(0, &mut bytes);
/// let spawned_at = pulse_trace::SpawnLocation(std::panic::Location::caller());
/// encoder.encode(
///     &RecordedEvent::PollStart {
///         timestamp_nanos: 5_000,
///         worker: 1,
///         local_queue: 3,
///         task_id: Some(42),
///         spawned_at,
///     },
///     &mut bytes,
/// );
/// std::fs::write(&path, &bytes)?;
///
/// let mut reader = TraceReader::open(&path)?;
/// assert_eq!(reader.version(), FormatVersion::V6);
/// while let Some(event) = reader.next_event()? {
///     let TraceEvent::PollStart { worker, task_id, spawned_at: location, .. } = event else {
///         unreachable!("the file holds one PollStart");
///     };
///     assert_eq!((worker, task_id), (1, Some(42)));
///     let site = reader.location(location.expect("v6 records spawn locations"));
///     assert_eq!(site.map(|site| site.line), Some(spawned_at.0.line()));
/// }
/// # Ok(())
/// # }
/// ```
pub struct TraceReader<R = File> {
    source: Source<R>,
    path: PathBuf,
    pending: VecDeque<PathBuf>,
    open_next: Option<Opener<R>>,
    version: FormatVersion,
    metadata: Option<TraceMetadata>,
    v6: V6Decoder,
    /// The payload of the length-prefixed record being decoded.
    payload: Vec<u8>,
    state: State,
}

impl TraceReader<File> {
    /// Opens one trace file and reads its header (and, for v6, metadata).
    ///
    /// A rotating writer given `trace.bin` writes `trace.0.bin`,
    /// `trace.1.bin`, ...: when no file `path` exists but such a set does,
    /// this reads the whole set in order, as
    /// [`open_rotated`](Self::open_rotated) does.
    ///
    /// # Errors
    ///
    /// The file cannot be opened or read, or its header or metadata is
    /// missing, truncated or invalid.
    ///
    /// # Examples
    ///
    /// ```
    /// use pulse_trace::{rotated_path, Encoder, FormatVersion, RecordedEvent, TraceMetadata, TraceReader};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let base = dir.path().join("trace.bin");
    /// let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
    /// for index in 0..2 {
    ///     let mut bytes = Vec::new();
    ///     encoder.begin_file(index, &mut bytes);
    ///     let event = RecordedEvent::QueueSample { timestamp_nanos: index * 1000, global_queue: 1 };
    ///     encoder.encode(&event, &mut bytes);
    ///     std::fs::write(rotated_path(&base, index), bytes)?;
    /// }
    /// // trace.bin itself does not exist: the set trace.0.bin, trace.1.bin is read.
    /// assert_eq!(TraceReader::open(&base)?.count(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TraceError> {
        let path = path.as_ref();
        if !path.exists() {
            if let Ok(files) = rotated_files(path) {
                if !files.is_empty() {
                    return Self::open_files(files);
                }
            }
        }
        Self::open_files([path])
    }

    /// Opens several trace files to be read one after the other, in the
    /// given order (e.g. a rotated set). The first is opened now; each of
    /// the others when the one before it ends. Each file must decode on its
    /// own; spawn locations accumulate across them.
    ///
    /// # Errors
    ///
    /// `paths` is empty, or opening the first file fails as in
    /// [`open`](Self::open). Errors in later files come from
    /// [`next_event`](Self::next_event).
    pub fn open_files<I, P>(paths: I) -> Result<Self, TraceError>
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        let mut pending: VecDeque<PathBuf> = paths.into_iter().map(Into::into).collect();
        let Some(first) = pending.pop_front() else {
            return Err(TraceError::new(
                "(no files)",
                0,
                TraceErrorKind::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no trace files to read",
                )),
            ));
        };
        let file = File::open(&first).map_err(|err| TraceError::new(&first, 0, err.into()))?;
        let mut reader = TraceReader::new(file, first, pending, Some(|path| File::open(path)));
        reader.start_file()?;
        Ok(reader)
    }

    /// Opens every existing file of the rotated set based at `base` (see
    /// [`rotated_files`](super::rotated_files)), in index order. If no file
    /// of the set exists but `base` itself does, reads `base`.
    ///
    /// # Errors
    ///
    /// `base`'s directory cannot be listed, no file exists, or opening the
    /// first file fails as in [`open`](Self::open).
    pub fn open_rotated(base: impl AsRef<Path>) -> Result<Self, TraceError> {
        let base = base.as_ref();
        let files = rotated_files(base).map_err(|err| TraceError::new(base, 0, err.into()))?;
        if !files.is_empty() {
            return Self::open_files(files);
        }
        if base.is_file() {
            return Self::open(base);
        }
        Err(TraceError::new(
            base,
            0,
            TraceErrorKind::Io(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no trace files: neither it nor {} exists",
                    rotated_pattern(base).display()
                ),
            )),
        ))
    }
}

impl<R: Read> TraceReader<R> {
    /// Reads a trace from any reader, e.g. bytes in memory. `name` stands
    /// for the file in errors.
    ///
    /// # Errors
    ///
    /// The header or (v6) metadata is missing, truncated or invalid, or
    /// reading fails.
    ///
    /// ```
    /// use pulse_trace::{Encoder, FormatVersion, TraceMetadata, TraceReader};
    ///
    /// let mut bytes = Vec::new();
    /// Encoder::new(FormatVersion::V5, TraceMetadata::default()).begin_file(0, &mut bytes);
    /// let mut reader = TraceReader::from_reader(&bytes[..], "memory").unwrap();
    /// assert_eq!(reader.version(), FormatVersion::V5);
    /// assert!(reader.next_event().unwrap().is_none());
    /// ```
    pub fn from_reader(reader: R, name: impl Into<PathBuf>) -> Result<Self, TraceError> {
        let mut reader = TraceReader::new(reader, name.into(), VecDeque::new(), None);
        reader.start_file()?;
        Ok(reader)
    }

    fn new(
        inner: R,
        path: PathBuf,
        pending: VecDeque<PathBuf>,
        open_next: Option<Opener<R>>,
    ) -> Self {
        TraceReader {
            source: Source::new(inner),
            path,
            pending,
            open_next,
            version: FormatVersion::V6,
            metadata: None,
            v6: V6Decoder::default(),
            payload: Vec::new(),
            state: State::Reading,
        }
    }

    /// The format version of the current file.
    pub fn version(&self) -> FormatVersion {
        self.version
    }

    /// The current file's end-of-trace record, once read, if no event
    /// followed it: how the recording ended. `None` while reading, for v5
    /// files (which have none) and for a trace that ended without a
    /// shutdown (the process was killed, crashed or is still running).
    /// Check it after [`next_event`](Self::next_event) returned `Ok(None)`.
    pub fn end(&self) -> Option<&TraceEnd> {
        self.v6.end.as_ref()
    }

    /// The current file's metadata; `None` for v5 files, which have none.
    pub fn metadata(&self) -> Option<&TraceMetadata> {
        self.metadata.as_ref()
    }

    /// The spawn location a PollStart's `location` refers to. Definitions
    /// accumulate over the files read so far; ids are stable across a
    /// rotated set.
    pub fn location(&self, id: LocationId) -> Option<&SpawnSite> {
        self.v6.location(id)
    }

    /// The symbolized stack a [`TraceEvent::StackSample`] names, defined by
    /// this file or an earlier one of the set.
    pub fn stack(&self, id: crate::StackId) -> Option<&crate::Stack> {
        self.v6.stack(id)
    }

    /// The module (path, build-id) a stack frame's
    /// [`StackFrame::module`](crate::StackFrame::module) names.
    pub fn stack_module(&self, id: u32) -> Option<&crate::StackModule> {
        self.v6.stack_module(id)
    }

    /// The text (span name, span fields, mark name) a
    /// [`TraceEvent::SpanEnter`] or [`TraceEvent::Mark`] names, defined by
    /// this file or an earlier one of the set. The empty text
    /// ([`TextId::EMPTY`](crate::TextId::EMPTY)) is `""`.
    pub fn text(&self, id: crate::TextId) -> Option<&str> {
        self.v6.text(id)
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The byte offset in the current file of the next record to read.
    pub fn offset(&self) -> u64 {
        self.source.offset
    }

    /// The next event, `Ok(None)` at the end of the last file.
    ///
    /// After an error, returns `Ok(None)` until [`skip_file`](Self::skip_file)
    /// is called.
    ///
    /// # Errors
    ///
    /// Reading fails, the data ends inside a record (the writer was cut
    /// short), a record is corrupt, or the next file of a set cannot be
    /// opened or has a bad header. The error names the file and the offset
    /// of the record.
    pub fn next_event(&mut self) -> Result<Option<TraceEvent>, TraceError> {
        if self.state != State::Reading {
            return Ok(None);
        }
        let result = self.read_event();
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// Abandons the rest of the current file and starts the next file of
    /// the set, e.g. to go on after an error in one file. Returns whether
    /// there was a next file.
    ///
    /// # Errors
    ///
    /// The next file cannot be opened or its header or metadata is invalid.
    pub fn skip_file(&mut self) -> Result<bool, TraceError> {
        if self.state == State::Finished {
            return Ok(false);
        }
        self.state = State::Reading;
        let result = self.next_file();
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn error(&self, offset: u64, kind: impl Into<TraceErrorKind>) -> TraceError {
        TraceError::new(&self.path, offset, kind.into())
    }

    /// Opens the next pending file; `false` (and finished) if there is none.
    fn next_file(&mut self) -> Result<bool, TraceError> {
        let (Some(open), Some(path)) = (self.open_next, self.pending.pop_front()) else {
            self.state = State::Finished;
            return Ok(false);
        };
        self.path = path;
        let inner = open(&self.path).map_err(|err| self.error(0, err))?;
        self.source.reset(inner);
        self.start_file()?;
        Ok(true)
    }

    /// Reads the header and, for v6, the metadata record.
    fn start_file(&mut self) -> Result<(), TraceError> {
        self.metadata = None;
        let header = self
            .source
            .fill(HEADER_LEN)
            .map_err(|err| TraceError::new(&self.path, 0, err.into()))?;
        let Some(&[m0, m1, m2, m3, m4, m5, m6, m7, v0, v1, v2, v3]) = header.first_chunk() else {
            let available = header.len() as u64;
            return Err(self.error(
                0,
                TraceErrorKind::Truncated {
                    record: RecordKind::Header,
                    needed: HEADER_LEN as u64,
                    available,
                    exact: true,
                },
            ));
        };
        let magic = [m0, m1, m2, m3, m4, m5, m6, m7];
        if &magic != MAGIC {
            return Err(self.error(0, TraceErrorKind::BadMagic { found: magic }));
        }
        let number = u32::from_le_bytes([v0, v1, v2, v3]);
        self.version = FormatVersion::from_number(number).ok_or_else(|| {
            self.error(
                MAGIC.len() as u64,
                TraceErrorKind::UnsupportedVersion { version: number },
            )
        })?;
        self.source.consume(HEADER_LEN);
        if self.version == FormatVersion::V6 {
            self.v6.begin_file();
            let start = self.source.offset;
            let data = self
                .source
                .fill(LOOKAHEAD)
                .map_err(|err| TraceError::new(&self.path, start, err.into()))?;
            match data.first() {
                None => {
                    return Err(self.error(
                        start,
                        TraceErrorKind::Truncated {
                            record: RecordKind::Metadata,
                            needed: 2,
                            available: 0,
                            exact: false,
                        },
                    ))
                }
                Some(&v6::TAG_METADATA) => {}
                Some(&tag) => return Err(self.error(start, Corruption::MissingMetadata { tag })),
            }
            self.read_length_prefixed(start)?;
            let metadata = self
                .v6
                .decode_metadata(&self.payload)
                .map_err(|kind| self.error(start, kind))?;
            self.metadata = Some(metadata);
        }
        Ok(())
    }

    fn read_event(&mut self) -> Result<Option<TraceEvent>, TraceError> {
        loop {
            let start = self.source.offset;
            let data = match self.source.fill(LOOKAHEAD) {
                Ok(data) => data,
                Err(err) => return Err(TraceError::new(&self.path, start, err.into())),
            };
            let Some(&tag) = data.first() else {
                if self.next_file()? {
                    continue;
                }
                return Ok(None);
            };
            match self.version {
                FormatVersion::V5 => {
                    let decoded = v5::decode(data);
                    let (event, len) = decoded.map_err(|kind| self.error(start, kind))?;
                    self.source.consume(len);
                    return Ok(Some(event));
                }
                FormatVersion::V6 if tag < v6::FIRST_LENGTH_PREFIXED_TAG => {
                    let decoded = self.v6.decode_compact(data);
                    let (event, len) = decoded.map_err(|kind| self.error(start, kind))?;
                    self.source.consume(len);
                    if event.is_some() {
                        self.v6.end = None;
                        return Ok(event);
                    }
                }
                FormatVersion::V6 => {
                    if self.read_length_prefixed(start)? {
                        let decoded = self.v6.decode_length_prefixed(tag, &self.payload);
                        let event = decoded.map_err(|kind| self.error(start, kind))?;
                        if event.is_some() {
                            self.v6.end = None;
                            return Ok(event);
                        }
                    }
                }
            }
        }
    }

    /// Reads the length-prefixed record at `start`: into `payload` if its
    /// tag is known (returning `true`), skipping it otherwise.
    fn read_length_prefixed(&mut self, start: u64) -> Result<bool, TraceError> {
        let data = self
            .source
            .fill(LOOKAHEAD)
            .map_err(|err| TraceError::new(&self.path, start, err.into()))?;
        let mut cursor = Cursor::new(data);
        let tag = cursor.u8().unwrap_or_default();
        let record = v6::length_prefixed_kind(tag);
        let len = match cursor.varint() {
            Ok(len) => len,
            Err(ReadError::Incomplete) => {
                let available = data.len() as u64;
                return Err(self.error(
                    start,
                    TraceErrorKind::Truncated {
                        record,
                        needed: available + 1,
                        available,
                        exact: false,
                    },
                ));
            }
            Err(ReadError::VarintTooLong) => {
                let field = "length";
                return Err(self.error(start, Corruption::VarintTooLong { record, field }));
            }
            Err(ReadError::VarintOverflow) => {
                let field = "length";
                return Err(self.error(start, Corruption::VarintOverflow { record, field }));
            }
        };
        if len > MAX_RECORD_LEN {
            let max = MAX_RECORD_LEN;
            return Err(self.error(start, Corruption::RecordTooLong { record, len, max }));
        }
        let prefix_len = cursor.position();
        self.source.consume(prefix_len);
        let known = !matches!(record, RecordKind::Unknown(_));
        self.payload.clear();
        let sink = known.then_some(&mut self.payload);
        let read = self
            .source
            .copy(len, sink)
            .map_err(|err| TraceError::new(&self.path, start, err.into()))?;
        if read < len {
            let prefix_len = prefix_len as u64;
            return Err(self.error(
                start,
                TraceErrorKind::Truncated {
                    record,
                    needed: prefix_len + len,
                    available: prefix_len + read,
                    exact: true,
                },
            ));
        }
        Ok(known)
    }
}

impl<R: Read> Iterator for TraceReader<R> {
    type Item = Result<TraceEvent, TraceError>;

    /// The next event or error; `None` at the end, and after an error.
    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}

impl<R> fmt::Debug for TraceReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceReader")
            .field("path", &self.path)
            .field("offset", &self.source.offset)
            .field("version", &self.version)
            .field("metadata", &self.metadata)
            .field("pending", &self.pending)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
