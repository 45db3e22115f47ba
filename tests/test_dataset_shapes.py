"""The shapes detection sample: COCO layout pycocotools reads, boxes on the drawn shapes."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from datasets import get_writer


def test_shapes_writes_coco_with_tight_boxes(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    summary = get_writer("shapes")(tmp_path / "s", size=30, seed=3)
    assert "30 images" in summary
    for split, count in (("train", 24), ("val", 6)):
        path = tmp_path / "s" / "annotations" / f"instances_{split}.json"
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
        assert len(coco.getImgIds()) == count
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [
            "circle", "square", "triangle"]
        for image in coco.loadImgs(coco.getImgIds()):
            pixels = np.asarray(Image.open(tmp_path / "s" / "images" / split
                                           / image["file_name"]))
            assert pixels.shape == (image["height"], image["width"], 3)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])):
                x, y, w, h = ann["bbox"]
                assert 0 <= x and 0 <= y and x + w <= image["width"]
                assert y + h <= image["height"] and min(w, h) >= 12
                if ann["category_id"] == 2:  # a square fills its box with one colour
                    inside = pixels[y:y + h, x:x + w].reshape(-1, 3)
                    colours, counts = np.unique(inside, axis=0, return_counts=True)
                    assert counts.max() / len(inside) > 0.8, colours[counts.argmax()]
    again = get_writer("shapes")(tmp_path / "t", size=30, seed=3)
    assert again.replace(str(tmp_path / "t"), str(tmp_path / "s")) == summary
    first = json.loads((tmp_path / "s" / "annotations" / "instances_val.json").read_text())
    second = json.loads((tmp_path / "t" / "annotations" / "instances_val.json").read_text())
    assert first == second  # same seed, same sample

