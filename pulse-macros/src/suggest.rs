//! "Did you mean ...?": the closest known name to a misspelled one.

/// Optimal-string-alignment distance: insertions, deletions, substitutions
/// and swaps of two neighbouring characters each cost 1, so `flsuh_ms` is
/// one edit from `flush_ms`.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the dynamic-programming table: two back, one back, now.
    let mut two_back: Vec<usize> = vec![0; b.len() + 1];
    let mut one_back: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (one_back[j] + 1)
                .min(row[j - 1] + 1)
                .min(one_back[j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(two_back[j - 2] + 1);
            }
            row[j] = best;
        }
        std::mem::swap(&mut two_back, &mut one_back);
        std::mem::swap(&mut one_back, &mut row);
    }
    one_back[b.len()]
}

/// The candidate closest to `unknown`, if it is close enough to be what the
/// user meant: within a third of its length in edits (at least one), or one
/// that `unknown` is the start of (`max_file` → `max_file_size`).
pub(crate) fn closest<'a>(unknown: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let unknown = unknown.to_ascii_lowercase();
    candidates
        .iter()
        .map(|&candidate| (edit_distance(&unknown, candidate), candidate))
        .filter(|&(distance, candidate)| {
            distance <= (candidate.chars().count() / 3).max(1)
                || (unknown.len() >= 3 && candidate.starts_with(&unknown))
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("flush_ms", "flush_ms"), 0);
        assert_eq!(edit_distance("flush_msec", "flush_ms"), 2);
        assert_eq!(edit_distance("flsuh_ms", "flush_ms"), 1);
        assert_eq!(edit_distance("flavour", "flavor"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions() {
        let keys = [
            "flush_ms",
            "sample_ms",
            "max_file_size",
            "max_total_size",
            "path",
            "name",
        ];
        assert_eq!(closest("flush_msec", &keys), Some("flush_ms"));
        assert_eq!(closest("Flush_MS", &keys), Some("flush_ms"));
        assert_eq!(closest("sampel_ms", &keys), Some("sample_ms"));
        assert_eq!(closest("max_file", &keys), Some("max_file_size"));
        assert_eq!(closest("max_totl_size", &keys), Some("max_total_size"));
        assert_eq!(closest("paht", &keys), Some("path"));
        assert_eq!(closest("colour", &keys), None);
        assert_eq!(closest("x", &keys), None);
    }
}
