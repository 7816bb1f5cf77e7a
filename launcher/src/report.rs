//! The top-K summary printed on stdout after a sweep.

use crate::grid::Grid;
use crate::table::{csv_fields, OutputFormat};
use std::collections::HashMap;

/// Metrics where smaller is better.
const LOWER_IS_BETTER: [&str; 3] = ["volatility", "max_drawdown", "max_drawdown_duration"];

/// `n` and `noun`, plural unless `n` is 1: `1 combo`, `2 combos`, `0 rows`.
pub fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Checks that `metric` is a column a table with these `columns` can be ranked by: any
/// of its numeric columns (grid parameters, metrics, strategy extras), not `combo_id`.
pub fn check_rank_metric(metric: &str, columns: &[String]) -> Result<(), String> {
    let sortable: Vec<&str> =
        columns.iter().map(String::as_str).filter(|&c| c != "combo_id" && c != crate::grid::SYMBOL).collect();
    if metric == crate::grid::SYMBOL && columns.iter().any(|c| c == metric) {
        Err(format!(
            "--sort-by: `{metric}` is text, not a number to rank by (to rank within each symbol: --group-by {metric})"
        ))
    } else if sortable.contains(&metric) {
        Ok(())
    } else {
        Err(format!("--sort-by: unknown metric `{metric}` (expected one of: {})", sortable.join(", ")))
    }
}

/// The cells of one table line.
fn cells_of(line: &str, format: OutputFormat, columns: &[String]) -> Vec<String> {
    match format {
        // An undefined value (empty cell, `null`) shows as NaN.
        OutputFormat::Csv => {
            csv_fields(line).into_iter().map(|c| if c.is_empty() { "NaN".to_string() } else { c }).collect()
        }
        OutputFormat::JsonLines => {
            let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap_or_default();
            columns
                .iter()
                .map(|c| match row.get(c) {
                    Some(serde_json::Value::Null) | None => "NaN".to_string(),
                    Some(serde_json::Value::String(text)) => text.clone(),
                    Some(v) => v.to_string(),
                })
                .collect()
        }
    }
}

/// The value of column `col` (named `name`) in one table line, without parsing the rest;
/// NaN when undefined (an empty CSV cell, `null`) or not a number.
fn metric_of(line: &str, format: OutputFormat, col: usize, name: &str) -> f64 {
    cell_of(line, format, col, name).and_then(|t| t.parse::<f64>().ok()).unwrap_or(f64::NAN)
}

/// The text of column `col` (named `name`) in one table line: a CSV field unquoted, a
/// JSON string decoded, a JSON number as written.
fn cell_of(line: &str, format: OutputFormat, col: usize, name: &str) -> Option<String> {
    match format {
        // Only a symbol can be quoted: lines without quotes split plainly.
        OutputFormat::Csv if line.contains('"') => csv_fields(line).into_iter().nth(col),
        OutputFormat::Csv => line.split(',').nth(col).map(str::to_string),
        OutputFormat::JsonLines => {
            // Inside a JSON string every `"` is escaped, so `"name":` is always a key.
            let key = format!("\"{name}\":");
            let rest = &line[line.find(&key)? + key.len()..];
            if let Some(inside) = rest.strip_prefix('"') {
                let mut escaped = false;
                let close = inside.find(|c| {
                    let end = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    end
                })?;
                serde_json::from_str(&rest[..close + 2]).ok()
            } else {
                Some(rest[..rest.find([',', '}']).unwrap_or(rest.len())].to_string())
            }
        }
    }
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

    /// An empty TopK keeping as many, ranked the same way.
    pub fn empty_like<U>(&self) -> TopK<U> {
        TopK::new(self.k, self.lower_better)
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

/// `--group-by COLUMN`: rank within each value of one grid parameter.
#[derive(Clone, Debug)]
pub struct GroupBy {
    /// The grid parameter.
    pub name: String,
    /// Its values as the table writes them, in the grid's order (the summary's order).
    pub values: Vec<String>,
}

impl GroupBy {
    /// The grouping `--group-by name` asks for: `None` without the flag; an error (one
    /// line) when `name` is not a grid parameter. `grid` must be bound.
    pub fn of(grid: &Grid, name: Option<&str>) -> Result<Option<GroupBy>, String> {
        let Some(name) = name else { return Ok(None) };
        let Some(axis) = grid.index_of(name) else {
            return Err(format!(
                "--group-by: `{name}` is not a grid key (expected one of: {})",
                grid.names().join(", ")
            ));
        };
        let values = grid.axis(axis).iter().map(|&v| grid.value_text(v).into_owned()).collect();
        Ok(Some(GroupBy { name: name.to_string(), values }))
    }

    /// The position of the grouping column among `columns`.
    pub fn column(&self, columns: &[String]) -> Option<usize> {
        columns.iter().position(|c| *c == self.name)
    }
}

/// The best rows of each group.
#[derive(Debug)]
struct Groups {
    column: usize,
    name: String,
    /// Group index of each value text.
    index: HashMap<String, usize>,
    /// One top-K per group, created when the group's first row arrives.
    best: Vec<Option<TopK<String>>>,
}

/// Keeps the best `k` rows by one metric while rows stream past (only the metric column
/// of each row is parsed; ties keep id order; rows without a value rank last), overall or
/// per group ([`Ranker::grouped`]).
#[derive(Debug)]
pub struct Ranker {
    format: OutputFormat,
    column: Option<usize>,
    metric: String,
    seen: usize,
    best: TopK<String>,
    groups: Option<Groups>,
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
            groups: None,
        }
    }

    /// Keeps the best `k` of each group instead (with `Some`); `columns` as given to `new`.
    pub fn grouped(mut self, group: Option<&GroupBy>, columns: &[String]) -> Ranker {
        self.groups = group.and_then(|g| {
            Some(Groups {
                column: g.column(columns)?,
                name: g.name.clone(),
                index: g.values.iter().enumerate().map(|(i, v)| (v.clone(), i)).collect(),
                best: (0..g.values.len()).map(|_| None).collect(),
            })
        });
        self
    }

    /// Offers one table line (a row, not the CSV header) of combo `id`.
    fn offer(&mut self, id: u64, line: &str) {
        let Some(column) = self.column else { return };
        let value = metric_of(line, self.format, column, &self.metric);
        let best = match self.groups.as_mut() {
            None => &mut self.best,
            Some(groups) => {
                let cell = cell_of(line, self.format, groups.column, &groups.name);
                let Some(&group) = cell.and_then(|c| groups.index.get(&c)) else { return };
                let (k, lower_better) = (self.best.k, self.best.lower_better);
                groups.best[group].get_or_insert_with(|| TopK::new(k, lower_better))
            }
        };
        best.offer(value, id, || line.to_string());
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
            match crate::table::row_id(self.format, line) {
                Some(id) if (first..first + count).contains(&id) => self.offer(id, line),
                _ => return Err(format!("preselected row at byte {offset} is not a row of the chunk")),
            }
        }
        Ok(())
    }

    /// The best rows (as cells), best first (grouped: each group's, groups in grid
    /// order), and the number of rows seen.
    pub fn finish(&self, columns: &[String]) -> (Vec<Vec<String>>, usize) {
        let lines: Vec<&String> = match &self.groups {
            None => self.best.items().collect(),
            Some(groups) => groups.best.iter().flatten().flat_map(TopK::items).collect(),
        };
        (lines.into_iter().map(|line| cells_of(line, self.format, columns)).collect(), self.seen)
    }
}

/// The best `k` rows (of each group, with `group`) of a whole `table` by `metric` (as
/// cells), best first, and the number of rows.
pub fn ranked_rows(
    table: &str,
    format: OutputFormat,
    columns: &[String],
    metric: &str,
    k: usize,
    group: Option<&GroupBy>,
) -> (Vec<Vec<String>>, usize) {
    let mut ranker = Ranker::new(format, columns, metric, k).grouped(group, columns);
    let rows = match format {
        OutputFormat::Csv => table.split_once('\n').map_or("", |(_, rows)| rows),
        OutputFormat::JsonLines => table,
    };
    ranker.push_rows(0, rows);
    ranker.finish(columns)
}

/// The first `k` of ranked rows, or with `group_column` the first `k` of each group
/// (rows of one group are consecutive, as [`Ranker::finish`] returns them).
pub fn leading(ranked: &[Vec<String>], k: usize, group_column: Option<usize>) -> Vec<Vec<String>> {
    let Some(column) = group_column else { return ranked[..ranked.len().min(k)].to_vec() };
    let mut out = Vec::new();
    let mut run = 0;
    for (i, row) in ranked.iter().enumerate() {
        run = if i > 0 && ranked[i - 1].get(column) == row.get(column) { run + 1 } else { 0 };
        if run < k {
            out.push(row.clone());
        }
    }
    out
}

/// Renders ranked rows (best first) as an aligned text table, each column in one fixed
/// style (see [`display_cell`]).
pub fn render(ranked: &[Vec<String>], total: usize, columns: &[String], metric: &str) -> String {
    render_ranks(ranked, total, columns, metric, None)
}

/// [`render`] for rows ranked within groups of column `group`: ranks restart at 1 in
/// each group.
pub fn render_grouped(
    ranked: &[Vec<String>],
    total: usize,
    columns: &[String],
    metric: &str,
    group: &str,
    k: usize,
) -> String {
    render_ranks(ranked, total, columns, metric, columns.iter().position(|c| c == group).map(|at| (at, group, k)))
}

fn render_ranks(
    ranked: &[Vec<String>],
    total: usize,
    columns: &[String],
    metric: &str,
    group: Option<(usize, &str, usize)>,
) -> String {
    let mut lines = vec![std::iter::once("rank".to_string()).chain(columns.iter().cloned()).collect()];
    let mut rank = 0;
    for (i, row) in ranked.iter().enumerate() {
        let same_group = group.is_none_or(|(at, _, _)| i > 0 && ranked[i - 1].get(at) == row.get(at));
        rank = if same_group { rank + 1 } else { 1 };
        let mut line = vec![rank.to_string()];
        line.extend(row.iter().zip(columns).map(|(cell, column)| display_cell(column, cell)));
        lines.push(line);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| lines.iter().map(|l: &Vec<String>| l.get(c).map_or(0, String::len)).max().unwrap_or(0))
        .collect();
    let mut out = match group {
        None => format!("top {} of {total} by {metric}:\n", ranked.len()),
        Some((_, name, k)) => format!("top {k} per {name} of {total} by {metric}:\n"),
    };
    for line in lines {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(cell, w)| format!("{cell:>w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Columns of returns and ratios, shown with [`RATIO_DECIMALS`] fixed decimals.
const RATIO_COLUMNS: [&str; 6] = ["total_return", "cagr", "sharpe", "sortino", "volatility", "max_drawdown"];
/// Decimals of the returns and ratios in the summary.
const RATIO_DECIMALS: usize = 4;

/// One summary cell in its column's style: money (`final_equity`) with thousands
/// separators and 2 decimals, returns and ratios with 4 fixed decimals, counts and grid
/// parameters as the table writes them; `NaN` and other non-numbers as they are.
pub fn display_cell(column: &str, cell: &str) -> String {
    let value = match cell.parse::<f64>() {
        Ok(v) if v.is_finite() => v,
        _ => return cell.to_string(),
    };
    if column == "final_equity" {
        money(value)
    } else if RATIO_COLUMNS.contains(&column) {
        format!("{value:.RATIO_DECIMALS$}")
    } else {
        cell.to_string()
    }
}

/// An amount with 2 decimals and `,` between thousands: `-2,432,100.50`.
fn money(value: f64) -> String {
    let fixed = format!("{:.2}", value.abs());
    let (whole, cents) = fixed.split_once('.').expect("two decimals");
    let sign = if value < 0.0 && fixed != "0.00" { "-" } else { "" };
    format!("{sign}{}.{cents}", thousands(whole))
}

/// A string of digits with `,` between thousands: `3830` as `3,830`.
pub fn thousands(digits: &str) -> String {
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::columns;

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
    fn each_column_has_one_readable_style() {
        assert_eq!(money(2_432_100.5), "2,432,100.50");
        assert_eq!(money(999.999), "1,000.00");
        assert_eq!(money(-1234.0), "-1,234.00");
        assert_eq!(money(12.0), "12.00");
        assert_eq!(display_cell("final_equity", "2432100.4567"), "2,432,100.46");
        assert_eq!(display_cell("sharpe", "1.23456789"), "1.2346");
        assert_eq!(display_cell("total_return", "1e-7"), "0.0000");
        assert_eq!(display_cell("cagr", "12345678.9"), "12345678.9000");
        assert_eq!(display_cell("trades", "12"), "12");
        assert_eq!(display_cell("fast", "5"), "5");
        assert_eq!(display_cell("sharpe", "NaN"), "NaN");
        let cols = columns(&["lookback", "top_n"], &["final_equity", "rebalances"]);
        let row: Vec<String> =
            "3,21,2,1.4321,0.05,0.91,1.2,0.15,0.25,40,96,2432100.0,108".split(',').map(str::to_string).collect();
        let report = render(&[row], 1, &cols, "final_equity");
        assert!(report.starts_with("top 1 of 1 by final_equity:\n"), "{report}");
        assert!(report.contains("2,432,100.00") && report.contains("1.4321") && !report.contains("e6"), "{report}");
    }

    #[test]
    fn the_count_of_one_is_singular() {
        assert_eq!(counted(1, "combo"), "1 combo");
        assert_eq!(counted(0, "row"), "0 rows");
        assert_eq!(counted(3830, "row"), "3830 rows");
    }

    #[test]
    fn ranks_best_first_and_nan_last() {
        let cols = columns(&["fast"], &[]);
        let table =
            "combo_id,fast,total_return,cagr,sharpe,sortino,volatility,max_drawdown,max_drawdown_duration,trades\n\
                     0,5,0.1,0,0.5,0,0,0.3,4,1\n1,6,0.2,0,,0,0,0.1,4,1\n2,7,0.3,0,1.5,0,0,0.2,4,1\n";
        let top_k = |metric: &str, k: usize| {
            let (best, total) = ranked_rows(table, OutputFormat::Csv, &cols, metric, k, None);
            render(&best, total, &cols, metric)
        };
        let report = top_k("sharpe", 2);
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[0], "top 2 of 3 by sharpe:");
        assert!(lines[2].trim_start().starts_with("1         2"), "{report}");
        assert!(lines[3].trim_start().starts_with("2         0"), "{report}");
        let by_dd = top_k("max_drawdown", 1);
        assert!(by_dd.lines().nth(2).unwrap().trim_start().starts_with("1         1"), "{by_dd}");
        assert!(check_rank_metric("sharpe", &cols).is_ok() && check_rank_metric("alpha", &cols).is_err());
        assert!(check_rank_metric("combo_id", &cols).is_err());
    }
}
