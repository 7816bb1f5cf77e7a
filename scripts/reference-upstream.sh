#!/usr/bin/env bash
# Compares the repository's copy of the reference results (tests/reference/) with an
# upstream copy at DIR and lists what differs; refresh with `cp -r DIR/. tests/reference/`.
# Not part of the test command: the tests read only the repository's copy.
#
#   bash scripts/reference-upstream.sh /path/to/reference
set -euo pipefail
cd "$(dirname "$0")/.."
upstream=${1:?usage: scripts/reference-upstream.sh UPSTREAM_REFERENCE_DIR}
[[ -d $upstream ]] || { echo "reference-upstream: $upstream: not a directory" >&2; exit 2; }
if diff -rq --exclude=COPIED.md "$upstream" tests/reference; then
  echo "tests/reference matches $upstream"
else
  echo "tests/reference differs from $upstream (refresh with: cp -r $upstream/. tests/reference/)"
  exit 1
fi
