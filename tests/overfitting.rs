//! The overfitting statistics (`sweeprun_kernel::overfitting`) against an independent
//! numpy implementation written from the papers (`tests/overfitting/reference.py`), which
//! works on the full returns matrix: DSR and PSR to 1e-9, PBO and every split's λ exactly
//! (λ to 1e-12: both sides take the same logarithm of the same rank).
//!
//! The returns are synthetic, shaped like a sweep's: flat combos (no trades: not trials),
//! combos flat for stretches (out of the market), exact duplicates (combos with the same
//! trades, which must tie and resolve to the lowest id), drifts from losing to winning.
//! Needs the venv of `scripts/qstrader-venv.sh` (numpy).
//!
//! Then, through the CLI: the statistics of every sweep (sidecar and summary) do not depend
//! on ranks or chunks, per-symbol statistics equal single-asset sweeps, momentum sweeps have
//! them, and bad block counts are refused. (Against numpy on the reference grids:
//! `tests/reference_sma.rs`; after kills and resumes: `tests/cli.rs`.)

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use sweeprun_kernel::overfitting::{self, BlockSums, Blocks, Trials};
use sweeprun_tests::{goog_spec, output_of, sweeprun, venv_python, workspace_root, write_spec};

/// A deterministic generator (xorshift64*), so the test needs no crate and never changes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal (sum of four uniforms, centred and scaled).
    fn normal(&mut self) -> f64 {
        ((0..4).map(|_| self.next()).sum::<f64>() - 2.0) * 3f64.sqrt()
    }
}

/// `combos` rows of `t` returns.
fn synthetic_returns(combos: usize, t: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = Rng(seed);
    let market: Vec<f64> = (0..t).map(|_| 0.0003 + 0.012 * rng.normal()).collect();
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for c in 0..combos {
        let row = match c % 7 {
            // Never trades.
            0 if c < 14 => vec![0.0; t],
            // The same trades as the combo before it.
            3 => rows[c - 1].clone(),
            _ => {
                // In the market for stretches (holding: the market's return), out otherwise;
                // some combos add their own drift and noise (a short or a levered book).
                let drift = (c as f64 - combos as f64 / 2.0) * 2e-5;
                let mut holding = rng.next() < 0.5;
                (0..t)
                    .map(|i| {
                        if rng.next() < 0.02 {
                            holding = !holding;
                        }
                        if !holding {
                            0.0
                        } else if c % 2 == 0 {
                            market[i]
                        } else {
                            market[i] * 1.5 + drift + 0.004 * rng.normal()
                        }
                    })
                    .collect()
            }
        };
        rows.push(row);
    }
    rows
}

/// Sums per block in return order, as the kernel accumulates them.
fn block_sums(rows: &[Vec<f64>], blocks: &Blocks) -> (Vec<f64>, Vec<f64>) {
    let (mut sums, mut squares) = (Vec::new(), Vec::new());
    for row in rows {
        let mut at = 0;
        for &len in blocks.lengths() {
            let block = &row[at..at + len];
            sums.push(block.iter().fold(0.0, |s, r| s + r));
            squares.push(block.iter().fold(0.0, |s, r| s + r * r));
            at += len;
        }
    }
    (sums, squares)
}

fn reference(rows: &[Vec<f64>], s: usize) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("returns.csv");
    // `{:?}` writes the shortest text that reads back as the same f64.
    let text: String =
        rows.iter().map(|row| row.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(",") + "\n").collect();
    std::fs::write(&csv, text).unwrap();
    let script = workspace_root().join("tests/overfitting/reference.py");
    let out = Command::new(venv_python()).arg(&script).arg(&csv).arg(s.to_string()).output().unwrap();
    assert!(out.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * b.abs().max(1.0)
}

fn check(combos: usize, t: usize, s: usize, seed: u64) {
    let rows = synthetic_returns(combos, t, seed);
    let blocks = Blocks::new(t, s).unwrap();
    let (sums, squares) = block_sums(&rows, &blocks);
    let block_sums = BlockSums { blocks: &blocks, sums: &sums, squares: &squares };
    let trials = Trials::new(&block_sums);
    let best = trials.best().unwrap();
    let (skew, kurt) = overfitting::moments(&rows[trials.combos[best]]);
    let deflated = overfitting::deflated_sharpe(&trials.sharpe, best, t, skew, kurt).unwrap();
    let cscv = overfitting::cscv(&block_sums, &trials, 2).unwrap();
    let want = reference(&rows, s);
    let case = format!("{combos} combos x {t} returns, S = {s}, seed {seed}");

    assert_eq!(trials.len() as u64, want["trials"].as_u64().unwrap(), "{case}: trials");
    assert_eq!(trials.combos[best] as u64, want["best"].as_u64().unwrap(), "{case}: best combo");
    for (name, ours, tolerance) in [
        ("sharpe", deflated.sharpe, 1e-12),
        ("skew", skew, 1e-9),
        ("kurtosis", kurt, 1e-9),
        ("sr0", deflated.sr0, 1e-9),
        ("psr", deflated.psr, 1e-9),
        ("dsr", deflated.deflated, 1e-9),
        ("degradation_slope", cscv.degradation_slope, 1e-9),
    ] {
        let theirs = want[name].as_f64().unwrap();
        assert!(close(ours, theirs, tolerance), "{case}: {name} {ours} vs numpy {theirs}");
    }
    assert_eq!(cscv.splits as u64, want["splits"].as_u64().unwrap(), "{case}: splits");
    assert_eq!(cscv.pbo, want["pbo"].as_f64().unwrap(), "{case}: PBO");
    assert_eq!(cscv.prob_oos_loss, want["prob_oos_loss"].as_f64().unwrap(), "{case}: P(OOS loss)");
    let lambdas = want["lambdas"].as_array().unwrap();
    assert_eq!(lambdas.len(), cscv.lambdas.len());
    for (i, (ours, theirs)) in cscv.lambdas.iter().zip(lambdas).enumerate() {
        let theirs = theirs.as_f64().unwrap();
        assert!(close(*ours, theirs, 1e-12), "{case}: split {i}: λ {ours} vs numpy {theirs}");
    }
    // The statistics are not degenerate: some splits overfit, some do not.
    assert!(trials.len() < combos && cscv.lambdas.iter().any(|&l| l > 0.0), "{case}: {cscv:?}");
}

#[test]
fn deflated_sharpe_and_pbo_equal_an_independent_numpy_implementation() {
    check(60, 500, 8, 1);
    check(41, 757, 10, 7);
    check(25, 303, 6, 42);
}

// ---- Through the CLI: every sweep's sidecar and summary -----------------------------------

/// Runs `sweeprun run SPEC ARGS`, asserts success, returns (stdout, the sidecar's
/// `overfitting`).
fn run_statistics(dir: &Path, spec: &Path, out: &str, args: &[&str]) -> (String, Value) {
    let run = output_of(sweeprun(dir).arg("run").arg(spec).args(["--out", out]).args(args));
    assert!(run.status.success(), "{args:?}: {}", String::from_utf8_lossy(&run.stderr));
    let sidecar: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{out}.meta.json"))).unwrap()).unwrap();
    (String::from_utf8(run.stdout).unwrap(), sidecar["overfitting"].clone())
}

#[test]
fn the_statistics_do_not_depend_on_ranks_chunks_or_the_block_count_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "goog.toml", &goog_spec("unused.csv", ""));
    let (summary, one) = run_statistics(dir.path(), &spec, "one.csv", &["-np", "1"]);
    let (_, three) = run_statistics(dir.path(), &spec, "three.csv", &["-np", "3", "--chunk-size", "37"]);
    assert_eq!(one, three, "-np 1 and -np 3 in chunks of 37");
    assert_eq!(one["cscv_blocks"], 8, "the default");
    assert_eq!((one["trials"].as_u64(), one["splits"].as_u64()), (Some(3830), Some(70)));
    let last = summary.lines().last().unwrap();
    assert!(
        last.starts_with("overfitting: deflated Sharpe ") && last.contains("for the best of 3,830 trials"),
        "{last}"
    );
    assert!(last.contains("(CSCV, 8 blocks)"), "{last}");
    // More blocks: more splits, the same trials, best combo and deflated Sharpe (which does
    // not use the blocks).
    let (_, sixteen) = run_statistics(dir.path(), &spec, "sixteen.csv", &["--cscv-blocks", "16"]);
    assert_eq!((sixteen["cscv_blocks"].as_u64(), sixteen["splits"].as_u64()), (Some(16), Some(12_870)));
    for key in ["trials", "best_combo_id", "deflated_sharpe", "psr", "sr0"] {
        assert_eq!(sixteen[key], one[key], "{key}");
    }
    // Off: no statistics, no line, no block file.
    let (summary, off) = run_statistics(dir.path(), &spec, "off.csv", &["--cscv-blocks", "0", "--top", "1"]);
    assert!(off.is_null() && !summary.contains("overfitting"), "{off} {summary}");
}

#[test]
fn per_symbol_statistics_equal_single_asset_sweeps_and_across_symbols_pools_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = workspace_root().join("examples/data/sp500_20stocks_adjclose_daily.csv");
    let spec = |symbol: &str| {
        format!(
            "[data]\npath = \"{}\"\n{}\n[strategy]\nname = \"sma_cross\"\nfill = \"close\"\n\n[grid]\n{}\n\
             fast = {{ from = 5, to = 40, step = 5 }}\nslow = {{ from = 20, to = 200, step = 20 }}\n\
             where = \"fast < slow\"\n",
            data.display(),
            if symbol.starts_with('[') { String::new() } else { format!("symbol = \"{symbol}\"") },
            if symbol.starts_with('[') { format!("symbol = {symbol}") } else { String::new() },
        )
    };
    let multi = write_spec(dir.path(), "multi.toml", &spec("[\"MSFT\", \"GE\", \"KO\"]"));
    let (summary, pooled) = run_statistics(dir.path(), &multi, "multi.csv", &["--group-by", "symbol", "--top", "1"]);
    let per_symbol = pooled["per_symbol"].as_array().unwrap();
    assert_eq!(per_symbol.len(), 3);
    let mut trials = 0;
    for (entry, symbol) in per_symbol.iter().zip(["MSFT", "GE", "KO"]) {
        assert_eq!(entry["symbol"], symbol);
        let single = write_spec(dir.path(), &format!("{symbol}.toml"), &spec(symbol));
        let (_, alone) = run_statistics(dir.path(), &single, &format!("{symbol}.csv"), &[]);
        let mut entry = entry.clone();
        entry.as_object_mut().unwrap().remove("symbol");
        // Ids differ (the multi-asset grid numbers every symbol's combos after the last's).
        let offset = entry["best_combo_id"].as_u64().unwrap() - alone["best_combo_id"].as_u64().unwrap();
        assert_eq!(offset % (alone["trials"].as_u64().unwrap()).max(1), 0, "{symbol}: the same combo");
        for key in ["best_combo_id", "trials"] {
            entry.as_object_mut().unwrap().remove(key);
        }
        let mut alone = alone.clone();
        trials += alone["trials"].as_u64().unwrap();
        for key in ["best_combo_id", "trials"] {
            alone.as_object_mut().unwrap().remove(key);
        }
        assert_eq!(entry, alone, "{symbol}: per-symbol statistics equal a sweep of that symbol alone");
        let line = summary.lines().find(|l| l.starts_with(&format!("overfitting, {symbol}: "))).unwrap();
        assert!(line.contains("deflated Sharpe"), "{line}");
    }
    // Across symbols: every combo of every symbol is a trial (the file's assets share dates).
    assert_eq!(pooled["trials"].as_u64(), Some(trials));
    assert!(pooled["pbo"].is_f64() && pooled.get("across_symbols_not_measured").is_none(), "{pooled}");
    assert!(summary.lines().last().unwrap().starts_with("overfitting: deflated Sharpe "), "{summary}");
}

#[test]
fn assets_over_different_days_are_measured_per_symbol_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prices");
    std::fs::create_dir(&data).unwrap();
    // Two assets: the second starts 40 days later.
    let mut state = 7u64;
    for (name, skip) in [("AAA", 0), ("BBB", 40)] {
        let mut text = String::from("Date,Open,Close\n");
        let mut price = 100.0f64;
        for day in 0..400 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            price *= 1.0 + ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.04;
            if day >= skip {
                let date = sweeprun_kernel::date::Date::from_days(18_000 + day);
                text.push_str(&format!("{date},{price:.2},{price:.2}\n"));
            }
        }
        std::fs::write(data.join(format!("{name}.csv")), text).unwrap();
    }
    let spec = write_spec(
        dir.path(),
        "dir.toml",
        &format!(
            "[data]\ndir = \"{}\"\n[strategy]\nname = \"sma_cross\"\n[grid]\nsymbol = \"*\"\n\
             fast = {{ from = 2, to = 10 }}\nslow = {{ from = 12, to = 40, step = 4 }}\n",
            data.display()
        ),
    );
    let (summary, statistics) = run_statistics(dir.path(), &spec, "r.csv", &[]);
    assert_eq!(statistics["across_symbols_not_measured"], "the assets' returns run over different days");
    assert!(statistics["pbo"].is_null() && statistics["deflated_sharpe"].is_null(), "{statistics}");
    let per_symbol = statistics["per_symbol"].as_array().unwrap();
    assert!(per_symbol.iter().all(|s| s["pbo"].is_f64()), "{statistics}");
    assert_eq!(
        statistics["trials"].as_u64(),
        Some(per_symbol.iter().map(|s| s["trials"].as_u64().unwrap()).sum()),
        "{statistics}"
    );
    let last = summary.lines().last().unwrap();
    assert!(last.starts_with("overfitting: not measured across symbols (the assets' returns run over"), "{last}");
}

#[test]
fn a_momentum_sweep_has_statistics_too() {
    let dir = tempfile::tempdir().unwrap();
    let spec = workspace_root().join("examples/momentum_etf5.toml");
    let (summary, statistics) = run_statistics(dir.path(), &spec, "m.csv", &["--top", "2"]);
    assert_eq!(statistics["trials"].as_u64(), Some(12 * 5), "{statistics}");
    assert!(statistics["deflated_sharpe"].is_f64() && statistics["pbo"].is_f64(), "{statistics}");
    assert!(statistics.get("per_symbol").is_none(), "a momentum grid has no symbol axis");
    assert!(summary.lines().last().unwrap().starts_with("overfitting: "), "{summary}");
}

#[test]
fn bad_block_counts_exit_2_with_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "goog.toml", &goog_spec("r.csv", ""));
    // 30 bars: 29 returns, at most 14 blocks.
    let short: String = std::fs::read_to_string(workspace_root().join("examples/data/GOOG.csv"))
        .unwrap()
        .lines()
        .take(31)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("short.csv"), short).unwrap();
    let short_spec = write_spec(
        dir.path(),
        "short.toml",
        "[data]\npath = \"short.csv\"\n[strategy]\nname = \"sma_cross\"\n[grid]\nfast = [2, 3]\nslow = [5, 8]\n\
         [output]\npath = \"r.csv\"\n",
    );
    let command = write_spec(
        dir.path(),
        "command.toml",
        "[command]\nargv = [\"true\"]\n[grid]\nx = [1, 2]\n[output]\npath = \"r.csv\"\n",
    );
    for (spec, blocks, says) in [
        (&spec, "3", "--cscv-blocks 3: CSCV needs an even number of blocks >= 2, got 3 (0 turns the statistics off)"),
        (&spec, "26", "--cscv-blocks 26: 26 CSCV blocks is more than 24"),
        (&short_spec, "16", "--cscv-blocks 16: 16 CSCV blocks is more than half of the 29 returns"),
        (&command, "8", "--cscv-blocks: a [command] sweep reports no returns"),
    ] {
        let run = output_of(sweeprun(dir.path()).arg("run").arg(spec).args(["--cscv-blocks", blocks]));
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{blocks}: {stderr}");
        assert!(stderr.lines().count() == 1 && stderr.starts_with(&format!("sweeprun: error: {says}")), "{stderr}");
        let written: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("r.csv"))
            .collect();
        assert!(written.is_empty(), "{blocks}: wrote {written:?}");
    }
    // 14 blocks fit the short series.
    let (_, statistics) = run_statistics(dir.path(), &short_spec, "r.csv", &["--cscv-blocks", "14"]);
    assert_eq!(statistics["cscv_blocks"], 14);
}
