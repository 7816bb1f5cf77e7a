//! Results tables: row formatting (CSV or JSON lines), the append-only journal that makes
//! sweeps resumable, and the final atomic write.
//!
//! While a fresh sweep runs, rows go straight into the final table, `<out>.partial.table`,
//! in combo-id order; a chunk that arrives ahead of its turn waits in memory and, if it is
//! still waiting at the next sync, is appended to the journal `<out>.partial`. Every sync
//! (at most 0.5 s or 8 MiB apart) fsyncs both, so each row received before it is on disk
//! exactly where a resume looks: the table's in-order prefix or the journal. Next to them,
//! `<out>.partial.json` fingerprints the sweep. On completion the table is fsynced and
//! renamed over `<out>`; a reader never sees a half-written table. A resumed sweep folds
//! the table's prefix into the journal and assembles the table from the journal at the end.

use crate::error::{Failure, Result};
use crate::grid::ParamValue;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
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
    /// What precedes each cell after the combo id: `,` (CSV) or `,"name":` (JSON lines).
    cell_prefixes: Vec<String>,
    /// The names of [`ParamValue::Symbol`] values, as a cell of this format (CSV: quoted
    /// only when needed; JSON: a string).
    symbol_cells: Vec<String>,
    buffer: String,
    /// Index into [`Metrics::NAMES`] and the best rows of the buffer by it (byte offsets).
    preselect: Option<(usize, crate::report::TopK<usize>)>,
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
        RowWriter { format, cell_prefixes, symbol_cells: Vec::new(), buffer: String::new(), preselect: None }
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
        Ok(())
    }

    /// Appends one row (`extras` in the order of the extra column names).
    pub fn row(&mut self, id: u64, params: &[ParamValue], metrics: &Metrics, extras: &[Cell]) {
        let cells: [Cell; 8] = [
            Cell::Float(metrics.total_return),
            Cell::Float(metrics.cagr),
            Cell::Float(metrics.sharpe),
            Cell::Float(metrics.sortino),
            Cell::Float(metrics.volatility),
            Cell::Float(metrics.max_drawdown),
            Cell::Count(metrics.max_drawdown_duration.into()),
            Cell::Count(metrics.trades.into()),
        ];
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

/// `<out>.partial`: the journal of finished rows.
pub fn journal_path(out: &Path) -> PathBuf {
    suffixed(out, ".partial")
}

/// `<out>.partial.json`: the fingerprint of the sweep that owns the journal.
pub fn journal_meta_path(out: &Path) -> PathBuf {
    suffixed(out, ".partial.json")
}

/// `<out>.meta.json`: the sidecar of a finished table.
pub fn sidecar_path(out: &Path) -> PathBuf {
    suffixed(out, ".meta.json")
}

/// `<out>.tearsheets/`: per-combo tearsheets.
pub fn tearsheet_dir(out: &Path) -> PathBuf {
    suffixed(out, ".tearsheets")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `<out>.partial.table`: the final table being written in combo-id order.
pub fn table_stream_path(out: &Path) -> PathBuf {
    suffixed(out, ".partial.table")
}

/// The append-only journal of a running sweep.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    unsynced: bool,
}

/// How often (at most) rows received are fsynced while a sweep runs.
const SYNC_INTERVAL: Duration = Duration::from_millis(500);
/// ... or after this many bytes, whichever comes first.
const SYNC_BYTES: usize = 8 << 20;

impl Journal {
    /// Creates a new journal (failing if one exists), locks it and writes the header.
    pub fn create(path: &Path, format: OutputFormat, columns: &[String]) -> Result<Journal> {
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Failure::runtime(format!("cannot create {}: {e}", path.display())))?;
        let mut journal = Journal::locked(file, path)?;
        journal.write_header(format, columns)?;
        journal.sync()?;
        Ok(journal)
    }

    fn locked(file: File, path: &Path) -> Result<Journal> {
        match sweeprun_hw::process::try_lock_exclusive(&file) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Failure::usage(format!(
                    "another sweeprun process is writing {}; wait for it or stop it first",
                    path.display()
                )))
            }
            // No locking on this platform: run on, as before locks existed.
            Err(_) => {}
        }
        Ok(Journal { file, path: path.to_path_buf(), unsynced: false })
    }

    fn write_header(&mut self, format: OutputFormat, columns: &[String]) -> Result<()> {
        if format == OutputFormat::Csv {
            self.append(&format!("{}\n", columns.join(",")))?;
        }
        Ok(())
    }

    /// Reopens (and locks) the journal of an interrupted sweep, folds in the rows of the
    /// interrupted table stream `table` (its in-order prefix; the file is then removed) and
    /// returns the journal with the ids it holds (`done[id]`) and their count. A torn last
    /// line (the launcher died mid-write) is cut off; a torn header is rewritten.
    pub fn reopen(
        path: &Path,
        table: &Path,
        format: OutputFormat,
        columns: &[String],
        combos: u64,
    ) -> Result<(Journal, Vec<bool>, u64)> {
        let shown = path.display();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Failure::usage(format!("cannot open {shown}: {e}")))?;
        let mut journal = Journal::locked(file, path)?;
        let mut text = String::new();
        journal.file.read_to_string(&mut text).map_err(|e| Failure::runtime(format!("cannot read {shown}: {e}")))?;
        let header = format!("{}\n", columns.join(","));
        let rows_start = match format {
            OutputFormat::Csv if text.starts_with(&header) => header.len(),
            // A header cut short: nothing after it can exist, start the file over.
            OutputFormat::Csv => 0,
            OutputFormat::JsonLines => 0,
        };
        let mut done = vec![false; combos as usize];
        let mut found = 0u64;
        let mut valid_end = rows_start;
        for line in text[rows_start..].split_inclusive('\n') {
            let id = line.strip_suffix('\n').and_then(|l| row_id(format, l)).filter(|&id| id < combos);
            let Some(id) = id else { break };
            if !done[id as usize] {
                done[id as usize] = true;
                found += 1;
            }
            valid_end += line.len();
        }
        if valid_end < text.len() || rows_start == 0 && format == OutputFormat::Csv {
            if valid_end < text.len() {
                say!(
                    "sweeprun: {shown}: dropping {} bytes of an incomplete last row (recomputed)",
                    text.len() - valid_end
                );
            }
            journal
                .file
                .set_len(valid_end as u64)
                .map_err(|e| Failure::runtime(format!("cannot truncate {shown}: {e}")))?;
            journal.file.seek(SeekFrom::End(0)).map_err(|e| Failure::runtime(format!("{shown}: {e}")))?;
            if valid_end == 0 {
                journal.write_header(format, columns)?;
            }
        }
        found += journal.fold_table(table, format, &header, &mut done)?;
        Ok((journal, done, found))
    }

    /// Appends the rows of an interrupted table stream that the journal lacks, syncs, and
    /// removes the stream. Returns how many rows were added.
    fn fold_table(&mut self, table: &Path, format: OutputFormat, header: &str, done: &mut [bool]) -> Result<u64> {
        let text = match std::fs::read(table) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Failure::runtime(format!("cannot read {}: {e}", table.display()))),
        };
        let rows = match format {
            OutputFormat::Csv => text.strip_prefix(header).unwrap_or(""),
            OutputFormat::JsonLines => &text,
        };
        let mut added = String::new();
        let mut count = 0;
        // Only the prefix of complete rows in id order counts: the stream writes nothing else.
        for (expected, line) in (0u64..).zip(rows.split_inclusive('\n')) {
            let id = line.strip_suffix('\n').and_then(|l| row_id(format, l));
            if id != Some(expected) || expected as usize >= done.len() {
                break;
            }
            if !done[expected as usize] {
                done[expected as usize] = true;
                added.push_str(line);
                count += 1;
            }
        }
        self.append(&added)?;
        self.sync()?;
        std::fs::remove_file(table).map_err(|e| Failure::runtime(format!("cannot remove {}: {e}", table.display())))?;
        Ok(count)
    }

    /// Appends formatted rows (one write; durable at the next [`Journal::sync`]).
    pub fn append(&mut self, rows: &str) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(rows.as_bytes())
            .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", self.path.display())))?;
        self.unsynced = true;
        Ok(())
    }

    /// Forces appended rows to disk.
    pub fn sync(&mut self) -> Result<()> {
        if self.unsynced {
            self.file.sync_data().map_err(|e| Failure::runtime(format!("cannot sync {}: {e}", self.path.display())))?;
            self.unsynced = false;
        }
        Ok(())
    }
}

/// Fsyncs the directory holding `path`, so that a name created or renamed there survives
/// a crash.
fn sync_parent_directory(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Writes `contents` to `path` atomically: temp file `<path>.tmp` in the same directory
/// (callers hold the journal lock, so the name is theirs), fsync, rename, fsync the directory.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let temp = suffixed(path, ".tmp");
    let result = (|| -> std::io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        sync_parent_directory(path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        Failure::runtime(format!("cannot write {}: {e}", path.display()))
    })
}

/// Builds the final table from a complete journal: rows sorted by combo id, every id in
/// `0..combos` exactly once. Returns the table text (header included for CSV).
pub fn assemble_table(journal: &Path, format: OutputFormat, columns: &[String], combos: u64) -> Result<String> {
    let text = std::fs::read_to_string(journal)
        .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", journal.display())))?;
    let mut rows: Vec<Option<&str>> = vec![None; combos as usize];
    for line in text.lines() {
        if format == OutputFormat::Csv && line.starts_with("combo_id") {
            continue;
        }
        let id = row_id(format, line)
            .filter(|&id| id < combos)
            .ok_or_else(|| Failure::runtime(format!("{}: malformed row `{line}`", journal.display())))?;
        match rows[id as usize] {
            None => rows[id as usize] = Some(line),
            // A chunk re-run after a crash gives the same bytes; anything else is a bug.
            Some(first) if first == line => {}
            Some(_) => {
                return Err(Failure::runtime(format!(
                    "{} holds two different rows for combo {id}; delete it and run the sweep again",
                    journal.display()
                )))
            }
        }
    }
    if let Some(missing) = rows.iter().position(Option::is_none) {
        return Err(Failure::runtime(format!("internal error: combo {missing} has no row in {}", journal.display())));
    }
    let mut table = String::with_capacity(text.len());
    if format == OutputFormat::Csv {
        table.push_str(&columns.join(","));
        table.push('\n');
    }
    for row in rows.into_iter().flatten() {
        table.push_str(row);
        table.push('\n');
    }
    Ok(table)
}

/// The final table, written while the sweep runs: rows go to `<out>.partial.table` in
/// combo-id order as soon as the chunk that continues the order arrives (chunks are handed
/// out in id order, so little waits), hashed and ranked on the way. What is left at the
/// end is an fsync and a rename.
pub struct TableStream {
    path: PathBuf,
    file: File,
    next: u64,
    combos: u64,
    /// Chunks that arrived ahead of their turn, by first id.
    waiting: std::collections::BTreeMap<u64, Waiting>,
    unsynced: bool,
    /// Bytes written so far.
    written: u64,
    /// Bytes written since the last early writeback was started.
    unstarted: u64,
    hasher: blake3::Hasher,
    ranker: crate::report::Ranker,
}

struct Waiting {
    end: u64,
    rows: String,
    best: Option<Vec<usize>>,
    journaled: bool,
}

impl TableStream {
    /// Starts `<out>.partial.table` (replacing a stale one) with the header.
    pub fn create(
        out: &Path,
        format: OutputFormat,
        columns: &[String],
        combos: u64,
        ranker: crate::report::Ranker,
    ) -> Result<TableStream> {
        let path = table_stream_path(out);
        let file =
            File::create(&path).map_err(|e| Failure::runtime(format!("cannot create {}: {e}", path.display())))?;
        let mut stream = TableStream {
            path,
            file,
            next: 0,
            combos,
            waiting: std::collections::BTreeMap::new(),
            unsynced: false,
            written: 0,
            unstarted: 0,
            hasher: blake3::Hasher::new(),
            ranker,
        };
        if format == OutputFormat::Csv {
            let header = format!("{}\n", columns.join(","));
            stream.hasher.update(header.as_bytes());
            stream.write(&header)?;
        }
        Ok(stream)
    }

    /// One unbuffered write per chunk: rows written survive the launcher being killed.
    /// Their writeback starts once a few MiB have gathered (each start is an I/O request,
    /// a VM exit on virtual disks), so the syncs, and the last one on the critical path,
    /// find little left to write.
    fn write(&mut self, text: &str) -> Result<()> {
        const WRITEBACK_BYTES: u64 = 2 << 20;
        self.unsynced = true;
        self.file
            .write_all(text.as_bytes())
            .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", self.path.display())))?;
        self.written += text.len() as u64;
        self.unstarted += text.len() as u64;
        if self.unstarted >= WRITEBACK_BYTES {
            sweeprun_hw::process::start_writeback(&self.file, self.written - self.unstarted, self.unstarted);
            self.unstarted = 0;
        }
        Ok(())
    }

    /// Writes the rows of combos `self.next..end`.
    fn emit(&mut self, end: u64, rows: &str, best: Option<&[usize]>) -> Result<()> {
        self.hasher.update(rows.as_bytes());
        match best {
            Some(best) => self
                .ranker
                .push_preselected(self.next, rows, end - self.next, best)
                .map_err(|e| Failure::runtime(format!("combos {}..{end}: {e}", self.next)))?,
            None => self.ranker.push_rows(self.next, rows),
        }
        self.next = end;
        self.write(rows)
    }

    /// Takes the rows of the chunk of combos `ids` (with the offsets of its preselected
    /// best rows, if the rank was asked for them).
    pub fn accept(&mut self, ids: Range<u64>, rows: String, best: Option<Vec<usize>>) -> Result<()> {
        if ids.start != self.next {
            self.waiting.insert(ids.start, Waiting { end: ids.end, rows, best, journaled: false });
            return Ok(());
        }
        self.emit(ids.end, &rows, best.as_deref())?;
        while let Some(chunk) = self.waiting.remove(&self.next) {
            self.emit(chunk.end, &chunk.rows, chunk.best.as_deref())?;
        }
        Ok(())
    }

    /// Makes every row taken so far durable: waiting chunks go to `journal` (once), the
    /// table is fsynced. The caller syncs the journal.
    fn sync(&mut self, journal: &mut Journal) -> Result<()> {
        for chunk in self.waiting.values_mut().filter(|c| !c.journaled) {
            journal.append(&chunk.rows)?;
            chunk.journaled = true;
        }
        if self.unsynced {
            self.file.sync_data().map_err(|e| Failure::runtime(format!("cannot sync {}: {e}", self.path.display())))?;
            self.unsynced = false;
        }
        Ok(())
    }

    fn sync_directory(&self) -> Result<()> {
        sync_parent_directory(&self.path)
            .map_err(|e| Failure::runtime(format!("cannot sync the directory of {}: {e}", self.path.display())))
    }

    /// Checks every combo arrived exactly once, fsyncs and renames the table over `out`.
    /// Returns the table's BLAKE3 digest (hex) and the ranker.
    pub fn finish(self, out: &Path) -> Result<(String, crate::report::Ranker)> {
        if self.next != self.combos || !self.waiting.is_empty() {
            return Err(Failure::runtime(format!(
                "internal error: rows 0..{} are in order, {} chunks wait, {} combos expected",
                self.next,
                self.waiting.len(),
                self.combos
            )));
        }
        let finished = (|| -> std::io::Result<()> {
            self.file.sync_all()?;
            std::fs::rename(&self.path, out)?;
            sync_parent_directory(out)
        })();
        finished.map_err(|e| Failure::runtime(format!("cannot write {}: {e}", out.display())))?;
        Ok((self.hasher.finalize().to_hex().to_string(), self.ranker))
    }
}

/// Where a running sweep's rows go: the table stream on a fresh sweep (with the journal
/// for chunks that wait), the journal alone on a resumed one; and when they are fsynced.
pub struct RowSink {
    journal: Journal,
    stream: Option<TableStream>,
    unsynced_bytes: usize,
    last_sync: Instant,
    /// Whether the directory holding the table stream has been fsynced since it was created.
    directory_synced: bool,
}

impl RowSink {
    /// A sink over an open journal and, on a fresh sweep, the table stream.
    pub fn new(journal: Journal, stream: Option<TableStream>) -> RowSink {
        RowSink { journal, stream, unsynced_bytes: 0, last_sync: Instant::now(), directory_synced: false }
    }

    /// Records the rows of the chunk of combos `ids`; syncs when enough time or bytes
    /// have accumulated.
    pub fn accept(&mut self, ids: Range<u64>, rows: String, best: Option<Vec<usize>>) -> Result<()> {
        self.unsynced_bytes += rows.len();
        match self.stream.as_mut() {
            Some(stream) => stream.accept(ids, rows, best)?,
            None => self.journal.append(&rows)?,
        }
        if self.unsynced_bytes >= SYNC_BYTES || self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes every row recorded so far durable.
    pub fn sync(&mut self) -> Result<()> {
        if let Some(stream) = self.stream.as_mut() {
            stream.sync(&mut self.journal)?;
            if !self.directory_synced {
                // The new file's name must survive a crash too, not only its bytes.
                stream.sync_directory()?;
                self.directory_synced = true;
            }
        }
        self.journal.sync()?;
        self.unsynced_bytes = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// The journal and the table stream, once the sweep has ended.
    pub fn into_parts(self) -> (Journal, Option<TableStream>) {
        (self.journal, self.stream)
    }
}

/// Seconds since the Unix epoch as an RFC 3339 UTC timestamp.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let secs = time.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let date = sweeprun_kernel::date::Date::from_days((secs / 86_400) as i32);
    let rem = secs % 86_400;
    format!("{date}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(x: f64) -> Metrics {
        Metrics { total_return: x, sharpe: f64::NAN, trades: 3, ..Metrics::default() }
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

    #[test]
    fn journal_reopen_cuts_a_torn_row_and_assembles_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv.partial");
        let cols = columns(&["fast"], &[]);
        let mut journal = Journal::create(&path, OutputFormat::Csv, &cols).unwrap();
        journal.append("2,1,0,0,0,0,0,0,0,0\n0,1,0,0,0,0,0,0,0,0\n1,1,0,0").unwrap();
        drop(journal);
        let (mut journal, done, found) =
            Journal::reopen(&path, &dir.path().join("none"), OutputFormat::Csv, &cols, 3).unwrap();
        assert_eq!((done, found), (vec![true, false, true], 2));
        journal.append("1,1,0,0,0,0,0,0,0,0\n").unwrap();
        let table = assemble_table(&path, OutputFormat::Csv, &cols, 3).unwrap();
        let ids: Vec<&str> = table.lines().skip(1).map(|l| &l[..1]).collect();
        assert_eq!(ids, vec!["0", "1", "2"]);
    }

    #[test]
    fn reopen_folds_in_the_in_order_prefix_of_an_interrupted_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv.partial");
        let table = dir.path().join("t.csv.partial.table");
        let cols = columns(&["fast"], &[]);
        let mut journal = Journal::create(&path, OutputFormat::Csv, &cols).unwrap();
        // A chunk that had to wait (ids 4..6) went to the journal; the table holds 0..3,
        // a row of the journal's chunk again, and a torn row.
        journal.append("4,1,0,0,0,0,0,0,0,0\n5,1,0,0,0,0,0,0,0,0\n").unwrap();
        drop(journal);
        let header = format!("{}\n", cols.join(","));
        let rows = "0,1,0,0,0,0,0,0,0,0\n1,1,0,0,0,0,0,0,0,0\n2,1,0,0,0,0,0,0,0,0\n3,1,0,0";
        std::fs::write(&table, format!("{header}{rows}")).unwrap();
        let (_journal, done, found) = Journal::reopen(&path, &table, OutputFormat::Csv, &cols, 7).unwrap();
        assert_eq!(done, vec![true, true, true, false, true, true, false]);
        assert_eq!(found, 5);
        assert!(!table.exists(), "the folded table is removed");
        let journal_rows = std::fs::read_to_string(&path).unwrap();
        assert_eq!(journal_rows.lines().count(), 1 + 5, "header and five distinct rows: {journal_rows}");

        // A table whose rows do not start at id 0 (or whose header differs) adds nothing.
        std::fs::write(&table, format!("{header}1,1,0,0,0,0,0,0,0,0\n")).unwrap();
        drop(_journal);
        let (_journal, _, found) = Journal::reopen(&path, &table, OutputFormat::Csv, &cols, 7).unwrap();
        assert_eq!(found, 5);
    }

    #[test]
    fn a_torn_header_is_rewritten_and_a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv.partial");
        let cols = columns(&["fast"], &[]);
        std::fs::write(&path, "combo_id,fa").unwrap();
        let (journal, done, found) =
            Journal::reopen(&path, &dir.path().join("none"), OutputFormat::Csv, &cols, 2).unwrap();
        assert_eq!((done, found), (vec![false, false], 0));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", cols.join(",")));
        match Journal::reopen(&path, &dir.path().join("none"), OutputFormat::Csv, &cols, 2) {
            Err(Failure::Usage(m)) => assert!(m.contains("another sweeprun process"), "{m}"),
            other => panic!("expected a lock refusal, got {other:?}"),
        }
        drop(journal);
        assert!(
            Journal::reopen(&path, &dir.path().join("none"), OutputFormat::Csv, &cols, 2).is_ok(),
            "free again once closed"
        );
    }

    #[test]
    fn assemble_refuses_conflicting_duplicates_but_accepts_identical_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv.partial");
        let cols = columns(&["fast"], &[]);
        let mut journal = Journal::create(&path, OutputFormat::Csv, &cols).unwrap();
        journal.append("0,1,0,0,0,0,0,0,0,0\n0,1,0,0,0,0,0,0,0,0\n").unwrap();
        assert!(assemble_table(&path, OutputFormat::Csv, &cols, 1).is_ok());
        journal.append("0,1,0.5,0,0,0,0,0,0,0\n").unwrap();
        assert!(assemble_table(&path, OutputFormat::Csv, &cols, 1).is_err());
    }

    #[test]
    fn the_stream_writes_in_id_order_whatever_the_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.csv");
        let cols = columns(&["fast"], &[]);
        let ranker = crate::report::Ranker::new(OutputFormat::Csv, &cols, "total_return", 2);
        let mut stream = TableStream::create(&out, OutputFormat::Csv, &cols, 3, ranker).unwrap();
        stream.accept(2..3, "2,1,0.7,0,0,0,0,0,0,0\n".into(), None).unwrap();
        stream.accept(0..2, "0,1,0.5,0,0,0,0,0,0,0\n1,1,0.9,0,0,0,0,0,0,0\n".into(), None).unwrap();
        let (sha, ranker) = stream.finish(&out).unwrap();
        let table = std::fs::read_to_string(&out).unwrap();
        let ids: Vec<&str> = table.lines().skip(1).map(|l| &l[..1]).collect();
        assert_eq!(ids, ["0", "1", "2"]);
        assert_eq!(sha, blake3::hash(table.as_bytes()).to_hex().as_str());
        let (best, total) = ranker.finish(&cols);
        assert_eq!((best[0][0].as_str(), best[1][0].as_str(), total), ("1", "2", 3));
        assert!(!dir.path().join("t.csv.partial.table").exists());
    }

    #[test]
    fn an_incomplete_stream_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.csv");
        let cols = columns(&["fast"], &[]);
        let ranker = crate::report::Ranker::new(OutputFormat::Csv, &cols, "sharpe", 1);
        let mut stream = TableStream::create(&out, OutputFormat::Csv, &cols, 3, ranker).unwrap();
        stream.accept(1..2, "1,1,0,0,0,0,0,0,0,0\n".into(), None).unwrap();
        assert!(stream.finish(&out).is_err());
        assert!(!out.exists());
    }

    #[test]
    fn assemble_refuses_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv.partial");
        let cols = columns(&["fast"], &[]);
        let mut journal = Journal::create(&path, OutputFormat::Csv, &cols).unwrap();
        journal.append("0,1,0,0,0,0,0,0,0,0\n").unwrap();
        assert!(assemble_table(&path, OutputFormat::Csv, &cols, 2).is_err());
    }

    #[test]
    fn timestamps() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(86_400 * 365 + 3661);
        assert_eq!(rfc3339(t), "1971-01-01T01:01:01Z");
    }
}
