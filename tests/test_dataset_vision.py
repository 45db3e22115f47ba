"""The vision samples: real images read from installed packages, written as PNG class folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from appgen.datasets import get_writer
from appgen.datasets.png import encode_png
from PIL import Image


def test_digits_are_all_written_as_readable_class_folders(tmp_path: Path) -> None:
    summary = get_writer("digits")(tmp_path / "d")
    assert "1797" in summary
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755  # not the staging dir's 0700
    folders = sorted((tmp_path / "d" / "train").iterdir())
    assert [f.name for f in folders] == [str(d) for d in range(10)]
    counts = [len(list(f.glob("*.png"))) for f in folders]
    assert sum(counts) == 1797 and min(counts) >= 170
    with Image.open(next(folders[0].glob("*.png"))) as image:
        assert image.mode == "L" and image.size == (8, 8)
        assert np.asarray(image).max() > 200  # 0..16 grey levels scaled to 0..255


def test_faces_and_size_cap(tmp_path: Path) -> None:
    get_writer("faces")(tmp_path / "f", size=20, seed=3)
    files = list((tmp_path / "f" / "train").rglob("*.png"))
    assert len(files) == 20
    assert {f.parent.name for f in files} <= {"face", "non_face"}
    with Image.open(files[0]) as image:
        assert image.size == (25, 25)


@pytest.mark.parametrize(("shape", "level"), [((5, 7), 6), ((6, 9, 3), 1), ((1, 1, 3), 0)])
def test_png_encoder_round_trips(tmp_path: Path, shape: tuple[int, ...], level: int) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    (tmp_path / "x.png").write_bytes(encode_png(pixels, level=level))
    with Image.open(tmp_path / "x.png") as image:
        np.testing.assert_array_equal(np.asarray(image), pixels)


@pytest.mark.parametrize("pixels", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8),
                                    np.zeros(4, np.uint8)])
def test_png_encoder_refuses_what_it_cannot_encode(pixels: np.ndarray) -> None:
    with pytest.raises(ValueError):
        encode_png(pixels)


def test_occupied_target_is_refused_and_untouched(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        get_writer("digits")(tmp_path / "d")
    assert [p.name for p in tmp_path.iterdir()] == ["d"]
    assert (tmp_path / "d" / "mine.txt").read_text() == "keep"


def test_a_symlinked_target_is_refused_and_nothing_written_through_it(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(FileExistsError, match="symbolic link"):
        get_writer("digits")(tmp_path / "link")
    assert list(real.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]  # no staging left
