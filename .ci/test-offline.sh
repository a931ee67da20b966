#!/usr/bin/env bash
# A room without internet, tested as it will be used (make test-offline; .ci/run calls it):
#   1. the wheelhouse, made once online by `make wheelhouse` and kept outside the clone (one per Python and
#      pyproject.toml: a changed dependency list makes a new one);
#   2. a fresh clone (what is committed) with no .venv;
#   3. in a network namespace with only the loopback up (Jupyter kernels talk over 127.0.0.1): `make setup
#      WHEELHOUSE=...` then `make run ARGS=--quick`. pip is given the wheelhouse only (tools/wheelhouse.py sets
#      no index and no pip configuration), so the machine's own package mirrors cannot stand in for a missing wheel.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON3:-python3}
key=$("$py" -c 'import sys, hashlib; print(f"py{sys.version_info[0]}{sys.version_info[1]}-" + hashlib.sha1(open(sys.argv[1], "rb").read()).hexdigest()[:10])' "$repo/pyproject.toml")
wheelhouse=${WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/vitkit/wheelhouse-$key}
if [ "$(id -u)" != 0 ]; then
  echo "test-offline: needs root (unshare -n makes the network namespace)" >&2
  exit 2
fi
if [ ! -f "$wheelhouse/manifest.json" ]; then
  start=$(date +%s)
  make -C "$repo" --no-print-directory wheelhouse WHEELHOUSE="$wheelhouse" PYTHON3="$py"
  echo "test-offline: wheelhouse made in $(( $(date +%s) - start )) s"
fi
echo "test-offline: wheelhouse $wheelhouse ($(du -sh "$wheelhouse" | cut -f1))"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
unshare -n env -u PIP_FIND_LINKS WHEELHOUSE="$wheelhouse" CLONE="$work/clone" PY3="$py" bash -euo pipefail -c '
  ip link set lo up
  if "$PY3" -c "import socket; socket.create_connection((\"pypi.org\", 443), 3)" 2>/dev/null; then
    echo "test-offline: the network namespace reaches the internet" >&2; exit 1
  fi
  cd "$CLONE"
  start=$(date +%s)
  make --no-print-directory setup WHEELHOUSE="$WHEELHOUSE" PYTHON3="$PY3" > setup.log 2>&1 || { tail -5 setup.log; exit 1; }
  echo "test-offline: make setup from the wheelhouse took $(( $(date +%s) - start )) s, offline"
  make --no-print-directory run ARGS=--quick
'
echo "test-offline: passed"
