#!/usr/bin/env python3
"""A plain numpy SMA-crossover sweep, the way tests/reference/sma/README.md describes the
reference that produced sma_goog_reference.csv: a loop over bars, vectorised over combos,
exact integer-cent signals (sum_fast * slow > sum_slow * fast), all-in fractional shares,
fee on every fill, equity marked at the close; total_return, sharpe (ddof 1, sqrt 252),
max_dd and trades per combo.

It is the baseline of `scripts/bench-targets.sh`: sweeprun's whole process against this
whole process (start-up, CSV load, sweep, CSV write), on the canonical grid.

    python3 sma_sweep.py GOOG.csv OUT.csv [--direction long|longshort] [--fill open|close] [--fee 0]
"""
import argparse
import csv
import math
import sys

import numpy as np


def load(path):
    dates, opens, closes = [], [], []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader)]
        o, c = header.index("open"), header.index("close")
        for row in reader:
            dates.append(row[0])
            opens.append(float(row[o]))
            closes.append(row[c])
    # Exact cents for the signal (the data has at most 2 decimals).
    cents = np.array([round(float(x) * 100) for x in closes], dtype=np.int64)
    return np.array(opens), np.array([float(x) for x in closes]), cents


def sweep(open_, close, cents, fast, slow, long_short, fill_open, fee):
    n = len(close)
    k = len(fast)
    prefix = np.concatenate(([0], np.cumsum(cents)))
    cash = np.ones(k)
    shares = np.zeros(k)
    cur = np.zeros(k, dtype=np.int8)
    trades = np.zeros(k, dtype=np.int64)
    equity = np.empty((n, k))
    first = np.maximum(fast, slow) - 1
    pending = np.zeros(k, dtype=np.int8)

    def execute(target, price):
        nonlocal cash, shares, cur
        change = target != cur
        if not change.any():
            return
        closing = change & (cur != 0)
        cash = np.where(closing, cash + shares * price - fee * np.abs(shares) * price, cash)
        shares = np.where(closing, 0.0, shares)
        opening = change & (target != 0)
        size = cash / (price * (1.0 + fee))
        long_open = opening & (target > 0)
        short_open = opening & (target < 0)
        cash = np.where(long_open, cash - size * price - fee * size * price, cash)
        cash = np.where(short_open, cash + size * price - fee * size * price, cash)
        shares = np.where(long_open, size, np.where(short_open, -size, shares))
        trades[opening] += 1
        cur = np.where(change, target, cur)

    for t in range(n):
        if fill_open and t > 0:
            execute(pending, open_[t])
        end = prefix[t + 1]
        sum_fast = end - prefix[np.maximum(t + 1 - fast, 0)]
        sum_slow = end - prefix[np.maximum(t + 1 - slow, 0)]
        above = sum_fast * slow > sum_slow * fast
        target = np.where(above, 1, -1 if long_short else 0).astype(np.int8)
        target = np.where(t >= first, target, 0).astype(np.int8)
        if fill_open:
            pending = target
        else:
            execute(target, close[t])
        equity[t] = cash + shares * close[t]
    returns = equity[1:] / equity[:-1] - 1.0
    sharpe = returns.mean(axis=0) / returns.std(axis=0, ddof=1) * math.sqrt(252)
    max_dd = (equity / np.maximum.accumulate(equity, axis=0) - 1.0).min(axis=0)
    return equity[-1] - 1.0, sharpe, max_dd, trades


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--direction", default="long", choices=["long", "longshort"])
    parser.add_argument("--fill", default="open", choices=["open", "close"])
    parser.add_argument("--fee", type=float, default=0.0)
    args = parser.parse_args()
    open_, close, cents = load(args.data)
    combos = [(f, s) for f in range(5, 101) for s in range(10, 251, 5) if f < s]
    fast = np.array([c[0] for c in combos], dtype=np.int64)
    slow = np.array([c[1] for c in combos], dtype=np.int64)
    total_return, sharpe, max_dd, trades = sweep(
        open_, close, cents, fast, slow, args.direction == "longshort", args.fill == "open", args.fee
    )
    with open(args.out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["fast", "slow", "total_return", "sharpe", "max_dd", "trades"])
        for i, (fa, sl) in enumerate(combos):
            writer.writerow([fa, sl, repr(float(total_return[i])), repr(float(sharpe[i])), repr(float(max_dd[i])), int(trades[i])])
    print(f"{len(combos)} combos x {len(close)} bars", file=sys.stderr)


if __name__ == "__main__":
    main()
