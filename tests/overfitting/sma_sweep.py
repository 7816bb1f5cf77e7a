#!/usr/bin/env python3
"""The overfitting statistics of the canonical SMA sweep, independently of sweeprun.

Simulates all 8 variants of the canonical SMA-crossover sweep (grid, signals, fills, fees
and equity as ../reference/sma/README.md defines them) with numpy, vectorised over the
3,830 combos, checks every combo's total return, Sharpe ratio and trade count against the
shipped reference table (so the returns below are the reference's), and computes the
statistics of each variant's full returns matrix with reference.py (written from the
papers; no block sums).

    python sma_sweep.py PRICES.csv REFERENCE.csv S > out.json

PRICES.csv: GOOG.csv (`,Open,High,Low,Close,Volume`, 2-decimal prices: signals on exact
integer cents) or SPX_adj.csv (`date,open,close`, float-written: signals on float64 means,
which agree with the exact decimal comparison on every bar of that file, per its README).
Prints JSON: {"long,open,0": {statistics}, ...}, keys as the reference's
direction,fill,fee columns.
"""
import csv
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import statistics  # noqa: E402


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = [h.lower() for h in rows[0]]
    o, c = header.index("open"), header.index("close")
    closes_text = [r[c] for r in rows[1:]]
    open_ = np.array([float(r[o]) for r in rows[1:]])
    close = np.array([float(t) for t in closes_text])
    cents = None
    if all(len(t.split(".")[1]) <= 2 if "." in t else True for t in closes_text):
        cents = np.array([round(float(t) * 100) for t in closes_text], dtype=np.int64)
    return open_, close, cents


def grid():
    combos = [(f, s) for f in range(5, 101) for s in range(10, 251, 5) if f < s]
    assert len(combos) == 3830
    fast = np.array([f for f, _ in combos], dtype=np.int64)
    slow = np.array([s for _, s in combos], dtype=np.int64)
    return fast, slow


def targets(close, cents, fast, slow, direction):
    """targets[t, c]: the position combo c wants at the close of bar t."""
    n = len(close)
    above = np.zeros((n, len(fast)), dtype=bool)
    if cents is not None:
        cs = np.concatenate([[0], np.cumsum(cents)])
    else:
        cs = np.concatenate([[0.0], np.cumsum(close)])
    for t in range(n):
        ok = t >= slow - 1
        sum_f = cs[t + 1] - cs[np.maximum(t + 1 - fast, 0)]
        sum_s = cs[t + 1] - cs[np.maximum(t + 1 - slow, 0)]
        if cents is not None:
            above[t] = ok & (sum_f * slow > sum_s * fast)
        else:
            above[t] = ok & (sum_f / fast > sum_s / slow)
    warm = np.arange(n)[:, None] >= (slow - 1)[None, :]
    if direction == "long":
        return np.where(above, 1, 0) * warm
    return np.where(above, 1, -1) * warm


def simulate(open_, close, target, fill, fee):
    """Equity (N x combos) and trade counts, as the README's execution rules say."""
    n, combos = target.shape
    cash = np.ones(combos)
    shares = np.zeros(combos)
    cur = np.zeros(combos, dtype=np.int64)
    trades = np.zeros(combos, dtype=np.int64)
    equity = np.empty((n, combos))
    for t in range(n):
        if fill == "open":
            want, price = (target[t - 1], open_[t]) if t > 0 else (None, None)
        else:
            want, price = target[t], close[t]
        if want is not None:
            move = want != cur
            closing = move & (cur != 0)
            cash = np.where(closing, cash + shares * price - fee * np.abs(shares) * price, cash)
            shares = np.where(closing, 0.0, shares)
            opening = move & (want != 0)
            size = cash / (price * (1 + fee))
            long_open = opening & (want > 0)
            short_open = opening & (want < 0)
            cash = np.where(long_open, cash - size * price - fee * size * price, cash)
            cash = np.where(short_open, cash + size * price - fee * size * price, cash)
            shares = np.where(long_open, size, np.where(short_open, -size, shares))
            cur = np.where(move, want, cur)
            trades += opening
        equity[t] = cash + shares * close[t]
    return equity, trades


def reference_table(path):
    variants = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = f"{row['direction']},{row['fill']},{row['fee']}"
            variants.setdefault(key, {})[(int(row["fast"]), int(row["slow"]))] = (
                float(row["total_return"]),
                float(row["sharpe"]),
                int(row["trades"]),
            )
    return variants


def close_enough(a, b):
    return abs(a - b) <= max(1e-9 * abs(b), 1e-12)


def main():
    open_, close, cents = load(sys.argv[1])
    expected = reference_table(sys.argv[2])
    s = int(sys.argv[3])
    fast, slow = grid()
    out = {}
    for key, want in expected.items():
        direction, fill, fee = key.split(",")
        target = targets(close, cents, fast, slow, direction)
        equity, trades = simulate(open_, close, target, fill, float(fee))
        returns = (equity[1:] / equity[:-1] - 1).T.copy()
        for c, combo in enumerate(zip(fast.tolist(), slow.tolist())):
            total_return, sharpe, n_trades = want[combo]
            r = returns[c]
            sd = np.std(r, ddof=1)
            ours = (equity[-1, c] - 1, float(np.mean(r) / sd * np.sqrt(252)) if sd > 0 else float("nan"))
            if not (close_enough(ours[0], total_return) and close_enough(ours[1], sharpe) and trades[c] == n_trades):
                sys.exit(f"{key} {combo}: simulated {ours}, {trades[c]} trades; reference {want[combo]}")
        out[key] = statistics(returns, s)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
