//! Byte sizes written as strings, such as `max_file_size = "64MiB"`.
//!
//! pulse reads `PULSE_MAX_FILE_SIZE=64MiB` with its own parser
//! (`pulse::env::parse_size`): a proc-macro crate cannot export functions,
//! and pulse cannot depend on a crate that depends on it. Both parsers run
//! the table in `size_cases.rs`, so they accept exactly the same spellings.

use std::fmt;

/// Units a size may end with, matched case-insensitively: decimal (`KB` =
/// 1000) and binary (`KiB` = 1024).
pub(crate) const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KB", 1_000),
    ("KiB", 1 << 10),
    ("MB", 1_000_000),
    ("MiB", 1 << 20),
    ("GB", 1_000_000_000),
    ("GiB", 1 << 30),
    ("TB", 1_000_000_000_000),
    ("TiB", 1 << 40),
];

/// Why a size string was rejected.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SizeError {
    /// Nothing but whitespace.
    Empty,
    /// It does not start with a digit.
    NoNumber,
    /// A fraction such as `1.5GiB`.
    Fraction,
    /// The text after the number is not one of `UNITS`.
    UnknownUnit(String),
    /// More than `u64::MAX` bytes.
    TooLarge,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::Empty => f.write_str("the size is empty"),
            SizeError::NoNumber => f.write_str("a size starts with a whole number of bytes"),
            SizeError::Fraction => f.write_str("sizes are whole numbers; use a smaller unit"),
            SizeError::UnknownUnit(unit) => {
                write!(f, "unknown unit `{unit}`; the units are ")?;
                for (i, (name, _)) in UNITS.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{name}")?;
                }
                Ok(())
            }
            SizeError::TooLarge => f.write_str("the size does not fit in 64 bits"),
        }
    }
}

/// Reads `"4096"`, `"64MiB"`, `"64 MiB"`, `"2GB"`, `"1_048_576"`.
pub(crate) fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(SizeError::Empty);
    }
    if !text.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(SizeError::NoNumber);
    }
    let number_len = text
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let unit = unit.trim_start();
    if unit.starts_with(['.', ',']) {
        return Err(SizeError::Fraction);
    }
    let multiplier = if unit.is_empty() {
        1
    } else {
        UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|&(_, multiplier)| multiplier)
            .ok_or_else(|| SizeError::UnknownUnit(unit.to_owned()))?
    };
    let mut value: u64 = 0;
    for digit in number.bytes().filter(|&b| b != b'_') {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            .ok_or(SizeError::TooLarge)?;
    }
    value.checked_mul(multiplier).ok_or(SizeError::TooLarge)
}

/// `bytes` as the largest binary unit that divides it (`64MiB`), for
/// messages.
pub(crate) fn display_size(bytes: u64) -> String {
    for (name, multiplier) in UNITS.iter().rev().filter(|(n, _)| n.contains('i')) {
        if bytes >= *multiplier && bytes.is_multiple_of(*multiplier) {
            return format!("{}{name}", bytes / multiplier);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE_CASES: &[(&str, Option<u64>)] = include!("size_cases.rs");

    #[test]
    fn shared_table() {
        for &(text, expected) in SIZE_CASES {
            assert_eq!(parse_size(text).ok(), expected, "parse_size({text:?})");
        }
    }

    #[test]
    fn errors_say_why() {
        assert_eq!(parse_size(" "), Err(SizeError::Empty));
        assert_eq!(parse_size("MiB"), Err(SizeError::NoNumber));
        assert_eq!(parse_size("1.5GiB"), Err(SizeError::Fraction));
        assert_eq!(parse_size("64M"), Err(SizeError::UnknownUnit("M".into())));
        assert_eq!(parse_size("99999999999TiB"), Err(SizeError::TooLarge));
        let message = SizeError::UnknownUnit("M".into()).to_string();
        assert!(
            message.contains("`M`") && message.contains("MiB"),
            "{message}"
        );
    }

    #[test]
    fn displays_binary_units() {
        assert_eq!(display_size(64 << 20), "64MiB");
        assert_eq!(display_size(4096), "4KiB");
        assert_eq!(display_size(1 << 30), "1GiB");
        assert_eq!(display_size(1000), "1000 bytes");
        assert_eq!(display_size(0), "0 bytes");
    }
}
