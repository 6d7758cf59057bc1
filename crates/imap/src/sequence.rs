//! Sequence sets (RFC 9051 §9 `sequence-set`) and their resolution against a
//! selected mailbox, by message sequence number or by UID.

/// One end of a range: a number or `*` (the largest in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqBound {
    Num(u32),
    Star,
}

/// A parsed sequence set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    /// Ranges as written; `4:2` is the same as `2:4`.
    Ranges(Vec<(SeqBound, SeqBound)>),
    /// `$`: the result saved by the last `SEARCH RETURN (SAVE)` (RFC 5182).
    Saved,
}

impl SequenceSet {
    /// The ranges with `*` replaced by `largest` (0 when the set is empty),
    /// each ordered low..=high.
    pub fn resolve(&self, largest: u32) -> Vec<(u32, u32)> {
        let SequenceSet::Ranges(ranges) = self else {
            return Vec::new();
        };
        let value = |b: SeqBound| match b {
            SeqBound::Num(n) => n,
            SeqBound::Star => largest,
        };
        ranges
            .iter()
            .map(|(a, b)| {
                let (a, b) = (value(*a), value(*b));
                (a.min(b), a.max(b))
            })
            .collect()
    }

    /// Whether `n` is in the set.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.resolve(largest)
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&n))
    }
}

/// Writes numbers (ascending or not) in compact IMAP form: `1:3,7,9:10`.
pub fn compact(numbers: &[u32]) -> String {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    in_order(&sorted)
}

/// Writes numbers in the order given, as COPYUID needs (source and target
/// lists correspond element by element): runs are compressed only when ascending.
pub fn in_order(numbers: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = numbers[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_ranges_and_star() {
        let set = SequenceSet::Ranges(vec![
            (SeqBound::Num(4), SeqBound::Num(2)),
            (SeqBound::Star, SeqBound::Num(9)),
        ]);
        assert_eq!(set.resolve(12), vec![(2, 4), (9, 12)]);
        assert!(set.contains(3, 12));
        assert!(!set.contains(5, 12));
    }

    #[test]
    fn compact_forms() {
        assert_eq!(compact(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(compact(&[5, 1, 2]), "1:2,5");
        assert_eq!(in_order(&[3, 4, 1]), "3:4,1");
        assert_eq!(compact(&[]), "");
    }
}
