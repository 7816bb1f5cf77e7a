#!/usr/bin/env bash
# The whole-process targets, side by side in one run (the user's wall time: exec of the
# launcher, its ranks, loading the data, the sweep, writing and fsyncing the table):
#
#   1. large SMA grid (GOOG, fast 2..200 x slow 5..500, 79,398 combos), -np 1:
#      combo-bars per second of the whole process               target >= 1.2e9
#   2. canonical SMA grid (3,830 combos), -np 1, against a plain numpy sweep of the same
#      grid (benches/numpy_reference/sma_sweep.py, also whole process)   target >= 50x
#   3. momentum_taa on synth10, lookback 10..260 x top_n 1..10 (2,510 backtests), -np 1:
#      microseconds per backtest                                 target <= 80 us
#
# The targets time the sweep as issue #8 set them, without the overfitting statistics
# (`--cscv-blocks 0`); the large grid also runs with them (the default, S = 8; their own
# budget is issue #12's, see scripts/bench-overfitting.sh).
#
# Also -np 2 for each (parallel efficiency T1 / (2 T2), a diagnostic). Runs are
# interleaved (every case once per round) so that machine noise hits all cases alike;
# medians of ROUNDS rounds (default 11).
#
#   bash scripts/bench-targets.sh [ROUNDS]
#   BASELINE_BIN=/path/to/older/sweeprun bash scripts/bench-targets.sh [ROUNDS]
#
# With BASELINE_BIN, the three -np 1 cases also run with that binary in the same rounds:
# a control for a machine whose speed drifts (a shared VM), reported as new / old.
#
# Needs python3 with numpy for case 2 (Debian: apt-get install python3-numpy).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-11}
cargo build --release -q -p sweeprun
bin=$PWD/target/release/sweeprun
python=${PYTHON:-/usr/bin/python3}
"$python" -c 'import numpy' 2>/dev/null || { echo "numpy missing for $python (apt-get install python3-numpy, or set PYTHON)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name|command (run from the repository root; outputs go to a fresh path each round)
cases=(
  "large_np1|$bin run examples/sma_goog_large.toml -np 1 --top 0 --cscv-blocks 0 --out"
  "large_np2|$bin run examples/sma_goog_large.toml -np 2 --top 0 --cscv-blocks 0 --out"
  "large_np1_statistics|$bin run examples/sma_goog_large.toml -np 1 --top 0 --out"
  "canonical_np1|$bin run examples/sma_goog.toml -np 1 --top 0 --cscv-blocks 0 --out"
  "canonical_np2|$bin run examples/sma_goog.toml -np 2 --top 0 --cscv-blocks 0 --out"
  "numpy|$python benches/numpy_reference/sma_sweep.py examples/data/GOOG.csv"
  "momentum_np1|$bin run examples/momentum_synth10.toml -np 1 --top 0 --cscv-blocks 0 --out"
  "momentum_np2|$bin run examples/momentum_synth10.toml -np 2 --top 0 --cscv-blocks 0 --out"
)

if [[ -n ${BASELINE_BIN:-} ]]; then
  cases+=(
    "old_large_np1|$BASELINE_BIN run examples/sma_goog_large.toml -np 1 --top 0 --out"
    "old_canonical_np1|$BASELINE_BIN run examples/sma_goog.toml -np 1 --top 0 --out"
    "old_momentum_np1|$BASELINE_BIN run examples/momentum_synth10.toml -np 1 --top 0 --out"
  )
fi

now_ns() { date +%s%N; }
for ((r = 0; r < rounds; r++)); do
  for entry in "${cases[@]}"; do
    name=${entry%%|*}
    command=${entry#*|}
    out="$work/$name.$r.csv"
    start=$(now_ns)
    $command "$out" >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
    end=$(now_ns)
    echo $(((end - start) / 1000)) >>"$work/$name.us"
    rm -f "$out" "$out.meta.json"
  done
done

median_us() { sort -n "$work/$1.us" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
large1=$(median_us large_np1); large2=$(median_us large_np2); large1s=$(median_us large_np1_statistics)
canon1=$(median_us canonical_np1); canon2=$(median_us canonical_np2)
numpy=$(median_us numpy)
mom1=$(median_us momentum_np1); mom2=$(median_us momentum_np2)

kernel=$(SWEEPRUN_KERNEL= "$bin" bench --samples 1 2>/dev/null | sed -n 's/^kernel \([a-z0-9]*\).*/\1/p' | head -1)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; kernel path ${kernel:-default}; $rounds interleaved rounds, medians of whole-process wall time"
awk -v l1="$large1" -v l2="$large2" -v l1s="$large1s" -v c1="$canon1" -v c2="$canon2" -v np="$numpy" -v m1="$mom1" -v m2="$mom2" 'BEGIN {
  combo_bars = 79398 * 2148
  printf "1. large SMA grid, -np 1: %.1f ms = %.3g combo-bars/s (target >= 1.2e9: %s); -np 2: %.1f ms, efficiency %.1f%%\n",
    l1 / 1000, combo_bars / (l1 / 1e6), (combo_bars / (l1 / 1e6) >= 1.2e9 ? "met" : "NOT met"), l2 / 1000, 100 * l1 / (2 * l2)
  printf "   with the overfitting statistics (default, S = 8), -np 1: %.1f ms = %.3g combo-bars/s (+%.0f%%)\n",
    l1s / 1000, combo_bars / (l1s / 1e6), 100 * (l1s / l1 - 1)
  printf "2. canonical SMA grid, -np 1: %.1f ms vs numpy %.1f ms = %.1fx faster (target >= 50x: %s); -np 2: %.1f ms (%.1fx)\n",
    c1 / 1000, np / 1000, np / c1, (np / c1 >= 50 ? "met" : "NOT met"), c2 / 1000, np / c2
  printf "3. momentum_taa synth10, 2,510 backtests, -np 1: %.1f ms = %.1f us per backtest (target <= 80: %s); -np 2: %.1f ms, efficiency %.1f%%\n",
    m1 / 1000, m1 / 2510, (m1 / 2510 <= 80 ? "met" : "NOT met"), m2 / 1000, 100 * m1 / (2 * m2)
}'
if [[ -n ${BASELINE_BIN:-} ]]; then
  for name in large canonical momentum; do
    old=$(median_us "old_${name}_np1"); new=$(median_us "${name}_np1")
    awk -v n="$name" -v o="$old" -v w="$new" 'BEGIN { printf "control: %s -np 1, this build %.1f ms vs baseline %.1f ms = %.2f\n", n, w / 1000, o / 1000, w / o }'
  done
fi
