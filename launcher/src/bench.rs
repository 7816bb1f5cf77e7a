//! `sweeprun bench`: kernel throughput on one core, in combo-bars per second.

use crate::cli::BenchArgs;
use crate::error::{Failure, Result};
use std::time::Instant;
use sweeprun_kernel::metrics::Metrics;
use sweeprun_kernel::sma::{self, SmaBatch, SmaCombo, SmaConfig};

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
    let (fast_from, fast_to) = parse_range("fast", &args.fast)?;
    let (slow_from, slow_to) = parse_range("slow", &args.slow)?;
    let direction = sma::parse_direction(&args.direction)
        .ok_or_else(|| Failure::usage(format!("--direction: expected long or long_short, got `{}`", args.direction)))?;
    let fill = sma::parse_fill(&args.fill)
        .ok_or_else(|| Failure::usage(format!("--fill: expected open or close, got `{}`", args.fill)))?;
    if args.samples == 0 {
        return Err(Failure::usage("--samples: expected at least 1"));
    }
    let config = SmaConfig { direction, fill, fee: args.fee };
    let data = sweeprun_kernel::prices::load(&args.data).map_err(|e| Failure::usage(e.to_string()))?;
    let series = data.assets.first().ok_or_else(|| Failure::usage("--data: no assets"))?;
    let combos: Vec<SmaCombo> = (fast_from..=fast_to)
        .flat_map(|fast| (slow_from.max(fast + 1)..=slow_to).map(move |slow| SmaCombo { fast, slow }))
        .collect();
    if combos.is_empty() {
        return Err(Failure::usage("--fast/--slow: no combos with fast < slow"));
    }
    let batch = SmaBatch::new(series, slow_to.max(fast_to)).map_err(|e| Failure::usage(format!("--data: {e}")))?;
    let cpu = sweeprun_hw::topology::usable_cpus().ok().and_then(|c| c.first().copied());
    if let Some(cpu) = cpu {
        let _ = sweeprun_hw::topology::pin_current_process(cpu);
    }
    let mut out = vec![Metrics::default(); combos.len()];
    // One untimed pass warms caches and page tables.
    batch.evaluate(&config, &combos, &mut out).map_err(|e| Failure::usage(e.to_string()))?;
    let mut seconds: Vec<f64> = (0..args.samples)
        .map(|_| {
            let start = Instant::now();
            batch.evaluate(&config, &combos, &mut out).expect("checked above");
            std::hint::black_box(&out);
            start.elapsed().as_secs_f64()
        })
        .collect();
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    let combo_bars = combos.len() as f64 * batch.bars() as f64;
    Ok(format!(
        "kernel scalar, sma_cross {} fill={} fee={}, {} combos x {} bars, {} samples on 1 core\n\
         median {:.4} s (min {:.4} s): {:.3e} combo-bars/s, {:.0} backtests/s\n",
        args.direction,
        args.fill,
        args.fee,
        combos.len(),
        batch.bars(),
        args.samples,
        median,
        seconds[0],
        combo_bars / median,
        combos.len() as f64 / median
    ))
}
