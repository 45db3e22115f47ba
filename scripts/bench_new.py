"""Time `appgen new` for every built-in template and task, sample data included.

Each measurement is a whole `python -m appgen new` process in a fresh folder, so it counts
interpreter start-up, rendering and the sample data, as a user waits for them. "cold" runs
start from an empty sample cache (the first project on a machine); "warm" runs find the
cache filled (every later project). Prints the median and range per template and task:

    python3 scripts/bench_new.py [--runs 5] [--cold-runs 1] [--only driving]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from appgen import catalog  # noqa: E402  (the checkout's appgen, not an installed one)


def time_new(template: str, task: str, cache: Path, folder: Path) -> float:
    """Seconds of one `appgen new` process writing into a new folder under ``folder``."""
    out = Path(tempfile.mkdtemp(dir=folder)) / "p"
    env = {**os.environ, "APPGEN_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "appgen", "new", "p", "-t", template, "--task", task,
                    "-o", str(out)], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm runs per template and task")
    parser.add_argument("--cold-runs", type=int, default=1,
                        help="runs from an empty cache per template and task (0 = skip)")
    parser.add_argument("--only", default=None, help="one template")
    args = parser.parse_args()
    print(f"{'template':<9} {'task':<15} {'cold s (median)':>16} {'warm s (median)':>16}"
          f" {'warm min-max':>13}")
    with tempfile.TemporaryDirectory(prefix="bench-new-") as scratch:
        root = Path(scratch)
        for template in catalog.list_templates():
            if template.source != "builtin" or args.only not in (None, template.name):
                continue
            for task in template.effective_tasks():
                cold = [time_new(template.name, task, Path(tempfile.mkdtemp(dir=root)), root)
                        for _ in range(args.cold_runs)]
                cache = Path(tempfile.mkdtemp(dir=root))
                time_new(template.name, task, cache, root)  # fills the cache
                warm = [time_new(template.name, task, cache, root) for _ in range(args.runs)]
                cold_text = f"{statistics.median(cold):.2f}" if cold else "-"
                print(f"{template.name:<9} {task:<15} {cold_text:>16} "
                      f"{statistics.median(warm):>16.2f} {min(warm):>6.2f}-{max(warm):<6.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
