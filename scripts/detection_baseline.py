"""The baseline of issue #17: keras-hub's RetinaNet built as keras-hub's object-detection
guide builds it, trained on the shapes sample for a given CPU time, scored like ours.

The guide is keras-io's ``guides/keras_hub/object_detection_retinanet.py`` ("Object
Detection with KerasHub", section "Custom training object detector"):

    image_converter = keras_hub.layers.RetinaNetImageConverter(scale=1 / 255)
    preprocessor = keras_hub.models.RetinaNetObjectDetectorPreprocessor(image_converter=...)
    image_encoder = keras_hub.models.Backbone.from_preset("resnet_50_imagenet")
    backbone = keras_hub.models.RetinaNetBackbone(image_encoder, min_level=3, max_level=5,
                                                  use_p5=True)
    model = keras_hub.models.RetinaNetObjectDetector(
        backbone=..., num_classes=..., preprocessor=..., use_prediction_head_norm=True)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),
                  box_loss=keras.losses.MeanAbsoluteError(reduction="sum"))

with images through ``keras.layers.Resizing(pad_to_aspect_ratio=True, bounding_box_format=
"yxyx")`` and ``keras.layers.MaxNumBoundingBoxes(100)``, batches of 4, no augmentation.
What differs, and why:

- The ResNet-50 starts from random weights: the preset needs the network, and the
  generated project trains from scratch too. Same architecture (keras-hub's
  resnet_50 config: bottleneck blocks 3-4-6-3). ``--encoder small`` swaps in the
  generated project's CPU-sized ``resnet_small`` and keeps everything else the guide's.
- Images are resized to 128x128, the generated project's ``data.image_size`` (the guide
  uses 800 for 500-pixel VOC photos; the shapes are 96..160 pixels).
- The anchor generator is keras-hub's default (what the detector builds when given
  none), written out: levels 3..5, 3 scales, aspect ratios 0.5/1/2, anchor_size 4.
- In the baseline's favour: the training set is reshuffled every epoch (the guide does
  not shuffle), no validation pass runs during training, and its CPU time counts only
  until training stops (ours counts validation, the final COCOeval and the plots).

Usage (from the repository root, in a venv with the project's dependencies):

    appgen new ours -t vision --task detection            # its data/ is the shapes sample
    nice -n 10 python scripts/detection_baseline.py train --data ours/data --out /tmp/base \
        --max-cpu-seconds 4000
    python scripts/detection_baseline.py score --project ours --out /tmp/base \
        --cpu-seconds <user+sys of ours' `python -m ours train`>

``train`` saves the weights every ``--every`` CPU-seconds (process CPU time, all threads,
counted from the start of the process: imports and data loading included) with the CPU
time in the file name; ``score`` takes the last checkpoint at or under ``--cpu-seconds``
and scores the val split with the generated project's own COCOeval code
(``detection_report``), boxes mapped back to the original pixels.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

IMAGE_SIZE = 128  # the generated project's data.image_size
BATCH_SIZE = 4  # the guide's
BOX_FORMAT = "yxyx"  # the guide's gt_bbox_format and the detector's default


def read_split(data: Path, split: str) -> tuple[list[dict[str, Any]], list[str]]:
    """COCO annotations of one split: records with the image, its size and xyxy boxes."""
    from PIL import Image

    coco = json.loads((data / "annotations" / f"instances_{split}.json").read_text())
    categories = sorted(coco["categories"], key=lambda c: c["id"])
    index = {c["id"]: i for i, c in enumerate(categories)}
    by_image: dict[int, list[Any]] = {i["id"]: [] for i in coco["images"]}
    for annotation in coco["annotations"]:
        by_image[annotation["image_id"]].append(annotation)
    records = []
    for image in coco["images"]:
        pixels = np.asarray(Image.open(data / "images" / split / image["file_name"])
                            .convert("RGB"))
        boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                  a["bbox"][1] + a["bbox"][3]] for a in by_image[image["id"]]]
        records.append({"file_name": image["file_name"], "image": pixels,
                        "width": pixels.shape[1], "height": pixels.shape[0],
                        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
                        "labels": np.asarray([index[a["category_id"]]
                                              for a in by_image[image["id"]]], np.int32)})
    return records, [c["name"] for c in categories]


def dataset(records: list[dict[str, Any]], shuffle: bool) -> Any:
    """The guide's pipeline: Resizing with padding, MaxNumBoundingBoxes(100), batches of 4."""
    import keras
    import tensorflow as tf

    def examples() -> Any:
        for record in records:
            x0, y0, x1, y1 = record["boxes"].T
            yield {"images": record["image"],
                   "bounding_boxes": {"boxes": np.stack([y0, x0, y1, x1], -1),
                                      "labels": record["labels"]}}

    signature = {"images": tf.TensorSpec((None, None, 3), tf.uint8),
                 "bounding_boxes": {"boxes": tf.TensorSpec((None, 4), tf.float32),
                                    "labels": tf.TensorSpec((None,), tf.int32)}}
    resizing = keras.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE, interpolation="bilinear",
                                     pad_to_aspect_ratio=True, bounding_box_format=BOX_FORMAT)
    max_boxes = keras.layers.MaxNumBoundingBoxes(max_number=100, bounding_box_format=BOX_FORMAT)
    ds = tf.data.Dataset.from_generator(examples, output_signature=signature).cache()
    if shuffle:
        ds = ds.shuffle(len(records), reshuffle_each_iteration=True)
    ds = ds.map(resizing, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(max_boxes, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(BATCH_SIZE, drop_remainder=True)
    ds = ds.map(lambda r: (r["images"], {"boxes": r["bounding_boxes"]["boxes"],
                                         "labels": r["bounding_boxes"]["labels"]}),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def build_model(num_classes: int, encoder: str) -> Any:
    """RetinaNet as the guide's "Custom training object detector" section builds it.

    ``encoder``: "resnet50" (the guide's) or "small" (the generated project's default
    ``resnet_small``, to separate the backbone's cost from everything else).
    """
    import keras
    import keras_hub

    image_converter = keras_hub.layers.RetinaNetImageConverter(scale=1 / 255)
    preprocessor = keras_hub.models.RetinaNetObjectDetectorPreprocessor(
        image_converter=image_converter)
    if encoder == "resnet50":  # keras-hub's "resnet_50_imagenet" architecture, random weights
        image_encoder = keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[7],
            stackwise_num_filters=[64, 128, 256, 512], stackwise_num_blocks=[3, 4, 6, 3],
            stackwise_num_strides=[1, 2, 2, 2], block_type="bottleneck_block",
            use_pre_activation=False, image_shape=(None, None, 3))
    else:  # detection_model.build_model's resnet_small
        image_encoder = keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3],
            stackwise_num_filters=[64, 64, 128, 128], stackwise_num_blocks=[1, 1, 1, 1],
            stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
            image_shape=(None, None, 3))
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=image_encoder, min_level=3, max_level=5, use_p5=True)
    anchor_generator = keras_hub.layers.AnchorGenerator(  # the detector's default, written out
        BOX_FORMAT, min_level=3, max_level=5, num_scales=3, aspect_ratios=[0.5, 1.0, 2.0],
        anchor_size=4.0)
    model = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=num_classes, preprocessor=preprocessor,
        anchor_generator=anchor_generator, use_prediction_head_norm=True)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),
                  box_loss=keras.losses.MeanAbsoluteError(reduction="sum"))
    return model


def train(args: argparse.Namespace) -> None:
    import keras

    keras.utils.set_random_seed(1337)
    records, names = read_split(args.data, "train")
    model = build_model(len(names), args.encoder)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "classes.json").write_text(json.dumps(names))
    (args.out / "encoder.txt").write_text(args.encoder)
    log = (args.out / "log.txt").open("a")

    class CpuCheckpoints(keras.callbacks.Callback):
        """Weights every ``args.every`` CPU-seconds; stop at ``args.max_cpu_seconds``."""

        def __init__(self) -> None:
            super().__init__()
            self.next = args.first or args.every
            self.steps = 0

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.steps += 1
            used = time.process_time()
            if used >= self.next:
                path = args.out / f"cpu{int(used):06d}.weights.h5"
                self.model.save_weights(path)
                print(f"{used:.0f} CPU-s, {self.steps} steps, loss {logs and logs.get('loss')}: "
                      f"{path.name}", file=log, flush=True)
                self.next = used + args.every
            if used >= args.max_cpu_seconds:
                self.model.stop_training = True

    print(f"start {time.process_time():.0f} CPU-s after imports and data loading", file=log,
          flush=True)
    model.fit(dataset(records, shuffle=True), epochs=10_000, callbacks=[CpuCheckpoints()],
              verbose=2)


def score(args: argparse.Namespace) -> None:
    names = json.loads((args.out / "classes.json").read_text())
    checkpoints = sorted(args.out.glob("cpu*.weights.h5"))
    usable = [p for p in checkpoints if int(p.name[3:9]) <= args.cpu_seconds]
    if not usable:
        sys.exit(f"no checkpoint at or under {args.cpu_seconds} CPU-s in {args.out}")
    checkpoint = usable[-1]
    sys.path.insert(0, str(args.project.resolve()))
    package = args.project.resolve().name
    report = importlib.import_module(f"{package}.detection_report")
    records, data_names = read_split(args.project / "data", "val")
    assert data_names == names, (data_names, names)
    encoder = args.out / "encoder.txt"
    model = build_model(len(names), encoder.read_text() if encoder.is_file() else "resnet50")
    model.load_weights(checkpoint)
    model.prediction_decoder.confidence_threshold = report.EVAL_SCORE_THRESHOLD
    images = _resized(records)
    count = len(images)
    padded = -count % BATCH_SIZE  # keras-hub's NMS needs full batches
    images = np.concatenate([images, np.zeros((padded, *images.shape[1:]), images.dtype)])
    out = model.predict(images, batch_size=BATCH_SIZE, verbose=0)
    detections = []
    for row, record in enumerate(records):
        keep = (out["labels"][row] >= 0) & (np.arange(out["labels"].shape[1])
                                            < int(out["num_detections"][row]))
        y0, x0, y1, x1 = np.asarray(out["boxes"][row][keep], np.float64).T
        ratio, x_off, y_off = _letterbox(record)
        boxes = np.stack([(x0 - x_off), (y0 - y_off), (x1 - x_off), (y1 - y_off)], -1) / ratio
        record["scale"] = 1.0  # boxes are in original pixels already; coco_results clips them
        detections.append({"boxes": boxes,
                           "scores": np.asarray(out["confidence"][row][keep], np.float64),
                           "labels": np.asarray(out["labels"][row][keep]).astype(int)})
    results = report.coco_results(detections, records, names, numbered=True)
    truth = report.ground_truth(records, names)
    scores, _ = report.coco_scores(truth, [{k: r[k] for k in ("image_id", "category_id", "bbox",
                                                              "score")} for r in results], names)
    print(json.dumps({"checkpoint": checkpoint.name, "cpu_seconds_budget": args.cpu_seconds,
                      "parameters": model.count_params(), **scores}, indent=1))


def _letterbox(record: dict[str, Any]) -> tuple[float, float, float]:
    """keras.layers.Resizing(pad_to_aspect_ratio=True)'s scale and (x, y) offsets."""
    ratio = min(IMAGE_SIZE / record["height"], IMAGE_SIZE / record["width"])
    return (ratio, (IMAGE_SIZE - record["width"] * ratio) // 2,
            (IMAGE_SIZE - record["height"] * ratio) // 2)


def _resized(records: list[dict[str, Any]]) -> np.ndarray:
    import keras

    resizing = keras.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE, interpolation="bilinear",
                                     pad_to_aspect_ratio=True)
    return np.stack([np.asarray(resizing(r["image"].astype(np.float32))) for r in records])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("train")
    fit.add_argument("--data", type=Path, required=True, help="the shapes sample (COCO layout)")
    fit.add_argument("--out", type=Path, required=True)
    fit.add_argument("--max-cpu-seconds", type=float, required=True)
    fit.add_argument("--encoder", choices=("resnet50", "small"), default="resnet50",
                     help="resnet50: the guide's; small: the generated project's resnet_small")
    fit.add_argument("--every", type=float, default=60.0, help="CPU-seconds between checkpoints")
    fit.add_argument("--first", type=float, default=0.0,
                     help="CPU-seconds of the first checkpoint (0: --every)")
    evaluate = commands.add_parser("score")
    evaluate.add_argument("--project", type=Path, required=True,
                          help="a generated vision detection project (its data/ and COCOeval)")
    evaluate.add_argument("--out", type=Path, required=True)
    evaluate.add_argument("--cpu-seconds", type=float, required=True)
    args = parser.parse_args()
    train(args) if args.command == "train" else score(args)


if __name__ == "__main__":
    main()
