"""Medical volumes in one frame: NIfTI (nibabel) and DICOM series (pydicom).

Every reader returns a ``Volume`` whose array is in RAS+ order (indices grow
towards the patient's Right, Anterior and Superior), so axial slices are
``array[:, :, k]`` whatever axis order and direction the scanner stored. The original
affine, shape and orientation are kept, so predictions go back onto the input's
own grid. Resampling and intensity normalisation live here too, because
training, evaluation and prediction must apply exactly the same steps.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError
from .limits import check

NIFTI_SUFFIXES = (".nii.gz", ".nii")
RAS = np.array([[0, 1], [1, 1], [2, 1]], dtype=float)  # nibabel orientation of RAS+ arrays


@dataclass
class Volume:
    """One image or label volume, reoriented to RAS+."""

    data: np.ndarray  # (x, y, z) in RAS+ order
    spacing: tuple[float, float, float]  # mm along the RAS+ axes
    affine: np.ndarray  # the file's own 4x4 RAS affine (for writing results back)
    shape: tuple[int, ...]  # the file's own array shape
    ornt: np.ndarray  # nibabel orientation of the file's axes
    modality: str  # "CT", "MR" or "" when the file does not say
    source: Path

    def to_original(self, canonical: np.ndarray) -> np.ndarray:
        """Put an array in RAS+ order back into the file's axis order."""
        from nibabel.orientations import apply_orientation, ornt_transform

        return apply_orientation(canonical, ornt_transform(RAS, self.ornt))


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES) and not path.name.startswith(".")


def case_name(path: Path) -> str:
    """``case_001.nii.gz`` -> ``case_001``; a DICOM folder keeps its name."""
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_volume(path: Path, *, label: bool = False, modality: str = "") -> Volume:
    """A NIfTI file or a DICOM series folder as a RAS+ ``Volume``."""
    if path.is_dir():
        if label:
            raise DataError(f"{path}: labels must be NIfTI files, not DICOM folders")
        return load_dicom_series(path)
    return load_nifti(path, label=label, modality=modality)


def load_nifti(path: Path, *, label: bool = False, modality: str = "") -> Volume:
    """Read a .nii/.nii.gz with nibabel; DataError naming the file when it is unusable."""
    import nibabel as nib

    if not path.is_file():
        raise DataError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes)")
    try:
        image: Any = nib.load(str(path))  # reads the header only; the voxels come below
    except Exception as err:  # nibabel, gzip and zlib all raise their own types
        reason = str(err).split("\n")[0] or type(err).__name__
        raise DataError(f"cannot read {path}: {reason} (corrupt or not a NIfTI file)") from None
    _check_declared_size(path, image.header)
    try:
        array = np.asarray(image.dataobj)  # applies scl_slope / scl_inter
        affine = np.asarray(image.affine, dtype=np.float64)
    except Exception as err:  # nibabel, gzip and zlib all raise their own types
        reason = str(err).split("\n")[0] or type(err).__name__
        raise DataError(f"cannot read {path}: {reason} (corrupt or not a NIfTI file)") from None
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise DataError(f"{path}: expected a 3D volume, got shape {array.shape} "
                        "(multi-channel volumes are not supported)")
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise DataError(f"{path}: the affine is singular or not finite")
    if not label and not np.all(np.isfinite(array)):
        raise DataError(f"{path}: the image contains NaN or infinite values")
    return _reorient(array, affine, modality, path)


def _check_declared_size(path: Path, header: Any) -> None:
    """Refuse a NIfTI whose header declares more voxels, or more bytes, than it can hold.

    Checked before the voxels are read: the shape against ``limits.volume_megavoxels``,
    then shape x data type against the file's size (a ``.gz`` is decompressed as a
    stream, 1 MB at a time, only as far as the header's claim).
    """
    shape = tuple(int(n) for n in header.get_data_shape())
    voxels = math.prod(shape)
    check("volume_megavoxels", voxels, path, f"the volume ({'x'.join(map(str, shape))} voxels)")
    dtype = header.get_data_dtype()
    needed = int(header.get_data_offset()) + voxels * dtype.itemsize
    if path.name.lower().endswith(".gz"):
        have = 0
        try:
            with gzip.open(path, "rb") as stream:
                while have < needed:
                    chunk = stream.read(min(1 << 20, needed - have))
                    if not chunk:
                        break
                    have += len(chunk)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"cannot read {path}: {err} (corrupt or truncated .gz)") from None
    else:
        have = path.stat().st_size
    if have < needed:
        raise DataError(f"{path}: the header declares {'x'.join(map(str, shape))} "
                        f"{dtype} ({needed} bytes with the header) but the file holds {have} "
                        "(truncated or corrupt)")


def load_dicom_series(folder: Path) -> Volume:
    """One DICOM series: slices sorted by position, rescale applied, spacing kept."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from .images import check_dicom_size

    slices = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            slices.append((path, pydicom.dcmread(path)))
        except InvalidDicomError:
            if path.suffix.lower() == ".dcm":
                raise DataError(f"cannot read DICOM file {path}: not a DICOM file") from None
        except Exception as err:
            raise DataError(f"cannot read DICOM file {path}: {err}") from None
    slices = [(p, ds) for p, ds in slices if "PixelData" in ds]
    if not slices:
        raise DataError(f"{folder} holds no DICOM images")
    series = sorted({str(ds.get("SeriesInstanceUID", "")) for _, ds in slices})
    if len(series) > 1:
        raise DataError(f"{folder} mixes {len(series)} DICOM series ({', '.join(series[:3])}"
                        f"{', ...' if len(series) > 3 else ''}); put each series in its own folder")
    for path, ds in slices:
        for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if tag not in ds:
                raise DataError(f"{path} has no {tag}; cannot place the slice in a volume")
    orientation = np.asarray(slices[0][1].ImageOrientationPatient, dtype=np.float64)
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    positions = [np.asarray(ds.ImagePositionPatient, dtype=np.float64) for _, ds in slices]
    order = np.argsort([float(pos @ normal) for pos in positions])
    slices = [slices[i] for i in order]
    positions = [positions[i] for i in order]
    first = slices[0][1]
    for path, ds in slices:
        if (ds.Rows, ds.Columns) != (first.Rows, first.Columns) or not np.allclose(
                np.asarray(ds.ImageOrientationPatient, dtype=np.float64), orientation, atol=1e-4):
            raise DataError(f"{path}: size or orientation differs from the other slices of "
                            f"{folder}")
    distances = np.array([float(pos @ normal) for pos in positions])
    if len(slices) > 1:
        gaps = np.diff(distances)
        if np.any(gaps < 1e-3):
            raise DataError(f"{folder}: two slices share one position (duplicate files?)")
        if np.ptp(gaps) > 0.1 * np.median(gaps):
            raise DataError(f"{folder}: slice spacing is uneven ({gaps.min():.2f} to "
                            f"{gaps.max():.2f} mm); is a slice missing?")
        step = (positions[-1] - positions[0]) / (len(slices) - 1)
    else:
        thickness = float(first.get("SpacingBetweenSlices", first.get("SliceThickness", 1.0)))
        step = normal * thickness
    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)
    for path, ds in slices:
        check_dicom_size(ds, path)
    check("volume_megavoxels", int(first.Rows) * int(first.Columns) * len(slices), folder,
          f"the series ({len(slices)} slices of {first.Columns}x{first.Rows})")
    planes = []
    for path, ds in slices:
        try:
            pixels = ds.pixel_array.astype(np.float32)
        except Exception as err:
            raise DataError(f"cannot decode pixels of {path}: {err}") from None
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        planes.append(pixels.T * slope + intercept)  # (columns, rows) = (x, y)
    array = np.stack(planes, axis=-1)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_spacing  # moving along a row = next column
    lps[:3, 1] = col_dir * row_spacing
    lps[:3, 2] = step
    lps[:3, 3] = positions[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # DICOM LPS -> NIfTI RAS
    return _reorient(array, affine, str(first.get("Modality", "")), folder)


def _reorient(array: np.ndarray, affine: np.ndarray, modality: str, source: Path) -> Volume:
    import nibabel as nib
    from nibabel.orientations import apply_orientation, io_orientation

    ornt = io_orientation(affine)
    sizes = nib.affines.voxel_sizes(affine)
    spacing = [0.0, 0.0, 0.0]
    for axis, (target, _) in enumerate(ornt):
        spacing[int(target)] = float(sizes[axis])
    return Volume(data=np.ascontiguousarray(apply_orientation(array, ornt)),
                  spacing=(spacing[0], spacing[1], spacing[2]), affine=affine,
                  shape=tuple(array.shape), ornt=ornt, modality=modality.upper(), source=source)


def check_pair(image: Volume, label: Volume) -> None:
    """A label must share its image's grid: same shape and (to 0.01 mm) the same affine."""
    if image.shape != label.shape:
        raise DataError(f"label {label.source} has shape {label.shape} but its image "
                        f"{image.source} has shape {image.shape}")
    if not np.allclose(image.affine, label.affine, atol=1e-2):
        raise DataError(f"label {label.source} has a different affine from its image "
                        f"{image.source} (not on the same voxel grid)")


def label_values(label: Volume, num_classes: int, class_names: list[str]) -> np.ndarray:
    """The label array as uint8, refusing values outside ``0 .. num_classes - 1``."""
    data = label.data
    if not np.issubdtype(data.dtype, np.integer):
        rounded = np.rint(data)
        if not np.allclose(rounded, data, atol=1e-3):
            raise DataError(f"label {label.source} holds non-integer values; "
                            "labels must be class numbers")
        data = rounded
    values = np.unique(data)
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:5])
        raise DataError(f"label {label.source} has value(s) {shown} outside the configured "
                        f"classes 0..{num_classes - 1} ({', '.join(class_names)}); "
                        "fix the label or data.num_classes / dataset.json")
    return data.astype(np.uint8)


def dataset_info(root: Path) -> dict:
    """``dataset.json`` of an MSD folder, or {} when there is none."""
    path = root / "dataset.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not valid JSON: {err}") from None


# ---------------------------------------------------------------- resampling, intensities


def resample_to(array: np.ndarray, shape: tuple[int, ...], order: int,
                source: Path | str = "a volume") -> np.ndarray:
    """Resample ``array`` onto ``shape`` (corner voxels aligned): order 1 images, 0 labels.

    The output size is checked against ``limits.volume_megavoxels`` before it is
    allocated: a few coarse voxels (300 mm each, say) can resample to gigabytes.
    """
    if tuple(array.shape) == tuple(shape):
        return array
    check("volume_megavoxels", math.prod(shape), source,
          f"resampling to {'x'.join(map(str, shape))} voxels")
    from scipy import ndimage

    factors = [t / n for t, n in zip(shape, array.shape, strict=True)]
    dtype = array.dtype if order == 0 else np.float32
    return ndimage.zoom(array.astype(dtype, copy=False), factors, order=order, mode="nearest")


def resampled_shape(shape: tuple[int, ...], spacing: tuple[float, ...],
                    target: tuple[float, ...]) -> tuple[int, int, int]:
    """Shape of a volume after resampling from ``spacing`` to ``target`` mm."""
    return tuple(  # type: ignore[return-value]
        n if abs(s - t) < 1e-3 * t else max(1, round(n * s / t))
        for n, s, t in zip(shape, spacing, target, strict=True))


def detect_normalization(volume: Volume) -> str:
    """``ct_window`` for CT (header or Hounsfield-like range), ``zscore`` otherwise."""
    if volume.modality == "CT":
        return "ct_window"
    if volume.modality.startswith("MR"):
        return "zscore"
    low = float(np.percentile(volume.data[::2, ::2, ::2], 0.5))
    return "ct_window" if low < -500 else "zscore"


# Normalised intensities are stored as uint8 over these ranges (the model maps them back):
# 2 HU steps in a 500 HU CT window, 0.04 standard deviations for z-scores.
INTENSITY_RANGES = {"ct_window": (-1.0, 1.0), "zscore": (-5.0, 5.0)}


def to_uint8(array: np.ndarray, mode: str) -> np.ndarray:
    """Normalised intensities -> uint8 over ``INTENSITY_RANGES[mode]``."""
    low, high = INTENSITY_RANGES[mode]
    scaled = (np.clip(array, low, high) - low) * (255.0 / (high - low))
    return np.rint(scaled).astype(np.uint8)


def normalize(array: np.ndarray, mode: str, window: tuple[float, float]) -> np.ndarray:
    """Intensities to roughly [-1, 1] (CT window) or zero mean, unit std (z-score).

    The z-score uses the statistics of the body only (voxels above the volume's
    mean after clipping outliers), so the amount of air in the field of view and
    the scanner's gain do not change the result.
    """
    data = array.astype(np.float32, copy=False)
    if mode == "ct_window":
        low, high = window
        centre, half = (low + high) / 2, max((high - low) / 2, 1e-3)
        return (np.clip(data, low, high) - centre) / half
    low, high = np.percentile(data[::2, ::2, ::2], (0.5, 99.5))
    data = np.clip(data, low, high)
    body = data[data > data.mean()]
    if body.size < 16:
        body = data.ravel()
    std = float(body.std())
    return np.clip((data - float(body.mean())) / (std if std > 1e-6 else 1.0), -5.0, 5.0)
