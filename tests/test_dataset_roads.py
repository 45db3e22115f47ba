"""Tests of the procedural road-scene simulator (appgen.datasets.roads)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    """Import the installed module, or the source file when appgen is not installed."""
    try:
        from appgen.datasets import roads

        return roads
    except ImportError:
        spec = importlib.util.spec_from_file_location(
            "appgen_datasets_roads", ROOT / "datasets" / "roads.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


roads = _load()


def _read_labels(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _tree(root: Path) -> dict[str, bytes]:
    files = sorted(path for path in root.rglob("*") if path.is_file())
    return {str(path.relative_to(root)): path.read_bytes() for path in files}


def _scene(index: int, seed: int = 11) -> tuple[dict, np.random.Generator]:
    rng = roads.frame_rng(seed, index)
    return roads.sample_params(rng), rng


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("roads") / "data"
    summary = roads.write_roads(out, size=8, seed=3)
    assert "8 road frames" in summary
    return out


def test_same_seed_gives_identical_bytes(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    roads.write_roads(again, size=8, seed=3)
    assert _tree(again) == _tree(dataset)


def test_frame_i_does_not_depend_on_size(dataset: Path, tmp_path: Path) -> None:
    short = tmp_path / "short"
    roads.write_roads(short, size=3, seed=3)
    for name in ("000000.png", "000002.png"):
        assert (short / "images" / name).read_bytes() == (dataset / "images" / name).read_bytes()
    _, long_rows = _read_labels(dataset / "labels.csv")
    _, short_rows = _read_labels(short / "labels.csv")
    assert short_rows == long_rows[:3]


def test_other_seed_differs(dataset: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    roads.write_roads(other, size=2, seed=4)
    first = "images/000000.png"
    assert (other / first).read_bytes() != (dataset / first).read_bytes()


def test_labels_match_images_and_masks(dataset: Path) -> None:
    fields, rows = _read_labels(dataset / "labels.csv")
    assert fields == ["filename", "steering", "throttle", "curvature", "offset"]
    names = [row["filename"] for row in rows]
    assert names == [f"{i:06d}.png" for i in range(8)]
    assert sorted(p.name for p in (dataset / "images").iterdir()) == names
    assert sorted(p.name for p in (dataset / "masks").iterdir()) == names
    for row in rows:
        image = np.asarray(Image.open(dataset / "images" / row["filename"]))
        mask = np.asarray(Image.open(dataset / "masks" / row["filename"]))
        assert image.shape == (66, 200, 3) and image.dtype == np.uint8
        assert mask.shape == (66, 200) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1, 2}
        assert (mask == 1).sum() > 500  # the road fills a good part of the view
        assert -1.0 <= float(row["steering"]) <= 1.0
        assert 0.0 <= float(row["throttle"]) <= 1.0
    assert sum((np.asarray(Image.open(dataset / "masks" / n)) == 2).any() for n in names) >= 6
    # The labels are those of the scene drawn for the frame.
    params, _ = _scene(5, seed=3)
    assert float(rows[5]["steering"]) == pytest.approx(roads.steering_from_params(params), abs=1e-6)
    assert float(rows[5]["curvature"]) == pytest.approx(params["curvature"], abs=1e-6)
    assert float(rows[5]["offset"]) == pytest.approx(params["offset"], abs=1e-6)


def test_image_size_is_configurable(tmp_path: Path) -> None:
    roads.write_roads(tmp_path / "big", size=2, seed=0, height=48, width=96)
    image = np.asarray(Image.open(tmp_path / "big" / "images" / "000001.png"))
    mask = np.asarray(Image.open(tmp_path / "big" / "masks" / "000001.png"))
    assert image.shape == (48, 96, 3) and mask.shape == (48, 96)


@pytest.mark.parametrize("index", [0, 1, 2, 7])
def test_mirrored_scene_negates_steering_and_mirrors_the_image(index: int) -> None:
    params, _ = _scene(index)
    mirrored = roads.mirror_params(params)
    assert mirrored["curvature"] == -params["curvature"]
    assert mirrored["offset"] == -params["offset"]
    steering = roads.steering_from_params(params)
    assert roads.steering_from_params(mirrored) == pytest.approx(-steering, abs=1e-12)

    image, mask = roads.render_frame(params, np.random.default_rng(0), 66, 200)
    image_m, mask_m = roads.render_frame(mirrored, np.random.default_rng(0), 66, 200)
    assert np.mean(mask_m[:, ::-1] == mask) > 0.995
    flipped_diff = np.abs(image_m[:, ::-1].astype(int) - image.astype(int)).mean()
    plain_diff = np.abs(image_m.astype(int) - image.astype(int)).mean()
    assert flipped_diff < 12.0  # only textures and sensor noise differ
    assert flipped_diff < plain_diff or abs(steering) < 0.05


def test_steering_signs_follow_the_geometry() -> None:
    params, _ = _scene(0)
    straight = {**params, "curvature": 0.0, "offset": 0.0, "heading": 0.0}
    assert roads.steering_from_params(straight) == pytest.approx(0.0, abs=1e-12)
    assert roads.steering_from_params({**straight, "curvature": 0.02}) > 0.3  # bend right
    assert roads.steering_from_params({**straight, "offset": 0.5}) < 0  # right of centre
    assert roads.steering_from_params({**straight, "heading": 0.05}) < 0  # pointing right
    assert roads.steering_from_params({**straight, "curvature": 1.0}) == 1.0  # clipped


def test_steering_distribution_is_peaked_with_tails() -> None:
    steering = np.array([roads.steering_from_params(_scene(i)[0]) for i in range(2000)])
    assert np.all(np.abs(steering) <= 1.0)
    assert steering.std() > 0.1
    assert np.mean(np.abs(steering) < 0.1) > 0.5  # most driving is straight
    assert 0.02 < np.mean(np.abs(steering) > 0.5) < 0.2  # sharp bends are the tails
    assert abs(steering.mean()) < 0.03


def test_the_road_in_the_image_predicts_the_label() -> None:
    # Where the road runs in the upper part of the view should track the steering label.
    centres, labels = [], []
    for index in range(40):
        params, rng = _scene(index, seed=5)
        _, mask = roads.render_frame(params, rng, 66, 200)
        band = mask[20:40] > 0
        centres.append((band * np.arange(200)).sum() / max(band.sum(), 1))
        labels.append(roads.steering_from_params(params))
    assert np.corrcoef(centres, labels)[0, 1] > 0.5


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "10"])
def test_bad_size_is_refused(tmp_path: Path, size: object) -> None:
    with pytest.raises(ValueError, match="size"):
        roads.write_roads(tmp_path / "out", size=size)
    assert list(tmp_path.iterdir()) == []


def test_bad_image_side_and_seed_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="height"):
        roads.write_roads(tmp_path / "out", size=1, height=4)
    with pytest.raises(ValueError, match="width"):
        roads.write_roads(tmp_path / "out", size=1, width=0)
    with pytest.raises(ValueError, match="seed"):
        roads.write_roads(tmp_path / "out", size=1, seed=-1)


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    with pytest.raises(ValueError, match="is a file"):
        roads.write_roads(target, size=1)
    assert target.read_text() == "keep me"


def test_non_empty_out_is_refused_and_untouched(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        roads.write_roads(tmp_path / "out", size=1)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mine.txt"]


def test_empty_out_folder_is_filled(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    roads.write_roads(tmp_path / "out", size=1)
    assert (tmp_path / "out" / "labels.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_render = roads.render_frame

    def failing_render(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("renderer broke")
        return real_render(*args, **kwargs)

    monkeypatch.setattr(roads, "render_frame", failing_render)
    with pytest.raises(RuntimeError, match="renderer broke"):
        roads.write_roads(tmp_path / "out", size=5)
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    roads.write_roads(tmp_path / "quiet", size=2, progress=False)
    assert capsys.readouterr().err == ""
    roads.write_roads(tmp_path / "loud", size=2, progress=True)
    err = capsys.readouterr().err
    assert "2/2" in err and "frames/s" in err and err.endswith("\n")


def test_video_as_a_folder_of_frames(tmp_path: Path) -> None:
    steering = roads.write_video(tmp_path / "drive", n_frames=6, seed=1)
    frames = sorted((tmp_path / "drive").glob("*.png"))
    assert len(frames) == 6 and len(steering) == 6
    assert np.asarray(Image.open(frames[0])).shape == (66, 200, 3)
    _, rows = _read_labels(tmp_path / "drive" / "labels.csv")
    assert [float(r["steering"]) for r in rows] == pytest.approx(list(steering), abs=1e-6)
    assert np.all(np.abs(np.diff(steering)) < 0.3)  # a smooth drive, not random frames
    again = roads.write_video(tmp_path / "again", n_frames=6, seed=1)
    assert np.array_equal(again, steering)
    assert frames[3].read_bytes() == (tmp_path / "again" / frames[3].name).read_bytes()


def test_video_mp4_without_ffmpeg_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # makes the import fail
    with pytest.raises(RuntimeError, match="imageio-ffmpeg"):
        roads.write_video(tmp_path / "drive.mp4", n_frames=2)
    assert list(tmp_path.iterdir()) == []


def test_video_mp4_when_ffmpeg_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("imageio")
    pytest.importorskip("imageio_ffmpeg")
    steering = roads.write_video(tmp_path / "drive.mp4", n_frames=8, seed=2)
    assert (tmp_path / "drive.mp4").stat().st_size > 0
    assert len(steering) == 8 and (tmp_path / "drive.csv").is_file()


def test_registry_finds_the_writer() -> None:
    datasets = pytest.importorskip("appgen.datasets")
    assert datasets.get_writer("roads") is roads.write_roads


def test_one_ray_per_pixel_matches_supersampling(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast default (one ray per pixel) draws the scene the 2x2 supersampled render draws."""
    for index in range(3):
        params, _ = _scene(index)
        image, mask = roads.render_frame(params, np.random.default_rng(0), 66, 200)
        monkeypatch.setattr(roads, "SUPERSAMPLE", 2)
        image_ss, mask_ss = roads.render_frame(params, np.random.default_rng(0), 66, 200)
        monkeypatch.setattr(roads, "SUPERSAMPLE", 1)
        assert mask.dtype == np.uint8 and mask.shape == mask_ss.shape
        assert set(np.unique(mask)) <= {roads.BACKGROUND, roads.DRIVABLE, roads.LANE_MARKING}
        assert np.mean(mask == mask_ss) > 0.97
        for value in (roads.DRIVABLE, roads.LANE_MARKING):  # every class still drawn
            assert (mask == value).any() == (mask_ss == value).any()
        assert np.abs(image.astype(int) - image_ss.astype(int)).mean() < 6.0
