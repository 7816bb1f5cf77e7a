//! The `qstrader` accumulator as it was before the equity-slice fast path (commit 4629287),
//! kept verbatim (renamed) as the reference the current one must match bit for bit.

use super::{EquityStats, Metrics, ILL_CONDITIONED_GROWTH, NEAR_PEAK, PERIODS_PER_YEAR};

#[derive(Clone, Debug, Default)]
pub struct OldQstraderStats {
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
    /// `R_1, R_2, ...` (row t's return at index t-1), for exact replays of `L_t`.
    returns: Vec<f64>,
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
}

impl OldQstraderStats {
    /// A path whose first row (R_0 = 0, C_0 = 1) has equity `initial`.
    pub fn new(initial: f64) -> OldQstraderStats {
        let mut stats = OldQstraderStats::default();
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
            let r = self.returns[self.exact_row - 1];
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

impl EquityStats for OldQstraderStats {
    fn reset(&mut self, initial: f64) {
        let mut returns = std::mem::take(&mut self.returns);
        returns.clear();
        *self = OldQstraderStats {
            initial,
            equity: initial,
            rows: 1,
            returns,
            deepest_ratio: 1.0,
            ..OldQstraderStats::default()
        };
    }

    fn push_flat(&mut self, count: u32) {
        for _ in 0..count {
            self.push(self.equity);
        }
    }

    #[inline]
    fn push(&mut self, equity: f64) {
        let r = equity / self.equity - 1.0;
        self.equity = equity;
        self.rows += 1;
        self.returns.push(r);
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

    fn finish(&self, trades: u32) -> Metrics {
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
