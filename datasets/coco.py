"""COCO instance annotations for the simulated detection samples (shapes, road objects)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# one written image: file name, height, width, and its boxes as (class index, (x0, y0, x1, y1))
Image = tuple[str, int, int, Sequence[tuple[int, Sequence[int]]]]


def coco_split(classes: Sequence[str], images: Iterable[Image]) -> dict[str, Any]:
    """A COCO dataset of ``images`` in order: image and annotation ids from 1, category id =
    class index + 1, ``bbox`` as [x, y, width, height] in pixels."""
    coco: dict[str, Any] = {
        "images": [], "annotations": [],
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(classes)]}
    for image_id, (name, height, width, boxes) in enumerate(images, start=1):
        coco["images"].append({"id": image_id, "file_name": name,
                               "height": height, "width": width})
        for label, (x0, y0, x1, y1) in boxes:
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1, "image_id": image_id,
                "category_id": label + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    return coco
