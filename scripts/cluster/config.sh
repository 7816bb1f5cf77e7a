# Shared settings of the emulated test cluster; sourced by up.sh, down.sh, rsh and smoke.sh.
# Each node is a network namespace plus a UTS namespace (hostname nodeN) on one bridge.
# Override the SWR_CLUSTER_* variables in the environment; up.sh and down.sh must see the same.

SWR_CLUSTER_NODES="${SWR_CLUSTER_NODES:-4}"
SWR_CLUSTER_SLOTS="${SWR_CLUSTER_SLOTS:-4}"
# 10.78.0.0/24 and swrbr0: clear of the SLURM probe's slurmbr0 / 10.77.0.0/24.
SWR_CLUSTER_NET="${SWR_CLUSTER_NET:-10.78.0}"
SWR_CLUSTER_BRIDGE="${SWR_CLUSTER_BRIDGE:-swrbr0}"
# /run is wiped at boot, as the namespaces are: stale state cannot outlive them.
SWR_CLUSTER_STATE="${SWR_CLUSTER_STATE:-/run/sweeprun-cluster}"

swr_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
swr_marker="# sweeprun-cluster"          # tags our /etc/hosts lines so down.sh removes only those
swr_uts_dir="$SWR_CLUSTER_STATE/uts"    # one bind-mounted UTS namespace file per node
swr_env="$SWR_CLUSTER_STATE/env.sh"

swr_netns() { echo "swr-node$1"; }          # /run/netns/<this>
swr_veth() { echo "swrv$1"; }               # host side of node N's veth (the node side is eth0)
swr_ip() { echo "$SWR_CLUSTER_NET.$((10 + $1))"; }
swr_host() { echo "node$1"; }

swr_die() { echo "cluster: $*" >&2; exit 1; }
