//! Every kernel path of this machine (scalar, portable, AVX2 or NEON) against the project's
//! SMA references (`tests/reference/sma/sma_goog_reference.csv` and
//! `tests/reference/sma-float/sma_spx_reference.csv`: 8 variants x 3830 combos each). Runs natively and, in CI, for aarch64 under qemu.

use std::path::PathBuf;
use sweeprun_kernel::arch::KernelPath;
use sweeprun_kernel::metrics::{Convention, Metrics};
use sweeprun_kernel::prices;
use sweeprun_kernel::sma::{parse_direction, parse_fill, SmaBatch, SmaCombo, SmaConfig};

/// The project's reference results, copied into the repository (`tests/reference/`).
fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/reference")
}

/// The reference README's tolerance: 1e-9 relative with an absolute floor of 1e-9 near zero.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn every_path_matches_the_sma_reference() {
    every_path_matches(&reference_dir().join("sma/GOOG.csv"), &reference_dir().join("sma/sma_goog_reference.csv"));
}

/// Float-written closes (17 significant digits): the filtered comparison, near-ties exact.
#[test]
fn every_path_matches_the_float_written_reference() {
    let dir = reference_dir().join("sma-float");
    every_path_matches(&dir.join("SPX_adj.csv"), &dir.join("sma_spx_reference.csv"));
}

fn every_path_matches(data: &std::path::Path, expected: &std::path::Path) {
    let data = prices::load(data).unwrap();
    let batch = SmaBatch::new(&data.assets[0], 250).unwrap();
    let text = std::fs::read_to_string(expected).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 8 * 3830);
    let mut failures = Vec::new();
    for path in KernelPath::available() {
        for variant in rows.chunks(3830) {
            let first = &variant[0];
            let config = SmaConfig {
                direction: parse_direction(first[0]).unwrap(),
                fill: parse_fill(first[1]).unwrap(),
                fee: first[2].parse().unwrap(),
                convention: Convention::Standard,
            };
            let combos: Vec<SmaCombo> =
                variant.iter().map(|r| SmaCombo { fast: r[3].parse().unwrap(), slow: r[4].parse().unwrap() }).collect();
            let mut out = vec![Metrics::default(); combos.len()];
            batch.evaluate_on(path, &config, &combos, &mut out).unwrap();
            for (row, m) in variant.iter().zip(&out) {
                let want: [f64; 3] = [row[5].parse().unwrap(), row[6].parse().unwrap(), row[7].parse().unwrap()];
                let got = [m.total_return, m.sharpe, -m.max_drawdown];
                let trades: u32 = row[8].parse().unwrap();
                if !(close(got[0], want[0]) && close(got[1], want[1]) && close(got[2], want[2]) && m.trades == trades) {
                    failures.push(format!(
                        "{path} {config:?} {}/{}: got {got:?} {}, want {want:?} {trades}",
                        row[3], row[4], m.trades
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches, first: {:?}", failures.len(), &failures[..failures.len().min(5)]);
}
