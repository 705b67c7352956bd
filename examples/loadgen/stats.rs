//! The arithmetic of a report: percentiles over merged samples and failure tallies.
//!
//! Each thread keeps its own plain `Vec` of samples and its own tally (no shared counters on
//! the hot path, so measuring does not make threads contend); the run merges them at the end.
//! Percentiles use the nearest-rank definition on the sorted merge: the p-th percentile of n
//! samples is the sample at rank ⌈p/100 · n⌉, always a value that was actually measured.

use std::collections::BTreeMap;
use std::fmt;

/// Durations in nanoseconds, merged from every thread and sorted once.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    sorted: Vec<u64>,
}

impl Samples {
    pub fn merge<'a>(parts: impl IntoIterator<Item = &'a [u64]>) -> Samples {
        let mut sorted: Vec<u64> = parts.into_iter().flatten().copied().collect();
        sorted.sort_unstable();
        Samples { sorted }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Nearest-rank percentile, `None` without samples.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        percentile(&self.sorted, p)
    }

    pub fn max(&self) -> Option<u64> {
        self.sorted.last().copied()
    }

    /// Percentile in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        self.percentile(p).map(nanos_to_ms)
    }

    pub fn max_ms(&self) -> Option<f64> {
        self.max().map(nanos_to_ms)
    }
}

pub fn nanos_to_ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

/// Nearest-rank percentile of an ascending slice; `p` is clamped to 0..=100.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) };
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Counts of failures by kind, such as `http 503` or `timeout`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    counts: BTreeMap<String, u64>,
}

impl Tally {
    pub fn add(&mut self, kind: &str) {
        *self.counts.entry(kind.to_string()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Tally) {
        for (kind, count) in &other.counts {
            *self.counts.entry(kind.clone()).or_default() += count;
        }
    }

    /// The same counts with `prefix` before each kind.
    pub fn prefixed(&self, prefix: &str) -> Tally {
        Tally {
            counts: self
                .counts
                .iter()
                .map(|(kind, count)| (format!("{prefix}{kind}"), *count))
                .collect(),
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// `http 503: 4, timeout: 1`, or `none`.
impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.counts.is_empty() {
            return f.write_str("none");
        }
        for (index, (kind, count)) in self.counts.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{kind}: {count}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(50));
        assert_eq!(percentile(&sorted, 99.0), Some(99));
        assert_eq!(percentile(&sorted, 99.5), Some(100));
        assert_eq!(percentile(&sorted, 100.0), Some(100));
        assert_eq!(percentile(&sorted, 0.0), Some(1));
        // Textbook example: 15, 20, 35, 40, 50.
        let sorted = [15, 20, 35, 40, 50];
        assert_eq!(percentile(&sorted, 5.0), Some(15));
        assert_eq!(percentile(&sorted, 30.0), Some(20));
        assert_eq!(percentile(&sorted, 40.0), Some(20));
        assert_eq!(percentile(&sorted, 50.0), Some(35));
        assert_eq!(percentile(&sorted, 99.0), Some(50));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn samples_merge_and_sort_thread_vectors() {
        let a = [5_000_000, 1_000_000];
        let b = [3_000_000];
        let samples = Samples::merge([&a[..], &b[..], &[][..]]);
        assert_eq!(samples.len(), 3);
        assert_eq!(samples.percentile_ms(50.0), Some(3.0));
        assert_eq!(samples.max_ms(), Some(5.0));
        assert_eq!(Samples::default().percentile_ms(50.0), None);
    }

    #[test]
    fn tallies_merge_and_print() {
        let mut first = Tally::default();
        first.add("timeout");
        first.add("http 503");
        first.add("http 503");
        let mut total = Tally::default();
        total.merge(&first);
        total.merge(&first.prefixed("slow "));
        assert_eq!(total.total(), 6);
        assert_eq!(
            total.to_string(),
            "http 503: 2, slow http 503: 2, slow timeout: 1, timeout: 1"
        );
        assert_eq!(Tally::default().to_string(), "none");
    }
}
