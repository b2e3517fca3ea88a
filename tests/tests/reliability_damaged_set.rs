//! A rotated set with a damaged file still yields every intact file's
//! events (issue 8). `read_set` below is the pattern RELIABILITY.md
//! documents for reading a set while going past damage with
//! `TraceReader::skip_file`; these tests hold it (and the reader under it)
//! to that promise for every kind of damage, in the first, a middle and the
//! last file of a set a real runtime wrote.

use proptest::prelude::*;
use pulse::{Config, Recorder, WriterConfig};
use pulse_trace::{rotated_files, rotated_path, SpawnSite, TraceError, TraceEvent, TraceReader};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// One event as read, with the file it came from and its spawn site.
#[derive(Clone, Debug, PartialEq)]
struct Read {
    file: PathBuf,
    event: TraceEvent,
    site: Option<SpawnSite>,
}

/// Reads every file of the rotated set at `base` in order, going on after
/// damage: returns every event that could be read and one error per
/// damaged file (a bad header, or the first bad record of a file, after
/// which the rest of that file is skipped).
fn read_set(base: &Path) -> (Vec<Read>, Vec<TraceError>) {
    let (mut events, mut errors) = (Vec::new(), Vec::new());
    let files = rotated_files(base).unwrap();
    // Opening a set reads its first file's header: skip first files that
    // cannot be opened.
    let mut rest = files.as_slice();
    let mut reader = loop {
        let Some((_, later)) = rest.split_first() else {
            return (events, errors);
        };
        match TraceReader::open_files(rest.to_vec()) {
            Ok(reader) => break reader,
            Err(err) => {
                errors.push(err);
                rest = later;
            }
        }
    };
    loop {
        match reader.next_event() {
            Ok(Some(event)) => {
                let site = match event {
                    TraceEvent::PollStart {
                        spawned_at: Some(id),
                        ..
                    } => reader.location(id).cloned(),
                    _ => None,
                };
                events.push(Read {
                    file: reader.path().to_owned(),
                    event,
                    site,
                });
            }
            Ok(None) => return (events, errors),
            Err(err) => {
                errors.push(err);
                // Go on with the next file; its header may be bad too.
                while let Err(err) = reader.skip_file() {
                    errors.push(err);
                }
            }
        }
    }
}

/// A rotated set as written: its directory, and each file's name and bytes.
type Set = (PathBuf, Vec<(String, Vec<u8>)>);

/// A rotated set written by a real runtime.
fn recorded_set() -> &'static Set {
    static SET: OnceLock<Set> = OnceLock::new();
    SET.get_or_init(|| {
        let dir = tests::process_temp_dir();
        let base = dir.join("trace.bin");
        let config = Config::new()
            .flush_ms(5)
            .writer(WriterConfig::rotating(&base, 4096, 1 << 30));
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(2).enable_all();
        let (runtime, guard) = Recorder::from_config(builder, &config).unwrap();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..40)
                .map(|i| {
                    tokio::spawn(async move {
                        for j in 0..150 {
                            tokio::task::yield_now().await;
                            if (i + j) % 20 == 0 {
                                tokio::time::sleep(Duration::from_micros(200)).await;
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        drop(runtime);
        assert_eq!(guard.finish().unwrap().dropped_events, 0);
        let files: Vec<_> = rotated_files(&base)
            .unwrap()
            .iter()
            .map(|file| {
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(file).unwrap())
            })
            .collect();
        assert!(files.len() >= 5, "{} files", files.len());
        (dir, files)
    })
}

/// How a file is damaged.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// Cut in the middle, as by a crash.
    Truncated,
    /// A run of bytes in the middle overwritten with 0xFF.
    Garbage,
    /// The magic overwritten.
    BadMagic,
    /// An unknown format version.
    FutureVersion,
    /// Zero bytes long.
    Empty,
    /// Deleted (a gap in the set's numbering).
    Deleted,
}

const DAMAGES: [Damage; 6] = [
    Damage::Truncated,
    Damage::Garbage,
    Damage::BadMagic,
    Damage::FutureVersion,
    Damage::Empty,
    Damage::Deleted,
];

/// Writes the recorded set into a new directory with file `victim` damaged
/// by `apply`; returns the directory and the set's base path.
fn damaged_copy(
    victim: usize,
    apply: impl FnOnce(&mut Vec<u8>) -> bool,
) -> (tempfile::TempDir, PathBuf) {
    let (_, files) = recorded_set();
    let dir = tempfile::tempdir().unwrap();
    let mut apply = Some(apply);
    for (index, (name, bytes)) in files.iter().enumerate() {
        let mut bytes = bytes.clone();
        let keep = if index == victim {
            (apply.take().unwrap())(&mut bytes)
        } else {
            true
        };
        if keep {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
    }
    let base = dir.path().join("trace.bin");
    (dir, base)
}

fn damage(kind: Damage) -> impl FnOnce(&mut Vec<u8>) -> bool {
    move |bytes: &mut Vec<u8>| {
        let middle = bytes.len() / 2;
        match kind {
            Damage::Truncated => bytes.truncate(middle),
            Damage::Garbage => bytes[middle..middle + 16].fill(0xFF),
            Damage::BadMagic => bytes[..8].copy_from_slice(b"NOTATRAC"),
            Damage::FutureVersion => bytes[8..12].copy_from_slice(&7u32.to_le_bytes()),
            Damage::Empty => bytes.clear(),
            Damage::Deleted => return false,
        }
        true
    }
}

/// Reads the set in `dir`, with file `victim` damaged, and checks that
/// every other file's events come back exactly (with their spawn sites,
/// in order), and the damaged file's events, if any, are a prefix of what
/// it held.
fn check(
    victim: usize,
    dir: &Path,
    base: &Path,
    errors_expected: std::ops::RangeInclusive<usize>,
    case: &str,
) {
    let (_, files) = recorded_set();
    let (events, errors) = read_set(base);
    let victim_path = rotated_path(base, victim_index(victim));
    assert!(
        errors_expected.contains(&errors.len()),
        "{case}: {errors:?}"
    );
    for err in &errors {
        assert_eq!(err.path(), victim_path, "{case}: {err}");
    }
    for (index, (name, _)) in files.iter().enumerate() {
        let path = dir.join(name);
        let got: Vec<&Read> = events.iter().filter(|read| read.file == path).collect();
        let intact = intact_reading(index);
        if index == victim {
            assert!(got.len() <= intact.len());
            assert!(
                got.iter()
                    .zip(&intact)
                    .all(|(got, want)| { (&got.event, &got.site) == (&want.event, &want.site) }),
                "{case}: {name}: the damaged file's events before the damage are sound"
            );
        } else {
            assert_eq!(
                got.len(),
                intact.len(),
                "{case}: {name}: every event of an intact file"
            );
            for (got, want) in got.iter().zip(&intact) {
                assert_eq!(
                    (&got.event, &got.site),
                    (&want.event, &want.site),
                    "{case}: {name}"
                );
            }
        }
    }
}

/// The set's file `victim` is `trace.N.bin` for this N.
fn victim_index(victim: usize) -> u64 {
    let (_, files) = recorded_set();
    let name = &files[victim].0;
    name.trim_start_matches("trace.")
        .trim_end_matches(".bin")
        .parse()
        .unwrap()
}

/// File `index` of the recorded set, read on its own.
fn intact_reading(index: usize) -> Vec<Read> {
    let (dir, files) = recorded_set();
    let path = dir.join(&files[index].0);
    let mut reader = TraceReader::open(&path).unwrap();
    let mut out = Vec::new();
    while let Some(event) = reader.next_event().unwrap() {
        let site = match event {
            TraceEvent::PollStart {
                spawned_at: Some(id),
                ..
            } => reader.location(id).cloned(),
            _ => None,
        };
        out.push(Read {
            file: path.clone(),
            event,
            site,
        });
    }
    assert!(!out.is_empty());
    out
}

#[test]
fn every_intact_file_is_read_whatever_the_damage_and_wherever_it_is() {
    let count = recorded_set().1.len();
    for kind in DAMAGES {
        for victim in [0, count / 2, count - 1] {
            let (dir, base) = damaged_copy(victim, damage(kind));
            // A cut may fall between two records: then the file just ends
            // early. Every other damage is an error.
            let errors = match kind {
                Damage::Deleted => 0..=0,
                Damage::Truncated => 0..=1,
                _ => 1..=1,
            };
            check(
                victim,
                dir.path(),
                &base,
                errors,
                &format!("{kind:?} file {victim}"),
            );
        }
    }
}

#[test]
fn the_undamaged_set_reads_as_its_files_do() {
    let (dir, base) = damaged_copy(0, |_| true);
    let (events, errors) = read_set(&base);
    assert!(errors.is_empty(), "{errors:?}");
    let expected: usize = (0..recorded_set().1.len())
        .map(|index| intact_reading(index).len())
        .sum();
    assert_eq!(events.len(), expected);
    drop(dir);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random bytes overwritten anywhere in one file: the other files read
    /// back whole, and the damaged one yields a sound prefix (or all of
    /// its events, if the change happened to keep it valid).
    #[test]
    fn random_damage_to_one_file_spares_the_others(
        victim in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let count = recorded_set().1.len();
        let victim = victim.index(count);
        let (dir, base) = damaged_copy(victim, |bytes: &mut Vec<u8>| {
            for (at, byte) in edits {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            true
        });
        let (events, errors) = read_set(&base);
        prop_assert!(errors.len() <= 1, "{:?}", errors);
        for err in &errors {
            prop_assert_eq!(err.path(), rotated_path(&base, victim_index(victim)));
        }
        for (index, (name, _)) in recorded_set().1.iter().enumerate() {
            if index == victim {
                continue;
            }
            let path = dir.path().join(name);
            let got: Vec<_> = events
                .iter()
                .filter(|read| read.file == path)
                .map(|read| (read.event, read.site.clone()))
                .collect();
            let want: Vec<_> = intact_reading(index)
                .into_iter()
                .map(|read| (read.event, read.site))
                .collect();
            prop_assert_eq!(got, want, "{}", name);
        }
    }
}
