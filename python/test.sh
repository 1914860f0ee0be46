#!/usr/bin/env bash
# The Python package's tests on an installed wheel: builds the wheel with maturin
# (target/wheels), installs it into a virtual environment (target/python-venv, created if
# missing, with python/requirements-test.txt from the package registry) and runs pytest on
# python/tests. Needs Python >= 3.9 with venv and pip and the Rust toolchain; builds the
# command-line binary the tests compare with. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="target/python-venv"
TARGET="${CARGO_TARGET_DIR:-target}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r python/requirements-test.txt

# The binary the tests compare with (the default members' build, as `cargo test --release`).
cargo build --release

# The wheel, built by maturin (abi3: one wheel for CPython >= 3.9), then installed.
start=$(date +%s)
rm -f "$TARGET"/wheels/lossnav-*.whl
"$VENV/bin/maturin" build --release --manifest-path python/Cargo.toml \
  --interpreter "$VENV/bin/python" --out "$TARGET/wheels"
wheels=("$TARGET"/wheels/lossnav-*.whl)
if [ "${#wheels[@]}" -ne 1 ] || [ ! -f "${wheels[0]}" ]; then
  echo "python/test.sh: expected one lossnav wheel in $TARGET/wheels, found: ${wheels[*]}" >&2
  exit 1
fi
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "${wheels[0]}"
echo "python/test.sh: built and installed ${wheels[0]##*/} in $(( $(date +%s) - start )) s"

# From outside the source tree, so the installed package is the one imported.
cd python/tests
"../../$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
