#!/usr/bin/env bash
# What MPI costs sweeprun on one host, OpenMPI (--features mpi), medians of ROUNDS rounds:
#
#   1. mpirun's own start-up: `mpirun -np 2` of a trivial MPI program (MPI_Init and
#      MPI_Finalize only; OpenMPI's cost, not sweeprun's), and of /bin/true (no MPI_Init);
#   2. scheduling cost per chunk: the canonical GOOG grid (3,830 combos) in chunks of 1
#      combo vs in guided chunks (34 of them), at -np 2, local and MPI: (T_1 - T_guided) / 3796;
#   3. a long sweep (benches/specs/sma_sp20_wide.toml, 1,119,660 combos on the 20-stock file)
#      at -np 2, local vs MPI: MPI's wall time, and beyond mpirun's start-up, as a ratio.
#
# Runs are interleaved (each case once per round), so machine drift hits all alike.
#
#   bash scripts/bench-mpi.sh [ROUNDS]      (default 5; needs openmpi-bin libopenmpi-dev libclang-dev)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cargo build --release -q -p sweeprun
CARGO_TARGET_DIR=target/mpi-openmpi MPICC=mpicc.openmpi cargo build --release -q -p sweeprun --features mpi
local_bin=$PWD/target/release/sweeprun
mpi_bin=$PWD/target/mpi-openmpi/release/sweeprun
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '#include <mpi.h>\nint main(int c, char **v) { MPI_Init(&c, &v); MPI_Finalize(); return 0; }\n' > "$work/trivial.c"
mpicc.openmpi -O2 -o "$work/trivial" "$work/trivial.c"

cases=(
  "mpirun_true|mpirun.openmpi -np 2 /bin/true"
  "mpirun_trivial|mpirun.openmpi -np 2 $work/trivial"
  "chunk1_local|$local_bin run examples/sma_goog.toml -np 2 --top 0 --chunk-size 1 --out"
  "guided_local|$local_bin run examples/sma_goog.toml -np 2 --top 0 --out"
  "chunk1_mpi|$mpi_bin run examples/sma_goog.toml --backend mpi -np 2 --top 0 --chunk-size 1 --out"
  "guided_mpi|$mpi_bin run examples/sma_goog.toml --backend mpi -np 2 --top 0 --out"
  "long_local|$local_bin run benches/specs/sma_sp20_wide.toml -np 2 --top 0 --out"
  "long_mpi|$mpi_bin run benches/specs/sma_sp20_wide.toml --backend mpi -np 2 --top 0 --out"
)

now_ns() { date +%s%N; }
for ((r = 0; r < rounds; r++)); do
  for entry in "${cases[@]}"; do
    name=${entry%%|*}
    command=${entry#*|}
    out="$work/$name.csv"
    [[ $name == mpirun_* ]] && out=""
    start=$(now_ns)
    $command $out >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
    end=$(now_ns)
    echo "$name $(( (end - start) / 1000 ))" >> "$work/times"
    rm -f "$work/$name".csv*
  done
done

median() { grep "^$1 " "$work/times" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ms() { awk -v us="$1" 'BEGIN { printf "%.1f ms", us / 1000 }'; }
startup=$(median mpirun_trivial)
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'); $rounds rounds; medians"
echo "OpenMPI's start-up: mpirun -np 2 of a trivial MPI program $(ms "$startup"); of /bin/true $(ms "$(median mpirun_true)")"
for backend in local mpi; do
  t1=$(median "chunk1_$backend"); tg=$(median "guided_$backend")
  echo "canonical grid -np 2 $backend: 3830 chunks of 1 combo $(ms "$t1"), guided chunks $(ms "$tg"): \
$(awk -v a="$t1" -v b="$tg" 'BEGIN { printf "%.1f us", (a - b) / (3830 - 34) }') per extra chunk (2 ranks)"
done
tl=$(median long_local); tm=$(median long_mpi)
echo "long sweep (1,119,660 combos) -np 2: local $(ms "$tl"), MPI $(ms "$tm") = $(awk -v a="$tm" -v b="$tl" 'BEGIN { printf "%.3f", a / b }') x local; \
beyond mpirun's start-up: $(awk -v a="$tm" -v b="$tl" -v s="$startup" 'BEGIN { printf "%.3f", (a - s) / b }') x local"
