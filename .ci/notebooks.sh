#!/usr/bin/env bash
# Executes notebooks/ablations.ipynb top to bottom with nbclient, in a Python venv of its own;
# fails on any cell error. The committed notebook is not touched unless --inplace is given.
#
#   .ci/notebooks.sh              execute into a temporary copy (what CI runs)
#   .ci/notebooks.sh --inplace    write the executed notebook, outputs included, back to
#                                 notebooks/ablations.ipynb (after a full suite run, to commit it)
#   .ci/notebooks.sh --synthetic  execute on made-up results (notebooks/synthetic_results.py)
#   .ci/notebooks.sh --output F   also keep the executed copy as F (with --synthetic: the
#                                 three-seed one)
#
# Results: $SEETHINK_RESULTS (relative to the current folder, or absolute), else
# experiments/results/test_suite. When neither is set and its runs.jsonl does not exist,
# the notebook is executed on synthetic results (three seeds, then one seed) so that its code is
# still checked; --inplace refuses to do that.
#
# The venv: ${NOTEBOOK_VENV:-$HOME/.cache/seethink-notebook-venv}, made with
# `${NOTEBOOK_PYTHON:-python3} -m venv`, with notebooks/requirements.txt installed. It is reused
# while the hash of requirements.txt (and the base Python's version) stored in it matches;
# otherwise it is made anew.
set -euo pipefail

inplace=0
synthetic=0
output=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --inplace) inplace=1 ;;
    --synthetic) synthetic=1 ;;
    --output)
      [[ $# -ge 2 ]] || { echo "notebooks.sh: --output needs a file" >&2; exit 2; }
      output="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift ;;
    -h | --help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "notebooks.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# A relative SEETHINK_RESULTS is taken from the caller's folder, before the cd below.
results_set=0
if [[ -n "${SEETHINK_RESULTS:-}" ]]; then
  results_set=1
  SEETHINK_RESULTS="$(cd "$(dirname "$SEETHINK_RESULTS")" 2>/dev/null && pwd)/$(basename "$SEETHINK_RESULTS")" || {
    echo "notebooks.sh: SEETHINK_RESULTS=$SEETHINK_RESULTS: no such folder" >&2; exit 1; }
fi

cd "$(dirname "$0")/.."
root="$(pwd)"
notebook="notebooks/ablations.ipynb"
requirements="notebooks/requirements.txt"
venv="${NOTEBOOK_VENV:-$HOME/.cache/seethink-notebook-venv}"
python="${NOTEBOOK_PYTHON:-python3}"

# ---------------------------------------------------------------------------------------------
# The venv

# Makes a venv at $1 with $python; on a Debian Python without its venv package, installs that
# package (as root, non-interactively), else falls back to virtualenv from PyPI.
make_venv() {
  local dir="$1" log
  log="$(mktemp)"
  if "$python" -m venv "$dir" >"$log" 2>&1 && [[ -x "$dir/bin/python" ]] && "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -f "$log"; return 0
  fi
  echo "notebooks.sh: '$python -m venv' failed:" >&2; sed 's/^/  /' "$log" >&2
  rm -rf "$dir"
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    local version
    version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    echo "notebooks.sh: installing Debian's python3-venv / python$version-venv" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq "python$version-venv" python3-venv >"$log" 2>&1; then
      apt-get update -qq >"$log" 2>&1 || true
      apt-get install -y -qq "python$version-venv" python3-venv >"$log" 2>&1 || sed 's/^/  /' "$log" >&2
    fi
    if "$python" -m venv "$dir" >"$log" 2>&1 && "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
      rm -f "$log"; return 0
    fi
    rm -rf "$dir"
  fi
  echo "notebooks.sh: falling back to virtualenv from PyPI" >&2
  local tools="$dir.virtualenv-tool"
  rm -rf "$tools"
  if "$python" -m pip install -q --disable-pip-version-check --target "$tools" virtualenv >"$log" 2>&1 \
    && PYTHONPATH="$tools" "$python" -m virtualenv -q "$dir" >"$log" 2>&1; then
    rm -rf "$tools" "$log"; return 0
  fi
  sed 's/^/  /' "$log" >&2
  rm -rf "$tools" "$log" "$dir"
  echo "notebooks.sh: could not make a venv with $python (install python3-venv, or set NOTEBOOK_PYTHON)" >&2
  return 1
}

ensure_venv() {
  local stamp want
  stamp="$venv/.seethink-requirements"
  want="$( { sha256sum "$requirements" | cut -d' ' -f1; "$python" -c 'import sys; print(sys.version)'; } )"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$venv/bin/python" -c 'import nbclient, ipykernel, matplotlib' 2>/dev/null; then
    echo "venv: $venv (reused; requirements unchanged)"
    return 0
  fi
  echo "venv: $venv (making it: requirements changed or no venv yet)"
  local t0=$SECONDS
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  make_venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
  # the 'python3' kernel spec inside the venv, pointing at the venv's own python
  "$venv/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (seethink notebook venv)" >/dev/null
  printf '%s\n' "$want" >"$stamp"
  echo "venv: ready in $((SECONDS - t0)) s"
}

mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$venv.lock"
  flock 9
fi
ensure_venv

# ---------------------------------------------------------------------------------------------
# Execution

tmp="$(mktemp -d)"
# kept when something failed, for a look at the executed copy
trap 'rc=$?; if [[ $rc == 0 || -z "$(ls -A "$tmp")" ]]; then rm -rf "$tmp"; else echo "notebooks.sh: kept $tmp" >&2; fi; exit $rc' EXIT

export MPLBACKEND=Agg
export MPLCONFIGDIR="$venv/.matplotlib"       # font cache kept with the venv
export IPYTHONDIR="$venv/.ipython"            # IPython's profile too, not in $HOME
export JUPYTER_PATH="$venv/share/jupyter"     # the venv's kernel spec comes first
export JUPYTER_RUNTIME_DIR="$tmp/runtime"     # connection files, thrown away afterwards
export PYDEVD_DISABLE_FILE_VALIDATION=1       # quiets debugpy's note about frozen modules
export PYTHONNOUSERSITE=1

# execute RESULTS_DIR OUTPUT_NOTEBOOK: runs every cell with the venv's python3 kernel
execute() {
  SEETHINK_RESULTS="$1" "$venv/bin/python" - "$root/$notebook" "$2" <<'EOF'
import os
import re
import sys
import time

import nbformat
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

source, target = sys.argv[1], sys.argv[2]
spec = KernelSpecManager().get_kernel_spec("python3")
if os.path.abspath(spec.argv[0]) != sys.executable:
    sys.exit(f"notebooks.sh: kernel 'python3' would run {spec.argv[0]}, not the venv's {sys.executable}")

nb = nbformat.read(source, as_version=4)
# IPC sockets in the throw-away runtime folder: nothing listens on TCP
os.makedirs(os.environ["JUPYTER_RUNTIME_DIR"], exist_ok=True)
km = KernelManager(kernel_name="python3", transport="ipc",
                   ip=os.path.join(os.environ["JUPYTER_RUNTIME_DIR"], "kernel"))
client = NotebookClient(nb, km=km, kernel_name="python3", timeout=600,
                        resources={"metadata": {"path": os.path.dirname(source)}})
start = time.monotonic()
try:
    client.execute()
except CellExecutionError as error:
    nbformat.write(nb, target)
    print(re.sub(r"\x1b\[[0-9;]*m", "", str(error)), file=sys.stderr)  # without terminal colours
    sys.exit(f"notebooks.sh: a cell failed (results: {os.environ['SEETHINK_RESULTS']}); executed copy: {target}")
finally:
    if km.has_kernel:  # nbclient leaves a kernel manager it was handed running
        km.shutdown_kernel()
nbformat.write(nb, target)
print(f"executed {len(nb.cells)} cells in {time.monotonic() - start:.1f} s "
      f"(results: {os.environ['SEETHINK_RESULTS']}; kernel: {spec.argv[0]})")
EOF
}

if [[ $synthetic == 1 || ( $results_set == 0 && ! -f experiments/results/test_suite/runs.jsonl ) ]]; then
  if [[ $inplace == 1 ]]; then
    echo "notebooks.sh: --inplace writes outputs into the committed notebook; it needs real results" \
      "(experiments/results/test_suite/runs.jsonl, or SEETHINK_RESULTS), not synthetic ones" >&2
    exit 1
  fi
  if [[ $synthetic == 1 ]]; then
    echo "--synthetic: executing on synthetic results (made-up numbers)"
  else
    echo "no experiments/results/test_suite/runs.jsonl: executing on synthetic results (made-up numbers)"
  fi
  "$venv/bin/python" notebooks/synthetic_results.py "$tmp/synthetic-3" --seeds 3
  "$venv/bin/python" notebooks/synthetic_results.py "$tmp/synthetic-1" --seeds 1 --drop-arm plateau
  execute "$tmp/synthetic-3" "$tmp/ablations.synthetic-3.ipynb"
  execute "$tmp/synthetic-1" "$tmp/ablations.synthetic-1.ipynb"
  if [[ -n "$output" ]]; then cp "$tmp/ablations.synthetic-3.ipynb" "$output"; fi
  exit 0
fi

results="${SEETHINK_RESULTS:-$root/experiments/results/test_suite}"
if [[ $inplace == 1 ]]; then
  if "$venv/bin/python" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])).get("settings", {}).get("synthetic") is True)' \
    "$results/suite.json" 2>/dev/null; then :; else
    echo "notebooks.sh: $results/suite.json is missing or marks synthetic results; --inplace not done" >&2
    exit 1
  fi
  execute "$results" "$tmp/ablations.executed.ipynb"
  cp "$tmp/ablations.executed.ipynb" "$notebook"
  echo "wrote the executed notebook, with outputs, to $notebook"
else
  execute "$results" "$tmp/ablations.executed.ipynb"
fi
if [[ -n "$output" ]]; then cp "$tmp/ablations.executed.ipynb" "$output"; fi
