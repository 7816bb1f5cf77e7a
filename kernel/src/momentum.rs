//! `momentum_taa`: QSTrader 0.3.0's momentum tactical asset allocation, reproduced exactly.
//!
//! Normative description: the project's `reference/qstrader/SEMANTICS.md`. In short:
//!
//! * The clock is every Monday..Friday from `start` to `end` (no holiday calendar). A day
//!   without a data row prices at the previous row's (adjusted) close.
//! * Each day: at the open, queued orders fill at the open price, sells before buys, each
//!   group in sorted symbol order; at the close, positions are marked, the momentum buffers
//!   take the close, and on the last weekday of a month (from `burn_in` on) the strategy
//!   ranks assets by momentum over `lookback` sim days, gives the `top_n` best `1/top_n`
//!   each, and sizes whole-share orders on the close with a cash buffer. Equity rows are
//!   recorded from `burn_in` on.
//! * Equity is summed in position-insertion order, cash last, and every fill does
//!   `cash -= price*qty + commission`, as QSTrader does, so curves match bit for bit.
//!
//! A [`MomentumBatch`] computes each lookback's rankings once and reuses them for every
//! `top_n`; the daily price grid of the [`Universe`] is shared by all combos.

use crate::date::Date;
use crate::metrics::{Convention, EquityStats, Metrics, QstraderStats, StandardStats};
use crate::overfitting::{curve_block_sums, BlockSumsOut};
use crate::prices::PriceSet;
use std::collections::HashMap;
use std::fmt;

/// The fixed settings of a momentum sweep (QSTrader's names and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MomentumConfig {
    /// First sim day (the backtest's `start_dt` date).
    pub start: Date,
    /// First day whose close may rebalance and is recorded in the equity curve.
    pub burn_in: Date,
    /// Last sim day.
    pub end: Date,
    /// Starting cash (QSTrader default 1e6).
    pub initial_cash: f64,
    /// `PercentFeeModel` commission as a fraction of the rounded consideration.
    pub commission_pct: f64,
    /// `PercentFeeModel` tax as a fraction of the rounded consideration.
    pub tax_pct: f64,
    /// Fraction of equity kept in cash when sizing (QSTrader default 0.01).
    pub cash_buffer: f64,
    /// Statistics convention of the metrics.
    pub convention: Convention,
}

/// One (lookback, top_n) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MomentumCombo {
    /// Momentum lookback in sim days.
    pub lookback: u32,
    /// Number of assets held.
    pub top_n: u32,
}

/// Results of one momentum backtest.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MomentumOutcome {
    /// The statistics (`trades` = number of fills, QSTrader's transactions).
    pub metrics: Metrics,
    /// Equity at the last sim day's close.
    pub final_equity: f64,
    /// Rebalance events at or after the burn-in.
    pub rebalances: u32,
    /// Equity rows recorded (sim days from the burn-in on).
    pub equity_points: u32,
}

/// Why a universe cannot be built.
#[derive(Clone, Debug, PartialEq)]
pub enum MomentumError {
    /// `start` is before an asset's first data row (QSTrader would read the file's last price).
    StartBeforeData {
        /// The asset.
        symbol: String,
        /// Its first row.
        first: Date,
        /// The requested start.
        start: Date,
    },
    /// The dates are not `start <= burn_in <= end` with at least one weekday.
    BadDates(String),
    /// The data has no assets, or more than 65,535.
    BadUniverse(String),
    /// A money setting is out of range.
    BadSetting(String),
}

impl fmt::Display for MomentumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MomentumError::StartBeforeData { symbol, first, start } => write!(
                f,
                "start {start} is before {symbol}'s first data row ({first}); QSTrader would silently \
                 price those days with the file's last price, so start on or after {first}"
            ),
            MomentumError::BadDates(m) | MomentumError::BadUniverse(m) | MomentumError::BadSetting(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for MomentumError {}

/// The universe on the simulation clock: one open and one close price per sim day and asset.
#[derive(Clone, Debug)]
pub struct Universe {
    symbols: Vec<String>,
    days: Vec<Date>,
    assets: usize,
    /// Price at 14:30 of each sim day, `[day * assets + asset]`.
    open: Vec<f64>,
    /// Price at 21:00 of each sim day.
    close: Vec<f64>,
    /// The same closes asset-major, `[asset * days + day]`: a held asset's closes over a
    /// month are contiguous, so marking a book runs down columns.
    close_by_asset: Vec<f64>,
    /// Last weekday of its calendar month (within start..=end).
    month_end: Vec<bool>,
    /// Index of the first sim day on or after the burn-in.
    first_recorded: usize,
    /// The recorded days in segments `(first, last)`, each ending at a month end (whose
    /// close rebalances) or at the last sim day: the book only changes at a segment's
    /// first open.
    segments: Vec<(usize, usize)>,
    /// Asset indices in sorted symbol order (QSTrader's order for sizing and orders).
    sorted: Vec<u16>,
}

impl Universe {
    /// Lays `prices` on the Mon..Fri clock of `config`. Closes-only data fills at the close
    /// (the open of a day is its close, as in a QSTrader file with Open = Close).
    pub fn new(prices: &PriceSet, config: &MomentumConfig) -> Result<Universe, MomentumError> {
        let assets = prices.assets.len();
        if assets == 0 || assets > usize::from(u16::MAX) {
            return Err(MomentumError::BadUniverse(format!("momentum_taa needs 1..=65535 assets, got {assets}")));
        }
        if config.start > config.end {
            return Err(MomentumError::BadDates(format!("start {} is after end {}", config.start, config.end)));
        }
        if config.burn_in < config.start || config.burn_in > config.end {
            return Err(MomentumError::BadDates(format!(
                "burn_in {} must be between start {} and end {}",
                config.burn_in, config.start, config.end
            )));
        }
        for asset in &prices.assets {
            let first = asset.dates[0];
            if config.start < first {
                return Err(MomentumError::StartBeforeData {
                    symbol: asset.symbol.clone(),
                    first,
                    start: config.start,
                });
            }
        }
        let mut days = Vec::new();
        let mut day = config.start;
        while day <= config.end {
            if day.is_weekday() {
                days.push(day);
            }
            day = day.succ();
        }
        if days.is_empty() {
            return Err(MomentumError::BadDates(format!("no weekday between {} and {}", config.start, config.end)));
        }
        let mut open = vec![0.0; days.len() * assets];
        let mut close = vec![0.0; days.len() * assets];
        for (a, asset) in prices.assets.iter().enumerate() {
            let asset_open = asset.open.as_deref().unwrap_or(&asset.close);
            let mut row = 0usize;
            for (d, &day) in days.iter().enumerate() {
                while row + 1 < asset.dates.len() && asset.dates[row + 1] <= day {
                    row += 1;
                }
                // `start >= first row` was checked, so `dates[row] <= day` holds.
                let (o, c) = if asset.dates[row] == day {
                    (asset_open[row], asset.close[row])
                } else {
                    (asset.close[row], asset.close[row])
                };
                open[d * assets + a] = o;
                close[d * assets + a] = c;
            }
        }
        let month_end: Vec<bool> = (0..days.len())
            .map(|d| {
                let (year, month, _) = days[d].ymd();
                let mut next = days[d].succ();
                while !next.is_weekday() {
                    next = next.succ();
                }
                // The last weekday of the month, even when it is past the data or a holiday.
                let (next_year, next_month, _) = next.ymd();
                (next_year, next_month) != (year, month)
            })
            .collect();
        let first_recorded = days.iter().position(|&d| d >= config.burn_in).unwrap_or(days.len());
        let mut segments = Vec::new();
        let mut segment_start = first_recorded;
        for (d, &last_of_month) in month_end.iter().enumerate().skip(first_recorded) {
            if last_of_month || d + 1 == days.len() {
                segments.push((segment_start, d));
                segment_start = d + 1;
            }
        }
        let mut close_by_asset = vec![0.0; days.len() * assets];
        for (d, row) in close.chunks_exact(assets).enumerate() {
            for (a, &c) in row.iter().enumerate() {
                close_by_asset[a * days.len() + d] = c;
            }
        }
        let mut sorted: Vec<u16> = (0..assets as u16).collect();
        sorted.sort_by(|&x, &y| prices.assets[x as usize].symbol.cmp(&prices.assets[y as usize].symbol));
        Ok(Universe {
            symbols: prices.assets.iter().map(|a| a.symbol.clone()).collect(),
            days,
            assets,
            open,
            close,
            close_by_asset,
            month_end,
            first_recorded,
            segments,
            sorted,
        })
    }

    /// The sim days.
    pub fn days(&self) -> &[Date] {
        &self.days
    }

    /// Asset names in universe order (the momentum tie-break order).
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// Momentum ranking (asset indices, best first; ties keep universe order) at the close
    /// of sim day `day` over the last `lookback + 1` closes, or `None` while warming up.
    ///
    /// QSTrader's momentum is `cumprod(1 + pct_change)[-1] - 1` over the buffer, which is
    /// `P_last / P_first - 1` up to ~3·lookback rounding errors. The ranking sorts by that
    /// O(1) ratio and falls back to QSTrader's exact O(lookback) product only when two
    /// assets come within 1e-10 of each other, where rounding could decide the order.
    fn ranking(&self, day: usize, lookback: u32) -> Option<Vec<u16>> {
        let warmup = day + 1;
        if warmup < lookback as usize {
            return None;
        }
        let first = warmup.saturating_sub(lookback as usize + 1);
        let close_at = |d: usize, a: usize| self.close[d * self.assets + a];
        let mut scored: Vec<(u16, f64)> =
            (0..self.assets).map(|a| (a as u16, close_at(day, a) / close_at(first, a))).collect();
        scored.sort_by(|x, y| y.1.total_cmp(&x.1));
        let separated = first < day && scored.windows(2).all(|w| w[0].1 - w[1].1 > 1e-10 * w[0].1.abs());
        if !separated {
            scored = (0..self.assets).map(|a| (a as u16, self.exact_momentum(first, day, a))).collect();
            // Stable, descending: equal momenta keep universe order (Python's sorted(reverse=True)).
            scored.sort_by(|x, y| y.1.total_cmp(&x.1));
        }
        Some(scored.into_iter().map(|(a, _)| a).collect())
    }

    /// QSTrader's momentum of `asset` over the closes of sim days `first..=day`, in pandas'
    /// operation order: `r_k = P_k / P_{k-1} - 1`, then `cumprod(1 + r)[-1] - 1`.
    fn exact_momentum(&self, first: usize, day: usize, asset: usize) -> f64 {
        let mut growth = None::<f64>;
        let mut previous = self.close[first * self.assets + asset];
        for d in first + 1..=day {
            let price = self.close[d * self.assets + asset];
            let r = price / previous - 1.0;
            growth = Some(growth.map_or(1.0 + r, |g| g * (1.0 + r)));
            previous = price;
        }
        growth.map_or(0.0, |g| g - 1.0)
    }
}

/// Receives the details of a simulation (for tearsheets); the sweep uses [`NoRecord`].
pub trait Recorder {
    /// One equity row.
    fn equity(&mut self, day: Date, equity: f64);
    /// One fill at the open of `day`.
    fn fill(&mut self, day: Date, asset: usize, quantity: f64, price: f64, commission: f64);
    /// Target weights (by asset index) set at the close of `day`.
    fn weights(&mut self, day: Date, weights: &[f64]);
}

/// A [`Recorder`] that keeps nothing.
pub struct NoRecord;

impl Recorder for NoRecord {
    #[inline(always)]
    fn equity(&mut self, _: Date, _: f64) {}
    #[inline(always)]
    fn fill(&mut self, _: Date, _: usize, _: f64, _: f64, _: f64) {}
    #[inline(always)]
    fn weights(&mut self, _: Date, _: &[f64]) {}
}

/// Evaluates many combos over one universe, computing each lookback's rankings once.
pub struct MomentumBatch {
    universe: Universe,
    config: MomentumConfig,
    /// Per lookback, per segment ending in a rebalance with a ranking (`None` otherwise):
    /// the rank of each asset in sorted symbol order (`ranks[i]` is `sorted[i]`'s rank).
    rankings: HashMap<u32, Vec<Option<Vec<u16>>>>,
}

impl MomentumBatch {
    /// A batch over `universe` (built from the same `config`).
    pub fn new(universe: Universe, config: MomentumConfig) -> Result<MomentumBatch, MomentumError> {
        let fraction = |x: f64| x.is_finite() && (0.0..1.0).contains(&x);
        if !(config.initial_cash.is_finite() && config.initial_cash > 0.0) {
            return Err(MomentumError::BadSetting(format!("initial_cash must be > 0, got {}", config.initial_cash)));
        }
        if !(fraction(config.commission_pct) && fraction(config.tax_pct)) {
            return Err(MomentumError::BadSetting("fee_pct and tax_pct must be fractions in [0, 1)".into()));
        }
        if !fraction(config.cash_buffer) {
            return Err(MomentumError::BadSetting(format!(
                "cash_buffer must be in [0, 1), got {}",
                config.cash_buffer
            )));
        }
        Ok(MomentumBatch { universe, config, rankings: HashMap::new() })
    }

    /// The universe the batch runs over.
    pub fn universe(&self) -> &Universe {
        &self.universe
    }

    fn rankings_for(&mut self, lookback: u32) -> &[Option<Vec<u16>>] {
        let universe = &self.universe;
        self.rankings.entry(lookback).or_insert_with(|| {
            universe
                .segments
                .iter()
                .map(|&(_, last)| {
                    if !universe.month_end[last] {
                        return None;
                    }
                    let ranking = universe.ranking(last, lookback)?;
                    let mut rank_of = vec![0u16; universe.assets];
                    for (rank, &asset) in ranking.iter().enumerate() {
                        rank_of[asset as usize] = rank as u16;
                    }
                    Some(universe.sorted.iter().map(|&asset| rank_of[asset as usize]).collect())
                })
                .collect()
        })
    }

    /// Evaluates `combos` into `out` (one outcome per combo).
    ///
    /// # Panics
    /// If `out.len() != combos.len()` or a combo has `lookback` or `top_n` 0.
    pub fn evaluate(&mut self, combos: &[MomentumCombo], out: &mut [MomentumOutcome]) {
        self.evaluate_blocks(combos, out, None);
    }

    /// The returns of every combo's equity curve (recorded days - 1): what the blocks of
    /// [`MomentumBatch::evaluate_blocks`] cut.
    pub fn returns(&self) -> usize {
        self.universe.days.len() - self.universe.first_recorded - 1
    }

    /// [`MomentumBatch::evaluate`], also writing each combo's sums of `standard` returns
    /// (`r_t = equity_t / equity_(t-1) - 1` along its equity curve) and of their squares
    /// per block of `blocks`, the inputs of [`crate::overfitting`].
    ///
    /// # Panics
    /// As [`MomentumBatch::evaluate`], or if `blocks` does not cover
    /// [`MomentumBatch::returns`] for every combo.
    pub fn evaluate_blocks(
        &mut self,
        combos: &[MomentumCombo],
        out: &mut [MomentumOutcome],
        mut blocks: Option<BlockSumsOut>,
    ) {
        assert_eq!(combos.len(), out.len(), "one output slot per combo");
        if let Some(b) = &blocks {
            assert_eq!(b.blocks.returns(), self.returns(), "blocks over every return");
            assert!(b.sums.len() == combos.len() * b.blocks.len() && b.squares.len() == b.sums.len());
        }
        match self.config.convention {
            Convention::Standard => self.evaluate_with::<StandardStats>(combos, out, &mut blocks),
            Convention::Qstrader => self.evaluate_with::<QstraderStats>(combos, out, &mut blocks),
        }
    }

    fn evaluate_with<S: EquityStats>(
        &mut self,
        combos: &[MomentumCombo],
        out: &mut [MomentumOutcome],
        blocks: &mut Option<BlockSumsOut>,
    ) {
        let mut stats = S::default();
        let mut scratch = Scratch::default();
        for (c, (combo, slot)) in combos.iter().zip(out.iter_mut()).enumerate() {
            *slot = self.run_with(*combo, &mut NoRecord, &mut stats, &mut scratch);
            if let Some(BlockSumsOut { blocks, sums, squares }) = blocks {
                // `scratch.equity` holds the combo's curve from the burn-in on.
                let at = c * blocks.len()..(c + 1) * blocks.len();
                curve_block_sums(&scratch.equity, blocks, &mut sums[at.clone()], &mut squares[at]);
            }
        }
    }

    /// Runs one combo, reporting details to `recorder`.
    pub fn simulate(&mut self, combo: MomentumCombo, recorder: &mut impl Recorder) -> MomentumOutcome {
        let scratch = &mut Scratch::default();
        match self.config.convention {
            Convention::Standard => self.run_with(combo, recorder, &mut StandardStats::default(), scratch),
            Convention::Qstrader => self.run_with(combo, recorder, &mut QstraderStats::default(), scratch),
        }
    }

    fn run_with<S: EquityStats>(
        &mut self,
        combo: MomentumCombo,
        recorder: &mut impl Recorder,
        stats: &mut S,
        scratch: &mut Scratch,
    ) -> MomentumOutcome {
        assert!(combo.lookback > 0 && combo.top_n > 0, "lookback and top_n must be >= 1");
        self.rankings_for(combo.lookback);
        run(&self.universe, &self.config, combo, &self.rankings[&combo.lookback], recorder, stats, scratch)
    }
}

/// Per-backtest buffers, reused across the combos of a batch (no allocation per combo).
#[derive(Default)]
struct Scratch {
    positions: Vec<(u16, f64)>,
    held: Vec<f64>,
    slot: Vec<u16>,
    sells: Vec<(u16, f64)>,
    buys: Vec<(u16, f64)>,
    deltas: Vec<f64>,
    weights: Vec<f64>,
    /// The equity curve from the burn-in on.
    equity: Vec<f64>,
}

/// One account: cash plus positions in insertion order (QSTrader's OrderedDict), and the
/// same quantities by asset (0 for an asset not held) with each held asset's index in
/// `positions`, for look-ups without a search.
struct Book {
    cash: f64,
    positions: Vec<(u16, f64)>,
    held: Vec<f64>,
    slot: Vec<u16>,
}

impl Book {
    fn transact(&mut self, asset: u16, quantity: f64) {
        let a = asset as usize;
        // A held position is never exactly 0 (it is removed), so `held != 0` means present.
        if self.held[a] != 0.0 {
            let i = usize::from(self.slot[a]);
            self.positions[i].1 += quantity;
            let now = self.positions[i].1;
            self.held[a] = now;
            if now == 0.0 {
                self.positions.remove(i);
                self.held[a] = 0.0;
                for &(later, _) in &self.positions[i..] {
                    self.slot[later as usize] -= 1;
                }
            }
        } else {
            self.slot[a] = self.positions.len() as u16;
            self.positions.push((asset, quantity));
            self.held[a] = quantity;
        }
    }
}

/// `if condition { a } else { b }` as a conditional move on the bits: baseline x86-64
/// has no f64 blend, and a branch on a share count's sign is a coin flip.
#[inline(always)]
fn pick(condition: bool, a: f64, b: f64) -> f64 {
    f64::from_bits(std::hint::select_unpredictable(condition, a.to_bits(), b.to_bits()))
}

const TWO_52: f64 = 4_503_599_627_370_496.0;

/// `x.floor()` without a libm call or a branch (baseline x86-64 has no rounding
/// instruction), with a zero result always +0.0 (as the previous `x as i64 as f64` floor
/// gave). Below 2^52, adding 2^52 to |x| rounds it to an integer exactly (ties to even);
/// from 2^52 on, and for infinities and NaN, `x` is its own floor.
#[inline(always)]
fn floor(x: f64) -> f64 {
    let magnitude = x.abs();
    let nearest = ((magnitude + TWO_52) - TWO_52).copysign(x);
    let nearest = pick(magnitude < TWO_52, nearest, x);
    pick(nearest > x, nearest - 1.0, nearest) + 0.0
}

/// `|round_ties_even(x)|` without a libm call (baseline x86-64 has no rounding
/// instruction): below 2^52, adding 2^52 rounds to an integer, ties to even, exactly.
#[inline(always)]
fn rounded_abs(x: f64) -> f64 {
    let a = x.abs();
    pick(a < TWO_52, (a + TWO_52) - TWO_52, a)
}

/// Marks `positions` (`Σ price·qty` in insertion order, then `+ cash`) at the closes of
/// sim days `first..first + out.len()`, one column of closes per position.
#[inline(always)]
fn mark(positions: &[(u16, f64)], cash: f64, close_by_asset: &[f64], days: usize, first: usize, out: &mut [f64]) {
    out.fill(0.0);
    for &(asset, quantity) in positions {
        let closes = &close_by_asset[asset as usize * days + first..][..out.len()];
        for (value, &close) in out.iter_mut().zip(closes) {
            *value += close * quantity;
        }
    }
    for value in out.iter_mut() {
        *value += cash;
    }
}

fn run<S: EquityStats>(
    universe: &Universe,
    config: &MomentumConfig,
    combo: MomentumCombo,
    rankings: &[Option<Vec<u16>>],
    recorder: &mut impl Recorder,
    stats: &mut S,
    scratch: &mut Scratch,
) -> MomentumOutcome {
    let n = universe.assets;
    let days = universe.days.len();
    let first = universe.first_recorded;
    let mut positions = std::mem::take(&mut scratch.positions);
    positions.clear();
    let mut held = std::mem::take(&mut scratch.held);
    held.clear();
    held.resize(n, 0.0);
    let mut slot = std::mem::take(&mut scratch.slot);
    slot.clear();
    slot.resize(n, 0);
    let mut book = Book { cash: config.initial_cash, positions, held, slot };
    // Orders queued at a month end, in sorted symbol order: `sells[..queued.0]` and
    // `buys[..queued.1]` (fixed slots, filled without branches).
    let (sells, buys, deltas) = (&mut scratch.sells, &mut scratch.buys, &mut scratch.deltas);
    sells.clear();
    sells.resize(n, (0, 0.0));
    buys.clear();
    buys.resize(n, (0, 0.0));
    deltas.clear();
    deltas.resize(n, 0.0);
    let mut queued = (0usize, 0usize);
    let weights = &mut scratch.weights;
    weights.clear();
    weights.resize(n, 0.0);
    // Every row is written by the marks below (no need to clear it between combos).
    let curve = &mut scratch.equity;
    curve.resize(days - first, 0.0);
    let (mut fills, mut rebalances) = (0u32, 0u32);
    // The target weight of a ranked asset: `1/top_n` each, divided by their sum taken in
    // sorted symbol order (the zeros between them change no partial sum), unless
    // np.isclose(sum, 0).
    let share = 1.0 / f64::from(combo.top_n);
    let held_assets = n.min(combo.top_n as usize);
    let mut total = 0.0;
    for _ in 0..held_assets {
        total += share;
    }
    let weight = if total.abs() > 1e-8 { share / total } else { share };
    // Before the burn-in nothing can happen: no rebalance, so no orders and all cash. From
    // there the days run in segments: orders fill at the open of a segment's first day, the
    // book then stays as it is through the segment, and the close of its last day, a month
    // end, may queue orders for the next one.
    for (&(start, end), ranks) in universe.segments.iter().zip(rankings) {
        // 14:30: queued orders fill at the open, sells first, each in sorted symbol order.
        if queued != (0, 0) {
            let day = universe.days[start];
            let open = &universe.open[start * n..(start + 1) * n];
            for &(asset, quantity) in sells[..queued.0].iter().chain(&buys[..queued.1]) {
                let price = open[asset as usize];
                let consideration = rounded_abs(price * quantity);
                let commission = config.commission_pct * consideration + config.tax_pct * consideration;
                book.cash -= price * quantity + commission;
                book.transact(asset, quantity);
                fills += 1;
                recorder.fill(day, asset as usize, quantity, price, commission);
            }
            queued = (0, 0);
        }
        // 21:00 of every day of the segment: mark and record.
        let segment = &mut curve[start - first..=end - first];
        mark(&book.positions, book.cash, &universe.close_by_asset, days, start, segment);
        for (&day, &equity) in universe.days[start..=end].iter().zip(segment.iter()) {
            recorder.equity(day, equity);
        }
        if !universe.month_end[end] {
            continue;
        }
        // 21:00 of a month end: rebalance (the book is unchanged, so its equity is the mark).
        rebalances += 1;
        let close = &universe.close[end * n..(end + 1) * n];
        let buffered_equity = curve[end - first] * (1.0 - config.cash_buffer);
        // Before the lookback has data there is no ranking: every weight is 0.
        let (ranks, ranked) = match ranks {
            Some(ranks) => (&ranks[..], held_assets),
            None => (&universe.sorted[..], 0),
        };
        for ((&asset, delta), &rank) in universe.sorted.iter().zip(deltas.iter_mut()).zip(ranks) {
            let a = asset as usize;
            let w = pick(usize::from(rank) < ranked, weight, 0.0);
            weights[a] = w;
            let dollars = buffered_equity * w;
            let estimated_cost = config.commission_pct * dollars.abs() + config.tax_pct * dollars.abs();
            let target = floor((dollars - estimated_cost) / close[a]);
            *delta = target - book.held[a];
        }
        // Queue the non-zero deltas, sells (< 0) and buys (> 0, or NaN) apart: each is
        // written to its list's next slot, which only advances if it belongs there.
        let (mut sold, mut bought) = (0, 0);
        for (&asset, &delta) in universe.sorted.iter().zip(deltas.iter()) {
            sells[sold] = (asset, delta);
            buys[bought] = (asset, delta);
            let sell = delta < 0.0;
            sold += usize::from(sell);
            bought += usize::from(!sell & (delta != 0.0));
        }
        queued = (sold, bought);
        recorder.weights(universe.days[end], weights);
    }
    scratch.positions = book.positions;
    scratch.held = book.held;
    scratch.slot = book.slot;
    let points = curve.len() as u32;
    let (metrics, final_equity) = match curve.split_first() {
        Some((&initial, rest)) => {
            stats.reset(initial);
            stats.push_slice(rest);
            (stats.finish(fills), curve[curve.len() - 1])
        }
        None => (Metrics::default(), config.initial_cash),
    };
    MomentumOutcome { metrics, final_equity, rebalances, equity_points: points }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values around every boundary of the branch-free roundings: zeros, halves, 2^52,
    /// 2^63, infinities, NaN, and random magnitudes of both signs.
    fn samples() -> Vec<f64> {
        let mut xs = vec![0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 1e-300, -1e-300, f64::MIN_POSITIVE];
        for base in [1.0, TWO_52, 2.0 * TWO_52, 9.2e18, 9.3e18, 1e300] {
            for ulps in -3i64..=3 {
                let x = f64::from_bits(base.to_bits().wrapping_add(ulps as u64));
                xs.extend([x, -x, x - 0.5, 0.5 - x]);
            }
        }
        xs.extend([f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN]);
        let mut state = 0x853c_49e6_748f_ea9bu64;
        for _ in 0..100_000 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let mantissa = (state >> 11) as f64 / (1u64 << 53) as f64;
            let exponent = ((state >> 3) % 70) as i32 - 5;
            let sign = if state & 1 == 0 { 1.0 } else { -1.0 };
            xs.push(sign * mantissa * 2f64.powi(exponent));
        }
        xs
    }

    #[test]
    fn floor_is_exact_with_positive_zero() {
        for x in samples() {
            let expected = x.floor() + 0.0;
            assert_eq!(floor(x).to_bits(), expected.to_bits(), "floor({x:e})");
        }
        assert!(floor(f64::NAN).is_nan());
    }

    #[test]
    fn rounded_abs_is_round_ties_even() {
        for x in samples() {
            assert_eq!(rounded_abs(x).to_bits(), x.round_ties_even().abs().to_bits(), "rounded_abs({x:e})");
        }
        assert!(rounded_abs(f64::NAN).is_nan());
    }

    /// Block sums of momentum combos add up to the table's Sharpe ratio and volatility
    /// (which pin down each combo's sum and sum of squares), on the shipped synth10 data.
    #[test]
    fn block_sums_add_up_to_the_full_sample_statistics() {
        use crate::overfitting::{sharpe, Blocks};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/synth10");
        let prices = crate::prices::load(&dir).unwrap();
        let config = MomentumConfig {
            start: Date::from_ymd(2008, 1, 2).unwrap(),
            burn_in: Date::from_ymd(2009, 1, 1).unwrap(),
            end: Date::from_ymd(2018, 12, 31).unwrap(),
            initial_cash: 1e6,
            commission_pct: 0.001,
            tax_pct: 0.0,
            cash_buffer: 0.01,
            convention: Convention::Standard,
        };
        let mut batch = MomentumBatch::new(Universe::new(&prices, &config).unwrap(), config).unwrap();
        let combos: Vec<MomentumCombo> =
            [(10, 1), (63, 3), (126, 5), (252, 10)].map(|(lookback, top_n)| MomentumCombo { lookback, top_n }).to_vec();
        let blocks = Blocks::new(batch.returns(), 16).unwrap();
        let mut out = vec![MomentumOutcome::default(); combos.len()];
        let (mut sums, mut squares) = (vec![f64::NAN; 4 * 16], vec![f64::NAN; 4 * 16]);
        let block_out = BlockSumsOut { blocks: &blocks, sums: &mut sums, squares: &mut squares };
        batch.evaluate_blocks(&combos, &mut out, Some(block_out));
        let n = batch.returns() as f64;
        let annual = crate::metrics::PERIODS_PER_YEAR.sqrt();
        for (c, outcome) in out.iter().enumerate() {
            let (sum, sum_sq): (f64, f64) = (sums[c * 16..][..16].iter().sum(), squares[c * 16..][..16].iter().sum());
            let mean = sum / n;
            let volatility = ((sum_sq - sum * mean) / (n - 1.0)).sqrt() * annual;
            let m = &outcome.metrics;
            assert!((sharpe(n, sum, sum_sq) * annual - m.sharpe).abs() < 1e-9 * m.sharpe.abs().max(1.0), "{c}: {m:?}");
            assert!((volatility - m.volatility).abs() < 1e-9 * m.volatility.max(1.0), "{c}: {volatility} vs {m:?}");
            assert!(m.volatility > 0.0);
        }
    }
}
