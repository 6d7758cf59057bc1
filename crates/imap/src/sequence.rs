//! Sequence sets (RFC 9051 §9 `sequence-set`) and their resolution against a
//! selected mailbox, by message sequence number or by UID.

/// One end of a range: a number or `*` (the largest in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqBound {
    Num(u32),
    Star,
}

/// Ranges in one sequence set, at most. A set comes from a client and may
/// name every number up to 4294967295: it is never expanded, only kept as
/// ranges, sorted and merged, so that resolving it costs what it names in
/// the mailbox and checking a number costs a binary search.
pub const MAX_RANGES: usize = 10_000;

/// A parsed sequence set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    /// Ranges: the numeric ones sorted by their low end, merged, each
    /// written low:high; then at most two ranges with one end `*` (`n:*` is
    /// the same as `*:n`, and two such ranges are covered by the lowest and
    /// highest `n`), or `*:*` alone.
    Ranges(Vec<(SeqBound, SeqBound)>),
    /// `$`: the result saved by the last `SEARCH RETURN (SAVE)` (RFC 5182).
    Saved,
}

impl SequenceSet {
    /// The set of the ranges as written (`4:2` is the same as `2:4`, RFC
    /// 9051 §9: the order of a set's members is not significant).
    pub fn from_ranges(ranges: &[(SeqBound, SeqBound)]) -> SequenceSet {
        let mut numbers: Vec<(u32, u32)> = Vec::new();
        // The ends of the ranges that reach `*`.
        let mut star_low: Option<u32> = None;
        let mut star_high: Option<u32> = None;
        let mut star_alone = false;
        for range in ranges {
            match *range {
                (SeqBound::Num(a), SeqBound::Num(b)) => numbers.push((a.min(b), a.max(b))),
                (SeqBound::Num(n), SeqBound::Star) | (SeqBound::Star, SeqBound::Num(n)) => {
                    star_low = Some(star_low.map_or(n, |low| low.min(n)));
                    star_high = Some(star_high.map_or(n, |high| high.max(n)));
                }
                (SeqBound::Star, SeqBound::Star) => star_alone = true,
            }
        }
        let mut out: Vec<(SeqBound, SeqBound)> = merge(numbers)
            .into_iter()
            .map(|(low, high)| (SeqBound::Num(low), SeqBound::Num(high)))
            .collect();
        match (star_low, star_high) {
            (Some(low), Some(high)) => {
                out.push((SeqBound::Num(low), SeqBound::Star));
                if high != low {
                    out.push((SeqBound::Num(high), SeqBound::Star));
                }
            }
            _ if star_alone => out.push((SeqBound::Star, SeqBound::Star)),
            _ => {}
        }
        SequenceSet::Ranges(out)
    }

    /// The ranges with `*` replaced by `largest` (0 when the set is empty),
    /// each ordered low..=high, sorted and merged.
    pub fn resolve(&self, largest: u32) -> Vec<(u32, u32)> {
        let SequenceSet::Ranges(ranges) = self else {
            return Vec::new();
        };
        let value = |b: SeqBound| match b {
            SeqBound::Num(n) => n,
            SeqBound::Star => largest,
        };
        merge(
            ranges
                .iter()
                .map(|(a, b)| {
                    let (a, b) = (value(*a), value(*b));
                    (a.min(b), a.max(b))
                })
                .collect(),
        )
    }

    /// Whether `n` is in the set: a binary search over the numeric ranges
    /// (kept sorted and merged), and a look at the few that reach `*`.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        let SequenceSet::Ranges(ranges) = self else {
            return false;
        };
        let numeric = ranges.partition_point(|r| matches!(r, (SeqBound::Num(_), SeqBound::Num(_))));
        let (numbers, stars) = ranges.split_at(numeric);
        let after =
            numbers.partition_point(|(low, _)| matches!(low, SeqBound::Num(low) if *low <= n));
        let in_numbers = after > 0
            && matches!(numbers[after - 1], (SeqBound::Num(low), SeqBound::Num(high)) if low <= n && n <= high);
        in_numbers
            || stars.iter().any(|(a, b)| {
                let value = |b: &SeqBound| match b {
                    SeqBound::Num(v) => *v,
                    SeqBound::Star => largest,
                };
                let (a, b) = (value(a), value(b));
                a.min(b) <= n && n <= a.max(b)
            })
    }
}

/// Sorts ranges (low <= high each) and merges those that overlap or touch.
fn merge(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    ranges.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (low, high) in ranges {
        match out.last_mut() {
            Some(last) if u64::from(low) <= u64::from(last.1) + 1 => last.1 = last.1.max(high),
            _ => out.push((low, high)),
        }
    }
    out
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

    fn set(ranges: &[(SeqBound, SeqBound)]) -> SequenceSet {
        SequenceSet::from_ranges(ranges)
    }

    use SeqBound::{Num, Star};

    #[test]
    fn reversed_ranges_and_star() {
        let set = set(&[(Num(4), Num(2)), (Star, Num(9))]);
        assert_eq!(set.resolve(12), vec![(2, 4), (9, 12)]);
        assert!(set.contains(3, 12));
        assert!(!set.contains(5, 12));
        assert!(set.contains(10, 12) && set.contains(12, 12) && !set.contains(13, 12));
        // `9:*` when the largest is 5 is 5:9.
        assert_eq!(set_of_star(9).resolve(5), vec![(5, 9)]);
        assert!(set_of_star(9).contains(5, 5) && set_of_star(9).contains(9, 5));
        assert!(!set_of_star(9).contains(4, 5));
    }

    fn set_of_star(n: u32) -> SequenceSet {
        set(&[(Num(n), Star)])
    }

    #[test]
    fn huge_sets_stay_ranges() {
        // RFC 9051 §9: 1:4294967295 is one range, never a list of numbers.
        let all = set(&[(Num(1), Num(u32::MAX)), (Num(u32::MAX), Num(1))]);
        assert_eq!(all, set(&[(Num(1), Num(u32::MAX))]));
        assert_eq!(all.resolve(7), vec![(1, u32::MAX)]);
        assert!(all.contains(u32::MAX, 7) && all.contains(1, 7));
        // 100,000 items: merged into what they cover.
        let items: Vec<_> = (1..=100_000u32).map(|n| (Num(n), Num(n))).collect();
        assert_eq!(set(&items), set(&[(Num(1), Num(100_000))]));
        let odd: Vec<_> = (0..50_000u32)
            .map(|n| (Num(2 * n + 1), Num(2 * n + 1)))
            .collect();
        let odd = set(&odd);
        assert!(odd.contains(99_999, 0) && !odd.contains(50_000, 0));
        // Any number of `n:*` ranges: at most two remain.
        let stars: Vec<_> = (1..=1000u32).map(|n| (Num(n), Star)).collect();
        assert_eq!(set(&stars), set(&[(Num(1), Star), (Num(1000), Star)]));
        assert_eq!(set(&stars).resolve(10), vec![(1, 1000)]);
        let star_alone = set(&[(Star, Star), (Star, Star)]);
        assert_eq!(star_alone.resolve(4), vec![(4, 4)]);
        assert!(star_alone.contains(4, 4) && !star_alone.contains(3, 4));
        // The star range and the numbers are merged when resolved.
        assert_eq!(
            set(&[(Num(1), Num(3)), (Star, Star)]).resolve(4),
            vec![(1, 4)]
        );
    }

    #[test]
    fn compact_forms() {
        assert_eq!(compact(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(compact(&[5, 1, 2]), "1:2,5");
        assert_eq!(in_order(&[3, 4, 1]), "3:4,1");
        assert_eq!(compact(&[]), "");
    }
}
