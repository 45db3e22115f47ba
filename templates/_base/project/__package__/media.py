"""Image and video inputs: which files are which, opening images and videos safely, CSV output."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
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


# What a bad image file raises while decoding; DataError: over limits.image_megapixels.
UNREADABLE: tuple[type[BaseException], ...] = (OSError, ValueError, DataError)


def decode_all(files: list[Path], decode: Callable[[Path], tuple[Any, Any, str]], on_bad: str
               ) -> tuple[Any, list[int], list[Any]]:
    """Decode ``files`` in parallel threads with ``decode(path) -> (array | None, extra, error)``.

    A file that gives no array stops with a DataError naming it, or, with ``on_bad ==
    "skip"``, is left out and counted in one warning line. Returns the stacked arrays, the
    indices of the files kept, and each kept file's ``extra``.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2)) as pool:
        decoded = list(pool.map(decode, files))
    bad = [(f, err) for f, (array, _, err) in zip(files, decoded, strict=True) if array is None]
    if bad and on_bad == "error":
        raise DataError(f"cannot read image {bad[0][0]}: {bad[0][1]} "
                        "(fix or remove it, or set data.on_bad_file = \"skip\")")
    if bad:
        print(f"warning: skipped {len(bad)} unreadable image(s), first: {bad[0][0]} ({bad[0][1]})")
    keep = [i for i, (array, _, _) in enumerate(decoded) if array is not None]
    if not keep:
        raise DataError("no readable images left after skipping bad files")
    return np.stack([decoded[i][0] for i in keep]), keep, [decoded[i][1] for i in keep]


def first_line(err: BaseException) -> str:
    """An exception as one line for an error message."""
    return str(err).split("\n")[0] or type(err).__name__


class Video:
    """The frames of one video file, in order, as BGR arrays (OpenCV's order).

    ``with Video(path) as video: for index, frame in video.frames(step): ...`` reads
    every frame and yields every ``step``-th with its index; ``video.fps`` is the
    file's frame rate (25 when it does not say). A file OpenCV cannot open, or whose
    declared frame size is over ``limits.image_megapixels``, is a DataError; one with no
    readable frame is too, when the loop ends (``read`` counts).
    """

    def __init__(self, path: Path) -> None:
        import cv2

        self.path = path
        self.capture = cv2.VideoCapture(str(path))
        if not self.capture.isOpened():
            raise DataError(f"cannot open video {path} (unsupported codec or not a video)")
        # the frame size the container declares, checked before any frame is decoded
        width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        try:
            check("image_megapixels", width * height, path, f"a frame ({width}x{height} pixels)")
        except DataError:
            self.capture.release()
            raise
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 25.0)
        self.read = 0

    def frames(self, step: int = 1) -> Iterator[tuple[int, Any]]:
        while True:
            ok, frame = self.capture.read()
            if not ok:
                break
            self.read += 1
            if (self.read - 1) % step == 0:
                yield self.read - 1, frame
        if not self.read:
            raise DataError(f"video {self.path} has no readable frames")

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc: object) -> None:
        self.capture.release()


def model_frame(frame: Any, width: int, height: int, channels: int = 3) -> Any:
    """A BGR video frame as a model input: resized to ``width`` x ``height``, RGB or grey."""
    import cv2

    frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    if channels == 1:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[..., None]
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


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


def chunks(items: Any, size: int) -> Iterator[list[Any]]:
    """Lists of ``size`` consecutive items (the last may be shorter): a video's frames in
    batches without holding the whole video."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """A CSV with a header row (formula-like cells neutralised, written atomically)."""
    csv_out.write_csv(path, header, rows)
