//! Trace writers: where the flusher thread sends batches of events.
//!
//! [`TraceWriter`] is the extension point; pulse ships a single growing file
//! ([`SimpleBinaryWriter`]), a size-bounded rotating set ([`RotatingWriter`])
//! and a writer that discards everything ([`NullWriter`], for measuring
//! pulse's own overhead). Byte layouts live in [`crate::format`] only.

use crate::error::Error;
use crate::record::records::Records;
use pulse_trace::RecordedEvent;
use pulse_trace::{Encoder, FormatVersion, PollRun, TraceEnd, TraceMetadata};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

    /// Writes a batch of events recorded by one thread, as pulse holds
    /// them in memory (compact records, decoded as they are read: see
    /// [`CompactEvents`]). Every event must be taken from `events`.
    ///
    /// The default decodes them [`COMPACT_CHUNK`] at a time into a reused
    /// slice and passes each to [`write_batch`](Self::write_batch). pulse's
    /// file writers and flight recorder encode them straight into the
    /// trace instead ([`Encoder::encode_iter`]), which saves the flusher
    /// the slice.
    fn write_compact(&mut self, events: &mut CompactEvents<'_>) -> io::Result<()> {
        while let Some(chunk) = events.next_chunk() {
            self.write_batch(chunk)?;
        }
        Ok(())
    }

    /// Pushes buffered bytes to the operating system.
    fn flush(&mut self) -> io::Result<()>;

    /// Called once at shutdown after the last batch; defaults to `flush`.
    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }

    /// Records how the recording ended (the end-of-trace record), after
    /// the last batch: at shutdown right before [`finish`](Self::finish),
    /// or before the process ends on a termination signal or a
    /// `panic = "abort"` panic (then followed by [`flush`](Self::flush)).
    /// A trace without it reads as "ended without shutdown". The default
    /// ignores it.
    fn end(&mut self, end: &TraceEnd) -> io::Result<()> {
        let _ = end;
        Ok(())
    }

    /// Prepares writing the window this writer keeps in memory as a trace
    /// at `path` (ending with `end`); the returned job writes it, on
    /// another thread, and returns the first file written. Only the
    /// in-memory flight recorder keeps a window; the default says so.
    fn dump(&mut self, path: &Path, end: &TraceEnd) -> io::Result<DumpJob> {
        let _ = end;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "cannot dump to {}: this writer keeps no window in memory \
                 (dumps need writer = \"memory\")",
                path.display()
            ),
        ))
    }
}

impl<W: TraceWriter + ?Sized> TraceWriter for Box<W> {
    fn begin(&mut self, metadata: &TraceMetadata) -> io::Result<()> {
        (**self).begin(metadata)
    }
    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
        (**self).write_batch(events)
    }
    fn write_compact(&mut self, events: &mut CompactEvents<'_>) -> io::Result<()> {
        (**self).write_compact(events)
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
    fn end(&mut self, end: &TraceEnd) -> io::Result<()> {
        (**self).end(end)
    }
    fn dump(&mut self, path: &Path, end: &TraceEnd) -> io::Result<DumpJob> {
        (**self).dump(path, end)
    }
}

/// Events [`CompactEvents::next_chunk`] decodes at a time (56 KiB of
/// [`RecordedEvent`]s).
pub const COMPACT_CHUNK: usize = 1024;

/// One thread's events as pulse holds them in memory, handed to
/// [`TraceWriter::write_compact`] by the flusher: an iterator that decodes
/// pulse's compact records (8–24 bytes per event) into [`RecordedEvent`]s
/// as it goes, in the order the thread recorded them.
///
/// Iterate it to encode events one by one (an encoding loop generic over
/// the iterator, like [`Encoder::encode_iter`], never stores them), or
/// take [`next_chunk`](Self::next_chunk) slices.
///
/// # Examples
///
/// A writer that counts events without storing them:
///
/// ```
/// use pulse::{CompactEvents, NullWriter, RecordedEvent, Recorder, TraceWriter};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// struct Counting(Arc<AtomicU64>);
///
/// impl TraceWriter for Counting {
///     fn write_batch(&mut self, events: &[RecordedEvent]) -> std::io::Result<()> {
///         self.0.fetch_add(events.len() as u64, Ordering::Relaxed);
///         Ok(())
///     }
///     fn write_compact(&mut self, events: &mut CompactEvents<'_>) -> std::io::Result<()> {
///         self.0.fetch_add(events.by_ref().count() as u64, Ordering::Relaxed);
///         Ok(())
///     }
///     fn flush(&mut self) -> std::io::Result<()> {
///         Ok(())
///     }
/// }
///
/// let counted = Arc::new(AtomicU64::new(0));
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// builder.worker_threads(1).enable_all();
/// let (runtime, guard) = Recorder::build(builder, Box::new(Counting(counted.clone())))?;
/// runtime.block_on(async {
///     tokio::spawn(async { tokio::time::sleep(std::time::Duration::from_millis(5)).await })
///         .await
///         .unwrap();
/// });
/// drop(runtime);
/// let summary = guard.finish()?;
/// assert_eq!(counted.load(Ordering::Relaxed), summary.events_written);
/// assert!(summary.events_written > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CompactEvents<'a> {
    records: Records<'a>,
    chunk: &'a mut Vec<RecordedEvent>,
    taken: u64,
}

impl<'a> CompactEvents<'a> {
    /// `records`, chunked through `chunk` (cleared and reused).
    pub(crate) fn new(records: Records<'a>, chunk: &'a mut Vec<RecordedEvent>) -> Self {
        CompactEvents {
            records,
            chunk,
            taken: 0,
        }
    }

    /// The next (up to) [`COMPACT_CHUNK`] events as a slice, or `None`
    /// once every event was taken.
    pub fn next_chunk(&mut self) -> Option<&[RecordedEvent]> {
        self.chunk.clear();
        while self.chunk.is_empty() {
            let more = self.records.decode_into(self.chunk, COMPACT_CHUNK);
            if !more && self.chunk.is_empty() {
                return None;
            }
        }
        self.taken += self.chunk.len() as u64;
        Some(self.chunk)
    }

    /// Encodes every event not taken yet with `encoder` into `out`: the
    /// bytes `encoder.encode_iter(self, out)` gives, without building the
    /// events of polls (they go from pulse's compact records to bytes).
    /// Returns how many events were encoded.
    pub fn encode_into(&mut self, encoder: &mut Encoder, out: &mut Vec<u8>) -> u64 {
        let count = self.records.encode_into(encoder, out);
        self.taken += count;
        count
    }

    /// Encodes events as [`encode_into`](Self::encode_into) does until
    /// `out` holds at least `limit` bytes; `false` once every event was
    /// taken.
    #[inline]
    fn encode_until(&mut self, encoder: &mut Encoder, out: &mut Vec<u8>, limit: usize) -> bool {
        let (count, more) = self.records.encode_until(encoder, out, limit);
        self.taken += count;
        more
    }

    /// Encodes the runs of PollStart and PollEnd records from here on
    /// (`Records::encode_polls`) while `out` holds less than `limit` bytes
    /// and their times are at most `until` (ns); stops at the first other
    /// record. Returns how many events were encoded.
    #[inline]
    fn encode_polls(
        &mut self,
        encoder: &mut Encoder,
        out: &mut Vec<u8>,
        limit: usize,
        until: u64,
    ) -> u64 {
        let count = self.records.encode_polls(encoder, out, limit, until);
        self.taken += count;
        count
    }

    /// The time of the next event if it is a poll's start or end, which
    /// [`encode_polls`](Self::encode_polls) may take.
    fn next_poll_time(&self) -> Option<u64> {
        self.records.next_poll_time()
    }

    /// The time of the latest event taken (of those with a time in the
    /// thread's stream).
    fn time(&self) -> u64 {
        self.records.time()
    }

    /// Encodes the next event as [`encode_into`](Self::encode_into) does,
    /// returning the position before it (for [`rewind`](Self::rewind)),
    /// or `None` once every event was taken.
    #[inline]
    fn encode_next(&mut self, encoder: &mut Encoder, out: &mut Vec<u8>) -> Option<Records<'a>> {
        let before = self.records.clone();
        if !self.records.encode_next(encoder, out) {
            return None;
        }
        self.taken += 1;
        Some(before)
    }

    /// Goes back to `before` (from [`encode_next`](Self::encode_next)):
    /// the event will be taken again.
    fn rewind(&mut self, before: Records<'a>) {
        self.records = before;
        self.taken -= 1;
    }

    /// How many events were taken so far.
    pub(crate) fn taken(&self) -> u64 {
        self.taken
    }
}

impl Iterator for CompactEvents<'_> {
    type Item = RecordedEvent;

    #[inline]
    fn next(&mut self) -> Option<RecordedEvent> {
        let event = self.records.next()?;
        self.taken += 1;
        Some(event)
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

/// Creates the missing directories above `path`, owner-only (`0700`), so
/// `path = "traces/api.bin"` works on a fresh checkout. Only when a writer
/// starts: a directory deleted while recording is not made again.
fn create_parent_dirs(path: &Path) -> Result<(), Error> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    // No shell expanded `~` (a PULSE_PATH set in a unit file, or quoted):
    // a directory named `~` would only confuse, and invite `rm -rf ~`.
    if let Some(std::path::Component::Normal(first)) = parent.components().next() {
        if first.to_str().is_some_and(|f| f.starts_with('~')) {
            return Err(Error::TraceFile {
                path: path.to_owned(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "no such directory, and `~` is not expanded here: use $HOME or an absolute path",
                ),
            });
        }
    }
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        dirs.mode(0o700);
    }
    dirs.create(parent).map_err(|source| Error::TraceFile {
        path: path.to_owned(),
        source,
    })
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

    /// Creates (or truncates) `path`, writing `version`. Missing
    /// directories above it are created (mode `0700`).
    pub fn with_format(path: impl AsRef<Path>, version: FormatVersion) -> Result<Self, Error> {
        let path = path.as_ref().to_owned();
        create_parent_dirs(&path)?;
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
        // The header and metadata reach the file at once: a process killed
        // before the first flush still leaves a trace that reads (and says
        // it ended without shutdown), not an empty file. A failure here
        // (a full disk) stays in the buffer and is reported by the
        // flusher's first flush, which stops recording with one message,
        // as a failure of any later write is.
        let _ = self.flush();
        Ok(())
    }

    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
        self.encoder(None)?;
        let encoder = self.encoder.as_mut().expect("initialised above");
        encoder.encode_all(events, &mut self.scratch);
        self.write_scratch()
    }

    fn write_compact(&mut self, events: &mut CompactEvents<'_>) -> io::Result<()> {
        self.encoder(None)?;
        let encoder = self.encoder.as_mut().expect("initialised above");
        // Written every CHUNK_BYTES, so the encoded bytes held stay within
        // that whatever the batch.
        while events.encode_until(encoder, &mut self.scratch, CHUNK_BYTES) {
            let result = self.file.write_all(&self.scratch);
            self.scratch.clear();
            result.map_err(|e| with_path(&self.path, e))?;
        }
        self.write_scratch()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.encoder(None)?;
        self.write_scratch()?;
        self.file.flush().map_err(|e| with_path(&self.path, e))
    }

    fn end(&mut self, end: &TraceEnd) -> io::Result<()> {
        self.encoder(None)?;
        let encoder = self.encoder.as_mut().expect("initialised above");
        encoder.encode_end(end, &mut self.scratch);
        self.write_scratch()
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
    /// format (v6), and the missing directories above it (mode `0700`).
    /// See [`RotatingWriter::format`] for v5.
    pub fn new(
        path: impl AsRef<Path>,
        max_file_size: u64,
        max_total_size: u64,
    ) -> Result<Self, Error> {
        Self::check_limits(max_file_size, max_total_size)?;
        let base = path.as_ref().to_owned();
        create_parent_dirs(&base)?;
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

    /// Writes `scratch` to the current file and counts it in the file's
    /// length.
    fn write_scratch(&mut self) -> io::Result<()> {
        let written = self.scratch.len() as u64;
        if let Some((_, path, file)) = self.current.as_mut() {
            let result = file.write_all(&self.scratch);
            self.scratch.clear();
            result.map_err(|e| with_path(path, e))?;
        } else {
            self.scratch.clear();
        }
        self.current_len += written;
        Ok(())
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

    /// Encodes `events` one by one (each file ends where the next event
    /// would not fit), writing every [`CHUNK_BYTES`].
    #[inline]
    fn write_events(&mut self, events: impl Iterator<Item = RecordedEvent>) -> io::Result<()> {
        for event in events {
            self.encode_one(&event)?;
            if self.scratch.len() >= CHUNK_BYTES {
                self.write_scratch()?;
            }
        }
        Ok(())
    }

    #[inline]
    fn encode_one(&mut self, event: &RecordedEvent) -> io::Result<()> {
        self.encode_fitting(|encoder, out| encoder.encode(event, out))
    }

    /// Encodes one record with `encode` at the end of the current file or,
    /// when the file would then pass `max_file_size`, closes the file
    /// without it and encodes it again (`encode` is called a second time,
    /// for the same record) at the start of the next file. The encoder
    /// resets its per-file state in `begin_file`, so the discarded bytes
    /// leave no trace.
    #[inline]
    fn encode_fitting<T>(
        &mut self,
        mut encode: impl FnMut(&mut Encoder, &mut Vec<u8>) -> T,
    ) -> io::Result<T> {
        self.start_file_if_needed();
        let before = self.scratch.len();
        let mut scratch = std::mem::take(&mut self.scratch);
        let encoded = encode(self.encoder(), &mut scratch);
        self.scratch = scratch;
        if self.pending_len() <= self.max_file_size {
            return Ok(encoded);
        }
        self.scratch.truncate(before);
        self.write_scratch()?;
        self.open_next()?;
        self.start_file_if_needed();
        let mut scratch = std::mem::take(&mut self.scratch);
        let encoded = encode(self.encoder(), &mut scratch);
        self.scratch = scratch;
        Ok(encoded)
    }
}

impl TraceWriter for RotatingWriter {
    fn begin(&mut self, metadata: &TraceMetadata) -> io::Result<()> {
        self.metadata = Some(metadata.clone());
        self.encoder = None;
        // As for a single file: the first file's header and metadata reach
        // the disk at once, and a failure is reported by the first flush.
        let _ = self.flush();
        Ok(())
    }

    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
        self.write_events(events.iter().copied())
    }

    fn write_compact(&mut self, events: &mut CompactEvents<'_>) -> io::Result<()> {
        // As `write_events`, with the polls encoded straight from pulse's
        // compact records.
        loop {
            // Runs of polls while the file has room for the longest poll
            // record: the run stops before the file's limit, and the
            // record that follows goes the one-by-one way below, which
            // ends the file where it always does.
            self.start_file_if_needed();
            let room = self.max_file_size.saturating_sub(self.pending_len());
            let limit = (self.scratch.len() as u64 + room)
                .saturating_sub(PollRun::MAX_RECORD_LEN as u64)
                .min(CHUNK_BYTES as u64) as usize;
            let mut scratch = std::mem::take(&mut self.scratch);
            events.encode_polls(self.encoder(), &mut scratch, limit, u64::MAX);
            self.scratch = scratch;
            // Encoded again for the next file: from where it started.
            let mut started = None;
            let encoded = self.encode_fitting(|encoder, out| {
                if let Some(position) = started.take() {
                    events.rewind(position);
                }
                started = events.encode_next(encoder, out);
                started.is_some()
            })?;
            if !encoded {
                return Ok(());
            }
            if self.scratch.len() >= CHUNK_BYTES {
                self.write_scratch()?;
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.start_file_if_needed();
        self.write_scratch()?;
        if let Some((_, path, file)) = self.current.as_mut() {
            file.flush().map_err(|e| with_path(path, e))?;
        }
        Ok(())
    }

    fn end(&mut self, end: &TraceEnd) -> io::Result<()> {
        // Every file stays within max_file_size: the end record too.
        self.encode_fitting(|encoder, out| encoder.encode_end(end, out))?;
        self.write_scratch()?;
        Ok(())
    }
}

/// Discards every event; counts them. Use it to measure what recording
/// costs without any I/O. It counts compact records by decoding them one
/// by one (no slice, no encoding), a step pulse's file writers and flight
/// recorder skip: the flusher thread's cost measured with it is not
/// theirs.
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

    fn write_compact(&mut self, events: &mut CompactEvents<'_>) -> io::Result<()> {
        // Taken one by one, without the default's slice.
        self.events += events.by_ref().count() as u64;
        self.batches += 1;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Smallest accepted flight-recorder size.
pub const MIN_MEMORY_SIZE: u64 = 64 * 1024;

/// One self-contained piece of the flight recorder's window: a v6 file's
/// bytes (header, metadata, events), with the span of its events. Sealed
/// chunks are shared with dumps in progress, never copied.
#[derive(Debug)]
struct Chunk {
    bytes: Arc<Vec<u8>>,
    /// Where the events begin (after the header and metadata).
    body: usize,
    first_ns: u64,
    last_ns: u64,
}

/// The writing of a dump, prepared by [`TraceWriter::dump`] on the
/// flusher thread and run on another thread, so that recording goes on
/// while the files are written.
///
/// # Examples
///
/// A writer keeping its window elsewhere returns a job that writes it:
///
/// ```
/// use pulse::DumpJob;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("window.bin");
/// let job = DumpJob::new({
///     let path = path.clone();
///     move || std::fs::write(&path, b"...").map(|()| path)
/// });
/// assert_eq!(job.run()?, path);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct DumpJob(Box<dyn FnOnce() -> io::Result<PathBuf> + Send>);

impl DumpJob {
    /// A job that runs `write`, which returns the first file written.
    pub fn new(write: impl FnOnce() -> io::Result<PathBuf> + Send + 'static) -> DumpJob {
        DumpJob(Box::new(write))
    }

    /// Writes the dump.
    pub fn run(self) -> io::Result<PathBuf> {
        (self.0)()
    }
}

impl std::fmt::Debug for DumpJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DumpJob")
    }
}

/// The in-memory flight recorder: keeps the last `max_size` bytes or
/// `max_seconds` seconds of the encoded trace, whichever is less, writes
/// nothing in steady state, and writes its window as a trace on
/// [`dump`](TraceWriter::dump).
///
/// The window is kept as chunks of about `max_size / 8` bytes (at least
/// 64 KiB, at most 8 MiB) or `max_seconds / 8`, each encoded as a
/// self-contained v6 file; the oldest chunk goes when the window would
/// exceed either limit, so the window holds between 7/8 of the limits and
/// the limits. A dump of `incident.bin` writes the chunks as the rotated
/// set `incident.0.bin`, `incident.1.bin`, ... (every tool reads a set by
/// its base name, and each file reads on its own), the last one ending
/// with an end-of-trace record that says it is a dump. Preparing a dump
/// shares the sealed chunks and copies only the one being written; the
/// files are written by the returned [`DumpJob`], off the flusher thread.
///
/// # Examples
///
/// ```
/// use pulse::{MemoryWriter, RecordedEvent, TraceWriter};
/// use pulse::trace::{EndReason, TraceEnd, TraceSet, TraceScan};
///
/// let dir = tempfile::tempdir()?;
/// let mut writer = MemoryWriter::new(1 << 20, 30)?;
/// for i in 0..1000 {
///     writer.write_batch(&[RecordedEvent::QueueSample { timestamp_nanos: i * 1_000_000, global_queue: i }])?;
/// }
/// let end = TraceEnd::new(1_000_000_000, EndReason::Dump);
/// let first = writer.dump(&dir.path().join("incident.bin"), &end)?.run()?;
/// assert!(first.ends_with("incident.0.bin"));
///
/// let mut scan = TraceScan::open(&TraceSet::open(dir.path().join("incident.bin"))?)?;
/// let mut events = 0;
/// while scan.next_event()?.is_some() {
///     events += 1;
/// }
/// assert_eq!(events, 1000);
/// assert_eq!(scan.end().map(|end| end.reason), Some(EndReason::Dump));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MemoryWriter {
    max_size: u64,
    max_nanos: u64,
    chunk_size: usize,
    chunk_nanos: u64,
    metadata: Option<TraceMetadata>,
    encoder: Option<Encoder>,
    /// Sealed chunks, oldest first.
    sealed: std::collections::VecDeque<Chunk>,
    /// The chunk being written (its bytes, where its events begin, span).
    current: Vec<u8>,
    current_body: usize,
    current_span: (u64, u64),
    /// Bytes of every chunk, the current one included.
    total: u64,
    next_index: u64,
    /// An evicted chunk's buffer, reused for the next one.
    spare: Option<Vec<u8>>,
    /// Latest timestamp seen.
    newest_ns: u64,
}

impl MemoryWriter {
    /// A flight recorder keeping at most `max_size` encoded bytes and
    /// `max_seconds` seconds.
    ///
    /// # Errors
    ///
    /// `max_size` is below 64 KiB or `max_seconds` is 0.
    pub fn new(max_size: u64, max_seconds: u64) -> Result<Self, Error> {
        Self::check_limits(max_size, max_seconds)?;
        let chunk_size = (max_size / 8).clamp(MIN_MEMORY_SIZE, 8 << 20) as usize;
        Ok(MemoryWriter {
            max_size,
            max_nanos: max_seconds.saturating_mul(1_000_000_000),
            chunk_size,
            chunk_nanos: max_seconds.saturating_mul(1_000_000_000) / 8,
            metadata: None,
            encoder: None,
            sealed: Default::default(),
            current: Vec::new(),
            current_body: 0,
            current_span: (u64::MAX, 0),
            total: 0,
            next_index: 0,
            spare: None,
            newest_ns: 0,
        })
    }

    /// Selects the format version. The flight recorder always writes v6
    /// (its dumps carry metadata and an end record), so this changes
    /// nothing; it exists so every writer is configured alike.
    pub fn format(self, version: FormatVersion) -> Self {
        let _ = version;
        self
    }

    pub(crate) fn check_limits(max_size: u64, max_seconds: u64) -> Result<(), Error> {
        if max_size < MIN_MEMORY_SIZE {
            return Err(Error::invalid(
                "memory_size",
                format!("{max_size} bytes is below the minimum of {MIN_MEMORY_SIZE}"),
            ));
        }
        if max_seconds == 0 {
            return Err(Error::invalid(
                "memory_seconds",
                "must be at least 1 second",
            ));
        }
        Ok(())
    }

    /// Encoded bytes held now.
    pub fn window_bytes(&self) -> u64 {
        self.total
    }

    /// The span of the events held now (ns since the trace started), if any.
    pub fn window(&self) -> Option<(u64, u64)> {
        let spans = self
            .sealed
            .iter()
            .map(|c| (c.first_ns, c.last_ns))
            .chain(std::iter::once(self.current_span));
        let first = spans.clone().map(|s| s.0).min()?;
        let last = spans.map(|s| s.1).max()?;
        (first <= last).then_some((first, last))
    }

    fn encoder(&mut self) -> &mut Encoder {
        let metadata = &self.metadata;
        self.encoder.get_or_insert_with(|| {
            let metadata = metadata.clone().unwrap_or_else(standalone_metadata);
            Encoder::new(FormatVersion::V6, metadata)
        })
    }

    /// Seals the current chunk (if it holds events) and starts a new one.
    fn start_chunk(&mut self) {
        let mut bytes = self.spare.take().unwrap_or_default();
        bytes.clear();
        bytes.reserve(self.chunk_size + 1024);
        let old = std::mem::replace(&mut self.current, bytes);
        if old.len() > self.current_body {
            self.sealed.push_back(Chunk {
                bytes: Arc::new(old),
                body: self.current_body,
                first_ns: self.current_span.0,
                last_ns: self.current_span.1,
            });
        } else {
            self.total -= old.len() as u64;
        }
        let index = self.next_index;
        self.next_index += 1;
        let mut current = std::mem::take(&mut self.current);
        self.encoder().begin_file(index, &mut current);
        self.current = current;
        self.current_body = self.current.len();
        self.current_span = (u64::MAX, 0);
        self.total += self.current.len() as u64;
        self.evict();
    }

    fn evict(&mut self) {
        while let Some(oldest) = self.sealed.front() {
            let too_big = self.total > self.max_size;
            let too_old = oldest.last_ns < self.newest_ns.saturating_sub(self.max_nanos);
            if !(too_big || too_old) {
                break;
            }
            if let Some(chunk) = self.sealed.pop_front() {
                self.total -= chunk.bytes.len() as u64;
                // Reuse the buffer unless a dump still writes it.
                if let Ok(bytes) = Arc::try_unwrap(chunk.bytes) {
                    self.spare = Some(bytes);
                }
            }
        }
    }
}

impl TraceWriter for MemoryWriter {
    fn begin(&mut self, metadata: &TraceMetadata) -> io::Result<()> {
        self.metadata = Some(metadata.clone());
        self.encoder = None;
        self.sealed.clear();
        self.current.clear();
        self.current_body = 0;
        self.total = 0;
        self.start_chunk();
        Ok(())
    }

    fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
        if self.encoder.is_none() {
            self.start_chunk();
        }
        let mut events = events.iter().peekable();
        while events.peek().is_some() {
            // Encode into the current chunk while it has room, with the
            // encoder borrowed once (this loop is the flusher's hot path).
            let encoder = self.encoder.as_mut().expect("started above");
            let before = self.current.len();
            let (mut first, mut last) = self.current_span;
            while let Some(event) = events.peek() {
                let timestamp = event.timestamp_nanos();
                if self.current.len() >= self.chunk_size
                    || (first != u64::MAX && timestamp.saturating_sub(first) > self.chunk_nanos)
                {
                    break;
                }
                encoder.encode(event, &mut self.current);
                first = first.min(timestamp);
                last = last.max(timestamp);
                events.next();
            }
            self.current_span = (first, last);
            self.total += (self.current.len() - before) as u64;
            self.newest_ns = self.newest_ns.max(last);
            if events.peek().is_some() {
                self.start_chunk();
            }
        }
        Ok(())
    }

    fn write_compact(&mut self, events: &mut CompactEvents<'_>) -> io::Result<()> {
        // As `write_batch`, with the polls encoded straight from pulse's
        // compact records: runs of them while the chunk has room and their
        // times stay within the chunk's span, then one event the ordinary
        // way (which starts the next chunk where `write_batch` would).
        if self.encoder.is_none() {
            self.start_chunk();
        }
        loop {
            if let (Some(next), Some(encoder)) = (events.next_poll_time(), self.encoder.as_mut()) {
                let (first, last) = self.current_span;
                let first = first.min(next);
                let before = self.current.len();
                let until = first.saturating_add(self.chunk_nanos);
                if events.encode_polls(encoder, &mut self.current, self.chunk_size, until) > 0 {
                    // A thread's records are in time order: the run's
                    // last is its latest.
                    let latest = events.time();
                    self.current_span = (first, last.max(latest));
                    self.total += (self.current.len() - before) as u64;
                    self.newest_ns = self.newest_ns.max(latest);
                }
            }
            let Some(event) = events.next() else {
                return Ok(());
            };
            self.write_batch(std::slice::from_ref(&event))?;
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn dump(&mut self, path: &Path, end: &TraceEnd) -> io::Result<DumpJob> {
        let metadata = self.metadata.clone().unwrap_or_else(standalone_metadata);
        let mut pieces: Vec<(Arc<Vec<u8>>, usize)> = self
            .sealed
            .iter()
            .map(|chunk| (chunk.bytes.clone(), chunk.body))
            .collect();
        if self.current.len() > self.current_body {
            pieces.push((Arc::new(self.current.clone()), self.current_body));
        }
        if pieces.is_empty() {
            return Err(io::Error::other("the flight recorder holds no events yet"));
        }
        // Fail here, on the caller's watch, if the place is unwritable.
        let first_path = pulse_trace::rotated_path(path, 0);
        let first = create_trace_file(&first_path).map_err(io::Error::from)?;
        let (path, end) = (path.to_owned(), *end);
        Ok(DumpJob::new(move || {
            write_dump(&path, first, &metadata, &pieces, &end)
        }))
    }
}

/// Writes a dump's pieces as the rotated set at `path` (`first` is file 0,
/// already created), removing its files if any write fails.
fn write_dump(
    path: &Path,
    first: File,
    metadata: &TraceMetadata,
    pieces: &[(Arc<Vec<u8>>, usize)],
    end: &TraceEnd,
) -> io::Result<PathBuf> {
    let mut written = Vec::new();
    let mut first = Some(first);
    let result = (|| {
        for (i, (bytes, body)) in pieces.iter().enumerate() {
            let file_path = pulse_trace::rotated_path(path, i as u64);
            let file = match first.take() {
                Some(file) => file,
                None => create_trace_file(&file_path).map_err(io::Error::from)?,
            };
            written.push(file_path.clone());
            // Number the dump's files from 0: a new header and metadata
            // with each file's index in the dump, then the chunk's events.
            let mut encoder = Encoder::new(FormatVersion::V6, metadata.clone());
            let mut head = Vec::new();
            encoder.begin_file(i as u64, &mut head);
            let mut out = BufWriter::with_capacity(CHUNK_BYTES, file);
            let write = |out: &mut BufWriter<File>, data: &[u8]| {
                out.write_all(data).map_err(|e| with_path(&file_path, e))
            };
            write(&mut out, &head)?;
            write(&mut out, bytes.get(*body..).unwrap_or_default())?;
            if i + 1 == pieces.len() {
                let mut tail = Vec::new();
                encoder.encode_end(end, &mut tail);
                write(&mut out, &tail)?;
            }
            out.flush().map_err(|e| with_path(&file_path, e))?;
        }
        // Files of an earlier dump to the same path beyond this one's would
        // read as part of it.
        for stale in pulse_trace::rotated_files(path)? {
            if !written.contains(&stale) {
                std::fs::remove_file(&stale).map_err(|e| with_path(&stale, e))?;
            }
        }
        Ok(pulse_trace::rotated_path(path, 0))
    })();
    if result.is_err() {
        for file in &written {
            let _ = std::fs::remove_file(file);
        }
    }
    result
}

/// Issue 11: pulse's file writers and flight recorder encode compact
/// records straight into v6 (`write_compact`); the bytes must be the ones
/// decoding them into events and encoding those gives (`write_batch`).
#[cfg(test)]
mod compact_tests {
    use super::*;
    use crate::config::Config;
    use crate::record::collector::Batch;
    use crate::record::hooks::{
        flush_current_thread, record_park, record_poll_end, record_poll_start, record_unpark,
    };
    use crate::record::shared::Shared;
    use crate::record::triggers::Watched;
    use proptest::prelude::*;
    use pulse_trace::{SpawnLocation, TraceReader};
    use std::panic::Location;
    use std::sync::Mutex;

    /// Both encodings of everything a writer is given, side by side.
    #[derive(Debug)]
    struct Both {
        sliced: Encoder,
        iterated: Encoder,
        direct: Encoder,
        sliced_bytes: Vec<u8>,
        iterated_bytes: Vec<u8>,
        direct_bytes: Vec<u8>,
        compact_batches: u64,
    }

    impl Both {
        fn new() -> Both {
            let metadata = TraceMetadata::default();
            Both {
                sliced: Encoder::new(FormatVersion::V6, metadata.clone()),
                iterated: Encoder::new(FormatVersion::V6, metadata.clone()),
                direct: Encoder::new(FormatVersion::V6, metadata),
                sliced_bytes: Vec::new(),
                iterated_bytes: Vec::new(),
                direct_bytes: Vec::new(),
                compact_batches: 0,
            }
        }

        /// Encodes one batch both ways; returns its events.
        fn compact(&mut self, events: &mut CompactEvents<'_>) -> u64 {
            let decoded: Vec<RecordedEvent> = events.records.clone().collect();
            self.sliced.encode_all(&decoded, &mut self.sliced_bytes);
            // The iterator encoded by `encode_iter`, and the compact
            // records' own transcoding.
            let mut iterated = events.records.clone();
            self.iterated
                .encode_iter(&mut iterated, &mut self.iterated_bytes);
            let encoded = events.encode_into(&mut self.direct, &mut self.direct_bytes);
            assert_eq!(encoded, decoded.len() as u64);
            assert_eq!(events.taken(), encoded);
            assert_eq!(events.next(), None);
            self.compact_batches += 1;
            encoded
        }

        fn check(&self) -> usize {
            assert_eq!(self.sliced_bytes, self.iterated_bytes);
            assert_eq!(self.sliced_bytes, self.direct_bytes);
            if self.direct_bytes.is_empty() {
                // Nothing was recorded (no file either way).
                return 0;
            }
            TraceReader::from_reader(&self.direct_bytes[..], "direct.bin")
                .expect("a trace")
                .collect::<Result<Vec<_>, _>>()
                .expect("decodes")
                .len()
        }
    }

    /// Hands `Both` every batch of a real recording.
    struct Shared2(Arc<Mutex<Both>>);

    impl TraceWriter for Shared2 {
        fn write_batch(&mut self, events: &[RecordedEvent]) -> io::Result<()> {
            let mut both = self.0.lock().unwrap();
            let both = &mut *both;
            both.sliced.encode_all(events, &mut both.sliced_bytes);
            both.iterated.encode_all(events, &mut both.iterated_bytes);
            both.direct.encode_all(events, &mut both.direct_bytes);
            Ok(())
        }
        fn write_compact(&mut self, events: &mut CompactEvents<'_>) -> io::Result<()> {
            self.0.lock().unwrap().compact(events);
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A real recording (two workers; yields, sleeps, spawns from three
    /// places, a gap longer than a compact delta, small buffers so they
    /// are handed over and copied): the same bytes both ways.
    #[test]
    #[cfg_attr(
        not(tokio_unstable),
        ignore = "polls are recorded with --cfg tokio_unstable only"
    )]
    fn a_real_recording_encodes_the_same_both_ways() {
        let both = Arc::new(Mutex::new(Both::new()));
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(2).enable_all();
        let config = Config::new().buffer_events(64).flush_ms(2);
        let (runtime, guard) =
            crate::Recorder::build_with_config(builder, Box::new(Shared2(both.clone())), &config)
                .expect("recorder");
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..16u64 {
                tasks.push(tokio::spawn(async move {
                    for _ in 0..200 {
                        tokio::task::yield_now().await;
                    }
                    tokio::time::sleep(std::time::Duration::from_micros(300 * i)).await;
                }));
                tasks.push(tokio::spawn(async {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            // Longer than a compact record's delta (16.8 ms): a SET_TIME.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            tokio::spawn(async { tokio::task::yield_now().await })
                .await
                .unwrap();
        });
        drop(runtime);
        let summary = guard.finish().expect("finish");
        assert_eq!(summary.dropped_events, 0);
        let both = both.lock().unwrap();
        assert!(
            both.compact_batches > 10,
            "{} batches",
            both.compact_batches
        );
        let events = both.check();
        assert!(
            events as u64 >= summary.events_written,
            "{events} events read, {} written",
            summary.events_written
        );
        assert!(summary.events_written > 16 * 200 * 2);
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Poll {
            worker: u32,
            task: u64,
            site: usize,
            latency: Option<u64>,
        },
        Park {
            worker: u32,
        },
        Copy,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u32..3, any::<u64>(), 0usize..3, proptest::option::of(0u64..1 << 40))
                .prop_map(|(worker, task, site, latency)| Op::Poll { worker, task, site, latency }),
            2 => (0u32..3).prop_map(|worker| Op::Park { worker }),
            1 => Just(Op::Copy),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the hooks record (workers changing, locations
        /// changing, schedule latencies, parks with and without readings,
        /// hand-overs and copies at any point), encoding the compact
        /// records directly gives the bytes decoding and encoding gives,
        /// and `dump_on`'s watch reads the same in both.
        #[test]
        fn compact_records_encode_like_their_events(
            ops in proptest::collection::vec(op(), 1..400),
            buffer_events in 2usize..40,
        ) {
            let sites = [Location::caller(), Location::caller(), Location::caller()];
            let shared = Arc::new(Shared::new(&Config::new().buffer_events(buffer_events)));
            for op in &ops {
                match *op {
                    Op::Poll { worker, task, site, latency } => {
                        record_poll_start(&shared, worker, task, SpawnLocation(sites[site]), latency);
                        record_poll_end(&shared);
                    }
                    Op::Park { worker } => {
                        record_park(&shared, worker);
                        record_unpark(&shared, worker);
                    }
                    Op::Copy => {
                        // The flusher copying out of the live buffer.
                        let slot = shared.slots().first().cloned();
                        if let Some(slot) = slot {
                            slot.copy_out(&shared.collector, false);
                        }
                    }
                }
            }
            flush_current_thread(&shared);
            let mut batches = Vec::new();
            shared.collector.drain(&mut batches);
            let mut both = Both::new();
            let mut chunk = Vec::new();
            let mut events = 0;
            for batch in &batches {
                // What `dump_on`'s watch reads, found without the events.
                let mut watched = Vec::new();
                batch.records().watched(|w| watched.push(w));
                let expected: Vec<Watched> = batch.records().filter_map(|e| Watched::of(&e)).collect();
                prop_assert_eq!(watched, expected);
                events += both.compact(&mut CompactEvents::new(batch.records(), &mut chunk));
            }
            let expected: usize = batches.iter().map(|b: &Batch| b.records().count()).sum();
            prop_assert_eq!(events, expected as u64);
            prop_assert_eq!(both.check(), expected);
            prop_assert_eq!(shared.collector.dropped(), 0);
        }
    }

    /// The rotating writer (the default) cuts files where the next event
    /// would not fit; taking compact records it writes the same files, byte
    /// for byte, as taking their events.
    #[test]
    fn rotating_files_are_the_same_from_compact_records() {
        // Mixed records, and long runs of polls (a yield storm's: one
        // spawn site, no latency), which the writer encodes as runs.
        rotating_files_match(7, 5);
        rotating_files_match(u64::MAX, u64::MAX);
    }

    /// What the hooks hand over for 40,000 polls on two workers (one site
    /// in `site_every` and one latency in `latency_every`), and a park
    /// every 100 polls.
    fn recorded_batches(site_every: u64, latency_every: u64) -> Vec<Batch> {
        let shared = Arc::new(Shared::new(&Config::new().buffer_events(512)));
        let sites = [Location::caller(), Location::caller()];
        for task in 0..40_000u64 {
            let worker = u32::from(task % 3000 < 1000);
            let site = SpawnLocation(sites[(task % site_every == 0) as usize]);
            // Some polls carry their task's schedule latency (0x8C).
            let latency = (task % latency_every == 0).then_some(task);
            record_poll_start(&shared, worker, task, site, latency);
            record_poll_end(&shared);
            if task % 100 == 0 {
                record_park(&shared, worker);
                record_unpark(&shared, worker);
            }
        }
        flush_current_thread(&shared);
        let mut batches = Vec::new();
        shared.collector.drain(&mut batches);
        batches
    }

    /// Gives `writer` every batch, as compact records or as their events.
    fn feed(writer: &mut dyn TraceWriter, batches: &[Batch], compact: bool) {
        let mut chunk = Vec::new();
        for batch in batches {
            if compact {
                let mut events = CompactEvents::new(batch.records(), &mut chunk);
                writer.write_compact(&mut events).unwrap();
                assert_eq!(events.taken(), batch.records().count() as u64);
            } else {
                let events: Vec<_> = batch.records().collect();
                writer.write_batch(&events).unwrap();
            }
        }
    }

    /// One site in `site_every` polls and one latency in `latency_every`.
    fn rotating_files_match(site_every: u64, latency_every: u64) {
        let batches = recorded_batches(site_every, latency_every);
        let dir = tempfile::tempdir().unwrap();
        let metadata = TraceMetadata::default();
        let write = |name: &str, compact: bool| {
            let path = dir.path().join(name).join("trace.bin");
            let mut writer = RotatingWriter::new(&path, MIN_ROTATING_FILE_SIZE, 1 << 30).unwrap();
            writer.begin(&metadata).unwrap();
            feed(&mut writer, &batches, compact);
            writer.finish().unwrap();
            writer
                .files()
                .iter()
                .map(|file| std::fs::read(file).unwrap())
                .collect::<Vec<_>>()
        };
        let sliced = write("sliced", false);
        let compact = write("compact", true);
        assert!(
            sliced.len() >= 3,
            "{} files: rotation not exercised",
            sliced.len()
        );
        assert_eq!(sliced, compact);
    }

    /// The flight recorder cuts a chunk where the next event would pass its
    /// size or its time span, and evicts the oldest chunks; taking compact
    /// records it holds the same chunks, byte for byte and with the same
    /// spans, as taking their events.
    #[test]
    fn memory_chunks_are_the_same_from_compact_records() {
        for (site_every, latency_every) in [(7, 5), (u64::MAX, u64::MAX)] {
            let batches = recorded_batches(site_every, latency_every);
            // Chunks cut by size (2 KiB), then by time (10 µs).
            for (chunk_size, chunk_nanos) in [(2048, u64::MAX), (1 << 20, 10_000)] {
                let hold = |compact: bool| {
                    let mut writer = MemoryWriter::new(MIN_MEMORY_SIZE, 3600).unwrap();
                    writer.chunk_size = chunk_size;
                    writer.chunk_nanos = chunk_nanos;
                    writer.begin(&TraceMetadata::default()).unwrap();
                    feed(&mut writer, &batches, compact);
                    let chunks: Vec<_> = writer
                        .sealed
                        .iter()
                        .map(|c| (c.bytes.to_vec(), c.body, c.first_ns, c.last_ns))
                        .collect();
                    let current = (writer.current.clone(), writer.current_span);
                    let counts = (writer.total, writer.newest_ns, writer.next_index);
                    (chunks, current, counts, writer.window())
                };
                let sliced = hold(false);
                let compact = hold(true);
                let (chunks, _, (_, _, made), _) = &sliced;
                assert!(
                    chunks.len() >= 3,
                    "{} chunks: cutting not exercised",
                    chunks.len()
                );
                assert!(*made > chunks.len() as u64 + 1, "no chunk was evicted");
                assert!(
                    sliced == compact,
                    "the chunks differ ({chunk_size} B, {chunk_nanos} ns)"
                );
            }
        }
    }

    /// The null writer counts compact records as it counts their events,
    /// and takes every one.
    #[test]
    fn the_null_writer_counts_compact_records_as_events() {
        let batches = recorded_batches(7, 5);
        let count = |compact: bool| {
            let mut writer = NullWriter::new();
            feed(&mut writer, &batches, compact);
            writer.events()
        };
        let events: u64 = batches.iter().map(|b| b.records().count() as u64).sum();
        assert!(events > 80_000, "{events} events");
        assert_eq!(count(true), events);
        assert_eq!(count(false), events);
    }

    /// `next_chunk` gives every event once, in order, in slices of at most
    /// `COMPACT_CHUNK`.
    #[test]
    fn chunks_hold_every_event_in_order() {
        let shared = Arc::new(Shared::new(&Config::new().buffer_events(4096)));
        let here = SpawnLocation(Location::caller());
        for task in 0..3000 {
            record_poll_start(&shared, 0, task, here, None);
            record_poll_end(&shared);
        }
        flush_current_thread(&shared);
        let mut batches = Vec::new();
        shared.collector.drain(&mut batches);
        let mut chunk = Vec::new();
        let mut chunked = Vec::new();
        let mut sizes = Vec::new();
        for batch in &batches {
            let mut events = CompactEvents::new(batch.records(), &mut chunk);
            while let Some(slice) = events.next_chunk() {
                sizes.push(slice.len());
                chunked.extend_from_slice(slice);
            }
            assert_eq!(events.taken(), batch.records().count() as u64);
        }
        let all: Vec<RecordedEvent> = batches.iter().flat_map(Batch::records).collect();
        assert_eq!(chunked, all);
        assert!(all.len() > 6000);
        assert!(sizes.iter().all(|&n| n > 0 && n <= COMPACT_CHUNK));
        assert!(sizes.contains(&COMPACT_CHUNK));
    }
}
