//! `sweeprun-agent __work`: one rank's worth of real sweep work for simulations: the
//! SMA-crossover kernel over the repository's GOOG prices, grid after grid, until killed
//! (or until `parent` is gone). What the simulated board sees of it is only whether it runs.

use sweeprun_kernel::metrics::{Convention, Metrics};
use sweeprun_kernel::sma::{Direction, Fill, SmaBatch, SmaCombo, SmaConfig};

/// The example data, built in: a worker needs no files.
const GOOG_CSV: &str = include_str!("../../examples/data/GOOG.csv");

/// Runs until killed. Returns an error only if the built-in data cannot be used.
pub fn work(parent: Option<u32>) -> Result<(), String> {
    if let Some(parent) = parent {
        sweeprun_hw::process::die_with_parent(parent).map_err(|e| format!("cannot follow pid {parent}: {e}"))?;
    }
    let prices = sweeprun_kernel::prices::parse_csv("GOOG.csv", "GOOG", GOOG_CSV).map_err(|e| e.to_string())?;
    let series = prices.assets.first().ok_or("no asset in the built-in data")?;
    let mut batch = SmaBatch::new(series, 250).map_err(|e| e.to_string())?;
    let combos: Vec<SmaCombo> = (5..=100)
        .flat_map(|fast| (10..=250).step_by(5).filter(move |&s| s > fast).map(move |slow| SmaCombo { fast, slow }))
        .collect();
    let path = sweeprun_kernel::arch::selected_kernel().map_err(|e| e.to_string())?;
    let fast: Vec<u32> = combos.iter().map(|c| c.fast).collect();
    let slow: Vec<u32> = combos.iter().map(|c| c.slow).collect();
    batch.prepare(path, &fast, &slow);
    let config = SmaConfig { direction: Direction::Long, fill: Fill::Open, fee: 0.0, convention: Convention::Standard };
    let mut out = vec![Metrics::default(); combos.len()];
    loop {
        batch.evaluate(&config, &combos, &mut out).map_err(|e| e.to_string())?;
        std::hint::black_box(&out);
    }
}
