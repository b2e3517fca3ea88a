//! Format converter: a trace as JSON Lines, one object per event, for
//! `jq`, scripts and spreadsheets.
//!
//! ```text
//! cargo run --release -p examples --example trace_to_jsonl -- TRACE [OUT.jsonl]
//! ```
//!
//! TRACE is a trace file or the base path of a rotated set; without OUT
//! the lines go to standard output. Each line looks like
//! `{"type":"PollStart","t_ns":1234,"worker":0,"local_queue":2,"task_id":17,"spawned_at":"src/main.rs:10:5"}`
//! (see `pulse_cli::export::JsonlWriter` for every field). Lines come in file
//! order: each worker's events in order, workers interleaved as recorded.
//!
//! This is the loop `pulse jsonl` runs, written out with the reader and
//! writer it is made of.

use pulse_cli::analysis::TraceSet;
use pulse_cli::export::JsonlWriter;
use std::error::Error;
use std::fs::File;
use std::io::{self, BufWriter, Write};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let Some(trace) = args.next() else {
        return Err("usage: trace_to_jsonl TRACE [OUT.jsonl]".into());
    };
    let out: Box<dyn Write> = match args.next() {
        Some(path) => Box::new(File::create(path)?),
        None => Box::new(io::stdout().lock()),
    };

    let set = TraceSet::open(&trace)?;
    let mut reader = set.reader()?;
    let mut writer = JsonlWriter::new(BufWriter::new(out));
    let mut events = 0u64;
    while let Some(event) = reader.next_event()? {
        // Spawn locations are defined once in the file; the reader keeps
        // them and names them for PollStart records.
        writer.write(&event, |id| reader.location(id))?;
        events += 1;
    }
    writer.finish()?;
    eprintln!("{events} events from {} file(s)", set.files().len());
    Ok(())
}
