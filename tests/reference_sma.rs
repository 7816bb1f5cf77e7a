//! Differential test through the real CLI: all 8 variants of the canonical SMA sweep
//! (direction x fill x fee), run with `-np 2` on every kernel path of this machine
//! (`SWEEPRUN_KERNEL`), over GOOG (2-decimal closes) against
//! `tests/reference/sma/sma_goog_reference.csv` and over float-written S&P 500 closes
//! (17 significant digits) against `tests/reference/sma-float/sma_spx_reference.csv`.
//!
//! Each run's overfitting statistics (the sidecar's `overfitting`, from the ranks' block
//! sums) must equal those of an independent numpy simulation of the same sweep, checked
//! against the same reference table and computed from its full returns matrix
//! (`tests/overfitting/sma_sweep.py`): trials, best combo and PBO exactly, DSR and PSR to
//! 1e-9. Needs the venv of `scripts/qstrader-venv.sh` (numpy).

use std::collections::HashMap;
use sweeprun_kernel::arch::KernelPath;
use sweeprun_tests::{
    output_of, read_csv, reference_dir, sweeprun, table_float, venv_python, workspace_root, write_spec,
};

struct Expected {
    total_return: f64,
    sharpe: f64,
    max_dd: f64,
    trades: u32,
}

type Variants = HashMap<(String, String, String), HashMap<(u32, u32), Expected>>;

fn reference_rows(path: &std::path::Path) -> Variants {
    let (header, rows) = read_csv(path);
    assert_eq!(header, ["direction", "fill", "fee", "fast", "slow", "total_return", "sharpe", "max_dd", "trades"]);
    let mut variants: HashMap<_, HashMap<_, _>> = HashMap::new();
    for row in rows {
        let expected = Expected {
            total_return: row[5].parse().unwrap(),
            sharpe: row[6].parse().unwrap(),
            max_dd: row[7].parse().unwrap(),
            trades: row[8].parse().unwrap(),
        };
        let combo = (row[3].parse().unwrap(), row[4].parse().unwrap());
        variants.entry((row[0].clone(), row[1].clone(), row[2].clone())).or_default().insert(combo, expected);
    }
    variants
}

/// The tolerance: 1e-9 relative, 1e-12 absolute near zero.
fn within(a: f64, b: f64) -> bool {
    (a - b).abs() <= (1e-9 * b.abs()).max(1e-12)
}

/// CSCV blocks of the runs (sweeprun's default).
const CSCV_BLOCKS: usize = 8;

#[test]
fn all_eight_variants_match_the_goog_reference_on_every_path() {
    let dir = reference_dir().join("sma");
    let (data, reference) = (dir.join("GOOG.csv"), dir.join("sma_goog_reference.csv"));
    let statistics = numpy_statistics(&data, &reference);
    for path in KernelPath::available() {
        all_eight_variants_match(&data, &reference, path, &statistics);
    }
}

#[test]
fn all_eight_variants_match_the_float_written_reference_on_every_path() {
    let dir = reference_dir().join("sma-float");
    let (data, reference) = (dir.join("SPX_adj.csv"), dir.join("sma_spx_reference.csv"));
    let statistics = numpy_statistics(&data, &reference);
    for path in KernelPath::available() {
        all_eight_variants_match(&data, &reference, path, &statistics);
    }
}

/// The independent statistics of every variant, keyed `direction,fill,fee`.
fn numpy_statistics(data: &std::path::Path, reference: &std::path::Path) -> serde_json::Value {
    let script = workspace_root().join("tests/overfitting/sma_sweep.py");
    let out = output_of(
        std::process::Command::new(venv_python()).arg(&script).arg(data).arg(reference).arg(CSCV_BLOCKS.to_string()),
    );
    assert!(out.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The sidecar's statistics against numpy's: counts and PBO exactly, the rest to 1e-9.
fn statistics_differences(ours: &serde_json::Value, numpy: &serde_json::Value) -> Vec<String> {
    let mut differences = Vec::new();
    for (ours_key, numpy_key) in [("trials", "trials"), ("best_combo_id", "best"), ("splits", "splits")] {
        if ours[ours_key].as_u64() != numpy[numpy_key].as_u64() {
            differences.push(format!("{ours_key}: {} vs numpy {}", ours[ours_key], numpy[numpy_key]));
        }
    }
    for key in ["pbo", "prob_oos_loss"] {
        if ours[key].as_f64() != numpy[key].as_f64() {
            differences.push(format!("{key}: {} vs numpy {}", ours[key], numpy[key]));
        }
    }
    for (ours_key, numpy_key) in [
        ("sharpe_per_period", "sharpe"),
        ("sr0", "sr0"),
        ("psr", "psr"),
        ("deflated_sharpe", "dsr"),
        ("skew", "skew"),
        ("kurtosis", "kurtosis"),
        ("degradation_slope", "degradation_slope"),
    ] {
        let (a, b) = (ours[ours_key].as_f64(), numpy[numpy_key].as_f64());
        if !matches!((a, b), (Some(a), Some(b)) if (a - b).abs() <= 1e-9 * b.abs().max(1.0)) {
            differences.push(format!("{ours_key}: {} vs numpy {}", ours[ours_key], numpy[numpy_key]));
        }
    }
    differences
}

fn all_eight_variants_match(
    data: &std::path::Path,
    reference: &std::path::Path,
    kernel: KernelPath,
    statistics: &serde_json::Value,
) {
    let variants = reference_rows(reference);
    assert_eq!(variants.len(), 8, "the reference has 8 variants");
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for ((direction, fill, fee), expected) in &variants {
        assert_eq!(expected.len(), 3830);
        let direction_key = if direction == "longshort" { "long_short" } else { direction.as_str() };
        let name = format!("{direction}_{fill}_{fee}");
        let spec = format!(
            "[data]\npath = \"{}\"\n[strategy]\nname = \"sma_cross\"\ndirection = \"{direction_key}\"\n\
             fill = \"{fill}\"\nfee = {fee}\n[grid]\nfast = {{ from = 5, to = 100 }}\n\
             slow = {{ from = 10, to = 250, step = 5 }}\nwhere = \"fast < slow\"\n[output]\npath = \"{name}.csv\"\n",
            data.display()
        );
        let spec_path = write_spec(dir.path(), &format!("{name}.toml"), &spec);
        let run = output_of(
            sweeprun(dir.path())
                .env("SWEEPRUN_KERNEL", kernel.name())
                .arg("run")
                .arg(&spec_path)
                .args(["-np", "2", "--top", "0"]),
        );
        assert!(run.status.success(), "{name}: {}", String::from_utf8_lossy(&run.stderr));
        let sidecar: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(format!("{name}.csv.meta.json"))).unwrap())
                .unwrap();
        assert_eq!(sidecar["kernel"], kernel.name(), "{name}: the sidecar names the path that ran");
        let numpy = &statistics[format!("{direction},{fill},{fee}")];
        assert_eq!(sidecar["overfitting"]["cscv_blocks"], CSCV_BLOCKS);
        for difference in statistics_differences(&sidecar["overfitting"], numpy) {
            failures.push(format!("{name}: overfitting {difference}"));
        }
        let (header, rows) = read_csv(&dir.path().join(format!("{name}.csv")));
        let col = |n: &str| header.iter().position(|h| h == n).unwrap_or_else(|| panic!("no column {n}"));
        let (fast, slow, tr, sharpe, dd, trades) =
            (col("fast"), col("slow"), col("total_return"), col("sharpe"), col("max_drawdown"), col("trades"));
        assert_eq!(rows.len(), 3830, "{name}: every combo once");
        let mut seen = std::collections::HashSet::new();
        for row in &rows {
            let combo: (u32, u32) = (row[fast].parse().unwrap(), row[slow].parse().unwrap());
            assert!(seen.insert(combo), "{name}: {combo:?} twice");
            let Some(want) = expected.get(&combo) else {
                failures.push(format!("{name} {combo:?}: not in the reference"));
                continue;
            };
            let got_tr = table_float(&row[tr]);
            let got_sharpe = table_float(&row[sharpe]);
            // The reference's max_dd is negative; ours is a positive fraction.
            let got_dd = -table_float(&row[dd]);
            let got_trades: u32 = row[trades].parse().unwrap();
            if !within(got_tr, want.total_return)
                || !within(got_sharpe, want.sharpe)
                || !within(got_dd, want.max_dd)
                || got_trades != want.trades
            {
                failures.push(format!(
                    "{name} {combo:?}: got ({got_tr}, {got_sharpe}, {got_dd}, {got_trades}), want ({}, {}, {}, {})",
                    want.total_return, want.sharpe, want.max_dd, want.trades
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} on {kernel}: {} mismatches, first: {:#?}",
        data.display(),
        failures.len(),
        &failures[..failures.len().min(10)]
    );
}
