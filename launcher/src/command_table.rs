//! The results table of a `[command]` sweep, assembled from its records once every combo
//! has one: the columns are only known then (each command prints its own JSON keys).
//!
//! Columns: `combo_id`, the grid parameters, `status`, `exit_code`, `stderr`, then the
//! JSON keys in the order the rows first show them, by combo id (the first row that has
//! keys gives their order; a later row's new keys follow, in its order). The table
//! depends only on the records, never on the rank count, chunking or arrival order.

use crate::command::{Record, Status};
use crate::error::{Failure, Result};
use crate::grid::{Grid, ParamValue};
use crate::ledger;
use crate::table::{csv_field, OutputFormat};
use serde_json::Value;
use std::path::Path;

/// The columns every command table starts with, after `combo_id` and the parameters.
pub const STATUS_COLUMNS: [&str; 3] = ["status", "exit_code", "stderr"];

/// The finished table of a command sweep.
#[derive(Debug, PartialEq)]
pub struct CommandTable {
    /// Column names.
    pub columns: Vec<String>,
    /// The table's bytes (CSV with a header, or JSON lines).
    pub text: String,
}

/// The table of `records` (one per combo of `grid`, in id order) in `format`. A JSON key
/// named like one of the table's own columns (`combo_id`, a parameter, `status`,
/// `exit_code`, `stderr`) is left out: the table's column wins.
pub fn assemble(grid: &Grid, records: &[Record], format: OutputFormat) -> CommandTable {
    let params = grid.names();
    let mut columns: Vec<String> =
        std::iter::once("combo_id").chain(params.iter().copied()).chain(STATUS_COLUMNS).map(str::to_string).collect();
    let fixed = columns.len();
    for record in records {
        for (key, _) in &record.row {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let keys = &columns[fixed..];
    let mut text = String::new();
    if format == OutputFormat::Csv {
        let header: Vec<String> = columns.iter().map(|c| csv_field(c)).collect();
        text.push_str(&header.join(","));
        text.push('\n');
    }
    let mut values = vec![ParamValue::Int(0); params.len()];
    let mut cells: Vec<String> = Vec::with_capacity(columns.len());
    for record in records {
        grid.combo(record.combo_id, &mut values);
        cells.clear();
        cells.push(record.combo_id.to_string());
        cells.extend(values.iter().map(|&v| param_text(v)));
        cells.push(text_cell(format, record.status.name()));
        cells.push(match record.exit_code {
            Some(code) => code.to_string(),
            None => undefined(format).to_string(),
        });
        cells.push(if record.stderr.is_empty() {
            undefined(format).to_string()
        } else {
            text_cell(format, &record.stderr)
        });
        for key in keys {
            let value = record.row.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            cells.push(value_cell(format, value));
        }
        match format {
            OutputFormat::Csv => text.push_str(&cells.join(",")),
            OutputFormat::JsonLines => {
                text.push('{');
                for (i, (column, cell)) in columns.iter().zip(&cells).enumerate() {
                    if i > 0 {
                        text.push(',');
                    }
                    text.push_str(&Value::from(column.as_str()).to_string());
                    text.push(':');
                    text.push_str(cell);
                }
                text.push('}');
            }
        }
        text.push('\n');
    }
    CommandTable { columns, text }
}

/// The latest record of each combo in journal `text` (complete lines; a later record of
/// a combo, from `--retry-failed`, replaces the earlier one).
pub fn latest_records(text: &str, combos: u64) -> Vec<Option<Record>> {
    let mut records = vec![None; combos as usize];
    for line in text.split_inclusive('\n').filter_map(|l| l.strip_suffix('\n')) {
        if let Some(record) = Record::from_line(line).filter(|r| r.combo_id < combos) {
            let id = record.combo_id as usize;
            records[id] = Some(record);
        }
    }
    records
}

/// Marks the combos whose record is not `ok` as not done; returns how many were done.
pub fn forget_not_ok(records: &[Option<Record>], done: &mut [bool]) -> u64 {
    let mut forgotten = 0;
    for record in records.iter().flatten().filter(|r| r.status != Status::Ok) {
        let id = record.combo_id as usize;
        if done[id] {
            done[id] = false;
            forgotten += 1;
        }
    }
    forgotten
}

/// The records of the finished table `table` at `out` (kept in `<out>.runs/rows.jsonl`),
/// for `--retry-failed`: `None` when every row is `ok`. The records must give exactly that
/// table back, or they belong to another sweep.
pub fn retry_journal(grid: &Grid, out: &Path, format: OutputFormat, table: &str) -> Result<Option<Vec<Record>>> {
    let path = ledger::records_path(out);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::usage(format!(
            "--retry-failed: cannot read {} ({e}), the records {} was made from; run the sweep again without --resume",
            path.display(),
            out.display()
        ))
    })?;
    let records: Option<Vec<Record>> = latest_records(&text, grid.len()).into_iter().collect();
    let matches = records.as_ref().is_some_and(|records| assemble(grid, records, format).text == table);
    if !matches {
        return Err(Failure::usage(format!(
            "--retry-failed: {} does not hold the records of {}; run the sweep again without --resume",
            path.display(),
            out.display()
        )));
    }
    Ok(records.filter(|records| records.iter().any(|r| r.status != Status::Ok)))
}

/// The columns of a finished command table (its CSV header, or its first JSON line's keys).
pub fn table_columns(table: &str, format: OutputFormat) -> Vec<String> {
    let first = table.lines().next().unwrap_or("");
    match format {
        OutputFormat::Csv => crate::table::csv_fields(first),
        OutputFormat::JsonLines => {
            crate::command::parse_object(first).unwrap_or_default().into_iter().map(|(key, _)| key).collect()
        }
    }
}

/// The columns of a command table that hold numbers only (and at least one): what
/// `--sort-by` can rank by. `combo_id` is left out.
pub fn numeric_columns(table: &str, format: OutputFormat, columns: &[String]) -> Vec<String> {
    // Per column: (some cell is a number, every defined cell is a number).
    let mut seen = vec![(false, true); columns.len()];
    let rows = match format {
        OutputFormat::Csv => table.split_once('\n').map_or("", |(_, rows)| rows),
        OutputFormat::JsonLines => table,
    };
    for line in rows.lines() {
        let cells: Vec<String> = match format {
            OutputFormat::Csv => crate::table::csv_fields(line),
            OutputFormat::JsonLines => {
                let row = crate::command::parse_object(line).unwrap_or_default();
                columns
                    .iter()
                    .map(|c| match row.iter().find(|(k, _)| k == c).map(|(_, v)| v) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::Number(n)) => n.to_string(),
                        // Anything else is text here (a string may look like a number).
                        Some(_) => "text".to_string(),
                    })
                    .collect()
            }
        };
        for (state, cell) in seen.iter_mut().zip(&cells) {
            if !cell.is_empty() {
                let number = cell.parse::<f64>().is_ok();
                *state = (state.0 || number, state.1 && number);
            }
        }
    }
    columns
        .iter()
        .zip(seen)
        .filter(|(name, (some, all))| *some && *all && name.as_str() != "combo_id")
        .map(|(name, _)| name.clone())
        .collect()
}

/// Assembles the table of a finished command sweep from its journal and writes it
/// atomically to `out`, after the records to `<out>.runs/rows.jsonl`.
pub fn finish(grid: &Grid, journal: &Path, out: &Path, format: OutputFormat, combos: u64) -> Result<CommandTable> {
    let text = std::fs::read_to_string(journal)
        .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", journal.display())))?;
    let records = latest_records(&text, combos);
    if let Some(missing) = records.iter().position(Option::is_none) {
        return Err(Failure::runtime(format!("internal error: combo {missing} has no row in {}", journal.display())));
    }
    let records: Vec<Record> = records.into_iter().flatten().collect();
    write_finished(grid, &records, out, format)
}

/// Writes the finished table of `records` (one per combo, in id order) atomically to
/// `out`, after the records to `<out>.runs/rows.jsonl` (what `--retry-failed` starts from).
pub fn write_finished(grid: &Grid, records: &[Record], out: &Path, format: OutputFormat) -> Result<CommandTable> {
    let lines: String = records.iter().map(|r| r.to_line() + "\n").collect();
    let runs = ledger::runs_dir(out);
    std::fs::create_dir_all(&runs).map_err(|e| Failure::runtime(format!("cannot create {}: {e}", runs.display())))?;
    ledger::write_atomically(&ledger::records_path(out), lines.as_bytes())?;
    let table = assemble(grid, records, format);
    ledger::write_atomically(out, table.text.as_bytes())?;
    Ok(table)
}

fn undefined(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Csv => "",
        OutputFormat::JsonLines => "null",
    }
}

/// A parameter value as the table, the argv and the environment write it.
pub fn param_text(value: ParamValue) -> String {
    match value {
        ParamValue::Float(f) => {
            let mut text = String::new();
            crate::float_text::push_float(&mut text, f);
            text
        }
        other => other.to_string(),
    }
}

fn text_cell(format: OutputFormat, text: &str) -> String {
    match format {
        OutputFormat::Csv => csv_field(text),
        OutputFormat::JsonLines => Value::from(text).to_string(),
    }
}

/// A JSON value as a cell: numbers in the table's float notation (integers as written),
/// texts as texts, `null` and missing keys undefined, lists and objects as compact JSON
/// (CSV: that text in one field; JSON lines: the value itself).
fn value_cell(format: OutputFormat, value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => undefined(format).to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) if n.is_f64() => {
            let mut text = String::new();
            match n.as_f64() {
                Some(f) if f.is_finite() => crate::float_text::push_float(&mut text, f),
                _ => text.push_str(undefined(format)),
            }
            text
        }
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => text_cell(format, s),
        Some(nested) => match format {
            OutputFormat::Csv => csv_field(&nested.to_string()),
            OutputFormat::JsonLines => nested.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse_object;

    fn record(id: u64, status: Status, row: &str) -> Record {
        Record {
            combo_id: id,
            status,
            exit_code: (status != Status::Timeout).then_some(if status == Status::Failed { 1 } else { 0 }),
            stderr: if status == Status::Ok { String::new() } else { format!("t.csv.runs/{id}/stderr") },
            attempts: 1,
            elapsed_s: 0.5,
            row: parse_object(row).unwrap(),
        }
    }

    #[test]
    fn columns_follow_the_rows_in_id_order_and_cells_keep_their_types() {
        let grid_table: toml::Table = "a = [1, 2]\nb = [0.5, 1.5]".parse().unwrap();
        let params = [
            crate::grid::ParamDef { name: "a", kind: crate::grid::ParamKind::Int { min: i64::MIN } },
            crate::grid::ParamDef { name: "b", kind: crate::grid::ParamKind::Float { min: f64::NEG_INFINITY } },
        ];
        let grid = Grid::from_table(&grid_table, &params).unwrap();
        let records = [
            record(0, Status::Failed, "{}"),
            record(1, Status::Ok, r#"{"z": 0.1, "a": 99, "name": "x,y", "v": [1, 2]}"#),
            record(2, Status::Ok, r#"{"extra": true, "z": 1e20, "n": null}"#),
            record(3, Status::Timeout, "{}"),
        ];
        let csv = assemble(&grid, &records, OutputFormat::Csv);
        assert_eq!(csv.columns.join(","), "combo_id,a,b,status,exit_code,stderr,z,name,v,extra,n");
        assert_eq!(
            csv.text.lines().skip(1).collect::<Vec<_>>(),
            [
                "0,1,0.5,failed,1,t.csv.runs/0/stderr,,,,,",
                "1,1,1.5,ok,0,,0.1,\"x,y\",\"[1,2]\",,",
                "2,2,0.5,ok,0,,1e+20,,,true,",
                "3,2,1.5,timeout,,t.csv.runs/3/stderr,,,,,",
            ]
        );
        let jsonl = assemble(&grid, &records, OutputFormat::JsonLines);
        let second: serde_json::Value = serde_json::from_str(jsonl.text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(second["a"], 1, "the parameter, not the JSON key of the same name");
        assert_eq!(second["v"], serde_json::json!([1, 2]));
        assert!(second["stderr"].is_null());
        assert_eq!(crate::table::row_id(OutputFormat::JsonLines, jsonl.text.lines().next().unwrap()), Some(0));
    }
}
