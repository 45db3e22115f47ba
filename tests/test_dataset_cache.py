"""The per-user sample cache: copies instead of simulating, and never hands out a bad copy."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from appgen.datasets import cache, get_writer


@pytest.fixture(autouse=True)
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(root))
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    return root


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def only_entry(root: Path) -> Path:
    (entry,) = (root / "samples").iterdir()
    return entry


def test_second_write_is_a_checked_copy_of_the_first(cache_root: Path, tmp_path: Path) -> None:
    writer = get_writer("reviews")
    first = cache.write_sample("reviews", writer, tmp_path / "one")
    assert str(tmp_path / "one") in first and "cache" not in first
    entry = only_entry(cache_root)
    manifest = json.loads((entry / cache.MANIFEST).read_text())
    assert set(manifest["files"]) == set(files_of(tmp_path / "one"))
    # Mark the cached summary: only a copy from the cache can return it.
    manifest["summary"] = "from the cache: " + manifest["summary"]
    (entry / cache.MANIFEST).write_text(json.dumps(manifest))

    second = cache.write_sample("reviews", writer, tmp_path / "two")
    assert second.startswith("from the cache: ") and str(tmp_path / "two") in second
    assert second.endswith("(copied from the sample cache)")
    assert files_of(tmp_path / "two") == files_of(tmp_path / "one")


@pytest.mark.parametrize("damage", ["edit", "delete", "extra", "manifest"])
def test_a_damaged_entry_is_discarded_and_simulated_again(
    cache_root: Path, tmp_path: Path, damage: str
) -> None:
    writer = get_writer("reviews")
    cache.write_sample("reviews", writer, tmp_path / "one")
    entry = only_entry(cache_root)
    victim = sorted((entry / "data").rglob("*.csv"))[0]
    if damage == "edit":
        victim.write_bytes(victim.read_bytes()[:-5] + b"XXXXX")
    elif damage == "delete":
        victim.unlink()
    elif damage == "extra":
        (entry / "data" / "stray.txt").write_text("not from the provider")
    else:
        (entry / cache.MANIFEST).write_text("{ truncated")

    summary = cache.write_sample("reviews", writer, tmp_path / "two")
    assert files_of(tmp_path / "two") == files_of(tmp_path / "one")
    assert str(tmp_path / "two") in summary
    # The entry was rebuilt whole.
    assert files_of(only_entry(cache_root) / "data") == files_of(tmp_path / "one")


def test_the_key_changes_with_the_seed(cache_root: Path, tmp_path: Path) -> None:
    writer = get_writer("reviews")
    cache.write_sample("reviews", writer, tmp_path / "a", seed=0)
    cache.write_sample("reviews", writer, tmp_path / "b", seed=1)
    assert len(list((cache_root / "samples").iterdir())) == 2
    assert files_of(tmp_path / "a") != files_of(tmp_path / "b")


def test_writers_other_than_the_registered_one_are_never_cached(
    cache_root: Path, tmp_path: Path
) -> None:
    calls = []

    def write_reviews(out: Path, *, size: int | None, seed: int) -> str:  # a stand-in
        calls.append(out)
        out.mkdir()
        (out / "x.txt").write_text("fake")
        return "fake"

    for name in ("one", "two"):
        assert cache.write_sample("reviews", write_reviews, tmp_path / name) == "fake"
    assert len(calls) == 2 and not cache_root.exists()


def test_a_failing_provider_leaves_no_entry_and_no_output(
    cache_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appgen.datasets import text_samples

    original = text_samples.write_reviews

    def write_reviews(out: Path, *, size: int | None = None, seed: int = 0) -> str:
        original(out, size=size, seed=seed)
        raise RuntimeError("disk full")

    write_reviews.__module__ = original.__module__
    monkeypatch.setattr(text_samples, "write_reviews", write_reviews)
    with pytest.raises(RuntimeError, match="disk full"):
        cache.write_sample("reviews", write_reviews, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert list((cache_root / "samples").iterdir()) == []


def test_no_cache_env_turns_it_off(cache_root: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    cache.write_sample("reviews", get_writer("reviews"), tmp_path / "out")
    assert (tmp_path / "out").is_dir() and not cache_root.exists()


def test_slow_writing_says_so_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cache, "PROGRESS_AFTER_S", 0.05)

    def slow(out: Path, *, size: int | None, seed: int) -> str:
        time.sleep(0.3)
        out.mkdir()
        return "slow"

    cache.write_sample("roads", slow, tmp_path / "out")
    assert "writing sample data 'roads'" in capsys.readouterr().err

    def fast(out: Path, *, size: int | None, seed: int) -> str:
        out.mkdir()
        return "fast"

    cache.write_sample("roads", fast, tmp_path / "out2")
    assert capsys.readouterr().err == ""


def test_an_entry_of_older_provider_code_is_replaced(cache_root: Path, tmp_path: Path) -> None:
    writer = get_writer("reviews")
    cache.write_sample("reviews", writer, tmp_path / "one")
    current = only_entry(cache_root)
    stale = current.with_name(current.name.rsplit("-", 1)[0] + "-0123456789abcdef0123")
    current.rename(stale)  # as if written by another version of the provider
    cache.write_sample("reviews", writer, tmp_path / "two")
    assert [p.name for p in (cache_root / "samples").iterdir()] == [current.name]
