"""The faster sample simulators write exactly what the straightforward ones wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from appgen.datasets import parallel, phantoms, roads, shapes


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_split_covers_every_index_once() -> None:
    for count in (1, 2, 7, 1000):
        for parts in (1, 2, 3, 16):
            pieces = parallel.split(count, parts)
            assert [i for start, stop in pieces for i in range(start, stop)] == list(range(count))
            assert len(pieces) == min(parts, count)


def test_roads_in_worker_processes_equal_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roads.write_roads(tmp_path / "serial", size=5, seed=4)
    monkeypatch.setattr(roads, "PARALLEL_MIN_FRAMES", 2)
    monkeypatch.setattr(roads, "available_cpus", lambda: 3)
    summary = roads.write_roads(tmp_path / "parallel", size=5, seed=4)
    assert "5 road frames" in summary
    assert files_of(tmp_path / "parallel") == files_of(tmp_path / "serial")


def test_road_objects_in_worker_processes_equal_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roads.write_road_objects(tmp_path / "serial", size=7, seed=4)
    monkeypatch.setattr(roads, "PARALLEL_MIN_FRAMES", 2)
    monkeypatch.setattr(roads, "available_cpus", lambda: 3)  # train and val in 3 pieces each
    roads.write_road_objects(tmp_path / "parallel", size=7, seed=4)
    assert files_of(tmp_path / "parallel") == files_of(tmp_path / "serial")


def test_phantom_slices_in_worker_processes_equal_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    phantoms.write_phantom_slices(tmp_path / "serial", size=2, seed=1)
    monkeypatch.setattr(phantoms, "PARALLEL_MIN_PATIENTS", 2)
    monkeypatch.setattr(phantoms, "available_cpus", lambda: 2)
    phantoms.write_phantom_slices(tmp_path / "parallel", size=2, seed=1)
    assert files_of(tmp_path / "parallel") == files_of(tmp_path / "serial")


def test_shapes_in_worker_processes_equal_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shapes.write_shapes(tmp_path / "serial", size=12, seed=5)
    monkeypatch.setattr(shapes, "PARALLEL_MIN_IMAGES", 1)
    monkeypatch.setattr(shapes, "available_cpus", lambda: 3)
    shapes.write_shapes(tmp_path / "parallel", size=12, seed=5)
    written = files_of(tmp_path / "parallel")
    assert len(written) == 12 + 2  # images and the two splits' annotations
    assert written == files_of(tmp_path / "serial")


def test_a_failing_worker_is_one_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(roads, "PARALLEL_MIN_FRAMES", 2)
    monkeypatch.setattr(roads, "available_cpus", lambda: 2)
    # The worker's half renders into a folder that is not there: it fails in the worker.
    with pytest.raises(RuntimeError, match="sample-data worker failed"):
        parallel.run_pieces(roads._write_frames, [
            (str(tmp_path), 0, 0, 0, 66, 200), (str(tmp_path / "missing"), 0, 0, 1, 66, 200)])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", range(6))
def test_windowed_blob_equals_the_whole_volume_evaluation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    config = phantoms.PhantomConfig(shape=(40, 36, 24))
    grid = phantoms._patient_grid(config.shape, phantoms.phantom_affine(config.shape,
                                                                       config.spacing))
    points = phantoms._to_local(grid, rng.normal(0, 0.05, 3),
                                phantoms._rotation(*rng.normal(0, 5, 3)))
    center = tuple(rng.uniform(-0.8, 0.8, 3))
    radii = tuple(rng.uniform(0.05, 0.5, 3))
    rotation = phantoms._rotation(*rng.uniform(0, 180, 3))
    shape_kw = {"bend": rng.uniform(-0.4, 0.4), "taper": rng.uniform(0, 0.4),
                "lobes": rng.uniform(0, 0.1), "phase": rng.uniform(0, 6)}
    windowed = phantoms._blob(points, center, radii, rotation, **shape_kw)
    whole = phantoms._blob_window
    try:
        phantoms._blob_window = lambda p, *args: tuple(slice(0, n) for n in p.shape[1:])
        everywhere = phantoms._blob(points, center, radii, rotation, **shape_kw)
    finally:
        phantoms._blob_window = whole
    inside = everywhere < 1
    assert np.array_equal(windowed < 1, inside)
    np.testing.assert_array_equal(windowed[inside], everywhere[inside])
    # Outside the window every value is at least 1 in the whole evaluation too.
    assert np.all(everywhere[np.isinf(windowed)] >= 1)
