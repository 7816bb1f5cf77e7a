//! End to end: `sweeprun run examples/sma_goog_large.toml` (default `--top 10`) at `-np 1` and `-np 2`
//! (79,398 combos x 2,148 bars), whole process, timed by criterion; then the parallel
//! efficiency `T1 / (2 * T2)` from a few extra interleaved runs.
//!
//! ```sh
//! cargo bench --bench sweep -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! The `sweeprun` binary is the release build of the workspace, built (if stale) before
//! anything is timed, as the end-to-end tests do. Results go to a temporary directory.
//! Criterion prints the time per sweep and, via `Throughput::Elements(combos x bars)`,
//! the end-to-end rate in combo-bars/s ("elem/s"). At the end, stderr has two lines
//! `efficiency T1/(2*T2) = ...`: one from the medians criterion saved for `np/1` and
//! `np/2`, one from a few extra interleaved runs of each. The extra runs are skipped in
//! criterion's `--test` and `--list` modes; `SWEEP_EFFICIENCY_RUNS` sets their number
//! (default 21 per -np, 0 to skip: this VM's run-to-run noise is a few ms, so the ratio
//! needs many runs).

use criterion::{BenchmarkId, Criterion, Throughput};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

const SPEC: &str = "examples/sma_goog_large.toml";
/// fast 2..=200 x slow 5..=500 with fast < slow.
const COMBOS: u64 = 79_398;

/// Runs one whole sweep at `np` ranks into `out`; returns its wall time.
fn run_sweep(spec: &Path, np: usize, out: &Path) -> Duration {
    let root = sweeprun_tests::workspace_root();
    let mut command = sweeprun_tests::sweeprun(&root);
    command
        .arg("run")
        .arg(spec)
        .args(["-np", &np.to_string(), "--out"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // A fresh output path each run: replacing an existing 11 MB table costs the filesystem
    // ~3 ms inside `rename` (freeing the old blocks), the same at any -np; BENCHMARKS.md
    // reports that case separately.
    for path in [out.to_path_buf(), PathBuf::from(format!("{}.meta.json", out.display()))] {
        let _ = std::fs::remove_file(path);
    }
    let start = Instant::now();
    let output = command.output().expect("spawn sweeprun");
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "sweeprun run -np {np} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

fn bars_of_goog() -> u64 {
    let text = std::fs::read_to_string(sweeprun_tests::example_goog()).expect("read GOOG.csv");
    text.lines().skip(1).filter(|l| !l.trim().is_empty()).count() as u64
}

fn efficiency_line(source: &str, t1: f64, t2: f64) -> String {
    format!(
        "sweep bench: {source}: T1 = {:.1} ms (-np 1), T2 = {:.1} ms (-np 2); speed-up T1/T2 = {:.2}; \
         efficiency T1/(2*T2) = {:.2}",
        t1 * 1e3,
        t2 * 1e3,
        t1 / t2,
        t1 / (2.0 * t2)
    )
}

const GROUP: &str = "sweep_sma_goog_large";

fn sweep(c: &mut Criterion) {
    let started = SystemTime::now();
    let spec: PathBuf = sweeprun_tests::workspace_root().join(SPEC);
    // Build (or find) the binary before anything is timed.
    let bin = sweeprun_tests::sweeprun_bin();
    eprintln!("sweep bench: {} run {}", bin.display(), spec.display());
    let dir = tempfile::tempdir().expect("temp dir");
    let out = |np: usize| dir.path().join(format!("sma_goog_large_np{np}.csv"));

    let mut group = c.benchmark_group(GROUP);
    group.sample_size(10);
    group.throughput(Throughput::Elements(COMBOS * bars_of_goog()));
    for np in [1usize, 2] {
        group.bench_with_input(BenchmarkId::new("np", np), &np, |b, &np| {
            b.iter_custom(|iters| (0..iters).map(|_| run_sweep(&spec, np, &out(np))).sum())
        });
    }
    group.finish();

    if let (Some(t1), Some(t2)) = (
        sweeprun_tests::criterion_median(&[GROUP, "np", "1"], started),
        sweeprun_tests::criterion_median(&[GROUP, "np", "2"], started),
    ) {
        eprintln!("{}", efficiency_line("criterion medians", t1, t2));
    }
    // The kernel path the ranks used, from the results' sidecar.
    let sidecar = PathBuf::from(format!("{}.meta.json", out(1).display()));
    if let Some(meta) =
        std::fs::read_to_string(sidecar).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    {
        eprintln!("sweep bench: kernel path {} (from the sidecar)", meta["kernel"].as_str().unwrap_or("?"));
    }
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let runs: usize = std::env::var("SWEEP_EFFICIENCY_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(21);
    if runs == 0 {
        return;
    }
    // Interleaved, so slow drifts (thermal, other load) hit both sides alike.
    let (mut t1, mut t2) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        t1.push(run_sweep(&spec, 1, &out(1)).as_secs_f64());
        t2.push(run_sweep(&spec, 2, &out(2)).as_secs_f64());
    }
    eprintln!("{}", efficiency_line(&format!("medians of {runs} extra interleaved runs"), median(t1), median(t2)));
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    sweep(&mut criterion);
    criterion.final_summary();
}
