#!/usr/bin/env bash
# The SDAA floor, as an environment: Python 3.10, torch 2.2.0, torchvision 0.17.0 and numpy 1.x, what the
# Tecorigin ModelZoo images ship. Builds it once, outside the clone, under the user's cache directory, and
# prints the path of its python on stdout (everything else goes to stderr). `make test-floor` calls it, then
# runs the suite through the KIT_PYTHON route with that python.
#
# Settings (environment variables; the Makefile passes its FLOOR_* variables through):
#   FLOOR_PYTHON       the Python 3.10 to build from (default: a working python3.10 on PATH, else pyenv's newest 3.10)
#   FLOOR_TORCH        torch version (default 2.2.0)
#   FLOOR_TORCHVISION  torchvision version (default 0.17.0)
#   FLOOR_NUMPY        numpy requirement (default "numpy<2")
#   FLOOR_ENV          where the environment lives
#                      (default ${XDG_CACHE_HOME:-$HOME/.cache}/vitkit/floor-py310-torch$FLOOR_TORCH)
#
# Safe to interrupt: the environment counts as built only once its marker file, written last (and atomically)
# after the install has been verified, names exactly the wanted versions; anything else at that path is a
# half-finished or outdated build and is removed and rebuilt. A lock serialises concurrent builds.
set -euo pipefail

FLOOR_TORCH=${FLOOR_TORCH:-2.2.0}
FLOOR_TORCHVISION=${FLOOR_TORCHVISION:-0.17.0}
FLOOR_NUMPY=${FLOOR_NUMPY:-numpy<2}
FLOOR_ENV=${FLOOR_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/vitkit/floor-py310-torch$FLOOR_TORCH}
FLOOR_PYTHON=${FLOOR_PYTHON:-}

say() { echo "floor-env: $*" >&2; }
die() { say "$*"; exit 1; }

# A candidate counts only if it really runs as 3.10 with venv (pyenv's shim for python3.10 exists on PATH even
# where 3.10 is not the selected version, and then fails).
is_py310() { "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

if [[ -n $FLOOR_PYTHON ]]; then
    is_py310 "$FLOOR_PYTHON" || die "FLOOR_PYTHON=$FLOOR_PYTHON is not a working Python 3.10 with venv"
    base=$FLOOR_PYTHON
else
    base=
    candidates=()
    command -v python3.10 >/dev/null 2>&1 && candidates+=("$(command -v python3.10)")
    # pyenv's installs, newest 3.10.x first (without going through its shims)
    while IFS= read -r p; do candidates+=("$p"); done < <(
        ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python3.10 2>/dev/null | sort -rV)
    candidates+=(/usr/bin/python3.10 /usr/local/bin/python3.10)
    for c in "${candidates[@]}"; do
        if is_py310 "$c"; then base=$c; break; fi
    done
    [[ -n $base ]] || die "no Python 3.10 found (tried: ${candidates[*]}); install one or pass FLOOR_PYTHON=/path/to/python3.10"
fi
base_version=$("$base" -c 'import sys; print(sys.version.split()[0])')

spec="python=$base_version torch==$FLOOR_TORCH torchvision==$FLOOR_TORCHVISION $FLOOR_NUMPY"
marker=$FLOOR_ENV/.vitkit-floor-ready
py=$FLOOR_ENV/bin/python

ready() { [[ -f $marker && $(cat "$marker") == "$spec" && -x $py ]]; }

mkdir -p "$(dirname "$FLOOR_ENV")"
exec 9>"$FLOOR_ENV.lock"
if ! flock -n 9; then
    say "another build of $FLOOR_ENV is running; waiting for it"
    flock 9
fi

if ready; then
    say "reusing $FLOOR_ENV ($spec)"
else
    if [[ -e $FLOOR_ENV ]]; then
        say "removing an unfinished or outdated environment at $FLOOR_ENV"
        rm -rf "$FLOOR_ENV"
    fi
    say "building $FLOOR_ENV ($spec) from $base; torch's wheels are a ~2.5 GB download"
    start=$SECONDS
    "$base" -m venv "$FLOOR_ENV"
    # --no-cache-dir: the environment itself is the cache; a second copy of the wheels in pip's cache would
    # only double the disk used.
    "$py" -m pip install --no-cache-dir --upgrade pip >&2
    "$py" -m pip install --no-cache-dir "torch==$FLOOR_TORCH" "torchvision==$FLOOR_TORCHVISION" "$FLOOR_NUMPY" >&2
    # Verify what was installed before calling it ready.
    FLOOR_TORCH=$FLOOR_TORCH FLOOR_TORCHVISION=$FLOOR_TORCHVISION "$py" - >&2 <<'EOF'
import os, sys
import numpy, torch, torchvision
want = {"torch": os.environ["FLOOR_TORCH"], "torchvision": os.environ["FLOOR_TORCHVISION"]}
got = {"torch": torch.__version__.split("+")[0], "torchvision": torchvision.__version__.split("+")[0]}
assert got == want, f"installed {got}, wanted {want}"
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__}, wanted 1.x"
print(f"floor-env: python {sys.version.split()[0]}, torch {torch.__version__}, torchvision {torchvision.__version__}, numpy {numpy.__version__}")
EOF
    printf '%s\n' "$spec" > "$marker.tmp"
    mv -f "$marker.tmp" "$marker"
    say "built in $((SECONDS - start)) s: $(du -sh "$FLOOR_ENV" | cut -f1)"
fi
echo "$py"
