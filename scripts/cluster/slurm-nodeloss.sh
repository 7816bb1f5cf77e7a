#!/usr/bin/env bash
# Probe: what SLURM does when a node dies under running jobs (about 75 s). Needs the SLURM
# cluster up and idle. Starts, all touching node N (default 2):
#   requeue   sbatch -w nodeN            (JobRequeue=1: requeueable by default)
#   norequeue sbatch --no-requeue -w nodeN
#   multi     sbatch --requeue -N2 -w nodeN,nodeM 'srun sleep'   (M = the next node)
#   other     sbatch -w nodeM            (not on the dead node)
#   srun      srun -N2 -w nodeN,nodeM sleep   (interactive step)
# then `slurm-node.sh kill N`, prints every change of the node's state and of the job states
# with the time since the kill, revives the node after REVIVE_AT s (default 35) and follows
# the requeued jobs until they run again; finally cancels everything it started.
#
#   bash scripts/cluster/slurm-nodeloss.sh [N]
set -euo pipefail
source "$(dirname "$0")/slurm-lib.sh"
[[ -e $slurm_env ]] || slurm_die "the SLURM cluster is not up: run scripts/cluster/slurm-up.sh"
# shellcheck source=/dev/null  # written by slurm-up.sh
source "$slurm_env"
n=${1:-2}
((SWR_CLUSTER_NODES >= 2 && n >= 1 && n <= SWR_CLUSTER_NODES)) || slurm_die "node $n: need 2+ nodes and N in 1..$SWR_CLUSTER_NODES"
dead=$(swr_host "$n"); other=$(swr_host $((n % SWR_CLUSTER_NODES + 1)))
revive_at=${REVIVE_AT:-35}
[[ -z $(squeue -h -t PD,R,CG -o %A) ]] || slurm_die "the cluster is busy: run this on an idle cluster"

cd "$SWR_SLURM_BASE"
declare -A label
sub() { local id; id=$(sbatch --parsable -o /dev/null "${@:2}"); label[$id]=$1; }
sub requeue -w "$dead" -n1 --wrap 'sleep 600'
sub norequeue --no-requeue -w "$dead" -n1 --wrap 'sleep 600'
sub multi --requeue -N2 -w "$dead,$other" --wrap 'srun sleep 600'
sub other -w "$other" -n1 --wrap 'sleep 600'
srun_out=$(mktemp)
srun -N2 -w "$dead,$other" sleep 600 >"$srun_out" 2>&1 &
srun_pid=$!
for _ in $(seq 100); do [[ $(squeue -h -t R | wc -l) -ge 5 ]] && break; sleep 0.2; done
for id in $(squeue -h -o '%A %j' | awk '$2 == "sleep" {print $1}'); do label[$id]=srun; done
echo "jobs: $(for id in "${!label[@]}"; do printf '%s=%s ' "${label[$id]}" "$id"; done)"

t0=$(now_ms)
bash "$swr_dir/slurm-node.sh" kill "$n"
states() {
  local id out=""
  for id in $(printf '%s\n' "${!label[@]}" | sort -n); do
    out+="${label[$id]}:$(squeue -h -t all -j "$id" -o '%T/%r' 2>/dev/null | head -1) "
  done
  echo "$dead=$(node_state "$dead") | $out"
}
prev="" revived=0 srun_done=0
while :; do
  s=$(states)
  [[ $s == "$prev" ]] || { printf '%6.1f s  %s\n' "$(bc <<<"scale=1; ($(now_ms) - $t0) / 1000")" "$s"; prev=$s; }
  if ((!srun_done)) && ! kill -0 "$srun_pid" 2>/dev/null; then
    wait "$srun_pid" && rc=0 || rc=$?
    printf '%6.1f s  srun exited %s: %s\n' "$(bc <<<"scale=1; ($(now_ms) - $t0) / 1000")" "$rc" "$(grep -v 'queued\|allocated' "$srun_out" | tr '\n' ' ')"
    srun_done=1
  fi
  if ((!revived && $(now_ms) - t0 > revive_at * 1000)); then
    printf '%6.1f s  revive\n' "$(bc <<<"scale=1; ($(now_ms) - $t0) / 1000")"
    bash "$swr_dir/slurm-node.sh" revive "$n"; revived=1
  fi
  # Done when both requeued batch jobs run again (or after 120 s).
  if ((revived)) && [[ $s == *"requeue:RUNNING"* && $s == *"multi:RUNNING"* ]]; then break; fi
  (($(now_ms) - t0 < 120000)) || { echo "gave up after 120 s"; break; }
  sleep 0.25
done
scancel "${!label[@]}" 2>/dev/null || true
for _ in $(seq 100); do [[ -z $(squeue -h -t PD,R,CG -o %A) ]] && break; sleep 0.1; done   # idle again for the next run
rm -f "$srun_out"
