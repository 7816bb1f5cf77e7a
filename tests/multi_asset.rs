//! A `symbol` grid key sweeps one strategy across many assets in one run: the shipped
//! 20-stock file over the canonical SMA grid equals 20 single-asset sweeps cell for cell,
//! and the symbol column works in `--set`, `where`, `--group-by` and `--sort-by`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use sweeprun_tests::{output_of, read_csv, sweeprun, workspace_root, write_spec};

/// The 20 tickers of the shipped file, in column order.
const TICKERS: [&str; 20] = [
    "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK", "MSFT", "PEP", "PFE", "PG",
    "RRC", "UNH", "WMT", "XOM",
];

/// Combos of the canonical SMA grid (fast 5..=100, slow 10..=250 step 5, fast < slow).
const CANONICAL: usize = 3830;

fn sp20() -> PathBuf {
    workspace_root().join("examples/data/sp500_20stocks_adjclose_daily.csv")
}

/// A spec over the 20-stock file with the canonical grid; `data_extra` goes into `[data]`,
/// `grid_extra` into `[grid]`.
fn spec(data_extra: &str, grid_extra: &str) -> String {
    format!(
        "[data]\npath = \"{}\"\n{data_extra}\n\n[strategy]\nname = \"sma_cross\"\nfill = \"close\"\n\n[grid]\n{grid_extra}\n\
         fast = {{ from = 5, to = 100, step = 1 }}\nslow = {{ from = 10, to = 250, step = 5 }}\nwhere = \"fast < slow\"\n",
        sp20().display()
    )
}

/// Runs `sweeprun run spec args...`, asserts success, returns stdout.
fn run(dir: &Path, spec: &Path, args: &[&str]) -> String {
    let out = output_of(sweeprun(dir).arg("run").arg(spec).args(args));
    assert!(out.status.success(), "sweeprun {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The summary's data rows (after the title and header lines), split on whitespace.
/// The ranked rows of a summary (not its title, header and closing overfitting lines).
fn summary_rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .skip(2)
        .filter(|l| !l.starts_with("overfitting"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn every_symbol_in_one_sweep_equals_twenty_single_asset_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let multi = write_spec(dir.path(), "multi.toml", &spec("", "symbol = \"*\""));
    run(dir.path(), &multi, &["--out", "multi.csv", "--top", "0"]);
    let (header, rows) = read_csv(&dir.path().join("multi.csv"));
    assert_eq!(header[..4], ["combo_id", "symbol", "fast", "slow"]);
    assert_eq!(rows.len(), TICKERS.len() * CANONICAL);
    // Symbols are the outermost axis, in the file's column order.
    for (block, ticker) in rows.chunks(CANONICAL).zip(TICKERS) {
        assert!(block.iter().all(|row| row[1] == ticker), "block of {ticker}");
    }
    // (symbol, fast, slow) -> the metric cells, as written.
    let multi: BTreeMap<(String, String, String), Vec<String>> =
        rows.into_iter().map(|row| ((row[1].clone(), row[2].clone(), row[3].clone()), row[4..].to_vec())).collect();
    assert_eq!(multi.len(), TICKERS.len() * CANONICAL, "every (symbol, fast, slow) once");

    for ticker in TICKERS {
        let single = write_spec(dir.path(), "single.toml", &spec(&format!("symbol = \"{ticker}\""), ""));
        run(dir.path(), &single, &["--out", "single.csv", "--top", "0"]);
        let (single_header, single_rows) = read_csv(&dir.path().join("single.csv"));
        assert_eq!(single_header[3..], header[4..], "same metric columns");
        assert_eq!(single_rows.len(), CANONICAL);
        for row in single_rows {
            let key = (ticker.to_string(), row[1].clone(), row[2].clone());
            assert_eq!(multi[&key], row[3..], "{key:?}: metric cells differ");
        }
    }
}

#[test]
fn top_k_per_symbol_set_where_and_sort_by_work_with_the_symbol_column() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = write_spec(dir.path(), "multi.toml", &spec("", "symbol = \"*\""));
    let chosen = ["MSFT", "GE", "AAPL"];
    let grouped = run(
        dir.path(),
        &spec_path,
        &[
            "--out",
            "chosen.csv",
            "--set",
            "grid.symbol=[\"MSFT\", \"GE\", \"AAPL\"]",
            "--top",
            "3",
            "--group-by",
            "symbol",
            "--sort-by",
            "max_drawdown",
        ],
    );
    assert!(grouped.starts_with("top 3 per symbol of 11490 by max_drawdown:\n"), "{grouped}");
    let rows = summary_rows(&grouped);
    // 3 rows per symbol, symbols in grid (listed) order, ranks 1..3 within each.
    let symbols: Vec<&str> = rows.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(symbols, ["MSFT", "MSFT", "MSFT", "GE", "GE", "GE", "AAPL", "AAPL", "AAPL"]);
    let ranks: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ranks, ["1", "2", "3", "1", "2", "3", "1", "2", "3"]);
    // Each group's rows are that symbol's 3 lowest drawdowns in the table.
    let (header, table) = read_csv(&dir.path().join("chosen.csv"));
    let dd = header.iter().position(|c| c == "max_drawdown").unwrap();
    for (symbol, shown) in chosen.iter().zip(rows.chunks(3)) {
        let mut drawdowns: Vec<f64> =
            table.iter().filter(|r| r[1] == *symbol).map(|r| r[dd].parse().unwrap()).collect();
        drawdowns.sort_by(f64::total_cmp);
        let shown: Vec<f64> = shown.iter().map(|r| r[dd + 1].parse().unwrap()).collect();
        for (s, best) in shown.iter().zip(&drawdowns) {
            assert!((s - best).abs() < 1e-4, "{symbol}: shown {s}, best {best}");
        }
    }
    // Without --group-by: top 3 overall.
    let overall =
        run(dir.path(), &spec_path, &["--out", "all.csv", "--set", "grid.symbol=[\"GE\", \"KO\"]", "--top", "3"]);
    assert!(overall.starts_with("top 3 of 7660 by sharpe:\n"), "{overall}");
    assert_eq!(summary_rows(&overall).len(), 3);

    // `where` compares the symbol with a string.
    let filtered = write_spec(
        dir.path(),
        "filtered.toml",
        &spec("", "symbol = [\"GE\", \"KO\", \"PG\"]")
            .replace("where = \"fast < slow\"", "where = \"fast < slow and symbol != \\\"GE\\\"\""),
    );
    run(dir.path(), &filtered, &["--out", "filtered.csv", "--top", "0"]);
    let (_, rows) = read_csv(&dir.path().join("filtered.csv"));
    assert_eq!(rows.len(), 2 * CANONICAL);
    assert!(rows[..CANONICAL].iter().all(|r| r[1] == "KO") && rows[CANONICAL..].iter().all(|r| r[1] == "PG"));
    let ids: Vec<usize> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(ids.iter().enumerate().all(|(i, &id)| i == id), "ids renumbered after the filter");
}

#[test]
fn jsonl_ranks_and_resume_keep_the_symbol_column() {
    let dir = tempfile::tempdir().unwrap();
    let small = spec("", "symbol = [\"JNJ\", \"XOM\"]").replace("to = 100, step = 1", "to = 20, step = 1");
    let spec_path = write_spec(dir.path(), "small.toml", &small);
    run(dir.path(), &spec_path, &["--out", "one.jsonl", "-np", "1", "--top", "0"]);
    run(dir.path(), &spec_path, &["--out", "two.jsonl", "-np", "2", "--chunk-size", "7", "--top", "0"]);
    let one = std::fs::read(dir.path().join("one.jsonl")).unwrap();
    assert_eq!(one, std::fs::read(dir.path().join("two.jsonl")).unwrap(), "-np 1 and -np 2 tables differ");
    let first: serde_json::Value = serde_json::from_slice(one.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["symbol"], "JNJ");
    // A finished sweep resumed reprints the grouped summary from the table.
    let resumed =
        run(dir.path(), &spec_path, &["--out", "one.jsonl", "--resume", "--top", "1", "--group-by", "symbol"]);
    let symbols: Vec<String> = summary_rows(&resumed).into_iter().map(|r| r[2].clone()).collect();
    assert_eq!(symbols, ["JNJ", "XOM"], "{resumed}");
}
