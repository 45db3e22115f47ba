"""The road simulator's traffic (cars, pedestrians, signs, lights), its boxes and COCO writer."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_dataset_roads import roads

HEIGHT, WIDTH = roads.DETECTION_HEIGHT, roads.DETECTION_WIDTH


def _traffic_scene(index: int, seed: int = 5) -> dict:
    params = roads.sample_params(roads.frame_rng(seed, index), traffic=True)
    return {**params, "noise": 0.0}  # noise-free, so two renders compare pixel by pixel


def _render(params: dict) -> tuple[np.ndarray, list]:
    return roads.render_traffic_frame(params, np.random.default_rng(0), HEIGHT, WIDTH)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("road_objects") / "data"
    summary = roads.write_road_objects(out, size=10, seed=3)
    assert "10 road frames (96x192)" in summary and "COCO layout" in summary
    return out


def test_traffic_is_added_to_the_scene_drawn_without_it() -> None:
    for index in range(5):
        plain = roads.sample_params(roads.frame_rng(7, index))
        busy = roads.sample_params(roads.frame_rng(7, index), traffic=True)
        assert "traffic" not in plain  # steering and segmentation frames stay as they were
        assert busy["objects"] == [obj for obj in plain["objects"] if obj["kind"] != "sign"]
        assert {k: v for k, v in busy.items() if k not in ("traffic", "objects")} == {
            k: v for k, v in plain.items() if k != "objects"}


def test_each_box_is_the_extent_of_the_pixels_its_object_changes() -> None:
    """Alone in its scene, an object changes exactly the pixels its box frames (whole cars
    and pedestrians; a sign's board or a light's housing, with their pole below)."""
    checked = set()
    for index in range(10):
        params = _traffic_scene(index)
        empty, no_boxes = _render({**params, "traffic": []})
        assert no_boxes == []
        for obj in params["traffic"]:
            image, boxes = _render({**params, "traffic": [obj]})
            changed = np.any(image != empty, axis=-1)
            if not boxes:
                continue  # off screen, tiny, or behind roadside objects: no box, by the rule
            [(label, (x0, y0, x1, y1))] = boxes
            assert roads.TRAFFIC_CLASSES[label] == obj["kind"]
            assert 0 <= x0 < x1 <= WIDTH and 0 <= y0 < y1 <= HEIGHT
            assert min(x1 - x0, y1 - y0) >= roads.MIN_BOX_SIDE
            assert (x1 - x0) * (y1 - y0) >= roads.MIN_BOX_AREA
            rows, cols = np.nonzero(changed)
            if obj["kind"] in ("car", "pedestrian"):
                assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1,
                                            rows.max() + 1)
            else:  # the board or housing is the top of what changed; the pole hangs below
                inside = changed[y0:y1, x0:x1]
                assert inside[0].any() and inside[-1].any()
                assert inside[:, 0].any() and inside[:, -1].any()
                assert y0 == rows.min()
            checked.add(obj["kind"])
        _, boxes = _render(params)  # all together: nearer objects only ever shrink a box
        for _, (x0, y0, x1, y1) in boxes:
            assert 0 <= x0 < x1 <= WIDTH and 0 <= y0 < y1 <= HEIGHT
    assert checked == set(roads.TRAFFIC_CLASSES)


def test_an_object_hidden_behind_a_car_gets_no_box() -> None:
    params = {**_traffic_scene(0), "objects": [], "patches": [], "heading": 0.0, "offset": 0.0,
              "curvature": 0.0, "roll": 0.0}
    car = {"kind": "car", "s": 9.0, "n": 0.0, "width": 1.9, "height": 1.8,
           "color": [0.6, 0.1, 0.1], "lamp": [0.85, 0.1, 0.08]}
    walker = {"kind": "pedestrian", "s": 12.0, "n": 0.0, "width": 0.6, "height": 1.7,
              "stride": 0.1, "lean": 0.0, "color": [0.2, 0.2, 0.6],
              "trousers": [0.1, 0.1, 0.1], "skin": [0.8, 0.6, 0.45]}
    car_label, walker_label = (roads.TRAFFIC_CLASSES.index(k) for k in ("car", "pedestrian"))
    _, alone = _render({**params, "traffic": [walker]})
    assert [label for label, _ in alone] == [walker_label]
    _, hidden = _render({**params, "traffic": [car, walker]})
    assert [label for label, _ in hidden] == [car_label]
    # A metre aside, under half of the walker shows (no box); 1.2 m aside, most of it does.
    _, half = _render({**params, "traffic": [car, {**walker, "n": 1.0}]})
    assert [label for label, _ in half] == [car_label]
    _, beside = _render({**params, "traffic": [car, {**walker, "n": 1.2}]})
    assert [label for label, _ in beside] == [car_label, walker_label]


def test_coco_output_loads_with_pycocotools_and_matches_the_renderer(dataset: Path) -> None:
    from pycocotools.coco import COCO

    for split, count, first in (("train", 8, 0), ("val", 2, roads.VAL_INDEX)):
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(dataset / "annotations" / f"instances_{split}.json"))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(
            roads.TRAFFIC_CLASSES)
        images = coco.loadImgs(coco.getImgIds())
        assert len(images) == count
        for number, record in enumerate(images):
            path = dataset / "images" / split / record["file_name"]
            assert Image.open(path).size == (WIDTH, HEIGHT) == (record["width"],
                                                                record["height"])
            rng = roads.frame_rng(3, first + number)
            image, boxes = roads.render_traffic_frame(roads.sample_params(rng, traffic=True),
                                                      rng, HEIGHT, WIDTH)
            assert np.array_equal(np.asarray(Image.open(path)), image)
            annotations = coco.loadAnns(coco.getAnnIds(imgIds=[record["id"]]))
            assert [(a["category_id"] - 1, a["bbox"]) for a in annotations] == [
                (label, [x0, y0, x1 - x0, y1 - y0]) for label, (x0, y0, x1, y1) in boxes]


def test_same_seed_same_bytes_and_a_larger_size_only_adds_frames(dataset: Path,
                                                                 tmp_path: Path) -> None:
    roads.write_road_objects(tmp_path / "again", size=10, seed=3)
    for path in sorted(dataset.rglob("*.png")):
        assert (tmp_path / "again" / path.relative_to(dataset)).read_bytes() == path.read_bytes()
    for name in ("instances_train.json", "instances_val.json"):
        assert ((tmp_path / "again" / "annotations" / name).read_text()
                == (dataset / "annotations" / name).read_text())
    roads.write_road_objects(tmp_path / "small", size=5, seed=3)
    small = json.loads((tmp_path / "small" / "annotations" / "instances_train.json").read_text())
    large = json.loads((dataset / "annotations" / "instances_train.json").read_text())
    assert small["annotations"] == [a for a in large["annotations"]
                                    if a["image_id"] <= len(small["images"])]
    roads.write_road_objects(tmp_path / "other", size=10, seed=4)
    assert ((tmp_path / "other" / "images" / "train" / "000000.png").read_bytes()
            != (dataset / "images" / "train" / "000000.png").read_bytes())


def test_bad_arguments_and_the_registry(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2 frames"):
        roads.write_road_objects(tmp_path / "one", size=1)
    with pytest.raises(ValueError, match="seed"):
        roads.write_road_objects(tmp_path / "neg", size=4, seed=-1)
    assert not (tmp_path / "one").exists() and not (tmp_path / "neg").exists()
    datasets = pytest.importorskip("appgen.datasets")
    assert datasets.get_writer("road_objects") is roads.write_road_objects
