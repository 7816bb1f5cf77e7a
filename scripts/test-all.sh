#!/usr/bin/env bash
# sweeprun's whole test suite, from a fresh Debian 12 machine with Rust (rustup).
# Installs what it needs, then runs format, lint, doc and test gates.
#
#   bash scripts/test-all.sh
#
# The differential tests read ../shared/reference (the project's reference results,
# next to the repository). Without it they fail with a message saying so; set
# SWEEPRUN_SKIP_REFERENCE=1 to skip them explicitly (they then print SKIPPED).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "system packages"
packages=(build-essential pkg-config)
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
cargo --version

step "machine"
nproc
lscpu 2>/dev/null | grep -E 'Model name|^Flags' | sed 's/^Flags:.*\(avx2\).*/Flags: ... avx2 .../' || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --release -- -D warnings

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo test (release)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --release 2>&1 | tee "$log"
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "\nsuite: %d passed, %d failed\n", p, f; if (p == 0) exit 1 }' "$log"
