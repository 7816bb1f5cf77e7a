#!/usr/bin/env bash
# sweeprun's whole test suite, from a fresh Debian 12 machine with Rust (rustup), as root.
# Installs what it needs (MPI: OpenMPI and MPICH; hwloc; the aarch64 cross tools), brings
# up the emulated 4-node cluster the MPI tests use (scripts/cluster/, network namespaces)
# with a SLURM cluster on it (slurm-up.sh installs munge/slurm, then a smoke test) and takes
# both down again, then runs format, lint, doc and test gates, and the kernel's
# tests for aarch64 (Raspberry Pi 4, Cortex-A72) under qemu-user (see .cargo/config.toml).
#
#   bash scripts/test-all.sh
#
# The differential tests read tests/reference/ (a copy of the project's reference
# results, see tests/reference/COPIED.md): a clone needs nothing beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "system packages"
packages=(
  build-essential pkg-config
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user   # aarch64 cross-linking + qemu-aarch64
  openmpi-bin libopenmpi-dev mpich libmpich-dev           # --features mpi, both MPIs
  libclang-dev clang                                      # bindgen (mpi-sys)
  libhwloc-dev libudev-dev                                # sweeprun-hw --features hwloc
  iproute2 util-linux                                     # ip netns, nsenter, unshare (cluster)
  python3                                                 # [command] sweeps: tests/command.rs, the QSTrader venv
  chromium                                                # headless browser: tests/report.rs renders reports
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing packages: ${missing[*]} (run as root, or install them with apt-get)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -q "${missing[@]}"
fi
echo "ok: ${packages[*]}"

step "toolchain components"
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
if command -v rustup >/dev/null; then
  rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed | grep -q '^clippy' || rustup component add clippy
fi
aarch64=aarch64-unknown-linux-gnu
if [[ ! -d "$(rustc --print sysroot)/lib/rustlib/$aarch64/lib" ]]; then
  command -v rustup >/dev/null || { echo "the $aarch64 Rust target is missing and rustup is not installed to add it" >&2; exit 1; }
  rustup target add "$aarch64"
fi
cargo --version

step "machine"
nproc
lscpu 2>/dev/null | grep -E 'Model name|^Flags' | sed 's/^Flags:.*\(avx2\).*/Flags: ... avx2 .../' || true

step "reference results"
# The tests read the repository's own copy (tests/reference/, see COPIED.md); nothing outside
# the repository is needed. To compare it with an upstream copy: scripts/reference-upstream.sh DIR
echo "tests/reference: $(find tests/reference -type f | wc -l) files"

step "emulated cluster (4 nodes x 4 slots, network + UTS namespaces)"
# Stopped again when this script exits, whatever happens: SLURM's daemons first (they run
# inside the nodes), then the nodes. Both scripts are no-ops for what is not up.
cluster_down() {
  SWR_SLURM_KEEP_NODES=1 bash scripts/cluster/slurm-down.sh >/dev/null 2>&1 || echo "cluster: slurm-down.sh failed" >&2
  bash scripts/cluster/down.sh >/dev/null 2>&1 || echo "cluster: down.sh failed" >&2
}
bash scripts/cluster/up.sh
trap cluster_down EXIT

step "SLURM on the emulated cluster (slurmctld + one slurmd per node)"
# slurm-up.sh installs munge/slurmctld/slurmd/slurm-client/libpmix-dev itself if they are
# missing, not the list above: it keeps their postinsts from starting the system's munge and
# slurm services (policy-rc.d), which would otherwise run beside the private ones.
bash scripts/cluster/slurm-up.sh

step "SLURM smoke (sinfo, srun, srun --mpi=pmix, sbatch --array, scancel)"
bash scripts/cluster/slurm-smoke.sh

step "QSTrader venv (target/qstrader-venv; tests/qstrader_command.rs)"
# The real QSTrader 0.3.0 with pinned pandas/numpy, for the command-sweep parity test. The
# first run downloads binary wheels from PyPI (needs network access, ~30 s); later runs only
# print the path. Built here, once, so the test does not pay for it inside cargo test.
bash scripts/qstrader-venv.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --release -- -D warnings
# The NEON path only compiles for aarch64: lint it there too.
cargo clippy -p sweeprun-kernel --target aarch64-unknown-linux-gnu --all-targets --release -- -D warnings
# The optional features: MPI (its own target dir: mpi-sys does not notice a change of MPI,
# see tests/mpi.rs) and hwloc.
CARGO_TARGET_DIR=target/mpi-openmpi MPICC=mpicc.openmpi \
  cargo clippy -p sweeprun --features mpi --all-targets --release -- -D warnings
cargo clippy -p sweeprun-hw --features hwloc --all-targets --release -- -D warnings

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
RUSTDOCFLAGS="-D warnings" CARGO_TARGET_DIR=target/mpi-openmpi MPICC=mpicc.openmpi \
  cargo doc -p sweeprun --features mpi --no-deps --quiet

# Both test runs go to one log; a failing run does not stop the other, the script still
# fails (after the summary) if either did.
log=$(mktemp)
trap 'rm -f "$log"; cluster_down' EXIT
status=0

step "cargo test (release)"
cargo test --workspace --release 2>&1 | tee "$log" || status=1

step "cargo test (release): sweeprun-hw with hwloc"
cargo test --release -p sweeprun-hw --features hwloc 2>&1 | tee -a "$log" || status=1

step "cargo test (release, $aarch64 under qemu, Cortex-A72): kernel"
qemu-aarch64 --version | sed -n 1p
# Runner, linker and target-cpu come from .cargo/config.toml. --lib --tests: the unit and
# integration tests; the doc tests already ran natively (cross doc tests would each be
# linked for aarch64 and add build time for no extra coverage).
cargo test --release -p sweeprun-kernel --target "$aarch64" --lib --tests 2>&1 | tee -a "$log" || status=1

# One closing line for the whole suite, native and aarch64 (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "\nsuite: %d passed, %d failed\n", p, f; if (p == 0) exit 1 }' "$log"
exit "$status"
