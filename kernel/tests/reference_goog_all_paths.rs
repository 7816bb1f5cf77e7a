//! Every kernel path of this machine (scalar, portable, AVX2 or NEON) against the project's
//! SMA reference (`../shared/reference/sma/sma_goog_reference.csv`: 8 variants x 3830
//! combos over GOOG). Runs natively and, in CI, for aarch64 under qemu.

use std::path::PathBuf;
use sweeprun_kernel::arch::KernelPath;
use sweeprun_kernel::metrics::{Convention, Metrics};
use sweeprun_kernel::prices;
use sweeprun_kernel::sma::{parse_direction, parse_fill, SmaBatch, SmaCombo, SmaConfig};

fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SWEEPRUN_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("SWEEPRUN_SKIP_REFERENCE").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: {} is missing and SWEEPRUN_SKIP_REFERENCE=1", dir.display());
        return None;
    }
    panic!("{} is missing (set SWEEPRUN_REFERENCE_DIR, or SWEEPRUN_SKIP_REFERENCE=1 to skip)", dir.display());
}

/// The reference README's tolerance: 1e-9 relative with an absolute floor of 1e-9 near zero.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn every_path_matches_the_sma_reference() {
    let Some(reference) = reference_dir() else { return };
    let data = prices::load(&reference.join("sma/GOOG.csv")).unwrap();
    let batch = SmaBatch::new(&data.assets[0], 250).unwrap();
    let text = std::fs::read_to_string(reference.join("sma/sma_goog_reference.csv")).unwrap();
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
