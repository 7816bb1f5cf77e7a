//! The top-K summary printed on stdout after a sweep.

use crate::output::OutputFormat;
use std::cmp::Ordering;
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

/// Parses a finished table into its columns and rows of cells.
fn cells(table: &str, format: OutputFormat, columns: &[String]) -> Vec<Vec<String>> {
    match format {
        OutputFormat::Csv => table.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect(),
        OutputFormat::JsonLines => table
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(l).ok())
            .map(|row| {
                columns
                    .iter()
                    .map(|c| match row.get(c) {
                        Some(serde_json::Value::Null) | None => "NaN".to_string(),
                        Some(v) => v.to_string(),
                    })
                    .collect()
            })
            .collect(),
    }
}

/// The rows of `table` (as cells), best first by `metric`; rows without a value last.
pub fn ranked_rows(table: &str, format: OutputFormat, columns: &[String], metric: &str) -> Vec<Vec<String>> {
    let Some(metric_col) = columns.iter().position(|c| c == metric) else { return Vec::new() };
    let value = |row: &Vec<String>| row.get(metric_col).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    let lower_better = LOWER_IS_BETTER.contains(&metric);
    let mut ranked: Vec<(f64, Vec<String>)> =
        cells(table, format, columns).into_iter().map(|r| (value(&r), r)).collect();
    ranked.sort_by(|a, b| match (a.0.is_nan(), b.0.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if lower_better => a.0.total_cmp(&b.0),
        _ => b.0.total_cmp(&a.0),
    });
    ranked.into_iter().map(|(_, row)| row).collect()
}

/// Renders the best `k` rows of `table` by `metric` as an aligned text table.
pub fn top_k(table: &str, format: OutputFormat, columns: &[String], metric: &str, k: usize) -> String {
    let ranked = ranked_rows(table, format, columns, metric);
    let shown: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut lines = vec![std::iter::once("rank".to_string()).chain(shown.iter().map(|s| s.to_string())).collect()];
    for (i, row) in ranked.iter().take(k).enumerate() {
        let mut line = vec![(i + 1).to_string()];
        line.extend(row.iter().map(|cell| short_number(cell)));
        lines.push(line);
    }
    let widths: Vec<usize> =
        (0..lines[0].len()).map(|c| lines.iter().map(|l| l.get(c).map_or(0, String::len)).max().unwrap_or(0)).collect();
    let mut out = format!("top {} of {} by {metric}:\n", ranked.len().min(k), ranked.len());
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
    fn ranks_best_first_and_nan_last() {
        let cols = columns(&["fast"], &[]);
        let table =
            "combo_id,fast,total_return,cagr,sharpe,sortino,volatility,max_drawdown,max_drawdown_duration,trades\n\
                     0,5,0.1,0,0.5,0,0,0.3,4,1\n1,6,0.2,0,NaN,0,0,0.1,4,1\n2,7,0.3,0,1.5,0,0,0.2,4,1\n";
        let report = top_k(table, OutputFormat::Csv, &cols, "sharpe", 2);
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[0], "top 2 of 3 by sharpe:");
        assert!(lines[2].trim_start().starts_with("1         2"), "{report}");
        assert!(lines[3].trim_start().starts_with("2         0"), "{report}");
        let by_dd = top_k(table, OutputFormat::Csv, &cols, "max_drawdown", 1);
        assert!(by_dd.lines().nth(2).unwrap().trim_start().starts_with("1         1"), "{by_dd}");
        assert!(check_rank_metric("sharpe").is_ok() && check_rank_metric("alpha").is_err());
    }
}
