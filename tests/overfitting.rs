//! The overfitting statistics (`sweeprun_kernel::overfitting`) against an independent
//! numpy implementation written from the papers (`tests/overfitting/reference.py`), which
//! works on the full returns matrix: DSR and PSR to 1e-9, PBO and every split's λ exactly
//! (λ to 1e-12: both sides take the same logarithm of the same rank).
//!
//! The returns are synthetic, shaped like a sweep's: flat combos (no trades: not trials),
//! combos flat for stretches (out of the market), exact duplicates (combos with the same
//! trades, which must tie and resolve to the lowest id), drifts from losing to winning.
//! Needs the venv of `scripts/qstrader-venv.sh` (numpy).

use serde_json::Value;
use std::process::Command;
use sweeprun_kernel::overfitting::{self, BlockSums, Blocks, Trials};
use sweeprun_tests::{venv_python, workspace_root};

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
