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

/// The cells of one table line.
fn cells_of(line: &str, format: OutputFormat, columns: &[String]) -> Vec<String> {
    match format {
        OutputFormat::Csv => line.split(',').map(str::to_string).collect(),
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

/// The value of column `col` (named `name`) in one table line, without parsing the rest.
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

/// The best `k` rows of `table` by `metric` (as cells), best first; rows without a value
/// last. Only the metric column of every row is parsed; only the `k` winners in full.
pub fn ranked_rows(
    table: &str,
    format: OutputFormat,
    columns: &[String],
    metric: &str,
    k: usize,
) -> (Vec<Vec<String>>, usize) {
    let Some(col) = columns.iter().position(|c| c == metric) else { return (Vec::new(), 0) };
    let lines: Vec<&str> = match format {
        OutputFormat::Csv => table.lines().skip(1).collect(),
        OutputFormat::JsonLines => table.lines().collect(),
    };
    let lower_better = LOWER_IS_BETTER.contains(&metric);
    let mut ranked: Vec<(f64, usize)> =
        lines.iter().enumerate().map(|(i, l)| (metric_of(l, format, col, metric), i)).collect();
    let order = |a: &(f64, usize), b: &(f64, usize)| match (a.0.is_nan(), b.0.is_nan()) {
        (true, true) => a.1.cmp(&b.1),
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if lower_better => a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)),
        _ => b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)),
    };
    let k = k.min(ranked.len());
    if k == 0 {
        return (Vec::new(), lines.len());
    }
    ranked.select_nth_unstable_by(k - 1, order);
    ranked.truncate(k);
    ranked.sort_by(order);
    (ranked.iter().map(|&(_, i)| cells_of(lines[i], format, columns)).collect(), lines.len())
}

/// Renders the best `k` rows of `table` by `metric` as an aligned text table.
pub fn top_k(table: &str, format: OutputFormat, columns: &[String], metric: &str, k: usize) -> String {
    let (ranked, total) = ranked_rows(table, format, columns, metric, k);
    let shown: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut lines = vec![std::iter::once("rank".to_string()).chain(shown.iter().map(|s| s.to_string())).collect()];
    for (i, row) in ranked.iter().take(k).enumerate() {
        let mut line = vec![(i + 1).to_string()];
        line.extend(row.iter().map(|cell| short_number(cell)));
        lines.push(line);
    }
    let widths: Vec<usize> =
        (0..lines[0].len()).map(|c| lines.iter().map(|l| l.get(c).map_or(0, String::len)).max().unwrap_or(0)).collect();
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
