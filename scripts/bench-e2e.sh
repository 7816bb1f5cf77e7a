#!/usr/bin/env bash
# End-to-end parallel efficiency of `sweeprun run` on the benchmark grid
# (examples/sma_goog_large.toml: 79,398 combos x 2,148 bars): RUNS interleaved runs of
# -np 1 and -np 2 (interleaved so that drifts in machine speed hit both alike), each timed
# as a whole process; prints both medians and T1 / (2 T2).
#
#   bash scripts/bench-e2e.sh [RUNS=41] [extra sweeprun run args...]
#   SWEEPRUN_KERNEL=avx2 bash scripts/bench-e2e.sh 41
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-41}"
shift || true
cargo build --release --quiet -p sweeprun --manifest-path "$root/Cargo.toml"
bin="$root/target/release/sweeprun"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
times="$work/times"
for _ in $(seq "$runs"); do
  for np in 1 2; do
    start=$(date +%s%N)
    "$bin" run "$root/examples/sma_goog_large.toml" -np "$np" --out "$work/t.csv" "$@" >/dev/null 2>"$work/err" \
      || { cat "$work/err" >&2; exit 1; }
    end=$(date +%s%N)
    echo "$np $(( (end - start) / 1000 ))" >>"$times"
    rm -f "$work"/t.csv*
  done
done
python3 - "$times" <<'PY'
import statistics, sys
t = {"1": [], "2": []}
for line in open(sys.argv[1]):
    np, us = line.split()
    t[np].append(int(us) / 1000)
t1, t2 = statistics.median(t["1"]), statistics.median(t["2"])
print(f"-np 1: median {t1:.1f} ms   -np 2: median {t2:.1f} ms   "
      f"speed-up {t1 / t2:.2f}   efficiency T1/(2 T2) = {100 * t1 / (2 * t2):.1f}%   ({len(t['1'])} runs each)")
PY
