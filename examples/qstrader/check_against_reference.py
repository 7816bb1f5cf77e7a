#!/usr/bin/env python3
"""Runs momentum_taa.py (real QSTrader 0.3.0) for a few combos of a reference folder and
compares every number to tests/reference/qstrader/<folder>/results.jsonl.

    PY="$(bash scripts/qstrader-venv.sh)"
    "$PY" examples/qstrader/check_against_reference.py                  # synth10: 21/1 63/3 126/5
    "$PY" examples/qstrader/check_against_reference.py --combos all
    "$PY" examples/qstrader/check_against_reference.py --folder etf5 --combos 63/2

Each backtest runs as a sweeprun command sweep would run it: its own process, started in
its own empty working directory, writing QSTrader's JSONStatistics file there
(--stats-json stats.json). Combos alternate between passing the parameters as flags and
as SWEEPRUN_PARAM_LOOKBACK / SWEEPRUN_PARAM_TOP_N. Compared, for each combo:
  * the JSON row (last stdout line): the eight statistics, final_equity (relative
    tolerance, default 1e-9), max_drawdown_duration and the three counts (exact);
  * the statistics file: the same eight statistics under "strategy", and the length of
    its equity curve.
Prints one line per combo (with its wall time) and exits 1 on any mismatch.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, '..', '..', 'tests', 'reference', 'qstrader')
SCRIPT = os.path.join(HERE, 'momentum_taa.py')
FLOAT_STATS = ('cagr', 'sharpe', 'sortino', 'annualised_vol', 'max_drawdown',
               'mean_returns', 'stdev_returns')


def rel_diff(got, want):
    if got == want:
        return 0.0
    if got is None or want is None:
        return float('inf')
    return abs(got - want) / max(abs(want), 1e-300)


def utc(text):
    """'2008-01-02 14:30:00+00:00' -> '2008-01-02 14:30:00' (the script's flags are UTC)."""
    return text.replace('+00:00', '').replace('T', ' ')


def command(python, run, data, via_env):
    lookback, top_n = run['params']['lookback'], run['params']['top_n']
    argv = [python, SCRIPT, '--data', data, '--symbols', ','.join(run['symbols']),
            '--start', utc(run['start']), '--burn-in', utc(run['burn_in']), '--end', utc(run['end']),
            '--initial-cash', repr(run['initial_cash']), '--cash-buffer', repr(run['cash_buffer']),
            '--fee-pct', repr(run['fee_pct']), '--tax-pct', repr(run['tax_pct']),
            '--stats-json', 'stats.json']
    env = dict(os.environ)
    env.pop('SWEEPRUN_PARAM_LOOKBACK', None)
    env.pop('SWEEPRUN_PARAM_TOP_N', None)
    if via_env:
        env['SWEEPRUN_PARAM_LOOKBACK'] = str(lookback)
        env['SWEEPRUN_PARAM_TOP_N'] = str(top_n)
    else:
        argv += ['--lookback', str(lookback), '--top-n', str(top_n)]
    return argv, env


def check(python, run, data, via_env, rtol):
    """Returns (problems, max relative difference, wall seconds)."""
    argv, env = command(python, run, data, via_env)
    with tempfile.TemporaryDirectory(prefix='qstrader-combo-') as workdir:
        t0 = time.perf_counter()
        done = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            return ['exit %d: %s' % (done.returncode, done.stderr.strip()[-2000:])], float('inf'), wall
        lines = done.stdout.strip().splitlines()
        row = json.loads(lines[-1])
        with open(os.path.join(workdir, 'stats.json')) as f:
            sheet = json.load(f)['strategy']

    problems, worst = [], 0.0
    stats = run['stats']
    for source, values in (('row', row), ('stats.json', sheet)):
        for key in FLOAT_STATS:
            d = rel_diff(values.get(key), stats[key])
            worst = max(worst, d)
            if d > rtol:
                problems.append('%s %s: got %r, want %r (rel %.3g)' % (source, key, values.get(key), stats[key], d))
        if values.get('max_drawdown_duration') != stats['max_drawdown_duration']:
            problems.append('%s max_drawdown_duration: got %r, want %r'
                            % (source, values.get('max_drawdown_duration'), stats['max_drawdown_duration']))
    d = rel_diff(row.get('final_equity'), run['final_equity'])
    worst = max(worst, d)
    if d > rtol:
        problems.append('final_equity: got %r, want %r (rel %.3g)' % (row.get('final_equity'), run['final_equity'], d))
    for key in ('n_equity_points', 'n_rebalances', 'n_transactions'):
        if row.get(key) != run[key]:
            problems.append('%s: got %r, want %r' % (key, row.get(key), run[key]))
    if len(sheet['equity_curve']) != run['n_equity_points']:
        problems.append('stats.json equity_curve has %d points, want %d'
                        % (len(sheet['equity_curve']), run['n_equity_points']))
    return problems, worst, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--folder', default='synth10', help='reference folder under tests/reference/qstrader')
    ap.add_argument('--combos', default='21/1,63/3,126/5',
                    help="comma-separated LOOKBACK/TOP_N, or 'all' (default: 21/1,63/3,126/5)")
    ap.add_argument('--python', default=sys.executable, help='interpreter with qstrader (default: this one)')
    ap.add_argument('--rtol', type=float, default=1e-9)
    args = ap.parse_args()

    folder = os.path.join(REFERENCE, args.folder)
    with open(os.path.join(folder, 'results.jsonl')) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    by_combo = {(r['params']['lookback'], r['params']['top_n']): r for r in runs
                if r['strategy'] == 'momentum_taa'}
    if args.combos == 'all':
        combos = list(by_combo)
    else:
        combos = [tuple(int(x) for x in c.split('/')) for c in args.combos.split(',')]
    missing = [c for c in combos if c not in by_combo]
    if missing:
        sys.exit('not in %s/results.jsonl: %s' % (args.folder, missing))

    failed, worst_all, walls = 0, 0.0, []
    for i, combo in enumerate(combos):
        via_env = i % 2 == 1
        problems, worst, wall = check(args.python, by_combo[combo], os.path.join(folder, 'data'), via_env, args.rtol)
        walls.append(wall)
        worst_all = max(worst_all, worst)
        status = 'ok' if not problems else 'MISMATCH'
        print('%s lookback=%d top_n=%d (params via %s): %s, max rel diff %.3g, %.1f s'
              % (args.folder, combo[0], combo[1], 'env' if via_env else 'flags', status, worst, wall), flush=True)
        for p in problems:
            print('    ' + p, flush=True)
        failed += bool(problems)
    print(json.dumps({'folder': args.folder, 'combos': len(combos), 'failed': failed,
                      'max_rel_diff': worst_all, 'wall_s': [round(w, 2) for w in walls]}))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
