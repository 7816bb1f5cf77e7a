#!/usr/bin/env bash
# Smoke test of the emulated cluster: builds mpi_hello.c with mpicc (OpenMPI) and mpicc.mpich
# into a temp dir and runs 16 ranks over node1..node4 with each; checks that ranks 0-3 run on
# node1, 4-7 on node2, ... (hostname and network namespace of that node) and that the
# MPI_Allreduce sum is right. Brings the cluster up if it is not, and then down again at the
# end (SWR_CLUSTER_KEEP=1 keeps it); a cluster that was already up is left up.
#
#   bash scripts/cluster/smoke.sh          # prints "smoke: N passed, N failed"
set -euo pipefail
source "$(dirname "$0")/config.sh"
[[ $(id -u) -eq 0 ]] || swr_die "smoke.sh must run as root (the cluster needs it)"
for c in mpicc mpirun mpicc.mpich mpiexec.mpich; do
  command -v "$c" >/dev/null || swr_die "missing $c (apt-get install openmpi-bin libopenmpi-dev mpich libmpich-dev)"
done

work=$(mktemp -d)
brought_up=0
cleanup() {
  cd /   # out of $work before removing it
  rm -rf "$work"
  if ((brought_up)) && [[ ${SWR_CLUSTER_KEEP:-0} != 1 ]]; then bash "$swr_dir/down.sh"; fi
}
trap cleanup EXIT
if [[ ! -e $swr_env ]]; then brought_up=1; fi
bash "$swr_dir/up.sh"   # idempotent: also repairs a half-broken cluster
source "$swr_env"

np=$((SWR_CLUSTER_NODES * SWR_CLUSTER_SLOTS))
# The committed hostfiles are the 4 x 4 default; another node/slot count uses up.sh's.
hostfile=$swr_dir/hostfile; hydra_hostfile=$swr_dir/hostfile.hydra
cmp -s "$hostfile" "$SWR_CLUSTER_HOSTFILE" || hostfile=$SWR_CLUSTER_HOSTFILE
cmp -s "$hydra_hostfile" "$SWR_CLUSTER_HYDRA_HOSTFILE" || hydra_hostfile=$SWR_CLUSTER_HYDRA_HOSTFILE

mpicc -O2 -o "$work/hello.ompi" "$swr_dir/mpi_hello.c"
mpicc.mpich -O2 -o "$work/hello.mpich" "$swr_dir/mpi_hello.c"

# Expected node of each rank (by slot: SLOTS consecutive ranks per node) and each node's netns.
declare -A netns_of
for n in $(seq 1 "$SWR_CLUSTER_NODES"); do
  netns_of[$(swr_host "$n")]=$(stat -L -c %i "/run/netns/$(swr_netns "$n")")
done

# check NAME OUTPUT_FILE: one line per rank, each on its node, each with the right sum.
passed=0; failed=0
check() {
  local name=$1 out=$2 bad=0 rank size host netns sum want_host
  local want_sum=$((np * (np - 1) / 2))
  local seen=$(grep -c '^rank ' "$out" || true)
  if ((seen != np)); then echo "FAIL $name: $seen of $np ranks reported" >&2; bad=1; fi
  while read -r _ rank _ size _ host _ netns _ sum _; do
    want_host=$(swr_host $((rank / SWR_CLUSTER_SLOTS + 1)))
    if [[ $size != "$np" || $host != "$want_host" || $netns != "${netns_of[$want_host]}" || $sum != "$want_sum" ]]; then
      echo "FAIL $name: rank $rank size $size host $host netns $netns sum $sum (want $np $want_host ${netns_of[$want_host]} $want_sum)" >&2
      bad=1
    fi
  done < <(grep '^rank ' "$out")
  if ((bad)); then failed=$((failed + 1)); sed 's/^/  | /' "$out" >&2; else passed=$((passed + 1)); echo "ok: $name ($3 ms)"; fi
}

# run NAME CMD...: runs with a time limit (a launcher that cannot reach a node may hang).
run() {
  local name=$1; shift
  local t0=$(date +%s%N) rc=0
  timeout 120 "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  if ((rc)); then
    echo "FAIL $name: exit $rc: $*" >&2; sed 's/^/  | /' "$work/$name.err" "$work/$name.out" >&2
    failed=$((failed + 1)); return
  fi
  check "$name" "$work/$name.out" "$ms"
}

# The command lines spelled out in full (they do not rely on env.sh's OMPI_MCA_* / HYDRA_*).
cd "$work"
run openmpi env -u OMPI_MCA_plm_rsh_agent -u OMPI_MCA_oob_tcp_if_include -u OMPI_MCA_btl_tcp_if_include \
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  mpirun -np "$np" --hostfile "$hostfile" --mca plm_rsh_agent "$swr_dir/rsh" \
  --mca oob_tcp_if_include "$SWR_CLUSTER_NET.0/24" --mca btl_tcp_if_include "$SWR_CLUSTER_NET.0/24" \
  ./hello.ompi
run mpich env -u HYDRA_LAUNCHER -u HYDRA_LAUNCHER_EXEC -u HYDRA_IFACE \
  mpiexec.mpich -f "$hydra_hostfile" -launcher rsh -launcher-exec "$swr_dir/rsh" \
  -localhost "$SWR_CLUSTER_HEAD" -n "$np" ./hello.mpich

echo "smoke: $passed passed, $failed failed"
((failed == 0))
