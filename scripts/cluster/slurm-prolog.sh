#!/usr/bin/env bash
# The emulated nodes' SLURM Prolog (slurm.conf): before a job's tasks start on a node,
# remove that node's OpenMPI shared-memory segments that no live process maps.
#
# A rank killed by a signal (scancel, a time limit, a lost node, a requeue) leaves its
# /dev/shm/vader_segment.<node>.* files behind. A requeued job runs again under the same
# job and step ids, so its ranks get the same segment names and would attach to the dead
# run's stale segments (it crashed with SIGSEGV at start-up in our tests). Real clusters
# clean /dev/shm in a prolog or epilog; here it is one /dev/shm shared by all emulated nodes
# (they share the host's mount namespace), so each node removes only its own, unmapped ones.
shopt -s nullglob
node=$(hostname)
segments=(/dev/shm/vader_segment."$node".*)
((${#segments[@]})) || exit 0
mapped=$(cat /proc/[0-9]*/maps 2>/dev/null | grep -o '/dev/shm/vader_segment\.[^ ]*' | sort -u || true)
for segment in "${segments[@]}"; do
  grep -qxF "$segment" <<<"$mapped" || rm -f "$segment"
done
exit 0
