#!/usr/bin/env bash
# Tears down what scripts/cluster/up.sh created: processes left inside the nodes, the node
# network namespaces (swr-node*), their veths (swrv*), the UTS namespace mounts, the bridge,
# the marked /etc/hosts lines, /run/netns if up.sh caused it, and the state dir.
# Idempotent; waits until the kernel has really removed the links (netns teardown is async).
#
#   bash scripts/cluster/down.sh
set -euo pipefail
source "$(dirname "$0")/config.sh"
t0=$(date +%s%N)

[[ $(id -u) -eq 0 ]] || swr_die "down.sh must run as root"

# By prefix, not 1..SWR_CLUSTER_NODES: a cluster brought up with another node count goes too.
shopt -s nullglob
nets=(/run/netns/swr-node[0-9]*)
utss=("$swr_uts_dir"/node[0-9]*)
shopt -u nullglob

# A process still in a node (an orted or rank after a crashed run) keeps its namespace and veth
# alive after `ip netns del`; end those (they can only come from runs on this cluster).
pids=()
for net in "${nets[@]}"; do
  while read -r pid; do [[ -n $pid ]] && pids+=("$pid"); done < <(ip netns pids "${net##*/}" 2>/dev/null || true)
done
if ((${#pids[@]})); then
  echo "cluster: ending ${#pids[@]} process(es) left in the nodes: $(ps -o pid=,comm= -p "$(IFS=,; echo "${pids[*]}")" | awk '{printf "%s(%s) ", $2, $1}')" >&2
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 20); do
    alive=(); for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
    ((${#alive[@]})) || break
    sleep 0.1
  done
  ((${#alive[@]})) && kill -KILL "${alive[@]}" 2>/dev/null || true
fi

for net in "${nets[@]}"; do ip netns del "${net##*/}"; done
for uts in "${utss[@]}"; do
  while mountpoint -q "$uts"; do umount "$uts"; done
  rm -f "$uts"
done
for veth in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E '^swrv[0-9]+$' || true); do
  ip link del "$veth" 2>/dev/null || true   # may already be gone with its namespace
done
if ip link show "$SWR_CLUSTER_BRIDGE" >/dev/null 2>&1; then ip link del "$SWR_CLUSTER_BRIDGE"; fi

if grep -q -F -- "$swr_marker" /etc/hosts; then
  tmp=$(mktemp)
  grep -v -F -- "$swr_marker" /etc/hosts >"$tmp" || true
  cat "$tmp" >/etc/hosts   # in place, as up.sh writes it
  rm -f "$tmp"
fi

# The kernel frees a deleted namespace's devices in a worker: wait for them, up to 5 s.
gone=0
for _ in $(seq 100); do
  if ! ip -o link show | grep -qE "^[0-9]+: (swrv[0-9]+|$SWR_CLUSTER_BRIDGE)[@:]"; then gone=1; break; fi
  sleep 0.05
done
((gone)) || swr_die "links still present after 5 s: $(ip -o link show | grep -oE "(swrv[0-9]+|$SWR_CLUSTER_BRIDGE)" | sort -u | tr '\n' ' ')"

if [[ -e $SWR_CLUSTER_STATE/run-netns-ours ]] && mountpoint -q /run/netns && [[ -z $(ls -A /run/netns) ]]; then
  umount /run/netns && rmdir /run/netns
fi
if [[ -e $SWR_CLUSTER_STATE/run-mount-ours ]]; then rmdir /run/mount 2>/dev/null || true; fi
# Only our own files: SWR_CLUSTER_STATE may have been pointed somewhere shared.
rm -f "$swr_env" "$SWR_CLUSTER_STATE"/{hostfile,hostfile.hydra,run-netns-ours,run-mount-ours}
rmdir "$swr_uts_dir" "$SWR_CLUSTER_STATE" 2>/dev/null || true
# Ranks that tests kill (scancel, a killed node) leave OpenMPI's shared-memory segments
# behind, named after their node and job. The emulated nodes share the host's /dev/shm and
# SLURM's job ids restart with every cluster, so a stale segment can carry a name a later
# job uses (suspected behind srun --mpi=pmix start-up failures: "shared memory
# initialization ... open(2) No such file", then a segfault). Only our nodes' names.
# By name pattern, like the netns above: any node count this script may have made.
rm -f /dev/shm/vader_segment."$(swr_host "")"[0-9]*.*

ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "cluster down: ${#nets[@]} netns, ${#utss[@]} UTS mounts removed; no swrv*/$SWR_CLUSTER_BRIDGE links, no marked /etc/hosts lines left (${ms} ms)"
