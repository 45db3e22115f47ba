"""2D medical images for slice classification: DICOM (pydicom) and PNG/JPEG (Pillow).

Every reader returns a uint8 ``(size, size, channels)`` array, the compact form the
model takes. DICOM pixels go through the file's rescale slope/intercept (Hounsfield
units for CT), then a display window: ``data.window`` as ``"low,high"`` in rescaled
units, or ``auto`` (the file's own WindowCenter/WindowWidth, else the image's
min/max), or ``minmax``. MONOCHROME1 images (white = low values) are inverted so
that bright always means dense. PNG/JPEG files are already display images and are
only converted to the configured number of channels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, DataError
from .limits import check
from .media import open_image

DICOM_SUFFIXES = (".dcm", ".dicom")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
SUFFIXES = DICOM_SUFFIXES + PICTURE_SUFFIXES


def is_slice_file(path: Path) -> bool:
    """A file this reader takes (by suffix; hidden files skipped)."""
    return (path.is_file() and path.suffix.lower() in SUFFIXES
            and not path.name.startswith("."))


def parse_window(text: str) -> tuple[float, float] | str:
    """``"auto"``, ``"minmax"`` or ``"low,high"`` -> the mode or the (low, high) pair."""
    text = str(text).strip().lower()
    if text in ("auto", "minmax"):
        return text
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"data.window must be \"auto\", \"minmax\" or \"low,high\" "
                          f"(e.g. \"-160,240\" HU), got {text!r}") from None
    if low >= high:
        raise ConfigError(f"data.window: low must be below high, got {text!r}")
    return low, high


def read_slice(path: Path, size: int, channels: int, window: tuple[float, float] | str
               ) -> tuple[np.ndarray, str]:
    """``(uint8 (size, size, channels) image, patient id or "")`` of one file."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        grey, patient = _read_dicom(path, window)
        image = np.repeat(grey[..., None], channels, axis=-1)
    else:
        image, patient = _read_picture(path, channels), ""
    return _resize(image, size), patient


def _read_dicom(path: Path, window: tuple[float, float] | str) -> tuple[np.ndarray, str]:
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except Exception as err:  # pydicom raises several types for truncated or foreign files
        reason = str(err).split("\n")[0] or type(err).__name__
        raise DataError(f"cannot read DICOM file {path}: {reason}") from None
    check_dicom_size(ds, path)
    try:
        pixels = ds.pixel_array.astype(np.float32)
    except Exception as err:
        reason = str(err).split("\n")[0] or type(err).__name__
        raise DataError(f"cannot read DICOM file {path}: {reason}") from None
    if pixels.ndim == 3 and int(ds.get("SamplesPerPixel", 1)) == 1:
        pixels = pixels[len(pixels) // 2]  # a multi-frame file: its middle frame
    if pixels.ndim != 2:
        raise DataError(f"{path}: expected one greyscale image, got pixel array "
                        f"{pixels.shape} ({ds.get('PhotometricInterpretation', '?')})")
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    values = pixels * slope + intercept
    low, high = _window(ds, values, window)
    grey = np.clip((values - low) / max(high - low, 1e-6), 0.0, 1.0)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        grey = 1.0 - grey
    return np.rint(grey * 255.0).astype(np.uint8), str(ds.get("PatientID", "") or "")


def check_dicom_size(ds: Any, path: Path) -> None:
    """Refuse a DICOM whose Rows x Columns (x frames) is over the limits, before decoding.

    Compressed pixel data (JPEG 2000, RLE) can declare far more pixels than the file
    holds bytes; the header's numbers are checked against ``limits.image_megapixels``
    per frame and ``limits.volume_megavoxels`` for all frames together.
    """
    try:
        rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        raise DataError(f"{path}: Rows, Columns or NumberOfFrames is not a number") from None
    check("image_megapixels", rows * columns, path, f"the image ({columns}x{rows} pixels)")
    check("volume_megavoxels", rows * columns * frames, path,
          f"the pixel data ({frames} frames of {columns}x{rows})")


def _window(ds: object, values: np.ndarray, window: tuple[float, float] | str
            ) -> tuple[float, float]:
    if isinstance(window, tuple):
        return window
    if window == "auto":
        centre, width = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
        if centre is not None and width is not None:
            # multi-valued windows (several presets): the first one
            centre = float(centre[0] if hasattr(centre, "__len__") and not isinstance(
                centre, str) else centre)
            width = float(width[0] if hasattr(width, "__len__") and not isinstance(
                width, str) else width)
            if width > 0:
                return centre - width / 2, centre + width / 2
    return float(values.min()), float(values.max())


def _read_picture(path: Path, channels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with open_image(path) as picture:
            if picture.mode in ("I;16", "I;16B", "I", "F"):  # 16-bit PNG: scale to 8 bits
                array = np.asarray(picture, dtype=np.float32)
                span = max(float(array.max() - array.min()), 1e-6)
                picture = Image.fromarray(np.rint((array - array.min()) / span * 255)
                                          .astype(np.uint8))
            image = np.asarray(picture.convert("L" if channels == 1 else "RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"cannot read image {path}: {err}") from None
    return image[..., None] if channels == 1 else image


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if image.shape[:2] != (size, size):
        shrink = min(image.shape[:2]) > size
        image = cv2.resize(image, (size, size),
                           interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if image.ndim == 2:
            image = image[..., None]
    return np.ascontiguousarray(image)
