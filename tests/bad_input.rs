//! The bad-input contract of `sweeprun run`, end to end through the real binary.
//!
//! Every case starts from valid inputs (a 60-row whole-cent OHLC file and a small
//! sma_cross spec, checked to run cleanly by `baseline_inputs_run_cleanly`), breaks
//! exactly one thing (a CSV cell or line, a spec key, a command-line flag, the output
//! location, a leftover journal) and runs it in its own temp dir. Each case must:
//!
//! 1. exit with code 2;
//! 2. print exactly one non-empty `sweeprun: ...` line on stderr that names the problem
//!    (file, line and column for data errors; `[section] key` for spec errors; the flag
//!    for command-line errors): each case lists substrings that line must contain;
//! 3. print nothing on stdout;
//! 4. leave the temp dir exactly as written: no results table, `.partial` journal,
//!    `.partial.json`/`.meta.json` sidecar, temp or probe file, or created directory,
//!    and every input byte for byte unchanged.
//!
//! `every_bad_input_exits_2_with_one_line_and_writes_nothing` runs the whole table and
//! reports every failing case at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use sweeprun_kernel::date::Date;
use sweeprun_tests::{output_of, sweeprun};

/// Data rows in the baseline price file (line 1 is the header, rows are lines 2..=61).
const ROWS: usize = 60;

/// The baseline spec. Line numbers matter to the invalid-TOML case (`name` is line 5).
const SPEC: &str = r#"[data]
path = "prices.csv"

[strategy]
name = "sma_cross"

[grid]
fast = { from = 2, to = 5 }
slow = { from = 10, to = 20, step = 5 }
where = "fast < slow"

[output]
path = "out/results.csv"
"#;

/// Combos of the baseline grid: fast 2..=5 x slow {10, 15, 20}, all with fast < slow.
const BASELINE_COMBOS: usize = 12;

// ---------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------

/// Whole cents as a price string (`10040` -> `100.40`).
fn cents(c: i64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// `ROWS` consecutive weekdays from Monday 2021-01-04.
fn dates() -> Vec<String> {
    let mut day = Date::from_ymd(2021, 1, 4).expect("a real date");
    let mut out = Vec::with_capacity(ROWS);
    while out.len() < ROWS {
        if day.is_weekday() {
            out.push(day.to_string());
        }
        day = Date::from_days(day.days() + 1);
    }
    out
}

/// The baseline close of row `i` in cents: a triangle wave, so the SMAs cross.
fn close_cents(i: usize) -> i64 {
    let phase = (i % 20) as i64;
    10_000 + 45 * if phase < 10 { phase } else { 20 - phase }
}

/// The baseline OHLC file as cells: `cells[0]` is the header (file line 1), `cells[k]`
/// is file line `k + 1`.
fn ohlc_cells() -> Vec<Vec<String>> {
    let mut cells = vec![["Date", "Open", "High", "Low", "Close", "Volume"].map(String::from).to_vec()];
    for (i, date) in dates().into_iter().enumerate() {
        let close = close_cents(i);
        let open = close - 15 + (i % 3) as i64 * 10;
        cells.push(vec![
            date,
            cents(open),
            cents(open.max(close) + 50),
            cents(open.min(close) - 50),
            cents(close),
            (100_000 + i * 137).to_string(),
        ]);
    }
    cells
}

fn join(cells: &[Vec<String>]) -> String {
    cells.iter().map(|row| row.join(",") + "\n").collect()
}

/// The baseline OHLC CSV text.
fn ohlc_csv() -> String {
    join(&ohlc_cells())
}

/// The baseline OHLC CSV with the cell at file line `line`, column `column` set to `value`.
fn ohlc_with_cell(line: usize, column: &str, value: &str) -> String {
    let mut cells = ohlc_cells();
    let col = cells[0].iter().position(|h| h == column).unwrap_or_else(|| panic!("no column {column}"));
    cells[line - 1][col] = value.to_string();
    join(&cells)
}

/// The baseline OHLC CSV after `edit` changed its cells (see [`ohlc_cells`] for indexing).
fn ohlc_edited(edit: impl FnOnce(&mut Vec<Vec<String>>)) -> String {
    let mut cells = ohlc_cells();
    edit(&mut cells);
    join(&cells)
}

/// A wide closes-only file: `Date` then one close column per symbol.
fn wide_csv(symbols: &[&str]) -> String {
    let mut text = format!("Date,{}\n", symbols.join(","));
    for (i, date) in dates().into_iter().enumerate() {
        let closes: Vec<String> = (0..symbols.len()).map(|s| cents(close_cents(i + 3 * s))).collect();
        text += &format!("{date},{}\n", closes.join(","));
    }
    text
}

/// The baseline spec with each `(old, new)` replacement applied; panics if `old` is not
/// there, so a case can never silently test the baseline.
fn spec_with(edits: &[(&str, &str)]) -> String {
    let mut text = SPEC.to_string();
    for (old, new) in edits {
        assert!(text.contains(old), "the spec has no `{old}` to replace");
        text = text.replacen(old, new, 1);
    }
    text
}

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

/// One bad input: the files of a temp dir, the command line, and what the error must say.
#[derive(Debug)]
struct Case {
    name: &'static str,
    /// Files to write, by path relative to the temp dir (parents are created).
    files: BTreeMap<String, Vec<u8>>,
    /// Extra (empty) directories to create.
    dirs: Vec<&'static str>,
    /// The full argument list after the program name.
    args: Vec<String>,
    /// Substrings the one stderr line must contain.
    expect: Vec<&'static str>,
    /// Substrings it must not contain (e.g. a misleading hint).
    absent: Vec<&'static str>,
}

impl Case {
    /// The baseline: `spec.toml` + `prices.csv`, run as `sweeprun run spec.toml`.
    fn new(name: &'static str) -> Case {
        let files = BTreeMap::from([
            ("spec.toml".to_string(), SPEC.as_bytes().to_vec()),
            ("prices.csv".to_string(), ohlc_csv().into_bytes()),
        ]);
        Case {
            name,
            files,
            dirs: Vec::new(),
            args: vec!["run".into(), "spec.toml".into()],
            expect: Vec::new(),
            absent: Vec::new(),
        }
    }

    fn file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Case {
        self.files.insert(path.to_string(), contents.into());
        self
    }

    fn spec(self, text: String) -> Case {
        self.file("spec.toml", text)
    }

    fn data(self, text: String) -> Case {
        self.file("prices.csv", text)
    }

    fn without(mut self, path: &str) -> Case {
        assert!(self.files.remove(path).is_some(), "case {}: no input {path} to remove", self.name);
        self
    }

    fn dir(mut self, path: &'static str) -> Case {
        self.dirs.push(path);
        self
    }

    /// Appends arguments to `run spec.toml`.
    fn args(mut self, args: &[&str]) -> Case {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Replaces the whole argument list.
    fn argv(mut self, args: &[&str]) -> Case {
        self.args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    fn expect(mut self, substrings: &[&'static str]) -> Case {
        self.expect.extend_from_slice(substrings);
        self
    }

    fn absent(mut self, substrings: &[&'static str]) -> Case {
        self.absent.extend_from_slice(substrings);
        self
    }

    /// The momentum baseline: `MOMENTUM_SPEC` over a wide file of `MOMENTUM_ASSETS`.
    fn momentum(self, edits: &[(&str, &str)]) -> Case {
        self.spec(momentum_spec_with(edits)).data(wide_csv(&MOMENTUM_ASSETS))
    }
}

/// The momentum baseline spec, over the closes of `MOMENTUM_ASSETS` (60 weekdays).
const MOMENTUM_SPEC: &str = r#"[data]
path = "prices.csv"

[strategy]
name = "momentum_taa"

[grid]
lookback = [5, 10, 15]
top_n = [1, 2, 3, 4]

[output]
path = "out/results.csv"
"#;

/// The assets of the momentum baseline.
const MOMENTUM_ASSETS: [&str; 4] = ["AAA", "BBB", "CCC", "DDD"];

/// The momentum baseline spec with each `(old, new)` replacement applied.
fn momentum_spec_with(edits: &[(&str, &str)]) -> String {
    let mut text = MOMENTUM_SPEC.to_string();
    for (old, new) in edits {
        assert!(text.contains(old), "the momentum spec has no `{old}` to replace");
        text = text.replacen(old, new, 1);
    }
    text
}

/// A `<out>.partial.json` claiming the journal for some other sweep.
const FOREIGN_META: &str =
    r#"{"fingerprint":"0000000000000000000000000000000000000000000000000000000000000000","combos":12,"format":"csv"}"#;

/// A journal as an interrupted sweep leaves it (header and one row).
fn journal() -> String {
    "combo_id,fast,slow,total_return,cagr,sharpe,sortino,volatility,max_drawdown,max_drawdown_duration,trades\n\
     0,2,10,0.01,0.02,0.3,0.4,0.1,0.05,3,2\n"
        .to_string()
}

fn cases() -> Vec<Case> {
    vec![
        // --- price data ------------------------------------------------------------------
        Case::new("csv row with an extra field").data(ohlc_edited(|cells| cells[14].push("7".into()))).expect(&[
            "prices.csv:15:",
            "expected 6 fields",
            "found 7",
        ]),
        Case::new("csv row with a missing field")
            .data(ohlc_edited(|cells| {
                cells[ROWS].pop();
            }))
            .expect(&["prices.csv:61:", "expected 6 fields", "found 5"]),
        Case::new("date that is not a date").data(ohlc_with_cell(5, "Date", "2021/01/08")).expect(&[
            "prices.csv:5:",
            "column `Date`",
            "`2021/01/08` is not a date",
        ]),
        Case::new("date that does not exist").data(ohlc_with_cell(8, "Date", "2021-02-30")).expect(&[
            "prices.csv:8:",
            "column `Date`",
            "`2021-02-30` is not a date",
        ]),
        Case::new("duplicate date").data(ohlc_edited(|cells| cells[3][0] = cells[2][0].clone())).expect(&[
            "prices.csv:4:",
            "column `Date`",
            "duplicate date",
            "line 3",
        ]),
        Case::new("dates out of order").data(ohlc_edited(|cells| cells.swap(8, 9))).expect(&[
            "prices.csv:10:",
            "column `Date`",
            "ascending date order",
        ]),
        Case::new("NaN close").data(ohlc_with_cell(7, "Close", "NaN")).expect(&[
            "prices.csv:7:",
            "column `Close`",
            "`NaN`",
        ]),
        Case::new("infinite close").data(ohlc_with_cell(9, "Close", "inf")).expect(&[
            "prices.csv:9:",
            "column `Close`",
            "`inf`",
        ]),
        Case::new("empty open cell").data(ohlc_with_cell(12, "Open", "")).expect(&[
            "prices.csv:12:",
            "column `Open`",
            "empty price",
        ]),
        Case::new("zero close").data(ohlc_with_cell(20, "Close", "0.00")).expect(&[
            "prices.csv:20:",
            "column `Close`",
            "positive",
            "`0.00`",
        ]),
        Case::new("negative open").data(ohlc_with_cell(30, "Open", "-101.25")).expect(&[
            "prices.csv:30:",
            "column `Open`",
            "positive",
            "`-101.25`",
        ]),
        Case::new("close that is not a number").data(ohlc_with_cell(33, "Close", "n/a")).expect(&[
            "prices.csv:33:",
            "column `Close`",
            "`n/a` is not a number",
        ]),
        Case::new("two columns named Close")
            .data(ohlc_edited(|cells| {
                for row in cells.iter_mut() {
                    let close = row[4].clone();
                    row.push(close);
                }
            }))
            .expect(&["prices.csv:1", "two columns name the same prices"]),
        Case::new("a Yahoo null row")
            .data(ohlc_with_cell(40, "Close", "null"))
            .expect(&["prices.csv:", "missing price `null`"]),
        Case::new("a date with trailing text")
            .data(ohlc_with_cell(40, "Date", "2005-01-03Tlol"))
            .expect(&["is not a date"]),
        Case::new("header without a Close column")
            .data(ohlc_edited(|cells| {
                for row in cells.iter_mut() {
                    row.remove(4);
                }
            }))
            .expect(&["needs a Close or Adj Close column"]),
        Case::new("empty data file").data(String::new()).expect(&["prices.csv", "file is empty"]),
        Case::new("data file with a header only")
            .data(ohlc_edited(|cells| cells.truncate(1)))
            .expect(&["prices.csv", "no data rows"]),
        Case::new("data file that is not UTF-8")
            .file("prices.csv", b"Date,Close\n2021-01-04,\xff\xfe\n".to_vec())
            .expect(&["prices.csv", "not UTF-8"]),
        Case::new("data file missing").without("prices.csv").expect(&[
            "prices.csv",
            "cannot read data",
            "No such file",
        ]),
        Case::new("data dir with no csv files")
            .without("prices.csv")
            .spec(spec_with(&[("path = \"prices.csv\"", "dir = \"data\"")]))
            .file("data/README.txt", "prices go here\n")
            .expect(&["data", "no .csv files"]),
        Case::new("data dir file without a Close column")
            .without("prices.csv")
            .spec(spec_with(&[("path = \"prices.csv\"", "dir = \"data\"")]))
            .file("data/AAA.csv", "Date,Open\n2021-01-04,100.00\n2021-01-05,101.00\n")
            .expect(&["AAA.csv", "Close column"]),
        Case::new("wide data with several assets and no symbol")
            .data(wide_csv(&["AAA", "BBB"]))
            .spec(spec_with(&[("name = \"sma_cross\"", "name = \"sma_cross\"\nfill = \"close\"")]))
            .expect(&["[data]", "2 assets", "symbol", "AAA, BBB"]),
        Case::new("symbol not in the data")
            .data(wide_csv(&["AAA", "BBB"]))
            .spec(spec_with(&[
                ("path = \"prices.csv\"", "path = \"prices.csv\"\nsymbol = \"CCC\""),
                ("name = \"sma_cross\"", "name = \"sma_cross\"\nfill = \"close\""),
            ]))
            .expect(&["[data] symbol", "`CCC` is not in the data"]),
        // --- symbol grid key --------------------------------------------------------------
        Case::new("symbol grid key naming a symbol not in the data")
            .data(wide_csv(&["AAA", "BBB"]))
            .spec(spec_with(&[
                ("name = \"sma_cross\"", "name = \"sma_cross\"\nfill = \"close\""),
                ("[grid]", "[grid]\nsymbol = [\"AAA\", \"ZZZ\"]"),
            ]))
            .expect(&["spec.toml", "[grid] symbol", "`ZZZ` is not in the data", "AAA, BBB"]),
        Case::new("symbol set to a symbol not in the data")
            .data(wide_csv(&["AAA", "BBB"]))
            .spec(spec_with(&[("name = \"sma_cross\"", "name = \"sma_cross\"\nfill = \"close\"")]))
            .args(&["--set", "grid.symbol=[\"QQQ\"]"])
            .expect(&["--set grid.symbol", "`QQQ` is not in the data", "AAA, BBB"]),
        Case::new("symbol grid key with momentum_taa")
            .momentum(&[("top_n = [1, 2, 3, 4]", "top_n = [1, 2]\nsymbol = \"*\"")])
            .expect(&["[grid] symbol", "momentum_taa", "single-asset", "sma_cross"]),
        Case::new("symbol grid key with [data] symbol")
            .data(wide_csv(&["AAA", "BBB"]))
            .spec(spec_with(&[
                ("path = \"prices.csv\"", "path = \"prices.csv\"\nsymbol = \"AAA\""),
                ("name = \"sma_cross\"", "name = \"sma_cross\"\nfill = \"close\""),
                ("[grid]", "[grid]\nsymbol = \"*\""),
            ]))
            .expect(&["[grid] symbol", "[data] symbol = \"AAA\"", "remove one"]),
        Case::new("empty symbol list")
            .data(wide_csv(&["AAA", "BBB"]))
            .spec(spec_with(&[
                ("name = \"sma_cross\"", "name = \"sma_cross\"\nfill = \"close\""),
                ("[grid]", "[grid]\nsymbol = []"),
            ]))
            .expect(&["[grid] symbol", "the list is empty", "\"*\""]),
        Case::new("where ordering symbols")
            .data(wide_csv(&["AAA", "BBB"]))
            .spec(spec_with(&[
                ("name = \"sma_cross\"", "name = \"sma_cross\"\nfill = \"close\""),
                ("[grid]", "[grid]\nsymbol = \"*\""),
                ("where = \"fast < slow\"", "where = \"fast < slow and symbol < 'B'\""),
            ]))
            .expect(&["[grid] where", "`<`", "texts compare only with == and !="]),
        Case::new("--group-by a column that is not a grid key").args(&["--group-by", "sharpe"]).expect(&[
            "--group-by",
            "`sharpe` is not a grid key",
            "fast, slow",
        ]),
        Case::new("--sort-by symbol")
            .data(wide_csv(&["AAA", "BBB"]))
            .spec(spec_with(&[
                ("name = \"sma_cross\"", "name = \"sma_cross\"\nfill = \"close\""),
                ("[grid]", "[grid]\nsymbol = \"*\""),
            ]))
            .args(&["--sort-by", "symbol"])
            .expect(&["--sort-by", "`symbol` is text", "--group-by symbol"]),
        Case::new("fill = open on closes-only data").data(wide_csv(&["AAA"])).expect(&[
            "spec.toml",
            "fill = \"open\"",
            "Open column",
        ]),
        // --- spec file -------------------------------------------------------------------
        Case::new("spec file missing").without("spec.toml").expect(&[
            "spec.toml",
            "cannot read the spec",
            "No such file",
        ]),
        Case::new("invalid TOML syntax")
            .spec(spec_with(&[("name = \"sma_cross\"", "name = sma_cross")]))
            .expect(&["spec.toml:5:", "invalid TOML"]),
        Case::new("unknown top-level section")
            .spec(SPEC.to_string() + "\n[report]\ntop = 5\n")
            .expect(&["spec.toml", "unknown section `report`"]),
        Case::new("missing [data] section")
            .spec(spec_with(&[("[data]\npath = \"prices.csv\"\n", "")]))
            .expect(&["spec.toml", "missing section [data]"]),
        Case::new("unknown key in [data]")
            .spec(spec_with(&[("path = \"prices.csv\"", "file = \"prices.csv\"")]))
            .expect(&["[data] unknown key `file`"]),
        Case::new("[data] with both path and dir")
            .spec(spec_with(&[("path = \"prices.csv\"", "path = \"prices.csv\"\ndir = \".\"")]))
            .expect(&["[data]", "both `path` and `dir`"]),
        Case::new("unknown key in [strategy]")
            .spec(spec_with(&[("name = \"sma_cross\"", "name = \"sma_cross\"\nwindow = 5")]))
            .expect(&["[strategy] unknown key `window`"]),
        Case::new("unknown strategy name")
            .spec(spec_with(&[("name = \"sma_cross\"", "name = \"rsi_revert\"")]))
            .expect(&["[strategy] name", "unknown strategy `rsi_revert`", "sma_cross"]),
        Case::new("missing strategy name")
            .spec(spec_with(&[("name = \"sma_cross\"", "direction = \"long\"")]))
            .expect(&["[strategy] missing key `name`"]),
        Case::new("bad direction value")
            .spec(spec_with(&[("name = \"sma_cross\"", "name = \"sma_cross\"\ndirection = \"short\"")]))
            .expect(&["[strategy] direction", "\"short\"", "long_short"]),
        Case::new("bad fill value")
            .spec(spec_with(&[("name = \"sma_cross\"", "name = \"sma_cross\"\nfill = \"midday\"")]))
            .expect(&["[strategy] fill", "\"midday\""]),
        Case::new("fee out of range")
            .spec(spec_with(&[("name = \"sma_cross\"", "name = \"sma_cross\"\nfee = 1.5")]))
            .expect(&["[strategy] fee", "1.5"]),
        Case::new("negative fee")
            .spec(spec_with(&[("name = \"sma_cross\"", "name = \"sma_cross\"\nfee = -0.001")]))
            .expect(&["[strategy] fee", "-0.001"]),
        Case::new("fee that is not a number")
            .spec(spec_with(&[("name = \"sma_cross\"", "name = \"sma_cross\"\nfee = \"low\"")]))
            .expect(&["[strategy] fee", "expected a number"]),
        Case::new("missing [grid] key")
            .spec(spec_with(&[("slow = { from = 10, to = 20, step = 5 }\n", "")]))
            .expect(&["[grid] missing key `slow`"]),
        Case::new("unknown [grid] key")
            .spec(spec_with(&[("where =", "medium = 7\nwhere =")]))
            .expect(&["[grid] unknown key `medium`"]),
        Case::new("grid range with step 0")
            .spec(spec_with(&[("fast = { from = 2, to = 5 }", "fast = { from = 2, to = 5, step = 0 }")]))
            .expect(&["[grid] fast", "step must be a positive number", "got 0"]),
        Case::new("grid range with from > to")
            .spec(spec_with(&[("slow = { from = 10, to = 20, step = 5 }", "slow = { from = 20, to = 10, step = 5 }")]))
            .expect(&["[grid] slow", "from (20) is greater than to (10)"]),
        Case::new("grid range without to")
            .spec(spec_with(&[("fast = { from = 2, to = 5 }", "fast = { from = 2 }")]))
            .expect(&["[grid] fast", "needs `to`"]),
        Case::new("empty grid list")
            .spec(spec_with(&[("slow = { from = 10, to = 20, step = 5 }", "slow = []")]))
            .expect(&["[grid] slow", "the list is empty"]),
        Case::new("duplicate value in a grid list")
            .spec(spec_with(&[("slow = { from = 10, to = 20, step = 5 }", "slow = [10, 15, 10]")]))
            .expect(&["[grid] slow", "duplicate value 10"]),
        Case::new("window of 0")
            .spec(spec_with(&[("fast = { from = 2, to = 5 }", "fast = { from = 0, to = 5 }")]))
            .expect(&["[grid] fast", "from", "integer >= 1", "got 0"]),
        Case::new("fractional window")
            .spec(spec_with(&[("fast = { from = 2, to = 5 }", "fast = 2.5")]))
            .expect(&["[grid] fast", "2.5"]),
        Case::new("where that removes every combo (empty grid)")
            .spec(spec_with(&[("where = \"fast < slow\"", "where = \"fast > slow\"")]))
            .expect(&["[grid] where", "leaves no combination"]),
        Case::new("where with an unknown name")
            .spec(spec_with(&[("where = \"fast < slow\"", "where = \"fast < medium\"")]))
            .expect(&["[grid] where", "unknown name `medium`"]),
        Case::new("where with a syntax error")
            .spec(spec_with(&[("where = \"fast < slow\"", "where = \"fast = slow\"")]))
            .expect(&["[grid] where", "`=`"]),
        Case::new("where that is not a string")
            .spec(spec_with(&[("where = \"fast < slow\"", "where = true")]))
            .expect(&["[grid] where", "expected a string"]),
        Case::new("fast >= slow everywhere, no where")
            .spec(spec_with(&[
                ("fast = { from = 2, to = 5 }", "fast = { from = 20, to = 30 }"),
                ("slow = { from = 10, to = 20, step = 5 }", "slow = { from = 5, to = 10 }"),
                ("where = \"fast < slow\"\n", ""),
            ]))
            .expect(&["[grid]", "fast < slow", "fast = 20, slow = 5"]),
        Case::new("fast >= slow in one combo, no where")
            .spec(spec_with(&[
                ("fast = { from = 2, to = 5 }", "fast = [5, 15]"),
                ("slow = { from = 10, to = 20, step = 5 }", "slow = [10]"),
                ("where = \"fast < slow\"\n", ""),
            ]))
            .expect(&["[grid]", "fast < slow", "fast = 15, slow = 10"]),
        Case::new("window longer than the data")
            .spec(spec_with(&[("slow = { from = 10, to = 20, step = 5 }", "slow = [10, 100]")]))
            .expect(&["[grid] slow", "100", "2..=60", "60 bars"]),
        Case::new("window of 2^32 bars")
            .spec(spec_with(&[("fast = { from = 2, to = 5 }", "fast = [2, 4294967296]")]))
            .expect(&["[grid] fast", "4294967296", "1..=60"]),
        Case::new("custom where that admits fast >= slow")
            .spec(spec_with(&[
                ("slow = { from = 10, to = 20, step = 5 }", "slow = [3, 10]"),
                ("where = \"fast < slow\"", "where = \"slow > 2\""),
            ]))
            .expect(&["[grid] where", "\"slow > 2\"", "admits", "fast >= slow", "fast = 3, slow = 3"])
            .absent(&["add where"]),
        // --- momentum_taa ----------------------------------------------------------------
        Case::new("momentum lookback of 2^32")
            .momentum(&[("lookback = [5, 10, 15]", "lookback = [5, 4294967296]")])
            .expect(&["[grid] lookback", "4294967296", "1..=60"]),
        Case::new("momentum lookback longer than the data")
            .momentum(&[("lookback = [5, 10, 15]", "lookback = { from = 50, to = 70, step = 10 }")])
            .expect(&["[grid] lookback", "70", "1..=60", "sim weekdays"]),
        Case::new("momentum top_n of 2^32").momentum(&[("top_n = [1, 2, 3, 4]", "top_n = 4294967296")]).expect(&[
            "[grid] top_n",
            "4294967296",
            "1..=4",
        ]),
        Case::new("momentum start date with trailing text")
            .momentum(&[("name = \"momentum_taa\"", "name = \"momentum_taa\"\nstart = \"2021-01-11Tlol\"")])
            .expect(&["start", "2021-01-11Tlol"]),
        Case::new("momentum start time of day out of range")
            .momentum(&[("name = \"momentum_taa\"", "name = \"momentum_taa\"\nstart = \"2021-01-11T99:99:99Z\"")])
            .expect(&["start", "T99:99:99Z"]),
        Case::new("momentum top_n larger than the universe")
            .momentum(&[("top_n = [1, 2, 3, 4]", "top_n = [1, 5]")])
            .expect(&["[grid] top_n", "5", "1..=4", "4 assets"]),
        Case::new("momentum end after the last data row")
            .momentum(&[("name = \"momentum_taa\"", "name = \"momentum_taa\"\nend = \"2098-01-02\"")])
            .expect(&["[strategy] end", "2098-01-02", "last data row"]),
        Case::new("momentum fee_pct of 0.5")
            .momentum(&[("name = \"momentum_taa\"", "name = \"momentum_taa\"\nfee_pct = 0.5")])
            .expect(&["[strategy] fee_pct", "0.5", "[0, 0.1]"]),
        Case::new("momentum tax_pct above the bound")
            .momentum(&[("name = \"momentum_taa\"", "name = \"momentum_taa\"\ntax_pct = 0.2")])
            .expect(&["[strategy] tax_pct", "0.2", "[0, 0.1]"]),
        Case::new("--set a momentum top_n beyond the universe")
            .momentum(&[])
            .args(&["--set", "grid.top_n=9"])
            .expect(&["--set grid.top_n=9:", "[grid] top_n", "1..=4"])
            .absent(&["spec.toml"]),
        // --- output location -------------------------------------------------------------
        Case::new("no output path anywhere")
            .spec(spec_with(&[("\n[output]\npath = \"out/results.csv\"\n", "")]))
            .expect(&["spec.toml", "no output path", "--out"]),
        Case::new("[output] path with an unknown extension")
            .spec(spec_with(&[("out/results.csv", "out/results.txt")]))
            .expect(&["[output] path", "results.txt", ".csv or .jsonl"]),
        Case::new("empty [output] path")
            .spec(spec_with(&[("path = \"out/results.csv\"", "path = \"\"")]))
            .expect(&["[output] path", "must not be empty"]),
        Case::new("--out with an unknown extension").args(&["--out", "results.txt"]).expect(&[
            "--out",
            "results.txt",
            ".csv or .jsonl",
        ]),
        Case::new("output under an existing file")
            .spec(spec_with(&[("out/results.csv", "prices.csv/results.csv")]))
            .expect(&["prices.csv/results.csv", "not a directory"]),
        Case::new("--out under an existing file, several levels deep")
            .args(&["--out", "prices.csv/a/b/results.csv"])
            .expect(&["prices.csv/a/b/results.csv", "not a directory"]),
        Case::new("--out in an unwritable place (/proc)")
            .args(&["--out", "/proc/sweeprun-bad-input/results.csv"])
            .expect(&["/proc/sweeprun-bad-input/results.csv", "cannot write"]),
        Case::new("--out is an existing directory")
            .dir("taken.csv")
            .args(&["--out", "taken.csv"])
            .expect(&["taken.csv", "is a directory"]),
        Case::new("--out is the input data file").args(&["--out", "prices.csv"]).expect(&["prices.csv", "data"]),
        Case::new("[output] path ending in /")
            .spec(spec_with(&[("path = \"out/results.csv\"", "path = \"out/results.csv/\"")]))
            .expect(&["[output] path", "out/results.csv/", "ends with `/`"]),
        Case::new("--out ending in /").args(&["--out", "res.csv/"]).expect(&["--out res.csv/", "ends with `/`"]),
        // An output whose journal, sidecar or tearsheets would replace or fill an input.
        Case::new("data named like the output's .partial.json")
            .without("prices.csv")
            .file("r.csv.partial.json", ohlc_csv())
            .spec(spec_with(&[("prices.csv", "r.csv.partial.json"), ("out/results.csv", "r.csv")]))
            .expect(&["output", "r.csv.partial.json", "input data"]),
        Case::new("data named like the output's .partial.table")
            .without("prices.csv")
            .file("r.csv.partial.table", ohlc_csv())
            .spec(spec_with(&[("prices.csv", "r.csv.partial.table"), ("out/results.csv", "r.csv")]))
            .expect(&["output", "r.csv.partial.table", "input data"]),
        Case::new("data named like the output's .partial.blocks")
            .without("prices.csv")
            .file("r.csv.partial.blocks", ohlc_csv())
            .spec(spec_with(&[("prices.csv", "r.csv.partial.blocks"), ("out/results.csv", "r.csv")]))
            .expect(&["output", "r.csv.partial.blocks", "input data"]),
        Case::new("data named like the output's report")
            .without("prices.csv")
            .file("r.csv.report.html", ohlc_csv())
            .spec(spec_with(&[("prices.csv", "r.csv.report.html"), ("out/results.csv", "r.csv")]))
            .expect(&["output", "r.csv.report.html", "input data"]),
        Case::new("data named like the output's sidecar, via --out")
            .without("prices.csv")
            .file("r.csv.meta.json", ohlc_csv())
            .spec(spec_with(&[("prices.csv", "r.csv.meta.json")]))
            .args(&["--out", "r.csv"])
            .expect(&["r.csv.meta.json", "input data"]),
        Case::new("data dir named like the output's tearsheets dir")
            .without("prices.csv")
            .file("r.csv.tearsheets/AAA.csv", ohlc_csv())
            .spec(spec_with(&[("path = \"prices.csv\"", "dir = \"r.csv.tearsheets\""), ("out/results.csv", "r.csv")]))
            .args(&["--tearsheet", "top:1"])
            .expect(&["output", "r.csv.tearsheets", "input data"]),
        Case::new("spec that is its own output")
            .without("spec.toml")
            .file("s.csv", spec_with(&[("out/results.csv", "s.csv")]))
            .argv(&["run", "s.csv"])
            .expect(&["output", "s.csv", "input spec"]),
        Case::new("journal of an interrupted sweep, no --resume")
            .file("out/results.csv.partial", journal())
            .expect(&["results.csv.partial", "--resume"]),
        Case::new("--resume with a journal but no fingerprint")
            .file("out/results.csv.partial", journal())
            .args(&["--resume"])
            .expect(&["results.csv.partial.json", "missing or unreadable"]),
        Case::new("--resume with a journal of a different sweep")
            .file("out/results.csv.partial", journal())
            .file("out/results.csv.partial.json", FOREIGN_META)
            .args(&["--resume"])
            .expect(&["results.csv.partial", "different sweep"]),
        // --- command line ----------------------------------------------------------------
        Case::new("-np 0").args(&["-np", "0"]).expect(&["-np", "at least 1", "got 0"]),
        Case::new("--np abc").args(&["--np", "abc"]).expect(&["--np", "'abc'"]),
        Case::new("-np without a value").args(&["-np"]).expect(&["--np", "value is required"]),
        Case::new("-np negative").args(&["-np", "-2"]).expect(&["-2"]),
        Case::new("unknown flag").args(&["--turbo"]).expect(&["unexpected argument '--turbo'"]),
        Case::new("--set without =").args(&["--set", "strategy.fee"]).expect(&["--set strategy.fee", "key.path=value"]),
        Case::new("--set with an undotted key").args(&["--set", "fee=0.1"]).expect(&["--set fee=0.1", "dotted key"]),
        Case::new("--set an out-of-range value")
            .args(&["--set", "strategy.fee=2"])
            .expect(&["--set strategy.fee=2:", "[strategy] fee", "got 2"])
            .absent(&["spec.toml"]),
        Case::new("--set an unknown spec key")
            .args(&["--set", "strategy.windw=5"])
            .expect(&["--set strategy.windw=5:", "[strategy] unknown key `windw`"])
            .absent(&["spec.toml"]),
        Case::new("--equity past the last combo").args(&["--equity", "12"]).expect(&["--equity", "combo 12", "0..=11"]),
        Case::new("unknown flag close to a real one")
            .args(&["--outt", "x.csv"])
            .expect(&["unexpected argument '--outt'", "did you mean '--out'?"]),
        Case::new("more ranks than CPUs with a bad input: no warning first")
            .args(&["-np", "16", "--sort-by", "profit"])
            .expect(&["--sort-by", "unknown metric `profit`"])
            .absent(&["oversubscribed"]),
        Case::new("spec larger than 1 MiB")
            .spec(SPEC.to_string() + &format!("# {}\n", "x".repeat(1 << 20)))
            .expect(&["spec.toml", "larger than 1 MiB"]),
        Case::new("--sort-by an unknown metric").args(&["--sort-by", "profit"]).expect(&[
            "--sort-by",
            "unknown metric `profit`",
            "sharpe",
        ]),
        // The default build has no MPI (the MPI tests build their own binary with it).
        Case::new("--backend mpi without the mpi feature").args(&["--backend", "mpi"]).expect(&[
            "--backend mpi",
            "built without MPI support",
            "--features mpi",
        ]),
        Case::new("--backend unknown").args(&["--backend", "k8s"]).expect(&["--backend", "'k8s'", "local, mpi"]),
        Case::new("--bind-to unknown").args(&["--bind-to", "socket"]).expect(&["--bind-to", "'socket'"]),
        Case::new("--chunk-size 0").args(&["--chunk-size", "0"]).expect(&["--chunk-size", "at least 1"]),
        Case::new("--top not a number").args(&["--top", "ten"]).expect(&["--top", "'ten'"]),
        Case::new("run without a spec").argv(&["run"]).expect(&["SPEC"]),
        Case::new("no subcommand").argv(&[]).expect(&["subcommand"]),
        Case::new("unknown subcommand").argv(&["sweep", "spec.toml"]).expect(&["subcommand 'sweep'"]),
    ]
}

// ---------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------

/// What is at one path of the temp dir.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir,
    File(Vec<u8>),
    Other,
}

/// Every path under `root` (relative), recursively, with its contents.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            let relative = path.strip_prefix(root).expect("under the root").to_path_buf();
            let kind = std::fs::symlink_metadata(&path).expect("metadata").file_type();
            if kind.is_dir() {
                out.insert(relative, Entry::Dir);
                walk(root, &path, out);
            } else if kind.is_file() {
                out.insert(relative, Entry::File(std::fs::read(&path).expect("read file")));
            } else {
                out.insert(relative, Entry::Other);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// How the temp dir changed: created, removed and modified paths.
fn changes(before: &BTreeMap<PathBuf, Entry>, after: &BTreeMap<PathBuf, Entry>) -> Vec<String> {
    let paths: BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
    paths
        .into_iter()
        .filter_map(|path| match (before.get(path), after.get(path)) {
            (None, Some(_)) => Some(format!("created {}", path.display())),
            (Some(_), None) => Some(format!("removed {}", path.display())),
            (Some(a), Some(b)) if a != b => Some(format!("modified {}", path.display())),
            _ => None,
        })
        .collect()
}

/// Writes the case's inputs into a fresh temp dir.
fn prepare(case: &Case) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in &case.dirs {
        std::fs::create_dir_all(dir.path().join(sub)).expect("create input dir");
    }
    for (path, contents) in &case.files {
        let path = dir.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create input parent");
        }
        std::fs::write(&path, contents).expect("write input");
    }
    dir
}

/// Runs one case; `Err` describes every way it broke the contract.
fn check(case: &Case) -> Result<(), String> {
    let dir = prepare(case);
    let before = snapshot(dir.path());
    let output = output_of(sweeprun(dir.path()).args(&case.args));
    let after = snapshot(dir.path());

    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut problems = Vec::new();
    if output.status.code() != Some(2) {
        problems.push(format!("exit code {:?} ({}), expected 2", output.status.code(), output.status));
    }
    let lines: Vec<&str> = stderr.lines().collect();
    match lines.as_slice() {
        [line] if line.strip_prefix("sweeprun: ").is_some_and(|m| !m.trim().is_empty()) => {
            for want in &case.expect {
                if !line.contains(want) {
                    problems.push(format!("the stderr line does not name the problem: no `{want}` in it"));
                }
            }
            for unwanted in &case.absent {
                if line.contains(unwanted) {
                    problems.push(format!("the stderr line says `{unwanted}`, which it must not"));
                }
            }
        }
        _ => problems.push(format!("stderr has {} lines; expected exactly one `sweeprun: ...` line", lines.len())),
    }
    if !stdout.is_empty() {
        problems.push("stdout is not empty".to_string());
    }
    problems.extend(changes(&before, &after).into_iter().map(|c| format!("the run {c}")));

    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "case `{}`: sweeprun {}\n    - {}\n    stderr: {stderr:?}\n    stdout: {stdout:?}",
        case.name,
        case.args.join(" "),
        problems.join("\n    - ")
    ))
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn every_bad_input_exits_2_with_one_line_and_writes_nothing() {
    let cases = cases();
    let failures: Vec<String> = cases.iter().filter_map(|case| check(case).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} bad-input cases broke the contract (exit 2, one stderr line naming the problem, \
         empty stdout, no file written):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_table_covers_at_least_20_distinct_cases() {
    let cases = cases();
    assert!(cases.len() >= 20, "only {} cases", cases.len());
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    for case in &cases {
        assert!(!case.expect.is_empty(), "case `{}` checks nothing about the message", case.name);
    }
}

/// The unbroken inputs succeed, so each case fails for the one thing it breaks.
#[test]
fn baseline_inputs_run_cleanly() {
    assert_eq!(ohlc_csv().lines().count(), ROWS + 1, "the baseline data: a header and ROWS rows");
    let baselines = [
        Case::new("OHLC baseline"),
        Case::new("closes-only baseline with fill = close")
            .data(wide_csv(&["AAA"]))
            .spec(spec_with(&[("name = \"sma_cross\"", "name = \"sma_cross\"\nfill = \"close\"")])),
        Case::new("momentum baseline").momentum(&[]),
        Case::new("wide baseline with a symbol").data(wide_csv(&["AAA", "BBB"])).spec(spec_with(&[
            ("path = \"prices.csv\"", "path = \"prices.csv\"\nsymbol = \"BBB\""),
            ("name = \"sma_cross\"", "name = \"sma_cross\"\nfill = \"close\""),
        ])),
    ];
    for case in baselines {
        let dir = prepare(&case);
        let output = output_of(sweeprun(dir.path()).args(&case.args).args(["-np", "1"]));
        assert!(
            output.status.success(),
            "{}: exit {:?}: {}",
            case.name,
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
        let table = std::fs::read_to_string(dir.path().join("out/results.csv")).expect("results table");
        assert_eq!(table.lines().count(), BASELINE_COMBOS + 1, "{}: header + one row per combo", case.name);
    }
}
