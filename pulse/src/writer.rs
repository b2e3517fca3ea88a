//! Trace writers: where the flusher thread sends batches of events.
//!
//! [`TraceWriter`] is the extension point; pulse ships a single growing file
//! ([`SimpleBinaryWriter`]), a size-bounded rotating set ([`RotatingWriter`])
//! and a writer that discards everything ([`NullWriter`], for measuring
//! pulse's own overhead). Byte layouts live in [`crate::format`] only.

use crate::error::Error;
use pulse_trace::RecordedEvent;
use pulse_trace::{Encoder, FormatVersion, TraceMetadata};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Receives batches of events on pulse's background thread.
///
/// Calls arrive in this order: [`begin`](TraceWriter::begin) once, then any
/// number of [`write_batch`](TraceWriter::write_batch) and
/// [`flush`](TraceWriter::flush), then [`finish`](TraceWriter::finish) once.
/// A writer never runs on a Tokio worker, so it may block on I/O; an error it
/// returns stops the recording (reported once on stderr), it never reaches
/// the application.
///
/// Events of one thread arrive in the order they were recorded; batches of
/// different threads interleave, so a file is ordered per worker, not
/// globally.
///
/// # Examples
///
/// A writer that only counts events:
///
/// ```
/// use pulse::{RecordedEvent, TraceWriter};
///
/// #[derive(Default, Debug)]
/// struct Counting(u64);
///
/// impl TraceWriter for Counting {
///     fn write_batch(&mut self, events: &[RecordedEvent]) -> std::io::Result<()> {
///         self.0 += events.len() as u64;
///         Ok(())
///     }
///     fn flush(&mut self) -> std::io::Result<()> {
///         Ok(())
///     }
/// }
///
/// let mut writer = Counting::default();
/// writer.write_batch(&[RecordedEvent::QueueSample { timestamp_nanos: 0, global_queue: 3 }])?;
/// assert_eq!(writer.0, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait TraceWriter: Send {
    /// Called once, before the first batch, with the recording's metadata.
    fn begin(&mut self, metadata: &TraceMetadata) -> io::Result<()> {
        let _ = metadata;
        Ok(())
    }

    /// Writes a batch of events: the sampler's readings, or events handed
    /// over by recording threads (one thread's buffer, or several small
    /// hand-overs one after the other, each thread's events in order).
    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()>;

    /// Pushes buffered bytes to the operating system.
    fn flush(&mut self) -> io::Result<()>;

    /// Called once at shutdown after the last batch; defaults to `flush`.
    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }
}

impl<W: TraceWriter + ?Sized> TraceWriter for Box<W> {
    fn begin(&mut self, metadata: &TraceMetadata) -> io::Result<()> {
        (**self).begin(metadata)
    }
    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
        (**self).write_batch(events)
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
}

/// Bytes of encoded output gathered before they go to the file.
const CHUNK_BYTES: usize = 64 * 1024;

/// Creates (or truncates) a trace file readable and writable by its owner
/// only (mode `0600` on Unix): traces reveal what a program does. The mode
/// given to `open` applies only to a new file, so an existing regular file
/// that others could read is restricted too (devices such as `/dev/null`
/// are left alone).
fn create_trace_file(path: &Path) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let error = |source| Error::TraceFile {
        path: path.to_owned(),
        source,
    };
    let file = options.open(path).map_err(error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = file.metadata().map_err(error)?;
        if metadata.is_file() && metadata.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(error)?;
        }
    }
    Ok(file)
}

/// Adds the path to an I/O error so the one line on stderr says which file.
fn with_path(path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

/// Metadata for a writer used without a runtime (tests, tools): no workers,
/// start at the Unix epoch.
fn standalone_metadata() -> TraceMetadata {
    TraceMetadata {
        time_unit_nanos: pulse_trace::DEFAULT_TIME_UNIT_NANOS,
        pulse_version: env!("CARGO_PKG_VERSION").to_owned(),
        ..TraceMetadata::default()
    }
}

/// Writes the whole trace to one file.
///
/// # Examples
///
/// ```
/// use pulse_trace::TraceReader;
/// use pulse::{SimpleBinaryWriter, RecordedEvent, TraceWriter};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("trace.bin");
/// let mut writer = SimpleBinaryWriter::new(&path)?;
/// writer.write_batch(&[RecordedEvent::QueueSample { timestamp_nanos: 5_000, global_queue: 7 }])?;
/// writer.finish()?;
///
/// let events: Vec<_> = TraceReader::open(&path)?.collect::<Result<_, _>>()?;
/// assert_eq!(events.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SimpleBinaryWriter {
    path: PathBuf,
    file: BufWriter<File>,
    version: FormatVersion,
    encoder: Option<Encoder>,
    scratch: Vec<u8>,
}

impl SimpleBinaryWriter {
    /// Creates (or truncates) `path`, writing the default format (v6).
    pub fn new(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::with_format(path, FormatVersion::default())
    }

    /// Creates (or truncates) `path`, writing `version`.
    pub fn with_format(path: impl AsRef<Path>, version: FormatVersion) -> Result<Self, Error> {
        let path = path.as_ref().to_owned();
        let file = create_trace_file(&path)?;
        Ok(SimpleBinaryWriter {
            file: BufWriter::with_capacity(CHUNK_BYTES, file),
            path,
            version,
            encoder: None,
            scratch: Vec::with_capacity(CHUNK_BYTES),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn encoder(&mut self, metadata: Option<&TraceMetadata>) -> io::Result<&mut Encoder> {
        if self.encoder.is_none() {
            let metadata = metadata.cloned().unwrap_or_else(standalone_metadata);
            let mut encoder = Encoder::new(self.version, metadata);
            encoder.begin_file(0, &mut self.scratch);
            self.encoder = Some(encoder);
        }
        Ok(self.encoder.as_mut().expect("initialised above"))
    }

    fn write_scratch(&mut self) -> io::Result<()> {
        let result = self.file.write_all(&self.scratch);
        self.scratch.clear();
        result.map_err(|e| with_path(&self.path, e))
    }
}

impl TraceWriter for SimpleBinaryWriter {
    fn begin(&mut self, metadata: &TraceMetadata) -> io::Result<()> {
        self.encoder(Some(metadata))?;
        self.write_scratch()
    }

    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
        self.encoder(None)?;
        let encoder = self.encoder.as_mut().expect("initialised above");
        for event in events {
            encoder.encode(event, &mut self.scratch);
        }
        self.write_scratch()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.encoder(None)?;
        self.write_scratch()?;
        self.file.flush().map_err(|e| with_path(&self.path, e))
    }
}

/// Writes a set of files `trace.0.bin`, `trace.1.bin`, ... (for a base path
/// `trace.bin`), starting a new file before one would exceed
/// `max_file_size` and deleting the oldest so the set stays within
/// `max_total_size`. Every file starts with its own header and metadata and
/// defines every spawn location it uses, so each one reads on its own.
///
/// Creating the writer deletes files left in the set by an earlier run, as
/// [`SimpleBinaryWriter`] truncates its file.
///
/// # Examples
///
/// ```
/// use pulse_trace::{rotated_files, TraceReader};
/// use pulse::{RotatingWriter, RecordedEvent, TraceWriter};
///
/// let dir = tempfile::tempdir()?;
/// let base = dir.path().join("trace.bin");
/// let mut writer = RotatingWriter::new(&base, 4096, 3 * 4096)?;
/// for i in 0..10_000 {
///     writer.write_batch(&[RecordedEvent::QueueSample { timestamp_nanos: i * 10_000_000, global_queue: i }])?;
/// }
/// writer.finish()?;
///
/// let files = rotated_files(&base)?;
/// assert!(files.len() <= 3);
/// for file in &files {
///     assert!(std::fs::metadata(file)?.len() <= 4096);
///     // Each file reads back on its own.
///     TraceReader::open(file)?.collect::<Result<Vec<_>, _>>()?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RotatingWriter {
    base: PathBuf,
    max_file_size: u64,
    max_total_size: u64,
    version: FormatVersion,
    metadata: Option<TraceMetadata>,
    encoder: Option<Encoder>,
    /// Index and path of the file being written, with its bytes so far
    /// (including bytes still in `scratch`).
    current: Option<(u64, PathBuf, BufWriter<File>)>,
    current_len: u64,
    /// Closed files still on disk, oldest first, with their sizes.
    closed: std::collections::VecDeque<(PathBuf, u64)>,
    next_index: u64,
    scratch: Vec<u8>,
}

/// Smallest accepted `max_file_size`: room for the header, the metadata and
/// a useful number of events.
pub const MIN_ROTATING_FILE_SIZE: u64 = 4096;

impl RotatingWriter {
    /// Creates the first file of the set at `path`, writing the default
    /// format (v6). See [`RotatingWriter::format`] for v5.
    pub fn new(
        path: impl AsRef<Path>,
        max_file_size: u64,
        max_total_size: u64,
    ) -> Result<Self, Error> {
        Self::check_limits(max_file_size, max_total_size)?;
        let base = path.as_ref().to_owned();
        for stale in pulse_trace::rotated_files(&base).map_err(|source| Error::TraceFile {
            path: base.clone(),
            source,
        })? {
            std::fs::remove_file(&stale).map_err(|source| Error::TraceFile {
                path: stale.clone(),
                source,
            })?;
        }
        let mut writer = RotatingWriter {
            base,
            max_file_size,
            max_total_size,
            version: FormatVersion::default(),
            metadata: None,
            encoder: None,
            current: None,
            current_len: 0,
            closed: Default::default(),
            next_index: 0,
            scratch: Vec::with_capacity(CHUNK_BYTES),
        };
        // Create the first file now so a bad path fails here, not later.
        writer.open_next().map_err(|source| Error::TraceFile {
            path: writer.base.clone(),
            source,
        })?;
        Ok(writer)
    }

    /// Selects the format version (before anything is written).
    pub fn format(mut self, version: FormatVersion) -> Self {
        self.version = version;
        self
    }

    /// Checks the size limits, naming the one that is wrong.
    pub(crate) fn check_limits(max_file_size: u64, max_total_size: u64) -> Result<(), Error> {
        if max_file_size < MIN_ROTATING_FILE_SIZE {
            return Err(Error::invalid(
                "max_file_size",
                format!("{max_file_size} bytes is below the minimum of {MIN_ROTATING_FILE_SIZE}"),
            ));
        }
        if max_total_size < max_file_size {
            return Err(Error::invalid(
                "max_total_size",
                format!(
                    "{max_total_size} bytes is smaller than max_file_size ({max_file_size} bytes); \
                     the set must hold at least one file"
                ),
            ));
        }
        Ok(())
    }

    /// The files of the set currently on disk, oldest first.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.closed.iter().map(|(p, _)| p.clone()).collect();
        files.extend(self.current.as_ref().map(|(_, p, _)| p.clone()));
        files
    }

    fn encoder(&mut self) -> &mut Encoder {
        let (version, metadata) = (self.version, &self.metadata);
        self.encoder.get_or_insert_with(|| {
            let metadata = metadata.clone().unwrap_or_else(standalone_metadata);
            Encoder::new(version, metadata)
        })
    }

    /// Closes the current file (if any) and starts the next one, deleting
    /// the oldest files while the set would exceed `max_total_size`.
    fn open_next(&mut self) -> io::Result<()> {
        if let Some((_, path, mut file)) = self.current.take() {
            file.flush().map_err(|e| with_path(&path, e))?;
            self.closed.push_back((path, self.current_len));
        }
        // The new file may grow to max_file_size: make room for it now.
        let mut total: u64 = self.closed.iter().map(|(_, len)| len).sum();
        while total + self.max_file_size > self.max_total_size {
            let Some((oldest, len)) = self.closed.pop_front() else {
                break;
            };
            match std::fs::remove_file(&oldest) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_path(&oldest, e)),
            }
            total -= len;
        }
        let index = self.next_index;
        self.next_index += 1;
        let path = pulse_trace::rotated_path(&self.base, index);
        let file = create_trace_file(&path).map_err(io::Error::from)?;
        self.current = Some((index, path, BufWriter::with_capacity(CHUNK_BYTES, file)));
        self.current_len = 0;
        Ok(())
    }

    /// Writes `scratch` to the current file.
    fn write_scratch(&mut self) -> io::Result<()> {
        let Some((_, path, file)) = self.current.as_mut() else {
            return Ok(());
        };
        let result = file.write_all(&self.scratch);
        self.scratch.clear();
        result.map_err(|e| with_path(path, e))
    }

    /// Bytes the current file would have after writing `scratch`.
    fn pending_len(&self) -> u64 {
        self.current_len + self.scratch.len() as u64
    }

    fn start_file_if_needed(&mut self) {
        if self.current_len == 0 && self.scratch.is_empty() {
            let index = self.current.as_ref().map_or(0, |(i, _, _)| *i);
            let mut scratch = std::mem::take(&mut self.scratch);
            self.encoder().begin_file(index, &mut scratch);
            self.scratch = scratch;
        }
    }

    fn encode_one(&mut self, event: &RecordedEvent) -> io::Result<()> {
        self.start_file_if_needed();
        let before = self.scratch.len();
        let mut scratch = std::mem::take(&mut self.scratch);
        self.encoder().encode(event, &mut scratch);
        self.scratch = scratch;
        if self.pending_len() <= self.max_file_size {
            return Ok(());
        }
        // The event does not fit: close this file without it and encode it
        // again at the start of the next file (the encoder resets its
        // per-file state in begin_file, so the discarded bytes leave no trace).
        self.scratch.truncate(before);
        let written = self.scratch.len() as u64;
        self.write_scratch()?;
        self.current_len += written;
        self.open_next()?;
        self.start_file_if_needed();
        let mut scratch = std::mem::take(&mut self.scratch);
        self.encoder().encode(event, &mut scratch);
        self.scratch = scratch;
        Ok(())
    }
}

impl TraceWriter for RotatingWriter {
    fn begin(&mut self, metadata: &TraceMetadata) -> io::Result<()> {
        self.metadata = Some(metadata.clone());
        self.encoder = None;
        self.start_file_if_needed();
        Ok(())
    }

    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
        for event in events {
            self.encode_one(event)?;
            if self.scratch.len() >= CHUNK_BYTES {
                let written = self.scratch.len() as u64;
                self.write_scratch()?;
                self.current_len += written;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.start_file_if_needed();
        let written = self.scratch.len() as u64;
        self.write_scratch()?;
        self.current_len += written;
        if let Some((_, path, file)) = self.current.as_mut() {
            file.flush().map_err(|e| with_path(path, e))?;
        }
        Ok(())
    }
}

/// Discards every event; counts them. Use it to measure what recording
/// costs without any I/O.
///
/// # Examples
///
/// ```
/// use pulse::{NullWriter, RecordedEvent, TraceWriter};
///
/// let mut writer = NullWriter::new();
/// writer.write_batch(&[RecordedEvent::EventsDropped { timestamp_nanos: 0, count: 2 }])?;
/// assert_eq!(writer.events(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct NullWriter {
    events: u64,
    batches: u64,
}

impl NullWriter {
    /// A new writer with zero counts.
    pub fn new() -> Self {
        NullWriter::default()
    }

    /// Events received so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Batches received so far.
    pub fn batches(&self) -> u64 {
        self.batches
    }
}

impl TraceWriter for NullWriter {
    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
        self.events += events.len() as u64;
        self.batches += 1;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
