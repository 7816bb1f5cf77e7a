//! A `[command]` sweep of the real QSTrader 0.3.0 momentum script
//! (`examples/qstrader/momentum_command.toml`: `examples/qstrader/momentum_taa.py` over the
//! synth10 reference data, lookback 63, 126 x top_n 1, 3) against sweeprun's own
//! `momentum_taa` on the same data and combos (`examples/momentum_synth10.toml` with the
//! grid narrowed by `--set`), and both against `tests/reference/qstrader/synth10/results.jsonl`.
//!
//! Needs the Python environment of `scripts/qstrader-venv.sh` (built from PyPI on first use,
//! ~30 s; instant afterwards). When it cannot be built the test fails and says why: it is
//! not skipped. Each QSTrader backtest costs ~9 CPU-seconds; the 4 run on 2 ranks.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use sweeprun_tests::{output_of, read_csv, reference_dir, sweeprun, table_float, venv_python, workspace_root};

const LOOKBACKS: [u64; 2] = [63, 126];
const TOP_NS: [u64; 2] = [1, 3];

/// Columns of both tables that hold the same number: (command sweep = QSTrader's name,
/// built-in `momentum_taa`, how they must agree). The names were read off both tables and
/// `examples/qstrader/check_against_reference.py`.
const SHARED: [(&str, &str, Agree); 9] = [
    ("final_equity", "final_equity", Agree::Exact),
    ("n_transactions", "trades", Agree::Exact),
    ("n_rebalances", "rebalances", Agree::Exact),
    ("max_drawdown_duration", "max_drawdown_duration", Agree::Exact),
    ("cagr", "cagr", Agree::Close),
    ("sharpe", "sharpe", Agree::Close),
    ("sortino", "sortino", Agree::Close),
    ("annualised_vol", "volatility", Agree::Close),
    ("max_drawdown", "max_drawdown", Agree::Close),
];

/// Columns of the command sweep's table the built-in table does not have (they are in its
/// tearsheets), besides the status columns.
const COMMAND_ONLY: [&str; 3] = ["mean_returns", "stdev_returns", "n_equity_points"];
/// Columns of the built-in table the script does not print.
const BUILTIN_ONLY: [&str; 1] = ["total_return"];

#[derive(Clone, Copy, PartialEq)]
enum Agree {
    /// Bit for bit: the equity path, fills and counts are QSTrader's exactly (docs/DESIGN.md,
    /// "QSTrader parity details").
    Exact,
    /// Within `STATS_RTOL` relative. The built-in statistics are computed from the same
    /// (bit-identical) equity curve but not in numpy/pandas' float operation order: CAGR and
    /// max drawdown come from equity ratios instead of `exp(cumsum(log(1+R)))`, the sums
    /// are not numpy's pairwise sums. On these combos they differ by up to ~1e-14.
    Close,
}

/// docs/DESIGN.md: CAGR and max drawdown are "within ~1e-12 of QSTrader's".
const STATS_RTOL: f64 = 1e-12;

/// A table's rows keyed by (lookback, top_n), each row a map column -> cell.
type Rows = BTreeMap<(u64, u64), BTreeMap<String, String>>;

/// A table's header and its rows by combo.
fn rows_by_combo(path: &Path) -> (Vec<String>, Rows) {
    let (header, rows) = read_csv(path);
    assert_eq!(rows.len(), LOOKBACKS.len() * TOP_NS.len(), "{}: rows", path.display());
    let mut by_combo = BTreeMap::new();
    for cells in rows {
        assert_eq!(cells.len(), header.len(), "{}: {cells:?}", path.display());
        let row: BTreeMap<String, String> = header.iter().cloned().zip(cells).collect();
        let combo = (row["lookback"].parse().unwrap(), row["top_n"].parse().unwrap());
        assert!(by_combo.insert(combo, row).is_none(), "{}: combo {combo:?} twice", path.display());
    }
    let want: BTreeSet<(u64, u64)> = LOOKBACKS.iter().flat_map(|&l| TOP_NS.iter().map(move |&n| (l, n))).collect();
    assert_eq!(by_combo.keys().copied().collect::<BTreeSet<_>>(), want, "{}: combos", path.display());
    (header, by_combo)
}

fn names(columns: &[&str]) -> BTreeSet<String> {
    columns.iter().map(|c| c.to_string()).collect()
}

#[test]
fn command_sweep_of_qstrader_matches_builtin_momentum_taa() {
    let python = venv_python();
    let bin_dir = python.parent().unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path =
        std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(std::env::split_paths(&path))).unwrap();
    let root = workspace_root();
    let dir = tempfile::tempdir().unwrap();

    // 1. The command sweep: real QSTrader, one process per combo, `python3` from the venv.
    let command_out = dir.path().join("command.csv");
    let run = output_of(
        sweeprun(&root)
            .env("PATH", &path)
            .args(["run", "examples/qstrader/momentum_command.toml", "-np", "2", "--out"])
            .arg(&command_out),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "command sweep: exit {:?}: {stderr}", run.status.code());
    let (command_header, command) = rows_by_combo(&command_out);
    for (combo, row) in &command {
        let detail = || {
            let file = command_out.parent().unwrap().join(&row["stderr"]);
            std::fs::read_to_string(&file).unwrap_or_default()
        };
        assert_eq!(row["status"], "ok", "combo {combo:?}: {row:?}\n{}", detail());
        assert_eq!((row["exit_code"].as_str(), row["stderr"].as_str()), ("0", ""), "combo {combo:?}");
    }

    // 2. sweeprun's own momentum_taa, same data (examples/data/synth10 is a copy of the
    //    reference data; the files are compared below), dates and combos.
    let builtin_out = dir.path().join("builtin.csv");
    let grid = |values: &[u64]| format!("{values:?}");
    let run = output_of(
        sweeprun(&root)
            .args(["run", "examples/momentum_synth10.toml", "-np", "2", "--stats", "qstrader", "--out"])
            .arg(&builtin_out)
            .arg("--set")
            .arg(format!("grid.lookback={}", grid(&LOOKBACKS)))
            .arg("--set")
            .arg(format!("grid.top_n={}", grid(&TOP_NS))),
    );
    assert!(run.status.success(), "built-in sweep: {}", String::from_utf8_lossy(&run.stderr));
    let (builtin_header, builtin) = rows_by_combo(&builtin_out);
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("builtin.csv.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["statistics"], "qstrader");

    // The two sweeps read the same bytes: the script reads tests/reference/qstrader/synth10/data.
    for entry in std::fs::read_dir(reference_dir().join("qstrader/synth10/data")).unwrap() {
        let entry = entry.unwrap();
        let copy = root.join("examples/data/synth10").join(entry.file_name());
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            std::fs::read(&copy).unwrap_or_else(|e| panic!("{}: {e}", copy.display())),
            "{} differs from the reference data",
            copy.display()
        );
    }

    // Every numeric column is accounted for: compared, or known to exist on one side only.
    let status = ["combo_id", "lookback", "top_n", "status", "exit_code", "stderr"];
    let mut want_command = names(&status);
    want_command.extend(SHARED.iter().map(|s| s.0.to_string()));
    want_command.extend(names(&COMMAND_ONLY));
    assert_eq!(command_header.iter().cloned().collect::<BTreeSet<_>>(), want_command, "command sweep columns");
    let mut want_builtin = names(&["combo_id", "lookback", "top_n"]);
    want_builtin.extend(SHARED.iter().map(|s| s.1.to_string()));
    want_builtin.extend(names(&BUILTIN_ONLY));
    assert_eq!(builtin_header.iter().cloned().collect::<BTreeSet<_>>(), want_builtin, "built-in columns");

    // 3. Combo by combo (by parameter values, not row order).
    let reference: Vec<Value> = std::fs::read_to_string(reference_dir().join("qstrader/synth10/results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut failures = Vec::new();
    let mut compared = 0;
    for (combo, qst) in &command {
        let own = &builtin[combo];
        for &(qst_col, own_col, agree) in &SHARED {
            let (a, b) = (table_float(&qst[qst_col]), table_float(&own[own_col]));
            let ok = match agree {
                // Same f64, and the same text (the tables write Python's repr).
                Agree::Exact => a.to_bits() == b.to_bits() && qst[qst_col] == own[own_col],
                Agree::Close => a.is_finite() && (a - b).abs() <= STATS_RTOL * a.abs(),
            };
            compared += 1;
            if !ok {
                failures.push(format!(
                    "{combo:?}: QSTrader {qst_col} = {}, sweeprun {own_col} = {} (rel {:.3e})",
                    qst[qst_col],
                    own[own_col],
                    (a - b).abs() / a.abs()
                ));
            }
        }

        // The command sweep's table carries the script's numbers bit for bit: those of
        // QSTrader's reference run of the combo.
        let run = reference
            .iter()
            .find(|r| {
                r["strategy"] == "momentum_taa"
                    && r["params"]["lookback"].as_u64() == Some(combo.0)
                    && r["params"]["top_n"].as_u64() == Some(combo.1)
            })
            .unwrap_or_else(|| panic!("{combo:?} not in results.jsonl"));
        for column in SHARED.iter().map(|s| s.0).chain(COMMAND_ONLY) {
            let want = run["stats"]
                .get(column)
                .or_else(|| run.get(column))
                .unwrap_or_else(|| panic!("results.jsonl has no {column}"));
            let got = table_float(&qst[column]);
            if got.to_bits() != want.as_f64().unwrap().to_bits() {
                failures.push(format!("{combo:?}: command sweep {column} = {}, results.jsonl {want}", qst[column]));
            }
        }
    }
    assert_eq!(compared, 4 * SHARED.len());
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
