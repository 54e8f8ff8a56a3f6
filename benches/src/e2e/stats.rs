//! Order statistics over measurements and plain-text / Markdown tables.

use std::fmt::Write as _;
use std::time::Duration;

/// The `pct`-th percentile of `sorted` (ascending) by the nearest-rank method: the smallest
/// value such that at least `pct` % of the samples are less than or equal to it.
///
/// `None` for an empty slice or a `pct` outside `0..=100`.
pub(crate) fn percentile(sorted: &[f64], pct: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=100.0).contains(&pct) {
        return None;
    }
    let n = sorted.len();
    // Rank 1..=n; pct 0 maps to the minimum.
    let rank = ((pct / 100.0) * n as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(n) - 1).copied()
}

/// Sorts latencies and returns them in microseconds, ready for [`percentile`].
pub(crate) fn sorted_micros(latencies: &[Duration]) -> Vec<f64> {
    let mut us: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    us.sort_by(f64::total_cmp);
    us
}

/// The median of `values` (mean of the middle two for an even count); `None` when empty.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v.get(mid).copied()
    } else {
        Some((v.get(mid - 1)? + v.get(mid)?) / 2.0)
    }
}

/// Smallest and largest of `values`; `None` when empty.
pub(crate) fn min_max(values: &[f64]) -> Option<(f64, f64)> {
    let mut it = values.iter().copied().filter(|x| !x.is_nan());
    let first = it.next()?;
    Some(it.fold((first, first), |(lo, hi), x| (lo.min(x), hi.max(x))))
}

/// Formats a count with thousands separators: `1234567.8` → `"1 234 568"`.
pub(crate) fn group_thousands(value: f64) -> String {
    let rounded = value.round();
    let digits = format!("{}", rounded.abs() as u64);
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if rounded < 0.0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(ch);
    }
    out
}

/// Formats with a number of significant figures suited to benchmark figures:
/// `0.123`, `1.23`, `12.3`, `123`.
pub(crate) fn three_sig(value: f64) -> String {
    let a = value.abs();
    if a >= 100.0 {
        format!("{value:.0}")
    } else if a >= 10.0 {
        format!("{value:.1}")
    } else if a >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// How a column's cells line up in the plain-text rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    /// Text columns.
    Left,
    /// Number columns.
    Right,
}

/// A table rendered either as aligned plain text (for a terminal) or as GitHub Markdown.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    headers: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers and alignments.
    pub(crate) fn new(headers: &[(&str, Align)]) -> Self {
        Self {
            headers: headers
                .iter()
                .map(|(h, a)| ((*h).to_string(), *a))
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells render empty, extra cells are dropped.
    pub(crate) fn push(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    fn widths(&self) -> Vec<usize> {
        self.headers
            .iter()
            .enumerate()
            .map(|(i, (h, _))| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .chain(std::iter::once(h.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Columns padded to a common width, separated by two spaces, with a dashed rule under
    /// the header. Lines carry no trailing spaces.
    pub(crate) fn render_text(&self) -> String {
        let widths = self.widths();
        let mut out = String::new();
        let line = |cells: &mut dyn Iterator<Item = (&str, Align, usize)>| {
            let mut s = String::new();
            for (i, (cell, align, width)) in cells.enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                let pad = width.saturating_sub(cell.chars().count());
                match align {
                    Align::Left => {
                        s.push_str(cell);
                        s.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        s.extend(std::iter::repeat_n(' ', pad));
                        s.push_str(cell);
                    }
                }
            }
            s.trim_end().to_string()
        };
        let mut header = self
            .headers
            .iter()
            .zip(&widths)
            .map(|((h, a), w)| (h.as_str(), *a, *w));
        out.push_str(&line(&mut header));
        out.push('\n');
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&rule.join("  "));
        out.push('\n');
        for row in &self.rows {
            let mut cells = row
                .iter()
                .zip(&self.headers)
                .zip(&widths)
                .map(|((c, (_, a)), w)| (c.as_str(), *a, *w));
            out.push_str(&line(&mut cells));
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured Markdown table; `|` inside cells is escaped.
    pub(crate) fn render_markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = String::new();
        out.push('|');
        for (h, _) in &self.headers {
            let _ = write!(out, " {} |", esc(h));
        }
        out.push_str("\n|");
        for (_, a) in &self.headers {
            out.push_str(match a {
                Align::Left => "---|",
                Align::Right => "---:|",
            });
        }
        out.push('\n');
        for row in &self.rows {
            out.push('|');
            for c in row {
                let _ = write!(out, " {} |", esc(c));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 99.5), Some(100.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        let small = [10.0, 20.0, 30.0];
        assert_eq!(percentile(&small, 50.0), Some(20.0));
        assert_eq!(percentile(&small, 34.0), Some(20.0));
        assert_eq!(percentile(&small, 33.0), Some(10.0));
        assert_eq!(percentile(&small, 99.0), Some(30.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&small, 101.0), None);
        assert_eq!(percentile(&small, -1.0), None);
    }

    #[test]
    fn latencies_sort_into_micros() {
        let l = [
            Duration::from_micros(300),
            Duration::from_micros(100),
            Duration::from_nanos(200_500),
        ];
        assert_eq!(sorted_micros(&l), vec![100.0, 200.5, 300.0]);
    }

    #[test]
    fn median_and_range() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 7.0]), Some(7.0));
        assert_eq!(min_max(&[5.0, -1.0, 9.0]), Some((-1.0, 9.0)));
        assert_eq!(min_max(&[]), None);
    }

    #[test]
    fn number_formatting() {
        assert_eq!(group_thousands(1_234_567.8), "1 234 568");
        assert_eq!(group_thousands(999.0), "999");
        assert_eq!(group_thousands(1000.0), "1 000");
        assert_eq!(group_thousands(0.2), "0");
        assert_eq!(group_thousands(-12_345.0), "-12 345");
        assert_eq!(three_sig(0.01234), "0.012");
        assert_eq!(three_sig(1.234), "1.23");
        assert_eq!(three_sig(12.34), "12.3");
        assert_eq!(three_sig(1234.5), "1234");
    }

    fn sample() -> Table {
        let mut t = Table::new(&[("client", Align::Left), ("msgs/s", Align::Right)]);
        t.push(vec!["lapin".into(), "12 000".into()]);
        t.push(vec!["a|b".into(), "7".into(), "dropped".into()]);
        t.push(vec!["ours".into()]);
        t
    }

    #[test]
    fn text_table_aligns_columns() {
        let text = sample().render_text();
        let expected = "\
client  msgs/s
------  ------
lapin   12 000
a|b          7
ours
";
        assert_eq!(text, expected);
    }

    #[test]
    fn markdown_table_escapes_and_aligns() {
        let md = sample().render_markdown();
        let expected = "\
| client | msgs/s |
|---|---:|
| lapin | 12 000 |
| a\\|b | 7 |
| ours |  |
";
        assert_eq!(md, expected);
    }
}
