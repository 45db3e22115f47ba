"""keras-hub presets known to fit each template's ``model.preset`` or ``model.encoder``
(static data).

The generator never imports Keras or keras-hub, so this is a plain table: parameter
counts are keras-hub 0.32's preset metadata; sizes are float32 weights (4 bytes a
parameter, what the download roughly weighs). Every preset here goes through the same
``from_preset`` route that CI exercises offline with tiny presets saved by
``save_to_preset()``; the named ones themselves need the network to download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Preset:
    """One keras-hub preset and what it expects."""

    name: str
    task: str
    parameters: int
    expected_input: str
    key: str = "model.preset"  # the config key it goes into (U-Nets: model.encoder)

    @property
    def size_mb(self) -> int:
        """Approximate download size of the float32 weights, in MB."""
        return round(self.parameters * 4 / 1e6)


_IMAGE = "RGB images, resized to {side}x{side} by the preset's image converter"
_TEXT = "English text, lowercased WordPiece, up to 512 tokens (data.sequence_length)"
_BPE = "any text, byte-level BPE, up to 1024 tokens; model.lora_rank for LoRA"
_GEMMA = "any text, SentencePiece (gated: accept the licence on Kaggle); model.lora_rank"
_ENCODER = ("{what}, the converter's ImageNet scale/offset (no resizing), padded to a "
            "multiple of 32; P2..P5 feed the U-Net's skips")
_FRAMES = _ENCODER.format(what="RGB frames")
_SLICES = _ENCODER.format(what="2D slices (grey repeated to RGB)")
_DETECTOR = ("RGB {what} letterboxed to data.image_size, the converter's ImageNet "
             "scale/offset; P3..P5 feed RetinaNet's FPN")
_BART = ("sentence pairs, byte-level BPE (English-pretrained), up to 256 tokens a side; "
         "model.lora_rank")

PRESETS: dict[str, tuple[Preset, ...]] = {
    "vision": (
        Preset("mobilenet_v3_small_100_imagenet", "classification", 939_120,
               _IMAGE.format(side=224)),
        Preset("efficientnet_b0_ra_imagenet", "classification", 5_288_548,
               _IMAGE.format(side=224)),
        Preset("resnet_18_imagenet", "classification", 11_186_112, _IMAGE.format(side=224)),
        Preset("resnet_50_imagenet", "classification", 23_561_152, _IMAGE.format(side=224)),
        Preset("vit_base_patch16_224_imagenet", "classification", 85_798_656,
               _IMAGE.format(side=224)),
        Preset("resnet_18_imagenet", "detection", 11_186_112, _DETECTOR.format(what="images")),
        Preset("resnet_50_imagenet", "detection", 23_561_152, _DETECTOR.format(what="images")),
    ),
    "nlp": (
        Preset("bert_tiny_en_uncased", "classification", 4_385_920, _TEXT),
        Preset("bert_small_en_uncased", "classification", 28_763_648, _TEXT),
        Preset("distil_bert_base_en_uncased", "classification", 66_362_880, _TEXT),
        Preset("bert_base_en_uncased", "classification", 109_482_240, _TEXT),
        Preset("gpt2_base_en", "causal_lm", 124_439_808, _BPE),
        Preset("gpt2_medium_en", "causal_lm", 354_823_168, _BPE),
        Preset("gemma3_1b", "causal_lm", 999_885_952, _GEMMA),
        Preset("bart_base_en", "translation", 139_417_344, _BART),
        Preset("bart_large_en", "translation", 406_287_360, _BART),
    ),
    # U-Net encoders (model.encoder): image backbones with a feature pyramid at strides 4..32
    "driving": (
        Preset("resnet_18_imagenet", "segmentation", 11_186_112, _FRAMES, "model.encoder"),
        Preset("resnet_50_imagenet", "segmentation", 23_561_152, _FRAMES, "model.encoder"),
        Preset("resnet_18_imagenet", "detection", 11_186_112, _DETECTOR.format(what="frames")),
    ),
    "medical": (
        Preset("resnet_18_imagenet", "segmentation", 11_186_112, _SLICES, "model.encoder"),
        Preset("resnet_50_imagenet", "segmentation", 23_561_152, _SLICES, "model.encoder"),
    ),
}


def presets_for(template: str) -> tuple[Preset, ...]:
    """The presets listed for ``template`` (empty when it takes none)."""
    return PRESETS.get(template, ())


def usage(known: tuple[Preset, ...] | list[Preset]) -> str:
    """Which config key takes which tasks' presets: ``model.preset (classification)``."""
    tasks: dict[str, list[str]] = {}
    for preset in known:
        if preset.task not in tasks.setdefault(preset.key, []):
            tasks[preset.key].append(preset.task)
    return " or ".join(f"{key}=NAME ({', '.join(names)})" for key, names in tasks.items())


def kagglehub_cache() -> Path:
    """Where KaggleHub (keras-hub's downloader) caches presets: ``$KAGGLEHUB_CACHE``,
    else ``~/.cache/kagglehub``."""
    configured = os.environ.get("KAGGLEHUB_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "kagglehub"
