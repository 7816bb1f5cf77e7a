//! The strategies a sweep can run, their spec keys and their grid parameters.

use crate::grid::{Grid, ParamDef, ParamKind, ParamValue};
use crate::output::RowWriter;
use crate::spec::check_keys;
use std::ops::Range;
use sweeprun_kernel::metrics::Metrics;
use sweeprun_kernel::prices::{AssetSeries, PriceSet};
use sweeprun_kernel::sma::{self, Direction, Fill, SmaBatch, SmaCombo, SmaConfig};

/// Strategy names the spec accepts.
pub const STRATEGY_NAMES: &str = "sma_cross";

const SMA_PARAMS: [ParamDef; 2] = [
    ParamDef { name: "fast", kind: ParamKind::Int { min: 1 } },
    ParamDef { name: "slow", kind: ParamKind::Int { min: 2 } },
];

/// A strategy with its fixed (non-swept) settings.
#[derive(Clone, Debug, PartialEq)]
pub enum Strategy {
    /// Moving-average crossover on one asset.
    SmaCross(SmaConfig),
}

impl Strategy {
    /// Reads the `[strategy]` table.
    pub fn from_table(table: &toml::Table) -> Result<Strategy, String> {
        let name = match table.get("name") {
            Some(toml::Value::String(name)) => name.as_str(),
            Some(other) => return Err(format!("[strategy] name: expected a string, got {}", other.type_str())),
            None => return Err(format!("[strategy] missing key `name` (one of: {STRATEGY_NAMES})")),
        };
        match name {
            "sma_cross" => {
                check_keys("strategy", table, &["name", "direction", "fill", "fee"])?;
                let direction = match table.get("direction") {
                    None => Direction::Long,
                    Some(v) => v
                        .as_str()
                        .and_then(sma::parse_direction)
                        .ok_or_else(|| format!("[strategy] direction: expected \"long\" or \"long_short\", got {v}"))?,
                };
                let fill = match table.get("fill") {
                    None => Fill::Open,
                    Some(v) => v
                        .as_str()
                        .and_then(sma::parse_fill)
                        .ok_or_else(|| format!("[strategy] fill: expected \"open\" or \"close\", got {v}"))?,
                };
                let fee = match table.get("fee") {
                    None => 0.0,
                    Some(toml::Value::Float(f)) => *f,
                    Some(toml::Value::Integer(i)) => *i as f64,
                    Some(v) => return Err(format!("[strategy] fee: expected a number, got {v}")),
                };
                if !(0.0..1.0).contains(&fee) {
                    return Err(format!("[strategy] fee: expected a fraction in [0, 1) such as 0.001, got {fee}"));
                }
                Ok(Strategy::SmaCross(SmaConfig { direction, fill, fee }))
            }
            other => Err(format!("[strategy] name: unknown strategy `{other}` (expected one of: {STRATEGY_NAMES})")),
        }
    }

    /// The strategy's name as written in specs.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::SmaCross(_) => "sma_cross",
        }
    }

    /// The grid parameters, in combo-numbering order.
    pub fn params(&self) -> &'static [ParamDef] {
        match self {
            Strategy::SmaCross(_) => &SMA_PARAMS,
        }
    }

    /// Name of the statistics convention of the metrics.
    pub fn statistics(&self) -> &'static str {
        "standard"
    }

    /// Checks the grid and data together (window lengths, needed columns, asset choice),
    /// so that no combo can fail once ranks run. Errors are one line.
    pub fn validate(&self, data: &PriceSet, symbol: Option<&str>, grid: &Grid) -> Result<(), String> {
        match self {
            Strategy::SmaCross(config) => {
                let series = single_asset(data, symbol)?;
                let max_window = sma_max_window(grid);
                let batch = SmaBatch::new(series, max_window.min(series.len() as u32).max(1))
                    .map_err(|e| format!("[data] {}: {e}", series.symbol))?;
                if max_window as usize > series.len() {
                    return Err(format!(
                        "[grid] a window of {max_window} bars is longer than the {} bars of {}",
                        series.len(),
                        series.symbol
                    ));
                }
                let mut values = [ParamValue::Int(0); 2];
                for id in 0..grid.len() {
                    grid.combo(id, &mut values);
                    let combo = sma_combo(&values);
                    if combo.fast >= combo.slow {
                        return Err(format!(
                            "[grid] sma_cross needs fast < slow, but the grid has fast = {}, slow = {} \
                             (add where = \"fast < slow\")",
                            combo.fast, combo.slow
                        ));
                    }
                }
                // Evaluate one combo now so data problems (e.g. no Open column) surface as bad input.
                let probe = [sma_combo_at(grid, 0)];
                batch.evaluate(config, &probe, &mut [Metrics::default()]).map_err(|e| format!("[data] {e}"))?;
                Ok(())
            }
        }
    }

    /// Prepares an evaluator of combo-id ranges (the shared precomputation happens here).
    pub fn evaluator<'a>(
        &self,
        data: &'a PriceSet,
        symbol: Option<&str>,
        grid: &'a Grid,
    ) -> Result<Box<dyn ChunkEvaluator + 'a>, String> {
        match self {
            Strategy::SmaCross(config) => {
                let series = single_asset(data, symbol)?;
                let batch = SmaBatch::new(series, sma_max_window(grid)).map_err(|e| e.to_string())?;
                Ok(Box::new(SmaEvaluator { config: *config, batch, grid, combos: Vec::new(), metrics: Vec::new() }))
            }
        }
    }
}

/// Evaluates ranges of combo ids and writes one row per combo.
pub trait ChunkEvaluator {
    /// Evaluates combos `ids` and appends their rows to `rows`.
    fn evaluate(&mut self, ids: Range<u64>, rows: &mut RowWriter) -> Result<(), String>;
}

struct SmaEvaluator<'a> {
    config: SmaConfig,
    batch: SmaBatch<'a>,
    grid: &'a Grid,
    combos: Vec<SmaCombo>,
    metrics: Vec<Metrics>,
}

impl ChunkEvaluator for SmaEvaluator<'_> {
    fn evaluate(&mut self, ids: Range<u64>, rows: &mut RowWriter) -> Result<(), String> {
        self.combos.clear();
        self.combos.extend(ids.clone().map(|id| sma_combo_at(self.grid, id)));
        self.metrics.clear();
        self.metrics.resize(self.combos.len(), Metrics::default());
        self.batch.evaluate(&self.config, &self.combos, &mut self.metrics).map_err(|e| e.to_string())?;
        for ((id, combo), metrics) in ids.zip(&self.combos).zip(&self.metrics) {
            rows.row(id, &[ParamValue::Int(combo.fast.into()), ParamValue::Int(combo.slow.into())], metrics);
        }
        Ok(())
    }
}

fn sma_combo(values: &[ParamValue]) -> SmaCombo {
    let window = |v: ParamValue| v.as_i64().and_then(|i| u32::try_from(i).ok()).expect("grid checked the window");
    SmaCombo { fast: window(values[0]), slow: window(values[1]) }
}

fn sma_combo_at(grid: &Grid, id: u64) -> SmaCombo {
    let mut values = [ParamValue::Int(0); 2];
    grid.combo(id, &mut values);
    sma_combo(&values)
}

fn sma_max_window(grid: &Grid) -> u32 {
    let axis_max = |i: usize| grid.axis(i).iter().filter_map(|v| v.as_i64()).max().unwrap_or(1);
    u32::try_from(axis_max(0).max(axis_max(1))).unwrap_or(u32::MAX)
}

/// The one asset a single-asset strategy trades.
fn single_asset<'a>(data: &'a PriceSet, symbol: Option<&str>) -> Result<&'a AssetSeries, String> {
    match symbol {
        Some(symbol) => data.asset(symbol).ok_or_else(|| {
            format!("[data] symbol: `{symbol}` is not in the data (it has: {})", data.symbols().join(", "))
        }),
        None if data.assets.len() == 1 => Ok(&data.assets[0]),
        None => Err(format!(
            "[data] the data has {} assets; choose one with symbol = \"...\" (one of: {})",
            data.assets.len(),
            data.symbols().join(", ")
        )),
    }
}
