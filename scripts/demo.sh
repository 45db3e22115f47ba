#!/usr/bin/env bash
# Install appgen with TensorFlow, generate a vision project with its sample data
# (scikit-learn's handwritten digits) and train it with the project's own command.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[tensorflow]"
appgen new digits -t vision -o demo --force
cd demo
python3 -m digits train --run-dir runs/demo-$(date +%Y%m%d-%H%M%S)
