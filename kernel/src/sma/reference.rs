//! The plain per-combo `sma_cross` simulation: direct window sums, a stored equity curve,
//! two-pass statistics. Slow and obvious on purpose; the batch kernel is tested against it.
//!
//! The execution arithmetic is written here independently of the batch kernel's, straight
//! from the normative spec (`reference/sma/README.md` §5), with the float operations in the
//! order of the spec's formulas, so a mistake in the kernel's fills, fees or shorts shows
//! up as a difference instead of being shared.

use super::{Direction, Fill, SmaCombo, SmaConfig};
use crate::decimal::{ExactCloses, Ticks};
use crate::metrics::{qstrader_metrics_of_curve, standard_metrics_of_curve, Convention, Metrics};
use num_bigint::BigUint;

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
                // Long: shares = +S, cash = cash − S·p − fee·S·p (≈ 0; the project keeps it
                // at or above 0, so long-only equity never goes negative: docs/DESIGN.md).
                self.shares = s;
                self.cash = (self.cash - s * p - fee * s * p).max(0.0);
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
/// `open` is only read with `fill = open`; `close_exact` are the closes as written.
pub fn equity_curve(
    open: &[f64],
    close: &[f64],
    close_exact: &ExactCloses,
    config: &SmaConfig,
    combo: SmaCombo,
) -> (Vec<f64>, u32) {
    let (fast, slow) = (combo.fast as usize, combo.slow as usize);
    let target_at = |t: usize| -> i8 {
        if t + 1 < slow.max(fast) {
            return 0;
        }
        let above = fast_mean_above(close_exact, t, fast, slow);
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

/// Spec §3: `SMA_fast > SMA_slow` at the close of bar `t`, from direct window sums of the
/// exact closes: `sum_fast·slow > sum_slow·fast` (128-bit when it fits, else arbitrary
/// precision).
fn fast_mean_above(closes: &ExactCloses, t: usize, fast: usize, slow: usize) -> bool {
    let from = t + 1 - fast.max(slow);
    // The longer window's closes, oldest first; a window of n is the last n of them.
    let window: Option<Vec<i128>> = match &closes.ticks {
        Ticks::I64(ticks) => Some(ticks[from..=t].iter().map(|&x| i128::from(x)).collect()),
        Ticks::I128(ticks) => Some(ticks[from..=t].to_vec()),
        Ticks::Big(_) => None,
    };
    let narrow = window.and_then(|w| {
        let sum = |n: usize| w[w.len() - n..].iter().try_fold(0i128, |s, &x| s.checked_add(x));
        Some(sum(fast)?.checked_mul(slow as i128)? > sum(slow)?.checked_mul(fast as i128)?)
    });
    if let Some(answer) = narrow {
        return answer;
    }
    let big: Vec<BigUint> = match &closes.ticks {
        Ticks::I64(ticks) => ticks[from..=t].iter().map(|&x| BigUint::from(x as u64)).collect(),
        Ticks::I128(ticks) => ticks[from..=t].iter().map(|&x| BigUint::from(x as u128)).collect(),
        Ticks::Big(ticks) => ticks[from..=t].to_vec(),
    };
    let sum = |n: usize| -> BigUint { big[big.len() - n..].iter().sum() };
    sum(fast) * slow > sum(slow) * fast
}

/// The metrics of one combo, computed the slow way.
pub fn evaluate_one(
    open: &[f64],
    close: &[f64],
    close_exact: &ExactCloses,
    config: &SmaConfig,
    combo: SmaCombo,
) -> Metrics {
    let (equity, trades) = equity_curve(open, close, close_exact, config, combo);
    match config.convention {
        Convention::Standard => standard_metrics_of_curve(&equity, trades),
        Convention::Qstrader => qstrader_metrics_of_curve(&equity, trades),
    }
}
