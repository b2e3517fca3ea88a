//! The trace-reader fuzz target's checks, in the normal test suite: the
//! seed corpus, every input a fuzzing run found and saved under
//! `fuzz/regressions/trace_reader/`, and random mutations of the seeds.
//!
//! The checks (in `fuzz/src/lib.rs`, shared with `cargo fuzz`) go beyond
//! `format_errors.rs`: besides no panic, bounded allocation and well-formed
//! errors, reading an input a few bytes at a time must give exactly the
//! events, spawn sites and error that reading it at once gives, and every
//! spawn location a PollStart names must resolve.

#[path = "../../fuzz/src/lib.rs"]
mod oracle;

use proptest::prelude::*;

#[global_allocator]
static ALLOCATOR: oracle::LargestAllocation = oracle::LargestAllocation;

#[test]
fn seed_corpus_passes_every_check() {
    let seeds = oracle::seeds();
    assert!(seeds.len() >= 5);
    for (name, bytes) in seeds {
        let result = std::panic::catch_unwind(|| oracle::check_with_allocation_bound(&bytes));
        assert!(result.is_ok(), "seed {name}");
    }
}

#[test]
fn inputs_saved_from_fuzzing_runs_pass_every_check() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/trace_reader");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == ".gitkeep") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| oracle::check_with_allocation_bound(&bytes));
        assert!(result.is_ok(), "{}", path.display());
        count += 1;
    }
    eprintln!("{count} saved inputs replayed");
}

/// Seed `index` with bytes overwritten, inserted or removed, then cut.
fn mutated(
    index: proptest::sample::Index,
    edits: Vec<(proptest::sample::Index, u8, u8)>,
    cut: proptest::sample::Index,
) -> Vec<u8> {
    let seeds = oracle::seeds();
    let mut bytes = seeds[index.index(seeds.len())].1.clone();
    for (at, op, byte) in edits {
        let at = at.index(bytes.len() + 1);
        match op % 3 {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.push(byte),
        }
    }
    let keep = cut.index(bytes.len() + 1);
    bytes.truncate(keep);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_seeds_pass_every_check(
        index in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec(
            (any::<proptest::sample::Index>(), any::<u8>(), any::<u8>()),
            1..6,
        ),
        cut in any::<proptest::sample::Index>(),
    ) {
        let bytes = mutated(index, edits, cut);
        oracle::check_with_allocation_bound(&bytes);
    }
}
