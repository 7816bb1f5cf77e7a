#!/usr/bin/env python3
"""Independent reference for sweeprun's overfitting statistics, written from the papers.

Bailey & Lopez de Prado (2014), "The Deflated Sharpe Ratio"; Bailey, Borwein, Lopez de
Prado & Zhu (2017), "The Probability of Backtest Overfitting". Works on the full returns
matrix (combos x T), the way the papers state it, with numpy; shares no code or
intermediate (block sums) with the Rust implementation.

    python reference.py RETURNS.csv S > out.json

RETURNS.csv: one row per combo (combo id = row number), T comma-separated returns.
Prints JSON: trials, best (combo id), sharpe, sr0, psr, dsr, skew, kurtosis, pbo, splits,
lambdas (split order: in-sample blocks in lexicographic order), degradation_slope,
prob_oos_loss.
"""
import itertools
import json
import math
import sys
from statistics import NormalDist

import numpy as np


def sharpe(r):
    """Per-period Sharpe: mean / std (ddof 1); 0 where the std is 0."""
    sd = np.std(r, ddof=1)
    return float(np.mean(r) / sd) if sd > 0 else 0.0


def sharpes(m):
    """Per-period Sharpe of every column of `m` (returns x combos; vectorised `sharpe`)."""
    sd = np.std(m, axis=0, ddof=1)
    mean = np.mean(m, axis=0)
    out = np.zeros(m.shape[1])
    np.divide(mean, sd, out=out, where=sd > 0)
    return out


def statistics(returns, s):
    """The statistics of a combos x T returns matrix over S CSCV blocks, as a dict."""
    combos, t = returns.shape
    trials = [int(c) for c in np.flatnonzero(np.std(returns, axis=1, ddof=1) > 0)]
    k = len(trials)
    sr = np.array([sharpe(returns[c]) for c in trials])
    best_i = int(np.argmax(sr))  # the first maximum: the lowest id on ties
    best = trials[best_i]
    r = returns[best]
    m = r.mean()
    m2 = np.mean((r - m) ** 2)
    skew = float(np.mean((r - m) ** 3) / m2 ** 1.5)
    kurt = float(np.mean((r - m) ** 4) / m2 ** 2)
    gamma = 0.5772156649015329
    ppf = NormalDist().inv_cdf
    cdf = NormalDist().cdf
    v = float(np.var(sr, ddof=1))
    sr0 = math.sqrt(v) * ((1 - gamma) * ppf(1 - 1 / k) + gamma * ppf(1 - 1 / (k * math.e)))
    srs = float(sr[best_i])
    denom = math.sqrt(1 - skew * srs + (kurt - 1) / 4 * srs ** 2)
    psr = cdf(srs * math.sqrt(t - 1) / denom)
    dsr = cdf((srs - sr0) * math.sqrt(t - 1) / denom)

    # CSCV: S contiguous blocks, the first T mod S one return longer.
    base, longer = divmod(t, s)
    bounds = [0]
    for b in range(s):
        bounds.append(bounds[-1] + base + (1 if b < longer else 0))
    sub = returns[trials]
    by_time = np.ascontiguousarray(sub.T)  # T x K: a split gathers whole rows
    lambdas, is_best, oos_best, losses = [], [], [], 0
    for chosen in itertools.combinations(range(s), s // 2):
        is_cols = np.concatenate([np.arange(bounds[b], bounds[b + 1]) for b in chosen])
        oos_cols = np.concatenate([np.arange(bounds[b], bounds[b + 1]) for b in range(s) if b not in chosen])
        is_sr = sharpes(by_time[is_cols])
        oos_sr = sharpes(by_time[oos_cols])
        n_star = int(np.argmax(is_sr))
        target = oos_sr[n_star]
        rank = np.sum(oos_sr < target) + (np.sum(oos_sr == target) + 1) / 2
        w = rank / (k + 1)
        lambdas.append(math.log(w / (1 - w)))
        is_best.append(float(is_sr[n_star]))
        oos_best.append(float(target))
        losses += 1 if sub[n_star][oos_cols].sum() < 0 else 0
    splits = len(lambdas)
    x, y = np.array(is_best), np.array(oos_best)
    slope = float(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2))
    return {
        "trials": k,
        "best": best,
        "sharpe": srs,
        "sr0": sr0,
        "psr": psr,
        "dsr": dsr,
        "skew": skew,
        "kurtosis": kurt,
        "pbo": sum(1 for l in lambdas if l <= 0) / splits,
        "splits": splits,
        "lambdas": lambdas,
        "degradation_slope": slope,
        "prob_oos_loss": losses / splits,
    }


def main():
    returns = np.loadtxt(sys.argv[1], delimiter=",", ndmin=2)
    json.dump(statistics(returns, int(sys.argv[2])), sys.stdout)


if __name__ == "__main__":
    main()
