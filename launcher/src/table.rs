//! Results rows: the table's columns, and formatting a combo's row as CSV or as a JSON
//! line (what ranks do). Where rows go and how they are kept is the ledger's business
//! ([`crate::ledger`]).

use crate::grid::ParamValue;
use std::path::Path;
use sweeprun_kernel::metrics::Metrics;

/// Table format, chosen by the output file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl OutputFormat {
    /// `.csv` or `.jsonl`.
    pub fn from_path(path: &Path) -> std::result::Result<OutputFormat, String> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => Ok(OutputFormat::Csv),
            Some("jsonl") => Ok(OutputFormat::JsonLines),
            _ => Err(format!("`{}` must end in .csv or .jsonl", path.display())),
        }
    }

    /// Name used in the worker protocol and the sidecar.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Csv => "csv",
            OutputFormat::JsonLines => "jsonl",
        }
    }

    /// Inverse of [`OutputFormat::name`].
    pub fn from_name(name: &str) -> Option<OutputFormat> {
        match name {
            "csv" => Some(OutputFormat::Csv),
            "jsonl" => Some(OutputFormat::JsonLines),
            _ => None,
        }
    }
}

/// Column names of a results table: `combo_id`, the grid parameters, the common metrics,
/// then the strategy's extra columns.
pub fn columns(params: &[&str], extras: &[&str]) -> Vec<String> {
    std::iter::once("combo_id")
        .chain(params.iter().copied())
        .chain(Metrics::NAMES)
        .chain(extras.iter().copied())
        .map(str::to_string)
        .collect()
}

/// Cells of [`Metrics`] in a row ([`Metrics::NAMES`]).
const METRIC_CELLS: usize = Metrics::NAMES.len();

/// A strategy-specific value in a row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    /// A real number (undefined when not finite: an empty CSV cell, `null` in JSON).
    Float(f64),
    /// A count.
    Count(u64),
}

/// Formats result rows into a byte buffer.
///
/// Floats are written by [`crate::float_text::push_float`] (Python's `repr` notation,
/// shortest round-trip digits) in both formats. A float that is not finite (NaN, or an
/// infinity such as the sortino of a strategy without a losing day) is undefined: an empty
/// cell in CSV, `null` in JSON lines, ranked last by the top K; pandas and polars read
/// both as missing.
#[derive(Debug)]
pub struct RowWriter {
    format: OutputFormat,
    /// Parameters per row (the grid's).
    param_count: usize,
    /// What precedes each cell after the combo id: `,` (CSV) or `,"name":` (JSON lines).
    cell_prefixes: Vec<String>,
    /// The names of [`ParamValue::Symbol`] values, as a cell of this format (CSV: quoted
    /// only when needed; JSON: a string).
    symbol_cells: Vec<String>,
    buffer: String,
    /// Index into [`Metrics::NAMES`] and the best rows of the buffer by it (byte offsets).
    preselect: Option<(usize, crate::report::TopK<usize>)>,
    /// Rows kept as values, to be formatted by another thread ([`RowWriter::defer`]).
    deferred: Option<RawRows>,
}

/// A chunk's rows as values: what [`RowWriter::row`] was given, formatted later (and
/// elsewhere) by [`RawRows::format`] into exactly the text the writer would have made.
#[derive(Debug)]
pub struct RawRows {
    /// A writer like the one that kept these rows (same columns, same preselection), empty.
    writer: Box<RowWriter>,
    ids: Vec<u64>,
    /// `param_count` per row.
    params: Vec<ParamValue>,
    /// The metrics' cells then the extras, per row.
    cells: Vec<Cell>,
}

impl RawRows {
    /// Rows kept.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no row was kept.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The rows as text, with the offsets of the preselected best rows (as
    /// [`RowWriter::take`] returns them).
    pub fn format(self) -> (String, Option<Vec<usize>>) {
        let RawRows { mut writer, ids, params, cells } = self;
        let (params_per_row, cells_per_row) = (writer.param_count, writer.cell_prefixes.len() - writer.param_count);
        // Rows are about 100-200 bytes: one allocation for the chunk.
        writer.buffer.reserve(ids.len() * 160);
        for (row, &id) in ids.iter().enumerate() {
            let params = &params[row * params_per_row..(row + 1) * params_per_row];
            let (metrics, extras) = cells[row * cells_per_row..(row + 1) * cells_per_row].split_at(METRIC_CELLS);
            writer.push_row(id, params, metrics, extras);
        }
        writer.take()
    }
}

impl RowWriter {
    /// A writer for rows with these grid parameter and extra column names.
    pub fn new(format: OutputFormat, params: Vec<&'static str>, extras: Vec<&'static str>) -> RowWriter {
        let names = params.iter().chain(Metrics::NAMES.iter()).chain(&extras);
        let cell_prefixes = names
            .map(|name| match format {
                OutputFormat::Csv => ",".to_string(),
                OutputFormat::JsonLines => format!(",\"{name}\":"),
            })
            .collect();
        RowWriter {
            format,
            param_count: params.len(),
            cell_prefixes,
            symbol_cells: Vec::new(),
            buffer: String::new(),
            preselect: None,
            deferred: None,
        }
    }

    /// Keeps rows as values from now on: [`RowWriter::take_raw`] hands them over to be
    /// formatted by [`RawRows::format`] on another thread (a rank thread of the launcher
    /// leaves the formatting, about 7 % of its CPU on a large grid, to the launcher's
    /// thread, which waits for rows anyway).
    pub fn defer(&mut self) {
        self.deferred = Some(self.raw_rows());
    }

    /// Whether rows are kept as values ([`RowWriter::defer`]).
    pub fn is_deferred(&self) -> bool {
        self.deferred.is_some()
    }

    /// An empty [`RawRows`] formatted by a writer like this one.
    fn raw_rows(&self) -> RawRows {
        let writer = RowWriter {
            format: self.format,
            param_count: self.param_count,
            cell_prefixes: self.cell_prefixes.clone(),
            symbol_cells: self.symbol_cells.clone(),
            buffer: String::new(),
            preselect: self.preselect.as_ref().map(|(column, best)| (*column, best.empty_like())),
            deferred: None,
        };
        RawRows { writer: Box::new(writer), ids: Vec::new(), params: Vec::new(), cells: Vec::new() }
    }

    /// Takes the rows kept since the last call (see [`RowWriter::defer`]).
    pub fn take_raw(&mut self) -> RawRows {
        let fresh = self.raw_rows();
        std::mem::replace(self.deferred.as_mut().expect("take_raw after defer"), fresh)
    }

    /// A writer for the rows of `grid` (its parameters, symbols written by name).
    pub fn for_grid(format: OutputFormat, grid: &crate::grid::Grid, extras: Vec<&'static str>) -> RowWriter {
        let mut writer = RowWriter::new(format, grid.names(), extras);
        writer.symbol_cells = grid
            .symbols()
            .iter()
            .map(|name| match format {
                OutputFormat::Csv => csv_field(name),
                OutputFormat::JsonLines => serde_json::Value::from(name.as_str()).to_string(),
            })
            .collect();
        writer
    }

    /// Also tracks the `k` best rows of each batch by `metric` (one of [`Metrics::NAMES`]),
    /// ranked by the value a reader of the table sees, so the launcher parses only those.
    pub fn preselect(&mut self, metric: &str, k: usize) -> std::result::Result<(), String> {
        let column =
            Metrics::NAMES.iter().position(|&m| m == metric).ok_or_else(|| format!("unknown metric `{metric}`"))?;
        self.preselect = Some((column, crate::report::TopK::new(k, crate::report::lower_is_better(metric))));
        if self.deferred.is_some() {
            self.defer();
        }
        Ok(())
    }

    /// Appends one row (`extras` in the order of the extra column names).
    pub fn row(&mut self, id: u64, params: &[ParamValue], metrics: &Metrics, extras: &[Cell]) {
        let cells: [Cell; METRIC_CELLS] = [
            Cell::Float(metrics.total_return),
            Cell::Float(metrics.cagr),
            Cell::Float(metrics.sharpe),
            Cell::Float(metrics.sortino),
            Cell::Float(metrics.volatility),
            Cell::Float(metrics.max_drawdown),
            Cell::Count(metrics.max_drawdown_duration.into()),
            Cell::Count(metrics.trades.into()),
        ];
        if let Some(raw) = self.deferred.as_mut() {
            raw.ids.push(id);
            raw.params.extend_from_slice(params);
            raw.cells.extend_from_slice(&cells);
            raw.cells.extend_from_slice(extras);
            return;
        }
        self.push_row(id, params, &cells, extras);
    }

    /// Formats one row: the combo id, the parameters, the metrics' `cells`, the extras.
    fn push_row(&mut self, id: u64, params: &[ParamValue], cells: &[Cell], extras: &[Cell]) {
        if let Some((column, best)) = self.preselect.as_mut() {
            // The value as a reader of the table sees it: undefined (NaN) unless finite.
            let value = match cells[*column] {
                Cell::Float(f) if f.is_finite() => f,
                Cell::Float(_) => f64::NAN,
                Cell::Count(c) => c as f64,
            };
            let offset = self.buffer.len();
            best.offer(value, id, || offset);
        }
        let undefined = match self.format {
            OutputFormat::Csv => "",
            OutputFormat::JsonLines => "null",
        };
        let b = &mut self.buffer;
        if self.format == OutputFormat::JsonLines {
            b.push_str("{\"combo_id\":");
        }
        // itoa and float_text instead of `write!`: formatting was a quarter to a third of a
        // rank's CPU on the benchmark grid with `Display` (BENCHMARKS.md).
        b.push_str(itoa::Buffer::new().format(id));
        debug_assert_eq!(params.len() + cells.len() + extras.len(), self.cell_prefixes.len());
        let mut prefixes = self.cell_prefixes.iter();
        for (param, prefix) in params.iter().zip(&mut prefixes) {
            b.push_str(prefix);
            match *param {
                ParamValue::Int(i) => b.push_str(itoa::Buffer::new().format(i)),
                ParamValue::Float(f) => push_float_or(b, f, undefined),
                ParamValue::Symbol(symbol) => b.push_str(&self.symbol_cells[symbol as usize]),
            }
        }
        for (cell, prefix) in cells.iter().chain(extras).zip(prefixes) {
            b.push_str(prefix);
            match *cell {
                Cell::Float(f) => push_float_or(b, f, undefined),
                Cell::Count(c) => b.push_str(itoa::Buffer::new().format(c)),
            }
        }
        if self.format == OutputFormat::JsonLines {
            b.push('}');
        }
        b.push('\n');
    }

    /// Appends one preformatted line (a `[command]` sweep's record; no newline in `line`).
    /// Not for a deferred writer (a command sweep's rank never defers).
    pub fn line(&mut self, line: &str) {
        assert!(self.deferred.is_none(), "a preformatted line in a deferred RowWriter");
        self.buffer.push_str(line);
        self.buffer.push('\n');
    }

    /// Takes the formatted rows out of the writer, with the byte offsets (ascending) of the
    /// preselected best rows when [`RowWriter::preselect`] was asked for.
    pub fn take(&mut self) -> (String, Option<Vec<usize>>) {
        let best = self.preselect.as_mut().map(|(_, best)| {
            let mut offsets: Vec<usize> = best.take().into_iter().map(|(_, _, offset)| offset).collect();
            offsets.sort_unstable();
            offsets
        });
        (std::mem::take(&mut self.buffer), best)
    }
}

/// `text` as one CSV field: as it is, or in double quotes (inner quotes doubled) when it
/// holds a comma, a quote, a line break or surrounding spaces.
pub fn csv_field(text: &str) -> String {
    let needs_quotes = text.contains([',', '"', '\n', '\r']) || text.trim() != text;
    if needs_quotes {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The fields of one CSV line (as [`csv_field`] writes them: quoted fields unquoted).
pub fn csv_fields(line: &str) -> Vec<String> {
    if !line.contains('"') {
        return line.split(',').map(str::to_string).collect();
    }
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("one field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            _ => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

/// Appends finite `x`, or `undefined` in its place.
#[inline]
fn push_float_or(out: &mut String, x: f64, undefined: &str) {
    if x.is_finite() {
        crate::float_text::push_float(out, x);
    } else {
        out.push_str(undefined);
    }
}

/// The combo id at the start of a table line, if the line is a complete row.
pub(crate) fn row_id(format: OutputFormat, line: &str) -> Option<u64> {
    let rest = match format {
        OutputFormat::Csv => line,
        OutputFormat::JsonLines if line.ends_with('}') => line.strip_prefix("{\"combo_id\":")?,
        OutputFormat::JsonLines => return None,
    };
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(x: f64) -> Metrics {
        Metrics { total_return: x, sharpe: f64::NAN, trades: 3, ..Metrics::default() }
    }

    #[test]
    fn deferred_rows_format_to_the_same_text_and_best_rows() {
        for format in [OutputFormat::Csv, OutputFormat::JsonLines] {
            let writer = || {
                let mut w = RowWriter::new(format, vec!["fast", "sym"], vec!["final_equity"]);
                w.symbol_cells = vec!["AAPL".into(), "\"B,C\"".into()];
                w.preselect("total_return", 2).unwrap();
                w
            };
            let (mut direct, mut deferred) = (writer(), writer());
            deferred.defer();
            for chunk in [0..5u64, 5..6, 6..6] {
                for id in chunk.clone() {
                    let x = [0.5, f64::NAN, 3.25e-5, -1.0, 1e16, f64::INFINITY][id as usize];
                    let params = [ParamValue::Int(id as i64), ParamValue::Symbol((id % 2) as u32)];
                    let extras = [Cell::Float(x * 2.0)];
                    direct.row(id, &params, &metrics(x), &extras);
                    deferred.row(id, &params, &metrics(x), &extras);
                }
                let raw = deferred.take_raw();
                assert_eq!(raw.len() as u64, chunk.end - chunk.start);
                assert_eq!(raw.format(), direct.take(), "{format:?} {chunk:?}");
            }
        }
    }

    #[test]
    fn formats_csv_and_jsonl_rows() {
        let mut csv = RowWriter::new(OutputFormat::Csv, vec!["fast", "slow"], vec!["final_equity"]);
        csv.row(7, &[ParamValue::Int(5), ParamValue::Int(20)], &metrics(0.5), &[Cell::Float(2.5)]);
        assert_eq!(csv.take(), ("7,5,20,0.5,0.0,,0.0,0.0,0.0,0,3,2.5\n".to_string(), None));
        let mut json = RowWriter::new(OutputFormat::JsonLines, vec!["fast", "slow"], vec!["final_equity"]);
        json.row(7, &[ParamValue::Int(5), ParamValue::Int(20)], &metrics(0.5), &[Cell::Float(2.5)]);
        let (line, _) = json.take();
        let value: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(value["combo_id"], 7);
        assert_eq!(value["slow"], 20);
        assert_eq!(value["total_return"], 0.5);
        assert!(value["sharpe"].is_null());
        assert_eq!(value["trades"], 3);
        assert_eq!(value["final_equity"], 2.5);
        assert_eq!(row_id(OutputFormat::JsonLines, line.trim()), Some(7));
    }

    #[test]
    fn both_formats_write_the_same_float_text_and_undefined_values_rank_last() {
        // Combo 0: sortino +inf (no losing day), sharpe NaN, cagr -inf; combo 1: all defined.
        let undefined = Metrics {
            total_return: -1.25e-7,
            cagr: f64::NEG_INFINITY,
            sharpe: f64::NAN,
            sortino: f64::INFINITY,
            volatility: 1e16,
            max_drawdown: 1.0,
            max_drawdown_duration: 12,
            trades: 3,
        };
        let defined = Metrics { sortino: 0.1, sharpe: 0.2, cagr: 0.3, ..undefined };
        let params = [ParamValue::Int(-5), ParamValue::Float(3e-5)];
        let mut tables = Vec::new();
        for format in [OutputFormat::Csv, OutputFormat::JsonLines] {
            let mut writer = RowWriter::new(format, vec!["fast", "fee"], vec!["final_equity"]);
            writer.preselect("sortino", 1).unwrap();
            writer.row(0, &params, &undefined, &[Cell::Float(f64::NAN)]);
            writer.row(1, &params, &defined, &[Cell::Float(100.0)]);
            let (rows, best) = writer.take();
            let second_row = rows.find('\n').unwrap() + 1;
            assert_eq!(best, Some(vec![second_row]), "{format:?}: +inf is undefined, not the best sortino");
            tables.push(rows);
        }
        assert_eq!(
            tables[0],
            "0,-5,3e-05,-1.25e-07,,,,1e+16,1.0,12,3,\n1,-5,3e-05,-1.25e-07,0.3,0.2,0.1,1e+16,1.0,12,3,100.0\n"
        );
        let json_line = "{\"combo_id\":0,\"fast\":-5,\"fee\":3e-05,\"total_return\":-1.25e-07,\"cagr\":null,\
                         \"sharpe\":null,\"sortino\":null,\"volatility\":1e+16,\"max_drawdown\":1.0,\
                         \"max_drawdown_duration\":12,\"trades\":3,\"final_equity\":null}";
        assert_eq!(tables[1].lines().next(), Some(json_line));
        // The launcher's ranker reads both tables the same way: undefined last.
        let cols = columns(&["fast", "fee"], &["final_equity"]);
        let csv_table = format!("{}\n{}", cols.join(","), tables[0]);
        for (table, format) in [(&csv_table, OutputFormat::Csv), (&tables[1], OutputFormat::JsonLines)] {
            let (best, total) = crate::report::ranked_rows(table, format, &cols, "sortino", 2, None);
            assert_eq!((best[0][0].as_str(), best[1][0].as_str(), total), ("1", "0", 2), "{format:?}");
            assert_eq!(best[1][6], "NaN", "{format:?}: the summary shows an undefined sortino as NaN");
            assert_eq!(best[0][4], "0.3", "{format:?}");
        }
    }
}
