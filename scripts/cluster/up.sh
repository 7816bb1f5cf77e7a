#!/usr/bin/env bash
# Brings up the emulated test cluster: SWR_CLUSTER_NODES nodes (node1..nodeN), each a network
# namespace + a UTS namespace (hostname nodeN) with eth0 = 10.78.0.(10+N) on bridge swrbr0
# (10.78.0.1/24), /etc/hosts lines for nodeN, and an env file for mpirun / mpiexec.mpich.
# Idempotent: a node that is complete is left alone, a partial one is rebuilt.
#
#   bash scripts/cluster/up.sh && source /run/sweeprun-cluster/env.sh
#   mpirun -np 16 --hostfile "$SWR_CLUSTER_HOSTFILE" ./mpi_hello
#   bash scripts/cluster/down.sh
#
# Persistent namespaces are bind mounts (ip netns add; unshare --uts=FILE), not holder
# processes: nothing to keep alive, nothing a stray kill or PID reuse can break, and the
# namespace files are plain paths for nsenter.
set -euo pipefail
source "$(dirname "$0")/config.sh"
t0=$(date +%s%N)

[[ $(id -u) -eq 0 ]] || swr_die "up.sh must run as root (it creates namespaces, a bridge and /etc/hosts lines)"
for c in ip nsenter unshare mountpoint hostname; do
  command -v "$c" >/dev/null || swr_die "missing command '$c' (apt-get install iproute2 util-linux hostname)"
done
((SWR_CLUSTER_NODES >= 1 && SWR_CLUSTER_NODES <= 200)) || swr_die "SWR_CLUSTER_NODES=$SWR_CLUSTER_NODES out of range 1..200"
# Another user of the subnet (say, a second cluster with another bridge name) would route oddly.
if ip -4 -o addr show | grep -v " $SWR_CLUSTER_BRIDGE " | grep -q " inet $SWR_CLUSTER_NET\."; then
  swr_die "$SWR_CLUSTER_NET.0/24 is already used by another interface: $(ip -4 -o addr show | grep " inet $SWR_CLUSTER_NET\." | awk '{print $2}' | head -1)"
fi

mkdir -p "$swr_uts_dir"
# `ip netns add` makes /run/netns a mount point the first time; down.sh undoes that only if
# this script was the one to cause it (and nobody else's namespace is left there).
# Likewise util-linux creates the empty dir /run/mount (libmount's lock) on the first bind mount.
if ! mountpoint -q /run/netns 2>/dev/null && [[ ! -e $SWR_CLUSTER_STATE/run-netns-ours ]]; then
  touch "$SWR_CLUSTER_STATE/run-netns-ours"
fi
[[ -e /run/mount || -e $SWR_CLUSTER_STATE/run-mount-ours ]] || touch "$SWR_CLUSTER_STATE/run-mount-ours"

# Bridge on the host; the host is 10.78.0.1 on it. No default route is given to the nodes,
# so they reach only this subnet (ip_forward is left as it is).
br="$SWR_CLUSTER_BRIDGE"
if ! ip link show "$br" >/dev/null 2>&1; then
  ip link add "$br" type bridge 2>/dev/null || swr_die "cannot create bridge $br (kernel without bridge support?)"
fi
ip -4 addr show dev "$br" | grep -q " $SWR_CLUSTER_NET.1/24 " || ip addr add "$SWR_CLUSTER_NET.1/24" dev "$br"
ip link set "$br" up

# True when node N's network is fully set up (both veth ends, address, links up, on the bridge).
node_net_ok() {
  local n=$1 ns veth
  ns=$(swr_netns "$n"); veth=$(swr_veth "$n")
  [[ -e /run/netns/$ns ]] || return 1
  ip link show "$veth" 2>/dev/null | grep -q "master $br state UP" || return 1
  nsenter --net="/run/netns/$ns" ip -4 -o addr show dev eth0 2>/dev/null | grep -q " $(swr_ip "$n")/24 " || return 1
  nsenter --net="/run/netns/$ns" ip link show eth0 2>/dev/null | grep -q 'state UP' || return 1
  nsenter --net="/run/netns/$ns" ip link show lo 2>/dev/null | grep -qE '[<,]UP[,>]' || return 1
}

for n in $(seq 1 "$SWR_CLUSTER_NODES"); do
  ns=$(swr_netns "$n"); veth=$(swr_veth "$n"); name=$(swr_host "$n")
  if ! node_net_ok "$n"; then
    # Rebuild from scratch: a half-deleted pair (netns deletion is asynchronous) is the usual case.
    [[ -e /run/netns/$ns ]] || ip netns add "$ns"
    nsenter --net="/run/netns/$ns" ip link del eth0 2>/dev/null || true
    ip link del "$veth" 2>/dev/null || true
    for _ in $(seq 50); do ip link show "$veth" >/dev/null 2>&1 || break; sleep 0.1; done
    ip link add "$veth" type veth peer name eth0 netns "$ns" \
      || swr_die "cannot create veth $veth <-> $ns:eth0"
    ip link set "$veth" master "$br" up
    nsenter --net="/run/netns/$ns" ip addr add "$(swr_ip "$n")/24" dev eth0
    nsenter --net="/run/netns/$ns" ip link set eth0 up
    nsenter --net="/run/netns/$ns" ip link set lo up
    # A bridge port starts in "forwarding" at once (STP is off), but the link needs a moment.
    for _ in $(seq 50); do node_net_ok "$n" && break; sleep 0.05; done
    node_net_ok "$n" || swr_die "node $name: network did not come up ($veth / $ns:eth0)"
  fi

  # The UTS namespace lives on as a bind mount of its nsfs file; the hostname is set inside it.
  uts="$swr_uts_dir/$name"
  if ! mountpoint -q "$uts" 2>/dev/null; then
    touch "$uts"
    unshare --uts="$uts" hostname "$name" || swr_die "cannot create the UTS namespace $uts"
  fi
  [[ $(nsenter --uts="$uts" hostname) == "$name" ]] || nsenter --uts="$uts" hostname "$name"
done

# Reachability host -> node over the bridge: a TCP connect to a closed port must be refused
# at once (an answer from the node's kernel); a timeout or "no route" means broken wiring.
for n in $(seq 1 "$SWR_CLUSTER_NODES"); do
  err=$(timeout 2 bash -c "exec 3<>/dev/tcp/$(swr_ip "$n")/9" 2>&1) \
    || [[ $err == *refused* ]] || swr_die "node $(swr_host "$n") ($(swr_ip "$n")) unreachable from the host: ${err:-timeout}"
done

# /etc/hosts: our lines, each tagged with the marker; rewritten in place only when they differ.
want=$(for n in $(seq 1 "$SWR_CLUSTER_NODES"); do echo "$(swr_ip "$n") $(swr_host "$n") $swr_marker"; done)
have=$(grep -F -- "$swr_marker" /etc/hosts || true)
if [[ "$want" != "$have" ]]; then
  for n in $(seq 1 "$SWR_CLUSTER_NODES"); do   # a nodeN line of someone else would shadow ours
    if grep -v -F -- "$swr_marker" /etc/hosts | grep -qwE "^[^#]*[[:space:]]$(swr_host "$n")"; then
      swr_die "/etc/hosts already names $(swr_host "$n") without our marker; remove that line first"
    fi
  done
  tmp=$(mktemp)
  { grep -v -F -- "$swr_marker" /etc/hosts || true; echo "$want"; } >"$tmp"
  cat "$tmp" >/etc/hosts   # in place: /etc/hosts may be a bind mount that rename cannot replace
  rm -f "$tmp"
fi

# Hostfiles for OpenMPI ("nodeN slots=S") and MPICH hydra ("nodeN:S"), matching this config.
hostfile="$SWR_CLUSTER_STATE/hostfile"; hydra_hostfile="$SWR_CLUSTER_STATE/hostfile.hydra"
for n in $(seq 1 "$SWR_CLUSTER_NODES"); do echo "$(swr_host "$n") slots=$SWR_CLUSTER_SLOTS"; done >"$hostfile"
for n in $(seq 1 "$SWR_CLUSTER_NODES"); do echo "$(swr_host "$n"):$SWR_CLUSTER_SLOTS"; done >"$hydra_hostfile"

cat >"$swr_env" <<EOF
# Written by scripts/cluster/up.sh: source it before mpirun / mpiexec.mpich on the test cluster.
export SWR_CLUSTER_NODES=$SWR_CLUSTER_NODES SWR_CLUSTER_SLOTS=$SWR_CLUSTER_SLOTS
export SWR_CLUSTER_NP=$((SWR_CLUSTER_NODES * SWR_CLUSTER_SLOTS))
export SWR_CLUSTER_HOSTFILE=$hostfile
export SWR_CLUSTER_HYDRA_HOSTFILE=$hydra_hostfile
export SWR_CLUSTER_RSH=$swr_dir/rsh
# OpenMPI: mpirun refuses root without these two.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# OpenMPI: start orted on nodeN through the agent (nsenter), not ssh.
export OMPI_MCA_plm_rsh_agent=$swr_dir/rsh
# OpenMPI: daemons and TCP BTL only on the cluster subnet (the host's eth0 is not reachable
# from the nodes; the nodes' interface is eth0, the host's is $br, so a CIDR, not a name).
export OMPI_MCA_oob_tcp_if_include=$SWR_CLUSTER_NET.0/24
export OMPI_MCA_btl_tcp_if_include=$SWR_CLUSTER_NET.0/24
# MPICH hydra: mpiexec.mpich -f "\$SWR_CLUSTER_HYDRA_HOSTFILE" -n \$SWR_CLUSTER_NP ...
# HYDRA_IFACE: the proxies call back to mpiexec at this interface's address; by default they
# get "$(hostname)", which resolves to 127.0.0.1 (unreachable from a node: they hang/fail).
# The command-line equivalent is -localhost $SWR_CLUSTER_NET.1 (or -iface $br).
export HYDRA_LAUNCHER=rsh HYDRA_LAUNCHER_EXEC=$swr_dir/rsh HYDRA_IFACE=$br
export SWR_CLUSTER_HEAD=$SWR_CLUSTER_NET.1
EOF

ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "cluster up: $SWR_CLUSTER_NODES nodes x $SWR_CLUSTER_SLOTS slots, $(swr_host 1)..$(swr_host "$SWR_CLUSTER_NODES") = $(swr_ip 1)..$(swr_ip "$SWR_CLUSTER_NODES") on $br; env: $swr_env (${ms} ms)"
