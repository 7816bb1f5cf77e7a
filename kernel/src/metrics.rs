//! Backtest metrics and the `standard` statistics convention.
//!
//! `standard`: the N-1 simple returns of bars 1..N-1 (bar 0 is not a return),
//! sample standard deviation (ddof = 1), annualised with √252, risk-free rate 0.
//! Equity starts at 1.0, so results are scale-free.

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

/// Streaming accumulator of the `standard` statistics over an equity path that starts at 1.0.
///
/// One pass, no stored curve: the kernel updates it once per bar.
#[derive(Clone, Copy, Debug)]
pub struct StandardStats {
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
        Self::new()
    }
}

impl StandardStats {
    /// A path at equity 1.0 with no returns yet.
    pub fn new() -> StandardStats {
        StandardStats {
            returns: 0,
            sum: 0.0,
            sum_sq: 0.0,
            downside_sq: 0.0,
            equity: 1.0,
            peak: 1.0,
            max_drawdown: 0.0,
            underwater_run: 0,
            longest_underwater_run: 0,
        }
    }

    /// Adds `count` bars on which equity stayed exactly where it was (zero returns).
    #[inline]
    pub fn push_flat(&mut self, count: u32) {
        self.returns += count;
        if self.underwater_run > 0 {
            self.underwater_run += count;
            self.longest_underwater_run = self.longest_underwater_run.max(self.underwater_run);
        }
    }

    /// Adds the next bar's equity.
    #[inline]
    pub fn push(&mut self, equity: f64) {
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

    /// The metrics of the path so far (`trades` is the caller's count).
    pub fn finish(&self, trades: u32) -> Metrics {
        let n = f64::from(self.returns);
        let mean = self.sum / n;
        // Rounding can push a zero variance slightly negative; NaN (equity crossed 0) stays NaN.
        let variance = (self.sum_sq - self.sum * mean) / (n - 1.0);
        let variance = if variance < 0.0 { 0.0 } else { variance };
        let std = variance.sqrt();
        let annual = PERIODS_PER_YEAR.sqrt();
        let downside = (self.downside_sq / n).sqrt();
        let cagr = if self.equity > 0.0 { self.equity.powf(PERIODS_PER_YEAR / n) - 1.0 } else { -1.0 };
        Metrics {
            total_return: self.equity - 1.0,
            cagr,
            sharpe: mean / std * annual,
            sortino: mean * annual / downside,
            volatility: std * annual,
            max_drawdown: self.max_drawdown,
            max_drawdown_duration: self.longest_underwater_run,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_equals_two_pass() {
        let curve = [1.0, 1.0, 1.0, 1.1, 0.99, 1.05, 1.2, 1.2, 1.0, 0.9, 1.3];
        let mut stats = StandardStats::new();
        stats.push_flat(2);
        for &e in &curve[3..] {
            stats.push(e);
        }
        let a = stats.finish(3);
        let b = standard_metrics_of_curve(&curve, 3);
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
        assert_eq!(a.max_drawdown_duration, 2);
        assert_eq!(b.max_drawdown_duration, 2);
        assert!((a.max_drawdown - 0.25).abs() < 1e-15);
    }

    #[test]
    fn flat_path_has_nan_ratios() {
        let mut stats = StandardStats::new();
        stats.push_flat(10);
        let m = stats.finish(0);
        assert_eq!(m.total_return, 0.0);
        assert!(m.sharpe.is_nan());
        assert_eq!(m.max_drawdown, 0.0);
    }
}
