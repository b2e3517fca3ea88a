//! Just enough JSON writing for the exports: strings with escapes, numbers,
//! `null`. Exports write millions of small objects; building each with
//! `write!` into one reused `String` keeps that allocation-free.

use std::fmt::Write;

/// Appends `value` as a JSON string (quoted, escaped).
pub(crate) fn string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends an optional integer (`null` when absent).
pub(crate) fn opt_u64(out: &mut String, value: Option<u64>) {
    match value {
        Some(value) => {
            let _ = write!(out, "{value}");
        }
        None => out.push_str("null"),
    }
}

/// Appends a number; non-finite values, which JSON cannot hold, as `null`.
pub(crate) fn number(out: &mut String, value: f64) {
    if value.is_finite() {
        let _ = write!(out, "{value}");
    } else {
        out.push_str("null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn numbers() {
        let mut out = String::new();
        number(&mut out, 0.25);
        out.push(' ');
        number(&mut out, f64::NAN);
        out.push(' ');
        opt_u64(&mut out, None);
        out.push(' ');
        opt_u64(&mut out, Some(7));
        assert_eq!(out, "0.25 null null 7");
    }
}
