"""Timing harness for QSTrader 0.3.0 momentum TAA (examples/momentum_taa.py semantics).

Usage: python harness.py {synth10|etf5} [--repeats N] [--lookback L] [--top-n N] [--quiet]

Each repetition builds a fresh stack (CSVDailyBarDataSource -> BacktestDataHandler ->
MomentumSignal/SignalsCollection -> alpha model -> BacktestTradingSession) and runs it.
Timed region = stack construction (incl. QSTrader's CSV loading) + session.run().
QSTrader's console prints (PRINT_EVENTS=True, the default, as in the example) are
sent to /dev/null during the timed region unless --quiet disables them entirely.
Statistics (JSONStatistics, periods=252) are computed after the timed region, for
the sanity check only. One JSON line per repetition is printed to stdout.
"""
import argparse
import contextlib
import json
import operator
import os
import sys
import time

T_IMPORT0 = time.perf_counter()
import pandas as pd
import pytz
import numpy as np

import qstrader
from qstrader import settings
from qstrader.alpha_model.alpha_model import AlphaModel
from qstrader.asset.equity import Equity
from qstrader.asset.universe.dynamic import DynamicUniverse
from qstrader.signals.momentum import MomentumSignal
from qstrader.signals.signals_collection import SignalsCollection
from qstrader.data.backtest_data_handler import BacktestDataHandler
from qstrader.data.daily_bar_csv import CSVDailyBarDataSource
from qstrader.statistics.json_statistics import JSONStatistics
from qstrader.trading.backtest import BacktestTradingSession
T_IMPORT = time.perf_counter() - T_IMPORT0

# The project's reference data, next to the repository (or $SWEEPRUN_REFERENCE_DIR).
REF = os.path.join(os.environ.get('SWEEPRUN_REFERENCE_DIR', os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../tests/reference')), 'qstrader')
DATASETS = {
    'synth10': dict(
        data=f'{REF}/synth10/data',
        symbols=['SYN%02d' % i for i in range(10)],
        start='2008-01-02 14:30:00', burn_in='2009-01-01 14:30:00',
        end='2018-12-31 23:59:00'),
    'etf5': dict(
        data=f'{REF}/etf5/data',
        symbols=['MTUM', 'QUAL', 'SIZE', 'USMV', 'VLUE'],
        start='2014-01-02 14:30:00', burn_in='2015-01-02 14:30:00',
        end='2022-12-28 23:59:00'),
}


class TopNMomentumAlphaModel(AlphaModel):
    """The alpha model of QSTrader's examples/momentum_taa.py, restated for this harness."""

    def __init__(self, signals, mom_lookback, mom_top_n, universe, data_handler):
        self.signals = signals
        self.mom_lookback = mom_lookback
        self.mom_top_n = mom_top_n
        self.universe = universe
        self.data_handler = data_handler

    def _highest_momentum_asset(self, dt):
        assets = self.signals['momentum'].assets
        all_momenta = {
            asset: self.signals['momentum'](asset, self.mom_lookback)
            for asset in assets
        }
        return [
            asset[0] for asset in sorted(
                all_momenta.items(), key=operator.itemgetter(1), reverse=True
            )
        ][:self.mom_top_n]

    def _generate_signals(self, dt, weights):
        top_assets = self._highest_momentum_asset(dt)
        for asset in top_assets:
            weights[asset] = 1.0 / self.mom_top_n
        return weights

    def __call__(self, dt):
        assets = self.universe.get_assets(dt)
        weights = {asset: 0.0 for asset in assets}
        if self.signals.warmup >= self.mom_lookback:
            weights = self._generate_signals(dt, weights)
        return weights


def run_backtest(ds, mom_lookback, mom_top_n):
    start_dt = pd.Timestamp(ds['start'], tz=pytz.UTC)
    burn_in_dt = pd.Timestamp(ds['burn_in'], tz=pytz.UTC)
    end_dt = pd.Timestamp(ds['end'], tz=pytz.UTC)
    symbols = ds['symbols']
    assets = ['EQ:%s' % s for s in symbols]
    asset_dates = {asset: start_dt for asset in assets}
    universe = DynamicUniverse(asset_dates)
    data_source = CSVDailyBarDataSource(ds['data'], Equity, csv_symbols=symbols)
    data_handler = BacktestDataHandler(universe, data_sources=[data_source])
    momentum = MomentumSignal(start_dt, universe, lookbacks=[mom_lookback])
    signals = SignalsCollection({'momentum': momentum}, data_handler)
    alpha = TopNMomentumAlphaModel(signals, mom_lookback, mom_top_n, universe, data_handler)
    session = BacktestTradingSession(
        start_dt, end_dt, universe, alpha,
        signals=signals,
        initial_cash=1e6,
        rebalance='end_of_month',
        long_only=True,
        cash_buffer_percentage=0.01,
        burn_in_dt=burn_in_dt,
        data_handler=data_handler,
    )
    session.run()
    return session


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('dataset', choices=sorted(DATASETS))
    ap.add_argument('--repeats', type=int, default=1)
    ap.add_argument('--lookback', type=int, default=126)
    ap.add_argument('--top-n', type=int, default=3)
    ap.add_argument('--quiet', action='store_true',
                    help='settings.set_print_events(False) instead of discarding prints')
    args = ap.parse_args()
    if args.quiet:
        settings.set_print_events(False)
    ds = DATASETS[args.dataset]
    for rep in range(args.repeats):
        with open(os.devnull, 'w') as devnull, contextlib.redirect_stdout(devnull):
            c0, w0 = time.process_time(), time.perf_counter()
            session = run_backtest(ds, args.lookback, args.top_n)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            eq = session.get_equity_curve()
            stats = JSONStatistics(eq, session.get_target_allocations(),
                                   periods=252).statistics['strategy']
        port = session.broker.portfolios[session.portfolio_id]
        n_fills = sum(1 for pe in port.history if pe.type == 'asset_transaction')
        print(json.dumps({
            'dataset': args.dataset, 'rep': rep, 'lookback': args.lookback,
            'top_n': args.top_n, 'print_events': settings.PRINT_EVENTS,
            'cpu_s': cpu, 'wall_s': wall, 'import_s': T_IMPORT,
            'final_equity': float(eq['Equity'].iloc[-1]),
            'n_equity_points': len(eq), 'n_transactions': n_fills,
            'sharpe': stats['sharpe'], 'cagr': stats['cagr'],
            'max_drawdown': stats['max_drawdown'],
            'versions': {'qstrader': getattr(qstrader, '__version__', '0.3.0'),
                         'pandas': pd.__version__, 'numpy': np.__version__,
                         'python': sys.version.split()[0]},
        }), flush=True)


if __name__ == '__main__':
    main()
