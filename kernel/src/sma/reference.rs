//! The plain per-combo `sma_cross` simulation: direct window sums, a stored equity curve,
//! two-pass statistics. Slow and obvious on purpose; the batch kernel is tested against it.

use super::{Account, Direction, Fill, SmaCombo, SmaConfig};
use crate::metrics::{qstrader_metrics_of_curve, standard_metrics_of_curve, Convention, Metrics};

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
        if t + 1 < slow {
            return 0;
        }
        let above = window_sum(t, fast) * slow as i128 > window_sum(t, slow) * fast as i128;
        match (above, config.direction) {
            (true, _) => 1,
            (false, Direction::Long) => 0,
            (false, Direction::LongShort) => -1,
        }
    };
    let mut account = Account { cash: 1.0, shares: 0.0, position: 0, trades: 0 };
    let mut equity = Vec::with_capacity(close.len());
    for t in 0..close.len() {
        match config.fill {
            Fill::Open => {
                if t > 0 {
                    let target = target_at(t - 1);
                    if target != account.position {
                        account.execute(target, open[t], config.fee);
                    }
                }
            }
            Fill::Close => {
                let target = target_at(t);
                if target != account.position {
                    account.execute(target, close[t], config.fee);
                }
            }
        }
        equity.push(account.cash + account.shares * close[t]);
    }
    (equity, account.trades)
}

/// The metrics of one combo, computed the slow way.
pub fn evaluate_one(open: &[f64], close: &[f64], close_ticks: &[i64], config: &SmaConfig, combo: SmaCombo) -> Metrics {
    let (equity, trades) = equity_curve(open, close, close_ticks, config, combo);
    match config.convention {
        Convention::Standard => standard_metrics_of_curve(&equity, trades),
        Convention::Qstrader => qstrader_metrics_of_curve(&equity, trades),
    }
}
