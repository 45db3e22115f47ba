"""Segmentation data: MSD folders or DICOM series -> normalised axial slices -> batches.

    data.dir/imagesTr/<case>.nii.gz    (also <case>_0000.nii.gz, or <case>/ = a DICOM series)
    data.dir/labelsTr/<case>.nii.gz    label map on the image's voxel grid
    data.dir/dataset.json              optional: class names ("labels") and "modality"

Every volume is reoriented to RAS+, resampled to ``data.spacing``, normalised
(CT window in Hounsfield units or per-volume z-score), padded to one in-plane
size and cut into axial slices stored as uint8 (``volumes.to_uint8``; the model
maps them back to normalised units). The split is made per volume,
never per slice, so no subject is seen in training and validation both.
"""

from __future__ import annotations

import filecmp
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, choice, get
from .errors import ConfigError, DataError
from .overlap import warn_overlap
from .pipeline import Batches, Splits
from .volumes import (
    Volume,
    case_name,
    check_pair,
    dataset_info,
    detect_normalization,
    is_nifti,
    label_values,
    load_volume,
    normalize,
    resample_to,
    resampled_shape,
    to_uint8,
)

NORMALIZATIONS = ("auto", "ct_window", "zscore")
TASKS = ("segmentation", "classification")


@dataclass(frozen=True)
class Case:
    """One subject: its image (NIfTI file or DICOM folder) and label file."""

    name: str
    image: Path
    label: Path | None


class SliceBatches(Batches):
    """Training slices, drawn each epoch with foreground slices over-represented."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, *,
                 weights: np.ndarray, **kwargs: Any) -> None:
        self.weights = weights
        super().__init__(images, labels, batch_size, training=True, **kwargs)

    def on_epoch_end(self) -> None:
        rng = np.random.default_rng((self.seed, self.epoch))
        self.order = rng.choice(len(self.targets), size=len(self.targets), p=self.weights)
        self.epoch += 1


class VolumeBatches(Batches):
    """Evaluation batches that know the volumes they come from, for per-volume scores.

    ``cases`` names the volumes. 2D: ``volume_ids`` gives each slice's volume (an index
    into ``cases``). 3D: ``volumes`` holds the whole (image, label) volumes the patches
    tile, for the report's sliding window.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, *,
                 cases: list[str], volume_ids: np.ndarray | None = None,
                 volumes: list[tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        super().__init__(images, labels, batch_size, training=False)
        self.cases = cases
        self.volume_ids = volume_ids
        self.volumes = volumes


def load_splits(config: Config, *, batch_size: int) -> Splits:
    """Training and validation slices plus what the model and predict need to know."""
    if choice(config, "data.task", TASKS) == "classification":
        from . import classify_data

        return classify_data.load_splits(config, batch_size=batch_size)
    root = Path(get(config, "data.dir"))
    cases = find_cases(root)
    cap = int(get(config, "data.max_cases"))
    val_dir = str(get(config, "data.val_dir"))
    if val_dir:
        train_cases = cases[:cap] if cap > 0 else cases
        val_cases = find_cases(Path(val_dir))
        _refuse_shared_volumes(train_cases, val_cases)
    else:
        train_cases, val_cases = split_cases(cases[:cap] if cap > 0 else cases,
                                             float(get(config, "data.val_fraction")),
                                             int(get(config, "runtime.seed")))
    info = dataset_info(root)
    train = _read_cases(train_cases, info)
    val = _read_cases(val_cases, dataset_info(Path(val_dir)) if val_dir else info)
    warn_overlap([image for image, _ in train], [image for image, _ in val], what="volumes",
                 names=[case.name for case in val_cases])
    class_names = _class_names(config, info, [label for _, label in train + val])
    meta = _preprocessing(config, [image for image, _ in train], class_names)
    meta.update(train_cases=[c.name for c in train_cases], val_cases=[c.name for c in val_cases])
    if meta["dims"] == 3:
        return _patch_splits(config, meta, _prepared(train, meta), _prepared(val, meta),
                             batch_size)

    train_images, train_labels, _ = _slices(train, meta)
    meta["slice_shape"] = list(train_images.shape[1:3])
    val_images, val_labels, volume_ids = _slices(val, meta)
    meta["summary"] = (f"{len(train_cases)} training and {len(val_cases)} validation volumes, "
                       f"{len(class_names)} classes, {meta['normalize']}, spacing "
                       + "x".join(f"{s:.2g}" for s in meta["spacing"]) + " mm, slices "
                       + "x".join(map(str, meta["slice_shape"])))
    from .augment import batch_transform

    foreground = np.asarray(train_labels.reshape(len(train_labels), -1).any(axis=1))
    seed = int(get(config, "runtime.seed"))
    train_batches = SliceBatches(
        train_images, train_labels, batch_size, seed=seed,
        weights=slice_weights(foreground, float(get(config, "data.foreground_fraction"))),
        transform=batch_transform(config, meta))
    val_batches = VolumeBatches(val_images, val_labels, batch_size, cases=meta["val_cases"],
                                volume_ids=volume_ids)
    return Splits(train_batches, val_batches, meta)


def load_validation(config: Config, meta: dict[str, Any], *, batch_size: int) -> Batches:
    """The run's validation data for ``evaluate``, prepared as the run recorded it.

    Segmentation: the volumes named in meta's ``val_cases``, resampled to the recorded
    spacing, normalised with the recorded mode and padded to the recorded slice shape,
    never re-decided from today's training volumes. Classification learns nothing from
    its training slices, so its split is drawn again as in training.
    """
    if meta.get("task") == "classification":
        from . import classify_data

        return classify_data.load_splits(config, batch_size=batch_size).val
    val_dir = str(get(config, "data.val_dir"))
    folder = Path(val_dir) if val_dir else Path(get(config, "data.dir"))
    by_name = {case.name: case for case in find_cases(folder)}
    missing = [name for name in meta["val_cases"] if name not in by_name]
    if missing:
        raise DataError(f"validation case {missing[0]} of this run is no longer in {folder}")
    val = _read_cases([by_name[name] for name in meta["val_cases"]], dataset_info(folder))
    if meta["dims"] == 3:
        return _volume_batches(_prepared(val, meta), meta, meta["val_cases"], batch_size)
    images, labels, volume_ids = _slices(val, meta)
    return VolumeBatches(images, labels, batch_size, cases=meta["val_cases"],
                         volume_ids=volume_ids)


def load_eval(config: Config, path: Path, meta: dict[str, Any], *, batch_size: int) -> Batches:
    """Labelled volumes of another MSD folder, prepared exactly as in training."""
    if meta.get("task") == "classification":
        from . import classify_data

        return classify_data.load_eval(config, path, meta, batch_size=batch_size)
    cases = find_cases(Path(path))
    volumes = _read_cases(cases, dataset_info(Path(path)))
    for _, label in volumes:
        label_values(label, int(meta["num_classes"]), list(meta["class_names"]))
    if int(meta.get("dims", 2)) == 3:
        return _volume_batches(_prepared(volumes, meta), meta, [c.name for c in cases],
                               batch_size)
    images, labels, volume_ids = _slices(volumes, meta)
    return VolumeBatches(images, labels, batch_size, cases=[c.name for c in cases],
                         volume_ids=volume_ids)


# ----------------------------------------------------------------------------- discovery


def find_cases(root: Path, *, need_labels: bool = True) -> list[Case]:
    """Pair ``imagesTr`` entries with ``labelsTr`` files by case name."""
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist (set data.dir in config.toml)")
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    if not images_dir.is_dir():
        raise DataError(f"{root} has no imagesTr/ folder; expected {root}/imagesTr/<case>.nii.gz "
                        f"(or DICOM series folders) and {root}/labelsTr/<case>.nii.gz")
    images: dict[str, Path] = {}
    for entry in sorted(images_dir.iterdir()):
        if entry.name.startswith("."):  # MSD archives carry macOS '._' files
            continue
        if entry.is_dir() or is_nifti(entry):
            name = case_name(entry)
            name = name[:-5] if name.endswith("_0000") and not entry.is_dir() else name
            images[name] = entry
    if not images:
        raise DataError(f"{images_dir} holds no .nii.gz files or DICOM series folders")
    labels = ({case_name(p): p for p in sorted(labels_dir.iterdir()) if is_nifti(p)}
              if labels_dir.is_dir() else {})
    if need_labels:
        if not labels:
            raise DataError(f"{root} has no labelsTr/ with .nii.gz label maps")
        missing = sorted(set(images) - set(labels))
        if missing:
            raise DataError(f"image {images[missing[0]]} has no label "
                            f"{labels_dir / (missing[0] + '.nii.gz')}")
        orphans = sorted(set(labels) - set(images))
        if orphans:
            raise DataError(f"label {labels[orphans[0]]} has no image in {images_dir}")
    return [Case(name, images[name], labels.get(name)) for name in sorted(images)]


def _refuse_shared_volumes(train: list[Case], val: list[Case]) -> None:
    """The same image file (or an identical copy) must not be in training and validation."""
    by_name = {c.name: c for c in train}
    for case in val:
        other = by_name.get(case.name)
        if other is None:
            continue
        if other.image.resolve() == case.image.resolve() or (
                other.image.is_file() and case.image.is_file()
                and filecmp.cmp(other.image, case.image, shallow=False)):
            raise DataError(f"{case.image} is the same volume as training case {other.image}; "
                            "a subject must not be in training and validation")
        print(f"warning: training and validation both have a case named {case.name} "
              "(different files); make sure they are different subjects")


def split_cases(cases: list[Case], fraction: float, seed: int) -> tuple[list[Case], list[Case]]:
    """Hold out whole volumes (about ``fraction`` of them, at least one)."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"data.val_fraction must be between 0 and 1, got {fraction}")
    if len(cases) < 2:
        raise DataError(f"need at least 2 volumes to hold one out for validation, found "
                        f"{len(cases)}; add volumes or set data.val_dir")
    order = np.random.default_rng(seed).permutation(len(cases))
    count = min(len(cases) - 1, max(1, round(len(cases) * fraction)))
    val = sorted(order[:count])
    return ([c for i, c in enumerate(cases) if i not in set(val)], [cases[i] for i in val])


def slice_weights(foreground: np.ndarray, fraction: float) -> np.ndarray:
    """Sampling probability per slice so that about ``fraction`` of draws show foreground."""
    count = len(foreground)
    hits = int(foreground.sum())
    if hits in (0, count):
        return np.full(count, 1.0 / count)
    share = max(hits / count, min(max(fraction, 0.0), 1.0))
    return np.where(foreground, share / hits, (1.0 - share) / (count - hits))


# ---------------------------------------------------------------------------- reading


def _read_cases(cases: list[Case], info: dict) -> list[tuple[Volume, Volume]]:
    modality = " ".join(str(v) for v in (info.get("modality") or {}).values()).upper()
    modality = "CT" if "CT" in modality else ("MR" if modality else "")

    def read(case: Case) -> tuple[Volume, Volume]:
        if case.label is None:
            raise DataError(f"image {case.image} has no label file")
        image = load_volume(case.image, modality=modality)
        label = load_volume(case.label, label=True)
        check_pair(image, label)
        return image, label

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(read, cases))


def _class_names(config: Config, info: dict, labels: list[Volume]) -> list[str]:
    asked = get(config, "data.num_classes")
    named = info.get("labels") or {}
    try:
        names = [str(named[k]) for k in sorted(named, key=int)] if named else []
    except ValueError:
        raise DataError("dataset.json 'labels' keys must be class numbers") from None
    if asked == "auto":
        count = len(names) or 1 + max(int(np.max(label.data)) for label in labels)
    elif isinstance(asked, int) and not isinstance(asked, bool) and asked >= 2:
        count = asked
    else:
        raise ConfigError(f"data.num_classes must be \"auto\" or an integer >= 2, got {asked!r}")
    if count < 2:
        raise DataError("the label maps hold background only; nothing to segment")
    names = (names + [f"class_{i}" for i in range(len(names), count)])[:count]
    names[0] = names[0] or "background"
    for label in labels:
        label.data = label_values(label, count, names)
    return names


def _preprocessing(config: Config, images: list[Volume], class_names: list[str]
                   ) -> dict[str, Any]:
    """Decide (once, from the training volumes) spacing and normalisation; goes into meta."""
    mode = choice(config, "data.normalize", NORMALIZATIONS)
    if mode == "auto":
        votes = [detect_normalization(v) for v in images]
        mode = max(set(votes), key=votes.count)
    window = [float(v) for v in get(config, "data.ct_window")]
    if len(window) != 2 or window[0] >= window[1]:
        raise ConfigError(f"data.ct_window must be [low, high] in HU, got {window}")
    asked = [float(v) for v in get(config, "data.spacing")]
    if len(asked) != 3 or min(asked) < 0:
        raise ConfigError(f"data.spacing must be 3 numbers in mm (0 = auto), got {asked}")
    spacings = np.array([v.spacing for v in images])
    spacing = [a if a > 0 else float(m) for a, m in zip(asked, np.median(spacings, axis=0),
                                                         strict=True)]
    max_size = int(get(config, "data.max_size"))
    if max_size > 0:
        # Coarsen auto spacing so slices have at most max_size pixels a side, and the slice
        # spacing by the same factor (isotropic scans would otherwise give 2x more slices).
        extent = np.median([np.multiply(v.data.shape, v.spacing) for v in images], axis=0)
        factors = [max(1.0, extent[axis] / spacing[axis] / max_size) if asked[axis] == 0
                   else 1.0 for axis in (0, 1)]
        spacing[0], spacing[1] = spacing[0] * factors[0], spacing[1] * factors[1]
        if asked[2] == 0:
            spacing[2] *= min(factors)
    depth = int(get(config, "model.depth"))
    dims = int(get(config, "model.dims"))
    if dims not in (2, 3):
        raise ConfigError(f"model.dims must be 2 (slices) or 3 (patches), got {dims}")
    patch = [int(v) for v in get(config, "data.patch_3d")]
    if dims == 3 and (len(patch) != 3 or any(p < 2 ** (depth - 1) or p % 2 ** (depth - 1)
                                             for p in patch)):
        raise ConfigError(f"data.patch_3d must be 3 sides that are multiples of "
                          f"2**(model.depth - 1) = {2 ** (depth - 1)}, got {patch}")
    multiple = 2 ** (depth - 1)
    if str(get(config, "model.encoder")):  # a pretrained encoder's deepest stride (P5)
        from .encoder import MAX_STRIDE

        multiple = MAX_STRIDE
    patch_size = int(get(config, "data.patch_size"))
    if dims == 2 and patch_size % multiple:
        raise ConfigError(f"data.patch_size must be a multiple of {multiple} (the U-Net's "
                          f"deepest stride), got {patch_size}")
    return {"task": "segmentation", "dims": dims, "patch_3d": patch,
            "overlap": float(get(config, "predict.overlap")),
            "blend": choice(config, "predict.blend", ("gaussian", "mean")),
            "class_names": class_names,
            "num_classes": len(class_names), "normalize": mode,
            "ct_window": window, "spacing": [round(s, 4) for s in spacing],
            "multiple": multiple, "patch_size": patch_size,
            "channels": 1}


def prepare_image(image: Volume, meta: dict[str, Any]) -> np.ndarray:
    """RAS+ image -> resampled to meta's spacing -> normalised -> uint8 (x, y, z)."""
    shape = resampled_shape(image.data.shape, image.spacing, tuple(meta["spacing"]))
    data = resample_to(image.data, shape, order=1, source=image.source)
    return to_uint8(normalize(data, meta["normalize"], tuple(meta["ct_window"])),
                    meta["normalize"])


def padded_shape(shape: tuple[int, ...], meta: dict[str, Any],
                 at_least: tuple[int, ...] = (0, 0)) -> tuple[int, int]:
    """In-plane size rounded up to the model's multiple (and to ``at_least``)."""
    multiple, patch = int(meta["multiple"]), int(meta.get("patch_size", 0))
    sides = [-(-max(n, m, patch) // multiple) * multiple
             for n, m in zip(shape[:2], at_least, strict=True)]
    return sides[0], sides[1]


def pad_slices(volume: np.ndarray, size: tuple[int, int], value: float) -> np.ndarray:
    """Centre (x, y, ...) in a ``size`` plane, filling with ``value``."""
    pads = [((t - n) // 2, t - n - (t - n) // 2) for n, t in zip(volume.shape[:2], size,
                                                                 strict=True)]
    pads += [(0, 0)] * (volume.ndim - 2)
    return np.pad(volume, pads, constant_values=value)


def _prepared(volumes: list[tuple[Volume, Volume]], meta: dict[str, Any]
              ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every (image, label) resampled and normalised: uint8 (x, y, z) pairs."""
    def prepare(pair: tuple[Volume, Volume]) -> tuple[np.ndarray, np.ndarray]:
        image = prepare_image(pair[0], meta)
        return image, resample_to(pair[1].data, image.shape, order=0)

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(prepare, volumes))


def _slices(volumes: list[tuple[Volume, Volume]], meta: dict[str, Any]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axial slices of every volume as (N, x, y, 1) uint8, (N, x, y) uint8, volume index."""
    prepared = _prepared(volumes, meta)
    size = tuple(int(n) for n in meta.get("slice_shape", (0, 0)))
    size = padded_shape(tuple(np.max([img.shape for img, _ in prepared], axis=0)), meta, size)
    images, labels, ids = [], [], []
    for index, (image, label) in enumerate(prepared):
        images.append(pad_slices(image, size, int(image.min())).transpose(2, 0, 1))
        labels.append(pad_slices(label, size, 0).transpose(2, 0, 1))
        ids.append(np.full(image.shape[2], index))
    return (np.concatenate(images)[..., None], np.concatenate(labels),
            np.concatenate(ids))


# ------------------------------------------------------------------------ 3D patches


def _patch_splits(config: Config, meta: dict[str, Any],
                  train: list[tuple[np.ndarray, np.ndarray]],
                  val: list[tuple[np.ndarray, np.ndarray]], batch_size: int) -> Splits:
    """Random foreground-aware patches for training; whole volumes (tiled) for validation."""
    from .patches import training_batches

    patch = tuple(meta["patch_3d"])
    per_volume = int(get(config, "data.patches_per_volume"))
    train_batches = training_batches(
        [image for image, _ in train], [label for _, label in train], patch, per_volume,
        float(get(config, "data.foreground_fraction")), batch_size,
        int(get(config, "runtime.seed")))
    meta["summary"] = (f"{len(train)} training and {len(val)} validation volumes, "
                       f"{meta['num_classes']} classes, {meta['normalize']}, spacing "
                       + "x".join(f"{s:.2g}" for s in meta["spacing"]) + " mm, 3D patches "
                       + "x".join(map(str, patch)) + f", {per_volume} per volume and epoch")
    return Splits(train_batches, _volume_batches(val, meta, meta["val_cases"], batch_size),
                  meta)


def _volume_batches(volumes: list[tuple[np.ndarray, np.ndarray]], meta: dict[str, Any],
                    cases: list[str], batch_size: int) -> VolumeBatches:
    """Non-overlapping patches tiling every volume (the val_dice metric during fit),
    with the volumes themselves attached for the report's sliding-window scores."""
    from .patches import tiles

    patch = tuple(meta["patch_3d"])
    images, labels = [], []
    for image, label in volumes:
        images.append(tiles(image, patch, int(image.min()))[0])
        labels.append(tiles(label, patch, 0)[0])
    return VolumeBatches(np.concatenate(images)[..., None], np.concatenate(labels),
                         batch_size, cases=cases, volumes=volumes)
