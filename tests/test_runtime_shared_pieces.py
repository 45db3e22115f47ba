"""Pieces several templates use, lifted into the shared runtime and tested once here:
ROC-AUC, one-hot targets, the small CNN backbone and the video frame loop."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import runtime

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

classification = runtime.load("classification")
errors = runtime.load("errors")


def test_roc_auc_matches_hand_counts_and_counts_ties_half() -> None:
    assert classification.roc_auc(np.array([0, 0, 1, 1]),
                                   np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert classification.roc_auc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert classification.roc_auc(np.array([True, False, False]),
                                  np.array([0.9, 0.2, 0.9])) == 0.75


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0], []])
def test_roc_auc_is_none_when_undefined(labels: list[int]) -> None:
    # one class only: no positive/negative pair to rank, neither 0 nor 0.5
    assert classification.roc_auc(np.array(labels), np.linspace(0, 1, len(labels))) is None


def test_roc_auc_agrees_with_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = rng.integers(0, 10, 200) / 10.0  # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert classification.roc_auc(labels, scores) == pytest.approx(pairs)


def test_one_hot_rows() -> None:
    pipeline = runtime.load("pipeline")
    rows = pipeline.one_hot([2, 0], 3)
    assert rows.dtype == np.float32
    assert rows.tolist() == [[0, 0, 1], [1, 0, 0]]


def test_small_cnn_pooling_options() -> None:
    import keras

    backbones = runtime.load("backbones")
    inputs = keras.Input((16, 16, 1))
    vision = keras.Model(inputs, backbones.small_cnn(inputs, 4, 3, pool_last=False,
                                                     max_filters=16))
    assert vision.output_shape == (None, 16)
    assert vision.get_layer("block2_relu2").output.shape[1:3] == (4, 4)  # last block not pooled
    medical = keras.Model(inputs, backbones.small_cnn(inputs, 4, 2, max_pool=True))
    assert medical.output_shape == (None, 16)  # average and maximum of 8 filters
    with pytest.raises(errors.ConfigError, match="model.width"):
        backbones.small_cnn(inputs, 0, 2)


def _write_video(path: Path, frames: int) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for index in range(frames):
        writer.write(np.full((24, 32, 3), (index * 20) % 255, np.uint8))
    writer.release()


def test_video_frames_every_step_with_index(tmp_path: Path) -> None:
    media = runtime.load("media")
    clip_path = tmp_path / "clip.avi"
    _write_video(clip_path, 7)
    with media.Video(clip_path) as clip:
        assert clip.fps == pytest.approx(10.0)
        seen = [(index, frame.shape) for index, frame in clip.frames(3)]
    assert seen == [(0, (24, 32, 3)), (3, (24, 32, 3)), (6, (24, 32, 3))]
    frame = np.zeros((24, 32, 3), np.uint8)
    frame[..., 0] = 255  # blue in OpenCV's BGR
    rgb = media.model_frame(frame, 8, 6)
    assert rgb.shape == (6, 8, 3) and rgb[0, 0].tolist() == [0, 0, 255]
    assert media.model_frame(frame, 8, 6, channels=1).shape == (6, 8, 1)


def test_video_errors_are_one_line(tmp_path: Path) -> None:
    media = runtime.load("media")
    bogus = tmp_path / "not_a_video.mp4"
    bogus.write_bytes(b"not a video")
    with pytest.raises(errors.DataError, match="cannot open video"):
        media.Video(bogus)


def test_a_video_whose_frames_are_over_the_image_cap_is_refused_before_decoding(
        tmp_path: Path) -> None:
    media, limits = runtime.load("media"), runtime.load("limits")
    clip_path = tmp_path / "clip.avi"
    _write_video(clip_path, 2)  # 32x24 = 768 pixels a frame
    limits.configure({"limits": {"image_megapixels": 0.0005}})  # 500 pixels
    try:
        with pytest.raises(errors.DataError, match=r"a frame \(32x24 pixels\).*image_megapixels"):
            media.Video(clip_path)
    finally:
        limits.configure({})


def _relative_imports(folder: Path) -> dict[str, set[str]]:
    """Module -> the sibling modules it imports (anywhere in the file, lazy imports too)."""
    import ast

    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.update([node.module.split(".")[0]] if node.module
                            else [alias.name for alias in node.names])
        graph[path.stem] = deps
    return graph


@pytest.mark.parametrize("template", ["vision", "nlp", "driving", "medical", "fraud"])
def test_no_import_cycle_within_a_template(template: str) -> None:
    """Shared pieces have their own modules (nlp: text_io, seq_models), so no module needs
    one that needs it back. rundir imports the template's model on purpose, lazily, so that
    a checkpoint's custom layers are registered: that one edge is left out."""
    import template_modules

    graph = _relative_imports(template_modules.package_dir(template))
    graph["rundir"].discard("model")
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            assert state.get(dep) != 1, " -> ".join(path[path.index(dep):] + [dep])
            if dep in graph and dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_class_folders_list_classes_and_files(tmp_path: Path) -> None:
    class_folders = runtime.load("class_folders")
    root = tmp_path / "data"
    for name, count in (("cat", 3), ("dog", 2)):
        for index in range(count):
            (root / "train" / name).mkdir(parents=True, exist_ok=True)
            (root / "train" / name / f"{index}.png").write_bytes(b"x")
    (root / "train" / "dog" / "notes.txt").write_text("not an image")
    (root / "val").mkdir()
    train = class_folders.class_root(root)
    assert train == root / "train"
    assert class_folders.find_classes(train) == ["cat", "dog"]

    def png(path: Path) -> bool:
        return path.suffix == ".png"

    files, labels = class_folders.list_files(train, ["cat", "dog"], png, ".png", cap=2)
    assert [f.name for f in files] == ["0.png", "1.png", "0.png", "1.png"]
    assert labels.tolist() == [0, 0, 1, 1] and str(labels.dtype) == "int32"
    (train / "bird").mkdir()
    with pytest.raises(errors.DataError, match=r"class folder .*bird holds no images \(.png\)"):
        class_folders.list_files(train, ["bird", "cat"], png, ".png")
    with pytest.raises(errors.DataError, match=r"bird is not one of the training classes"):
        class_folders.list_files(train, ["cat", "dog"], png, ".png", training=False)
    files, _ = class_folders.list_files(train, ["bird", "cat", "dog", "eel"], png, ".png",
                                        training=False)  # missing classes are allowed here
    assert len(files) == 5


def test_class_folders_refuse_one_or_no_class(tmp_path: Path) -> None:
    class_folders = runtime.load("class_folders")
    with pytest.raises(errors.DataError, match="does not exist"):
        class_folders.class_root(tmp_path / "missing")
    with pytest.raises(errors.DataError, match="has no class folders; expected .*/<class>/"):
        class_folders.find_classes(tmp_path)
    (tmp_path / "only").mkdir()
    with pytest.raises(errors.DataError, match=r"only one class \(only\); need at least 2"):
        class_folders.find_classes(tmp_path)


def _decode_marked(path: Path) -> tuple[np.ndarray | None, str, str]:
    """A stand-in decoder: files named bad* fail, the rest give a tiny frame."""
    if path.name.startswith("bad"):
        return None, "", "not an image"
    return np.full((2, 2), int(path.stem[-1]), np.uint8), path.stem, ""


def test_decode_all_keeps_order_and_names_the_first_bad_file(capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    media = runtime.load("media")
    files = [Path("a1.png"), Path("bad2.png"), Path("c3.png")]
    with pytest.raises(errors.DataError, match=r"cannot read image bad2.png: not an image"):
        media.decode_all(files, _decode_marked, "error")
    arrays, keep, extras = media.decode_all(files, _decode_marked, "skip")
    assert keep == [0, 2] and extras == ["a1", "c3"]
    assert arrays.shape == (2, 2, 2) and arrays[1, 0, 0] == 3
    assert "skipped 1 unreadable image(s), first: bad2.png" in capsys.readouterr().out
    with pytest.raises(errors.DataError, match="no readable images left"):
        media.decode_all([Path("bad1.png")], _decode_marked, "skip")


def test_chunks_batches_a_stream_without_losing_the_tail() -> None:
    media = runtime.load("media")
    assert list(media.chunks(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(media.chunks(iter(range(6)), 3)) == [[0, 1, 2], [3, 4, 5]]
    assert list(media.chunks(iter([]), 3)) == []
