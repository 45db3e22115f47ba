"""``python -m PACKAGE predict`` for slice classification: a CSV of class probabilities.

Inputs are DICOM / PNG / JPEG files or folders holding them (searched
recursively). Each is read exactly as in training (rescale, window, size);
``OUT/predictions.csv`` has one row per file: the file, the predicted class and
the probability of every class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import rundir
from .config import Config, get
from .errors import DataError
from .images import SUFFIXES, is_slice_file, parse_window, read_slice
from .media import write_csv


def classify(run: rundir.RunDir, config: Config, meta: dict[str, Any], inputs: list[Path],
             out: Path | None) -> Path:
    """Classify every input image with a classification run; return the output folder."""
    files = expand(inputs)
    size, _, channels = meta["image_shape"]
    window = parse_window(str(get(config, "data.window")))
    images = np.stack([read_slice(path, size, channels, window)[0] for path in files])
    net = rundir.load_model(rundir.model_checkpoint(run))
    rundir.check_model_outputs(net, meta)
    batch_size = int(get(config, "train.batch_size"))
    probabilities = np.asarray(net.predict(images, batch_size=batch_size, verbose=0))
    names = list(meta["class_names"])
    rows = [[str(path), names[int(np.argmax(p))], *(f"{v:.4f}" for v in p)]
            for path, p in zip(files, probabilities, strict=True)]
    out = rundir.output_folder(run, out)
    write_csv(out / "predictions.csv", ["file", "class", *(f"p_{n}" for n in names)], rows)
    for row in rows[:10]:
        print(f"{row[0]}: {row[1]}")
    print(f"{len(rows)} prediction(s) written to {out / 'predictions.csv'}")
    return out


def expand(inputs: list[Path]) -> list[Path]:
    """Image files named directly or found (recursively) inside folders."""
    found: list[Path] = []
    for path in inputs:
        if not path.exists():
            raise DataError(f"input {path} does not exist")
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if is_slice_file(p))
        elif path.suffix.lower() in SUFFIXES:
            found.append(path)
        else:
            raise DataError(f"{path}: not a DICOM or image file ({', '.join(SUFFIXES)})")
    if not found:
        raise DataError(f"no {', '.join(SUFFIXES)} files in the inputs")
    return found
