#!/usr/bin/env bash
# A Python virtual environment with the real QSTrader 0.3.0 (PyPI, unmodified) and the
# pinned packages of scripts/qstrader-requirements.txt, for examples/qstrader/ and the
# tests that run it. Prints the environment's python path (the only line on stdout).
#
#   bash scripts/qstrader-venv.sh                  # -> <repo>/target/qstrader-venv/bin/python
#   SWR_QSTRADER_VENV=/tmp/qst bash scripts/qstrader-venv.sh
#   "$(bash scripts/qstrader-venv.sh)" examples/qstrader/momentum_taa.py --lookback 63 --top-n 3
#
# Idempotent: when the environment exists and was built from the current requirements
# file (a stamp holds the file's sha256), it only prints the path. Otherwise it (re)builds
# the environment from scratch. Needs `python3` (3.11 or newer; $SWR_PYTHON overrides the
# interpreter) and network access to PyPI; binary wheels only, nothing is compiled. On
# Debian/Ubuntu, when `python3 -m venv` cannot work (no python3-venv) and we are root, it
# installs python3-venv with apt-get. Concurrent callers wait for each other (flock).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
req="$root/scripts/qstrader-requirements.txt"
venv="${SWR_QSTRADER_VENV:-$root/target/qstrader-venv}"
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
python="${SWR_PYTHON:-python3}"
stamp="$venv/.sweeprun-requirements.sha256"
want="$(sha256sum <"$req" | cut -d' ' -f1)"

ready() { [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; }
if ready; then
  echo "$venv/bin/python"
  exit 0
fi

say() { echo "qstrader-venv: $*" >&2; }
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if ready; then # built by a concurrent caller while we waited
  echo "$venv/bin/python"
  exit 0
fi

# Installs the packages not installed yet (an installed one is left alone: no upgrades).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    say "$* installed, yet $python cannot make a venv; set SWR_PYTHON to another python3"
    exit 1
  fi
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    say "${missing[*]} missing; install it (Debian/Ubuntu: apt-get install ${missing[*]}) or set SWR_PYTHON"
    exit 1
  fi
  say "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >&2 ||
    { apt-get update -qq >&2 && apt-get install -y -qq "${missing[@]}" >&2; }
}

command -v "$python" >/dev/null || apt_install python3 python3-venv
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { say "$python is $("$python" --version 2>&1); numpy 2.4 and pandas 3 need Python 3.11 or newer"; exit 1; }

say "creating $venv with $("$python" --version 2>&1) ($(command -v "$python"))"
rm -rf "$venv"
if ! "$python" -m venv "$venv" >&2; then
  # Debian's python3 has no ensurepip without python3-venv (python3.X-venv).
  rm -rf "$venv"
  minor="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  apt_install python3-venv "python$minor-venv"
  "$python" -m venv "$venv" >&2
fi
say "installing $(grep -c '^[a-z]' "$req") pinned packages (binary wheels)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --only-binary=:all: -r "$req" >&2
"$venv/bin/python" -c 'import qstrader, pandas, numpy, pytz, matplotlib' >&2
echo "$want" >"$stamp"
echo "$venv/bin/python"
