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
use std::path::Path;

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
        DataError { path: path.to_string(), line, column: column.map(str::to_string), message }
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
    let mut assets = Vec::with_capacity(files.len());
    for file in files {
        let file_shown = file.display().to_string();
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let text = read_text(&file)?;
        let table = CsvTable::parse(&file_shown, &text)?;
        if table.close_column().is_none() {
            return Err(table.error(None, None, "a per-asset file needs a Close column".into()));
        }
        assets.push(table.single_asset(stem)?);
    }
    Ok(PriceSet { assets })
}

/// Parses one CSV text (`name` is used in errors, `stem` names a single-asset file's symbol).
pub fn parse_csv(name: &str, stem: &str, text: &str) -> Result<PriceSet, DataError> {
    let table = CsvTable::parse(name, text)?;
    // OHLC-style columns without Close is a broken single-asset file, not a wide table.
    let ohlc_like = table.find_column(&["open", "high", "low", "adj close", "volume"]).is_some();
    if ohlc_like && table.close_column().is_none() {
        return Err(table.error(
            Some(1),
            None,
            format!("header has OHLC columns but no Close column (found: {})", table.header[1..].join(", ")),
        ));
    }
    if table.close_column().is_some() {
        Ok(PriceSet { assets: vec![table.single_asset(stem.to_string())?] })
    } else {
        table.wide()
    }
}

fn read_text(path: &Path) -> Result<String, DataError> {
    let shown = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| DataError::new(&shown, None, None, format!("cannot read data: {e}")))?;
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
        let header: Vec<String> =
            split_fields(header_line.trim_start_matches('\u{feff}')).iter().map(|h| h.trim().to_string()).collect();
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

    fn find_column(&self, names: &[&str]) -> Option<usize> {
        self.header
            .iter()
            .skip(1)
            .position(|h| {
                let h = h.to_ascii_lowercase();
                names.iter().any(|n| *n == h)
            })
            .map(|i| i + 1)
    }

    fn close_column(&self) -> Option<usize> {
        self.find_column(&["close"])
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
            let what = if text.is_empty() { "empty price".to_string() } else { format!("`{text}` is not a number") };
            self.error(Some(line), Some(column), format!("{what} (expected a positive price)"))
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
        let close_col = self.close_column().expect("caller checked the Close column");
        let adj_col = self.find_column(&["adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close"]);
        let open_col = self.find_column(&["open"]);
        // The ticks come from the column the strategy trades on: Adj Close if present.
        let (raw_close, raw_exact) = match adj_col {
            Some(_) => (self.prices(close_col)?, None),
            None => {
                let (close, exact) = self.prices_and_ticks(close_col)?;
                (close, Some(exact))
            }
        };
        let raw_open = open_col.map(|c| self.prices(c)).transpose()?;
        let (close, close_exact) = match (adj_col, raw_exact) {
            (Some(adj), _) => self.prices_and_ticks(adj)?,
            (None, Some(exact)) => (raw_close.clone(), exact),
            (None, None) => unreachable!("the close column was parsed exactly without Adj Close"),
        };
        let open = raw_open.map(|open| match adj_col {
            // QSTrader's operation order: (AdjClose / Close) * Open.
            Some(_) => open.iter().zip(&close).zip(&raw_close).map(|((o, a), c)| (a / c) * o).collect(),
            None => open,
        });
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

/// Splits one CSV line on commas, honouring double-quoted fields; fields come trimmed
/// (and unquoted).
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
        assert_eq!(
            error_of("Date,Open,High\n2020-01-02,1,2\n"),
            "d.csv:1: header has OHLC columns but no Close column (found: Open, High)"
        );
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
