#!/usr/bin/env bash
# Install appgen with TensorFlow, generate a vision project with its sample data
# (scikit-learn's handwritten digits) and train it with the project's own command.
# Each step says what it does before it starts; the paths printed at the end are
# absolute, so they work from wherever this script was called.
set -euo pipefail
caller="$(pwd)"
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
project="$repo/demo"
run_dir="$project/runs/demo-$(date +%Y%m%d-%H%M%S)"
started=$SECONDS

step() {
    printf '\n==> [%s s] %s\n' "$((SECONDS - started))" "$*"
}

step "Installing appgen and TensorFlow with pip into $(python3 -c 'import sys; print(sys.prefix)')" \
     "(the first time this downloads about 1 GB and takes several minutes)"
python3 -m pip install --progress-bar on -e ".[tensorflow]"

step "Generating the project $project from the vision template (sample data: digits)"
# From the caller's folder, so the "cd ..." that appgen suggests works from there.
(cd "$caller" && python3 -m appgen new digits -t vision -o "$project" --force)

step "Training (30 epochs of a small CNN on the CPU: about 2 minutes on an idle 2-core machine; one line per epoch)"
cd "$project"
python3 -m digits train --run-dir "$run_dir"

step "Done in $((SECONDS - started)) s"
echo "project:       $project"
echo "run directory: $run_dir (metrics.json, history.csv, checkpoints/)"
echo "plots:         $run_dir/plots"
echo "next:          cd \"$project\" && python3 -m digits evaluate --run-dir \"$run_dir\""
