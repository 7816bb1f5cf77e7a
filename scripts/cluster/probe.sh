#!/usr/bin/env bash
# Failure behaviour of mpirun (OpenMPI) and mpiexec.mpich (hydra) on the test cluster, for the
# launcher's error handling: prints, per case, the command, exit status, time and the full
# stdout/stderr, signal logs of the ranks and any process left behind in the nodes.
#   a) hostfile names a node that does not exist   b) a rank exits 2 (after / before Finalize)
#   c) a rank is SIGKILLed mid-run                 d) mpirun / mpiexec gets SIGINT
#   e) --report-bindings with --map-by core --bind-to core (4 slots/node on 2 real cores)
# Needs the cluster up (scripts/cluster/up.sh). Cases: bash probe.sh [a b c d e] (default all).
set -euo pipefail
source "$(dirname "$0")/config.sh"
[[ -e $swr_env ]] || swr_die "the cluster is not up (bash scripts/cluster/up.sh)"
source "$swr_env"
cases=("${@:-a b c d e}"); cases=(${cases[*]})

work=$(mktemp -d)
trap 'cd /; rm -rf "$work"' EXIT
cd "$work"
mpicc -O2 -o hello.ompi "$swr_dir/mpi_hello.c"
mpicc.mpich -O2 -o hello.mpich "$swr_dir/mpi_hello.c"
net=$SWR_CLUSTER_NET.0/24
ompi=(mpirun --mca plm_rsh_agent "$swr_dir/rsh" --mca oob_tcp_if_include "$net" --mca btl_tcp_if_include "$net")
mpich=(mpiexec.mpich -launcher rsh -launcher-exec "$swr_dir/rsh" -localhost "$SWR_CLUSTER_HEAD")
hf=$swr_dir/hostfile; hhf=$swr_dir/hostfile.hydra
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Leftovers: processes still inside a node after the launcher returned (orphaned ranks/daemons).
leftovers() {
  local n pids=""
  sleep 0.5
  for n in $(seq 1 "$SWR_CLUSTER_NODES"); do pids+=" $(ip netns pids "$(swr_netns "$n")" | tr '\n' ' ')"; done
  pids=$(echo $pids)
  if [[ -n $pids ]]; then
    echo "   LEFT BEHIND in the nodes: $(ps -o pid=,comm= -p "${pids// /,}" | tr -s ' \n' ' ')(killed now)"
    kill -KILL $pids 2>/dev/null || true
  else
    echo "   nothing left behind in the nodes"
  fi
}

# show NAME RC MS: the outcome of one case.
show() {
  echo "   exit status $2 after $3 ms"
  [[ -s $1.out ]] && { echo "   --- stdout"; sed 's/^/   | /' "$1.out" | head -40; }
  [[ -s $1.err ]] && { echo "   --- stderr"; sed 's/^/   | /' "$1.err" | head -60; }
  if compgen -G "$1.log/rank.*" >/dev/null; then
    echo "   --- signals seen by the ranks (ms after the trigger)"
    for f in "$1".log/rank.*; do
      while read -r ts rest; do
        echo "   | ${f##*/}: +$(( ${ts/./} - trigger_ms )) ms $rest"
      done <"$f"
    done
  fi
  leftovers
}

# plain NAME CMD...: run to completion (time limit PROBE_TIMEOUT=20 s: a hang is a finding too;
# timeout(1) then sends SIGTERM and exits 124).
plain() {
  local name=$1; shift
  echo; echo "== $name: $*"
  local t0 rc=0; t0=$(now_ms)
  timeout "${PROBE_TIMEOUT:-20}" "$@" >"$name.out" 2>"$name.err" || rc=$?
  show "$name" "$rc" $(( $(now_ms) - t0 ))
}

# triggered NAME ACTION CMD...: start CMD, wait until all ranks printed, then ACTION (a function
# given the launcher's pid); times are from the trigger.
triggered() {
  local name=$1 action=$2; shift 2
  echo; echo "== $name: $* ; then $action"
  mkdir -p "$name.log"
  # a background job of a script starts with SIGINT ignored; give the launcher the default back
  env --default-signal=INT,QUIT "$@" >"$name.out" 2>"$name.err" &
  local pid=$! rc=0 i
  for i in $(seq 200); do (( $(grep -c '^rank ' "$name.out" || true) >= 16 )) && break; sleep 0.05; done
  trigger_ms=$(now_ms)
  "$action" "$pid" "$name"
  # up to 60 s for the launcher to end; then it is reported as hung and killed
  for i in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "   HUNG for 60 s: killing the launcher"; kill -KILL "$pid"; fi
  wait "$pid" || rc=$?
  show "$name" "$rc" $(( $(now_ms) - trigger_ms ))
}
kill_rank5() { local p; p=$(awk '$2 == 5 {print $12}' "$2.out"); echo "   SIGKILL to rank 5 (pid $p)"; kill -KILL "$p"; }
sigint_launcher() { echo "   SIGINT to the launcher (pid $1)"; kill -INT "$1"; }
sigint_twice() { sigint_launcher "$1"; sleep 1; echo "   second SIGINT after 1 s"; kill -INT "$1"; }
sigterm_launcher() { echo "   SIGTERM to the launcher (pid $1)"; kill -TERM "$1"; }

for c in "${cases[@]}"; do
  case $c in
  a)
    { cat "$hf"; echo "node5 slots=4"; } >hf5; { cat "$hhf"; echo "node5:4"; } >hhf5
    plain a-ompi-node5-np16 "${ompi[@]}" --hostfile hf5 -np 16 ./hello.ompi
    plain a-ompi-node5-np20 "${ompi[@]}" --hostfile hf5 -np 20 ./hello.ompi
    plain a-mpich-node5-np16 "${mpich[@]}" -f hhf5 -n 16 ./hello.mpich
    plain a-mpich-node5-np20 "${mpich[@]}" -f hhf5 -n 20 ./hello.mpich
    ;;
  b)
    plain b-ompi-exit2-after-finalize "${ompi[@]}" --hostfile "$hf" -np 16 ./hello.ompi --exit 5 2
    plain b-ompi-exit2-before-finalize "${ompi[@]}" --hostfile "$hf" -np 16 ./hello.ompi --exit-early 5 2
    plain b-ompi-exit0-before-finalize "${ompi[@]}" --hostfile "$hf" -np 16 ./hello.ompi --exit-early 5 0
    plain b-mpich-exit2-after-finalize "${mpich[@]}" -f "$hhf" -n 16 ./hello.mpich --exit 5 2
    plain b-mpich-exit2-before-finalize "${mpich[@]}" -f "$hhf" -n 16 ./hello.mpich --exit-early 5 2
    ;;
  c)
    triggered c-ompi-sigkill kill_rank5 "${ompi[@]}" --hostfile "$hf" -np 16 ./hello.ompi --sleep 20 --log c-ompi-sigkill.log
    triggered c-mpich-sigkill kill_rank5 "${mpich[@]}" -f "$hhf" -n 16 ./hello.mpich --sleep 20 --log c-mpich-sigkill.log
    ;;
  d)
    triggered d-ompi-sigint sigint_launcher "${ompi[@]}" --hostfile "$hf" -np 16 ./hello.ompi --sleep 30 --log d-ompi-sigint.log
    triggered d-ompi-sigint-stay sigint_launcher "${ompi[@]}" --hostfile "$hf" -np 16 ./hello.ompi --sleep 30 --log d-ompi-sigint-stay.log --stay
    triggered d-mpich-sigint sigint_launcher "${mpich[@]}" -f "$hhf" -n 16 ./hello.mpich --sleep 30 --log d-mpich-sigint.log
    triggered d-mpich-sigint-stay sigint_launcher "${mpich[@]}" -f "$hhf" -n 16 ./hello.mpich --sleep 30 --log d-mpich-sigint-stay.log --stay
    triggered d-mpich-sigint-twice-stay sigint_twice "${mpich[@]}" -f "$hhf" -n 16 ./hello.mpich --sleep 30 --log d-mpich-sigint-twice-stay.log --stay
    triggered d-ompi-sigint-fastkill sigint_launcher "${ompi[@]}" --mca odls_base_sigkill_timeout 0 --hostfile "$hf" -np 16 ./hello.ompi --sleep 30 --log d-ompi-sigint-fastkill.log --stay
    triggered d-ompi-sigterm sigterm_launcher "${ompi[@]}" --hostfile "$hf" -np 16 ./hello.ompi --sleep 30 --log d-ompi-sigterm.log
    triggered d-mpich-sigterm sigterm_launcher "${mpich[@]}" -f "$hhf" -n 16 ./hello.mpich --sleep 30 --log d-mpich-sigterm.log
    ;;
  e)
    b=(--report-bindings --map-by core --bind-to core)
    plain e-bind-core "${ompi[@]}" --hostfile "$hf" -np 16 "${b[@]}" ./hello.ompi
    plain e-bind-core-overload "${ompi[@]}" --hostfile "$hf" -np 16 --report-bindings --map-by core --bind-to core:overload-allowed ./hello.ompi
    plain e-bind-core-oversubscribe "${ompi[@]}" --hostfile "$hf" -np 16 "${b[@]}" --oversubscribe ./hello.ompi
    plain e-bind-core-both "${ompi[@]}" --hostfile "$hf" -np 16 --report-bindings --map-by core:oversubscribe --bind-to core:overload-allowed ./hello.ompi
    plain e-bind-hwthread "${ompi[@]}" --hostfile "$hf" -np 16 --report-bindings --map-by hwthread --bind-to hwthread ./hello.ompi
    plain e-default-report "${ompi[@]}" --hostfile "$hf" -np 16 --report-bindings ./hello.ompi
    ;;
  *) swr_die "unknown case '$c' (a b c d e)" ;;
  esac
done
