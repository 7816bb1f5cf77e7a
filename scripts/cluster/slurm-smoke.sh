#!/usr/bin/env bash
# Quick checks of the SLURM cluster of slurm-up.sh (about 10 s): sinfo shows every node idle;
# `srun -N4 -n16 hostname` puts 4 tasks on each node; `srun --mpi=pmix -N4 -n8` of the MPI
# hello gives each rank its node's hostname and netns and the right Allreduce sum; a throttled
# array (`sbatch --array=0-5%2`) completes with one output per task; scancel cancels a
# running job. Prints "slurm-smoke: N passed, N failed".
# SWR_SLURM_SMOKE_TIMELIMIT=1 adds the time-limit check (about 60-90 s, see docs/slurm-local.md).
# Needs the cluster up (bash scripts/cluster/slurm-up.sh); it does not start or stop it.
#
#   bash scripts/cluster/slurm-smoke.sh
set -euo pipefail
source "$(dirname "$0")/slurm-lib.sh"
[[ $(id -u) -eq 0 ]] || slurm_die "slurm-smoke.sh must run as root"
[[ -e $slurm_env ]] || slurm_die "the SLURM cluster is not up (no $slurm_env): run scripts/cluster/slurm-up.sh"
# shellcheck source=/dev/null  # written by slurm-up.sh
source "$slurm_env"
command -v mpicc >/dev/null || slurm_die "missing mpicc (apt-get install openmpi-bin libopenmpi-dev)"

nodes=$SWR_CLUSTER_NODES
# The work dir is on the shared file system (all nodes see the host's files): the batch
# jobs write their outputs there.
work=$SWR_SLURM_BASE/smoke
rm -rf "$work"; mkdir -p "$work"
cd "$work"
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok: $1 ($(( $(now_ms) - t_check )) ms)"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# job_state ID: JobState from scontrol (finished jobs stay visible for MinJobAge=600 s).
job_state() { scontrol show job "$1" 2>/dev/null | grep -oE 'JobState=[A-Z_]+' | head -1 | cut -d= -f2; }
# wait_state ID SECONDS STATE...: polls until the job is in one of STATEs; prints the last one.
wait_state() {
  local id=$1 secs=$2 st i; shift 2
  for ((i = 0; i < secs * 10; i++)); do
    st=$(job_state "$id")
    for want in "$@"; do [[ $st == "$want" ]] && { echo "$st"; return 0; }; done
    sleep 0.1
  done
  echo "$st"; return 1
}

# Jobs of someone else would take CPUs and make the placement checks fail for no good reason.
busy=$(squeue -h -t PD,R,CG,S -o '%i %T %N' | tr '\n' ';')
[[ -z $busy ]] || slurm_die "the cluster is busy ($busy): cancel those jobs or wait (slurm-down.sh does both)"

# 1. Every node idle.
t_check=$(now_ms)
states=$(sinfo -h -N -o '%N %t' | sort -u)
if [[ $(grep -c ' idle$' <<<"$states") == "$nodes" ]]; then ok "sinfo: $nodes nodes idle"; else fail "sinfo: $(tr '\n' ' ' <<<"$states")"; fi

# 2. srun over all nodes: CPUs tasks per node, each with its node's hostname (UTS namespace).
t_check=$(now_ms)
ntasks=$((nodes * SWR_SLURM_CPUS))
got=$(timeout 30 srun -N"$nodes" -n"$ntasks" hostname 2>"$work/srun.err" | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ') || true
want=$(for n in $(seq 1 "$nodes"); do printf '%sx%s ' "$(swr_host "$n")" "$SWR_SLURM_CPUS"; done)
if [[ $got == "$want" ]]; then ok "srun -N$nodes -n$ntasks hostname: $got"; else fail "srun hostname: got '$got', want '$want'"; cat "$work/srun.err" >&2; fi

# 3. MPI through PMIx: 2 ranks per node, ranks 0-1 on node1 and so on (block distribution),
# each in its node's netns. --ntasks-per-node: -n alone may pack 4+2+1+1.
t_check=$(now_ms)
hello=$SWR_SLURM_BASE/mpi_hello
[[ $hello -nt $swr_dir/mpi_hello.c ]] || mpicc -O2 -o "$hello" "$swr_dir/mpi_hello.c"
np=$((nodes * 2))
if timeout 60 srun --mpi=pmix -N"$nodes" -n"$np" --ntasks-per-node=2 "$hello" >"$work/mpi.out" 2>"$work/mpi.err"; then
  bad=0
  declare -A netns_of
  for n in $(seq 1 "$nodes"); do netns_of[$(swr_host "$n")]=$(stat -L -c %i "/run/netns/$(swr_netns "$n")"); done
  [[ $(grep -c '^rank ' "$work/mpi.out") == "$np" ]] || bad=1
  while read -r _ rank _ size _ host _ netns _ sum _; do
    want_host=$(swr_host $((rank / 2 + 1)))
    [[ $size == "$np" && $host == "$want_host" && $netns == "${netns_of[$want_host]}" && $sum == $((np * (np - 1) / 2)) ]] || bad=1
  done < <(grep '^rank ' "$work/mpi.out")
  if ((bad)); then fail "srun --mpi=pmix: wrong placement or sum"; sed 's/^/  | /' "$work/mpi.out" >&2; else ok "srun --mpi=pmix -N$nodes -n$np mpi_hello: ranks on their nodes, Allreduce sum $((np * (np - 1) / 2))"; fi
else
  fail "srun --mpi=pmix exited $?"; sed 's/^/  | /' "$work/mpi.err" "$work/mpi.out" >&2
fi

# 4. A throttled job array: all 6 tasks complete, each writes its output.
t_check=$(now_ms)
# shellcheck disable=SC2016  # expanded by the job's shell
arr=$(sbatch --parsable --array=0-5%2 -o "$work/arr_%a.out" --wrap 'echo "task $SLURM_ARRAY_TASK_ID on $(hostname)"')
arr=${arr%%;*}
all_done=1
for i in 0 1 2 3 4 5; do
  st=$(wait_state "${arr}_$i" 30 COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL) || true
  if [[ $st != COMPLETED ]] || ! grep -q "^task $i on node" "$work/arr_$i.out" 2>/dev/null; then
    all_done=0; fail "array task ${arr}_$i: $st"
  fi
done
((all_done)) && ok "sbatch --array=0-5%2: 6 tasks COMPLETED"

# 5. scancel of a running job.
t_check=$(now_ms)
job=$(sbatch --parsable -o /dev/null --wrap 'sleep 300')
if wait_state "$job" 20 RUNNING >/dev/null; then
  scancel "$job"
  if st=$(wait_state "$job" 20 CANCELLED); then ok "scancel: job $job $st"; else fail "scancel: job $job is $st"; fi
else
  fail "job $job never ran: $(job_state "$job")"; scancel "$job" || true
fi

# 6. (optional, slow) time limit. --time counts in minutes (1 is the least) and slurmctld
# checks limits only every 30 s, so --time=1 ends 60-90 s after the start. Faster: setting a
# running job's TimeLimit=0 makes the next check (0-30 s later) end it with TIMEOUT.
if [[ ${SWR_SLURM_SMOKE_TIMELIMIT:-0} == 1 ]]; then
  t_check=$(now_ms)
  job=$(sbatch --parsable -o /dev/null --wrap 'sleep 300')
  wait_state "$job" 20 RUNNING >/dev/null || true
  scontrol update jobid="$job" TimeLimit=0
  st=$(wait_state "$job" 45 TIMEOUT COMPLETED FAILED CANCELLED) || true
  if [[ $st == TIMEOUT ]]; then ok "scontrol update TimeLimit=0: job $job TIMEOUT"; else fail "TimeLimit=0: job $job is $st"; scancel "$job" || true; fi
fi

echo "slurm-smoke: $passed passed, $failed failed"
((failed == 0))
