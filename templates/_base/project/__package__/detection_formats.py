"""Object-detection annotations in the three layouts people bring: COCO, YOLO, Pascal VOC.

    COCO  data.dir/annotations/instances_<split>.json, images in data.dir/images/<split>/
          or data.dir/<split>/ (``file_name`` relative to that folder)
    YOLO  data.dir/images/<split>/*.jpg, data.dir/labels/<split>/<stem>.txt
          ("class cx cy w h", normalised), class names in data.yaml or classes.txt
    VOC   data.dir/Annotations/<id>.xml, data.dir/JPEGImages/<id>.jpg,
          data.dir/ImageSets/Main/<split>.txt (optional: else every annotation)

Each reader returns ``Item``s (one image, its boxes in pixels or, for YOLO, in
fractions of the image still to be measured) and the class names. Nothing here
decodes pixels: boxes are checked against the real image size when it is decoded
(``detection_data``). A problem found while reading (an unknown category) is kept
on the item, so it is reported, or skipped and counted, with the image's other problems.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError
from .media import IMAGE_SUFFIXES

FORMATS = ("auto", "coco", "yolo", "voc")
MAX_ANNOTATION_MB = 512  # one COCO JSON (COCO 2017 train is 450 MB)
MAX_XML_BYTES = 1_000_000  # one VOC file; real ones are about 1 kB
MAX_TEXT_BYTES = 1_000_000  # one YOLO label file, classes.txt or data.yaml (25,000+ boxes)


@dataclass
class Item:
    """One image and its boxes ``(x0, y0, x1, y1)``; ``normalized``: in fractions (YOLO)."""

    path: Path
    file_name: str
    image_id: int
    boxes: np.ndarray
    labels: np.ndarray
    normalized: bool = False
    problem: str = ""  # found while reading the annotations; reported when decoding
    extra: dict[str, Any] = field(default_factory=dict)


def detect_format(root: Path, asked: str) -> str:
    """``data.format``, or the layout found in ``root`` when it is "auto"."""
    if asked != "auto":
        return asked
    if any((root / "annotations").glob("instances_*.json")):
        return "coco"
    if (root / "labels").is_dir():
        return "yolo"
    if (root / "Annotations").is_dir():
        return "voc"
    raise DataError(f"{root}: no detection data found; expected COCO "
                    "(annotations/instances_<split>.json), YOLO (images/<split>/ + "
                    "labels/<split>/ + data.yaml or classes.txt) or Pascal VOC "
                    "(Annotations/*.xml + JPEGImages/)")


def splits_present(root: Path, fmt: str) -> list[str]:
    """The split names this folder holds (e.g. ["train", "val"]); [] when it has one set."""
    if fmt == "coco":
        return sorted(p.stem.removeprefix("instances_")
                      for p in (root / "annotations").glob("instances_*.json"))
    if fmt == "yolo":
        return sorted(p.name for p in (root / "labels").iterdir() if p.is_dir())
    return sorted(p.stem for p in (root / "ImageSets" / "Main").glob("*.txt")
                  if "_" not in p.stem) if (root / "ImageSets" / "Main").is_dir() else []


def read_split(root: Path, fmt: str, split: str | None,
               class_names: list[str] | None) -> tuple[list[Item], list[str]]:
    """The items of ``split`` (None: the folder's only set) and the class names.

    ``class_names`` from training, when given, fixes the classes (and their order).
    """
    if fmt == "coco":
        return _read_coco(root, split or "train", class_names)
    if fmt == "yolo":
        return _read_yolo(root, split, class_names)
    return _read_voc(root, split, class_names)


# ----------------------------------------------------------------------------- COCO


def load_coco_json(path: Path) -> Any:
    """A COCO annotations file parsed as JSON (its fields are the caller's to check);
    DataError when it is larger than MAX_ANNOTATION_MB or not JSON."""
    if path.stat().st_size > MAX_ANNOTATION_MB * 1_000_000:
        raise DataError(f"{path}: over {MAX_ANNOTATION_MB} MB, too large to be annotations")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise DataError(f"{path}: not COCO instances JSON ({type(err).__name__}: {err})") from None


def _read_coco(root: Path, split: str, class_names: list[str] | None
               ) -> tuple[list[Item], list[str]]:
    path = root / "annotations" / f"instances_{split}.json"
    if not path.is_file():
        raise DataError(f"{path} not found (COCO layout: annotations/instances_<split>.json)")
    coco = load_coco_json(path)
    try:
        categories = {int(c["id"]): str(c["name"]) for c in coco["categories"]}
        images = [(int(i["id"]), str(i["file_name"])) for i in coco["images"]]
        annotations = [(int(a["image_id"]), int(a["category_id"]),
                        [float(v) for v in a["bbox"]]) for a in coco.get("annotations", [])
                       if not a.get("iscrowd", 0)]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not COCO instances JSON ({type(err).__name__}: {err})") from None
    if any(len(bbox) != 4 for _, _, bbox in annotations):
        raise DataError(f"{path}: every bbox must be [x, y, width, height]")
    names = class_names or [categories[k] for k in sorted(categories)]
    folder = root / "images" / split if (root / "images" / split).is_dir() else root / split
    by_image: dict[int, list[tuple[int, list[float]]]] = {i: [] for i, _ in images}
    for image_id, category, bbox in annotations:
        if image_id not in by_image:
            raise DataError(f"{path}: an annotation names image_id {image_id}, "
                            "which is not in \"images\"")
        by_image[image_id].append((category, bbox))
    items = []
    for image_id, file_name in images:
        if Path(file_name).is_absolute() or ".." in Path(file_name).parts:
            raise DataError(f"{path}: file_name {file_name!r} must be relative to {folder}")
        boxes, labels, problem = [], [], ""
        for category, (x, y, w, h) in by_image[image_id]:
            name = categories.get(category)
            if name is None or name not in names:
                problem = problem or f"unknown category_id {category} in {path.name}"
                continue
            boxes.append([x, y, x + w, y + h])
            labels.append(names.index(name))
        items.append(Item(folder / file_name, file_name, image_id, _boxes(boxes),
                          np.asarray(labels, np.int32), problem=problem))
    return items, names


# ----------------------------------------------------------------------------- YOLO


def _read_yolo(root: Path, split: str | None, class_names: list[str] | None
               ) -> tuple[list[Item], list[str]]:
    names = class_names or yolo_class_names(root)
    image_dir = root / "images" / split if split else root / "images"
    label_dir = root / "labels" / split if split else root / "labels"
    if not image_dir.is_dir():
        raise DataError(f"{image_dir} not found (YOLO layout: images/<split>/, labels/<split>/)")
    files = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    items = []
    for index, image in enumerate(files):
        label_file = label_dir / f"{image.stem}.txt"
        boxes, labels, problem = [], [], ""
        lines = read_text(label_file, MAX_TEXT_BYTES).splitlines() if label_file.is_file() else []
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                label, cx, cy, w, h = int(fields[0]), *(float(v) for v in fields[1:5])
                if len(fields) != 5:
                    raise ValueError
            except ValueError:
                problem = problem or f"{label_file} line {number}: expected 'class cx cy w h'"
                continue
            if not 0 <= label < len(names):
                problem = problem or f"{label_file} line {number}: unknown class {label}"
                continue
            boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            labels.append(label)
        items.append(Item(image, image.name, index + 1, _boxes(boxes),
                          np.asarray(labels, np.int32), normalized=True, problem=problem))
    return items, names


def yolo_class_names(root: Path) -> list[str]:
    """Class names from data.yaml (``names:`` as a list or an index map) or classes.txt."""
    text_file = root / "classes.txt"
    if text_file.is_file():
        names = [line.strip() for line in read_text(text_file, MAX_TEXT_BYTES).splitlines()]
        return [n for n in names if n]
    yaml_file = root / "data.yaml"
    if not yaml_file.is_file():
        raise DataError(f"{root}: YOLO layout needs data.yaml (names: [...]) or classes.txt")
    lines = read_text(yaml_file, MAX_TEXT_BYTES).splitlines()
    for index, line in enumerate(lines):
        key, _, value = line.partition(":")
        if key.strip() != "names":
            continue
        value = value.split("#")[0].strip()
        if value.startswith("["):  # names: [a, 'b']
            return [_unquote(v) for v in value.strip("[]").split(",") if v.strip()]
        listed: list[str] = []
        for item in lines[index + 1:]:  # block list "- a" or map "0: a"
            if not item.startswith((" ", "\t", "-")) or not item.strip():
                break
            entry = item.strip()
            listed.append(_unquote(entry[1:] if entry.startswith("-")
                                   else entry.partition(":")[2]))
        if listed:
            return listed
    raise DataError(f"{yaml_file}: no class names (expected names: [a, b] or a names: list)")


def read_text(path: Path, max_bytes: int) -> str:
    """A small annotation text file; DataError naming it when it is over ``max_bytes`` or
    not UTF-8 (checked before reading: the file is untrusted)."""
    if not path.is_file():
        raise DataError(f"{path} not found")
    if path.stat().st_size > max_bytes:
        raise DataError(f"{path}: over {max_bytes:,} bytes, too large for an annotation file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def _unquote(text: str) -> str:
    return text.split("#")[0].strip().strip("'\"")


# ----------------------------------------------------------------------------- Pascal VOC


def _read_voc(root: Path, split: str | None, class_names: list[str] | None
              ) -> tuple[list[Item], list[str]]:
    folder = root / "Annotations"
    if split:
        listing = root / "ImageSets" / "Main" / f"{split}.txt"
        ids = [line.split()[0] for line in
               read_text(listing, MAX_ANNOTATION_MB * 1_000_000).splitlines() if line.strip()]
        xml_files = [folder / f"{i}.xml" for i in ids]
    else:
        xml_files = sorted(folder.glob("*.xml"))
    parsed = [(path, *_parse_voc(path)) for path in xml_files]
    names = class_names or sorted({name for _, _, objects in parsed for name, _ in objects})
    items = []
    for index, (path, image_name, objects) in enumerate(parsed):
        boxes, labels, problem = [], [], ""
        for name, box in objects:
            if name not in names:
                problem = problem or f"unknown class {name!r} in {path.name}"
                continue
            boxes.append(box)
            labels.append(names.index(name))
        image = root / "JPEGImages" / image_name
        items.append(Item(image, image_name, index + 1, _boxes(boxes),
                          np.asarray(labels, np.int32), problem=problem))
    return items, names


def _parse_voc(path: Path) -> tuple[str, list[tuple[str, list[float]]]]:
    """(image file name, [(class, box)]) from one VOC XML file, parsed safely.

    A DOCTYPE is refused: entity declarations are how XML bombs (billion laughs) and
    external-entity reads work, and VOC files never need one. The size is capped too.
    """
    if not path.is_file():
        raise DataError(f"{path} not found (listed in ImageSets/Main)")
    if path.stat().st_size > MAX_XML_BYTES:
        raise DataError(f"{path}: over {MAX_XML_BYTES:,} bytes, too large for a VOC file")
    raw = path.read_bytes()
    if re.search(rb"<!(DOCTYPE|ENTITY)", raw, re.IGNORECASE):
        raise DataError(f"{path}: has a DOCTYPE/ENTITY declaration, refused (not VOC)")
    try:
        tree = ElementTree.fromstring(raw)
        image_name = (tree.findtext("filename") or f"{path.stem}.jpg").strip()
        objects = []
        for node in tree.iter("object"):
            box = node.find("bndbox")
            if box is None:
                raise ValueError("an object has no bndbox")
            # VOC pixels are 1-based and inclusive: (1, 1, 10, 10) is 10 pixels wide
            x0, y0, x1, y1 = (float(box.findtext(k) or "nan")
                              for k in ("xmin", "ymin", "xmax", "ymax"))
            objects.append(((node.findtext("name") or "").strip(), [x0 - 1, y0 - 1, x1, y1]))
    except (ElementTree.ParseError, ValueError) as err:
        raise DataError(f"{path}: not a Pascal VOC annotation ({err})") from None
    if Path(image_name).is_absolute() or ".." in Path(image_name).parts:
        raise DataError(f"{path}: filename {image_name!r} must be a plain file name")
    return image_name, objects


def _boxes(boxes: list[list[float]]) -> np.ndarray:
    return np.asarray(boxes, np.float32).reshape(-1, 4)
