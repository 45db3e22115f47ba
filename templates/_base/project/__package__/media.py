"""Image and video inputs: which files are which, opening images safely, and CSV output."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import csv_out
from .errors import DataError
from .limits import check, limit, too_large

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def open_image(path: Path) -> Any:
    """``PIL.Image.open(path)`` after checking the pixel count in its header.

    Pillow reads only the header here; the pixels are decoded later (``convert``,
    ``load``). An image over ``limits.image_megapixels`` is a DataError naming the
    file and the knob, before any pixel is decoded: a 1 MB PNG can declare
    gigabytes. Other failures keep Pillow's types (UnidentifiedImageError, OSError).
    Use it as a context manager, like ``Image.open``.
    """
    from PIL import Image

    # Pillow's own bomb check runs inside open(): a warning above MAX_IMAGE_PIXELS (our
    # check below refuses those, so it is silenced), an error above twice that.
    Image.MAX_IMAGE_PIXELS = limit("image_megapixels")
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as err:  # over twice the cap: Pillow gives the count
        pixels = re.search(r"\((\d+) pixels\)", str(err))
        what = f"the image ({int(pixels[1]):,} pixels)" if pixels else "the image"
        raise DataError(too_large("image_megapixels", path, what)) from None
    try:
        width, height = image.size
        check("image_megapixels", width * height, path, f"the image ({width}x{height} pixels)")
    except BaseException:
        image.close()
        raise
    return image


def expand_inputs(inputs: list[Path],
                  images_in: Callable[[Path], list[Path]] | None = None
                  ) -> tuple[list[Path], list[Path]]:
    """Split files and folders given on the command line into (images, videos).

    ``images_in(folder)`` lists a folder's images (default: every image below it).
    """
    images: list[Path] = []
    videos: list[Path] = []
    for path in inputs:
        if path.is_dir():
            images += images_in(path) if images_in else sorted(
                p for p in path.rglob("*") if is_image(p))
            videos += sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        elif not path.exists():
            raise DataError(f"input {path} does not exist")
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            videos.append(path)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        else:
            raise DataError(f"{path}: not an image ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                            f"or video ({', '.join(sorted(VIDEO_SUFFIXES))})")
    if not images and not videos:
        raise DataError("no images or videos found in the inputs")
    return images, videos


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """A CSV with a header row (formula-like cells neutralised, written atomically)."""
    csv_out.write_csv(path, header, rows)
