#!/usr/bin/env bash
# Brings up a real SLURM 22.05 cluster on the emulated nodes of up.sh: slurmctld on the host
# (10.78.0.1), one slurmd per node inside that node's network + UTS namespaces, and a private
# munged; all state, spools and logs under $SWR_SLURM_BASE (default /run/sweeprun-cluster/slurm).
# Installs munge/slurm packages if they are missing. Idempotent: running daemons whose
# slurm.conf is unchanged are left alone, a missing one is started, a changed config restarts
# them all. Waits until every node answers (idle on a fresh start).
#
#   bash scripts/cluster/slurm-up.sh && source /run/sweeprun-cluster/slurm-env.sh
#   srun -N4 -n16 hostname; sbatch --wrap 'hostname'; squeue
#   bash scripts/cluster/slurm-down.sh
set -euo pipefail
source "$(dirname "$0")/slurm-lib.sh"
t0=$(now_ms)

[[ $(id -u) -eq 0 ]] || slurm_die "slurm-up.sh must run as root (namespaces, packages, daemons as root)"
bash "$swr_dir/up.sh"

# --- packages -------------------------------------------------------------------------------
# libpmix-dev: slurm's pmix plugin dlopen()s the unversioned libpmix.so that only -dev ships.
install_packages() {
  local p missing=() added_policy=0
  local want=(munge slurmctld slurmd slurm-client libpmix-dev)
  [[ $SWR_SLURM_ACCOUNTING != 1 ]] || want+=(slurmdbd mariadb-server)
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "slurm: installing ${missing[*]}"
  # The postinsts would start munge/slurmd system services (with /etc/munge's key, default
  # ports): a policy-rc.d that says "no" prevents that. Debian images usually have one.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  local rc=0 log
  log=$(mktemp)
  {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -q "${missing[@]}"
  } >"$log" 2>&1 || rc=$?
  if ((added_policy)); then rm -f /usr/sbin/policy-rc.d; fi
  ((rc == 0)) || { tail -n 20 "$log" >&2; rm -f "$log"; slurm_die "apt-get install ${missing[*]} failed (exit $rc)"; }
  rm -f "$log"
}
install_packages

mkdir -p "$SWR_SLURM_BASE"/{etc,ctld,run,log,spool,tmp,munge/run}
for n in $(seq 1 "$SWR_CLUSTER_NODES"); do   # per node: TmpFS and spool (slurmd logs an error without it)
  mkdir -p "$SWR_SLURM_BASE/tmp/$(swr_host "$n")" "$SWR_SLURM_BASE/spool/$(swr_host "$n")"
done
# munged refuses group/other-writable dirs on its paths; the socket dir must be 755 so that
# non-root clients could reach the socket (munged warns otherwise).
chmod 755 "$SWR_SLURM_BASE" "$SWR_SLURM_BASE/munge" "$SWR_SLURM_BASE/munge/run"

# --- munge ----------------------------------------------------------------------------------
# A private munged with its own key and socket, so an installed system munge is neither used
# nor disturbed; slurm finds the socket through AuthInfo=socket=.
start_munged() {
  local key=$SWR_SLURM_BASE/munge/munge.key i
  if [[ ! -s $key ]]; then
    (umask 077 && head -c 1024 /dev/urandom >"$key")
  fi
  chmod 400 "$key"
  pid_of "$munge_pid" munged >/dev/null && return 0
  munged --key-file="$key" --socket="$munge_sock" --pid-file="$munge_pid" \
    --log-file="$SWR_SLURM_BASE/log/munged.log" --seed-file="$SWR_SLURM_BASE/munge/munged.seed" \
    || { logs_tail; slurm_die "munged failed to start"; }
  for ((i = 0; i < 50; i++)); do
    munge -S "$munge_sock" -n 2>/dev/null | unmunge -S "$munge_sock" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  logs_tail; slurm_die "munged does not answer on $munge_sock"
}
start_munged

# --- accounting (optional) ------------------------------------------------------------------
# slurm.conf lines: none, or slurmdbd on 127.0.0.1. The controller ignores AuthInfo=socket= for
# its slurmdbd connection and would try /run/munge; AccountingStoragePass names our socket.
accounting_conf() {
  if [[ $SWR_SLURM_ACCOUNTING == 1 ]]; then
    printf '%s\n' AccountingStorageType=accounting_storage/slurmdbd AccountingStorageHost=127.0.0.1 \
      "AccountingStoragePort=$SWR_SLURM_DBD_PORT" "AccountingStoragePass=$munge_sock"
  else
    echo AccountingStorageType=accounting_storage/none
  fi
}

# A private MariaDB (datadir under the base dir, 127.0.0.1:$SWR_SLURM_DB_PORT) and slurmdbd.
start_accounting() {
  local i
  mkdir -p "$db_dir"
  if [[ ! -d $db_dir/data/mysql ]]; then
    mariadb-install-db --user=root --datadir="$db_dir/data" --auth-root-authentication-method=socket \
      --skip-test-db >"$SWR_SLURM_BASE/log/mariadb-install.log" 2>&1 \
      || { tail -n 20 "$SWR_SLURM_BASE/log/mariadb-install.log" >&2; slurm_die "mariadb-install-db failed"; }
  fi
  if ! pid_of "$db_pid" mariadbd >/dev/null; then
    # mariadbd does not daemonize: setsid + background, so it outlives this script.
    setsid mariadbd --no-defaults --user=root --datadir="$db_dir/data" --socket="$db_sock" \
      --port="$SWR_SLURM_DB_PORT" --bind-address=127.0.0.1 --pid-file="$db_pid" \
      --log-error="$SWR_SLURM_BASE/log/mariadbd.log" </dev/null >/dev/null 2>&1 &
    for ((i = 0; i < 300; i++)); do
      mariadb --no-defaults -S "$db_sock" -u root -e 'select 1' >/dev/null 2>&1 && break
      sleep 0.1
    done
    ((i < 300)) || { logs_tail; tail -n 10 "$SWR_SLURM_BASE/log/mariadbd.log" >&2; slurm_die "MariaDB did not start"; }
  fi
  mariadb --no-defaults -S "$db_sock" -u root -e "
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || slurm_die "cannot create the slurm database user"
  # slurmdbd insists on mode 600 for its conf (it holds the DB password).
  (umask 077 && cat >"$dbd_conf" <<EOF
# Generated by scripts/cluster/slurm-up.sh (SWR_SLURM_ACCOUNTING=1).
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$SWR_SLURM_DBD_PORT
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$munge_sock
PidFile=$dbd_pid
LogFile=$SWR_SLURM_BASE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$SWR_SLURM_DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
  )
  chmod 600 "$dbd_conf"
  if ! pid_of "$dbd_pid" slurmdbd >/dev/null; then
    (cd / && SLURM_CONF=$slurm_conf slurmdbd) || { logs_tail; slurm_die "slurmdbd failed to start"; }
    started+=(slurmdbd)
  fi
  for ((i = 0; i < 100; i++)); do
    SLURM_CONF=$slurm_conf sacctmgr -n list cluster >/dev/null 2>&1 && break
    sleep 0.1
  done
  ((i < 100)) || { logs_tail; slurm_die "slurmdbd does not answer (sacctmgr list cluster)"; }
  # slurmctld registers its cluster only if it is known to slurmdbd.
  if ! SLURM_CONF=$slurm_conf sacctmgr -n -P list cluster format=cluster | grep -qx sweeprun; then
    SLURM_CONF=$slurm_conf sacctmgr -i add cluster sweeprun >/dev/null || slurm_die "sacctmgr add cluster sweeprun failed"
  fi
}

# --- slurm.conf -----------------------------------------------------------------------------
# The controller's address on the bridge: the host's own name resolves to 127.0.0.1, which
# the nodes cannot reach.
head_name=$(hostname -s)
mem_mb=$(awk -v n="$SWR_CLUSTER_NODES" '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.8 / n }' /proc/meminfo)
write_conf() {
  local b=$SWR_SLURM_BASE n
  cat <<EOF
# Generated by scripts/cluster/slurm-up.sh from config.sh / slurm-lib.sh; edits are overwritten.
ClusterName=sweeprun
SlurmctldHost=$head_name($SWR_CLUSTER_NET.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire (default 120 s) is also how long a requeued job waits before it may start again.
AuthInfo=socket=$munge_sock,cred_expire=30
StateSaveLocation=$b/ctld
SlurmctldPidFile=$ctld_pid
SlurmctldLogFile=$b/log/slurmctld.log
# %n = node name: every slurmd of this one host needs its own spool, pid file and log.
SlurmdSpoolDir=$b/spool/%n
SlurmdPidFile=$b/run/slurmd.%n.pid
SlurmdLogFile=$b/log/slurmd.%n.log
# Per-node TmpFS: PMIx makes a directory per job step in it on every node; a shared /tmp
# gives "File exists" on nodes 2-4 and the MPI launch fails.
TmpFS=$b/tmp/%n
# Removes a node's stale OpenMPI shared-memory segments before a job's tasks start there
# (slurm-prolog.sh says why).
Prolog=$swr_dir/slurm-prolog.sh
# No cgroups: linuxproc tracks processes by parentage, tasks are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
# The nodes advertise more CPUs than the VM has; without this they go "inval".
SlurmdParameters=config_overrides
# Start batch jobs at once (default: up to a few seconds' delay per scheduling pass), and
# look at pending jobs every 5 s (defaults 60 s main, 30 s backfill): a requeued job whose
# BeginTime passed would otherwise wait up to a minute more.
SchedulerParameters=batch_sched_delay=0,sched_interval=5,bf_interval=5
$(accounting_conf)
JobCompType=jobcomp/filetxt
JobCompLoc=$b/log/jobcomp.log
# Finished jobs stay visible in squeue / scontrol show job for 10 minutes.
MinJobAge=600
# Short timeouts so that cancel/time-limit tests and node-loss tests are fast.
KillWait=2
SlurmdTimeout=10
# A node that was DOWN comes back by itself when its slurmd registers again.
ReturnToService=2
JobRequeue=1
MailProg=/bin/true
SlurmctldDebug=info
SlurmdDebug=info
EOF
  for n in $(seq 1 "$SWR_CLUSTER_NODES"); do
    echo "NodeName=$(swr_host "$n") NodeAddr=$(swr_ip "$n") CPUs=$SWR_SLURM_CPUS RealMemory=$mem_mb State=UNKNOWN"
  done
  echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
}
new_conf=$(write_conf)
[[ -e $slurm_conf && $(<"$slurm_conf") == "$new_conf" ]] || printf '%s\n' "$new_conf" >"$slurm_conf"
conf_sha=$(sha256sum "$slurm_conf" | cut -d' ' -f1)

# The daemons must all run the same conf (slurmctld compares hashes); a changed file means
# restarting them all. slurmctld -c below starts without the old jobs (the job id counter
# went on from where it was in our restarts; after slurm-down.sh removed the state, ids
# start at 1 again).
if [[ -e $slurm_started_sha && $(<"$slurm_started_sha") != "$conf_sha" ]]; then
  echo "slurm: slurm.conf changed since the daemons started; restarting them"
  cancel_jobs   # slurmctld -c forgets them; their steps would be left running in the nodes
  specs=("$ctld_pid:slurmctld")
  for n in $(seq 1 "$SWR_CLUSTER_NODES"); do specs+=("$(slurmd_pid "$(swr_host "$n")"):slurmd"); done
  stop_daemons 10 "${specs[@]}" >/dev/null
fi

# --- daemons --------------------------------------------------------------------------------
started=() new_slurmd=()
since=$(date +%s)
if [[ $SWR_SLURM_ACCOUNTING == 1 ]]; then
  start_accounting
else   # switched off since the last up: its daemons go (the database stays in the base dir)
  stop_daemons 10 "$dbd_pid:slurmdbd" "$db_pid:mariadbd" >/dev/null
fi
if ! pid_of "$ctld_pid" slurmctld >/dev/null; then
  (cd / && SLURM_CONF=$slurm_conf slurmctld -c -f "$slurm_conf") || { logs_tail; slurm_die "slurmctld failed to start"; }
  started+=(slurmctld)
fi
for n in $(seq 1 "$SWR_CLUSTER_NODES"); do
  name=$(swr_host "$n")
  pid_of "$(slurmd_pid "$name")" slurmd >/dev/null && continue
  start_slurmd "$n"
  started+=("slurmd:$name"); new_slurmd+=("$name")
done
echo "$conf_sha" >"$slurm_started_sha"

# Ready = every node answers and takes jobs (idle, or alloc/mix/comp when jobs are running).
# A node just started is unk* or idle*; one that lost its slurmd earlier is down* until it
# registers again (ReturnToService=2 then makes it idle).
deadline=$(( $(now_ms) + SWR_SLURM_WAIT * 1000 ))
while :; do
  states=$(SLURM_CONF=$slurm_conf sinfo -h -N -o '%N %t' 2>/dev/null | sort -u || true)
  ready=$(grep -cE ' (idle|alloc|mix|comp)$' <<<"$states" || true)
  if ((ready == SWR_CLUSTER_NODES)); then
    # A node whose slurmd we just started may still show its state from before (say, idle
    # right after a kill): ready only once that slurmd has registered.
    unregistered=()
    for name in "${new_slurmd[@]}"; do (($(slurmd_start_time "$name") >= since)) || unregistered+=("$name"); done
    ((${#unregistered[@]})) || break
    states+=$'\n'"not yet registered: ${unregistered[*]}"
  fi
  if (($(now_ms) > deadline)); then
    logs_tail
    slurm_die "nodes not ready after ${SWR_SLURM_WAIT} s: $(tr '\n' ' ' <<<"${states:-slurmctld does not answer}")"
  fi
  sleep 0.1
done

# Plain sbatch/squeue (no SLURM_CONF) read /etc/slurm/slurm.conf: point it at ours, but only
# where nothing real is; slurm-down.sh removes only this symlink.
if [[ $SWR_SLURM_LINK_ETC == 1 ]]; then
  if [[ -L $slurm_etc_link && $(readlink "$slurm_etc_link") == "$slurm_conf" ]]; then
    :
  elif [[ -e $slurm_etc_link || -L $slurm_etc_link ]]; then
    echo "slurm: $slurm_etc_link exists and is not ours: left alone (use SLURM_CONF from $slurm_env)" >&2
  else
    [[ -d /etc/slurm ]] || { mkdir /etc/slurm && echo dir >"$slurm_etc_ours.dir"; }
    ln -s "$slurm_conf" "$slurm_etc_link"
    touch "$slurm_etc_ours"
  fi
fi

cat >"$slurm_env" <<EOF
# Written by scripts/cluster/slurm-up.sh: source it before srun / sbatch / squeue on the test cluster.
export SLURM_CONF=$slurm_conf
export SWR_SLURM_BASE=$SWR_SLURM_BASE
export SWR_SLURM_NODES=$SWR_CLUSTER_NODES SWR_SLURM_CPUS=$SWR_SLURM_CPUS
export SWR_SLURM_JOBCOMP=$SWR_SLURM_BASE/log/jobcomp.log
# Jobs run as root (SlurmUser=root); mpirun inside a batch job refuses root without these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
EOF

ms=$(( $(now_ms) - t0 ))
echo "slurm up: $SWR_CLUSTER_NODES nodes x $SWR_SLURM_CPUS CPUs, partition debug, controller $head_name($SWR_CLUSTER_NET.1); started: ${started[*]:-nothing (already up)}; env: $slurm_env (${ms} ms)"
