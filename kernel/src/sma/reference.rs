//! The plain per-combo `sma_cross` simulation: direct window sums, a stored equity curve,
//! two-pass statistics. Slow and obvious on purpose; the batch kernel is tested against it.
//!
//! The execution arithmetic is written here independently of the batch kernel's, straight
//! from the normative spec (`reference/sma/README.md` §5), with the float operations in the
//! order of the spec's formulas, so a mistake in the kernel's fills, fees or shorts shows
//! up as a difference instead of being shared.

use super::{Direction, Fill, SmaCombo, SmaConfig};
use crate::metrics::{qstrader_metrics_of_curve, standard_metrics_of_curve, Convention, Metrics};

/// The simulated book of spec §5: cash, signed share count, current position and trades.
struct Book {
    cash: f64,
    shares: f64,
    /// The current position `cur` ∈ {-1, 0, +1}.
    cur: i8,
    /// Position openings so far (spec §7).
    trades: u32,
}

impl Book {
    /// Spec §5: executes `target` (≠ `cur`) at fill price `p` with fee rate `fee`.
    fn execute(&mut self, target: i8, p: f64, fee: f64) {
        // 1. If cur ≠ 0, close the position: cash = cash + shares·p − fee·|shares|·p, shares = 0.
        if self.cur != 0 {
            self.cash = self.cash + self.shares * p - fee * self.shares.abs() * p;
            self.shares = 0.0;
        }
        // 2. If target ≠ 0, open with all the cash: S = cash / (p·(1+fee)).
        if target != 0 {
            let s = self.cash / (p * (1.0 + fee));
            if target == 1 {
                // Long: shares = +S, cash = cash − S·p − fee·S·p.
                self.shares = s;
                self.cash = self.cash - s * p - fee * s * p;
            } else {
                // Short: shares = −S, cash = cash + S·p − fee·S·p.
                self.shares = -s;
                self.cash = self.cash + s * p - fee * s * p;
            }
            // §7: every opening (0→±1 and every flip) is one trade.
            self.trades += 1;
        }
        // 3. cur = target.
        self.cur = target;
    }

    /// Spec §6: equity marked at the close.
    fn equity(&self, close: f64) -> f64 {
        self.cash + self.shares * close
    }
}

/// Simulates one combo bar by bar and returns its equity curve (starting at 1.0) and trades.
///
/// `open` is only read with `fill = open`; `close_ticks` are the closes as exact integers.
pub fn equity_curve(
    open: &[f64],
    close: &[f64],
    close_ticks: &[i64],
    config: &SmaConfig,
    combo: SmaCombo,
) -> (Vec<f64>, u32) {
    let (fast, slow) = (combo.fast as usize, combo.slow as usize);
    let window_sum = |t: usize, n: usize| -> i128 { close_ticks[t + 1 - n..=t].iter().map(|&x| i128::from(x)).sum() };
    let target_at = |t: usize| -> i8 {
        if t + 1 < slow.max(fast) {
            return 0;
        }
        let above = window_sum(t, fast) * slow as i128 > window_sum(t, slow) * fast as i128;
        match (above, config.direction) {
            (true, _) => 1,
            (false, Direction::Long) => 0,
            (false, Direction::LongShort) => -1,
        }
    };
    let mut book = Book { cash: 1.0, shares: 0.0, cur: 0, trades: 0 };
    let mut equity = Vec::with_capacity(close.len());
    for t in 0..close.len() {
        match config.fill {
            Fill::Open => {
                if t > 0 {
                    let target = target_at(t - 1);
                    if target != book.cur {
                        book.execute(target, open[t], config.fee);
                    }
                }
            }
            Fill::Close => {
                let target = target_at(t);
                if target != book.cur {
                    book.execute(target, close[t], config.fee);
                }
            }
        }
        equity.push(book.equity(close[t]));
    }
    (equity, book.trades)
}

/// The metrics of one combo, computed the slow way.
pub fn evaluate_one(open: &[f64], close: &[f64], close_ticks: &[i64], config: &SmaConfig, combo: SmaCombo) -> Metrics {
    let (equity, trades) = equity_curve(open, close, close_ticks, config, combo);
    match config.convention {
        Convention::Standard => standard_metrics_of_curve(&equity, trades),
        Convention::Qstrader => qstrader_metrics_of_curve(&equity, trades),
    }
}
