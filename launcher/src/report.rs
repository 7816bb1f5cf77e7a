//! The top-K summary printed on stdout after a sweep.

use crate::output::OutputFormat;
use sweeprun_kernel::metrics::Metrics;

/// Metrics where smaller is better.
const LOWER_IS_BETTER: [&str; 3] = ["volatility", "max_drawdown", "max_drawdown_duration"];

/// Checks that `metric` is a column a table can be ranked by.
pub fn check_rank_metric(metric: &str) -> Result<(), String> {
    if Metrics::NAMES.contains(&metric) {
        Ok(())
    } else {
        Err(format!("--sort-by: unknown metric `{metric}` (expected one of: {})", Metrics::NAMES.join(", ")))
    }
}

/// The cells of one table line.
fn cells_of(line: &str, format: OutputFormat, columns: &[String]) -> Vec<String> {
    match format {
        // An undefined value (empty cell, `null`) shows as NaN.
        OutputFormat::Csv => line.split(',').map(|c| if c.is_empty() { "NaN" } else { c }.to_string()).collect(),
        OutputFormat::JsonLines => {
            let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap_or_default();
            columns
                .iter()
                .map(|c| match row.get(c) {
                    Some(serde_json::Value::Null) | None => "NaN".to_string(),
                    Some(v) => v.to_string(),
                })
                .collect()
        }
    }
}

/// The value of column `col` (named `name`) in one table line, without parsing the rest;
/// NaN when undefined (an empty CSV cell, `null`) or not a number.
fn metric_of(line: &str, format: OutputFormat, col: usize, name: &str) -> f64 {
    let text = match format {
        OutputFormat::Csv => line.split(',').nth(col),
        OutputFormat::JsonLines => {
            let key = format!("\"{name}\":");
            line.find(&key).map(|at| {
                let rest = &line[at + key.len()..];
                &rest[..rest.find([',', '}']).unwrap_or(rest.len())]
            })
        }
    };
    text.and_then(|t| t.parse::<f64>().ok()).unwrap_or(f64::NAN)
}

/// Whether `metric` ranks smaller values first.
pub fn lower_is_better(metric: &str) -> bool {
    LOWER_IS_BETTER.contains(&metric)
}

/// The best `k` of the items offered, by value (NaN last; ties by id).
#[derive(Debug)]
pub struct TopK<T> {
    k: usize,
    lower_better: bool,
    /// (value, id, item), best first.
    best: Vec<(f64, u64, T)>,
}

impl<T> TopK<T> {
    /// Keeps the `k` best; smaller values are better when `lower_better`.
    pub fn new(k: usize, lower_better: bool) -> TopK<T> {
        TopK { k, lower_better, best: Vec::with_capacity(k + 1) }
    }

    /// Whether `(value, id)` ranks before `(other value, other id)`.
    fn before(&self, a: (f64, u64), b: (f64, u64)) -> bool {
        match (a.0.is_nan(), b.0.is_nan()) {
            (true, true) => a.1 < b.1,
            (true, false) => false,
            (false, true) => true,
            _ if a.0 == b.0 => a.1 < b.1,
            _ if self.lower_better => a.0 < b.0,
            _ => a.0 > b.0,
        }
    }

    /// Whether an item with this value and id would be kept now.
    pub fn wants(&self, value: f64, id: u64) -> bool {
        self.k > 0
            && (self.best.len() < self.k || self.best.last().is_some_and(|l| self.before((value, id), (l.0, l.1))))
    }

    /// Offers one item; `item` is only called when it is kept.
    pub fn offer(&mut self, value: f64, id: u64, item: impl FnOnce() -> T) {
        if !self.wants(value, id) {
            return;
        }
        let at = self.best.iter().position(|b| self.before((value, id), (b.0, b.1))).unwrap_or(self.best.len());
        self.best.insert(at, (value, id, item()));
        self.best.truncate(self.k);
    }

    /// The kept items, best first, emptying the set.
    pub fn take(&mut self) -> Vec<(f64, u64, T)> {
        std::mem::take(&mut self.best)
    }

    /// The kept items, best first.
    pub fn items(&self) -> impl Iterator<Item = &T> {
        self.best.iter().map(|b| &b.2)
    }
}

/// Keeps the best `k` rows by one metric while rows stream past (only the metric column
/// of each row is parsed; ties keep id order; rows without a value rank last).
#[derive(Debug)]
pub struct Ranker {
    format: OutputFormat,
    column: Option<usize>,
    metric: String,
    seen: usize,
    best: TopK<String>,
}

impl Ranker {
    /// A ranker of table lines with these columns.
    pub fn new(format: OutputFormat, columns: &[String], metric: &str, k: usize) -> Ranker {
        Ranker {
            format,
            column: columns.iter().position(|c| c == metric),
            metric: metric.to_string(),
            seen: 0,
            best: TopK::new(k, lower_is_better(metric)),
        }
    }

    /// Offers one table line (a row, not the CSV header) of combo `id`.
    fn offer(&mut self, id: u64, line: &str) {
        let Some(column) = self.column else { return };
        let value = metric_of(line, self.format, column, &self.metric);
        self.best.offer(value, id, || line.to_string());
    }

    /// Offers every line of a block of rows of combos `first..`.
    pub fn push_rows(&mut self, first: u64, rows: &str) {
        for (id, line) in (first..).zip(rows.lines()) {
            self.seen += 1;
            if self.best.k > 0 {
                self.offer(id, line);
            }
        }
    }

    /// Offers a block of `count` rows of combos `first..` of which only the lines starting
    /// at byte offsets `best` can rank (a rank preselected them from the block). Offsets
    /// must be line starts; anything else is an error.
    pub fn push_preselected(&mut self, first: u64, rows: &str, count: u64, best: &[usize]) -> Result<(), String> {
        self.seen += count as usize;
        if best.len() > self.best.k || best.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "{} preselected rows, expected at most {} in ascending order",
                best.len(),
                self.best.k
            ));
        }
        for &offset in best {
            let at_line_start = offset < rows.len() && (offset == 0 || rows.as_bytes()[offset - 1] == b'\n');
            if !at_line_start {
                return Err(format!("preselected row at byte {offset} is not a row of the chunk"));
            }
            let line = rows[offset..].split('\n').next().unwrap_or("");
            match crate::output::row_id(self.format, line) {
                Some(id) if (first..first + count).contains(&id) => self.offer(id, line),
                _ => return Err(format!("preselected row at byte {offset} is not a row of the chunk")),
            }
        }
        Ok(())
    }

    /// The best rows (as cells), best first, and the number of rows seen.
    pub fn finish(&self, columns: &[String]) -> (Vec<Vec<String>>, usize) {
        (self.best.items().map(|line| cells_of(line, self.format, columns)).collect(), self.seen)
    }
}

/// The best `k` rows of a whole `table` by `metric` (as cells), best first, and the
/// number of rows.
pub fn ranked_rows(
    table: &str,
    format: OutputFormat,
    columns: &[String],
    metric: &str,
    k: usize,
) -> (Vec<Vec<String>>, usize) {
    let mut ranker = Ranker::new(format, columns, metric, k);
    let rows = match format {
        OutputFormat::Csv => table.split_once('\n').map_or("", |(_, rows)| rows),
        OutputFormat::JsonLines => table,
    };
    ranker.push_rows(0, rows);
    ranker.finish(columns)
}

/// Renders ranked rows (best first) as an aligned text table.
pub fn render(ranked: &[Vec<String>], total: usize, columns: &[String], metric: &str) -> String {
    let shown: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut lines = vec![std::iter::once("rank".to_string()).chain(shown.iter().map(|s| s.to_string())).collect()];
    for (i, row) in ranked.iter().enumerate() {
        let mut line = vec![(i + 1).to_string()];
        line.extend(row.iter().map(|cell| short_number(cell)));
        lines.push(line);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| lines.iter().map(|l: &Vec<String>| l.get(c).map_or(0, String::len)).max().unwrap_or(0))
        .collect();
    let mut out = format!("top {} of {total} by {metric}:\n", ranked.len());
    for line in lines {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(cell, w)| format!("{cell:>w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Shortens a float cell to 6 significant digits for display (integers stay as they are).
fn short_number(cell: &str) -> String {
    if cell.parse::<i64>().is_ok() {
        return cell.to_string();
    }
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() => {
            let s = format!("{v:.6}");
            if v.abs() >= 1e6 || (v != 0.0 && v.abs() < 1e-4) {
                format!("{v:.4e}")
            } else {
                s
            }
        }
        _ => cell.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::columns;

    #[test]
    fn preselected_offsets_must_be_distinct_ascending_row_starts_and_at_most_k() {
        let cols = columns(&["fast"], &[]);
        let rows = "4,5,0.1,0,0.5,0,0,0.3,4,1\n5,6,0.2,0,0.9,0,0,0.1,4,1\n";
        let second = rows.find('\n').unwrap() + 1;
        let mut ranker = Ranker::new(OutputFormat::Csv, &cols, "sharpe", 2);
        assert!(ranker.push_preselected(4, rows, 2, &[0, second]).is_ok());
        let (best, total) = ranker.finish(&cols);
        assert_eq!((best[0][0].as_str(), best[1][0].as_str(), total), ("5", "4", 2));
        for bad in [&[0, 0][..], &[second, 0], &[0, second, second + 1], &[1], &[rows.len()]] {
            let mut ranker = Ranker::new(OutputFormat::Csv, &cols, "sharpe", 2);
            assert!(ranker.push_preselected(4, rows, 2, bad).is_err(), "{bad:?}");
        }
        // Rows outside the chunk's ids are refused too.
        let mut ranker = Ranker::new(OutputFormat::Csv, &cols, "sharpe", 2);
        assert!(ranker.push_preselected(0, rows, 2, &[0]).is_err());
    }

    #[test]
    fn ranks_best_first_and_nan_last() {
        let cols = columns(&["fast"], &[]);
        let table =
            "combo_id,fast,total_return,cagr,sharpe,sortino,volatility,max_drawdown,max_drawdown_duration,trades\n\
                     0,5,0.1,0,0.5,0,0,0.3,4,1\n1,6,0.2,0,,0,0,0.1,4,1\n2,7,0.3,0,1.5,0,0,0.2,4,1\n";
        let top_k = |metric: &str, k: usize| {
            let (best, total) = ranked_rows(table, OutputFormat::Csv, &cols, metric, k);
            render(&best, total, &cols, metric)
        };
        let report = top_k("sharpe", 2);
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[0], "top 2 of 3 by sharpe:");
        assert!(lines[2].trim_start().starts_with("1         2"), "{report}");
        assert!(lines[3].trim_start().starts_with("2         0"), "{report}");
        let by_dd = top_k("max_drawdown", 1);
        assert!(by_dd.lines().nth(2).unwrap().trim_start().starts_with("1         1"), "{by_dd}");
        assert!(check_rank_metric("sharpe").is_ok() && check_rank_metric("alpha").is_err());
    }
}
