"""A per-user cache of default-size sample datasets, so `appgen new` copies instead of simulating.

Some providers simulate their data (road frames, 3D phantoms) and take several seconds;
their output depends only on the provider code, the seed and the size. The first write
of a default-size sample is kept under ``$APPGEN_CACHE_DIR`` (default
``$XDG_CACHE_HOME/appgen`` or ``~/.cache/appgen``), keyed by the provider name, the seed,
a hash of every provider's source, and the numpy and appgen versions; later writes copy it.

Safety: an entry is built in a private temporary folder and renamed into place only once
complete, with a manifest holding every file's size and SHA-256 written last. On read
every file is checked against the manifest while it is copied into a staged folder, so a
truncated, edited or half-deleted entry is discarded and the data simulated afresh; the
caller never sees a partial copy. ``APPGEN_NO_CACHE=1`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .staging import staged_dir

CACHE_DIR_ENV = "APPGEN_CACHE_DIR"
NO_CACHE_ENV = "APPGEN_NO_CACHE"
MANIFEST = "manifest.json"
_OUT_TOKEN = "\x00OUT\x00"  # stands for the target folder in a cached summary
PROGRESS_AFTER_S = 1.0  # show progress only when writing takes longer than this


class _CorruptEntry(Exception):
    """A cache entry that does not match its manifest."""


def cache_dir() -> Path:
    """Root of appgen's cache: ``$APPGEN_CACHE_DIR``, else the XDG cache folder."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "appgen"


def write_sample(name: str, writer: Callable[..., str], out: Path, *, seed: int = 0) -> str:
    """Write provider ``name``'s default-size sample to ``out``, from the cache when possible.

    Args:
        name: the provider's registered name (``roads``, ``phantoms``...).
        writer: the provider's ``write`` function; anything else than the registered
            one (a test double, a patched writer) is called directly and never cached.
        out: target folder; must be absent or empty.
        seed: the sample's seed.

    Returns:
        The provider's one-line summary, naming ``out``.
    """
    out = Path(out)
    if os.environ.get(NO_CACHE_ENV, "") not in ("", "0") or not _is_registered(name, writer):
        with _progress(name, out.parent):
            return str(writer(out, size=None, seed=seed, **_quiet(writer)))
    entry = cache_dir() / "samples" / f"{name}-{seed}-{_code_key(name, seed)}"
    if (entry / MANIFEST).is_file():
        try:
            # The summary's timings (if any) are those of the first simulation.
            return _copy_entry(entry, out) + " (copied from the sample cache)"
        except _CorruptEntry:
            shutil.rmtree(entry, ignore_errors=True)  # simulated afresh below
    try:
        _build_entry(name, writer, entry, seed)
    except OSError:  # cache folder not writable (read-only home...): write directly
        with _progress(name, out.parent):
            return str(writer(out, size=None, seed=seed, **_quiet(writer)))
    return _copy_entry(entry, out)


def _quiet(writer: Callable[..., str]) -> dict[str, bool]:
    # A provider's own progress bar would fight with ours for the same terminal line.
    try:
        accepts = "progress" in inspect.signature(writer).parameters
    except (TypeError, ValueError):
        accepts = False
    return {"progress": False} if accepts else {}


def _is_registered(name: str, writer: Callable[..., str]) -> bool:
    from . import PROVIDERS

    if name not in PROVIDERS:
        return False
    module = f"{__package__}.{PROVIDERS[name][0]}"
    return (getattr(writer, "__module__", None) == module
            and getattr(writer, "__name__", None) == f"write_{name}")


def _code_key(name: str, seed: int) -> str:
    import numpy

    import appgen

    digest = hashlib.sha256(f"{name}\0{seed}\0{numpy.__version__}\0{appgen.__version__}".encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:20]


def _build_entry(name: str, writer: Callable[..., str], entry: Path, seed: int) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".partial",
                                     dir=entry.parent))
    try:
        data = building / "data"
        with _progress(name, building, note="first time only; cached for the next project"):
            summary = str(writer(data, size=None, seed=seed, **_quiet(writer)))
        files = {
            path.relative_to(data).as_posix(): _file_record(path.read_bytes())
            for path in sorted(data.rglob("*")) if path.is_file()
        }
        manifest = {"provider": name, "seed": seed,
                    "summary": summary.replace(str(data), _OUT_TOKEN), "files": files}
        (building / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        try:
            os.replace(building, entry)
        except OSError:
            if not (entry / MANIFEST).is_file():  # not a concurrent writer's finished entry
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    # Entries of older provider code or versions are never read again: keep one per seed.
    prefix = entry.name[: entry.name.rindex("-") + 1]
    for stale in entry.parent.glob(f"{prefix}*"):
        if stale != entry and not stale.name.startswith("."):
            shutil.rmtree(stale, ignore_errors=True)


def _file_record(content: bytes) -> list[int | str]:
    return [len(content), hashlib.sha256(content).hexdigest()]


def _copy_entry(entry: Path, out: Path) -> str:
    """Copy a cache entry's data to ``out``, checking every file; all or nothing."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
        files: dict[str, list[int | str]] = manifest["files"]
        summary = str(manifest["summary"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _CorruptEntry(str(exc)) from None
    data = entry / "data"
    present = {path.relative_to(data).as_posix() for path in data.rglob("*")
               if not path.is_dir() or path.is_symlink()}
    if present != set(files):
        raise _CorruptEntry("the files differ from the manifest")
    with staged_dir(out) as staging:
        for rel, record in files.items():
            source = data / rel
            if source.is_symlink() or not source.is_file():
                raise _CorruptEntry(f"{rel} is not a regular file")
            content = source.read_bytes()
            if _file_record(content) != record:
                raise _CorruptEntry(f"{rel} does not match its checksum")
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    return summary.replace(_OUT_TOKEN, str(out))


@contextmanager
def _progress(name: str, watched: Path, note: str = "") -> Iterator[None]:
    """After ``PROGRESS_AFTER_S`` seconds, say on stderr that sample data is being written.

    On a terminal the line is redrawn with the files written so far and the elapsed time;
    elsewhere (logs, pipes) it is printed once.
    """
    done = threading.Event()
    started = time.perf_counter()
    tty = sys.stderr.isatty()

    def report() -> None:
        if done.wait(PROGRESS_AFTER_S):
            return
        suffix = f" ({note})" if note else ""
        if not tty:
            sys.stderr.write(f"writing sample data {name!r}{suffix}...\n")
            sys.stderr.flush()
            return
        while True:
            count = sum(len(names) for _, _, names in os.walk(watched))
            elapsed = time.perf_counter() - started
            sys.stderr.write(f"\r\x1b[Kwriting sample data {name!r}: {count} files, "
                             f"{elapsed:.0f} s{suffix}")
            sys.stderr.flush()
            if done.wait(0.25):
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()
                return

    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
