//! The strategies a sweep can run: their spec keys, grid parameters, validation against
//! the data, batch evaluators and per-combo tearsheets.

use crate::command::CommandSpec;
use crate::grid::{Grid, ParamDef, ParamKind, ParamValue, SYMBOL};
use crate::protocol::ChunkBlocks;
use crate::spec::check_keys;
use crate::table::{Cell, RowWriter};
use std::ops::Range;
use std::path::{Path, PathBuf};
use sweeprun_kernel::arch::{selected_kernel, KernelPath};
use sweeprun_kernel::date::Date;
use sweeprun_kernel::metrics::{Convention, Metrics};
use sweeprun_kernel::momentum::{MomentumBatch, MomentumCombo, MomentumConfig, MomentumOutcome, Recorder, Universe};
use sweeprun_kernel::overfitting::{BlockSumsOut, Blocks};
use sweeprun_kernel::prices::{AssetSeries, PriceSet};
use sweeprun_kernel::sma::{self, Direction, Fill, SmaBatch, SmaCombo, SmaConfig};

/// Strategy names the spec accepts.
pub const STRATEGY_NAMES: &str = "sma_cross, momentum_taa";

/// `symbol` (optional) comes first: each asset's combos form one block, in the order of a
/// single-asset sweep, so the SIMD groups and a rank's chunks stay within one asset.
const SMA_PARAMS: [ParamDef; 3] = [
    ParamDef { name: SYMBOL, kind: ParamKind::Symbol },
    ParamDef { name: "fast", kind: ParamKind::Int { min: 1 } },
    ParamDef { name: "slow", kind: ParamKind::Int { min: 2 } },
];

/// How many assets' [`SmaBatch`]es one evaluator keeps (each holds its prefix sums and,
/// for grids with slow steps > 1, window-sum tables of ~10 MB on 8,000 bars): a rank's
/// chunks run through the assets in order, so a few suffice, and a 500-asset `"*"` sweep
/// does not hold 500 of them.
const SMA_BATCHES_KEPT: usize = 4;

const MOMENTUM_PARAMS: [ParamDef; 2] = [
    ParamDef { name: "lookback", kind: ParamKind::Int { min: 1 } },
    ParamDef { name: "top_n", kind: ParamKind::Int { min: 1 } },
];

const MOMENTUM_KEYS: [&str; 9] =
    ["name", "start", "burn_in", "end", "initial_cash", "fee_pct", "tax_pct", "cash_buffer", "stats"];

/// `momentum_taa` settings as written in the spec; dates left out default from the data.
#[derive(Clone, Debug, PartialEq)]
pub struct MomentumSpec {
    /// First sim day (default: the first day every asset has data).
    pub start: Option<Date>,
    /// First recorded day (default: `start`, i.e. no burn-in, as QSTrader's `None`).
    pub burn_in: Option<Date>,
    /// Last sim day (default: the last data row).
    pub end: Option<Date>,
    /// Starting cash (default 1e6).
    pub initial_cash: f64,
    /// Commission fraction (default 0).
    pub fee_pct: f64,
    /// Tax fraction (default 0).
    pub tax_pct: f64,
    /// Cash buffer fraction (default 0.01).
    pub cash_buffer: f64,
    /// Statistics convention (default `qstrader`).
    pub convention: Convention,
}

impl MomentumSpec {
    /// Resolves defaults against the data.
    pub fn config(&self, data: &PriceSet) -> MomentumConfig {
        let start = self.start.unwrap_or_else(|| data.assets.iter().map(|a| a.dates[0]).max().expect("assets"));
        let end = self.end.unwrap_or_else(|| data.assets.iter().map(|a| a.dates[a.len() - 1]).max().expect("assets"));
        MomentumConfig {
            start,
            burn_in: self.burn_in.unwrap_or(start),
            end,
            initial_cash: self.initial_cash,
            commission_pct: self.fee_pct,
            tax_pct: self.tax_pct,
            cash_buffer: self.cash_buffer,
            convention: self.convention,
        }
    }
}

/// A strategy with its fixed (non-swept) settings.
#[derive(Clone, Debug, PartialEq)]
pub enum Strategy {
    /// Moving-average crossover on one asset.
    SmaCross(SmaConfig),
    /// QSTrader's momentum tactical asset allocation over a universe.
    MomentumTaa(MomentumSpec),
    /// Any program, run once per combo (`[command]`; see [`crate::command`]).
    Command(CommandSpec),
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
                check_keys("strategy", table, &["name", "direction", "fill", "fee", "stats"])?;
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
                let fee = fee_fraction(table, "fee")?;
                let convention = convention(table, Convention::Standard)?;
                Ok(Strategy::SmaCross(SmaConfig { direction, fill, fee, convention }))
            }
            "momentum_taa" => {
                check_keys("strategy", table, &MOMENTUM_KEYS)?;
                let initial_cash = number(table, "initial_cash", 1e6)?;
                if !(initial_cash.is_finite() && initial_cash > 0.0) {
                    return Err(format!("[strategy] initial_cash: expected a positive amount, got {initial_cash}"));
                }
                Ok(Strategy::MomentumTaa(MomentumSpec {
                    start: date(table, "start")?,
                    burn_in: date(table, "burn_in")?,
                    end: date(table, "end")?,
                    initial_cash,
                    fee_pct: fee_fraction(table, "fee_pct")?,
                    tax_pct: fee_fraction(table, "tax_pct")?,
                    cash_buffer: fraction(table, "cash_buffer", 0.01)?,
                    convention: convention(table, Convention::Qstrader)?,
                }))
            }
            other => Err(format!("[strategy] name: unknown strategy `{other}` (expected one of: {STRATEGY_NAMES})")),
        }
    }

    /// The strategy's name as written in specs.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::SmaCross(_) => "sma_cross",
            Strategy::MomentumTaa(_) => "momentum_taa",
            Strategy::Command(_) => "command",
        }
    }

    /// The grid parameters, in combo-numbering order (a command's: its grid's keys).
    pub fn params(&self) -> std::borrow::Cow<'_, [ParamDef]> {
        match self {
            Strategy::SmaCross(_) => SMA_PARAMS[..].into(),
            Strategy::MomentumTaa(_) => MOMENTUM_PARAMS[..].into(),
            Strategy::Command(command) => command.params[..].into(),
        }
    }

    /// Columns the strategy adds after the common metrics (a command's table has its own
    /// columns: [`crate::command_table`]).
    pub fn extra_columns(&self) -> Vec<&'static str> {
        match self {
            Strategy::SmaCross(_) | Strategy::Command(_) => vec![],
            Strategy::MomentumTaa(_) => vec!["final_equity", "rebalances"],
        }
    }

    /// The command of a `[command]` sweep.
    pub fn command(&self) -> Option<&CommandSpec> {
        match self {
            Strategy::Command(command) => Some(command),
            _ => None,
        }
    }

    /// Whether the strategy trades one asset, so a `symbol` grid key can sweep assets.
    pub fn single_asset(&self) -> bool {
        matches!(self, Strategy::SmaCross(_))
    }

    /// Whether traces of this strategy list their fills.
    pub fn reports_fills(&self) -> bool {
        matches!(self, Strategy::MomentumTaa(_))
    }

    /// The statistics convention of the metrics (`None`: a command computes its own).
    pub fn convention(&self) -> Option<Convention> {
        match self {
            Strategy::SmaCross(config) => Some(config.convention),
            Strategy::MomentumTaa(spec) => Some(spec.convention),
            Strategy::Command(_) => None,
        }
    }

    /// Checks the grid and data together (window lengths, dates, needed columns, asset
    /// choice), so that no combo can fail once ranks run; returns the name of the kernel
    /// path the sweep runs on (for the sidecar). Errors are one line.
    pub fn validate(&self, data: &PriceSet, symbol: Option<&str>, grid: &Grid) -> Result<&'static str, String> {
        match self {
            Strategy::SmaCross(config) => {
                let assets = sma_assets(data, symbol, grid)?;
                let shortest = assets.iter().min_by_key(|a| a.len()).expect("at least one asset");
                let fits = format!("windows fit the {} bars of {}", shortest.len(), shortest.symbol);
                let axes = SmaAxes::of(grid);
                for (axis, param) in [(axes.fast, &SMA_PARAMS[1]), (axes.slow, &SMA_PARAMS[2])] {
                    check_int_axis(grid, axis, param, shortest.len() as i64, &fits)?;
                }
                let mut values = [ParamValue::Int(0); 3];
                let backwards = grid.find_combo(|v| window(v[axes.fast]) >= window(v[axes.slow]));
                if let Some(id) = backwards {
                    let (_, combo) = axes.combo(grid, id, &mut values);
                    return Err(match grid.constraint() {
                        None => format!(
                            "[grid] sma_cross needs fast < slow, but the grid has fast = {}, slow = {} \
                             (add where = \"fast < slow\")",
                            combo.fast, combo.slow
                        ),
                        Some(constraint) => format!(
                            "[grid] where = {constraint:?} admits combos with fast >= slow, e.g. \
                             fast = {}, slow = {}; sma_cross needs fast < slow",
                            combo.fast, combo.slow
                        ),
                    });
                }
                let requested = selected_kernel().map_err(|e| e.to_string())?;
                let probe = [axes.combo(grid, 0, &mut values).1];
                let mut paths: Vec<&'static str> = Vec::new();
                for series in assets {
                    let batch = SmaBatch::new(series, sma_max_window(grid))
                        .map_err(|e| format!("[data] {}: {e}", series.symbol))?;
                    // Evaluate one combo now so data problems (e.g. no Open column) surface as bad input.
                    batch.evaluate(config, &probe, &mut [Metrics::default()]).map_err(|e| match e {
                        // The setting asks for what the data lacks: the setting is named.
                        sma::SmaError::NoOpenPrices => format!("[strategy] {e} ({} has closes only)", series.symbol),
                        e => format!("[data] {e}"),
                    })?;
                    let path = batch.path_for(config, requested).name();
                    if !paths.contains(&path) {
                        paths.push(path);
                    }
                }
                // Assets whose sums are too large for the vector paths run on the scalar one.
                Ok(if paths.len() == 1 { paths[0] } else { mixed_kernel_name(&paths) })
            }
            Strategy::MomentumTaa(spec) => {
                if symbol.is_some() {
                    return Err("[data] symbol: momentum_taa trades the whole universe; remove `symbol`".into());
                }
                let last_row = data.assets.iter().map(|a| a.dates[a.len() - 1]).max().expect("assets");
                if let Some(end) = spec.end.filter(|&end| end > last_row) {
                    return Err(format!(
                        "[strategy] end: {end} is after the last data row ({last_row}); \
                         the days after it would trade on stale prices"
                    ));
                }
                let config = spec.config(data);
                let universe = Universe::new(data, &config).map_err(|e| format!("[strategy] {e}"))?;
                let days = universe.days().len();
                let [lookback, top_n] = &MOMENTUM_PARAMS;
                let why = format!("the {days} sim weekdays from {} to {}", config.start, config.end);
                check_int_axis(grid, 0, lookback, days as i64, &why)?;
                let assets = data.assets.len();
                check_int_axis(
                    grid,
                    1,
                    top_n,
                    assets as i64,
                    &format!("the universe has {}", crate::report::counted(assets as u64, "asset")),
                )?;
                MomentumBatch::new(universe, config).map_err(|e| format!("[strategy] {e}"))?;
                // The momentum kernel is scalar on every target.
                Ok(KernelPath::Scalar.name())
            }
            Strategy::Command(command) => {
                command.check_program()?;
                Ok("command")
            }
        }
    }

    /// Prepares an evaluator of combo-id ranges (the shared precomputation happens here).
    /// With `cscv_blocks` > 0 it also emits every combo's sums over that many blocks of its
    /// returns ([`ChunkBlocks`]).
    pub fn evaluator<'a>(
        &self,
        data: &'a PriceSet,
        symbol: Option<&str>,
        grid: &'a Grid,
        cscv_blocks: usize,
    ) -> Result<Box<dyn ChunkEvaluator + 'a>, String> {
        match self {
            Strategy::SmaCross(config) => Ok(Box::new(SmaEvaluator {
                config: *config,
                assets: sma_assets(data, symbol, grid)?,
                axes: SmaAxes::of(grid),
                path: selected_kernel().map_err(|e| e.to_string())?,
                batches: Vec::new(),
                grid,
                combos: Vec::new(),
                metrics: Vec::new(),
                cscv_blocks,
                sums: Vec::new(),
                squares: Vec::new(),
            })),
            Strategy::MomentumTaa(spec) => {
                let config = spec.config(data);
                let universe = Universe::new(data, &config).map_err(|e| e.to_string())?;
                let batch = MomentumBatch::new(universe, config).map_err(|e| e.to_string())?;
                let blocks = match cscv_blocks {
                    0 => None,
                    s => Some(Blocks::new(batch.returns(), s).map_err(|e| e.to_string())?),
                };
                Ok(Box::new(MomentumEvaluator {
                    batch,
                    grid,
                    outcomes: Vec::new(),
                    combos: Vec::new(),
                    blocks,
                    sums: Vec::new(),
                    squares: Vec::new(),
                }))
            }
            Strategy::Command(_) => {
                Err("internal error: a command sweep's evaluator needs the output path (command_evaluator)".into())
            }
        }
    }

    /// The evaluator of a `[command]` sweep writing the table `out`: runs the command per
    /// combo in `<out>.runs/<combo_id>/`, one [`crate::command::Record`] line per combo.
    pub fn command_evaluator<'a>(&'a self, grid: &'a Grid, out: &Path) -> Result<Box<dyn ChunkEvaluator + 'a>, String> {
        let command = self.command().ok_or("internal error: not a command sweep")?;
        let runs_dir = crate::ledger::runs_dir(out);
        let shown_runs_dir = runs_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Box::new(CommandEvaluator { command, grid, runs_dir, shown_runs_dir }))
    }

    /// The combos whose returns share one time axis, which the CSCV blocks cut: each
    /// asset's combos of an SMA grid (one group without a `symbol` axis), or the whole
    /// momentum grid. Empty for a command sweep (it reports no returns).
    pub fn return_groups(
        &self,
        data: &PriceSet,
        symbol: Option<&str>,
        grid: &Grid,
    ) -> Result<Vec<ReturnGroup>, String> {
        match self {
            Strategy::SmaCross(_) => {
                let assets = sma_assets(data, symbol, grid)?;
                let group = |name: Option<String>, ids: Range<u64>, series: &AssetSeries| ReturnGroup {
                    symbol: name,
                    ids,
                    returns: series.len().saturating_sub(1),
                    dates: series.dates.clone(),
                };
                if grid.symbol_axis().is_none() {
                    return Ok(vec![group(None, 0..grid.len(), assets[0])]);
                }
                // The symbol axis comes first: each asset's combos are one run of ids.
                let axes = SmaAxes::of(grid);
                let mut values = [ParamValue::Int(0); 3];
                let mut first_id_of = |asset: usize| {
                    let (mut low, mut high) = (0, grid.len());
                    while low < high {
                        let mid = low + (high - low) / 2;
                        if axes.combo(grid, mid, &mut values).0 < asset {
                            low = mid + 1;
                        } else {
                            high = mid;
                        }
                    }
                    low
                };
                let bounds: Vec<u64> = (0..=assets.len()).map(&mut first_id_of).collect();
                Ok(assets
                    .iter()
                    .enumerate()
                    .map(|(a, series)| group(Some(series.symbol.clone()), bounds[a]..bounds[a + 1], series))
                    .filter(|g| !g.ids.is_empty())
                    .collect())
            }
            Strategy::MomentumTaa(spec) => {
                let config = spec.config(data);
                let universe = Universe::new(data, &config).map_err(|e| e.to_string())?;
                let batch = MomentumBatch::new(universe, config).map_err(|e| e.to_string())?;
                Ok(vec![ReturnGroup { symbol: None, ids: 0..grid.len(), returns: batch.returns(), dates: Vec::new() }])
            }
            Strategy::Command(_) => Ok(Vec::new()),
        }
    }

    /// Re-runs combo `id` recording its daily equity, fills and target weights.
    pub fn trace(&self, data: &PriceSet, symbol: Option<&str>, grid: &Grid, id: u64) -> Result<Trace, String> {
        match self {
            Strategy::SmaCross(config) => {
                let axes = SmaAxes::of(grid);
                let (asset, combo) = axes.combo(grid, id, &mut [ParamValue::Int(0); 3]);
                let series = sma_assets(data, symbol, grid)?[asset];
                let open = series.open.as_deref().unwrap_or(&series.close);
                let (equity, _) = sma::reference::equity_curve(open, &series.close, &series.close_exact, config, combo);
                Ok(Trace {
                    symbols: vec![series.symbol.clone()],
                    dates: series.dates.clone(),
                    equity,
                    fills: Vec::new(),
                    weights: Vec::new(),
                })
            }
            Strategy::MomentumTaa(spec) => {
                let config = spec.config(data);
                let universe = Universe::new(data, &config).map_err(|e| e.to_string())?;
                let mut batch = MomentumBatch::new(universe, config).map_err(|e| e.to_string())?;
                let mut trace = Trace {
                    symbols: batch.universe().symbols().to_vec(),
                    dates: Vec::new(),
                    equity: Vec::new(),
                    fills: Vec::new(),
                    weights: Vec::new(),
                };
                batch.simulate(momentum_combo_at(grid, id), &mut trace);
                Ok(trace)
            }
            Strategy::Command(_) => Err("a command sweep has no tearsheets".into()),
        }
    }
}

/// Combos whose returns run over the same days ([`Strategy::return_groups`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ReturnGroup {
    /// The asset, in a grid with a `symbol` axis.
    pub symbol: Option<String>,
    /// The group's combo ids.
    pub ids: Range<u64>,
    /// Returns per combo (T).
    pub returns: usize,
    /// The asset's dates (SMA; empty for momentum, whose one group needs no comparing).
    pub dates: Vec<Date>,
}

/// One fill of a traced backtest.
#[derive(Clone, Debug, PartialEq)]
pub struct TracedFill {
    /// Day of the fill (at the 14:30 UTC open).
    pub day: Date,
    /// Asset index into [`Trace::symbols`].
    pub asset: usize,
    /// Signed share quantity.
    pub quantity: f64,
    /// Fill price.
    pub price: f64,
    /// Fees charged.
    pub commission: f64,
}

/// A recorded backtest: what a tearsheet is made from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Asset names.
    pub symbols: Vec<String>,
    /// Dates of the equity rows.
    pub dates: Vec<Date>,
    /// Equity per row.
    pub equity: Vec<f64>,
    /// Fills in execution order (empty where the strategy does not report them).
    pub fills: Vec<TracedFill>,
    /// Target weights per asset set at each rebalance.
    pub weights: Vec<(Date, Vec<f64>)>,
}

impl Recorder for Trace {
    fn equity(&mut self, day: Date, equity: f64) {
        self.dates.push(day);
        self.equity.push(equity);
    }

    fn fill(&mut self, day: Date, asset: usize, quantity: f64, price: f64, commission: f64) {
        self.fills.push(TracedFill { day, asset, quantity, price, commission });
    }

    fn weights(&mut self, day: Date, weights: &[f64]) {
        self.weights.push((day, weights.to_vec()));
    }
}

/// Evaluates ranges of combo ids and writes one row per combo.
pub trait ChunkEvaluator {
    /// Evaluates combos `ids` and appends their rows to `rows` and, when the evaluator was
    /// made with CSCV blocks, their block sums to `blocks`.
    fn evaluate(&mut self, ids: Range<u64>, rows: &mut RowWriter, blocks: &mut ChunkBlocks) -> Result<(), String>;
}

/// Where a batch of `combos` combos writes its block sums: `sums` and `squares` resized
/// (and zeroed) to hold them.
fn block_sums_out<'a>(
    layout: &'a Blocks,
    combos: usize,
    sums: &'a mut Vec<f64>,
    squares: &'a mut Vec<f64>,
) -> BlockSumsOut<'a> {
    for values in [&mut *sums, &mut *squares] {
        values.clear();
        values.resize(combos * layout.len(), 0.0);
    }
    BlockSumsOut { blocks: layout, sums, squares }
}

/// Appends each combo's `S` sums then `S` squares to `out` ([`ChunkBlocks`]' layout).
fn interleave_block_sums(sums: &[f64], squares: &[f64], s: usize, out: &mut ChunkBlocks) {
    out.0.reserve(2 * sums.len());
    for (sums, squares) in sums.chunks_exact(s).zip(squares.chunks_exact(s)) {
        out.0.extend_from_slice(sums);
        out.0.extend_from_slice(squares);
    }
}

struct SmaEvaluator<'a> {
    config: SmaConfig,
    /// The series of each asset the grid runs on (one without a `symbol` axis).
    assets: Vec<&'a AssetSeries>,
    axes: SmaAxes,
    path: KernelPath,
    /// Recently used batches by asset index, most recent last (at most [`SMA_BATCHES_KEPT`]),
    /// with the CSCV blocks of their returns when asked for.
    batches: Vec<(usize, SmaBatch<'a>, Option<Blocks>)>,
    grid: &'a Grid,
    combos: Vec<SmaCombo>,
    metrics: Vec<Metrics>,
    /// CSCV blocks per combo (0: no block sums).
    cscv_blocks: usize,
    sums: Vec<f64>,
    squares: Vec<f64>,
}

impl<'a> SmaEvaluator<'a> {
    /// The position in `batches` of asset `asset`'s batch, built (and its windows
    /// announced) on first use.
    fn batch(&mut self, asset: usize) -> Result<usize, String> {
        match self.batches.iter().position(|(a, ..)| *a == asset) {
            Some(at) => {
                let used = self.batches.remove(at);
                self.batches.push(used);
            }
            None => {
                let mut batch =
                    SmaBatch::new(self.assets[asset], sma_max_window(self.grid)).map_err(|e| e.to_string())?;
                batch.prepare(
                    self.path,
                    &window_axis(self.grid, self.axes.fast),
                    &window_axis(self.grid, self.axes.slow),
                );
                let blocks = match self.cscv_blocks {
                    0 => None,
                    s => Some(
                        Blocks::new(batch.bars() - 1, s).map_err(|e| format!("{}: {e}", self.assets[asset].symbol))?,
                    ),
                };
                if self.batches.len() == SMA_BATCHES_KEPT {
                    self.batches.remove(0);
                }
                self.batches.push((asset, batch, blocks));
            }
        }
        Ok(self.batches.len() - 1)
    }
}

impl ChunkEvaluator for SmaEvaluator<'_> {
    fn evaluate(&mut self, ids: Range<u64>, rows: &mut RowWriter, blocks: &mut ChunkBlocks) -> Result<(), String> {
        let mut values = [ParamValue::Int(0); 3];
        let mut start = ids.start;
        while start < ids.end {
            // One run of consecutive combos on the same asset: one batch call, so a SIMD
            // group never mixes assets.
            let asset = self.axes.combo(self.grid, start, &mut values).0;
            self.combos.clear();
            let mut end = start;
            while end < ids.end {
                let (next_asset, combo) = self.axes.combo(self.grid, end, &mut values);
                if next_asset != asset {
                    break;
                }
                self.combos.push(combo);
                end += 1;
            }
            self.metrics.clear();
            self.metrics.resize(self.combos.len(), Metrics::default());
            let at = self.batch(asset)?;
            let (_, batch, layout) = &self.batches[at];
            let out = layout
                .as_ref()
                .map(|layout| block_sums_out(layout, self.combos.len(), &mut self.sums, &mut self.squares));
            batch
                .evaluate_blocks_on(self.path, &self.config, &self.combos, &mut self.metrics, out)
                .map_err(|e| e.to_string())?;
            if let Some(layout) = layout {
                interleave_block_sums(&self.sums, &self.squares, layout.len(), blocks);
            }
            for ((id, combo), metrics) in (start..end).zip(&self.combos).zip(&self.metrics) {
                let windows = [ParamValue::Int(combo.fast.into()), ParamValue::Int(combo.slow.into())];
                match self.axes.symbol {
                    Some(_) => rows.row(id, &[ParamValue::Symbol(asset as u32), windows[0], windows[1]], metrics, &[]),
                    None => rows.row(id, &windows, metrics, &[]),
                }
            }
            start = end;
        }
        Ok(())
    }
}

struct MomentumEvaluator<'a> {
    batch: MomentumBatch,
    grid: &'a Grid,
    combos: Vec<MomentumCombo>,
    outcomes: Vec<MomentumOutcome>,
    /// The CSCV blocks of the equity curves' returns, when asked for.
    blocks: Option<Blocks>,
    sums: Vec<f64>,
    squares: Vec<f64>,
}

impl ChunkEvaluator for MomentumEvaluator<'_> {
    fn evaluate(&mut self, ids: Range<u64>, rows: &mut RowWriter, blocks: &mut ChunkBlocks) -> Result<(), String> {
        self.combos.clear();
        self.combos.extend(ids.clone().map(|id| momentum_combo_at(self.grid, id)));
        self.outcomes.clear();
        self.outcomes.resize(self.combos.len(), MomentumOutcome::default());
        let out = self
            .blocks
            .as_ref()
            .map(|layout| block_sums_out(layout, self.combos.len(), &mut self.sums, &mut self.squares));
        // The batch lives as long as the rank, so each lookback is ranked once per rank.
        self.batch.evaluate_blocks(&self.combos, &mut self.outcomes, out);
        if let Some(layout) = &self.blocks {
            interleave_block_sums(&self.sums, &self.squares, layout.len(), blocks);
        }
        for ((id, combo), outcome) in ids.zip(&self.combos).zip(&self.outcomes) {
            let params = [ParamValue::Int(combo.lookback.into()), ParamValue::Int(combo.top_n.into())];
            let extras = [Cell::Float(outcome.final_equity), Cell::Count(outcome.rebalances.into())];
            rows.row(id, &params, &outcome.metrics, &extras);
        }
        Ok(())
    }
}

struct CommandEvaluator<'a> {
    command: &'a CommandSpec,
    grid: &'a Grid,
    runs_dir: PathBuf,
    /// `runs_dir` as the table names it: relative to the table's directory.
    shown_runs_dir: String,
}

impl ChunkEvaluator for CommandEvaluator<'_> {
    fn evaluate(&mut self, ids: Range<u64>, rows: &mut RowWriter, _blocks: &mut ChunkBlocks) -> Result<(), String> {
        let names = self.grid.names();
        let mut values = vec![ParamValue::Int(0); names.len()];
        for id in ids {
            self.grid.combo(id, &mut values);
            let params: Vec<(&str, String)> = names
                .iter()
                .zip(&values)
                .map(|(&name, &value)| (name, crate::command_table::param_text(value)))
                .collect();
            let record = self.command.run(&self.runs_dir, &self.shown_runs_dir, id, &params)?;
            rows.line(&record.to_line());
        }
        Ok(())
    }
}

fn window(value: ParamValue) -> u32 {
    value.as_i64().and_then(|i| u32::try_from(i).ok()).expect("the grid checked integer parameters")
}

/// Where an SMA grid keeps its parameters.
#[derive(Clone, Copy, Debug)]
struct SmaAxes {
    symbol: Option<usize>,
    fast: usize,
    slow: usize,
}

impl SmaAxes {
    fn of(grid: &Grid) -> SmaAxes {
        let at = |name: &str| grid.index_of(name).expect("sma_cross grids have fast and slow");
        SmaAxes { symbol: grid.symbol_axis(), fast: at("fast"), slow: at("slow") }
    }

    /// Combo `id`: its asset (an index into the grid's symbols, 0 without a symbol axis)
    /// and windows; `values` is scratch space with room for every parameter.
    fn combo(&self, grid: &Grid, id: u64, values: &mut [ParamValue; 3]) -> (usize, SmaCombo) {
        let values = &mut values[..grid.names().len()];
        grid.combo(id, values);
        let asset = match self.symbol.map(|axis| values[axis]) {
            Some(ParamValue::Symbol(s)) => s as usize,
            _ => 0,
        };
        (asset, SmaCombo { fast: window(values[self.fast]), slow: window(values[self.slow]) })
    }
}

/// The series an SMA grid runs on: one per grid symbol (in the grid's order), or the one
/// asset the data or `[data] symbol` names.
fn sma_assets<'a>(data: &'a PriceSet, symbol: Option<&str>, grid: &Grid) -> Result<Vec<&'a AssetSeries>, String> {
    if grid.symbol_axis().is_none() {
        return Ok(vec![single_asset(data, symbol)?]);
    }
    grid.symbols()
        .iter()
        .map(|name| data.asset(name).ok_or_else(|| format!("[grid] {SYMBOL}: `{name}` is not in the data")))
        .collect()
}

/// The sidecar's `kernel` when assets ran on different paths: `avx512+scalar`.
fn mixed_kernel_name(paths: &[&'static str]) -> &'static str {
    // Leaked once per sweep: the sidecar takes a `&'static str`, and this is rare.
    Box::leak(paths.join("+").into_boxed_str())
}

fn momentum_combo_at(grid: &Grid, id: u64) -> MomentumCombo {
    let mut values = [ParamValue::Int(0); 2];
    grid.combo(id, &mut values);
    MomentumCombo { lookback: window(values[0]), top_n: window(values[1]) }
}

/// The window lengths of one SMA grid axis (in grid order).
fn window_axis(grid: &Grid, axis: usize) -> Vec<u32> {
    grid.axis(axis).iter().filter_map(|v| v.as_i64()).filter_map(|w| u32::try_from(w).ok()).collect()
}

fn sma_max_window(grid: &Grid) -> u32 {
    let axis_max = |i: usize| grid.axis(i).iter().filter_map(|v| v.as_i64()).max().unwrap_or(1);
    let axes = SmaAxes::of(grid);
    u32::try_from(axis_max(axes.fast).max(axis_max(axes.slow))).unwrap_or(u32::MAX)
}

/// Checks that every value of integer grid axis `axis` (parameter `param`) lies in
/// `min..=max`, `min` being the parameter's own lower bound; `why` says where `max` comes
/// from. The kernels take these values as `u32` and index the data with them.
fn check_int_axis(grid: &Grid, axis: usize, param: &ParamDef, max: i64, why: &str) -> Result<(), String> {
    let ParamKind::Int { min } = param.kind else { return Ok(()) };
    let name = param.name;
    match grid.axis(axis).iter().filter_map(|v| v.as_i64()).find(|v| !(min..=max).contains(v)) {
        Some(value) if min > max => {
            Err(format!("[grid] {name}: no value fits, {value} included: expected {min}..={max} ({why})"))
        }
        Some(value) => Err(format!("[grid] {name}: {value} is out of range: expected {min}..={max} ({why})")),
        None => Ok(()),
    }
}

/// The one asset a single-asset strategy trades.
fn single_asset<'a>(data: &'a PriceSet, symbol: Option<&str>) -> Result<&'a AssetSeries, String> {
    match symbol {
        Some(symbol) => data.asset(symbol).ok_or_else(|| {
            format!("[data] symbol: `{symbol}` is not in the data (it has: {})", data.symbols().join(", "))
        }),
        None if data.assets.len() == 1 => Ok(&data.assets[0]),
        None => {
            // OHLC names read as tickers: the file most likely lacks its Close column.
            let ohlc = ["open", "high", "low", "volume"];
            let looks_ohlc = data.assets.iter().any(|a| ohlc.contains(&a.symbol.to_ascii_lowercase().as_str()));
            let hint = if looks_ohlc {
                "; a single-asset file needs a Close or Adj Close column (without one, every column is an asset's closes)"
            } else {
                ""
            };
            Err(format!(
                "[data] the data has {} assets; choose one with symbol = \"...\" (one of: {}){hint}",
                data.assets.len(),
                data.symbols().join(", ")
            ))
        }
    }
}

/// `stats = "standard" | "qstrader"` (the `--stats` flag sets it).
fn convention(table: &toml::Table, default: Convention) -> Result<Convention, String> {
    match table.get("stats") {
        None => Ok(default),
        Some(v) => v
            .as_str()
            .and_then(Convention::from_name)
            .ok_or_else(|| format!("[strategy] stats: expected \"standard\" or \"qstrader\", got {v}")),
    }
}

fn number(table: &toml::Table, key: &str, default: f64) -> Result<f64, String> {
    match table.get(key) {
        None => Ok(default),
        Some(toml::Value::Float(f)) => Ok(*f),
        Some(toml::Value::Integer(i)) => Ok(*i as f64),
        Some(v) => Err(format!("[strategy] {key}: expected a number, got {v}")),
    }
}

/// The highest fee or tax fraction accepted: 10 % of the traded value per fill, far above
/// any real commission. Sizing estimates costs from the close before the fill, so with
/// larger fees the buys of a rebalance can cost more than the sells raise: cash goes
/// negative and a long-only equity curve can fall below zero.
pub const MAX_FEE: f64 = 0.1;

/// A fee or tax fraction in `[0, MAX_FEE]`.
fn fee_fraction(table: &toml::Table, key: &str) -> Result<f64, String> {
    let value = number(table, key, 0.0)?;
    if (0.0..=MAX_FEE).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "[strategy] {key}: expected a fraction of the traded value in [0, {MAX_FEE}] such as 0.001, got {value}"
        ))
    }
}

fn fraction(table: &toml::Table, key: &str, default: f64) -> Result<f64, String> {
    let value = number(table, key, default)?;
    if (0.0..1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("[strategy] {key}: expected a fraction in [0, 1) such as 0.001, got {value}"))
    }
}

/// A date written as `"YYYY-MM-DD"` or as a TOML date.
fn date(table: &toml::Table, key: &str) -> Result<Option<Date>, String> {
    let Some(value) = table.get(key) else { return Ok(None) };
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        other => return Err(format!("[strategy] {key}: expected a date like \"2009-01-01\", got {other}")),
    };
    Date::parse_iso(&text)
        .map(Some)
        .ok_or_else(|| format!("[strategy] {key}: `{text}` is not a date (expected YYYY-MM-DD)"))
}
