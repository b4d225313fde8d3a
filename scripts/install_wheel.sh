#!/bin/sh
# Install the elax-plan wheel in WHEEL_DIR into a new virtualenv, with the extras the image
# ships, and check that the command runs: scripts/install_wheel.sh WHEEL_DIR VENV
#
# The Dockerfile's install step; action.yml and tests/test_deploy_files.py run it too (see
# scripts/build_wheel.sh). The extras: Parquet sources and zstandard-compressed NDJSON.
set -eu
wheel_dir=$1
venv=$2
python=${PYTHON:-python3}
extras=parquet,zstd
set -- "$wheel_dir"/elax_plan-*.whl
if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
  echo "install_wheel.sh: expected one elax_plan-*.whl in $wheel_dir, found: $*" >&2
  exit 1
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$1[$extras]"
"$venv/bin/elax-plan" --version
