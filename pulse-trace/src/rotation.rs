//! Names of the files of a rotated set: `dir/trace.bin` →
//! `dir/trace.0.bin`, `dir/trace.1.bin`, ...

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The path of file `index` of the rotated set based at `base`: the index
/// goes between the file stem and the extension.
///
/// A base without an extension gets the index as one (`trace` →
/// `trace.0`); a base without a file name (such as `/`) gets it as a file
/// name inside (`/0`).
///
/// # Examples
///
/// ```
/// use pulse_trace::rotated_path;
/// use std::path::Path;
///
/// assert_eq!(rotated_path(Path::new("dir/trace.bin"), 0), Path::new("dir/trace.0.bin"));
/// assert_eq!(rotated_path(Path::new("dir/trace.bin"), 12), Path::new("dir/trace.12.bin"));
/// assert_eq!(rotated_path(Path::new("trace"), 3), Path::new("trace.3"));
/// ```
pub fn rotated_path(base: &Path, index: u64) -> PathBuf {
    with_index(base, &index.to_string())
}

/// `base` with `<N>` where the index goes, for messages.
pub(crate) fn rotated_pattern(base: &Path) -> PathBuf {
    with_index(base, "<N>")
}

fn with_index(base: &Path, index: &str) -> PathBuf {
    let Some(stem) = base.file_stem() else {
        return base.join(index);
    };
    let mut name = OsString::from(stem);
    name.push(".");
    name.push(index);
    if let Some(extension) = base.extension() {
        name.push(".");
        name.push(extension);
    }
    base.with_file_name(name)
}

/// The existing files of the rotated set based at `base` (named as
/// [`rotated_path`] names them), sorted by index — numerically, so
/// `trace.10.bin` comes after `trace.9.bin`. Gaps are allowed (a rotating
/// writer may have deleted the oldest files). `base` itself is not part of
/// the set.
///
/// # Errors
///
/// Listing `base`'s directory failed.
///
/// # Examples
///
/// ```
/// use pulse_trace::{rotated_files, rotated_path};
///
/// # fn main() -> std::io::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let base = dir.path().join("trace.bin");
/// for index in [10, 2, 9] {
///     std::fs::write(rotated_path(&base, index), b"")?;
/// }
/// std::fs::write(dir.path().join("trace.old.bin"), b"")?;
///
/// let files = rotated_files(&base)?;
/// let expected: Vec<_> = [2, 9, 10].map(|index| rotated_path(&base, index)).into();
/// assert_eq!(files, expected);
/// # Ok(())
/// # }
/// ```
pub fn rotated_files(base: &Path) -> io::Result<Vec<PathBuf>> {
    let Some(stem) = base.file_stem() else {
        return Ok(Vec::new());
    };
    let mut prefix = stem.as_encoded_bytes().to_vec();
    prefix.push(b'.');
    let mut suffix = Vec::new();
    if let Some(extension) = base.extension() {
        suffix.push(b'.');
        suffix.extend_from_slice(extension.as_encoded_bytes());
    }
    let dir = match base.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name();
        let index = name
            .as_encoded_bytes()
            .strip_prefix(prefix.as_slice())
            .and_then(|rest| rest.strip_suffix(suffix.as_slice()))
            .and_then(parse_index);
        if let Some(index) = index {
            found.push(index);
        }
    }
    found.sort_unstable();
    Ok(found
        .into_iter()
        .map(|index| rotated_path(base, index))
        .collect())
}

/// A decimal index as [`rotated_path`] writes it: digits only, no leading
/// zero (so `trace.01.bin` is not mistaken for file 1).
fn parse_index(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits.first() == Some(&b'0') {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names_put_the_index_before_the_extension() {
        let cases = [
            ("dir/trace.bin", 0, "dir/trace.0.bin"),
            ("dir/trace.bin", 1, "dir/trace.1.bin"),
            ("trace.bin", 7, "trace.7.bin"),
            ("dir/trace", 0, "dir/trace.0"),
            ("dir/my.trace.bin", 2, "dir/my.trace.2.bin"),
            ("dir/.trace", 4, "dir/.trace.4"),
            ("/", 5, "/5"),
        ];
        for (base, index, expected) in cases {
            assert_eq!(
                rotated_path(Path::new(base), index),
                Path::new(expected),
                "{base} #{index}"
            );
        }
        assert_eq!(
            rotated_pattern(Path::new("d/trace.bin")),
            Path::new("d/trace.<N>.bin")
        );
    }

    #[test]
    fn indexes_must_be_canonical_decimal() {
        assert_eq!(parse_index(b"0"), Some(0));
        assert_eq!(parse_index(b"10"), Some(10));
        assert_eq!(parse_index(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_index(b"18446744073709551616"), None);
        for bad in [&b""[..], b"01", b"-1", b"+1", b"1a", b" 1"] {
            assert_eq!(parse_index(bad), None, "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn rotated_files_lists_only_the_set_in_numeric_order() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let base = dir.path().join("trace.bin");
        for name in [
            "trace.0.bin",
            "trace.10.bin",
            "trace.2.bin",
            "trace.bin",
            "trace.01.bin",
            "trace.x.bin",
            "trace.3.json",
            "other.1.bin",
            "trace.4",
        ] {
            fs::write(dir.path().join(name), b"")?;
        }
        fs::create_dir(dir.path().join("trace.5.bin"))?;
        let expected: Vec<PathBuf> = [0, 2, 10].map(|i| rotated_path(&base, i)).into();
        assert_eq!(rotated_files(&base)?, expected);

        let bare = dir.path().join("trace");
        assert_eq!(rotated_files(&bare)?, vec![rotated_path(&bare, 4)]);
        Ok(())
    }

    #[test]
    fn missing_directory_is_an_error() {
        let err = rotated_files(Path::new("/nonexistent-pulse-dir/trace.bin")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
