//! # pulse-cli: reading traces of pulse, the flight recorder for Tokio
//!
//! The library behind the `pulse` command-line tool: it reads traces written
//! by the recorder (the `tokio-pulse` crate, `pulse` in code) and answers
//! the question pulse exists for: *tasks are queued but workers look idle:
//! are the workers parked, unparked but descheduled by the OS, blocked
//! inside a poll, or busy in a long poll?*
//!
//! - [`analysis`]: verdicts with evidence, per-worker statistics, the text
//!   report and its JSON form.
//! - [`export`]: JSON Lines, Chrome trace-event JSON (Perfetto), and a
//!   self-contained HTML timeline.
//!
//! It depends on the trace format ([`pulse_trace`]), never on Tokio or the
//! recorder, so it builds on stable Rust without `--cfg tokio_unstable`;
//! `cargo install --path pulse-cli` installs the `pulse` binary.
//!
//! # Examples
//!
//! ```
//! use pulse_cli::analysis::{analyze_trace, AnalysisOptions};
//! use pulse_trace::{Encoder, FormatVersion, RecordedEvent, SpawnLocation, TraceMetadata};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("trace.bin");
//!
//! // A worker that polls one task for 80 ms without parking.
//! let mut encoder = Encoder::new(FormatVersion::V6, TraceMetadata::default());
//! let mut bytes = Vec::new();
//! let site = SpawnLocation(std::panic::Location::caller());
//! let poll = |timestamp_nanos, start| if start {
//!     RecordedEvent::PollStart { timestamp_nanos, worker: 0, local_queue: 0, task_id: Some(7), spawned_at: site }
//! } else {
//!     RecordedEvent::PollEnd { timestamp_nanos, worker: 0, local_queue: 0 }
//! };
//! encoder.encode(&poll(1_000_000, true), &mut bytes);
//! encoder.encode(&poll(81_000_000, false), &mut bytes);
//! std::fs::write(&path, bytes)?;
//!
//! let analysis = analyze_trace(&path, &AnalysisOptions::default())?;
//! assert_eq!(analysis.workers[0].polls, 1);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod analysis;
pub mod export;
