//! A finished sweep's overfitting statistics as the sidecar and the summary show them:
//! `sweeprun_kernel::overfitting` (DSR, PSR, PBO by CSCV) on the ranks' block sums, the
//! sidecar's `overfitting` object and the summary's last line.
//!
//! Undefined values (fewer than two trials; a deflation whose variance term is not
//! positive) are JSON `null`, the sidecar's rule for every non-finite number.

use crate::block_store::StoredSums;
use crate::error::{Failure, Result};
use crate::strategy::ReturnGroup;
use serde::{Deserialize, Serialize};
use sweeprun_kernel::overfitting::{self, BlockSums, Blocks, Trials};

/// The statistics of one set of trials (issue #12's fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overfitting {
    /// Combos whose full-sample returns vary (the trials, K).
    pub trials: u64,
    /// The combo id with the best full-sample Sharpe (lowest id on ties).
    pub best_combo_id: Option<u64>,
    /// Its Sharpe ratio per period (not annualised).
    pub sharpe_per_period: Option<f64>,
    /// The expected maximum Sharpe of K unskilled trials.
    pub sr0: Option<f64>,
    /// Probabilistic Sharpe ratio: P(SR > 0).
    pub psr: Option<f64>,
    /// Deflated Sharpe ratio: P(SR > SR0).
    pub deflated_sharpe: Option<f64>,
    /// Probability of backtest overfitting (CSCV).
    pub pbo: Option<f64>,
    /// S.
    pub cscv_blocks: u64,
    /// C(S, S/2).
    pub splits: u64,
    /// Skewness of the best combo's returns.
    pub skew: Option<f64>,
    /// Kurtosis (not excess) of the best combo's returns.
    pub kurtosis: Option<f64>,
    /// OLS slope of out-of-sample on in-sample Sharpe of each split's best.
    pub degradation_slope: Option<f64>,
    /// Share of splits whose in-sample best loses money out of sample.
    pub prob_oos_loss: Option<f64>,
}

/// `Some(x)` for a finite `x`.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The sidecar's `overfitting` object: the statistics over every combo of the sweep and,
/// with a `symbol` axis, over each symbol's combos.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepStatistics {
    /// Over every combo (across symbols).
    #[serde(flatten)]
    pub overall: Overfitting,
    /// Why the statistics across symbols are null (their returns run over different days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub across_symbols_not_measured: Option<String>,
    /// Per symbol, in grid order (only with a `symbol` axis).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_symbol: Vec<SymbolStatistics>,
}

/// One symbol's statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SymbolStatistics {
    /// The asset.
    pub symbol: String,
    /// Over its combos.
    #[serde(flatten)]
    pub statistics: Overfitting,
}

/// The statistics of a finished sweep from its combos' block sums: per return group (each
/// symbol) and across them. `returns_of(id)` gives combo `id`'s returns (its equity curve's,
/// the tearsheet path), needed for each best combo's skewness and kurtosis.
pub fn of_sweep(
    groups: &[ReturnGroup],
    sums: &StoredSums,
    returns_of: impl Fn(u64) -> std::result::Result<Vec<f64>, String>,
) -> Result<SweepStatistics> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let over = |ids: std::ops::Range<u64>, returns: usize| -> Result<Overfitting> {
        let blocks = Blocks::new(returns, sums.blocks).map_err(|e| Failure::runtime(format!("internal error: {e}")))?;
        let (block_sums, squares) = sums.slices(ids.clone());
        let ids: Vec<u64> = ids.collect();
        let sums = BlockSums { blocks: &blocks, sums: block_sums, squares };
        compute(&sums, &ids, |row| returns_of(ids[row]), threads).map_err(Failure::runtime)
    };
    let Some(first) = groups.first() else {
        return Err(Failure::runtime("internal error: overfitting statistics of a sweep without returns"));
    };
    let all = first.ids.start..groups.last().map_or(first.ids.end, |g| g.ids.end);
    let aligned = groups.iter().all(|g| g.returns == first.returns && g.dates == first.dates);
    let mut statistics = SweepStatistics {
        overall: if aligned { over(all.clone(), first.returns)? } else { Overfitting::unmeasured(sums.blocks) },
        across_symbols_not_measured: (!aligned).then(|| "the assets' returns run over different days".to_string()),
        per_symbol: Vec::new(),
    };
    if groups.len() > 1 || first.symbol.is_some() {
        for group in groups {
            statistics.per_symbol.push(SymbolStatistics {
                symbol: group.symbol.clone().unwrap_or_default(),
                statistics: over(group.ids.clone(), group.returns)?,
            });
        }
    }
    if !aligned {
        statistics.overall.trials = statistics.per_symbol.iter().map(|s| s.statistics.trials).sum();
    }
    Ok(statistics)
}

impl SweepStatistics {
    /// The summary's closing lines: one per symbol when `per_symbol` (the summary is grouped
    /// by symbol), then the line over the whole sweep, last.
    pub fn summary_lines(&self, per_symbol: bool) -> String {
        let mut text = String::new();
        if per_symbol {
            for symbol in &self.per_symbol {
                let line = symbol.statistics.summary_line();
                let rest = line.strip_prefix("overfitting: ").unwrap_or(&line);
                text.push_str(&format!("overfitting, {}: {rest}\n", symbol.symbol));
            }
        }
        match &self.across_symbols_not_measured {
            Some(why) => text.push_str(&format!(
                "overfitting: not measured across symbols ({why}); per symbol in the sidecar{}\n",
                if per_symbol { " and above" } else { "" }
            )),
            None => {
                text.push_str(&self.overall.summary_line());
                text.push('\n');
            }
        }
        text
    }
}

impl Overfitting {
    /// Nothing measured yet (but the blocks asked for and their splits).
    fn unmeasured(blocks: usize) -> Overfitting {
        let splits = Blocks::new(2 * blocks, blocks).map_or(0, |b| b.splits()) as u64;
        Overfitting {
            trials: 0,
            best_combo_id: None,
            sharpe_per_period: None,
            sr0: None,
            psr: None,
            deflated_sharpe: None,
            pbo: None,
            cscv_blocks: blocks as u64,
            splits,
            skew: None,
            kurtosis: None,
            degradation_slope: None,
            prob_oos_loss: None,
        }
    }
}

/// The statistics of a sweep whose combo `i` (row `i` of `sums`) has id `ids[i]`.
/// `best_returns(i)` gives row `i`'s returns (its equity curve's `standard` returns, the
/// tearsheet path): only the best combo's are needed, for its skewness and kurtosis.
/// CSCV runs on `threads` threads.
pub fn compute(
    sums: &BlockSums,
    ids: &[u64],
    best_returns: impl FnOnce(usize) -> std::result::Result<Vec<f64>, String>,
    threads: usize,
) -> std::result::Result<Overfitting, String> {
    assert_eq!(ids.len(), sums.combos(), "one id per combo");
    let trials = Trials::new(sums);
    let mut result = Overfitting { trials: trials.len() as u64, ..Overfitting::unmeasured(sums.blocks.len()) };
    let Some(best) = trials.best() else { return Ok(result) };
    let row = trials.combos[best];
    result.best_combo_id = Some(ids[row]);
    result.sharpe_per_period = finite(trials.sharpe[best]);
    let returns = best_returns(row)?;
    if returns.len() != sums.blocks.returns() {
        return Err(format!(
            "internal error: combo {} has {} returns, its blocks cut {}",
            ids[row],
            returns.len(),
            sums.blocks.returns()
        ));
    }
    let (skew, kurtosis) = overfitting::moments(&returns);
    (result.skew, result.kurtosis) = (finite(skew), finite(kurtosis));
    if let Some(deflated) = overfitting::deflated_sharpe(&trials.sharpe, best, returns.len(), skew, kurtosis) {
        result.sr0 = finite(deflated.sr0);
        result.psr = finite(deflated.psr);
        result.deflated_sharpe = finite(deflated.deflated);
    }
    if let Some(cscv) = overfitting::cscv(sums, &trials, threads) {
        result.pbo = Some(cscv.pbo);
        result.degradation_slope = finite(cscv.degradation_slope);
        result.prob_oos_loss = Some(cscv.prob_oos_loss);
    }
    Ok(result)
}

impl Overfitting {
    /// The summary's last line, e.g. `overfitting: deflated Sharpe 0.16 for the best of
    /// 3,830 trials; PBO 58% (CSCV, 16 blocks): the best combo is likely luck`.
    pub fn summary_line(&self) -> String {
        let (Some(pbo), Some(id)) = (self.pbo, self.best_combo_id) else {
            return format!(
                "overfitting: not measured ({} with varying returns; it takes 2)",
                crate::report::counted(self.trials, "combo")
            );
        };
        let deflated = self.deflated_sharpe.map_or("undefined".to_string(), |d| format!("{d:.2}"));
        let verdict = if pbo >= 0.5 {
            "the best combo is likely luck".to_string()
        } else if self.deflated_sharpe.is_some_and(|d| d >= 0.95) {
            format!("combo {id} holds up out of sample and after deflation")
        } else {
            format!("combo {id} holds up out of sample, but its Sharpe is not significant after this many trials")
        };
        format!(
            "overfitting: deflated Sharpe {deflated} for the best of {} trials; PBO {:.0}% (CSCV, {} blocks): {verdict}",
            crate::report::thousands(&self.trials.to_string()),
            100.0 * pbo,
            self.cscv_blocks
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sweeprun_kernel::overfitting::{curve_block_sums, Blocks};

    /// Equity curves of `combos` combos over `t` returns: some flat, some drifting.
    fn curves(combos: usize, t: usize) -> Vec<Vec<f64>> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..combos)
            .map(|c| {
                let mut equity = vec![1.0];
                for _ in 0..t {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                    let r = if c % 5 == 0 { 0.0 } else { 0.0002 * c as f64 + 0.02 * noise };
                    equity.push(equity.last().unwrap() * (1.0 + r));
                }
                equity
            })
            .collect()
    }

    #[test]
    fn the_sidecar_object_and_the_summary_line() {
        let (combos, t) = (23, 400);
        let curves = curves(combos, t);
        let blocks = Blocks::new(t, 8).unwrap();
        let (mut sums, mut squares) = (vec![0.0; combos * 8], vec![0.0; combos * 8]);
        for (c, curve) in curves.iter().enumerate() {
            curve_block_sums(curve, &blocks, &mut sums[c * 8..][..8], &mut squares[c * 8..][..8]);
        }
        let block_sums = BlockSums { blocks: &blocks, sums: &sums, squares: &squares };
        let ids: Vec<u64> = (100..100 + combos as u64).collect();
        let returns = |row: usize| Ok(curves[row].windows(2).map(|w| w[1] / w[0] - 1.0).collect());
        let stats = compute(&block_sums, &ids, returns, 2).unwrap();
        assert_eq!(stats.trials, 18, "combos 0, 5, 10, 15, 20 are flat");
        assert_eq!((stats.cscv_blocks, stats.splits), (8, 70));
        let best = stats.best_combo_id.unwrap();
        assert!((100..123).contains(&best) && (best - 100) % 5 != 0);
        for p in [stats.psr, stats.deflated_sharpe, stats.pbo, stats.prob_oos_loss] {
            assert!(p.is_some_and(|p| (0.0..=1.0).contains(&p)), "{stats:?}");
        }
        assert!(stats.deflated_sharpe < stats.psr, "deflation lowers the probability: {stats:?}");
        let json = serde_json::to_value(&stats).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        for key in [
            "trials",
            "best_combo_id",
            "sharpe_per_period",
            "sr0",
            "psr",
            "deflated_sharpe",
            "pbo",
            "cscv_blocks",
            "splits",
            "skew",
            "kurtosis",
            "degradation_slope",
            "prob_oos_loss",
        ] {
            assert!(keys.contains(&key), "{key} missing from {json}");
        }
        let line = stats.summary_line();
        assert!(line.starts_with("overfitting: deflated Sharpe ") && line.contains("for the best of 18 trials; PBO "));
        assert!(line.contains("% (CSCV, 8 blocks): "), "{line}");
    }

    #[test]
    fn fewer_than_two_trials_is_said_and_null() {
        let blocks = Blocks::new(40, 4).unwrap();
        let sums = vec![0.0; 3 * 4];
        let block_sums = BlockSums { blocks: &blocks, sums: &sums, squares: &sums };
        let stats = compute(&block_sums, &[0, 1, 2], |_| unreachable!("no best combo"), 1).unwrap();
        assert_eq!(stats.trials, 0);
        assert_eq!(stats.summary_line(), "overfitting: not measured (0 combos with varying returns; it takes 2)");
        let json = serde_json::to_value(&stats).unwrap();
        assert!(json["pbo"].is_null() && json["deflated_sharpe"].is_null() && json["best_combo_id"].is_null());
        for (n, text) in [(3830, "3,830"), (79398, "79,398"), (999, "999"), (1_000_000, "1,000,000")] {
            assert_eq!(crate::report::thousands(&u64::to_string(&n)), text);
        }
    }
}
