//! Daily price data: loading and validation.
//!
//! Three layouts are accepted (the first column is always the date, ISO `YYYY-MM-DD`):
//!
//! * **single-asset OHLC**: a header with a `Close` column (any case), optionally `Open`
//!   and `Adj Close`; other columns (High, Low, Volume) are ignored. The symbol is the
//!   file stem.
//! * **wide closes**: every column after the date is one asset's close.
//! * **a directory** of single-asset OHLC files in QSTrader/Yahoo form
//!   (`Date,Open,High,Low,Close,Adj Close,Volume`), one `<SYMBOL>.csv` per asset.
//!
//! When an `Adj Close` column exists, prices are adjusted as QSTrader does:
//! close = `Adj Close`, open = `(Adj Close / Close) * Open` (in that operation order).
//!
//! Validation is strict: rows must be in strictly ascending date order, and every
//! used price must be a positive finite number. Errors name file, line and column.

use crate::date::Date;
use crate::decimal::{Decimal, ExactCloses};
use std::fmt;
use std::path::{Path, PathBuf};

/// One asset's daily series.
#[derive(Clone, Debug, PartialEq)]
pub struct AssetSeries {
    /// Asset name: the column name (wide form) or the file stem.
    pub symbol: String,
    /// Row dates, strictly ascending.
    pub dates: Vec<Date>,
    /// Open prices (adjusted when the source has `Adj Close`); `None` for closes-only data.
    pub open: Option<Vec<f64>>,
    /// Close prices (`Adj Close` when present).
    pub close: Vec<f64>,
    /// The closes exactly as written (`close` holds their nearest f64).
    pub close_exact: ExactCloses,
}

impl AssetSeries {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.dates.len()
    }

    /// True when the series has no rows.
    pub fn is_empty(&self) -> bool {
        self.dates.is_empty()
    }
}

/// All assets of one data source, in source order (column order, or file name order).
#[derive(Clone, Debug, PartialEq)]
pub struct PriceSet {
    /// The assets.
    pub assets: Vec<AssetSeries>,
}

impl PriceSet {
    /// The asset named `symbol`.
    pub fn asset(&self, symbol: &str) -> Option<&AssetSeries> {
        self.assets.iter().find(|a| a.symbol == symbol)
    }

    /// The asset names, in order.
    pub fn symbols(&self) -> Vec<&str> {
        self.assets.iter().map(|a| a.symbol.as_str()).collect()
    }
}

/// A data error: which file, line and column, and what was wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct DataError {
    /// The file (or directory) as given.
    pub path: String,
    /// 1-based line number, when the error is about one line.
    pub line: Option<usize>,
    /// Column name, when the error is about one field.
    pub column: Option<String>,
    /// What was wrong and what is expected.
    pub message: String,
}

impl DataError {
    fn new(path: &str, line: Option<usize>, column: Option<&str>, message: String) -> DataError {
        DataError { path: path.to_string(), line, column: column.map(printable), message: printable(&message) }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ": column `{column}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for DataError {}

/// `text` with control characters escaped (`\r`, `\u{1}`): an error stays one line on
/// the terminal whatever bytes the file had.
fn printable(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
    } else {
        text.to_string()
    }
}

/// Loads a CSV file or a directory of per-asset CSV files.
pub fn load(path: &Path) -> Result<PriceSet, DataError> {
    let shown = path.display().to_string();
    let meta =
        std::fs::metadata(path).map_err(|e| DataError::new(&shown, None, None, format!("cannot read data: {e}")))?;
    if meta.is_dir() {
        load_dir(path)
    } else {
        let text = read_text(path)?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        parse_csv(&shown, &stem, &text)
    }
}

/// Loads every `*.csv` in `dir` as one single-asset OHLC file (symbol = file stem),
/// in file name order.
pub fn load_dir(dir: &Path) -> Result<PriceSet, DataError> {
    let shown = dir.display().to_string();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| DataError::new(&shown, None, None, format!("cannot list directory: {e}")))?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::new(&shown, None, None, "directory has no .csv files".into()));
    }
    let load_one = |file: &PathBuf| -> Result<AssetSeries, DataError> {
        let file_shown = file.display().to_string();
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let text = read_text(file)?;
        let table = CsvTable::parse(&file_shown, &text)?;
        if table.close_column()?.is_none() && table.adj_close_column()?.is_none() {
            return Err(table.error(Some(1), None, "a per-asset file needs a Close or Adj Close column".into()));
        }
        table.single_asset(stem)
    };
    // The files are parsed on every CPU this process may use (contiguous runs of files per
    // thread, the first on this one); the first error in file order is the one reported.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len());
    let per_thread = files.len().div_ceil(threads);
    type Slot = Option<Result<AssetSeries, DataError>>;
    let mut loaded: Vec<Slot> = (0..files.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let mut runs = files.chunks(per_thread).zip(loaded.chunks_mut(per_thread));
        let load_run = |(files, slots): (&[PathBuf], &mut [Slot])| {
            for (file, slot) in files.iter().zip(slots) {
                *slot = Some(load_one(file));
            }
        };
        let first = runs.next();
        for run in runs {
            scope.spawn(move || load_run(run));
        }
        if let Some(run) = first {
            load_run(run);
        }
    });
    let assets = loaded.into_iter().map(|slot| slot.expect("every file was loaded")).collect::<Result<_, _>>()?;
    Ok(PriceSet { assets })
}

/// Parses one CSV text (`name` is used in errors, `stem` names a single-asset file's symbol).
pub fn parse_csv(name: &str, stem: &str, text: &str) -> Result<PriceSet, DataError> {
    let table = CsvTable::parse(name, text)?;
    // OHLC names only count as such next to a Close or Adj Close column: without one, the
    // file is a wide table of closes, whatever its tickers are called (OPEN, LOW, ...).
    if table.close_column()?.is_some() || table.adj_close_column()?.is_some() {
        Ok(PriceSet { assets: vec![table.single_asset(stem.to_string())?] })
    } else {
        table.wide()
    }
}

/// Largest data file read (a guard against endless inputs such as `/dev/zero`).
pub const MAX_DATA_BYTES: u64 = 256 << 20;

fn read_text(path: &Path) -> Result<String, DataError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let cannot = |e: std::io::Error| DataError::new(&shown, None, None, format!("cannot read data: {e}"));
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(MAX_DATA_BYTES + 1).read_to_end(&mut bytes)).map_err(cannot)?;
    if bytes.len() as u64 > MAX_DATA_BYTES {
        return Err(DataError::new(
            &shown,
            None,
            None,
            format!("data file is larger than {} MiB (the most sweeprun reads)", MAX_DATA_BYTES >> 20),
        ));
    }
    String::from_utf8(bytes).map_err(|_| DataError::new(&shown, None, None, "file is not UTF-8 text".into()))
}

/// A column's prices and the same prices exactly as written.
type PricedColumn = (Vec<f64>, ExactCloses);

/// A parsed CSV: header plus rows of raw fields, with dates validated.
struct CsvTable<'a> {
    name: &'a str,
    header: Vec<String>,
    dates: Vec<Date>,
    /// 1-based line number of each data row.
    lines: Vec<usize>,
    /// The rows' fields, row after row (`header.len()` per row).
    fields: Vec<&'a str>,
}

impl<'a> CsvTable<'a> {
    fn parse(name: &'a str, text: &'a str) -> Result<CsvTable<'a>, DataError> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header_line)) = lines.next() else {
            return Err(DataError::new(name, None, None, "file is empty (expected a header and rows)".into()));
        };
        let header_line = header_line.trim_start_matches('\u{feff}');
        if has_open_quote(header_line) {
            return Err(DataError::new(name, Some(1), None, UNTERMINATED_QUOTE.into()));
        }
        let header: Vec<String> = split_fields(header_line).iter().map(|h| h.replace("\"\"", "\"")).collect();
        if header.len() < 2 {
            return Err(DataError::new(
                name,
                Some(1),
                None,
                "header needs a date column and at least one price column".into(),
            ));
        }
        let mut table = CsvTable { name, header, dates: Vec::new(), lines: Vec::new(), fields: Vec::new() };
        let mut previous: Option<(Date, usize)> = None;
        for (index, line) in lines {
            let line_no = index + 1;
            let row_start = table.fields.len();
            if has_open_quote(line) {
                return Err(table.error(Some(line_no), None, UNTERMINATED_QUOTE.into()));
            }
            let found = split_fields_into(line, &mut table.fields);
            if found != table.header.len() {
                return Err(table.error(
                    Some(line_no),
                    None,
                    format!("expected {} fields as in the header, found {found}", table.header.len()),
                ));
            }
            let date_text = table.fields[row_start];
            let date = Date::parse_iso(date_text).ok_or_else(|| {
                table.error(Some(line_no), Some(0), format!("`{date_text}` is not a date (expected YYYY-MM-DD)"))
            })?;
            if let Some((prev, prev_line)) = previous {
                if date == prev {
                    return Err(table.error(
                        Some(line_no),
                        Some(0),
                        format!("duplicate date {date} (also on line {prev_line})"),
                    ));
                }
                if date < prev {
                    return Err(table.error(
                        Some(line_no),
                        Some(0),
                        format!(
                            "date {date} comes after {prev} (line {prev_line}); rows must be in ascending date order"
                        ),
                    ));
                }
            }
            previous = Some((date, line_no));
            table.dates.push(date);
            table.lines.push(line_no);
        }
        if table.lines.is_empty() {
            return Err(table.error(None, None, "no data rows after the header".into()));
        }
        Ok(table)
    }

    fn error(&self, line: Option<usize>, column: Option<usize>, message: String) -> DataError {
        let column = column.map(|c| {
            let name = &self.header[c];
            if name.is_empty() {
                "date"
            } else {
                name.as_str()
            }
        });
        DataError::new(self.name, line, column, message)
    }

    /// The one column named as one of `names` (any case); two such columns are an error
    /// (which one would be the prices is a guess).
    fn unique_column(&self, names: &[&str]) -> Result<Option<usize>, DataError> {
        let matching: Vec<usize> = (1..self.header.len())
            .filter(|&c| {
                let h = self.header[c].to_ascii_lowercase();
                names.iter().any(|n| *n == h)
            })
            .collect();
        match matching.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            [first, second, ..] => Err(self.error(
                Some(1),
                Some(*second),
                format!(
                    "two columns name the same prices (`{}` is column {} and `{}` column {}); keep one",
                    self.header[*first],
                    first + 1,
                    self.header[*second],
                    second + 1
                ),
            )),
        }
    }

    fn close_column(&self) -> Result<Option<usize>, DataError> {
        self.unique_column(&["close"])
    }

    fn adj_close_column(&self) -> Result<Option<usize>, DataError> {
        self.unique_column(&["adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close"])
    }

    /// (line number, field) of every row in `column`.
    fn column(&self, column: usize) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        self.lines.iter().copied().zip(self.fields.iter().skip(column).step_by(self.header.len()).copied())
    }

    fn prices(&self, column: usize) -> Result<Vec<f64>, DataError> {
        self.column(column)
            .map(|(line, text)| {
                let value = self.price(line, column, text)?;
                if !(value.is_finite() && value > 0.0) {
                    return Err(self.not_positive(line, column, text));
                }
                Ok(value)
            })
            .collect()
    }

    /// One field as a number (any f64 syntax; positivity is checked by the callers).
    fn price(&self, line: usize, column: usize, text: &str) -> Result<f64, DataError> {
        let text = text.trim();
        text.parse().map_err(|_| {
            let what = match text {
                "" => "empty price (expected a positive price)".to_string(),
                // Yahoo's downloads write `null` on days without data.
                "null" | "NULL" | "NA" | "N/A" | "nan" | "-" => {
                    format!("missing price `{text}` (expected a positive price: remove or fill rows without data)")
                }
                _ => format!("`{text}` is not a number (expected a positive price)"),
            };
            self.error(Some(line), Some(column), what)
        })
    }

    fn not_positive(&self, line: usize, column: usize, text: &str) -> DataError {
        let text = text.trim();
        self.error(Some(line), Some(column), format!("price must be a positive finite number, got `{text}`"))
    }

    /// [`CsvTable::prices`] of one column and the same prices exactly as written, each
    /// field parsed once: as a decimal, whose f64 is exact by one operation when small
    /// enough (else the text is parsed as f64, which is what `prices` does for every field).
    fn prices_and_ticks(&self, column: usize) -> Result<PricedColumn, DataError> {
        let mut prices = Vec::with_capacity(self.lines.len());
        let mut decimals = Vec::with_capacity(self.lines.len());
        for (line, text) in self.column(column) {
            let decimal = Decimal::parse(text);
            let value = match decimal.as_ref().and_then(Decimal::to_f64_fast) {
                Some(value) => value,
                None => self.price(line, column, text)?,
            };
            if !(value.is_finite() && value > 0.0) {
                return Err(self.not_positive(line, column, text));
            }
            let decimal = decimal.ok_or_else(|| {
                self.error(Some(line), Some(column), format!("`{}` is not a decimal number", text.trim()))
            })?;
            prices.push(value);
            decimals.push(decimal);
        }
        let exact = ExactCloses::from_decimals(&decimals).expect("positive prices were checked");
        Ok((prices, exact))
    }

    fn single_asset(&self, symbol: String) -> Result<AssetSeries, DataError> {
        let close_col = self.close_column()?;
        let adj_col = self.adj_close_column()?;
        let open_col = self.unique_column(&["open"])?;
        let (close, close_exact, open) = match (close_col, adj_col) {
            (Some(close_col), None) => {
                let (close, exact) = self.prices_and_ticks(close_col)?;
                let open = open_col.map(|c| self.prices(c)).transpose()?;
                (close, exact, open)
            }
            // The ticks come from the column the strategy trades on: Adj Close.
            (Some(close_col), Some(adj)) => {
                let raw_close = self.prices(close_col)?;
                let (close, exact) = self.prices_and_ticks(adj)?;
                // QSTrader's operation order: (AdjClose / Close) * Open.
                let open = open_col
                    .map(|c| self.prices(c))
                    .transpose()?
                    .map(|open| open.iter().zip(&close).zip(&raw_close).map(|((o, a), c)| (a / c) * o).collect());
                (close, exact, open)
            }
            (None, Some(adj)) => {
                if let Some(open) = open_col {
                    return Err(self.error(
                        Some(1),
                        Some(open),
                        "an Open column needs a Close column beside Adj Close (opens are adjusted by Adj Close / Close)"
                            .into(),
                    ));
                }
                let (close, exact) = self.prices_and_ticks(adj)?;
                (close, exact, None)
            }
            (None, None) => unreachable!("callers check for a Close or Adj Close column"),
        };
        Ok(AssetSeries { symbol, dates: self.dates.clone(), open, close, close_exact })
    }

    fn wide(&self) -> Result<PriceSet, DataError> {
        let mut assets: Vec<AssetSeries> = Vec::with_capacity(self.header.len() - 1);
        for column in 1..self.header.len() {
            let symbol = self.header[column].clone();
            if symbol.is_empty() {
                return Err(self.error(Some(1), None, format!("column {} has an empty name", column + 1)));
            }
            if assets.iter().any(|a| a.symbol == symbol) {
                return Err(self.error(Some(1), Some(column), "column name appears twice".into()));
            }
            let (close, close_exact) = self.prices_and_ticks(column)?;
            assets.push(AssetSeries { symbol, dates: self.dates.clone(), open: None, close, close_exact });
        }
        Ok(PriceSet { assets })
    }
}

const UNTERMINATED_QUOTE: &str = "a quoted field is not closed on this line (fields spanning lines are not supported)";

/// Whether a line ends inside a double-quoted field (`""` inside quotes is an escaped quote
/// and toggles twice).
fn has_open_quote(line: &str) -> bool {
    line.bytes().filter(|&b| b == b'"').count() % 2 == 1
}

/// Splits one CSV line on commas, honouring double-quoted fields (RFC 4180, `""` for a
/// quote inside one); fields come trimmed and unquoted (escaped quotes stay doubled: only
/// header names are unescaped, a price or date with a quote in it is malformed anyway).
fn split_fields(line: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    split_fields_into(line, &mut fields);
    fields
}

/// [`split_fields`] appending to `fields`; returns how many fields the line has.
fn split_fields_into<'a>(line: &'a str, fields: &mut Vec<&'a str>) -> usize {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let before = fields.len();
    let mut start = 0;
    let mut in_quotes = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                fields.push(unquote(&line[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    fields.push(unquote(&line[start..]));
    fields.len() - before
}

fn unquote(field: &str) -> &str {
    let trimmed = field.trim();
    trimmed.strip_prefix('"').and_then(|f| f.strip_suffix('"')).unwrap_or(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OHLC: &str = ",Open,High,Low,Close,Volume\n\
        2004-08-19,100,104.06,95.96,100.34,22351900\n\
        2004-08-20,101.01,109.08,100.5,108.31,11428600\n";

    #[test]
    fn parses_single_asset_ohlc() {
        let set = parse_csv("GOOG.csv", "GOOG", OHLC).unwrap();
        let goog = set.asset("GOOG").unwrap();
        assert_eq!(goog.dates.len(), 2);
        assert_eq!(goog.open.as_deref(), Some(&[100.0, 101.01][..]));
        assert_eq!(goog.close, vec![100.34, 108.31]);
        assert_eq!(goog.close_exact, ExactCloses::from_i64(vec![10034, 10831], 2));
    }

    #[test]
    fn adjusts_like_qstrader() {
        let text = "Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,10,11,9,10.5,5.25,1\n";
        let set = parse_csv("X.csv", "X", text).unwrap();
        let x = &set.assets[0];
        assert_eq!(x.close, vec![5.25]);
        assert_eq!(x.open.as_ref().unwrap()[0], (5.25 / 10.5) * 10.0);
        assert_eq!(x.close_exact, ExactCloses::from_i64(vec![525], 2));
    }

    #[test]
    fn parses_wide_closes() {
        let text = "date,AAA,BBB\n2020-01-02,1.5,20\n2020-01-03,1.25,21\n";
        let set = parse_csv("w.csv", "w", text).unwrap();
        assert_eq!(set.symbols(), vec!["AAA", "BBB"]);
        assert_eq!(set.assets[0].close_exact, ExactCloses::from_i64(vec![150, 125], 2));
        assert!(set.assets[1].open.is_none());
    }

    fn error_of(text: &str) -> String {
        parse_csv("d.csv", "d", text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_line_and_column() {
        let dup = "Date,Close\n2020-01-02,1\n2020-01-02,2\n";
        assert_eq!(error_of(dup), "d.csv:3: column `Date`: duplicate date 2020-01-02 (also on line 2)");
        let unsorted = "Date,Close\n2020-01-03,1\n2020-01-02,2\n";
        assert!(error_of(unsorted).starts_with("d.csv:3: column `Date`: date 2020-01-02 comes after"));
        assert_eq!(
            error_of("Date,Close\n2020-01-02,NaN\n"),
            "d.csv:2: column `Close`: price must be a positive finite number, got `NaN`"
        );
        assert!(error_of("Date,Close\n2020-01-02,0\n").contains("got `0`"));
        assert!(error_of("Date,Close\n2020-01-02,-3\n").contains("got `-3`"));
        assert!(error_of("Date,Close\n2020-01-02,\n").starts_with("d.csv:2: column `Close`: empty price"));
        assert!(error_of("Date,Close\n2020-01-02,1,2\n").contains("expected 2 fields"));
        assert!(error_of("Date,Close\n02/01/2020,1\n").contains("is not a date"));
        assert!(error_of("Date,Close\n").contains("no data rows"));
        assert!(error_of("").contains("empty"));
        assert!(error_of("Date\n2020-01-02\n").contains("header needs"));
    }

    #[test]
    fn ohlc_names_without_close_are_tickers() {
        let set = parse_csv("w.csv", "w", "Date,OPEN,LOW,High\n2020-01-02,1,2,3\n").unwrap();
        assert_eq!(set.symbols(), vec!["OPEN", "LOW", "High"]);
        // With a Close column (any case) they are an OHLC file.
        let set = parse_csv("x.csv", "X", "date,OPEN,LOW,CLOSE\n2020-01-02,1,0.5,2\n").unwrap();
        assert_eq!(set.symbols(), vec!["X"]);
        assert_eq!(set.assets[0].open.as_deref(), Some(&[1.0][..]));
        // Adj Close alone is a closes-only asset; with Open it needs Close to adjust the open.
        let set = parse_csv("y.csv", "Y", "Date,Adj Close\n2020-01-02,2.5\n").unwrap();
        assert_eq!((set.symbols(), set.assets[0].close.clone()), (vec!["Y"], vec![2.5]));
        assert!(set.assets[0].open.is_none());
        assert_eq!(
            error_of("Date,Open,Adj Close\n2020-01-02,1,2\n"),
            "d.csv:1: column `Open`: an Open column needs a Close column beside Adj Close (opens are adjusted by Adj Close / Close)"
        );
    }

    #[test]
    fn two_close_columns_are_refused() {
        assert_eq!(
            error_of("Date,Close,Volume,close\n2020-01-02,1,5,2\n"),
            "d.csv:1: column `close`: two columns name the same prices (`Close` is column 2 and `close` column 4); keep one"
        );
        assert!(
            error_of("Date,Close,Adj Close,Adj_Close\n2020-01-02,1,2,3\n").contains("two columns name the same prices")
        );
    }

    #[test]
    fn csv_details_bom_crlf_quotes_and_missing_rows() {
        // A UTF-8 byte order mark and CRLF line ends (Excel's CSV).
        let set = parse_csv("b.csv", "B", "\u{feff}Date,Close\r\n2020-01-02,1.5\r\n2020-01-03,1.25\r\n").unwrap();
        assert_eq!(set.assets[0].close, vec![1.5, 1.25]);
        // Quoted fields, with "" for a quote inside one.
        let set = parse_csv("q.csv", "q", "\"Date\",\"A \"\"x\"\"\",\"B,C\"\n\"2020-01-02\",\"1.5\",2\n").unwrap();
        assert_eq!(set.symbols(), vec!["A \"x\"", "B,C"]);
        assert_eq!(set.assets[0].close, vec![1.5]);
        // A quote left open is refused with its line.
        assert_eq!(
            error_of("Date,Close\n2020-01-02,\"1.5\n"),
            "d.csv:2: a quoted field is not closed on this line (fields spanning lines are not supported)"
        );
        // Yahoo's rows of `null` on days without data.
        assert_eq!(
            error_of("Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,1,1,1,1,0\n2020-01-03,null,null,null,null,null,null\n"),
            "d.csv:3: column `Close`: missing price `null` (expected a positive price: remove or fill rows without data)"
        );
    }

    #[test]
    fn dates_with_trailing_text_are_refused() {
        assert!(error_of("Date,Close\n2020-01-02Tlol,1\n").contains("`2020-01-02Tlol` is not a date"));
        assert!(error_of("Date,Close\n2020-01-03T99:99:99Z,1\n").contains("is not a date"));
        let set = parse_csv("t.csv", "t", "Date,Close\n2020-01-02 00:00:00,1\n").unwrap();
        assert_eq!(set.assets[0].dates[0].to_string(), "2020-01-02");
    }

    #[test]
    fn endless_input_is_cut_off() {
        let error = load(Path::new("/dev/zero")).unwrap_err().to_string();
        assert_eq!(error, "/dev/zero: data file is larger than 256 MiB (the most sweeprun reads)");
    }

    #[test]
    fn float_written_closes_are_kept_exactly() {
        let set = parse_csv("d.csv", "d", "Date,Close\n2020-01-02,1.1234567890123\n2020-01-03,2.5e3\n").unwrap();
        assert_eq!(
            set.assets[0].close_exact,
            ExactCloses::from_i64(vec![11_234_567_890_123, 25_000_000_000_000_000], 13)
        );
        assert_eq!(set.assets[0].close, vec![1.1234567890123, 2500.0]);
    }

    #[test]
    fn quoted_fields() {
        assert_eq!(split_fields("\"a,b\",c"), vec!["a,b", "c"]);
        assert_eq!(split_fields("a,b\r"), vec!["a", "b"]);
        assert_eq!(split_fields(" a , b "), vec!["a", "b"]);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const VALID: [&str; 3] = [
        ",Open,High,Low,Close,Volume\n2004-08-19,100,104.06,95.96,100.34,22351900\n2004-08-20,101.01,109.08,100.5,108.31,11428600\n",
        "date,AAA,BBB\n2020-01-02,1.5,20\n2020-01-03,1.25,21.000000000000004\n2020-01-06,1e-3,2.5E2\n",
        "Date,Open,High,Low,Close,Adj Close,Volume\r\n2020-01-02,10,11,9,10.5,5.25,1\r\n2020-01-03,\"10\",11,9,10.5,5.5,1\r\n",
    ];

    /// Edits of a valid file: replace, insert or delete one character from an alphabet
    /// of CSV syntax, digits and number/date punctuation.
    fn mutated() -> impl Strategy<Value = String> {
        let alphabet: Vec<char> = ",\"\n\r.-+eE0123456789 Tx\u{feff}nul".chars().collect();
        (0..VALID.len(), prop::collection::vec((0usize..400, 0u8..3, prop::sample::select(alphabet)), 1..6)).prop_map(
            |(which, edits)| {
                let mut chars: Vec<char> = VALID[which].chars().collect();
                for (at, kind, c) in edits {
                    let at = at % (chars.len() + 1);
                    match kind {
                        0 if at < chars.len() => chars[at] = c,
                        1 => chars.insert(at, c),
                        _ if at < chars.len() => {
                            chars.remove(at);
                        }
                        _ => chars.push(c),
                    }
                }
                chars.into_iter().collect()
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The reader never panics, and every refusal is one line naming the file.
        #[test]
        fn mutated_files_load_or_are_refused_in_one_line(text in mutated()) {
            match parse_csv("m.csv", "M", &text) {
                Ok(set) => {
                    for asset in &set.assets {
                        prop_assert!(asset.close.iter().all(|c| c.is_finite() && *c > 0.0));
                        prop_assert_eq!(asset.close_exact.ticks.len(), asset.close.len());
                        prop_assert!(asset.dates.windows(2).all(|w| w[0] < w[1]));
                    }
                }
                Err(e) => {
                    let line = e.to_string();
                    prop_assert!(line.starts_with("m.csv"), "{}", line);
                    prop_assert!(!line.contains(['\n', '\r']), "{:?}", line);
                }
            }
        }
    }
}
