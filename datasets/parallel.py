"""Run a provider's independent pieces (frames, phantom cases) on every available core.

The first piece runs in this process; each other piece runs in a fresh ``python -c``
worker that imports the provider module by name. Fresh interpreters, rather than
multiprocessing's fork or spawn, because fork copies whatever threads and locks the
caller holds, and spawn re-runs the caller's ``__main__`` (a script, ``python -c``, a
notebook), which a library called from anywhere cannot control.
"""

from __future__ import annotations

import base64
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

# Reads (sys.path, module, function, args) pickled in argv; writes the result pickled.
_WORKER = """
import base64, importlib, pickle, sys
path, module, name, args = pickle.loads(base64.b64decode(sys.argv[1]))
sys.path[:0] = [entry for entry in path if entry not in sys.path]
result = getattr(importlib.import_module(module), name)(*args)
pickle.dump(result, sys.stdout.buffer)
"""


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


def split(count: int, parts: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges covering ``range(count)`` in ``parts`` near-equal pieces."""
    parts = max(1, min(parts, count))
    bounds = [count * part // parts for part in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


def run_pieces(func: Callable[..., Any], jobs: Sequence[tuple[Any, ...]],
               local_kwargs: dict[str, Any] | None = None) -> list[Any]:
    """``[func(*job) for job in jobs]``, the first job here and the others in workers.

    ``func`` must be a module-level function whose result depends only on its arguments,
    so the output is the same however the jobs are spread. ``local_kwargs`` go to the
    job run in this process only (a progress bar).

    Raises:
        RuntimeError: a worker failed (its last line of stderr is in the message).
    """
    if not jobs:
        return []
    workers = []
    for job in jobs[1:]:
        payload = pickle.dumps((list(sys.path), func.__module__, func.__name__, job))
        workers.append(subprocess.Popen(
            [sys.executable, "-c", _WORKER, base64.b64encode(payload).decode()],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        ))
    try:
        results = [func(*jobs[0], **(local_kwargs or {}))]
        for process in workers:
            output, errors = process.communicate()
            if process.returncode != 0:
                lines = errors.decode(errors="replace").strip().splitlines()
                raise RuntimeError(f"a sample-data worker failed: "
                                   f"{lines[-1] if lines else f'exit code {process.returncode}'}")
            results.append(pickle.loads(output))
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results
