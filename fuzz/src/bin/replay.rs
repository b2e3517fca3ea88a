//! The fuzz target's checks without libFuzzer, for machines without a
//! nightly toolchain and for replaying a corpus or a crash:
//!
//! ```text
//! replay PATH...            run every file (or every file in each directory)
//! replay --write-seeds DIR  write the seed corpus into DIR
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: pulse_fuzz::LargestAllocation = pulse_fuzz::LargestAllocation;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    match args.as_slice() {
        [flag, dir] if flag == Path::new("--write-seeds") => {
            if let Err(err) = write_seeds(dir) {
                eprintln!("replay: {}: {err}", dir.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        [] => {
            eprintln!("usage: replay PATH... | replay --write-seeds DIR");
            ExitCode::from(2)
        }
        paths => replay(paths),
    }
}

fn write_seeds(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in pulse_fuzz::seeds() {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

fn replay(paths: &[PathBuf]) -> ExitCode {
    let mut files = Vec::new();
    for path in paths {
        match std::fs::read_dir(path) {
            Ok(entries) => files.extend(entries.filter_map(|e| Some(e.ok()?.path()))),
            Err(_) => files.push(path.clone()),
        }
    }
    files.sort();
    let mut failed = 0;
    for file in &files {
        let data = match std::fs::read(file) {
            Ok(data) => data,
            Err(err) => {
                eprintln!("replay: {}: {err}", file.display());
                failed += 1;
                continue;
            }
        };
        // A broken promise panics; report it and go on with the next file.
        if std::panic::catch_unwind(|| pulse_fuzz::check_with_allocation_bound(&data)).is_err() {
            eprintln!("replay: FAILED: {}", file.display());
            failed += 1;
        }
    }
    println!("replay: {} inputs, {failed} failed", files.len());
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
