# Shared settings and helpers of the SLURM layer on the emulated cluster; sourced by
# slurm-up.sh, slurm-down.sh, slurm-node.sh and slurm-smoke.sh (after config.sh's nodes).
# Override the SWR_SLURM_* variables in the environment; all slurm-*.sh must see the same.
# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this

source "$(dirname "${BASH_SOURCE[0]}")/config.sh"

# Everything SLURM writes (munge key and socket, slurm.conf, controller state, spools, logs,
# per-node TmpFS) lives under one directory. /run by default: it is wiped at boot together
# with the namespaces, so no stale state can outlive the nodes it describes.
SWR_SLURM_BASE="${SWR_SLURM_BASE:-$SWR_CLUSTER_STATE/slurm}"
SWR_SLURM_CPUS="${SWR_SLURM_CPUS:-$SWR_CLUSTER_SLOTS}"   # CPUs advertised per node
SWR_SLURM_WAIT="${SWR_SLURM_WAIT:-60}"                   # seconds to wait for the nodes
SWR_SLURM_LINK_ETC="${SWR_SLURM_LINK_ETC:-1}"            # symlink /etc/slurm/slurm.conf
# sacct: slurmdbd + a private MariaDB (127.0.0.1 only). Off by default: +20 s of packages
# and +2 s per start; without it job states come from squeue/scontrol and the jobcomp log.
SWR_SLURM_ACCOUNTING="${SWR_SLURM_ACCOUNTING:-0}"
SWR_SLURM_DB_PORT="${SWR_SLURM_DB_PORT:-3307}"            # MariaDB (not the system's 3306)
SWR_SLURM_DBD_PORT="${SWR_SLURM_DBD_PORT:-6819}"

slurm_conf="$SWR_SLURM_BASE/etc/slurm.conf"
slurm_started_sha="$SWR_SLURM_BASE/etc/slurm.conf.started.sha256"   # conf of the running daemons
slurm_env="$SWR_CLUSTER_STATE/slurm-env.sh"
slurm_etc_link=/etc/slurm/slurm.conf
slurm_etc_ours="$SWR_SLURM_BASE/etc/etc-link-ours"        # we made the symlink (and maybe /etc/slurm)
munge_sock="$SWR_SLURM_BASE/munge/run/munge.socket"
munge_pid="$SWR_SLURM_BASE/munge/munged.pid"
ctld_pid="$SWR_SLURM_BASE/run/slurmctld.pid"
dbd_conf="$SWR_SLURM_BASE/etc/slurmdbd.conf"   # slurmdbd reads it next to SLURM_CONF (no -f)
dbd_pid="$SWR_SLURM_BASE/run/slurmdbd.pid"
db_dir="$SWR_SLURM_BASE/acct"
db_pid="$db_dir/mariadbd.pid"
db_sock="$db_dir/mariadbd.sock"
slurmd_pid() { echo "$SWR_SLURM_BASE/run/slurmd.$1.pid"; }   # $1 = nodeN (SlurmdPidFile %n)
slurmd_log() { echo "$SWR_SLURM_BASE/log/slurmd.$1.log"; }

slurm_die() { echo "slurm: $*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# alive PID COMM: the process exists, is not a zombie and its comm is COMM. The comm check
# keeps a stale pid file from making us signal an unrelated, reused pid; the zombie check
# matters right after a SIGKILL (PID 1 of this VM reaps orphans with a delay, and a killed
# slurmd that is still a zombie must not count as running).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }   # the fields after "(comm) "; the first is the state
  [[ ${stat:0:1} != [ZX] && $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]]
}

# pid_of PIDFILE COMM: prints the pid if the file names a live process whose comm is COMM.
pid_of() {
  local pid
  [[ -r $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" "$2" || return 1
  echo "$pid"
}

# stop_daemons SECONDS PIDFILE:COMM...: SIGTERM to all at once (a slurmd takes ~2 s to shut
# down, slurmctld up to ~5 s; in parallel that is paid once), wait, then SIGKILL the rest.
# Daemons not running are skipped. Prints the names of those it stopped.
stop_daemons() {
  local secs=$1 spec pf comm pid i live=() names=() left
  shift
  for spec in "$@"; do
    pf=${spec%:*} comm=${spec##*:}
    if pid=$(pid_of "$pf" "$comm"); then
      kill -TERM "$pid" 2>/dev/null || true
      live+=("$pid:$comm"); names+=("$(basename "$pf" .pid)")
    fi
    rm -f "$pf"   # the daemon removes it too; a stale one must not name a reused pid later
  done
  for ((i = 0; i < secs * 20; i++)); do
    left=()
    for spec in "${live[@]}"; do
      alive "${spec%%:*}" "${spec#*:}" && left+=("$spec")
    done
    ((${#left[@]})) || break
    sleep 0.05
  done
  for spec in "${left[@]}"; do
    echo "slurm: ${spec#*:} (${spec%%:*}) ignored SIGTERM for $secs s; SIGKILL" >&2
    kill -KILL "${spec%%:*}" 2>/dev/null || true
  done
  echo "${names[*]}"
}

# start_slurmd N: slurmd for node N inside the node's network + UTS namespaces. nsenter, not
# `ip netns exec`: the latter remounts /sys in a new mount namespace, /sys/fs/cgroup vanishes
# and slurmd 22.05 dies ("Unable to initialize cgroup plugin"). slurmd daemonizes itself and
# writes its pid file (SlurmdPidFile with %n); its job steps inherit the namespaces.
start_slurmd() {
  local name net uts
  name=$(swr_host "$1"); net=/run/netns/$(swr_netns "$1"); uts=$swr_uts_dir/$name
  [[ -e $net && -e $uts ]] || slurm_die "node $name has no namespaces (run scripts/cluster/up.sh)"
  pid_of "$(slurmd_pid "$name")" slurmd >/dev/null && return 0
  (cd / && SLURM_CONF=$slurm_conf nsenter --net="$net" --uts="$uts" -- slurmd -f "$slurm_conf" -N "$name") \
    || slurm_die "slurmd -N $name failed to start; see $(slurmd_log "$name")"
}

# Cancel jobs first and give them KillWait (2 s) to end: slurmd then cleans up its steps, so
# no slurmstepd or task is left behind in a node once slurmd is gone.
cancel_jobs() {
  local jobs i
  pid_of "$ctld_pid" slurmctld >/dev/null || return 0
  jobs=$(SLURM_CONF=$slurm_conf squeue -h -t PD,R,CG,S,CF,RQ,RS,SO -o %A 2>/dev/null | sort -u | tr '\n' ' ') || return 0
  [[ -n ${jobs// /} ]] || return 0
  echo "slurm: cancelling leftover job(s): $jobs"
  # shellcheck disable=SC2086  # one word per job id
  SLURM_CONF=$slurm_conf scancel $jobs 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    [[ -z $(SLURM_CONF=$slurm_conf squeue -h -t PD,R,CG,S,CF -o %A 2>/dev/null) ]] && return 0
    sleep 0.1
  done
  echo "slurm: jobs still ending after 10 s; stopping the daemons anyway" >&2
}

# slurmd_start_time NAME: the node's SlurmdStartTime as seconds since the epoch (0 if none).
# After a kill, sinfo keeps showing the old state until SlurmdTimeout; only a SlurmdStartTime
# newer than our start proves that the new slurmd has registered.
slurmd_start_time() {
  local t
  t=$(SLURM_CONF=$slurm_conf scontrol show node "$1" 2>/dev/null | grep -oE 'SlurmdStartTime=[0-9T:-]+' | cut -d= -f2)
  [[ -n $t ]] && date -d "$t" +%s 2>/dev/null || echo 0
}

# node_state NAME: the compact sinfo state (idle, alloc, mix, down*, unk*, ...), or nothing.
node_state() { SLURM_CONF=$slurm_conf sinfo -h -n "$1" -N -o '%t' 2>/dev/null | head -1; }

# logs_tail: what to show when the cluster does not come up.
logs_tail() {
  local f
  for f in "$SWR_SLURM_BASE"/log/munged.log "$SWR_SLURM_BASE"/log/slurmctld.log "$SWR_SLURM_BASE"/log/slurmdbd.log "$SWR_SLURM_BASE"/log/slurmd.*.log; do
    [[ -e $f ]] || continue
    echo "--- tail $f" >&2
    tail -n 8 "$f" >&2
  done
}
