//! Errors from reading a trace: where (file and byte offset) and what.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An error reading a trace file.
///
/// It names the file, the byte offset of the record (or header) that could
/// not be read, and what was wrong with it. [`Display`](fmt::Display) gives
/// one line such as
/// `trace.bin: byte 1234: truncated WorkerPark record (needs 11 bytes, 3 left)`.
///
/// # Examples
///
/// ```
/// use pulse_trace::{TraceErrorKind, TraceReader};
///
/// let err = TraceReader::from_reader(&b"NOTATRACE..."[..], "trace.bin").unwrap_err();
/// assert!(matches!(err.kind(), TraceErrorKind::BadMagic { .. }));
/// assert_eq!(err.offset(), 0);
/// assert_eq!(
///     err.to_string(),
///     r#"trace.bin: byte 0: not a pulse trace: expected magic "TOKIOTRC", found "NOTATRAC""#
/// );
/// ```
///
/// [`source`](std::error::Error::source) is the underlying [`io::Error`] for
/// [`TraceErrorKind::Io`] and `None` otherwise (the message already says
/// everything).
#[derive(Debug)]
pub struct TraceError {
    path: PathBuf,
    offset: u64,
    kind: TraceErrorKind,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: byte {}: {}",
            self.path.display(),
            self.offset,
            self.kind
        )
    }
}

impl std::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            TraceErrorKind::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl TraceError {
    /// An error at byte `offset` of the file at `path`.
    pub fn new(path: impl Into<PathBuf>, offset: u64, kind: TraceErrorKind) -> Self {
        TraceError {
            path: path.into(),
            offset,
            kind,
        }
    }

    /// The file being read (or the name given to
    /// [`TraceReader::from_reader`](super::TraceReader::from_reader)).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The byte offset, from the start of the file, of the record or header
    /// that failed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What went wrong.
    pub fn kind(&self) -> &TraceErrorKind {
        &self.kind
    }

    /// Whether the data simply ended early, as it does when the writing
    /// process was killed mid-write: every event before the error is sound.
    pub fn is_truncation(&self) -> bool {
        matches!(self.kind, TraceErrorKind::Truncated { .. })
    }

    /// Consumes the error, returning what went wrong.
    pub fn into_kind(self) -> TraceErrorKind {
        self.kind
    }
}

/// What went wrong reading a trace (see [`TraceError`] for where).
///
/// ```
/// use pulse_trace::{TraceErrorKind, TraceReader};
///
/// let err = TraceReader::from_reader(&b"TOKIOTRC\x09\0\0\0"[..], "t.bin").unwrap_err();
/// assert!(matches!(err.kind(), TraceErrorKind::UnsupportedVersion { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceErrorKind {
    /// Opening or reading the file failed.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
    /// The file does not start with [`MAGIC`](super::MAGIC).
    #[error(
        "not a pulse trace: expected magic \"TOKIOTRC\", found \"{}\"",
        found.escape_ascii()
    )]
    BadMagic {
        /// The first eight bytes of the file.
        found: [u8; 8],
    },
    /// The header names a format version this reader does not know.
    #[error(
        "unsupported format version {version} (this reader supports versions {})",
        SupportedVersions
    )]
    UnsupportedVersion {
        /// The version number in the header.
        version: u32,
    },
    /// The data ended inside a header or record.
    #[error(
        "truncated {record} (needs {}{needed} bytes, {available} left)",
        if *exact { "" } else { "at least " }
    )]
    Truncated {
        /// What was being read.
        record: RecordKind,
        /// The bytes the header or record needs, counted from its start.
        needed: u64,
        /// The bytes that were left in the file from its start.
        available: u64,
        /// Whether `needed` is exact (fixed-size layouts) or a lower bound
        /// (varint fields whose length is not known until they are read).
        exact: bool,
    },
    /// The bytes are present but do not form a valid record.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
}

impl From<io::Error> for TraceErrorKind {
    fn from(err: io::Error) -> Self {
        TraceErrorKind::Io(err)
    }
}

/// Lists [`FormatVersion`](super::FormatVersion)s a reader supports, in
/// error messages.
struct SupportedVersions;

impl fmt::Display for SupportedVersions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for version in super::FormatVersion::ALL {
            if !first {
                f.write_str(" and ")?;
            }
            first = false;
            write!(f, "{}", version.number())?;
        }
        Ok(())
    }
}

/// How a record was malformed.
///
/// ```
/// use pulse_trace::{Corruption, Encoder, FormatVersion, TraceErrorKind, TraceMetadata, TraceReader};
///
/// // A v6 file's start, then a compact tag the format does not define.
/// let mut bytes = Vec::new();
/// Encoder::new(FormatVersion::V6, TraceMetadata::default()).begin_file(0, &mut bytes);
/// bytes.push(0x7F);
/// let mut reader = TraceReader::from_reader(&bytes[..], "t.bin").unwrap();
/// let err = reader.next_event().unwrap_err();
/// assert!(matches!(err.kind(), TraceErrorKind::Corrupt(Corruption::UnknownTag { .. })));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// A v6 record tag in the compact range (`0x00..=0x7F`) that the format
    /// does not define. Unlike length-prefixed records, compact records
    /// cannot be skipped, so this is fatal.
    #[error("unknown compact record tag 0x{tag:02x}")]
    UnknownTag {
        /// The tag byte.
        tag: u8,
    },
    /// A v5 event code above 6.
    #[error("unknown v5 event code {code} (codes are 0 to 6)")]
    UnknownEventCode {
        /// The code byte.
        code: u8,
    },
    /// A varint whose tenth byte still has its continuation bit set.
    #[error("{record}: {field} varint is longer than 10 bytes")]
    VarintTooLong {
        /// The record being read.
        record: RecordKind,
        /// The field being read.
        field: &'static str,
    },
    /// A varint encoding a value above `u64::MAX`.
    #[error("{record}: {field} varint overflows u64")]
    VarintOverflow {
        /// The record being read.
        record: RecordKind,
        /// The field being read.
        field: &'static str,
    },
    /// A field's value does not fit its type or allowed range.
    #[error("{record}: {field} {value} is out of range (at most {max})")]
    OutOfRange {
        /// The record being read.
        record: RecordKind,
        /// The field being read.
        field: &'static str,
        /// The value read.
        value: u64,
        /// The largest allowed value.
        max: u64,
    },
    /// A field that must be non-zero is zero.
    #[error("{record}: {field} is 0")]
    Zero {
        /// The record being read.
        record: RecordKind,
        /// The field being read.
        field: &'static str,
    },
    /// A string field is not UTF-8.
    #[error("{record}: {field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The record being read.
        record: RecordKind,
        /// The field being read.
        field: &'static str,
    },
    /// A length-prefixed record's payload ends before a field it must have.
    #[error("{record} ends before its {field} field")]
    MissingField {
        /// The record being read.
        record: RecordKind,
        /// The missing field.
        field: &'static str,
    },
    /// A string or count inside a record claims more bytes than the record
    /// has left.
    #[error("{record}: {field} length {len} runs past the end of the record ({left} bytes left)")]
    LengthPastRecord {
        /// The record being read.
        record: RecordKind,
        /// The field being read.
        field: &'static str,
        /// The length the field claims.
        len: u64,
        /// The bytes left in the record.
        left: u64,
    },
    /// A length prefix above [`MAX_RECORD_LEN`](super::MAX_RECORD_LEN).
    #[error("{record} claims {len} payload bytes, more than the {max}-byte limit")]
    RecordTooLong {
        /// The record being read.
        record: RecordKind,
        /// The length prefix.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A v6 file whose first record is not its metadata.
    #[error("the first record must be Metadata (tag 0x80), found tag 0x{tag:02x}")]
    MissingMetadata {
        /// The tag of the first record.
        tag: u8,
    },
    /// A second metadata record in one v6 file.
    #[error("second Metadata record in one file")]
    DuplicateMetadata,
    /// A per-worker record before any worker switch in its file.
    #[error("{record} before any worker switch (tag 0x42) in this file")]
    NoCurrentWorker {
        /// The record being read.
        record: RecordKind,
    },
    /// A poll record whose local queue change takes the depth out of the
    /// `u32` range.
    #[error("{record}: local queue change {change:+} from {previous} leaves the u32 range")]
    QueueChangeOutOfRange {
        /// The record being read.
        record: RecordKind,
        /// The worker's previous local queue depth.
        previous: u32,
        /// The change the record encodes.
        change: i64,
    },
    /// A PollStart that repeats its worker's previous spawn location when
    /// that worker has had no PollStart yet in this file.
    #[error("PollStart record repeats the previous spawn location, but its worker has none in this file")]
    NoPreviousLocation,
    /// A file switching to more distinct workers than
    /// [`MAX_WORKERS_PER_FILE`](super::MAX_WORKERS_PER_FILE).
    #[error("more than {max} distinct workers in one file")]
    TooManyWorkers {
        /// The limit.
        max: u64,
    },
    /// A PollStart referring to a spawn location that its file has not
    /// defined.
    #[error("spawn location id {id} used before its definition (tag 0x81) in this file")]
    UndefinedLocation {
        /// The location id.
        id: u64,
    },
    /// A stack sample or stack definition referring to a stack or frame
    /// that its file has not defined (tag 0x87).
    #[error("{what} id {id} used before its definition (tag 0x87) in this file")]
    UndefinedStackPart {
        /// `"stack"` or `"frame"`.
        what: &'static str,
        /// The id.
        id: u64,
    },
    /// A span or mark record naming a text its file has not defined.
    #[error("text id {id} used before its definition (tag 0x89) in this file")]
    UndefinedText {
        /// The text id.
        id: u64,
    },
    /// A timestamp too large for `u64` nanoseconds.
    #[error("{record}: timestamp overflows u64 nanoseconds")]
    TimestampOverflow {
        /// The record being read.
        record: RecordKind,
    },
}

/// The header or record kind an error refers to.
///
/// ```
/// use pulse_trace::RecordKind;
///
/// assert_eq!(RecordKind::Header.to_string(), "file header");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// The 12-byte file header.
    Header,
    /// A PollStart record.
    PollStart,
    /// A PollEnd record.
    PollEnd,
    /// A WorkerPark record.
    WorkerPark,
    /// A WorkerUnpark record.
    WorkerUnpark,
    /// A QueueSample record.
    QueueSample,
    /// A WorkerSample record (v6).
    WorkerSample,
    /// An EventsDropped record (v6).
    EventsDropped,
    /// A WorkerThread record (v6).
    WorkerThread,
    /// A stack module, frame or stack definition (v6, tag 0x87).
    StackDefinition,
    /// A stack sample (v6, tag 0x88).
    StackSample,
    /// A text definition: a span name, field text or mark name (v6, tag 0x89).
    TextDefinition,
    /// A span enter, exit or close record (v6, tag 0x8A).
    Span,
    /// A mark record (v6, tag 0x8B).
    Mark,
    /// A worker switch record (v6, tag 0x42).
    WorkerSwitch,
    /// A set-time record (v6, tag 0x43).
    SetTime,
    /// The metadata record (v6, tag 0x80).
    Metadata,
    /// A spawn-location definition (v6, tag 0x81).
    LocationDefinition,
    /// A record whose kind is not known yet: its tag byte, or a v5 code
    /// byte.
    Record,
    /// A length-prefixed record with a tag this reader does not know.
    Unknown(u8),
    /// The end-of-trace record (v6, tag 0x85).
    TraceEnd,
    /// A poll's schedule latency (v6, tag 0x8C).
    ScheduleLatency,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            RecordKind::Header => "file header",
            RecordKind::PollStart => "PollStart record",
            RecordKind::PollEnd => "PollEnd record",
            RecordKind::WorkerPark => "WorkerPark record",
            RecordKind::WorkerUnpark => "WorkerUnpark record",
            RecordKind::QueueSample => "QueueSample record",
            RecordKind::WorkerSample => "WorkerSample record",
            RecordKind::EventsDropped => "EventsDropped record",
            RecordKind::WorkerThread => "WorkerThread record",
            RecordKind::StackDefinition => "stack definition record",
            RecordKind::StackSample => "StackSample record",
            RecordKind::TextDefinition => "text definition record",
            RecordKind::Span => "span record",
            RecordKind::Mark => "Mark record",
            RecordKind::WorkerSwitch => "worker switch record",
            RecordKind::SetTime => "set-time record",
            RecordKind::Metadata => "Metadata record",
            RecordKind::LocationDefinition => "location definition record",
            RecordKind::Record => "record",
            RecordKind::TraceEnd => "end-of-trace record",
            RecordKind::ScheduleLatency => "schedule latency record",
            RecordKind::Unknown(tag) => return write!(f, "record with unknown tag 0x{tag:02x}"),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_naming_file_offset_and_problem() {
        let err = TraceError::new(
            "trace.bin",
            1234,
            TraceErrorKind::Truncated {
                record: RecordKind::WorkerPark,
                needed: 11,
                available: 3,
                exact: true,
            },
        );
        assert_eq!(
            err.to_string(),
            "trace.bin: byte 1234: truncated WorkerPark record (needs 11 bytes, 3 left)"
        );
        assert!(err.is_truncation());

        let err = TraceError::new(
            "dir/trace.0.bin",
            12,
            TraceErrorKind::UnsupportedVersion { version: 9 },
        );
        assert_eq!(
            err.to_string(),
            "dir/trace.0.bin: byte 12: unsupported format version 9 (this reader supports versions 5 and 6)"
        );
        assert!(!err.is_truncation());

        let err = TraceError::new("t", 40, Corruption::UnknownTag { tag: 0x7A }.into());
        assert_eq!(
            err.to_string(),
            "t: byte 40: unknown compact record tag 0x7a"
        );

        let err = TraceError::new(
            "t",
            0,
            TraceErrorKind::BadMagic {
                found: *b"\x00\xffTOKIO\n",
            },
        );
        assert_eq!(
            err.to_string(),
            r#"t: byte 0: not a pulse trace: expected magic "TOKIOTRC", found "\x00\xffTOKIO\n""#
        );
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn io_errors_keep_their_source() {
        use std::error::Error as _;
        let err = TraceError::new(
            "missing.bin",
            0,
            TraceErrorKind::Io(io::Error::new(io::ErrorKind::NotFound, "gone")),
        );
        assert_eq!(err.to_string(), "missing.bin: byte 0: I/O error: gone");
        assert!(err.source().is_some());
    }
}
