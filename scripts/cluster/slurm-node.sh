#!/usr/bin/env bash
# Node loss for tests, on the SLURM cluster of slurm-up.sh:
#   slurm-node.sh kill N     power cut of node N: SIGKILL to its slurmd and to every process
#                            in the node (its network namespace or its UTS namespace): job
#                            steps (slurmstepd), tasks, MPI daemons. The node keeps its
#                            namespaces (the "hardware"), so revive can boot it again.
#   slurm-node.sh revive N   starts node N's slurmd again and waits until the node takes jobs
#                            (ReturnToService=2 does that on registration; scontrol update
#                            state=resume if it stays down/drained).
#   slurm-node.sh state N    prints the node's compact sinfo state (idle, alloc, down*, ...).
# The controller notices a dead node only after ~30 s (SlurmdTimeout 10 s, pings that retry
# for MessageTimeout 10 s); see
# docs/slurm-local.md for the measured latencies and what happens to its jobs.
set -euo pipefail
source "$(dirname "$0")/slurm-lib.sh"

usage() { echo "usage: slurm-node.sh kill|revive|state N   (N = 1..$SWR_CLUSTER_NODES)" >&2; exit 2; }
(($# == 2)) || usage
cmd=$1 n=$2
if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > SWR_CLUSTER_NODES)); then usage; fi
[[ $(id -u) -eq 0 ]] || slurm_die "slurm-node.sh must run as root"
name=$(swr_host "$n")
net=$(swr_netns "$n")
uts=$swr_uts_dir/$name

# node_pids: every pid in node N: in its netns (ip netns pids) or in its UTS namespace (a
# process entered with only --uts), without duplicates.
node_pids() {
  local uts_ino
  {
    ip netns pids "$net" 2>/dev/null || true
    uts_ino=$(stat -L -c %i "$uts" 2>/dev/null) || return 0
    # find, not a readlink per pid: one process instead of ~100 subshells (0.01 s, not 0.5 s).
    find /proc/[0-9]*/ns/uts -maxdepth 0 -lname "uts:\[$uts_ino\]" 2>/dev/null | cut -d/ -f3
  } | sort -un
}

kill_node() {
  local pids=() i t0
  [[ -e /run/netns/$net ]] || slurm_die "node $name does not exist (run slurm-up.sh)"
  t0=$(now_ms)
  # Repeat: a dying slurmstepd may still fork; SIGKILL everything until the node is empty.
  for ((i = 0; i < 50; i++)); do
    mapfile -t pids < <(node_pids)
    ((${#pids[@]})) || break
    ((i)) || echo "slurm-node: SIGKILL to ${#pids[@]} process(es) in $name: $(ps -o comm= -p "$(IFS=,; echo "${pids[*]}")" | sort | uniq -c | awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.05
  done
  [[ -z $(node_pids) ]] || slurm_die "processes left in $name after 2.5 s: $(node_pids | tr '\n' ' ')"
  echo "slurm-node: $name is off ($(( $(now_ms) - t0 )) ms); slurmctld marks it DOWN after ~30 s (SlurmdTimeout + MessageTimeout)"
}

revive_node() {
  local t0 since st i resumed=0
  t0=$(now_ms); since=$(date +%s)
  pid_of "$ctld_pid" slurmctld >/dev/null || slurm_die "slurmctld is not running (run slurm-up.sh)"
  pid_of "$(slurmd_pid "$name")" slurmd >/dev/null && slurm_die "the slurmd of $name is running (kill it first)"
  start_slurmd "$n"
  for ((i = 0; i < SWR_SLURM_WAIT * 10; i++)); do
    st=$(node_state "$name")
    # Until the new slurmd registers, sinfo may still show the state from before the kill.
    [[ $st =~ ^(idle|alloc|mix|comp)$ ]] && (($(slurmd_start_time "$name") >= since)) && break
    # ReturnToService=2 clears DOWN on registration; a drain (or a DOWN that stays after the
    # node answers again) needs an explicit resume, once.
    if ((i == 30 && !resumed)) && [[ $st =~ ^(down|drain|drng|fail) ]]; then
      SLURM_CONF=$slurm_conf scontrol update nodename="$name" state=resume && resumed=1
    fi
    sleep 0.1
  done
  ((i < SWR_SLURM_WAIT * 10)) || { logs_tail; slurm_die "$name is '$st' after ${SWR_SLURM_WAIT} s (or its new slurmd did not register)"; }
  echo "slurm-node: $name is back: $st ($(( $(now_ms) - t0 )) ms$( ((resumed)) && echo ', after scontrol resume'))"
}

case $cmd in
  kill) kill_node ;;
  revive) revive_node ;;
  state) node_state "$name" ;;
  *) usage ;;
esac
