//! The on-disk trace format: header, record encoding and decoding, and the
//! naming of rotated files. This is the only module that knows byte layouts;
//! `FORMAT.md` at the repository root is the specification.
//!
//! SKELETON (being implemented by the format helper): the public signatures
//! below are the contract the writer and the rest of the crate code against.

use crate::event::TelemetryEvent;
use std::path::{Path, PathBuf};

/// File magic shared by every version.
pub const MAGIC: &[u8; 8] = b"TOKIOTRC";

/// Which version of the format a writer produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FormatVersion {
    /// The seed design's fixed-width v5 layout (µs timestamps, u8 depths).
    V5,
    /// pulse's default: varints, no saturation, task ids, spawn locations,
    /// run-queue wait, dropped-event records, metadata, extensible.
    #[default]
    V6,
}

impl FormatVersion {
    /// The version number written after the magic.
    pub fn number(self) -> u32 {
        match self {
            FormatVersion::V5 => 5,
            FormatVersion::V6 => 6,
        }
    }
}

/// Per-file metadata (v6 only; a v5 file has none).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TraceMetadata {
    /// Nanoseconds per timestamp tick on disk.
    pub time_unit_nanos: u32,
    /// Worker threads in the traced runtime.
    pub worker_count: u32,
    /// Wall-clock time (ns since the Unix epoch) at trace timestamp 0.
    pub start_unix_nanos: u64,
    /// The pulse version that wrote the file.
    pub pulse_version: String,
    /// Whether park/unpark/sample records carry run-queue wait.
    pub has_run_delay: bool,
    /// This file's index in a rotated set (0 for a single file).
    pub file_index: u64,
    /// The recording configuration, as key/value pairs.
    pub config: Vec<(String, String)>,
}

/// Encodes events into bytes; one per writer, kept across rotated files so
/// spawn-location ids stay stable across a set.
#[derive(Debug)]
pub struct Encoder {
    _private: (),
}

impl Encoder {
    /// A new encoder for `version`.
    pub fn new(version: FormatVersion, metadata: TraceMetadata) -> Self {
        let _ = (version, metadata);
        todo!()
    }
    /// Appends the start of a new file (header; for v6, metadata) and resets
    /// all per-file state, so the file decodes on its own.
    pub fn begin_file(&mut self, file_index: u64, out: &mut Vec<u8>) {
        let _ = (file_index, out);
        todo!()
    }
    /// Appends one event (and, for v6, any definition it needs first).
    pub fn encode(&mut self, event: &TelemetryEvent, out: &mut Vec<u8>) {
        let _ = (event, out);
        todo!()
    }
}

/// The path of file `index` of the rotated set based at `base`.
pub fn rotated_path(base: &Path, index: u64) -> PathBuf {
    let _ = (base, index);
    todo!()
}
