#!/usr/bin/env bash
# Install what the tests need, then lint, type-check and run the whole suite
# (generator, shared runtime, dataset simulators, and every template end to end
# on TensorFlow and JAX). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[tensorflow,jax,test]"
python3 -m ruff check .
python3 -m mypy
# the generated projects too: every template and task rendered, package and tests
python3 scripts/check_generated.py
# Two test processes (pytest-xdist), whole files to each so module fixtures are built once:
# most tests wait on single-threaded subprocess start-up (framework imports), so a second
# process keeps the second core busy.
python3 -m pytest -q -n "${APPGEN_TEST_WORKERS:-2}" --dist loadfile "$@"
