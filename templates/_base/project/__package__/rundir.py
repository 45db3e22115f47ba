"""The run directory: where one training run keeps everything it produces.

    RUN/config.toml      fully resolved config (re-usable with --config)
    RUN/metrics.json     final and best validation metrics, epochs_completed
    RUN/history.csv      one row per epoch
    RUN/meta.json        what the data told the model (class names, input shape)
    RUN/checkpoints/     last.keras (every epoch) and best.keras
    RUN/plots/*.png      training curves and the template's own plots
    RUN/logs/            TensorBoard

Every file is written to a temporary name and renamed, so a kill mid-write
never leaves a half-written file behind. Writes never follow a symlink or leave
the folder being written (``write_via``), and ``RUN/.lock`` keeps a second
command from writing into a run directory that one is using (``hold_lock``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RunDirError


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def meta(self) -> Path:
        """What the data told the model (class names, shapes), for evaluate/predict."""
        return self.path / "meta.json"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.keras"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.keras"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def read_metrics(self) -> dict[str, Any]:
        """metrics.json as a dict, or {} before the first epoch."""
        if not self.metrics.is_file():
            return {}
        return _read_json_object(self.metrics)


def new_run_path(base: str | Path = "runs", prefix: str = "") -> Path:
    """A fresh ``runs/<prefix>YYYYmmdd-HHMMSS`` path (suffixed when taken)."""
    stamp = prefix + time.strftime("%Y%m%d-%H%M%S")
    candidate = Path(base) / stamp
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = Path(base) / f"{stamp}-{suffix}"
    return candidate


def prepare(path: str | Path | None, *, resume: bool, min_free_mb: int,
            shared: bool = False) -> RunDir:
    """Create (or, with ``resume``, reopen) a run directory and check it can be written.

    Fails before any training when the directory is in use by another run,
    unwritable, or on a disk with less than ``min_free_mb`` free. ``shared``:
    this process is a non-chief worker of a run the chief owns, so the folder
    may already hold the chief's files.
    """
    if path is None and shared:
        raise RunDirError("multi-worker training needs --run-dir on a disk all workers share")
    run = RunDir(Path(path) if path is not None else new_run_path())
    if resume:
        if not run.last_checkpoint.is_file():
            raise RunDirError(f"--resume: no checkpoint at {run.last_checkpoint}")
    if not shared:  # workers write into the chief's run: the chief holds the lock
        _lock_for_training(run, resume)
    if not resume and not shared and _holds_files(run.path):
        raise RunDirError(f"run directory {run.path} is not empty; pass --resume to continue "
                          "that run or choose another --run-dir")
    try:
        root = add_write_root(run.path)
        for folder in (run.checkpoints, run.plots, run.logs, run.logs / "train",
                       run.logs / "validation"):  # TensorBoard writes into the last two
            safe_folder(folder, root)
        probe = run.path / f".write-test-{os.getpid()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600))
        probe.unlink()
    except OSError as err:
        raise RunDirError(f"cannot write to run directory {run.path}: {err.strerror}") from None
    free_mb = shutil.disk_usage(run.path).free // 2**20
    if free_mb < min_free_mb:
        raise RunDirError(f"only {free_mb} MB free on the disk of {run.path}; "
                          f"runtime.min_free_disk_mb asks for {min_free_mb} MB")
    return run


def _holds_files(folder: Path) -> bool:
    """True when ``folder`` holds a file (empty subfolders made by other workers don't count)."""
    if not folder.is_dir():
        return folder.exists()
    return any(p.is_file() and not p.name.startswith(".write-test") and p.name != LOCK_NAME
               for p in folder.rglob("*"))


def _lock_for_training(run: RunDir, resume: bool) -> None:
    """Create the run folder if needed and lock it for this training process."""
    try:
        run.path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(f"cannot write to run directory {run.path}: {err.strerror}") from None
    hold_lock(run.path, "train --resume" if resume else "train")


def open_existing(path: str | Path) -> RunDir:
    """A finished or interrupted run, for evaluate / predict / export."""
    run = RunDir(Path(path))
    if not run.config.is_file():
        raise RunDirError(f"{run.path} is not a run directory (no config.toml)")
    if not (run.best_checkpoint.is_file() or run.last_checkpoint.is_file()):
        raise RunDirError(f"{run.path} has no checkpoint yet; train first")
    add_write_root(run.path)
    return run


def read_meta(run: RunDir) -> dict[str, Any]:
    """meta.json written at training time, re-validated (``validate_meta``)."""
    if not run.meta.is_file():
        raise RunDirError(f"{run.path} has no meta.json; was it written by train?")
    return validate_meta(_read_json_object(run.meta), run.meta)


def load_model(path: Path) -> Any:
    """``keras.models.load_model`` with the template's custom layers registered first.

    Always ``safe_mode=True``: a checkpoint is data, and one holding code (a Lambda
    layer) is refused instead of run.
    """
    import keras

    from . import model  # noqa: F401  (registers the template's serializable layers)

    try:
        with warnings.catch_warnings():
            # a frozen pretrained backbone loads before its flags are repaired (finetune.py)
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            return keras.models.load_model(path, safe_mode=True)
    except ValueError as err:
        if "safe_mode" in str(err) or "Lambda" in str(err):
            raise RunDirError(f"{path} holds code (a Lambda layer) and is not loaded: "
                              "checkpoints are loaded in Keras' safe mode") from None
        raise


def model_checkpoint(run: RunDir) -> Path:
    """The checkpoint to use after training: best if there is one, else last."""
    return run.best_checkpoint if run.best_checkpoint.is_file() else run.last_checkpoint


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` via a temporary file in the same folder, then rename over ``path``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (sorted keys, indented, finite numbers only)."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write bytes atomically (``write_via``): fsync the temporary file, then rename."""
    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    write_via(path, write)


def atomic_save_model(model: Any, path: Path) -> None:
    """``model.save`` to a temporary ``.keras`` file, then rename into place."""
    write_via(path, model.save)


# --- Run-directory lock -------------------------------------------------------------------
# One command at a time writes into a run directory. RUN/.lock holds the owner's pid, host
# and command; it is created with O_EXCL (never through a symlink), removed when the process
# exits, and a lock left by a dead process on this host is taken over. A lock from another
# host is respected: its pid cannot be checked from here.

LOCK_NAME = ".lock"
_HELD_LOCKS: dict[Path, tuple[int, int]] = {}  # run directory -> (inode of its lock, our pid)


def hold_lock(path: str | Path, command: str) -> None:
    """Lock ``path`` for this process until it exits; RunDirError naming the holder if busy.

    Taking a lock this process already holds is a no-op.
    """
    folder = Path(path)
    key = Path(os.path.abspath(folder))
    if key in _HELD_LOCKS:
        return
    lock = folder / LOCK_NAME
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                         "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
        except FileExistsError:
            _take_over_if_stale(lock)  # raises when the holder is alive (or elsewhere)
            continue
        except OSError as err:
            raise RunDirError(f"cannot lock run directory {folder}: {err.strerror}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(record + "\n")
        if not _HELD_LOCKS:
            atexit.register(release_locks)
        _HELD_LOCKS[key] = (os.stat(lock).st_ino, os.getpid())
        return
    raise RunDirError(f"cannot lock run directory {folder}: another process keeps taking it")


def release_locks() -> None:
    """Remove the lock files this process holds (runs at exit)."""
    for folder in list(_HELD_LOCKS):
        release_lock(folder)


def release_lock(path: str | Path) -> None:
    """Remove this process's lock on ``path`` (e.g. a finished trial while the sweep goes on)."""
    folder = Path(os.path.abspath(path))
    if folder not in _HELD_LOCKS:
        return
    inode, pid = _HELD_LOCKS.pop(folder)
    lock = folder / LOCK_NAME
    try:
        if pid == os.getpid() and os.lstat(lock).st_ino == inode:  # not a forked child
            lock.unlink()
    except OSError:
        pass


def _take_over_if_stale(lock: Path) -> None:
    """Remove ``lock`` when its process is gone; otherwise RunDirError naming that process."""
    try:
        fd = os.open(lock, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return  # released meanwhile: try again
    except OSError as err:
        raise RunDirError(f"{lock} cannot be read ({err.strerror}); remove it if no "
                          "command is using this run directory") from None
    with os.fdopen(fd, "rb") as handle:
        inode = os.fstat(handle.fileno()).st_ino
        age = time.time() - os.fstat(handle.fileno()).st_mtime
        owner = _parse_lock(handle.read(4096))
    if owner is None:
        if age < 10:  # being written right now
            raise RunDirError(f"run directory {lock.parent} is being locked by another command")
    else:
        pid, host, command = owner
        if host != socket.gethostname() or _pid_alive(pid):
            raise RunDirError(
                f"run directory {lock.parent} is in use by '{command}' (pid {pid} on host "
                f"{host}); wait for it to finish or choose another --run-dir (if that process "
                f"is gone, delete {lock})")
    # Stale: move it aside and check that what was moved is the file just read, so two
    # processes taking over the same stale lock cannot remove each other's fresh one.
    aside = lock.with_name(f"{LOCK_NAME}.stale-{os.getpid()}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    if os.lstat(aside).st_ino != inode:
        try:
            os.link(aside, lock)  # put the newer lock back unless one is there already
        except OSError:
            pass
    aside.unlink(missing_ok=True)


def _parse_lock(raw: bytes) -> tuple[int, str, str] | None:
    try:
        data = json.loads(raw.decode("utf-8"))
        pid, host, command = data["pid"], data["host"], data["command"]
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(pid, int) and pid > 0 and isinstance(host, str)
            and isinstance(command, str)):
        return None
    return pid, _printable(host, 100), _printable(command, 100)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OverflowError:
        return False
    return True


def _printable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with control characters replaced (safe to print)."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


# --- Confined writes ----------------------------------------------------------------------
# Every file the runtime writes goes through write_via() (directly, or through the
# atomic_* helpers above): the target's folders, from the root being written (the run
# directory, or the --out folder the user chose) down, must be real folders inside that
# root, never symlinks; the file is written under a fresh temporary name (O_EXCL) in the
# same folder and renamed into place, so a symlink planted in a run directory someone
# hands you cannot redirect a write elsewhere.

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_ROOTS: list[Path] = []  # folders this process writes into (absolute, not resolved)


def add_write_root(path: str | Path) -> Path:
    """Declare ``path`` a folder this command writes into; writes below it are confined to it."""
    root = Path(os.path.abspath(path))
    if root not in _ROOTS:
        _ROOTS.append(root)
    return root


def output_folder(run: RunDir, out: Path | None, name: str = "predictions") -> Path:
    """The folder predict writes into: ``out`` (the user's choice) or ``RUN/<name>``, created.

    RunDirError when a folder below the run directory is a symlink or leaves it.
    """
    if out is None:
        target = run.path / name
        safe_folder(target, add_write_root(run.path))
        return target
    safe_folder(out, add_write_root(out))
    return out


def safe_folder(folder: Path, root: Path | None = None) -> Path:
    """Create ``folder`` and its parents below ``root``, refusing symlinks; return it."""
    folder = Path(os.path.abspath(folder))
    root = Path(os.path.abspath(root)) if root is not None else _root_of(folder)
    if folder != root and root not in folder.parents:
        raise RunDirError(f"refusing to write {folder}: it is outside {root}")
    try:
        root.mkdir(parents=True, exist_ok=True)
        current = root
        for part in folder.relative_to(root).parts:
            current = current / part
            if part in ("", ".", ".."):
                raise RunDirError(f"refusing to write {folder}: '{part}' in the path")
            if current.is_symlink():
                raise RunDirError(f"refusing to write through the symlink {current} "
                                  f"(it points to {os.readlink(current)}); remove it")
            if not current.exists():
                current.mkdir()
            elif not current.is_dir():
                raise RunDirError(f"cannot write into {current}: it is not a folder")
    except OSError as err:
        raise RunDirError(f"cannot write to {folder}: {err.strerror}") from None
    real = os.path.realpath(folder)
    real_root = os.path.realpath(root)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise RunDirError(f"refusing to write {folder}: it resolves outside {root}")
    return folder


def write_via(target: Path, write: Callable[[Path], object], root: Path | None = None
              ) -> Path:
    """Run ``write(tmp)`` on a fresh path next to ``target``, then rename it over ``target``.

    ``tmp`` has ``target``'s name inside a new private folder (so libraries that pick the
    format from the suffix, or write a folder, work). ``target`` may be replaced but not
    written through: an existing symlink at ``target`` is refused. Nothing is left on failure.
    """
    with staged_path(target, root) as tmp:
        write(tmp)
        if not os.path.lexists(tmp):
            raise RunDirError(f"writing {target} produced no file")
    return target


@contextlib.contextmanager
def staged_path(target: Path, root: Path | None = None) -> Iterator[Path]:
    """A fresh path to write ``target`` at; renamed over ``target`` when the block succeeds.

    For writers that keep a file open (a video): the same checks as ``write_via``. A block
    that writes nothing leaves ``target`` alone; one that raises leaves nothing behind.
    """
    target = Path(os.path.abspath(target))
    safe_folder(target.parent, root)
    if target.is_symlink():
        raise RunDirError(f"refusing to write through the symlink {target} "
                          f"(it points to {os.readlink(target)}); remove it")
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        tmp = scratch / target.name
        yield tmp
        if not os.path.lexists(tmp):
            return
        if tmp.is_symlink() or not (tmp.is_dir() or tmp.is_file()):
            raise RunDirError(f"writing {target} produced no file")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)  # os.replace cannot replace a folder
        elif tmp.is_dir() and target.is_file():
            target.unlink()
        os.replace(tmp, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _root_of(folder: Path) -> Path:
    """The deepest declared write root holding ``folder``, else ``folder`` itself (a place
    the user chose, such as ``--out``)."""
    inside = [root for root in _ROOTS if root == folder or root in folder.parents]
    return max(inside, key=lambda root: len(root.parts)) if inside else folder


# --- What is read back from a run directory -----------------------------------------------
# A run directory may come from someone else: meta.json and metrics.json are checked before
# use, and strings from them are printed and written to CSV only as data (csv_out).

MAX_JSON_BYTES = 256 * 2**20  # meta.json holds vocabularies; anything bigger is not ours
MAX_CLASSES = 100_000
MAX_NAME_CHARS = 256


def _read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from ``path`` (not through a symlink); RunDirError if it is not one."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(MAX_JSON_BYTES + 1)
    except OSError as err:
        raise RunDirError(f"cannot read {path}: {err.strerror}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise RunDirError(f"{path} is larger than {MAX_JSON_BYTES // 2**20} MB")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise RunDirError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def validate_meta(meta: dict[str, Any], source: Path) -> dict[str, Any]:
    """Check the fields the runtime relies on; RunDirError naming the file and field."""
    def fail(message: str) -> RunDirError:
        return RunDirError(f"{source}: {message}")

    for key in ("class_names", "targets"):
        if key not in meta:
            continue
        names = meta[key]
        if not isinstance(names, list) or not 1 <= len(names) <= MAX_CLASSES:
            raise fail(f"{key} must be a list of 1 to {MAX_CLASSES} names")
        for name in names:
            if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS \
                    or not name.isprintable():
                raise fail(f"{key} holds {_printable(repr(name), 60)}: names must be "
                           f"printable strings of 1 to {MAX_NAME_CHARS} characters")
        if len(set(names)) != len(names):
            raise fail(f"{key} repeats a name")
    if "num_classes" in meta and meta["num_classes"] != len(meta.get("class_names", [])):
        raise fail("num_classes must equal the number of class_names")
    if "image_shape" in meta:
        shape = meta["image_shape"]
        if not (isinstance(shape, list) and len(shape) == 3
                and all(type(v) is int and 0 < v <= 16384 for v in shape)):
            raise fail("image_shape must be [height, width, channels] of positive integers")
    for key in ("task", "summary", "text_column", "source_column"):
        if key in meta and (not isinstance(meta[key], str) or len(meta[key]) > 1000):
            raise fail(f"{key} must be a string")
    return meta


def check_model_outputs(net: Any, meta: dict[str, Any], key: str = "class_names") -> None:
    """RunDirError when the model's last output axis does not match ``meta[key]``'s length."""
    names = meta.get(key)
    shape = getattr(net, "output_shape", None)
    if names is None or not isinstance(shape, tuple) or not shape or shape[-1] is None:
        return
    if shape[-1] != len(names):
        raise RunDirError(f"meta.json lists {len(names)} {key} but the model predicts "
                          f"{shape[-1]}; the run directory is inconsistent")
