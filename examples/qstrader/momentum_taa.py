#!/usr/bin/env python3
"""QSTrader 0.3.0 momentum tactical asset allocation, one backtest per process.

This is the shape of QSTrader's own ``examples/momentum_taa.py`` (top-N momentum over a
universe of daily-bar CSVs, end-of-month long-only rebalancing, 1% cash buffer, a one-year
burn-in), made into a script that a parameter sweep can run once per combination:

    python3 momentum_taa.py --lookback 126 --top-n 3 [--data DIR] [--stats-json PATH]

It runs the real, unmodified ``qstrader==0.3.0`` from PyPI (see scripts/qstrader-venv.sh)
and prints, as the LAST line of stdout, one JSON object:

    {"cagr": ..., "sharpe": ..., "sortino": ..., "annualised_vol": ...,
     "max_drawdown": ..., "max_drawdown_duration": ..., "mean_returns": ...,
     "stdev_returns": ..., "final_equity": ..., "n_equity_points": ...,
     "n_rebalances": ..., "n_transactions": ...}

The statistics are QSTrader's own ``JSONStatistics`` values (periods=252), named as in
tests/reference/qstrader/*/results.jsonl; floats are written with Python's repr, so they
read back as the exact f64. A non-finite statistic (e.g. sortino with no losing day) is
written as null, since NaN is not JSON.

Parameters come from --lookback/--top-n; when a flag is absent the script reads
SWEEPRUN_PARAM_LOOKBACK / SWEEPRUN_PARAM_TOP_N (set by a sweeprun command sweep), and
falls back to QSTrader's example values 126 / 3.

The default dates are those of the project's synth10 reference runs: start 2008-01-02
14:30 UTC, burn-in 2009-01-01 14:30 UTC, end 2018-12-31 23:59 UTC. A date given without a
time gets that time of day (14:30 for start and burn-in, 23:59 for the end), as in
QSTrader's example.
"""
import argparse
import contextlib
import json
import math
import os
import sys
import time

# JSONStatistics stamps each row with the epoch milliseconds of *local* midnight; pin
# the time zone so a --stats-json file is the same on every machine.
os.environ['TZ'] = 'UTC'
if hasattr(time, 'tzset'):
    time.tzset()

import pandas as pd  # noqa: E402
import pytz  # noqa: E402  (QSTrader needs it; pandas >= 3 no longer pulls it in)

from qstrader import settings  # noqa: E402
from qstrader.alpha_model.alpha_model import AlphaModel  # noqa: E402
from qstrader.asset.equity import Equity  # noqa: E402
from qstrader.asset.universe.dynamic import DynamicUniverse  # noqa: E402
from qstrader.broker.fee_model.percent_fee_model import PercentFeeModel  # noqa: E402
from qstrader.broker.fee_model.zero_fee_model import ZeroFeeModel  # noqa: E402
from qstrader.data.backtest_data_handler import BacktestDataHandler  # noqa: E402
from qstrader.data.daily_bar_csv import CSVDailyBarDataSource  # noqa: E402
from qstrader.signals.momentum import MomentumSignal  # noqa: E402
from qstrader.signals.signals_collection import SignalsCollection  # noqa: E402
from qstrader.statistics.json_statistics import JSONStatistics  # noqa: E402
from qstrader.trading.backtest import BacktestTradingSession  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, '..', '..', 'tests', 'reference', 'qstrader', 'synth10', 'data')

# The statistics QSTrader's JSONStatistics computes, in the reference results' order.
STAT_KEYS = ('cagr', 'sharpe', 'sortino', 'max_drawdown', 'max_drawdown_duration',
             'annualised_vol', 'mean_returns', 'stdev_returns')


class TopNMomentum(AlphaModel):
    """Equal weight 1/N on the N universe assets with the highest holding-period return
    over the lookback; zero weight elsewhere (QSTrader's TopNMomentumAlphaModel)."""

    def __init__(self, signals, lookback, top_n, universe):
        self.signals = signals
        self.lookback = lookback
        self.top_n = top_n
        self.universe = universe

    def __call__(self, dt):
        weights = {asset: 0.0 for asset in self.universe.get_assets(dt)}
        if self.signals.warmup < self.lookback:
            return weights
        momentum = self.signals['momentum']
        scores = [(asset, momentum(asset, self.lookback)) for asset in momentum.assets]
        # Highest momentum first; Python's sort is stable, so ties keep universe order.
        ranked = sorted(scores, key=lambda pair: pair[1], reverse=True)
        for asset, _ in ranked[:self.top_n]:
            weights[asset] = 1.0 / self.top_n
        return weights


def timestamp(text, default_time):
    """'YYYY-MM-DD' (gets default_time) or a full 'YYYY-MM-DD HH:MM[:SS]', in UTC."""
    text = text.strip()
    if len(text) == 10:
        text = '%s %s' % (text, default_time)
    return pd.Timestamp(text, tz=pytz.UTC)


def param(value, env, fallback):
    if value is not None:
        return value
    raw = os.environ.get(env)
    if raw is None or raw == '':
        return fallback
    try:
        return int(raw)
    except ValueError:
        sys.exit('momentum_taa.py: %s=%r is not an integer' % (env, raw))


def data_dir(path):
    """A relative --data is looked up in the working directory, then next to this script
    (a sweep runs each combination in its own working directory)."""
    if os.path.isabs(path) or os.path.isdir(path):
        return path
    beside = os.path.join(HERE, path)
    return beside if os.path.isdir(beside) else path


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--lookback', type=int, default=None,
                    help='momentum lookback in business days (else $SWEEPRUN_PARAM_LOOKBACK, else 126)')
    ap.add_argument('--top-n', type=int, default=None,
                    help='number of assets held (else $SWEEPRUN_PARAM_TOP_N, else 3)')
    ap.add_argument('--data', default=DEFAULT_DATA,
                    help='folder of QSTrader CSVs <TICKER>.csv (default: the synth10 reference data)')
    ap.add_argument('--symbols', default=None,
                    help='comma-separated universe in universe order (the tie-break order); '
                         'default: every *.csv in --data, sorted')
    ap.add_argument('--start', default='2008-01-02', help='default time 14:30 UTC')
    ap.add_argument('--burn-in', default='2009-01-01', help='default time 14:30 UTC')
    ap.add_argument('--end', default='2018-12-31', help='default time 23:59 UTC')
    ap.add_argument('--initial-cash', type=float, default=1e6)
    ap.add_argument('--cash-buffer', type=float, default=0.01)
    ap.add_argument('--fee-pct', type=float, default=0.0,
                    help='PercentFeeModel commission_pct (ZeroFeeModel when fee and tax are 0)')
    ap.add_argument('--tax-pct', type=float, default=0.0, help='PercentFeeModel tax_pct')
    ap.add_argument('--stats-json', default=None, metavar='PATH',
                    help="also write QSTrader's JSONStatistics file to PATH")
    ap.add_argument('--print-events', action='store_true',
                    help="show QSTrader's event log (on stderr, so stdout stays one JSON line)")
    args = ap.parse_args(argv)
    args.lookback = param(args.lookback, 'SWEEPRUN_PARAM_LOOKBACK', 126)
    args.top_n = param(args.top_n, 'SWEEPRUN_PARAM_TOP_N', 3)
    if args.lookback < 1 or args.top_n < 1:
        ap.error('--lookback and --top-n must be at least 1')
    args.data = data_dir(args.data)
    if not os.path.isdir(args.data):
        ap.error('--data %s is not a directory' % args.data)
    if args.symbols:
        args.symbols = [s.strip() for s in args.symbols.split(',') if s.strip()]
    else:
        args.symbols = sorted(f[:-4] for f in os.listdir(args.data) if f.endswith('.csv'))
    if not args.symbols:
        ap.error('no <TICKER>.csv files in %s' % args.data)
    return args


def run(args):
    start_dt = timestamp(args.start, '14:30:00')
    burn_in_dt = timestamp(args.burn_in, '14:30:00')
    end_dt = timestamp(args.end, '23:59:00')

    assets = ['EQ:%s' % symbol for symbol in args.symbols]
    universe = DynamicUniverse({asset: start_dt for asset in assets})
    source = CSVDailyBarDataSource(args.data, Equity, csv_symbols=args.symbols)
    data_handler = BacktestDataHandler(universe, data_sources=[source])

    momentum = MomentumSignal(start_dt, universe, lookbacks=[args.lookback])
    signals = SignalsCollection({'momentum': momentum}, data_handler)
    alpha = TopNMomentum(signals, args.lookback, args.top_n, universe)

    if args.fee_pct == 0.0 and args.tax_pct == 0.0:
        fee_model = ZeroFeeModel()
    else:
        fee_model = PercentFeeModel(commission_pct=args.fee_pct, tax_pct=args.tax_pct)

    session = BacktestTradingSession(
        start_dt, end_dt, universe, alpha,
        signals=signals,
        initial_cash=args.initial_cash,
        rebalance='end_of_month',
        long_only=True,
        cash_buffer_percentage=args.cash_buffer,
        burn_in_dt=burn_in_dt,
        data_handler=data_handler,
        fee_model=fee_model,
    )
    session.run()
    return session


def finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


def main(argv=None):
    args = parse_args(argv)
    settings.set_print_events(args.print_events)
    # QSTrader prints with print(); keep stdout for the result line alone.
    with contextlib.redirect_stdout(sys.stderr):
        session = run(args)
        equity = session.get_equity_curve()
        final_equity = float(equity['Equity'].iloc[-1])
        statistics = JSONStatistics(
            equity, session.get_target_allocations(), periods=252,
            output_filename=args.stats_json or 'statistics.json')
        if args.stats_json:
            statistics.to_file()

    stats = statistics.statistics['strategy']
    portfolio = session.broker.portfolios[session.portfolio_id]
    row = {key: finite_or_none(stats[key]) for key in STAT_KEYS}
    row['max_drawdown_duration'] = int(stats['max_drawdown_duration'])
    row['final_equity'] = final_equity
    row['n_equity_points'] = len(equity)
    # One target allocation is recorded per rebalance the trading system ran (at or
    # after the burn-in); every fill is one 'asset_transaction' portfolio event.
    row['n_rebalances'] = len(session.target_allocations)
    row['n_transactions'] = sum(1 for e in portfolio.history if e.type == 'asset_transaction')
    sys.stdout.write(json.dumps(row) + '\n')
    sys.stdout.flush()


if __name__ == '__main__':
    main()
