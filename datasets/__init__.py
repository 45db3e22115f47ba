"""Offline sample-data providers, shipped in the wheel as ``appgen.datasets``.

Each provider writes a dataset in one template's data format with
``write(out: Path, *, size: int | None, seed: int) -> str`` and returns a
one-line summary. They import only numpy and friends, never Keras.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

# name -> ("module", "what it writes"); modules load lazily so `appgen list` stays fast.
PROVIDERS: dict[str, tuple[str, str]] = {
    "digits": ("vision_samples", "scikit-learn's 8x8 handwritten digits as PNG class folders"),
    "shapes": ("shapes", "coloured shapes on textured backgrounds with boxes, COCO layout"),
    "faces": ("vision_samples", "scikit-image's LFW subset, face / non_face, as PNG class folders"),
    "roads": ("roads", "procedural road camera frames with steering labels and masks"),
    "road_objects": ("roads", "road frames with traffic: car, pedestrian, sign, light boxes, "
                     "COCO layout"),
    "transactions": ("transactions", "simulated card transactions with injected fraud"),
    "phantoms": ("phantoms", "3D NIfTI phantoms with organ and lesion label maps"),
    "reviews": ("text_samples", "templated movie reviews whose label depends on negation"),
    "phrase_pairs": ("text_pairs", "a rule-based toy language pair for translation"),
    "dialogues": ("dialogues", "templated multi-turn conversations for a small chat model"),
    "phantom_slices": ("phantoms", "DICOM / PNG slice class folders cut from the phantoms"),
}


def get_writer(name: str) -> Callable[..., str]:
    """Return the ``write`` function of the provider called ``name``."""
    if name not in PROVIDERS:
        raise KeyError(f"unknown dataset {name!r}; choose from {', '.join(sorted(PROVIDERS))}")
    module = importlib.import_module(f"{__name__}.{PROVIDERS[name][0]}")
    return getattr(module, f"write_{name}")


__all__ = ["PROVIDERS", "get_writer", "Path"]
