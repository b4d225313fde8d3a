#!/bin/sh
# Build the elax-plan wheel from a source tree: scripts/build_wheel.sh SRC OUT_DIR
#
# One of the two steps the Dockerfile's build runs (scripts/install_wheel.sh is the other);
# the GitHub Action (action.yml) and tests/test_deploy_files.py run the same two scripts, so
# the image, the action and the test cannot drift apart. The build needs setuptools and
# wheel from PyPI (pip's isolated build) and, if present, a C compiler for the two optional
# extensions (without one the wheel still builds, and elax-plan uses orjson and simdjson).
set -eu
src=$1
out=$2
python=${PYTHON:-python3}
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$out" "$src"
