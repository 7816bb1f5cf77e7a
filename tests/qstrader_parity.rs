//! QSTrader parity through the real CLI: the momentum tactical asset allocation sweep on
//! `tests/reference/qstrader/{synth10,etf5}` against QSTrader 0.3.0's own results:
//! every statistic, counts, and the daily equity curves and fills of the dumped combos.

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use sweeprun_tests::{output_of, read_csv, reference_dir, sweeprun, table_float, write_spec};

/// `|a - b| <= 1e-9 · max(|b|, tiny)`: the reference README's 1e-9 relative tolerance.
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * b.abs().max(1e-300)
}

fn results(folder: &Path) -> Vec<Value> {
    std::fs::read_to_string(folder.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn date_of(timestamp: &Value) -> String {
    timestamp.as_str().unwrap()[..10].to_string()
}

/// A finished sweep: its directory, the table's header, and its rows by (lookback, top_n).
struct Sweep {
    dir: tempfile::TempDir,
    header: Vec<String>,
    rows: HashMap<(u64, u64), Vec<String>>,
}

/// Runs the folder's 12-combo sweep with every combo's tearsheet.
fn run_sweep(folder: &Path, runs: &[Value]) -> Sweep {
    let first = &runs[0];
    let lookbacks: Vec<u64> = dedup(runs.iter().map(|r| r["params"]["lookback"].as_u64().unwrap()));
    let top_ns: Vec<u64> = dedup(runs.iter().map(|r| r["params"]["top_n"].as_u64().unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let spec = format!(
        "[data]\ndir = \"{}\"\n[strategy]\nname = \"momentum_taa\"\nstart = \"{}\"\nburn_in = \"{}\"\nend = \"{}\"\n\
         initial_cash = {:?}\nfee_pct = {:?}\ncash_buffer = {:?}\n[grid]\nlookback = {lookbacks:?}\ntop_n = {top_ns:?}\n\
         [output]\npath = \"table.csv\"\n",
        folder.join("data").display(),
        date_of(&first["start"]),
        date_of(&first["burn_in"]),
        date_of(&first["end"]),
        first["initial_cash"].as_f64().unwrap(),
        first["fee_pct"].as_f64().unwrap(),
        first["cash_buffer"].as_f64().unwrap(),
    );
    let spec_path = write_spec(dir.path(), "momentum.toml", &spec);
    let combos = lookbacks.len() * top_ns.len();
    let run = output_of(sweeprun(dir.path()).arg("run").arg(&spec_path).args([
        "-np",
        "2",
        "--tearsheet",
        &format!("top:{combos}"),
    ]));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let (header, rows) = read_csv(&dir.path().join("table.csv"));
    assert_eq!(rows.len(), combos);
    let rows = rows.into_iter().map(|r| ((r[1].parse().unwrap(), r[2].parse().unwrap()), r)).collect();
    Sweep { dir, header, rows }
}

fn dedup(values: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn check_folder(name: &str, expected_dumps: usize) {
    let reference = reference_dir();
    let folder = reference.join("qstrader").join(name);
    let runs = results(&folder);
    assert_eq!(runs.len(), 12);
    let Sweep { dir, header, rows: table } = run_sweep(&folder, &runs);
    let col = |c: &str| header.iter().position(|h| h == c).unwrap_or_else(|| panic!("no column {c}"));
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("table.csv.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["statistics"], "qstrader", "momentum_taa defaults to QSTrader's statistics");
    let mut failures = Vec::new();
    let mut dumps_compared = 0;
    for run in &runs {
        let (lookback, top_n) = (run["params"]["lookback"].as_u64().unwrap(), run["params"]["top_n"].as_u64().unwrap());
        let row = &table[&(lookback, top_n)];
        let stats = &run["stats"];
        let float = |c: &str| table_float(&row[col(c)]);
        let count = |c: &str| row[col(c)].parse::<u64>().unwrap();
        let mut check = |what: &str, ok: bool, got: String, want: String| {
            if !ok {
                failures.push(format!("{name} {lookback}/{top_n} {what}: got {got}, want {want}"));
            }
        };
        for (column, key) in [
            ("cagr", "cagr"),
            ("sharpe", "sharpe"),
            ("sortino", "sortino"),
            ("volatility", "annualised_vol"),
            ("max_drawdown", "max_drawdown"),
        ] {
            let want = stats[key].as_f64().unwrap();
            check(key, close(float(column), want), float(column).to_string(), want.to_string());
        }
        let want_final = run["final_equity"].as_f64().unwrap();
        check(
            "final_equity",
            close(float("final_equity"), want_final),
            float("final_equity").to_string(),
            want_final.to_string(),
        );
        for (column, want) in [
            ("max_drawdown_duration", stats["max_drawdown_duration"].as_u64().unwrap()),
            ("trades", run["n_transactions"].as_u64().unwrap()),
            ("rebalances", run["n_rebalances"].as_u64().unwrap()),
        ] {
            check(column, count(column) == want, count(column).to_string(), want.to_string());
        }

        // The tearsheet of the same combo: QSTrader's JSON layout and the dumps.
        let tag = format!("momentum_taa_lookback{lookback}_top_n{top_n}");
        let sheets = dir.path().join("table.csv.tearsheets");
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(sheets.join(format!("{tag}.json"))).unwrap()).unwrap();
        let strategy = &doc["strategy"];
        for key in ["cagr", "sharpe", "sortino", "annualised_vol", "max_drawdown", "mean_returns", "stdev_returns"] {
            let (got, want) = (strategy[key].as_f64().unwrap(), stats[key].as_f64().unwrap());
            check(&format!("tearsheet {key}"), close(got, want), got.to_string(), want.to_string());
        }
        check(
            "tearsheet max_drawdown_duration",
            strategy["max_drawdown_duration"] == stats["max_drawdown_duration"],
            strategy["max_drawdown_duration"].to_string(),
            stats["max_drawdown_duration"].to_string(),
        );
        let (_, equity_rows) = read_csv(&sheets.join(format!("{tag}.equity.csv")));
        let points = run["n_equity_points"].as_u64().unwrap() as usize;
        check("equity points", equity_rows.len() == points, equity_rows.len().to_string(), points.to_string());
        check(
            "equity_curve points in JSON",
            strategy["equity_curve"].as_array().unwrap().len() == points,
            strategy["equity_curve"].as_array().unwrap().len().to_string(),
            points.to_string(),
        );
        if let Some(dump) = run.get("dump") {
            compare_dumps(&folder, dump, &sheets, &tag, &mut failures);
            dumps_compared += 1;
        }
    }
    assert_eq!(dumps_compared, expected_dumps, "dumped combos compared");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

fn compare_dumps(folder: &Path, dump: &Value, sheets: &Path, tag: &str, failures: &mut Vec<String>) {
    let reference_file = |kind: &str| -> PathBuf {
        let path = folder.join(dump[kind].as_str().unwrap_or_else(|| panic!("{tag}: dump has no {kind}")));
        assert!(path.ends_with(format!("{tag}.{kind}.csv")), "{}", path.display());
        path
    };
    let (_, want_equity) = read_csv(&reference_file("equity"));
    let (_, got_equity) = read_csv(&sheets.join(format!("{tag}.equity.csv")));
    if want_equity.len() != got_equity.len() {
        failures.push(format!("{tag}: {} equity rows, want {}", got_equity.len(), want_equity.len()));
    }
    for (got, want) in got_equity.iter().zip(&want_equity) {
        // Equity is QSTrader's bit for bit, so its text is Python's repr of the same float.
        if got != want {
            failures.push(format!("{tag}: equity row {got:?}, want {want:?}"));
            break;
        }
    }
    let (_, want_fills) = read_csv(&reference_file("fills"));
    let (_, got_fills) = read_csv(&sheets.join(format!("{tag}.fills.csv")));
    if want_fills.len() != got_fills.len() {
        failures.push(format!("{tag}: {} fills, want {}", got_fills.len(), want_fills.len()));
    }
    for (got, want) in got_fills.iter().zip(&want_fills) {
        // Fills are QSTrader's bit for bit: the same text (Python's repr of each float).
        if got != want {
            failures.push(format!("{tag}: fill {got:?}, want {want:?}"));
            break;
        }
    }
}

#[test]
fn synth10_momentum_sweep_matches_qstrader() {
    check_folder("synth10", 1);
}

#[test]
fn etf5_momentum_sweep_matches_qstrader() {
    check_folder("etf5", 12);
}

#[test]
fn a_start_before_an_assets_first_row_is_refused() {
    let reference = reference_dir();
    let dir = tempfile::tempdir().unwrap();
    let spec = format!(
        "[data]\ndir = \"{}\"\n[strategy]\nname = \"momentum_taa\"\nstart = \"2007-12-31\"\nend = \"2010-12-31\"\n\
         [grid]\nlookback = [21]\ntop_n = [1]\n[output]\npath = \"t.csv\"\n",
        reference.join("qstrader/synth10/data").display()
    );
    let spec_path = write_spec(dir.path(), "s.toml", &spec);
    let run = output_of(sweeprun(dir.path()).arg("run").arg(&spec_path));
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("start 2007-12-31 is before SYN00's first data row (2008-01-02)"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing but the spec");
}
