//! A log-linear histogram of durations: constant memory, percentiles within
//! about 3 %.

/// Bits of mantissa kept per power of two: 32 buckets per octave, so a
/// bucket spans at most 1/32 of its lower bound.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets: values below `SUB` exactly, then 32 per octave up to 2^64.
const BUCKETS: usize = ((64 - SUB_BITS + 1) as usize) << SUB_BITS;

/// Counts of nanosecond durations in log-linear buckets.
///
/// Memory is fixed (about 15 KiB, allocated on the first record), whatever
/// the number of values; the exact maximum is kept alongside.
#[derive(Clone, Debug, Default)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

fn bucket(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // >= SUB_BITS
    let shift = exponent - SUB_BITS;
    let mantissa = (value >> shift) & (SUB - 1);
    (((shift + 1) as usize) << SUB_BITS) | mantissa as usize
}

/// The smallest and largest values of bucket `index`.
fn bounds(index: usize) -> (u64, u64) {
    let block = (index >> SUB_BITS) as u32;
    let mantissa = (index as u64) & (SUB - 1);
    if block == 0 {
        return (mantissa, mantissa);
    }
    let shift = block - 1;
    let low = (SUB | mantissa) << shift;
    let width = 1u64 << shift;
    (low, low.saturating_add(width - 1))
}

impl Histogram {
    pub(crate) fn record(&mut self, value: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        if let Some(count) = self.counts.get_mut(bucket(value)) {
            *count += 1;
        }
        self.total += 1;
        self.max = self.max.max(value);
    }

    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// Values recorded.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the midpoint of the bucket that
    /// holds it, never above the maximum; the maximum itself for the last
    /// rank. 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        if rank == self.total {
            return self.max;
        }
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bounds(index);
                return (low + (high - low) / 2).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for value in (0..5000u64).chain([1 << 20, (1 << 40) + 12345, u64::MAX]) {
            let index = bucket(value);
            assert!(index < BUCKETS, "{value}");
            let (low, high) = bounds(index);
            assert!(low <= value && value <= high, "{value} in {low}..={high}");
            assert!(index >= last, "buckets grow with the value");
            last = index;
        }
    }

    #[test]
    fn quantiles_are_within_three_percent() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        for (q, exact) in [(0.5, 50_000_000.0), (0.99, 99_000_000.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - exact).abs() / exact < 0.03, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.quantile(1.0), 100_000_000);
        assert_eq!(h.max(), 100_000_000);
        assert_eq!(h.count(), 100_000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for v in [3, 3, 3, 7] {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 3);
        assert_eq!(h.quantile(0.99), 7);
    }
}
