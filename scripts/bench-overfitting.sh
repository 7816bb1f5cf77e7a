#!/usr/bin/env bash
# What the overfitting statistics cost the user: whole-process wall time of the large SMA
# grid (GOOG, fast 2..200 x slow 5..500, 79,398 combos) with `--cscv-blocks 0` (off) and
# S = 8 (the default), 12 and 16, at -np 1 and -np 2. The cost includes the ranks' block
# sums, sending and journaling them (<out>.partial.blocks, fsynced) and the launcher's
# DSR/PBO; BENCHMARKS.md has the kernel-only split (`sweeprun bench --cscv-blocks S`).
# Runs are interleaved (every case once per round); medians of ROUNDS rounds (default 7).
#
#   bash scripts/bench-overfitting.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
cargo build --release -q -p sweeprun
bin=$PWD/target/release/sweeprun
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cases=()
for np in 1 2; do
  for s in 0 8 12 16; do cases+=("np${np}_S$s|$np|$s"); done
done
for ((r = 1; r <= rounds; r++)); do
  for case in "${cases[@]}"; do
    IFS='|' read -r name np s <<<"$case"
    out=$work/$name.$r.csv
    start=$(date +%s%N)
    "$bin" run examples/sma_goog_large.toml -np "$np" --top 0 --cscv-blocks "$s" --out "$out" >/dev/null 2>&1
    echo "$name $(( ($(date +%s%N) - start) / 1000 ))" >>"$work/times"
    rm -f "$out" "$out.meta.json"
  done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-10s %12s %14s\n' case "median ms" "vs S=0 (same np)"
for case in "${cases[@]}"; do
  IFS='|' read -r name np s <<<"$case"
  ms=$(awk -v n="$name" '$1 == n { print $2 / 1000 }' "$work/times" | median)
  base=$(awk -v n="np${np}_S0" '$1 == n { print $2 / 1000 }' "$work/times" | median)
  printf '%-10s %12.1f %13.2fx\n' "$name" "$ms" "$(awk -v a="$ms" -v b="$base" 'BEGIN { print a / b }')"
done
echo "($rounds rounds, $(nproc) CPUs, $(date -u +%FT%TZ))"
