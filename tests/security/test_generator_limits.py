"""Small hostile inputs that used to cost unbounded memory or time in the generator.

A tampered ``.appgen/pristine.tar.gz`` (a huge member, a path that climbs, a link,
a gzip bomb), template expressions such as ``'a' * 3000000000`` and a render killed
half-way. Commands run in a subprocess where memory or time must be bounded, so a
regression fails (MemoryError, timeout) instead of hanging the suite.
"""

from __future__ import annotations

import gzip
import io
import os
import resource
import signal
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path

import pytest

from appgen import catalog, pristine
from appgen.render import RenderRequest, render_project

STAGING_PREFIX = ".appgen-staging-"  # appgen.render.STAGING_PREFIX: a recognisable leftover
ADDRESS_SPACE = 600 * 1024 * 1024  # ~3x what `appgen diff` needs; far below a 1 GB member


def appgen(*args: str, cwd: Path, memory: int | None = None, timeout: float = 120,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run([sys.executable, "-m", "appgen", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, preexec_fn=limit,
                          env={**os.environ, **(env or {})})


def assert_one_line_error(completed: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert completed.returncode == 2, completed.stderr[-2000:]
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]


def generate(tmp_path: Path) -> Path:
    target = tmp_path / "proj"
    render_project(RenderRequest(project_name="proj", template=catalog.find_template("demo"),
                                 task=None, out_dir=target))
    return target


# --------------------------------------------------------------------------- pristine store


def _gzip_member(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip member
    return compressor.compress(data) + compressor.flush()


def write_bomb(store: Path, name: str, size: int) -> None:
    """A store whose member ``name`` declares and holds ``size`` zero bytes, in ~size/1000.

    gzip members concatenate, so one compressed MiB of zeros repeated makes the
    member without compressing it all (a few MB on disk for a GB inside).
    """
    assert size % (1024 * 1024) == 0
    info = tarfile.TarInfo(name)
    info.size = size
    header = info.tobuf(tarfile.PAX_FORMAT)
    zeros = _gzip_member(bytes(1024 * 1024))
    with open(store, "wb") as handle:
        handle.write(_gzip_member(header))
        for _ in range(size // (1024 * 1024)):
            handle.write(zeros)
        handle.write(_gzip_member(bytes(2 * tarfile.BLOCKSIZE)))


def test_a_huge_member_is_refused_from_its_header_without_reading_it(
    templates_dir: Path, tmp_path: Path
) -> None:
    project = generate(tmp_path)
    store = project / pristine.STORE_FILE
    write_bomb(store, "README.md", 1024 * 1024 * 1024)  # README.md: a file the record knows
    (project / "README.md").write_text("edited\n")  # so diff needs the pristine copy
    assert store.stat().st_size < 3 * 1024 * 1024

    for command in ("diff", "update"):
        completed = appgen(command, str(project), cwd=tmp_path, memory=ADDRESS_SPACE)
        assert_one_line_error(completed, "README.md", "APPGEN_MAX_FILE_BYTES")


def _store_with(project: Path, *members: tarfile.TarInfo, content: bytes = b"") -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info in members:
            archive.addfile(info, io.BytesIO(content) if info.isfile() else None)
    (project / pristine.STORE_FILE).write_bytes(gzip.compress(raw.getvalue()))


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "",
            size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    return info


@pytest.mark.parametrize(("member", "needle"), [
    (_member("../../home/.bashrc", size=3), "not a plain project path"),
    (_member("/etc/cron.d/x", size=3), "not a plain project path"),
    (_member("README.md", tarfile.SYMTYPE, "/etc/passwd"), "not a regular file"),
    (_member("proj", tarfile.DIRTYPE), "not a regular file"),
    (_member("dev", tarfile.CHRTYPE), "not a regular file"),
])
def test_a_store_member_appgen_never_writes_is_refused(
    templates_dir: Path, tmp_path: Path, member: tarfile.TarInfo, needle: str
) -> None:
    project = generate(tmp_path)
    _store_with(project, member, content=b"abc")

    completed = appgen("diff", str(project), cwd=tmp_path)

    assert_one_line_error(completed, needle)


def test_the_store_byte_budget_stops_a_gzip_bomb(templates_dir: Path, tmp_path: Path) -> None:
    project = generate(tmp_path)
    # Members the record does not know are skipped, but still decompressed: budgeted.
    write_bomb(project / pristine.STORE_FILE, "padding.bin", 8 * 1024 * 1024)

    completed = appgen("diff", str(project), cwd=tmp_path,
                       env={"APPGEN_MAX_PRISTINE_BYTES": str(4 * 1024 * 1024)})

    assert_one_line_error(completed, "APPGEN_MAX_PRISTINE_BYTES")
    # The same store within a budget that fits it reads fine (the knob is the limit).
    completed = appgen("diff", str(project), cwd=tmp_path,
                       env={"APPGEN_MAX_PRISTINE_BYTES": str(16 * 1024 * 1024)})
    assert completed.returncode == 0, completed.stderr


def test_a_limit_knob_with_a_bad_value_is_one_line(templates_dir: Path, tmp_path: Path) -> None:
    project = generate(tmp_path)

    completed = appgen("diff", str(project), cwd=tmp_path,
                       env={"APPGEN_MAX_FILE_BYTES": "lots"})

    assert_one_line_error(completed, "APPGEN_MAX_FILE_BYTES")


# --------------------------------------------------------------------------- Jinja


def write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(("expression", "knob"), [
    ("{{ 'a' * 3000000000 }}", "APPGEN_MAX_RENDER_SIZE"),
    ("{{ [0] * 3000000000 }}", "APPGEN_MAX_RENDER_SIZE"),
    ("{{ 9 ** (9 ** 9) }}", "APPGEN_MAX_RENDER_INT_BITS"),
    ("{{ 'a' | center(3000000000) }}", "APPGEN_MAX_RENDER_SIZE"),
    ("{{ 'a'.ljust(3000000000) }}", "APPGEN_MAX_RENDER_SIZE"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
     "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}", "APPGEN_MAX_RENDER_SIZE"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
     "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}", "APPGEN_MAX_RENDER_SIZE"),
    ("{% set ns = namespace(n=3) %}{% for i in range(40) %}"
     "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 0 }}", "APPGEN_MAX_RENDER_INT_BITS"),
])
def test_the_sandbox_refuses_huge_repetitions_and_powers(
    templates_dir: Path, tmp_path: Path, expression: str, knob: str
) -> None:
    write_file(templates_dir / "boom" / "template.toml", 'extends = "demo"\n')
    write_file(templates_dir / "boom" / "project" / "boom.txt.jinja", expression)

    started = time.monotonic()
    completed = appgen("new", "proj", "-t", "boom", cwd=tmp_path, memory=ADDRESS_SPACE,
                       timeout=60)

    assert_one_line_error(completed, "boom.txt.jinja", knob)
    assert time.monotonic() - started < 30
    assert not (tmp_path / "proj").exists()
    assert not list(tmp_path.glob(".appgen-*"))


# --------------------------------------------------------------------------- staging


def _staging_folders(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir() if path.name.startswith(".appgen-")]


def test_a_render_killed_with_sigterm_removes_its_staging_folder(
    templates_dir: Path, tmp_path: Path
) -> None:
    write_file(templates_dir / "slow" / "template.toml", 'extends = "demo"\n')
    write_file(templates_dir / "slow" / "project" / "slow.txt.jinja",
               "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}"
               "{% endfor %}")
    process = subprocess.Popen([sys.executable, "-m", "appgen", "new", "proj", "-t", "slow"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 60
        while not _staging_folders(tmp_path):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no staging folder appeared"
            time.sleep(0.05)
        time.sleep(0.5)  # well inside the render by now
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode != 0
    assert len(err.strip().splitlines()) == 1, err
    assert _staging_folders(tmp_path) == []
    assert not (tmp_path / "proj").exists()


def test_staging_left_by_a_killed_process_is_removed_by_the_next_render(
    templates_dir: Path, tmp_path: Path
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid now names no process
    stale = tmp_path / f"{STAGING_PREFIX}{gone.pid}-abc123"
    write_file(stale / "proj" / "model.py", "half-written\n")
    alive = tmp_path / f"{STAGING_PREFIX}{os.getpid()}-def456"  # a render still running
    alive.mkdir()
    unrelated = tmp_path / ".appgen-staging-notes"  # not our naming: never touched
    unrelated.mkdir()

    completed = appgen("new", "proj", "-t", "demo", cwd=tmp_path)

    assert completed.returncode == 0, completed.stderr
    assert not stale.exists()
    assert alive.is_dir() and unrelated.is_dir()
