#!/usr/bin/env bash
# Builds the Python package from this checkout into a virtual environment (target/python-venv)
# and runs its tests (python/tests) on the installed wheel. Needs Python >= 3.9 with venv and
# pip, the Rust toolchain, and the command-line binary (`cargo build --release`) that the
# tests compare with. Installs the test dependencies from the package registry.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="target/python-venv"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet numpy pytest pandas "dask[distributed]" matplotlib jax nbclient nbformat ipykernel
cargo build --release --workspace
start=$(date +%s)
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps ./python
echo "python/test.sh: the package built and installed in $(( $(date +%s) - start )) s"
# From outside the source tree, so the installed package is the one imported.
cd python/tests
"../../$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
