"""Image and video inputs for ``predict``: which files are which, and CSV output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import csv_out
from .errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


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
