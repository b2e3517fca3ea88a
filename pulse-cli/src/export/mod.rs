//! Converting traces for other tools: JSON Lines ([`JsonlWriter`],
//! [`trace_to_jsonl`]) for scripts and `jq`, and Chrome trace-event JSON
//! ([`ChromeWriter`], [`trace_to_chrome`]) for Perfetto
//! (ui.perfetto.dev) and `chrome://tracing`, and a self-contained
//! interactive HTML timeline ([`html`]), and Apache Parquet tables for
//! querying many hosts' traces as one dataset ([`parquet`]).
//!
//! The JSON exports stream: they read the trace once and hold nothing that
//! grows with it, and need no dependency: the little JSON they write is
//! written directly. The Parquet export streams too, in bounded memory
//! (see [`parquet`]).
//!
//! ```
//! use pulse_cli::analysis::{AnalysisOptions, TraceSet};
//! use pulse_cli::export::{trace_to_chrome, trace_to_jsonl};
//! use std::fs::File;
//! use std::io::BufWriter;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("trace.bin");
//! # let (rt, guard) = pulse::Recorder::build(
//! #     tokio::runtime::Builder::new_multi_thread(),
//! #     Box::new(pulse::SimpleBinaryWriter::new(&path)?),
//! # )?;
//! # rt.block_on(async { tokio::spawn(async {}).await })?;
//! # drop(rt); drop(guard);
//!
//! let set = TraceSet::open(&path)?;
//! let jsonl = BufWriter::new(File::create(dir.path().join("trace.jsonl"))?);
//! trace_to_jsonl(&set, jsonl, "trace.jsonl", |_, _| {})?;
//! let chrome = BufWriter::new(File::create(dir.path().join("trace.json"))?);
//! trace_to_chrome(&set, chrome, "trace.json", &AnalysisOptions::default(), |_, _| {})?;
//! # Ok(())
//! # }
//! ```

mod chrome;
pub mod html;
mod json;
mod jsonl;
pub mod parquet;

pub use chrome::{trace_to_chrome, trace_to_chrome_with, ChromeWriter, DEFAULT_MERGE_BELOW};
pub use jsonl::{trace_to_jsonl, JsonlWriter};
