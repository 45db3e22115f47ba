"""Slice classification data: class folders of DICOM / PNG files -> uint8 batches.

    data.dir/<class>/*.{dcm,png,jpg}      (or data.dir/train/<class>/..., val/ beside it)
    data.val_dir/<class>/...              optional separate validation set

Slices of one patient are strongly alike, so a split per slice would score the
model on patients it trained on. The split is made per patient instead: the
DICOM PatientID, else the file-name prefix before the first ``_``
(``P007_slice12.png`` -> ``P007``), as ``data.group_by`` says.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from . import class_folders
from .class_folders import class_root, find_classes
from .config import Config, choice, get
from .errors import ConfigError, DataError
from .images import SUFFIXES, is_slice_file, parse_window, read_slice
from .overlap import warn_overlap
from .pipeline import Batches, Splits

GROUPINGS = ("auto", "file")


def load_splits(config: Config, *, batch_size: int) -> Splits:
    """Training and validation slices, split per patient unless ``data.val_dir`` is set."""
    root = class_root(Path(get(config, "data.dir")))
    class_names = find_classes(root, "*.dcm|png|jpg")
    files, labels = list_files(root, class_names)
    images, groups = read_all(config, files)
    val_dir = str(get(config, "data.val_dir"))
    if not val_dir and (root.parent / "val").is_dir() and root.name == "train":
        val_dir = str(root.parent / "val")
    if val_dir:
        val_files, val_labels = list_files(class_root(Path(val_dir)), class_names, strict=False)
        val_images, val_groups = read_all(config, val_files)
        train_images, train_labels, train_groups = images, labels, groups
        shared = sorted(set(train_groups) & set(val_groups) - {""})
        if shared:
            raise DataError(f"patient {shared[0]} has slices in {root} and in {val_dir}; "
                            "a patient must not be in training and validation")
    else:
        if choice(config, "data.group_by", GROUPINGS) == "auto":
            warn_per_file(files, groups)
        train_index, val_index = split_by_group(groups, labels,
                                                float(get(config, "data.val_fraction")),
                                                int(get(config, "runtime.seed")))
        train_images, train_labels = images[train_index], labels[train_index]
        val_images, val_labels = images[val_index], labels[val_index]
        train_groups = [groups[i] for i in train_index]
        val_groups = [groups[i] for i in val_index]
    warn_overlap(train_images, val_images, what="slices")
    size, channels = images.shape[1], images.shape[3]
    counts = np.bincount(train_labels, minlength=len(class_names))
    meta = {
        "task": "classification", "class_names": class_names,
        "num_classes": len(class_names), "image_shape": [size, size, channels],
        "window": str(get(config, "data.window")),
        "train_patients": len(set(train_groups)), "val_patients": len(set(val_groups)),
        "val_groups": sorted(set(val_groups)),
        "summary": (f"{len(train_labels)} training slices of {len(set(train_groups))} patients, "
                    f"{len(val_labels)} validation slices of {len(set(val_groups))}, "
                    f"{len(class_names)} classes ("
                    + ", ".join(f"{n} {c}" for n, c in zip(class_names, counts, strict=True))
                    + f"), {size}x{size}x{channels}"),
    }
    seed = int(get(config, "runtime.seed"))
    return Splits(Batches(train_images, train_labels, batch_size, training=True, seed=seed),
                  Batches(val_images, val_labels, batch_size, training=False), meta)


def load_eval(config: Config, path: Path, meta: dict[str, Any], *, batch_size: int) -> Batches:
    """Labelled class folders elsewhere, read exactly as in training."""
    files, labels = list_files(class_root(Path(path)), list(meta["class_names"]), strict=False)
    images, _ = read_all(config, files)
    return Batches(images, labels, batch_size, training=False)


def list_files(root: Path, class_names: list[str], *, strict: bool = True
               ) -> tuple[list[Path], np.ndarray]:
    """Every slice file of each class folder, with its class index.

    ``strict``: every class folder must exist and hold images (training data);
    otherwise (validation, evaluation) folders of unknown classes are refused and
    missing ones allowed.
    """
    return class_folders.list_files(root, class_names, is_slice_file, ", ".join(SUFFIXES),
                                    training=strict)


def read_all(config: Config, files: list[Path]) -> tuple[np.ndarray, list[str]]:
    """uint8 ``(N, size, size, channels)`` images and one patient id per file."""
    size = int(get(config, "data.image_size"))
    channels = int(get(config, "data.channels"))
    if size < 16 or channels not in (1, 3):
        raise ConfigError(f"data.image_size must be >= 16 and data.channels 1 or 3, got "
                          f"{size} and {channels}")
    window = parse_window(str(get(config, "data.window")))
    grouping = choice(config, "data.group_by", GROUPINGS)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        read = list(pool.map(lambda p: read_slice(p, size, channels, window), files))
    groups = [group_of(path, patient, grouping) for path, (_, patient) in zip(files, read,
                                                                              strict=True)]
    return np.stack([image for image, _ in read]), groups


def group_of(path: Path, patient_id: str, grouping: str) -> str:
    """Patient of one slice: DICOM PatientID, else the name before the first ``_``."""
    if grouping == "file":
        return str(path)
    if patient_id:
        return patient_id
    stem = path.stem
    return stem.split("_", 1)[0] if "_" in stem else str(path)


def warn_per_file(files: list[Path], groups: list[str]) -> int:
    """One warning line when slices had no patient to group by (split per file); their count."""
    alone = sum(group == str(path) for path, group in zip(files, groups, strict=True))
    if alone:
        print(f"warning: {alone} of {len(files)} slices have no DICOM PatientID and no patient "
              "prefix before '_' in their name (like P007_slice12.png), so the split is per "
              "file for them: slices of one patient may sit in both training and validation",
              flush=True)
    return alone


def split_by_group(groups: list[str], labels: np.ndarray, fraction: float, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): whole patients, about ``fraction`` of the slices in val.

    Patients are drawn in a random order until validation holds its share; the
    draw is repeated (a few seeds) to give validation every class when it can.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"data.val_fraction must be between 0 and 1, got {fraction}")
    names = sorted(set(groups))
    if len(names) < 2:
        raise DataError(f"all {len(groups)} slices come from one patient ({names[0]}); "
                        "a per-patient split needs two or more (or set data.val_dir, or "
                        "data.group_by = \"file\" if the slices are independent)")
    member = np.array([names.index(g) for g in groups])
    sizes = np.bincount(member, minlength=len(names))
    for attempt in range(20):
        order = np.random.default_rng((seed, attempt)).permutation(len(names))
        held = np.cumsum(sizes[order]) <= max(fraction * len(groups), sizes[order[0]])
        held[0], held[-1] = True, False  # at least one patient on each side
        in_val = np.isin(member, order[held])
        if len(np.unique(labels[in_val])) == len(np.unique(labels)):
            break  # otherwise keep the last draw: some class has too few patients
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)
