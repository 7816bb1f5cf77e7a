#!/usr/bin/env bash
# Stops what slurm-up.sh started: cancels leftover jobs, stops the slurmd's, slurmctld and the
# private munged (exactly those: by pid file, checked against /proc/PID/comm), removes the
# /etc/slurm/slurm.conf symlink if slurm-up.sh made it, the env file and $SWR_SLURM_BASE
# (SWR_SLURM_KEEP_BASE=1 keeps logs and state), then takes the nodes down with down.sh
# (SWR_SLURM_KEEP_NODES=1 leaves them up for the MPI tests). Idempotent.
#
#   bash scripts/cluster/slurm-down.sh
set -euo pipefail
source "$(dirname "$0")/slurm-lib.sh"
t0=$(now_ms)

[[ $(id -u) -eq 0 ]] || slurm_die "slurm-down.sh must run as root"

cancel_jobs

# slurmctld and the slurmd's together, munged last (they need it until they are gone).
specs=("$ctld_pid:slurmctld")
for pf in "$SWR_SLURM_BASE"/run/slurmd.*.pid; do [[ -e $pf ]] && specs+=("$pf:slurmd"); done
stopped=$(stop_daemons 10 "${specs[@]}")
# Accounting (if it ran): slurmdbd after slurmctld (which flushes its records to it), MariaDB last.
stopped="$stopped $(stop_daemons 10 "$dbd_pid:slurmdbd")"
stopped="$stopped $(stop_daemons 20 "$db_pid:mariadbd")"
stopped="$stopped $(stop_daemons 5 "$munge_pid:munged")"
stopped=$(xargs <<<"$stopped")   # trim

# The symlink only if it is ours and still points at our conf (someone may have replaced it).
if [[ -e $slurm_etc_ours ]]; then
  if [[ -L $slurm_etc_link && $(readlink "$slurm_etc_link") == "$slurm_conf" ]]; then rm -f "$slurm_etc_link"; fi
  if [[ -e $slurm_etc_ours.dir ]]; then rmdir /etc/slurm 2>/dev/null || true; fi
fi
rm -f "$slurm_env"
if [[ ${SWR_SLURM_KEEP_BASE:-0} != 1 && -d $SWR_SLURM_BASE ]]; then
  # Only a directory that slurm-up.sh laid out: SWR_SLURM_BASE may point anywhere.
  [[ -d $SWR_SLURM_BASE/etc && -d $SWR_SLURM_BASE/munge ]] || slurm_die "$SWR_SLURM_BASE does not look like slurm-up.sh's; not removed"
  rm -rf "$SWR_SLURM_BASE"
fi

nodes="nodes left up (SWR_SLURM_KEEP_NODES=1)"
if [[ ${SWR_SLURM_KEEP_NODES:-0} != 1 ]]; then
  bash "$swr_dir/down.sh" >/dev/null
  nodes="nodes down"
fi
ms=$(( $(now_ms) - t0 ))
echo "slurm down: stopped ${stopped:-nothing (not running)}; $nodes (${ms} ms)"
