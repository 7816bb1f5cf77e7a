//! Throughput of the `sma_cross` kernel on one core, in combo-bars per second, for every
//! kernel path this machine can run.
//!
//! Grid: fast 2..=200 x slow 5..=500 with fast < slow (79,398 combos), as `sweeprun bench`
//! and BENCHMARKS.md. Inputs: the first 2,000 rows of `examples/data/GOOG.csv`, and a
//! deterministic 20,000-bar whole-cent random walk built here. Variants: long / fill open /
//! fee 0 (the headline) and long_short / fill open / fee 0.001.
//!
//! The batch is prepared once per (input, path) outside the timed closure, as a rank does
//! once per sweep (this step-1 grid reads only the prefix sums: no window-sum tables are
//! built); each iteration evaluates the whole grid. The process is pinned to one CPU (the
//! first it may use) on Linux.
//!
//! ```sh
//! cargo bench --bench kernel -- --warm-up-time 1 --measurement-time 2
//! cargo bench --bench kernel -- 2000bars/avx2        # a filter, as usual with criterion
//! SWEEPRUN_BENCH_QUICK=1 cargo bench --bench kernel  # quick: the default path only
//! ```
//!
//! `SWEEPRUN_BENCH_QUICK=1` measures only the path `sweeprun` would run (the best one, or
//! `SWEEPRUN_KERNEL`'s) with a 0.5 s warm-up and 1 s measurement per benchmark (flags on
//! the command line still override them); BENCHMARKS.md says how long each mode takes.
//!
//! Criterion reports the time per iteration (one whole-grid sweep) and, because each
//! benchmark declares `Throughput::Elements(combos x bars)`, the rate in "elem/s", which
//! is combo-bars/s. Every group uses 10 flat samples (one or a few sweeps each), since a
//! scalar sweep over 20,000 bars takes seconds.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::time::{Duration, SystemTime};
use sweeprun_kernel::arch::KernelPath;
use sweeprun_kernel::date::Date;
use sweeprun_kernel::decimal::ExactCloses;
use sweeprun_kernel::metrics::{Convention, Metrics};
use sweeprun_kernel::prices::{self, AssetSeries};
use sweeprun_kernel::sma::{Direction, Fill, SmaBatch, SmaCombo, SmaConfig};

const FAST: (u32, u32) = (2, 200);
const SLOW: (u32, u32) = (5, 500);
const GOOG_BARS: usize = 2_000;
const SYNTHETIC_BARS: usize = 20_000;
const SYNTHETIC_SEED: u64 = 0x5EED_2026_C0FF_EE01;

/// The benchmark grid in grid order (fast outer, slow inner), fast < slow.
fn grid() -> Vec<SmaCombo> {
    (FAST.0..=FAST.1)
        .flat_map(|fast| (SLOW.0.max(fast + 1)..=SLOW.1).map(move |slow| SmaCombo { fast, slow }))
        .collect()
}

/// The first `GOOG_BARS` rows of the shipped GOOG data.
fn goog_head() -> AssetSeries {
    let path = sweeprun_tests::example_goog();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let head: String = text.lines().take(GOOG_BARS + 1).flat_map(|line| [line, "\n"]).collect();
    let set = prices::parse_csv(&path.display().to_string(), "GOOG", &head).expect("GOOG.csv parses");
    let series = set.assets.into_iter().next().expect("one asset");
    assert_eq!(series.len(), GOOG_BARS, "GOOG.csv has fewer than {GOOG_BARS} rows");
    series
}

/// xorshift64: deterministic, dependency-free.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform integer in `-max..=max`.
    fn step(&mut self, max: i64) -> i64 {
        (self.next() % (2 * max as u64 + 1)) as i64 - max
    }
}

/// A whole-cent random walk of `bars` weekdays: close moves by up to ±2.00 per bar
/// (reflected at 1.00 so prices stay positive), and each open is the previous close
/// ± up to 0.20 (at least 0.01).
fn synthetic_walk(bars: usize, seed: u64) -> AssetSeries {
    let mut rng = XorShift(seed);
    let mut dates = Vec::with_capacity(bars);
    let mut day = Date::from_ymd(1950, 1, 2).expect("valid date");
    let (mut open, mut close_ticks) = (Vec::with_capacity(bars), Vec::with_capacity(bars));
    let mut close: i64 = 20_000; // 200.00
    for t in 0..bars {
        while !day.is_weekday() {
            day = day.succ();
        }
        dates.push(day);
        day = day.succ();
        let previous = close;
        close += rng.step(200);
        if close < 100 {
            close = 200 - close;
        }
        let gap = if t == 0 { 0 } else { rng.step(20) };
        open.push(((previous + gap).max(1)) as f64 / 100.0);
        close_ticks.push(close);
    }
    AssetSeries {
        symbol: "SYNTH".into(),
        dates,
        open: Some(open),
        close: close_ticks.iter().map(|&c| c as f64 / 100.0).collect(),
        close_exact: ExactCloses::from_i64(close_ticks, 2),
    }
}

/// Pins the calling thread (the one criterion measures on) to the first CPU it may use.
#[cfg(target_os = "linux")]
fn pin_to_one_cpu() {
    // SAFETY: cpu_set_t is plain data; the calls only read and write the set we pass.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            eprintln!("kernel bench: sched_getaffinity failed; not pinned");
            return;
        }
        let Some(cpu) = (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &set)) else { return };
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) == 0 {
            eprintln!("kernel bench: pinned to CPU {cpu}");
        } else {
            eprintln!("kernel bench: sched_setaffinity failed; not pinned");
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_to_one_cpu() {
    eprintln!("kernel bench: not pinned (Linux only)");
}

/// One benchmark: criterion group, id within it, combo-bars per iteration.
struct Measured {
    group: String,
    id: String,
    combo_bars: u64,
}

fn sma_kernel(c: &mut Criterion) -> Vec<Measured> {
    pin_to_one_cpu();
    let mut measured = Vec::new();
    let combos = grid();
    let fast: Vec<u32> = combos.iter().map(|c| c.fast).collect();
    let slow: Vec<u32> = combos.iter().map(|c| c.slow).collect();
    let max_window = FAST.1.max(SLOW.1);
    let inputs = [(goog_head(), "2000bars"), (synthetic_walk(SYNTHETIC_BARS, SYNTHETIC_SEED), "20000bars")];
    let variants = [
        (
            "sma_long_open",
            SmaConfig { direction: Direction::Long, fill: Fill::Open, fee: 0.0, convention: Convention::Standard },
        ),
        (
            "sma_long_short_open_fee0.001",
            SmaConfig {
                direction: Direction::LongShort,
                fill: Fill::Open,
                fee: 0.001,
                convention: Convention::Standard,
            },
        ),
    ];
    let paths = if quick_mode() {
        vec![sweeprun_kernel::arch::selected_kernel().expect("SWEEPRUN_KERNEL names an available path")]
    } else {
        KernelPath::available()
    };
    let mut out = vec![Metrics::default(); combos.len()];
    for (series, size) in &inputs {
        // One batch per path, prepared once (outside every timed closure).
        let batches: Vec<(KernelPath, SmaBatch)> = paths
            .iter()
            .map(|&path| {
                let mut batch = SmaBatch::new(series, max_window).expect("grid fits the data");
                batch.prepare(path, &fast, &slow);
                (path, batch)
            })
            .collect();
        for (variant, config) in &variants {
            let mut group = c.benchmark_group(format!("{variant}/{size}"));
            group.sample_size(10).sampling_mode(SamplingMode::Flat);
            let combo_bars = combos.len() as u64 * series.len() as u64;
            group.throughput(Throughput::Elements(combo_bars));
            for (path, batch) in &batches {
                measured.push(Measured { group: format!("{variant}/{size}"), id: path.to_string(), combo_bars });
                let used = batch.path_for(config, *path);
                assert_eq!(used, *path, "{variant}/{size}: the {path} path falls back to {used}");
                group.bench_function(BenchmarkId::from_parameter(path), |b| {
                    b.iter(|| {
                        batch.evaluate_on(*path, config, black_box(&combos), &mut out).expect("valid grid");
                        black_box(&out);
                    })
                });
            }
            group.finish();
        }
    }
    measured
}

/// Whether `SWEEPRUN_BENCH_QUICK=1` asks for the quick mode.
fn quick_mode() -> bool {
    std::env::var("SWEEPRUN_BENCH_QUICK").is_ok_and(|v| v == "1")
}

fn main() {
    let started = SystemTime::now();
    let defaults = if quick_mode() {
        eprintln!("kernel bench: quick mode (SWEEPRUN_BENCH_QUICK=1): default path, 0.5 s warm-up, 1 s measurement");
        Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(1))
    } else {
        Criterion::default()
    };
    let mut criterion = defaults.configure_from_args();
    let measured = sma_kernel(&mut criterion);
    criterion.final_summary();
    // Criterion prints the mean of flat samples; the medians it saved, as combo-bars/s:
    let rows: Vec<String> = measured
        .iter()
        .filter_map(|m| {
            let median = sweeprun_tests::criterion_median(&[&m.group, &m.id], started)?;
            let rate = m.combo_bars as f64 / median;
            Some(format!("{:<40} {:<9} {:>10.1} ms  {rate:.3e} combo-bars/s", m.group, m.id, median * 1e3))
        })
        .collect();
    if !rows.is_empty() {
        eprintln!("\nmedians (one whole-grid sweep per iteration, one core):");
        for row in rows {
            eprintln!("{row}");
        }
    }
}
