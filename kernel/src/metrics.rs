//! Backtest metrics under two statistics conventions ([`Convention`]).
//!
//! * `standard`: the N-1 simple returns of rows 1..N-1 (row 0 is not a return), sample
//!   standard deviation (ddof = 1), annualised with √252, risk-free rate 0.
//! * `qstrader`: QSTrader 0.3.0's statistics, exactly as its `JSONStatistics` computes them
//!   (see the project's `reference/qstrader/SEMANTICS.md` §8).
//!
//! All metrics are scale-free: they depend on equity ratios only.

/// Trading periods per year used to annualise.
pub const PERIODS_PER_YEAR: f64 = 252.0;

/// Metrics of one backtest (one combo).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Final equity / initial equity - 1.
    pub total_return: f64,
    /// Compound annual growth rate over (number of returns / 252) years; -1 if equity hit <= 0.
    pub cagr: f64,
    /// mean(r) / std(r, ddof=1) · √252. NaN when the returns have no spread.
    pub sharpe: f64,
    /// mean(r) · √252 / sqrt(mean(min(r, 0)²)): downside deviation about 0, over all returns.
    pub sortino: f64,
    /// std(r, ddof=1) · √252.
    pub volatility: f64,
    /// Largest fall from a running equity peak, as a positive fraction (0.25 = 25 %).
    pub max_drawdown: f64,
    /// Longest run of consecutive bars whose equity is below its running peak, in bars.
    pub max_drawdown_duration: u32,
    /// Position openings (0 → ±1 and every flip ±1 → ∓1).
    pub trades: u32,
}

impl Metrics {
    /// Column names, in output order.
    pub const NAMES: [&'static str; 8] =
        ["total_return", "cagr", "sharpe", "sortino", "volatility", "max_drawdown", "max_drawdown_duration", "trades"];
}

/// The two statistics conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    /// N-1 returns of rows 1..N-1, sample std (ddof 1).
    Standard,
    /// QSTrader's: N returns with `R_0 = 0`, population std (ddof 0), cumulative returns as
    /// `exp(cumsum(log(1+R)))`, drawdown peak ignoring row 0, CAGR over N/252 years.
    Qstrader,
}

impl Convention {
    /// Name as written on the command line and in sidecars.
    pub fn name(self) -> &'static str {
        match self {
            Convention::Standard => "standard",
            Convention::Qstrader => "qstrader",
        }
    }

    /// Inverse of [`Convention::name`].
    pub fn from_name(name: &str) -> Option<Convention> {
        match name {
            "standard" => Some(Convention::Standard),
            "qstrader" => Some(Convention::Qstrader),
            _ => None,
        }
    }
}

/// A streaming statistics accumulator over an equity path: [`EquityStats::reset`] with the
/// first row's equity, then fed every following row. One accumulator serves many combos
/// in turn, so buffers are allocated once per batch, not per combo.
pub trait EquityStats: Default {
    /// Starts a new path whose first row has equity `initial`.
    fn reset(&mut self, initial: f64);
    /// Adds `count` rows on which equity stayed exactly where it was.
    fn push_flat(&mut self, count: u32);
    /// Adds the next row's equity.
    fn push(&mut self, equity: f64);
    /// Adds the next rows' equities, in order; the same as [`EquityStats::push`] on each.
    #[inline]
    fn push_slice(&mut self, equities: &[f64]) {
        for &equity in equities {
            self.push(equity);
        }
    }
    /// The metrics of the path so far (`trades` is the caller's count).
    fn finish(&self, trades: u32) -> Metrics;
}

/// Streaming accumulator of the `standard` statistics.
///
/// One pass, no stored curve: kernels update it once per bar.
#[derive(Clone, Copy, Debug)]
pub struct StandardStats {
    initial: f64,
    returns: u32,
    sum: f64,
    sum_sq: f64,
    downside_sq: f64,
    equity: f64,
    peak: f64,
    max_drawdown: f64,
    underwater_run: u32,
    longest_underwater_run: u32,
}

impl Default for StandardStats {
    fn default() -> Self {
        Self::new(1.0)
    }
}

impl StandardStats {
    /// A path whose first row has equity `initial`, with no returns yet.
    pub fn new(initial: f64) -> StandardStats {
        StandardStats {
            initial,
            returns: 0,
            sum: 0.0,
            sum_sq: 0.0,
            downside_sq: 0.0,
            equity: initial,
            peak: initial,
            max_drawdown: 0.0,
            underwater_run: 0,
            longest_underwater_run: 0,
        }
    }
}

impl EquityStats for StandardStats {
    fn reset(&mut self, initial: f64) {
        *self = StandardStats::new(initial);
    }

    #[inline]
    fn push_flat(&mut self, count: u32) {
        self.returns += count;
        if self.underwater_run > 0 {
            self.underwater_run += count;
            self.longest_underwater_run = self.longest_underwater_run.max(self.underwater_run);
        }
    }

    #[inline]
    fn push(&mut self, equity: f64) {
        let r = equity / self.equity - 1.0;
        self.returns += 1;
        self.sum += r;
        self.sum_sq += r * r;
        let down = r.min(0.0);
        self.downside_sq += down * down;
        self.equity = equity;
        if equity >= self.peak {
            self.peak = equity;
            self.underwater_run = 0;
        } else {
            self.max_drawdown = self.max_drawdown.max(1.0 - equity / self.peak);
            self.underwater_run += 1;
            self.longest_underwater_run = self.longest_underwater_run.max(self.underwater_run);
        }
    }

    fn finish(&self, trades: u32) -> Metrics {
        standard_metrics(StandardSums {
            returns: self.returns,
            sum: self.sum,
            sum_sq: self.sum_sq,
            downside_sq: self.downside_sq,
            growth: self.equity / self.initial,
            max_drawdown: self.max_drawdown,
            longest_underwater_run: self.longest_underwater_run,
            trades,
        })
    }
}

/// The running sums the `standard` statistics are made from (kernels that keep their own
/// accumulators, e.g. in SIMD lanes, finish through the same formulas).
#[derive(Clone, Copy, Debug)]
pub struct StandardSums {
    /// Number of returns (rows - 1).
    pub returns: u32,
    /// Σ r.
    pub sum: f64,
    /// Σ r².
    pub sum_sq: f64,
    /// Σ min(r, 0)².
    pub downside_sq: f64,
    /// Final equity / initial equity.
    pub growth: f64,
    /// Largest fall from a peak, as a positive fraction.
    pub max_drawdown: f64,
    /// Longest run of rows below the running peak.
    pub longest_underwater_run: u32,
    /// Trades to report.
    pub trades: u32,
}

/// The `standard` metrics of accumulated sums.
pub fn standard_metrics(sums: StandardSums) -> Metrics {
    let n = f64::from(sums.returns);
    let mean = sums.sum / n;
    // Rounding can push a zero variance slightly negative; NaN (equity crossed 0) stays NaN.
    let variance = (sums.sum_sq - sums.sum * mean) / (n - 1.0);
    let variance = if variance < 0.0 { 0.0 } else { variance };
    let std = variance.sqrt();
    let annual = PERIODS_PER_YEAR.sqrt();
    let downside = (sums.downside_sq / n).sqrt();
    let cagr = if sums.growth > 0.0 { sums.growth.powf(PERIODS_PER_YEAR / n) - 1.0 } else { -1.0 };
    Metrics {
        total_return: sums.growth - 1.0,
        cagr,
        sharpe: mean / std * annual,
        sortino: mean * annual / downside,
        volatility: std * annual,
        max_drawdown: sums.max_drawdown,
        max_drawdown_duration: sums.longest_underwater_run,
        trades: sums.trades,
    }
}

/// Streaming accumulator of the `qstrader` statistics (QSTrader 0.3.0's `JSONStatistics`).
///
/// QSTrader's cumulative returns are `C_t = exp(L_t)` with `L_t = cumsum(log(1 + R))`, and
/// its drawdown duration counts rows with `(hwm - C_t) / hwm != 0`, an exact comparison.
/// Taking a `log` per row is the costliest part of a momentum backtest, so the accumulator
/// decides from equity ratios, which agree with `C_t / C_peak` to ~1e-12, and replays the
/// exact `log` sums (from the stored returns, in QSTrader's order) only when a row comes
/// within 1e-10 of the high-water mark, where rounding can decide the answer. A zero
/// return leaves `C_t` unchanged exactly and needs neither.
#[derive(Clone, Debug, Default)]
pub struct QstraderStats {
    initial: f64,
    equity: f64,
    rows: u32,
    sum: f64,
    sum_sq: f64,
    negatives: u32,
    /// The first negative return: the negatives' sums are taken about it, so a tight
    /// cluster of losses keeps its spread (no cancellation in `Σx² - (Σx)²/k`).
    negative_shift: f64,
    negative_sum: f64,
    negative_sum_sq: f64,
    /// Every row's equity (row t at index t), for exact replays of `L_t`: row t's return
    /// is recomputed as `equities[t] / equities[t - 1] - 1`, the same division `push` does.
    equities: Vec<f64>,
    /// `L` summed exactly through row `exact_row`.
    exact_log: f64,
    exact_row: usize,
    /// The high-water mark: its row (>= 1), equity, and exact `L` once replayed.
    peak_row: usize,
    peak_equity: f64,
    peak_log: Option<f64>,
    /// `peak_equity · (1 ± NEAR_PEAK)`: outside this band equity ratios settle the drawdown.
    near_peak: (f64, f64),
    /// Lowest `equity / peak` seen (1 - max drawdown).
    deepest_ratio: f64,
    drawdown_run: u32,
    longest_drawdown_run: u32,
    /// Equity went to or below zero: `log(1 + R)` is NaN from there on in QSTrader, so
    /// every later row is "in drawdown" and CAGR and max drawdown are NaN.
    crossed_zero: bool,
    /// A day lost more than 99.99 %: `1 + R` then carries few significant digits, so
    /// `exp(L)` drifts from the equity ratio, and every later row is decided exactly.
    exact_mode: bool,
    /// Deepest drawdown measured exactly (`(hwm - C)/hwm`) while in exact mode.
    exact_max_drawdown: f64,
    /// Scratch for [`EquityStats::push_slice`]: the returns of the rows being added, and
    /// the negative ones among them.
    slice_returns: Vec<f64>,
    slice_negatives: Vec<f64>,
}

use std::hint::select_unpredictable;

/// Adds `returns` to `sum` and `sum_sq` in order and copies the negative ones, in order, to
/// the front of `negatives` (as long as `returns`); returns how many there are. Out of
/// line so that the two sums stay in registers (inlined, they were kept on the stack).
#[inline(never)]
fn sums_and_negatives(returns: &[f64], negatives: &mut [f64], sum: &mut f64, sum_sq: &mut f64) -> usize {
    let negatives = &mut negatives[..returns.len()];
    let (mut s, mut s2) = (*sum, *sum_sq);
    let mut k = 0;
    for (slot, &r) in returns.iter().enumerate() {
        s += r;
        s2 += r * r;
        // k <= slot: a store per row, no branch.
        negatives[k.min(slot)] = r;
        k += usize::from(r < 0.0);
    }
    (*sum, *sum_sq) = (s, s2);
    k
}

/// Below this `1 + R` (a one-day loss over 99.99 %), equity ratios stop tracking `C_t`.
const ILL_CONDITIONED_GROWTH: f64 = 1e-4;

/// Within this relative distance of the peak, equity ratios cannot settle `C_t < hwm`.
const NEAR_PEAK: f64 = 1e-10;

impl QstraderStats {
    /// A path whose first row (R_0 = 0, C_0 = 1) has equity `initial`.
    pub fn new(initial: f64) -> QstraderStats {
        let mut stats = QstraderStats::default();
        stats.reset(initial);
        stats
    }

    /// Mean of the N returns (R_0 = 0 included).
    pub fn mean_returns(&self) -> f64 {
        self.sum / f64::from(self.rows)
    }

    /// Population standard deviation of the N returns.
    pub fn stdev_returns(&self) -> f64 {
        let n = f64::from(self.rows);
        let mean = self.sum / n;
        let variance = (self.sum_sq - self.sum * mean) / n;
        (if variance < 0.0 { 0.0 } else { variance }).sqrt()
    }

    /// Brings the exact `L` up to the current row (recording the peak's `L` on the way).
    fn replay_logs(&mut self) {
        let last = self.rows as usize - 1;
        while self.exact_row < last {
            self.exact_row += 1;
            let r = self.equities[self.exact_row] / self.equities[self.exact_row - 1] - 1.0;
            if r != 0.0 {
                self.exact_log += (1.0 + r).ln();
            }
            if self.exact_row == self.peak_row {
                self.peak_log = Some(self.exact_log);
            }
        }
    }

    fn new_peak(&mut self, row: usize, equity: f64, log: Option<f64>) {
        self.peak_row = row;
        self.peak_equity = equity;
        self.peak_log = log;
        self.near_peak = (equity * (1.0 - NEAR_PEAK), equity * (1.0 + NEAR_PEAK));
        self.drawdown_run = 0;
    }

    #[inline]
    fn below_peak(&mut self, equity: f64) {
        // A multiply per row; the division only when a new low is set.
        if equity < self.peak_equity * self.deepest_ratio {
            self.deepest_ratio = equity / self.peak_equity;
        }
        self.drawdown_run += 1;
        self.longest_drawdown_run = self.longest_drawdown_run.max(self.drawdown_run);
    }
}

impl EquityStats for QstraderStats {
    fn reset(&mut self, initial: f64) {
        let mut equities = std::mem::take(&mut self.equities);
        equities.clear();
        equities.push(initial);
        let slice_returns = std::mem::take(&mut self.slice_returns);
        let slice_negatives = std::mem::take(&mut self.slice_negatives);
        *self = QstraderStats {
            initial,
            equity: initial,
            rows: 1,
            equities,
            slice_returns,
            slice_negatives,
            deepest_ratio: 1.0,
            ..QstraderStats::default()
        };
    }

    fn push_flat(&mut self, count: u32) {
        for _ in 0..count {
            self.push(self.equity);
        }
    }

    #[inline]
    fn push(&mut self, equity: f64) {
        self.equities.push(equity);
        self.step(equity);
    }

    fn push_slice(&mut self, equities: &[f64]) {
        self.equities.extend_from_slice(equities);
        let mut next = 0;
        while next < equities.len() {
            // The common path needs a positive peak (so every later row is positive).
            if !(self.crossed_zero || self.exact_mode || self.rows < 2) && self.peak_equity > 0.0 {
                next = self.common_rows(equities, next);
                if next == equities.len() {
                    break;
                }
            }
            self.step(equities[next]);
            next += 1;
        }
    }

    fn finish(&self, trades: u32) -> Metrics {
        self.metrics(trades)
    }
}

impl QstraderStats {
    /// Adds the rows of `equities` from index `from` on, while they take the common path
    /// (a return above -99.99 %, equity clear of the high-water mark's band or exactly
    /// flat); returns the index of the first row that does not (not added), or
    /// `equities.len()`. Every value is computed by the operations [`Self::step`] does on
    /// such a row, in the same order, so the results are bit-identical; only the work is
    /// split in passes: the returns (vectorised divisions), the drawdown state, then the
    /// sums, so no branch waits for a division.
    /// Requires `!crossed_zero && !exact_mode && rows >= 2 && peak_equity > 0`.
    #[inline]
    fn common_rows(&mut self, equities: &[f64], from: usize) -> usize {
        let equities = &equities[from..];
        let mut returns = std::mem::take(&mut self.slice_returns);
        returns.clear();
        returns.push(equities[0] / self.equity - 1.0);
        returns.extend(equities.windows(2).map(|pair| pair[1] / pair[0] - 1.0));

        // The drawdown state, up to the first row off the common path.
        // Every equity from row 1 on is positive here (the peak is, and a change of sign
        // would have crossed zero), so f64 order is the order of the bit patterns: the
        // comparisons and selects of the peak run on integers, as conditional moves. (With
        // f64 selects, baseline x86-64, which has no blend instruction, branches, and a new
        // high versus a row below it is a coin flip for the predictor.)
        let mut peak_row = self.peak_row;
        let mut peak_bits = self.peak_equity.to_bits();
        let (mut low_bits, mut high_bits) = (self.near_peak.0.to_bits(), self.near_peak.1.to_bits());
        let mut peak_reset = false;
        let mut deepest_ratio = self.deepest_ratio;
        let (mut drawdown_run, mut longest) = (self.drawdown_run, self.longest_drawdown_run);
        let first_row = self.rows as usize;
        let mut taken = 0;
        for (&equity, &r) in equities.iter().zip(&returns) {
            // NaN, a crossing of zero and an ill-conditioned return all fail this test.
            if (1.0 + r).partial_cmp(&ILL_CONDITIONED_GROWTH).is_none_or(|o| o.is_lt()) {
                break;
            }
            let bits = equity.to_bits();
            let (above, below) = (bits > high_bits, bits < low_bits);
            let flat = r == 0.0;
            if !flat && !(above | below) {
                break;
            }
            // A zero return carries the run on (if any); a new high ends it; a row below the
            // peak extends it (and a new high is above every fraction of the peak).
            let new_high = !flat & above;
            let peak_equity = f64::from_bits(peak_bits);
            if !flat && equity < peak_equity * deepest_ratio {
                deepest_ratio = equity / peak_equity;
            }
            let step = if flat { u32::from(drawdown_run > 0) } else { 1 };
            drawdown_run = select_unpredictable(new_high, 0, drawdown_run + step);
            longest = longest.max(drawdown_run);
            let band = ((equity * (1.0 - NEAR_PEAK)).to_bits(), (equity * (1.0 + NEAR_PEAK)).to_bits());
            peak_row = select_unpredictable(new_high, first_row + taken, peak_row);
            peak_bits = select_unpredictable(new_high, bits, peak_bits);
            low_bits = select_unpredictable(new_high, band.0, low_bits);
            high_bits = select_unpredictable(new_high, band.1, high_bits);
            peak_reset |= new_high;
            taken += 1;
        }
        self.peak_row = peak_row;
        self.peak_equity = f64::from_bits(peak_bits);
        self.near_peak = (f64::from_bits(low_bits), f64::from_bits(high_bits));
        if peak_reset {
            self.peak_log = None;
        }
        self.deepest_ratio = deepest_ratio;
        (self.drawdown_run, self.longest_drawdown_run) = (drawdown_run, longest);

        // The sums over the same rows, in row order.
        let taken_returns = &returns[..taken];
        let (mut sum, mut sum_sq) = (self.sum, self.sum_sq);
        let (mut negatives, mut negative_shift) = (self.negatives, self.negative_shift);
        let (mut negative_sum, mut negative_sum_sq) = (self.negative_sum, self.negative_sum_sq);
        // Non-negative returns add `d = 0.0` to the negatives' sums, which changes neither
        // (they are never -0.0), so those sums run over the negative returns alone, moved
        // to the front of the scratch as they come (a store per row, no branch).
        let mut negative_returns = std::mem::take(&mut self.slice_negatives);
        // Only grown, never cleared: every slot read is written first.
        if negative_returns.len() < taken_returns.len() {
            negative_returns.resize(taken_returns.len(), 0.0);
        }
        let k = sums_and_negatives(taken_returns, &mut negative_returns, &mut sum, &mut sum_sq);
        let taken_negatives = &negative_returns[..k];
        if negatives == 0 {
            // The shift is the path's first negative return (NaN rows were not taken).
            if let Some(&first_negative) = taken_negatives.first() {
                negative_shift = first_negative;
            }
        }
        for &r in taken_negatives {
            let d = r - negative_shift;
            negative_sum += d;
            negative_sum_sq += d * d;
        }
        negatives += k as u32;
        self.slice_negatives = negative_returns;
        (self.sum, self.sum_sq) = (sum, sum_sq);
        (self.negatives, self.negative_shift) = (negatives, negative_shift);
        (self.negative_sum, self.negative_sum_sq) = (negative_sum, negative_sum_sq);
        if taken > 0 {
            self.equity = equities[taken - 1];
        }
        self.rows += taken as u32;
        self.slice_returns = returns;
        from + taken
    }

    /// Adds the next row (its equity already in `equities`).
    #[inline]
    fn step(&mut self, equity: f64) {
        let r = equity / self.equity - 1.0;
        self.equity = equity;
        self.rows += 1;
        self.sum += r;
        self.sum_sq += r * r;
        // Branch-free: the sign of a daily return is a coin flip for the predictor.
        let negative = r < 0.0;
        if negative && self.negatives == 0 {
            self.negative_shift = r;
        }
        let d = if negative { r - self.negative_shift } else { 0.0 };
        self.negatives += u32::from(negative);
        self.negative_sum += d;
        self.negative_sum_sq += d * d;
        if (1.0 + r).is_nan() || 1.0 + r <= 0.0 {
            self.crossed_zero = true;
        }
        if self.crossed_zero {
            self.drawdown_run += 1;
            self.longest_drawdown_run = self.longest_drawdown_run.max(self.drawdown_run);
            return;
        }
        let row = self.rows as usize - 1;
        if row == 1 {
            // QSTrader's high-water mark starts at row 1 (hwm_0 = 0).
            self.new_peak(1, equity, None);
            return;
        }
        if r == 0.0 {
            // C_t == C_{t-1} exactly: the drawdown (zero or not) carries on.
            if self.drawdown_run > 0 {
                self.drawdown_run += 1;
                self.longest_drawdown_run = self.longest_drawdown_run.max(self.drawdown_run);
            }
            return;
        }
        self.exact_mode |= 1.0 + r < ILL_CONDITIONED_GROWTH;
        if self.exact_mode {
            self.replay_logs();
            let (growth, peak) = (self.exact_log.exp(), self.peak_log.expect("replay passes the peak row").exp());
            if growth >= peak {
                self.new_peak(row, equity, Some(self.exact_log));
            } else {
                self.exact_max_drawdown = self.exact_max_drawdown.max((peak - growth) / peak);
                self.drawdown_run += 1;
                self.longest_drawdown_run = self.longest_drawdown_run.max(self.drawdown_run);
            }
            return;
        }
        if equity > self.near_peak.1 {
            self.new_peak(row, equity, None);
        } else if equity < self.near_peak.0 {
            self.below_peak(equity);
        } else {
            self.replay_logs();
            let peak_log = self.peak_log.expect("replay passes the peak row");
            if self.exact_log.exp() >= peak_log.exp() {
                self.new_peak(row, equity, Some(self.exact_log));
            } else {
                self.below_peak(equity);
            }
        }
    }

    fn metrics(&self, trades: u32) -> Metrics {
        let n = f64::from(self.rows);
        let annual = PERIODS_PER_YEAR.sqrt();
        let mean = self.mean_returns();
        let std = self.stdev_returns();
        let downside = if self.negatives == 0 {
            f64::NAN
        } else {
            let k = f64::from(self.negatives);
            let variance = (self.negative_sum_sq - self.negative_sum * (self.negative_sum / k)) / k;
            (if variance < 0.0 { 0.0 } else { variance }).sqrt()
        };
        // C_N and the deepest drawdown from equity ratios (within ~1e-12 of exp(L)).
        let growth = self.equity / self.initial;
        let years = n / PERIODS_PER_YEAR;
        let (cagr, max_drawdown) = if self.crossed_zero {
            (f64::NAN, f64::NAN)
        } else if self.exact_mode {
            let drawdown = (1.0 - self.deepest_ratio).max(self.exact_max_drawdown);
            (self.exact_log.exp().powf(1.0 / years) - 1.0, drawdown)
        } else {
            (growth.powf(1.0 / years) - 1.0, 1.0 - self.deepest_ratio)
        };
        Metrics {
            total_return: growth - 1.0,
            cagr,
            sharpe: annual * mean / std,
            sortino: annual * mean / downside,
            volatility: std * annual,
            max_drawdown,
            max_drawdown_duration: self.longest_drawdown_run,
            trades,
        }
    }
}

/// The `standard` metrics of a stored equity curve (starting at `equity[0]`), computed
/// the plain two-pass way. Slow; the reference the streaming kernel is tested against.
pub fn standard_metrics_of_curve(equity: &[f64], trades: u32) -> Metrics {
    let returns: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let variance = returns.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (n - 1.0);
    let downside = (returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n).sqrt();
    let annual = PERIODS_PER_YEAR.sqrt();
    let (mut peak, mut max_dd, mut run, mut longest) = (f64::NEG_INFINITY, 0.0f64, 0u32, 0u32);
    for &e in equity {
        if e >= peak {
            peak = e;
            run = 0;
        } else {
            max_dd = max_dd.max(1.0 - e / peak);
            run += 1;
            longest = longest.max(run);
        }
    }
    let growth = equity[equity.len() - 1] / equity[0];
    Metrics {
        total_return: growth - 1.0,
        cagr: if growth > 0.0 { growth.powf(PERIODS_PER_YEAR / n) - 1.0 } else { -1.0 },
        sharpe: mean / variance.sqrt() * annual,
        sortino: mean * annual / downside,
        volatility: variance.sqrt() * annual,
        max_drawdown: max_dd,
        max_drawdown_duration: longest,
        trades,
    }
}

/// QSTrader's per-row series of an equity curve: `R` (with `R_0 = 0`), `C = exp(cumsum(log(1+R)))`
/// and the drawdowns `(hwm - C)/hwm` with the high-water mark starting at row 1.
#[derive(Clone, Debug, PartialEq)]
pub struct QstraderSeries {
    /// Daily returns, `R_0 = 0`.
    pub returns: Vec<f64>,
    /// Cumulative returns `C_t`.
    pub cumulative: Vec<f64>,
    /// Drawdowns, `DD_0 = 0`.
    pub drawdowns: Vec<f64>,
}

impl QstraderSeries {
    /// The series of `equity`, in QSTrader's operation order.
    pub fn of(equity: &[f64]) -> QstraderSeries {
        let returns: Vec<f64> = std::iter::once(0.0).chain(equity.windows(2).map(|w| w[1] / w[0] - 1.0)).collect();
        let mut log_sum = 0.0;
        let cumulative: Vec<f64> = returns
            .iter()
            .map(|r| {
                log_sum += (1.0 + r).ln();
                log_sum.exp()
            })
            .collect();
        let mut high_water = 0.0f64;
        let drawdowns = cumulative
            .iter()
            .enumerate()
            .map(|(t, &c)| {
                if t == 0 {
                    return 0.0;
                }
                high_water = high_water.max(c);
                (high_water - c) / high_water
            })
            .collect();
        QstraderSeries { returns, cumulative, drawdowns }
    }
}

/// The `qstrader` metrics of a stored equity curve, computed the plain way (two passes,
/// stored cumulative returns). Slow; the reference the streaming kernel is tested against.
pub fn qstrader_metrics_of_curve(equity: &[f64], trades: u32) -> Metrics {
    let n = equity.len() as f64;
    let QstraderSeries { returns, cumulative, drawdowns } = QstraderSeries::of(equity);
    let mean = returns.iter().sum::<f64>() / n;
    let std = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    let negative: Vec<f64> = returns.iter().copied().filter(|r| *r < 0.0).collect();
    let negative_mean = negative.iter().sum::<f64>() / negative.len() as f64;
    let negative_std =
        (negative.iter().map(|r| (r - negative_mean).powi(2)).sum::<f64>() / negative.len() as f64).sqrt();
    let (mut max_dd, mut run, mut longest) = (0.0f64, 0u32, 0u32);
    for &dd in &drawdowns[1..] {
        // numpy's max propagates NaN (equity crossed zero, log(1 + R) undefined).
        max_dd = if max_dd.is_nan() || dd.is_nan() { f64::NAN } else { max_dd.max(dd) };
        run = if dd != 0.0 { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let annual = PERIODS_PER_YEAR.sqrt();
    Metrics {
        total_return: equity[equity.len() - 1] / equity[0] - 1.0,
        cagr: cumulative[cumulative.len() - 1].powf(1.0 / (n / PERIODS_PER_YEAR)) - 1.0,
        sharpe: annual * mean / std,
        sortino: annual * mean / negative_std,
        volatility: std * annual,
        max_drawdown: max_dd,
        max_drawdown_duration: longest,
        trades,
    }
}

#[cfg(test)]
#[path = "metrics_old_qstrader.rs"]
mod old_qstrader;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(a: &Metrics, b: &Metrics) {
        for (x, y) in [
            (a.total_return, b.total_return),
            (a.sharpe, b.sharpe),
            (a.sortino, b.sortino),
            (a.cagr, b.cagr),
            (a.volatility, b.volatility),
            (a.max_drawdown, b.max_drawdown),
        ] {
            assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{x} vs {y}");
        }
    }

    #[test]
    fn streaming_equals_two_pass() {
        let curve = [1.0, 1.0, 1.0, 1.1, 0.99, 1.05, 1.2, 1.2, 1.0, 0.9, 1.3];
        let mut stats = StandardStats::new(1.0);
        stats.push_flat(2);
        for &e in &curve[3..] {
            stats.push(e);
        }
        let a = stats.finish(3);
        let b = standard_metrics_of_curve(&curve, 3);
        assert_close(&a, &b);
        assert_eq!(a.max_drawdown_duration, 2);
        assert_eq!(b.max_drawdown_duration, 2);
        assert!((a.max_drawdown - 0.25).abs() < 1e-15);
    }

    #[test]
    fn qstrader_streaming_equals_two_pass() {
        let curve = [100.0, 100.0, 110.0, 99.0, 105.0, 120.0, 120.0, 100.0, 90.0, 130.0, 129.0];
        let mut stats = QstraderStats::new(curve[0]);
        for &e in &curve[1..] {
            stats.push(e);
        }
        let a = stats.finish(2);
        let b = qstrader_metrics_of_curve(&curve, 2);
        assert_close(&a, &b);
        // Rows below the peak: 99, 105 (after 110); 100, 90 (after 120); 129 (after 130).
        assert_eq!((a.max_drawdown_duration, b.max_drawdown_duration), (2, 2));
        assert!((a.max_drawdown - 0.25).abs() < 1e-12);
        // R_0 = 0 counts: 11 returns, not 10.
        let mean: f64 = curve.windows(2).map(|w| w[1] / w[0] - 1.0).sum::<f64>() / 11.0;
        assert!((stats.mean_returns() - mean).abs() < 1e-15);
    }

    #[test]
    fn flat_path_has_nan_ratios() {
        let mut stats = StandardStats::new(1.0);
        stats.push_flat(10);
        let m = stats.finish(0);
        assert_eq!(m.total_return, 0.0);
        assert!(m.sharpe.is_nan());
        assert_eq!(m.max_drawdown, 0.0);
    }

    /// xorshift64*: a fixed, dependency-free stream for the random paths below.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Equity paths that exercise every branch of the `qstrader` accumulator: ordinary
    /// moves, exactly flat rows, rows within an ulp or 1e-10 of the peak, returns to an
    /// earlier peak value, one-day losses over 99.99 %, zero, negative and NaN equity.
    fn random_path(rng: &mut Rng) -> Vec<f64> {
        let len = 1 + rng.below(300) as usize;
        // A few paths start (and stay, until they cross zero) negative.
        let sign = if rng.below(16) == 0 { -1.0 } else { 1.0 };
        let mut path = vec![sign * 1e6 * (0.5 + rng.unit())];
        let mut peak = path[0];
        let special = rng.below(4) == 0;
        while path.len() < len {
            let last = path[path.len() - 1];
            let next = match rng.below(if special { 24 } else { 16 }) {
                0..=7 => last * (1.0 + 0.02 * (rng.unit() - 0.5)),
                8 | 9 => last,
                10 => peak,
                11 => peak * (1.0 + 1e-11 * (rng.unit() - 0.5)),
                12 => f64::from_bits(peak.to_bits().wrapping_add(rng.below(5)).wrapping_sub(2)),
                13 => last * (1.0 + 1e-10 * (rng.unit() - 0.5)),
                14 => f64::from_bits(last.to_bits() + 1),
                15 => last * (1.0 + 0.3 * (rng.unit() - 0.3)),
                16 | 17 => last * 1e-5 * rng.unit(),
                18 => 0.0,
                19 => -last,
                20 => f64::NAN,
                21 => last * 1e-4,
                _ => last * (1.0 + 0.01 * (rng.unit() - 0.5)),
            };
            peak = peak.max(next);
            path.push(next);
        }
        path
    }

    /// Equal bit for bit; any NaN equals any NaN (the compiler may commute an addition,
    /// which changes which NaN payload propagates, never a number).
    fn same_bits(a: &Metrics, b: &Metrics) -> bool {
        let bits = |m: &Metrics| {
            [m.total_return, m.cagr, m.sharpe, m.sortino, m.volatility, m.max_drawdown].map(|x| {
                if x.is_nan() {
                    u64::MAX
                } else {
                    x.to_bits()
                }
            })
        };
        bits(a) == bits(b) && a.max_drawdown_duration == b.max_drawdown_duration && a.trades == b.trades
    }

    /// The current accumulator (row by row, and by slices split anywhere) gives exactly the
    /// metrics of the pre-fast-path one (`old_qstrader`), reusing one accumulator across paths.
    #[test]
    fn qstrader_matches_previous_implementation_bit_for_bit() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut rows, mut sliced) = (QstraderStats::default(), QstraderStats::default());
        for case in 0..20_000 {
            let path = random_path(&mut rng);
            let mut old = old_qstrader::OldQstraderStats::new(path[0]);
            for &e in &path[1..] {
                old.push(e);
            }
            rows.reset(path[0]);
            for &e in &path[1..] {
                rows.push(e);
            }
            sliced.reset(path[0]);
            let mut rest = &path[1..];
            while !rest.is_empty() {
                let take = 1 + rng.below(rest.len() as u64) as usize;
                sliced.push_slice(&rest[..take]);
                rest = &rest[take..];
            }
            let expected = old.finish(7);
            for got in [rows.finish(7), sliced.finish(7)] {
                assert!(same_bits(&got, &expected), "case {case}: {got:?} vs {expected:?} for {path:?}");
            }
        }
    }
}
