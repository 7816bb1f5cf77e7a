#!/usr/bin/env python3
"""A plain-Python SMA crossover backtest, as a `[command]` sweep runs it
(examples/command_sweep.toml): `sma_backtest.py DATA.csv FAST SLOW`.

Long when the fast SMA of the close is above the slow one, flat otherwise, trading at the
close (no fees). Prints progress lines, then its statistics as one JSON object on the last
line of stdout: that line is the sweep's row.
"""
import json
import math
import sys

path, fast, slow = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
closes = []
with open(path) as f:
    header = f.readline().strip().split(",")
    close_at = header.index("Close")
    for line in f:
        closes.append(float(line.strip().split(",")[close_at]))
print(f"{len(closes)} bars, fast {fast}, slow {slow}")

equity, position, returns, trades = 1.0, 0, [], 0
peak, max_drawdown = 1.0, 0.0
for t in range(1, len(closes)):
    r = position * (closes[t] / closes[t - 1] - 1.0)
    equity *= 1.0 + r
    returns.append(r)
    peak = max(peak, equity)
    max_drawdown = max(max_drawdown, 1.0 - equity / peak)
    if t + 1 >= slow:
        fast_sma = sum(closes[t + 1 - fast : t + 1]) / fast
        slow_sma = sum(closes[t + 1 - slow : t + 1]) / slow
        wanted = 1 if fast_sma > slow_sma else 0
        trades += wanted > position
        position = wanted

mean = sum(returns) / len(returns)
std = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
print(json.dumps({
    "total_return": equity - 1.0,
    "sharpe": mean / std * math.sqrt(252) if std > 0 else None,
    "max_drawdown": max_drawdown,
    "trades": trades,
}))
