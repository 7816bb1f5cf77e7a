//! `sweeprun report OUT`: a finished sweep as one self-contained HTML page,
//! `OUT.report.html` (inline SVG and CSS; nothing fetched): a heatmap of a metric over two
//! grid parameters, the top-K table, the equity curves of the top combos (re-run through
//! the tearsheet path), the overfitting panel and the sidecar's provenance. `--svg` writes
//! the heatmap alone, `OUT.heatmap.svg`.
//!
//! Everything comes from the table, its sidecar `OUT.meta.json` (which must vouch for the
//! table: same BLAKE3) and the data the sidecar names (which must still have the recorded
//! SHA-256): the equity curves and each split's λ are recomputed, not stored.

mod charts;
mod page;

use crate::block_store::StoredSums;
use crate::error::{Failure, Result};
use crate::expr::Expr;
use crate::ledger;
use crate::report::lower_is_better;
use crate::spec::Spec;
use crate::table::{csv_fields, OutputFormat};
use serde_json::Value;
use std::path::{Path, PathBuf};
use sweeprun_kernel::overfitting::{self, BlockSums, Blocks, Cscv, Trials};
use sweeprun_kernel::prices::PriceSet;

/// `sweeprun report` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The results table of a finished sweep (.csv or .jsonl, with its `.meta.json`).
    pub table: PathBuf,
    /// Grid parameter across the heatmap [default: the grid's first].
    #[arg(long, value_name = "PARAM")]
    pub x: Option<String>,
    /// Grid parameter up the heatmap [default: the grid's second].
    #[arg(long, value_name = "PARAM")]
    pub y: Option<String>,
    /// Table column the heatmap colours and the top K rank by.
    #[arg(long, default_value = "sharpe", value_name = "COLUMN")]
    pub metric: String,
    /// Only the rows where this holds, over grid parameters (e.g. `symbol == "AAPL"`);
    /// parameters left on neither axis are reduced to their best value per cell.
    #[arg(long = "where", value_name = "EXPR")]
    pub where_: Option<String>,
    /// Rows of the top-K table, and equity curves drawn (at most 8 curves).
    #[arg(long, default_value_t = 10, value_name = "K")]
    pub top: usize,
    /// Write only the heatmap, as `<TABLE>.heatmap.svg`.
    #[arg(long)]
    pub svg: bool,
}

impl ReportArgs {
    /// The defaults `sweeprun run --report` uses.
    pub fn for_table(table: &Path) -> ReportArgs {
        ReportArgs {
            table: table.to_path_buf(),
            x: None,
            y: None,
            metric: "sharpe".into(),
            where_: None,
            top: 10,
            svg: false,
        }
    }
}

/// `<table>.report.html`.
pub fn html_path(table: &Path) -> PathBuf {
    suffixed(table, ".report.html")
}

/// `<table>.heatmap.svg`.
pub fn svg_path(table: &Path) -> PathBuf {
    suffixed(table, ".heatmap.svg")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A finished sweep as the report sees it.
struct Sweep {
    sidecar: Value,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    /// The grid's parameter names, in grid order.
    params: Vec<String>,
    /// The re-parsed spec and its data (a built-in strategy; `None` for a command sweep).
    rerun: Option<(Spec, PriceSet)>,
}

/// Writes the report (or with `--svg` the heatmap) of `args.table`; returns its path.
pub fn report(args: &ReportArgs) -> Result<PathBuf> {
    let sweep = load(&args.table)?;
    let (x, y) = axes(&sweep, args)?;
    let metric = args.metric.as_str();
    let metric_column = sweep
        .columns
        .iter()
        .position(|c| c == metric)
        .filter(|&i| i > 0 && !sweep.params.iter().any(|p| p == metric))
        .ok_or_else(|| {
            Failure::usage(format!(
                "--metric: `{metric}` is not a result column of {} (columns: {})",
                args.table.display(),
                sweep
                    .columns
                    .iter()
                    .filter(|c| *c != "combo_id" && !sweep.params.contains(c))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let rows = filtered_rows(&sweep, args.where_.as_deref())?;
    let heatmap = heatmap_data(&sweep, &rows, x, y, metric_column, metric)?;
    let title = match &args.where_ {
        Some(w) => format!("{metric} by {} and {} where {w}", heatmap.x_name, heatmap.y_name),
        None => format!("{metric} by {} and {}", heatmap.x_name, heatmap.y_name),
    };
    let others = reduced_names(&sweep.params, x, y);
    let reduced = if others.is_empty() { String::new() } else { format!(" (best over {})", others.join(", ")) };
    let title = format!("{title}{reduced}");
    let (svg, area) = charts::heatmap(&charts::Heatmap {
        title: &title,
        x_name: &heatmap.x_name,
        y_name: &heatmap.y_name,
        x_labels: &heatmap.x_labels,
        y_labels: &heatmap.y_labels,
        values: &heatmap.values,
        lower_is_better: lower_is_better(metric),
    })
    .map_err(Failure::runtime)?;
    if args.svg {
        let path = svg_path(&args.table);
        ledger::write_atomically(&path, svg.as_bytes())?;
        return Ok(path);
    }
    let top = top_rows(&rows, metric_column, metric, args.top);
    let equity = match &sweep.rerun {
        Some((spec, data)) => Some(equity_curves(spec, data, &sweep, &top)?),
        None => None,
    };
    let cscv = match &sweep.rerun {
        Some((spec, data)) => cscv_detail(spec, data, &sweep.sidecar)?,
        None => None,
    };
    let cscv_note = cscv.as_ref().and_then(|cscv| {
        let recorded = sweep.sidecar["overfitting"]["pbo"].as_f64()?;
        // The block sums were recomputed here, maybe on another kernel path than the
        // sweep's (sums can differ in the last bit): the sidecar's numbers stand.
        (cscv.pbo != recorded).then(|| {
            format!(
                "The splits below were recomputed on this machine ({} kernel) and give PBO {:.4}; the sweep recorded {recorded:.4} ({}): the table above is the sweep's.",
                sweeprun_kernel::arch::selected_kernel().map_or("default", |k| k.name()),
                cscv.pbo,
                sweep.sidecar["kernel"].as_str().unwrap_or("?")
            )
        })
    });
    let html = page::render(&page::Page {
        table: &args.table,
        sidecar: &sweep.sidecar,
        heatmap_svg: &svg,
        area,
        cells: heatmap.values.iter().flatten().filter(|v| v.is_some_and(f64::is_finite)).count(),
        x_name: &heatmap.x_name,
        y_name: &heatmap.y_name,
        metric,
        columns: &sweep.columns,
        top: &top,
        equity: equity.as_ref(),
        cscv: cscv.as_ref(),
        cscv_note: cscv_note.as_deref(),
        filtered: args.where_.is_some(),
    })
    .map_err(Failure::runtime)?;
    let path = html_path(&args.table);
    ledger::write_atomically(&path, html.as_bytes())?;
    Ok(path)
}

/// Reads the table and its sidecar, and (for a built-in strategy) the spec and data.
fn load(table: &Path) -> Result<Sweep> {
    let shown = table.display();
    let sidecar_path = ledger::sidecar_path(table);
    let not_a_sweep = |why: String| Failure::usage(format!("{shown} is not a sweep table: {why}"));
    let sidecar_text = std::fs::read_to_string(&sidecar_path)
        .map_err(|e| not_a_sweep(format!("cannot read its sidecar {}: {e}", sidecar_path.display())))?;
    let sidecar: Value = serde_json::from_str(&sidecar_text)
        .map_err(|e| not_a_sweep(format!("{} is not JSON: {e}", sidecar_path.display())))?;
    let recorded = sidecar["output"]["blake3"]
        .as_str()
        .ok_or_else(|| not_a_sweep(format!("{} has no output.blake3", sidecar_path.display())))?;
    let bytes = std::fs::read(table).map_err(|e| Failure::usage(format!("cannot read {shown}: {e}")))?;
    if blake3::hash(&bytes).to_hex().as_str() != recorded.to_ascii_lowercase() {
        return Err(Failure::usage(format!(
            "{shown} changed after the sweep (its BLAKE3 differs from {}): the report would not describe it",
            sidecar_path.display()
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| not_a_sweep("it is not UTF-8 text".into()))?;
    let format = OutputFormat::from_name(sidecar["output"]["format"].as_str().unwrap_or(""))
        .ok_or_else(|| not_a_sweep("its sidecar names no output format".into()))?;
    let recorded_columns: Vec<String> = sidecar["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let (columns, rows) = parse_table(&text, format, &recorded_columns).map_err(not_a_sweep)?;
    let spec_text = sidecar["spec"].as_str().ok_or_else(|| not_a_sweep("its sidecar has no spec".into()))?;
    let base = table.parent().unwrap_or(Path::new("."));
    let mut spec = Spec::parse(&format!("{} (spec)", sidecar_path.display()), spec_text, base, &[])?;
    let data = match (&spec.data_path, spec.strategy.command()) {
        (Some(path), None) => {
            let recorded = sidecar["data"]["sha256"].as_str().unwrap_or_default();
            if crate::run::checksum(path)? != recorded {
                return Err(Failure::usage(format!(
                    "{} changed since the sweep (its SHA-256 differs from {}): the equity curves would not be this sweep's",
                    path.display(),
                    sidecar_path.display()
                )));
            }
            let data = sweeprun_kernel::prices::load(path).map_err(|e| Failure::usage(e.to_string()))?;
            spec.grid.bind_symbols(&data.symbols()).map_err(Failure::usage)?;
            Some(data)
        }
        _ => None,
    };
    let params = spec.grid.names().iter().map(|n| n.to_string()).collect();
    Ok(Sweep { sidecar, columns, rows, params, rerun: data.map(|d| (spec, d)) })
}

/// The table's columns and its rows as text cells (undefined: empty). A CSV table's
/// records may hold quoted line breaks (a command's text output); a JSON lines table's
/// cells come in the order of the sidecar's `columns`. A row without every column is an
/// error naming its line.
fn parse_table(
    text: &str,
    format: OutputFormat,
    recorded_columns: &[String],
) -> std::result::Result<(Vec<String>, Vec<Vec<String>>), String> {
    let (columns, rows) = match format {
        OutputFormat::Csv => {
            let mut records = csv_records(text).into_iter();
            let header = csv_fields(records.next().ok_or("it is empty")?);
            (header, records.map(csv_fields).collect::<Vec<_>>())
        }
        OutputFormat::JsonLines => {
            let mut rows = Vec::new();
            for (n, line) in text.lines().enumerate() {
                let object: serde_json::Map<String, Value> =
                    serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
                let row = recorded_columns
                    .iter()
                    .map(|c| match object.get(c) {
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(Value::Null) => Some(String::new()),
                        Some(v) => Some(v.to_string()),
                        None => None,
                    })
                    .collect::<Option<Vec<String>>>()
                    .ok_or_else(|| format!("line {} lacks some of the sidecar's columns", n + 1))?;
                rows.push(row);
            }
            (recorded_columns.to_vec(), rows)
        }
    };
    if columns.first().map(String::as_str) != Some("combo_id") {
        return Err("its first column is not combo_id".into());
    }
    if let Some(n) = rows.iter().position(|r| r.len() != columns.len()) {
        return Err(format!("row {} has {} cells, the header {}", n + 1, rows[n].len(), columns.len()));
    }
    Ok((columns, rows))
}

/// A CSV text's records: lines, except that a line break inside double quotes belongs to
/// its field.
fn csv_records(text: &str) -> Vec<&str> {
    let mut records = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, byte) in text.bytes().enumerate() {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                records.push(text[start..i].trim_end_matches('\r'));
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        records.push(&text[start..]);
    }
    records
}

/// The heatmap's parameters: `--x`/`--y` or the grid's first two.
fn axes(sweep: &Sweep, args: &ReportArgs) -> Result<(usize, Option<usize>)> {
    let find = |flag: &str, name: &str| {
        sweep.params.iter().position(|p| p == name).ok_or_else(|| {
            Failure::usage(format!(
                "{flag}: `{name}` is not a grid parameter (grid parameters: {})",
                sweep.params.join(", ")
            ))
        })
    };
    let x = match &args.x {
        Some(name) => find("--x", name)?,
        None => 0,
    };
    let y = match &args.y {
        Some(name) => Some(find("--y", name)?),
        None => (0..sweep.params.len()).find(|&i| i != x),
    };
    if sweep.params.is_empty() {
        return Err(Failure::usage(format!("{}: the grid has no parameters to draw", args.table.display())));
    }
    if y == Some(x) {
        return Err(Failure::usage(format!("--x and --y: both are `{}`; pick two grid parameters", sweep.params[x])));
    }
    Ok((x, y))
}

fn reduced_names(params: &[String], x: usize, y: Option<usize>) -> Vec<String> {
    params.iter().enumerate().filter(|(i, _)| *i != x && Some(*i) != y).map(|(_, p)| p.clone()).collect()
}

/// The rows `--where` keeps.
fn filtered_rows<'a>(sweep: &'a Sweep, filter: Option<&str>) -> Result<Vec<&'a Vec<String>>> {
    let Some(text) = filter else { return Ok(sweep.rows.iter().collect()) };
    let names: Vec<&str> = sweep.params.iter().map(String::as_str).collect();
    let is_text: Vec<bool> = sweep.params.iter().map(|p| p == crate::grid::SYMBOL).collect();
    let expr = Expr::parse_with_texts(text, &names, &is_text).map_err(|e| Failure::usage(format!("--where: {e}")))?;
    let mut texts: Vec<&str> = Vec::new();
    let mut values = vec![0.0; names.len()];
    let kept: Vec<&Vec<String>> = sweep
        .rows
        .iter()
        .filter(|row| {
            for (i, name) in sweep.params.iter().enumerate() {
                let cell = row[i + 1].as_str();
                values[i] = if is_text[i] {
                    let at = texts.iter().position(|t| *t == cell).unwrap_or_else(|| {
                        texts.push(cell);
                        texts.len() - 1
                    });
                    at as f64
                } else {
                    debug_assert_eq!(sweep.columns[i + 1], *name);
                    cell.parse().unwrap_or(f64::NAN)
                };
            }
            expr.eval_with_texts(&values, &texts)
        })
        .collect();
    if kept.is_empty() {
        return Err(Failure::usage(format!("--where: `{text}` holds for no row of the table")));
    }
    Ok(kept)
}

struct HeatmapData {
    x_name: String,
    y_name: String,
    x_labels: Vec<String>,
    y_labels: Vec<String>,
    values: Vec<Vec<Option<f64>>>,
}

/// Axis values in grid order (as the table writes them) and the best metric per cell.
fn heatmap_data(
    sweep: &Sweep,
    rows: &[&Vec<String>],
    x: usize,
    y: Option<usize>,
    metric_column: usize,
    metric: &str,
) -> Result<HeatmapData> {
    let distinct = |axis: usize| {
        let mut seen: Vec<String> = Vec::new();
        for row in &sweep.rows {
            if !seen.contains(&row[axis + 1]) {
                seen.push(row[axis + 1].clone());
            }
        }
        // Numbers in numeric order (the grid may list them in any order).
        if seen.iter().all(|v| v.parse::<f64>().is_ok()) {
            seen.sort_by(|a, b| a.parse::<f64>().unwrap().total_cmp(&b.parse::<f64>().unwrap()));
        }
        seen
    };
    let x_labels = distinct(x);
    let y_labels = y.map_or_else(|| vec![String::new()], distinct);
    let lower = lower_is_better(metric);
    let mut values = vec![vec![None::<f64>; x_labels.len()]; y_labels.len()];
    for row in rows {
        let xi = x_labels.iter().position(|v| *v == row[x + 1]).expect("a value of the axis");
        let yi = y.map_or(0, |y| y_labels.iter().position(|v| *v == row[y + 1]).expect("a value of the axis"));
        let value = row[metric_column].parse::<f64>().unwrap_or(f64::NAN);
        let cell = &mut values[yi][xi];
        *cell = Some(match *cell {
            None => value,
            Some(old) if !old.is_finite() => value,
            Some(old) if !value.is_finite() => old,
            Some(old) if lower => old.min(value),
            Some(old) => old.max(value),
        });
    }
    Ok(HeatmapData {
        x_name: sweep.params[x].clone(),
        y_name: y.map_or_else(|| metric.to_string(), |y| sweep.params[y].clone()),
        x_labels,
        y_labels,
        values,
    })
}

/// The best `k` rows by the metric (undefined last), ties to the lowest id.
fn top_rows(rows: &[&Vec<String>], metric_column: usize, metric: &str, k: usize) -> Vec<Vec<String>> {
    let lower = lower_is_better(metric);
    let mut ranked: Vec<(f64, &Vec<String>)> =
        rows.iter().map(|r| (r[metric_column].parse::<f64>().unwrap_or(f64::NAN), *r)).collect();
    ranked.sort_by(|a, b| {
        let key = |v: f64| {
            if v.is_finite() {
                if lower {
                    v
                } else {
                    -v
                }
            } else {
                f64::INFINITY
            }
        };
        key(a.0).total_cmp(&key(b.0))
    });
    ranked.into_iter().take(k).map(|(_, r)| r.clone()).collect()
}

/// Equity curves of the first 8 of `top` (re-run through the tearsheet path), scaled to
/// start at 1, with the dates of the longest.
fn equity_curves(
    spec: &Spec,
    data: &PriceSet,
    sweep: &Sweep,
    top: &[Vec<String>],
) -> Result<(Vec<charts::Curve>, Vec<String>)> {
    let mut curves = Vec::new();
    let mut dates: Vec<String> = Vec::new();
    for row in top.iter().take(8) {
        let id: u64 = row[0].parse().map_err(|_| Failure::usage(format!("combo id `{}` is not a number", row[0])))?;
        let trace = spec
            .strategy
            .trace(data, spec.symbol.as_deref(), &spec.grid, id)
            .map_err(|e| Failure::runtime(format!("combo {id}: {e}")))?;
        let start = trace.equity.first().copied().unwrap_or(1.0);
        let params: Vec<String> = sweep.params.iter().zip(&row[1..]).map(|(p, v)| format!("{p}={v}")).collect();
        if trace.dates.len() > dates.len() {
            dates = trace.dates.iter().map(|d| d.to_string()).collect();
        }
        curves.push(charts::Curve {
            label: format!("#{id} {}", params.join(" ")),
            equity: trace.equity.iter().map(|e| e / start).collect(),
        });
    }
    Ok((curves, dates))
}

/// Each split's λ and its best combo's in- and out-of-sample Sharpe, recomputed from block
/// sums (the sweep does not store them), over the sweep's trials across symbols. `None`
/// when the sweep has no statistics or they are per symbol only.
fn cscv_detail(spec: &Spec, data: &PriceSet, sidecar: &Value) -> Result<Option<Cscv>> {
    let statistics = &sidecar["overfitting"];
    let (Some(s), Some(_)) = (statistics["cscv_blocks"].as_u64(), statistics["pbo"].as_f64()) else {
        return Ok(None);
    };
    let s = s as usize;
    let groups = spec.strategy.return_groups(data, spec.symbol.as_deref(), &spec.grid).map_err(Failure::runtime)?;
    let Some(first) = groups.first() else { return Ok(None) };
    let combos = spec.grid.len();
    let mut sums = StoredSums::empty(combos, s);
    crate::run::compute_sums(spec, data, &mut sums)?;
    let blocks = Blocks::new(first.returns, s).map_err(|e| Failure::runtime(e.to_string()))?;
    let (block_sums, squares) = sums.slices(0..combos);
    let sums = BlockSums { blocks: &blocks, sums: block_sums, squares };
    let trials = Trials::new(&sums);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(overfitting::cscv(&sums, &trials, threads))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_keep_quoted_line_breaks_and_short_rows_are_refused() {
        let text = "combo_id,x,note\n0,1,\"two\nlines, and a comma\"\r\n1,2,plain\n";
        assert_eq!(csv_records(text), ["combo_id,x,note", "0,1,\"two\nlines, and a comma\"", "1,2,plain"]);
        let (columns, rows) = parse_table(text, OutputFormat::Csv, &[]).unwrap();
        assert_eq!(columns, ["combo_id", "x", "note"]);
        assert_eq!(rows[0], ["0", "1", "two\nlines, and a comma"]);
        let short = "combo_id,x\n0,1\n1\n";
        assert_eq!(parse_table(short, OutputFormat::Csv, &[]).unwrap_err(), "row 2 has 1 cells, the header 2");
        let columns: Vec<String> = ["combo_id", "b", "a"].map(String::from).to_vec();
        let jsonl = "{\"a\":null,\"combo_id\":0,\"b\":\"x\"}\n";
        assert_eq!(parse_table(jsonl, OutputFormat::JsonLines, &columns).unwrap().1, [["0", "x", ""]]);
        assert!(parse_table("{\"combo_id\":0}\n", OutputFormat::JsonLines, &columns).unwrap_err().contains("line 1"));
    }
}
