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
python3 -m pytest -q "$@"
