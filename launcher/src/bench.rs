//! `sweeprun bench`: kernel throughput on one core, in combo-bars per second and time per
//! backtest. Runs in-process (no ranks, no output), pinned to one CPU, and reports the
//! median of several timed passes after an untimed warm-up pass.

use crate::cli::BenchArgs;
use crate::error::{Failure, Result};
use crate::grid::ParamValue;
use crate::report::counted;
use crate::spec::Spec;
use crate::strategy::Strategy;
use std::path::PathBuf;
use std::time::Instant;
use sweeprun_kernel::arch::KernelPath;
use sweeprun_kernel::metrics::{Convention, Metrics};
use sweeprun_kernel::momentum::{MomentumBatch, MomentumCombo, MomentumOutcome, Universe};
use sweeprun_kernel::overfitting::{self, BlockSums, BlockSumsOut, Blocks, Trials};
use sweeprun_kernel::sma::{self, SmaBatch, SmaCombo, SmaConfig};

fn kernel_path() -> Result<KernelPath> {
    sweeprun_kernel::arch::selected_kernel().map_err(|e| Failure::usage(e.to_string()))
}

/// Window-sum tables built once, outside the timed passes (as a rank does per sweep).
fn prepare(batch: &mut SmaBatch, path: KernelPath, combos: &[SmaCombo]) {
    let fast: Vec<u32> = combos.iter().map(|c| c.fast).collect();
    let slow: Vec<u32> = combos.iter().map(|c| c.slow).collect();
    batch.prepare(path, &fast, &slow);
}

fn pin_to_one_cpu() {
    if let Some(cpu) = sweeprun_hw::topology::usable_cpus().ok().and_then(|c| c.first().copied()) {
        let _ = sweeprun_hw::topology::pin_current_process(cpu);
    }
}

/// Times `samples` runs of `pass` (after one untimed run); returns sorted seconds.
fn time_passes(samples: usize, mut pass: impl FnMut()) -> Vec<f64> {
    pass();
    let mut seconds: Vec<f64> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            pass();
            start.elapsed().as_secs_f64()
        })
        .collect();
    seconds.sort_by(f64::total_cmp);
    seconds
}

/// QSTrader's measured CPU seconds per backtest of the momentum strategy on synth10
/// (README, BENCHMARKS.md): the default `--baseline` of momentum_taa spec benches.
pub const QSTRADER_SECONDS_PER_BACKTEST: f64 = 8.24;

/// The report of one benchmark; `baseline` (seconds per backtest) adds a speed-up.
fn report(label: &str, combos: usize, bars: usize, seconds: &[f64], baseline: Option<f64>) -> String {
    let median = seconds[seconds.len() / 2];
    let per_backtest = median / combos as f64;
    let speedup = baseline.map_or(String::new(), |baseline| {
        format!(" ({:.0}x faster than {baseline} s per backtest)", baseline / per_backtest)
    });
    format!(
        "{label}\n{} x {}, {} on 1 core\n\
         median {median:.4} s per sweep (min {:.4} s): {:.3e} combo-bars/s, {:.0} backtests/s, \
         {:.2} us per backtest{speedup}\n",
        counted(combos as u64, "combo"),
        counted(bars as u64, "bar"),
        counted(seconds.len() as u64, "sample"),
        seconds[0],
        combos as f64 * bars as f64 / median,
        1.0 / per_backtest,
        per_backtest * 1e6,
    )
}

/// The example data the built-in grid runs on without `--data`: `examples/data/GOOG.csv`
/// of the repository this executable was built in (found among the executable's
/// ancestors, e.g. `target/release/..`), so the default works from any directory.
fn default_data() -> Result<PathBuf> {
    let exe = std::env::current_exe().ok();
    exe.iter()
        .flat_map(|exe| exe.ancestors().skip(1))
        .map(|dir| dir.join("examples/data/GOOG.csv"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            Failure::usage(
                "--data: no CSV given, and no examples/data/GOOG.csv above this executable; \
                 pass --data PATH (a single-asset OHLC CSV)",
            )
        })
}

fn parse_range(flag: &str, text: &str) -> Result<(u32, u32)> {
    let bad = || Failure::usage(format!("--{flag}: expected FROM:TO with 1 <= FROM <= TO, got `{text}`"));
    let (from, to) = text.split_once(':').ok_or_else(bad)?;
    let (from, to): (u32, u32) = (from.trim().parse().map_err(|_| bad())?, to.trim().parse().map_err(|_| bad())?);
    if from == 0 || from > to {
        return Err(bad());
    }
    Ok((from, to))
}

/// Runs the benchmark and returns the report.
pub fn bench(args: &BenchArgs) -> Result<String> {
    if args.samples == 0 {
        return Err(Failure::usage("--samples: expected at least 1"));
    }
    if let Some(baseline) = args.baseline {
        if !(baseline.is_finite() && baseline > 0.0) {
            return Err(Failure::usage("--baseline: expected a positive number of seconds"));
        }
    }
    match &args.spec {
        Some(_) if args.cscv_blocks.is_some() => {
            Err(Failure::usage("--cscv-blocks: only the built-in SMA grid (no spec) times the overfitting statistics"))
        }
        Some(path) => bench_spec(path, args),
        None => bench_sma_grid(args),
    }
}

/// The whole grid of a spec, kernel only.
fn bench_spec(path: &std::path::Path, args: &BenchArgs) -> Result<String> {
    let spec = Spec::load(path, &[])?;
    if spec.grid.symbol_axis().is_some() {
        return Err(spec.blame(
            "[grid] symbol: bench times one asset; pick it with [data] symbol = \"X\" instead of a symbol grid key"
                .into(),
        ));
    }
    let (Some(data_path), Some(convention)) = (&spec.data_path, spec.strategy.convention()) else {
        return Err(Failure::usage(format!(
            "{}: bench times the built-in strategies; a [command] sweep times itself (its sidecar's wall_seconds)",
            spec.origin
        )));
    };
    let data = sweeprun_kernel::prices::load(data_path).map_err(|e| Failure::usage(e.to_string()))?;
    spec.strategy.validate(&data, spec.symbol.as_deref(), &spec.grid).map_err(|e| spec.blame(e))?;
    let mut values = vec![ParamValue::Int(0); spec.grid.names().len()];
    let ints: Vec<(u32, u32)> = (0..spec.grid.len())
        .map(|id| {
            spec.grid.combo(id, &mut values);
            let int = |v: ParamValue| v.as_i64().and_then(|i| u32::try_from(i).ok()).unwrap_or(0);
            (int(values[0]), int(values[1]))
        })
        .collect();
    if args.baseline.is_some() && !matches!(spec.strategy, Strategy::MomentumTaa(_)) {
        return Err(Failure::usage(format!(
            "--baseline: only momentum_taa benches compare with a baseline (QSTrader's), not {}",
            spec.strategy.name()
        )));
    }
    pin_to_one_cpu();
    let label = format!("{} ({}), spec {}", spec.strategy.name(), convention.name(), spec.origin);
    match &spec.strategy {
        Strategy::SmaCross(config) => {
            let series = if data.assets.len() == 1 {
                &data.assets[0]
            } else {
                spec.symbol
                    .as_deref()
                    .and_then(|s| data.asset(s))
                    .ok_or_else(|| Failure::usage("[data] symbol needed"))?
            };
            let combos: Vec<SmaCombo> = ints.iter().map(|&(fast, slow)| SmaCombo { fast, slow }).collect();
            let max_window = combos.iter().map(|c| c.slow.max(c.fast)).max().unwrap_or(1);
            let mut batch = SmaBatch::new(series, max_window).map_err(|e| Failure::usage(e.to_string()))?;
            let path = kernel_path()?;
            prepare(&mut batch, path, &combos);
            let mut out = vec![Metrics::default(); combos.len()];
            let seconds = time_passes(args.samples, || {
                batch.evaluate(config, &combos, &mut out).expect("validated");
                std::hint::black_box(&out);
            });
            let used = batch.path_for(config, path);
            Ok(report(&format!("kernel {used}, {label}"), combos.len(), batch.bars(), &seconds, None))
        }
        Strategy::MomentumTaa(momentum) => {
            let config = momentum.config(&data);
            let universe = Universe::new(&data, &config).map_err(|e| Failure::usage(e.to_string()))?;
            let days = universe.days().len();
            let combos: Vec<MomentumCombo> =
                ints.iter().map(|&(lookback, top_n)| MomentumCombo { lookback, top_n }).collect();
            let mut out = vec![MomentumOutcome::default(); combos.len()];
            // A fresh batch per pass, so the rankings are part of the measured work; the
            // batches (copies of the universe) are built before the clock starts.
            let mut batches: Vec<MomentumBatch> =
                (0..=args.samples).map(|_| MomentumBatch::new(universe.clone(), config).expect("validated")).collect();
            let seconds = time_passes(args.samples, || {
                let mut batch = batches.pop().expect("one batch per pass");
                batch.evaluate(&combos, &mut out);
                std::hint::black_box(&out);
            });
            let label = format!("{label}, {} assets", data.assets.len());
            let baseline = args.baseline.unwrap_or(QSTRADER_SECONDS_PER_BACKTEST);
            Ok(report(&label, combos.len(), days, &seconds, Some(baseline)))
        }
        Strategy::Command(_) => unreachable!("refused above: a command has no convention"),
    }
}

/// The built-in SMA grid on one CSV (the benchmark grid by default).
fn bench_sma_grid(args: &BenchArgs) -> Result<String> {
    let (fast_from, fast_to) = parse_range("fast", &args.fast)?;
    let (slow_from, slow_to) = parse_range("slow", &args.slow)?;
    let direction = sma::parse_direction(&args.direction)
        .ok_or_else(|| Failure::usage(format!("--direction: expected long or long_short, got `{}`", args.direction)))?;
    let fill = sma::parse_fill(&args.fill)
        .ok_or_else(|| Failure::usage(format!("--fill: expected open or close, got `{}`", args.fill)))?;
    let config = SmaConfig { direction, fill, fee: args.fee, convention: Convention::Standard };
    if args.baseline.is_some() {
        return Err(Failure::usage(
            "--baseline: only momentum_taa spec benches compare with a baseline (QSTrader's); \
             the built-in SMA grid has none",
        ));
    }
    let data_path = match &args.data {
        Some(path) => path.clone(),
        None => default_data()?,
    };
    let data = sweeprun_kernel::prices::load(&data_path).map_err(|e| Failure::usage(e.to_string()))?;
    let series = data.assets.first().ok_or_else(|| Failure::usage("--data: no assets"))?;
    // Windows are checked against the data before any combo is listed.
    let mut batch = SmaBatch::new(series, slow_to.max(fast_to))
        .map_err(|e| Failure::usage(format!("--fast/--slow with --data {}: {e}", data_path.display())))?;
    let combos: Vec<SmaCombo> = (fast_from..=fast_to)
        .flat_map(|fast| (slow_from.max(fast.saturating_add(1))..=slow_to).map(move |slow| SmaCombo { fast, slow }))
        .collect();
    if combos.is_empty() {
        return Err(Failure::usage("--fast/--slow: no combos with fast < slow"));
    }
    let path = kernel_path()?;
    let blocks = match args.cscv_blocks {
        Some(s) => Some(Blocks::new(batch.bars() - 1, s).map_err(|e| Failure::usage(format!("--cscv-blocks: {e}")))?),
        None => None,
    };
    prepare(&mut batch, path, &combos);
    // The launcher computes the statistics after the ranks, on every CPU it may use: a
    // thread started before the kernel's pinning keeps the process's CPUs for them.
    let threads = sweeprun_hw::topology::usable_cpus().map_or(1, |c| c.len().max(1));
    let (to_statistics, work) = std::sync::mpsc::channel::<(Vec<f64>, Vec<f64>)>();
    let samples = args.samples;
    let statistics = blocks.clone().map(|blocks| {
        std::thread::spawn(move || {
            let (sums, squares) = work.recv().ok()?;
            let block_sums = BlockSums { blocks: &blocks, sums: &sums, squares: &squares };
            let mut found = None;
            let seconds = time_passes(samples, || {
                let trials = Trials::new(&block_sums);
                let pbo = overfitting::cscv(&block_sums, &trials, threads).map(|c| c.pbo);
                found = Some((trials.len(), pbo));
            });
            found.map(|(trials, pbo)| (trials, pbo, seconds))
        })
    });
    pin_to_one_cpu();
    let mut out = vec![Metrics::default(); combos.len()];
    let cells = blocks.as_ref().map_or(0, |b| b.len() * combos.len());
    let (mut sums, mut squares) = (vec![0.0; cells], vec![0.0; cells]);
    let mut pass = |out: &mut [Metrics]| {
        let block_out =
            blocks.as_ref().map(|blocks| BlockSumsOut { blocks, sums: &mut sums[..], squares: &mut squares[..] });
        batch.evaluate_blocks_on(path, &config, &combos, out, block_out)
    };
    pass(&mut out).map_err(|e| Failure::usage(e.to_string()))?;
    let seconds = time_passes(args.samples, || {
        pass(&mut out).expect("checked above");
        std::hint::black_box(&out);
    });
    let label = format!(
        "kernel {}, sma_cross {} fill={} fee={}{}",
        batch.path_for(&config, path),
        args.direction,
        args.fill,
        args.fee,
        blocks.as_ref().map_or(String::new(), |b| format!(", with sums over {} CSCV blocks", b.len()))
    );
    let mut text = report(&label, combos.len(), batch.bars(), &seconds, None);
    if let (Some(blocks), Some(statistics)) = (&blocks, statistics) {
        to_statistics.send((sums, squares)).expect("the statistics thread waits for the sums");
        let (trials, pbo, timed) =
            statistics.join().expect("the statistics thread panicked").expect("the sums were sent");
        let median = timed[timed.len() / 2];
        text.push_str(&format!(
            "overfitting statistics: {} splits x {} on {} = median {:.4} s ({:.0}% of the kernel's median; PBO {})\n",
            blocks.splits(),
            counted(trials as u64, "trial"),
            counted(threads as u64, "thread"),
            median,
            100.0 * median / seconds[seconds.len() / 2],
            pbo.map_or("undefined".into(), |p| format!("{:.3}", p)),
        ));
    }
    Ok(text)
}
