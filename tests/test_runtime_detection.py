"""The shared detection pieces (templates/_base/.../detection_*.py), without training:
COCO, YOLO and VOC folders read to the same boxes, bad annotations named in one line,
letterboxing undone exactly, COCOeval through pycocotools, box-aware augmentation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import runtime
import tiny_presets
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

formats = runtime.load("detection_formats")
data = runtime.load("detection_data")
report = runtime.load("detection_report")
errors = runtime.load("errors")

CLASSES = ["cat", "dog"]
# (file, width, height, [(class, x0, y0, x1, y1)]): one image without boxes
IMAGES = [("a.png", 80, 60, [(0, 10, 5, 40, 35), (1, 50, 20, 79, 59)]),
          ("b.png", 40, 100, [(1, 0, 0, 40, 50)]),
          ("c.png", 64, 64, [])]


def _pictures(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, width, height, _ in IMAGES:
        Image.new("RGB", (width, height), (200, 30, 30)).save(folder / name)


def write_coco(root: Path, split: str = "train", images: list = IMAGES) -> Path:
    _pictures(root / "images" / split)
    coco: dict = {"images": [], "annotations": [],
                  "categories": [{"id": 7 + i, "name": n} for i, n in enumerate(CLASSES)]}
    for number, (name, width, height, boxes) in enumerate(images, 1):
        coco["images"].append({"id": number, "file_name": name, "width": width,
                               "height": height})
        for label, x0, y0, x1, y1 in boxes:
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": number,
                                        "category_id": 7 + label, "iscrowd": 0,
                                        "bbox": [x0, y0, x1 - x0, y1 - y0]})
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    path = root / "annotations" / f"instances_{split}.json"
    path.write_text(json.dumps(coco))
    return path


def write_yolo(root: Path) -> None:
    _pictures(root / "images" / "train")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "data.yaml").write_text("path: .\nnames:\n  0: cat\n  1: dog\n")
    for name, width, height, boxes in IMAGES:
        lines = [f"{label} {(x0 + x1) / 2 / width} {(y0 + y1) / 2 / height} "
                 f"{(x1 - x0) / width} {(y1 - y0) / height}" for label, x0, y0, x1, y1 in boxes]
        (root / "labels" / "train" / f"{Path(name).stem}.txt").write_text("\n".join(lines))


def write_voc(root: Path) -> None:
    _pictures(root / "JPEGImages")
    (root / "Annotations").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for name, width, height, boxes in IMAGES:
        objects = "".join(
            f"<object><name>{CLASSES[label]}</name><bndbox><xmin>{x0 + 1}</xmin>"
            f"<ymin>{y0 + 1}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            for label, x0, y0, x1, y1 in boxes)
        (root / "Annotations" / f"{Path(name).stem}.xml").write_text(
            f"<annotation><filename>{name}</filename><size><width>{width}</width>"
            f"<height>{height}</height></size>{objects}</annotation>")
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\nb\nc\n")


def read(root: Path, on_bad: str = "error") -> tuple[np.ndarray, list[dict], list[str]]:
    fmt = formats.detect_format(root, "auto")
    present = formats.splits_present(root, fmt)
    items, names = formats.read_split(root, fmt, "train" if "train" in present else None, None)
    images, records = data.read_items(items, 64, on_bad)
    return images, records, names


@pytest.mark.parametrize("writer", [write_coco, write_yolo, write_voc])
def test_the_three_layouts_read_to_the_same_boxes(tmp_path: Path, writer) -> None:
    writer(tmp_path)
    images, records, names = read(tmp_path)
    assert names == CLASSES and images.shape == (3, 64, 64, 3)
    by_file = {r["file_name"]: r for r in records}
    for name, width, height, boxes in IMAGES:
        record = by_file[name]
        assert (record["width"], record["height"]) == (width, height)
        expected = np.float32([b[1:] for b in boxes]).reshape(-1, 4)
        np.testing.assert_allclose(record["boxes"], expected, atol=1e-3)
        assert record["labels"].tolist() == [b[0] for b in boxes]


def test_letterbox_keeps_aspect_and_boxes_map_back(tmp_path: Path) -> None:
    write_coco(tmp_path)
    images, records, _ = read(tmp_path)
    tall = next(r for r in records if r["file_name"] == "b.png")  # 40 x 100
    assert tall["scale"] == pytest.approx(0.64)
    picture = images[records.index(tall)]
    assert (picture[:, :26] == (200, 30, 30)).all()  # the image, scaled to 26 x 64
    assert (picture[:, 27:] == data.PAD_VALUE).all()  # padding on the right
    targets = data.targets(records, 3)
    model_boxes = targets["boxes"][records.index(tall)]
    np.testing.assert_allclose(model_boxes[0], [0, 0, 25.6, 32])
    assert targets["labels"][records.index(tall)].tolist() == [1, -1, -1]
    back = report.to_original({"boxes": model_boxes[:1].astype(np.float64)}, tall)
    np.testing.assert_allclose(back, [[0, 0, 40, 50]], atol=1e-4)


def test_predicted_boxes_are_clipped_to_the_image_and_padding_boxes_dropped() -> None:
    tall = {"file_name": "b.png", "image_id": 3, "width": 40, "height": 100, "scale": 0.64}
    # model pixels: the 40x100 image is 25.6x64 at the left of the 64x64 letterbox
    found = {"boxes": np.array([[-5.0, -5.0, 20.0, 70.0],  # overhangs top, left, bottom
                                [40.0, 10.0, 60.0, 30.0],  # wholly in the padding
                                [30.0, 64.0, 30.0, 70.0]]),  # below and degenerate
             "scores": np.array([0.9, 0.8, 0.7]), "labels": np.array([1, 0, 0])}
    kept = report.in_original(found, tall)
    np.testing.assert_allclose(kept["boxes"], [[0, 0, 31.25, 100]])
    assert kept["scores"].tolist() == [0.9] and kept["labels"].tolist() == [1]
    rows = report.coco_results([found], [tall], CLASSES)
    assert [(r["category"], r["bbox"], r["image_id"]) for r in rows] == \
        [("dog", [0.0, 0.0, 31.25, 100.0], 3)]


def test_a_wide_model_size_letterboxes_to_height_and_width(tmp_path: Path) -> None:
    write_coco(tmp_path)
    fmt = formats.detect_format(tmp_path, "auto")
    items, _ = formats.read_split(tmp_path, fmt, "train", None)
    size = data.model_size({"data": {"image_size": [32, 96]}})
    images, records = data.read_items(items, size, "error")
    assert size == (32, 96) and images.shape[1:] == (32, 96, 3)
    tall = next(r for r in records if r["file_name"] == "b.png")  # 40 x 100: height decides
    assert tall["scale"] == pytest.approx(0.32)
    back = report.to_original({"boxes": data.targets(records, 3)["boxes"][
        records.index(tall)][:1].astype(np.float64)}, tall)
    np.testing.assert_allclose(back, [[0, 0, 40, 50]], atol=1e-4)
    for bad in ([32], [100, "x"], [16, 64], True):
        with pytest.raises(errors.ConfigError, match="data.image_size"):
            data.model_size({"data": {"image_size": bad}})


@pytest.mark.parametrize(("bad_box", "message"), [
    ((0, 10, 5, 90, 35), "outside the 80x60 image"),
    ((0, 10, 5, 10, 35), "degenerate"),
])
def test_a_bad_box_is_one_error_naming_the_file_or_skipped(tmp_path: Path, bad_box: tuple,
                                                           message: str) -> None:
    images = [IMAGES[0][:3] + ([bad_box],), *IMAGES[1:]]
    write_coco(tmp_path, images=images)
    with pytest.raises(errors.DataError) as caught:
        read(tmp_path)
    assert "a.png" in str(caught.value) and message in str(caught.value)
    assert "\n" not in str(caught.value)
    kept, records, _ = read(tmp_path, on_bad="skip")
    assert len(kept) == 2 and "a.png" not in {r["file_name"] for r in records}


def test_unknown_category_and_missing_image_are_named(tmp_path: Path) -> None:
    path = write_coco(tmp_path)
    coco = json.loads(path.read_text())
    coco["annotations"][0]["category_id"] = 99
    path.write_text(json.dumps(coco))
    with pytest.raises(errors.DataError, match=r"a\.png.*unknown category_id 99"):
        read(tmp_path)
    (tmp_path / "images" / "train" / "b.png").unlink()
    _, records, _ = read(tmp_path, on_bad="skip")
    assert [r["file_name"] for r in records] == ["c.png"]


def test_voc_with_a_doctype_is_refused(tmp_path: Path) -> None:
    write_voc(tmp_path)
    (tmp_path / "Annotations" / "a.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa">]><annotation>&a;</annotation>')
    with pytest.raises(errors.DataError, match=r"a\.xml.*DOCTYPE"):
        read(tmp_path)


@pytest.mark.parametrize(("writer", "file"), [(write_yolo, "labels/train/a.txt"),
                                              (write_yolo, "data.yaml"),
                                              (write_yolo, "classes.txt"),
                                              (write_voc, "Annotations/a.xml")])
def test_an_oversized_annotation_file_is_one_line_naming_it(tmp_path: Path, writer,
                                                           file: str) -> None:
    writer(tmp_path)
    line = b"0 0.5 0.5 0.1 0.1\n"  # valid content: the size alone is refused, before parsing
    (tmp_path / file).write_bytes(line * (formats.MAX_TEXT_BYTES // len(line) + 1))
    with pytest.raises(errors.DataError) as caught:
        read(tmp_path)
    message = str(caught.value)
    assert message.startswith(str(tmp_path / file)) and "too large" in message
    assert "\n" not in message


def test_no_detection_layout_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(errors.DataError, match="COCO.*YOLO.*VOC"):
        formats.detect_format(tmp_path, "auto")


def test_without_pycocotools_train_and_evaluate_stop_first_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = data.importlib.util.find_spec
    monkeypatch.setattr(data.importlib.util, "find_spec",
                        lambda name, *rest: None if name == "pycocotools" else real(name, *rest))
    config = {"data": {"dir": str(tmp_path)}}  # not read: the check comes first
    for load in (lambda: data.load_splits(config, batch_size=2),
                 lambda: data.load_eval(config, tmp_path, {}, batch_size=2)):
        with pytest.raises(errors.ProjectError, match="pycocotools .* not installed: pip") as err:
            load()
        assert "\n" not in str(err.value)


def test_coco_scores_are_one_for_the_truth_and_low_for_the_chance_baseline(tmp_path: Path
                                                                           ) -> None:
    write_coco(tmp_path)
    _, records, names = read(tmp_path)
    perfect = [{"boxes": r["boxes"].astype(np.float64) * r["scale"],
                "scores": np.ones(len(r["labels"])), "labels": r["labels"]} for r in records]
    results = report.coco_results(perfect, records, names, numbered=True)
    assert {"file_name", "image_id", "category", "category_id", "bbox", "score"} <= set(results[0])
    truth = report.ground_truth(records, names)
    scores, _ = report.coco_scores(truth, results, names)
    assert scores["map_50"] == pytest.approx(1.0) and scores["map"] == pytest.approx(1.0)
    assert scores["ap_50_cat"] == pytest.approx(1.0)
    chance, _ = report.coco_scores(truth, report.chance_results(records, names), names)
    assert chance["map_50"] < 0.5
    shifted = [{**p, "boxes": p["boxes"] + 15} for p in perfect]
    worse, _ = report.coco_scores(truth, report.coco_results(shifted, records, names,
                                                             numbered=True), names)
    assert worse["map"] < 0.5


@pytest.mark.parametrize("width", [64, 128])
def test_augmentation_moves_boxes_with_the_pixels(width: int) -> None:
    model = runtime.load("detection_model")
    config = {"augment": {"flip": "horizontal", "scale_jitter": 0.3, "color": 0.0}}
    transform = model.batch_transform(config)
    images = np.zeros((8, 64, width, 3), np.uint8)
    images[:, 10:30, 5:25] = 255  # a white square, its box below
    boxes = np.full((8, 2, 4), -1.0, np.float32)
    boxes[:, 0] = [5, 10, 25, 30]
    labels = np.full((8, 2), -1, np.int32)
    labels[:, 0] = 0
    out, moved = transform(images, {"boxes": boxes, "labels": labels},
                           np.random.default_rng(1))
    flipped = 0
    for image, box, label in zip(out, moved["boxes"], moved["labels"], strict=True):
        assert label[1] == -1
        if label[0] < 0:
            continue
        x0, y0, x1, y1 = np.round(box[0]).astype(int)
        inside = image[y0 + 2:y1 - 2, x0 + 2:x1 - 2]
        assert inside.size and inside.mean() > 200  # the square is where its box says
        flipped += x0 > width // 2
    assert flipped > 0



def _detector_config(width: int, preset: str = "", min_level: int = 3) -> dict:
    return {"model": {"backbone": "resnet_small", "width": width, "preset": preset,
                      "min_level": min_level, "head_convs": 1, "anchor_size": 1.0,
                      "match_iou": 0.4}}


META = {"image_shape": [64, 96, 3], "class_names": ["car", "sign"]}


def _reloads_the_same(net, folder: Path):  # type: ignore[no-untyped-def]
    """Save and load ``net``; the reloaded head outputs match the original's."""
    import keras

    images = np.random.default_rng(0).random((2, 64, 96, 3)).astype("float32")
    net.save(folder / "net.keras")
    again = keras.models.load_model(folder / "net.keras")
    np.testing.assert_allclose(np.asarray(again(images)["cls_logits"]),
                               np.asarray(net(images)["cls_logits"]), atol=1e-5)
    return again


def test_the_detector_is_model_width_wide_and_reloads(tmp_path: Path) -> None:
    model = runtime.load("detection_model")
    net = model.build_model(_detector_config(32), META)
    convs = [w for w in net.weights if w.path.endswith("kernel") and len(w.shape) == 4]
    head = [w for w in convs if "head" in w.path]
    assert head and all(w.shape[-2] == 32 for w in head)  # every head conv takes 32 channels
    assert any("fpn" in w.path and w.shape[-1] == 32 for w in convs)  # the FPN outputs 32
    assert model.build_model(_detector_config(128), META).count_params() > \
        net.count_params() + 100_000
    again = _reloads_the_same(net, tmp_path)
    assert again.head_filters == 32 and again.backbone.fpn_filters == 32
    assert runtime.load("finetune").find_backbone(again) is None  # from scratch: one phase
    with pytest.raises(errors.ConfigError, match="model.width must be a multiple of 32"):
        model.build_model(_detector_config(48), META)


def test_a_reloaded_detector_keeps_its_optimizer_and_state(tmp_path: Path) -> None:
    """--resume loads the checkpoint's compile: keras-hub's custom compile once made Keras
    skip it, and the resumed run trained with keras-hub's default Adam(5e-5)."""
    import warnings

    import keras

    model = runtime.load("detection_model")
    net = model.build_model(_detector_config(32), META)
    schedule = keras.optimizers.schedules.CosineDecay(0.003, decay_steps=100)
    net.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
                **model.compile_args({}, META))
    images = np.random.default_rng(0).random((2, 64, 96, 3)).astype("float32")
    boxes = {"boxes": np.array([[[10, 10, 40, 30], [-1, -1, -1, -1]]] * 2, "float32"),
             "labels": np.array([[1, -1]] * 2, "float32")}
    net.train_on_batch(images, boxes)
    net.save(tmp_path / "net.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = keras.models.load_model(tmp_path / "net.keras")
    assert not [w for w in caught if "compile()" in str(w.message)]
    assert type(again.optimizer).__name__ == "AdamW" and int(again.optimizer.iterations) == 1
    assert again.optimizer.get_config()["learning_rate"] == \
        net.optimizer.get_config()["learning_rate"]  # the schedule, not keras-hub's 5e-5
    saved = {v.path: np.asarray(v) for v in net.optimizer.variables}
    loaded = {v.path: np.asarray(v) for v in again.optimizer.variables}
    assert saved.keys() == loaded.keys() and len(saved) > 2
    assert all(np.array_equal(saved[key], loaded[key]) for key in saved)  # moments too
    assert any(np.abs(value).max() > 0 for key, value in loaded.items() if "momentum" in key)
    again.train_on_batch(images, boxes)  # and it trains on
    assert int(again.optimizer.iterations) == 2


def test_min_level_2_moves_the_pyramid_one_stride_finer() -> None:
    model = runtime.load("detection_model")
    coarse = model.build_model(_detector_config(32), META)
    fine = model.build_model(_detector_config(32, min_level=2), META)
    assert sorted(fine.backbone.output) == ["P2", "P3", "P4"]
    # 9 anchors a cell on strides 4, 8, 16 against 8, 16, 32 of a 64x96 image
    cells = {2: 16 * 24 + 8 * 12 + 4 * 6, 3: 8 * 12 + 4 * 6 + 2 * 3}
    assert fine.output["cls_logits"].shape[1] == 9 * cells[2]
    assert coarse.output["cls_logits"].shape[1] == 9 * cells[3]
    with pytest.raises(errors.ConfigError, match="model.min_level must be 2 or 3"):
        model.build_model(_detector_config(32, min_level=4), META)


@pytest.fixture(scope="module")
def resnet_preset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_presets.save_resnet_pyramid(tmp_path_factory.mktemp("presets") / "resnet")


def test_a_preset_backbone_is_normalised_frozen_and_reloads(resnet_preset: Path,
                                                             tmp_path: Path) -> None:
    model = runtime.load("detection_model")
    finetune = runtime.load("finetune")
    net = model.build_model(_detector_config(32, str(resnet_preset)), META)
    backbone = finetune.find_backbone(net)
    assert type(backbone).__name__ == "ResNetBackbone" and backbone.count_params() == 108736
    # [0, 1] images become what the converter makes of [0, 255] ones
    assert net.backbone.input_scale == pytest.approx([1 / 0.229, 1 / 0.224, 1 / 0.225])
    assert net.backbone.input_offset == pytest.approx([-0.485 / 0.229, -0.456 / 0.224,
                                                       -0.406 / 0.225])
    mine = {id(w) for w in backbone.weights}
    finetune.set_phase(net, frozen=True)  # phase 1: FPN and heads train, the backbone not
    trainable = {id(w) for w in net.trainable_weights}
    assert trainable and not trainable & mine
    finetune.set_phase(net, frozen=False)
    assert mine & {id(w) for w in net.trainable_weights}
    again = _reloads_the_same(net, tmp_path)
    assert finetune.find_backbone(again).name == finetune.BACKBONE_LAYER
    assert again.backbone.input_scale == net.backbone.input_scale

    # bench times it like any other detector: batch-1 latency through the NMS decoder
    images = np.random.default_rng(1).random((2, 64, 96, 3)).astype("float32")
    timed = runtime.load("latency").latency(net, images, calls=2, warmup=1, large_batch=2)
    assert timed["batch1_p50_ms"] > 0 and timed["large_batch_samples_per_s"] > 0


def test_a_preset_without_p3_to_p5_is_one_line(tmp_path: Path) -> None:
    import keras_hub

    folder = tmp_path / "shallow"
    keras_hub.models.ResNetBackbone(  # one stage: P2 only
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64],
        stackwise_num_blocks=[1], stackwise_num_strides=[1], block_type="basic_block",
        image_shape=(None, None, 3)).save_to_preset(folder)
    keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=1 / 255.0
                                          ).save_to_preset(folder)
    with pytest.raises(errors.ConfigError, match="cannot feed RetinaNet's P3..P5 pyramid") as err:
        runtime.load("detection_model").build_model(_detector_config(32, str(folder)), META)
    assert "\n" not in str(err.value)
