"""Bad input, every template: malformed files through train, evaluate --data and predict.

Each case writes one malformed input in tmp_path and runs the generated project's
command in a subprocess (TensorFlow backend). The command must either refuse with a
one-line ``error: ...`` naming the offending file and exit code 2, or, where the
template documents skipping or imputing (``data.on_bad_file = "skip"``, empty texts,
missing table values), log what it skipped with a count and succeed. Never a
traceback, never a hang.

Every project is generated once, trained once on a tiny clean data set (one epoch),
and that run serves every ``evaluate`` and ``predict`` case. The cases of all selected
templates share one pool of a few subprocesses: each spends most of its time importing
TensorFlow, so the corpus is kept to the cases that reach different code.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import struct
import subprocess
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from project_runner import generate, last_line, run_project

pytestmark = pytest.mark.slow

TIMEOUT_S = 240  # a hang fails the case instead of the whole session
PARALLEL = 3  # concurrent subprocesses per template

Build = Callable[[Path], list[str]]  # writes the input under a folder; returns CLI arguments


@dataclass(frozen=True)
class Case:
    """One malformed input and what the command must do with it."""

    command: str  # train, evaluate or predict
    what: str
    build: Build
    names: str = ""  # text the error line must contain: the offending file or folder
    logged: str = ""  # regex of the skip/impute line on stdout; then the command succeeds

    @property
    def id(self) -> str:
        return f"{self.command}: {self.what}"


@dataclass(frozen=True)
class Corpus:
    """A template's settings for a quick run, its clean data and its malformed cases."""

    settings: tuple[str, ...]
    write_good: Callable[[Path], None]  # a small clean data set in the folder given
    cases: tuple[Case, ...]
    data_key: str = "data.dir"  # the setting that points at the data
    data_file: str = ""  # the file of the clean data set, for a data.path setting


# ----------------------------------------------------------------------------- files


def write_png(path: Path, size: tuple[int, int] = (16, 16), mode: str = "L", seed: int = 0
              ) -> Path:
    """A small random image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels, mode).save(path)
    return path


def truncated(path: Path, write: Callable[[Path], Path]) -> Path:
    """A valid file cut to half its length, as an interrupted copy leaves it."""
    write(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def zero_bytes(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def text_file(path: Path, text: str = "this is not an image, just text\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def png_bomb(path: Path, side: int = 100_000) -> Path:
    """A 100-byte PNG whose header claims ``side x side`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grayscale
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


def large_png(path: Path, side: int = 3000) -> Path:
    """A real, cheap-to-write 9-megapixel image (flat colour compresses to almost nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (side, side), (90, 140, 200)).save(path)
    return path



# ----------------------------------------------------------------------------- vision


VISION_CLASSES = ("cat", "dog")


def vision_good(root: Path, classes: tuple[str, ...] = VISION_CLASSES, per_class: int = 6
                ) -> None:
    for index, name in enumerate(classes):
        for i in range(per_class):
            write_png(root / "train" / name / f"{name}_{i}.png", seed=index * 100 + i)


def vision_train(extra: Callable[[Path], object], *settings: str) -> Build:
    """Clean class folders plus ``extra`` (which breaks something); train on them."""
    def build(folder: Path) -> list[str]:
        vision_good(folder)
        extra(folder)
        return ["--set", f"data.dir={folder}", *(a for s in settings for a in ("--set", s))]
    return build


def vision_eval(extra: Callable[[Path], object]) -> Build:
    def build(folder: Path) -> list[str]:
        vision_good(folder, per_class=2)
        extra(folder)
        return ["--data", str(folder)]
    return build


def inputs(make: Callable[[Path], object], name: str) -> Build:
    """predict: one input file made by ``make``."""
    def build(folder: Path) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        make(folder / name)
        return [str(folder / name)]
    return build


def _empty_folder(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return ["--set", f"data.dir={folder}"]


def _one_class(folder: Path) -> list[str]:
    vision_good(folder, classes=("cat",))
    return ["--set", f"data.dir={folder}"]


def vision_good_and_large(root: Path) -> None:
    """The clean set has one 9-megapixel image: large real images must just work."""
    vision_good(root)
    large_png(root / "train" / "cat" / "large.png")


VISION = Corpus(
    settings=("data.image_size=16", "model.width=8", "train.batch_size=8"),
    write_good=vision_good_and_large,
    cases=(
        Case("train", "truncated png", vision_train(
            lambda f: truncated(f / "train/cat/broken.png", write_png)), names="broken.png"),
        Case("train", "zero-byte png", vision_train(
            lambda f: zero_bytes(f / "train/dog/empty.png")), names="empty.png"),
        Case("train", "text saved as .png", vision_train(
            lambda f: text_file(f / "train/cat/notes.png")), names="notes.png"),
        Case("train", "png header claiming 100000x100000", vision_train(
            lambda f: png_bomb(f / "train/dog/bomb.png")), names="bomb.png"),
        Case("train", "bad files with on_bad_file=skip", vision_train(
            lambda f: (truncated(f / "train/cat/broken.png", write_png),
                       zero_bytes(f / "train/dog/empty.png"),
                       png_bomb(f / "train/dog/bomb.png")), "data.on_bad_file=\"skip\""),
             logged=r"skipped 3 unreadable image"),
        Case("train", "empty data folder", _empty_folder, names="has no class folders"),
        Case("train", "one class only", _one_class, names="only one class"),
        Case("evaluate", "class the model never saw (label out of range)", vision_eval(
            lambda f: write_png(f / "train/bird/b.png")), names="bird"),
        Case("predict", "png header claiming 100000x100000", inputs(png_bomb, "bomb.png"),
             names="bomb.png"),
    ),
)


# ----------------------------------------------------------------------------- fraud


FRAUD_HEADER = ["transaction_id", "amount", "merchant", "is_fraud"]


def fraud_rows(count: int = 240, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        fraud = int(i % 8 == 0)
        rows.append([f"t{i:05d}", f"{rng.gamma(2.0, 30.0) * (3 if fraud else 1):.2f}",
                     ["shop", "fuel", "online", "travel"][i % 4], str(fraud)])
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def fraud_good(root: Path) -> None:
    write_csv(root / "transactions.csv", FRAUD_HEADER, fraud_rows())


def fraud_table(change: Callable[[list[list[str]]], object] = lambda rows: None,
                header: list[str] = FRAUD_HEADER, name: str = "transactions.csv"
                ) -> Callable[[Path], Path]:
    """A clean table with ``change`` applied to its rows."""
    def make(path: Path) -> Path:
        rows = fraud_rows(seed=1)
        change(rows)
        return write_csv(path if path.suffix else path / name, header, rows)
    return make


def fraud_train(make: Callable[[Path], Path], name: str = "transactions.csv") -> Build:
    def build(folder: Path) -> list[str]:
        path = make(folder / name)
        return ["--set", f"data.path={path}"]
    return build


def fraud_eval(make: Callable[[Path], Path], name: str = "holdout.csv") -> Build:
    def build(folder: Path) -> list[str]:
        return ["--data", str(make(folder / name))]
    return build


def _set(rows: list[list[str]], row: int, column: int, value: str) -> None:
    rows[row][column] = value


def _ragged(rows: list[list[str]]) -> None:
    rows[17] = rows[17] + ["extra, field"]


def _latin1(path: Path) -> Path:
    fraud_table(lambda rows: _set(rows, 5, 2, "caf\u00e9"))(path)
    path.write_bytes(path.read_bytes().decode("utf-8").encode("latin-1"))
    return path



def _nan_and_inf(rows: list[list[str]]) -> None:
    for i, value in ((3, "nan"), (11, "inf"), (12, "-inf"), (40, "NaN")):
        rows[i][1] = value


FRAUD = Corpus(
    settings=("train.batch_size=64", "model.hidden=[16]", "data.min_category_count=1"),
    write_good=fraud_good,
    data_key="data.path",
    data_file="transactions.csv",
    cases=(
        Case("train", "ragged row", fraud_train(fraud_table(_ragged)), names="transactions.csv"),
        Case("train", "target value 2 (label out of range)", fraud_train(
            fraud_table(lambda rows: _set(rows, 9, 3, "2"))), names="transactions.csv"),
        Case("train", "NaN and inf amounts are imputed and counted", fraud_train(
            fraud_table(_nan_and_inf)), logged=r"imputed missing values: amount 4"),
        Case("train", "not UTF-8 (latin-1)", fraud_train(_latin1), names="transactions.csv"),
        Case("train", "one class only (no fraud rows)", fraud_train(
            fraud_table(lambda rows: [r.__setitem__(3, "0") for r in rows])),
             names="transactions.csv"),
        Case("evaluate", "target value 2 (label out of range)", fraud_eval(
            fraud_table(lambda rows: _set(rows, 4, 3, "2"))), names="holdout.csv"),
        Case("predict", "zero-byte csv", inputs(zero_bytes, "new.csv"), names="new.csv"),
    ),
)


# ----------------------------------------------------------------------------- driving


def frame(path: Path, seed: int = 0) -> Path:
    return write_png(path, size=(64, 64), mode="RGB", seed=seed)


def driving_good(root: Path, count: int = 10, segmentation: bool = False) -> None:
    rows = []
    for i in range(count):
        frame(root / "images" / f"f{i:03d}.png", seed=i)
        rows.append([f"f{i:03d}.png", f"{(i - count / 2) / count:.3f}"])
        if segmentation:
            mask = np.zeros((64, 64), dtype=np.uint8)
            mask[32:, :] = 1
            mask[20:22, 30:34] = 2
            (root / "masks").mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask, "L").save(root / "masks" / f"f{i:03d}.png")
    if not segmentation:
        write_csv(root / "labels.csv", ["filename", "steering"], rows)


def driving_folder(extra: Callable[[Path], object], *, segmentation: bool = False,
                   evaluate: bool = False, settings: tuple[str, ...] = ()) -> Build:
    def build(folder: Path) -> list[str]:
        driving_good(folder, segmentation=segmentation)
        extra(folder)
        if evaluate:
            return ["--data", str(folder)]
        task = ("--set", "data.task=\"segmentation\"") if segmentation else ()
        return ["--set", f"data.dir={folder}", *task,
                *(a for s in settings for a in ("--set", s))]
    return build


def _labels(folder: Path, change: Callable[[list[str]], object]) -> None:
    lines = (folder / "labels.csv").read_text(encoding="utf-8").splitlines()
    change(lines)
    (folder / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _mask(folder: Path, name: str, array: np.ndarray) -> None:
    Image.fromarray(array, "L").save(folder / "masks" / name)


DRIVING = Corpus(
    settings=("data.image_height=64", "data.image_width=64", "train.batch_size=8",
              "model.backbone=\"pilotnet\"", "data.crop_top=0"),
    write_good=driving_good,
    cases=(
        Case("train", "truncated frame", driving_folder(
            lambda f: truncated(f / "images/f003.png", frame)), names="f003.png"),
        Case("train", "NaN steering", driving_folder(
            lambda f: _labels(f, lambda ls: ls.__setitem__(3, "f002.png,nan"))),
             names="labels.csv line 4"),
        Case("train", "ragged labels.csv row (too many fields)", driving_folder(
            lambda f: _labels(f, lambda ls: ls.__setitem__(5, "f004.png,0.1,0.5"))),
             names="labels.csv line 6"),
        Case("train", "labels.csv not UTF-8", driving_folder(
            lambda f: (f / "labels.csv").write_bytes(b"filename,steering\n\xff\xfe.png,0.1\n")),
             names="labels.csv"),
        Case("train", "bad row and frame with on_bad_file=skip", driving_folder(
            lambda f: (truncated(f / "images/f003.png", frame),
                       _labels(f, lambda ls: ls.__setitem__(8, "f007.png,nan"))),
            settings=("data.on_bad_file=\"skip\"",)),
             logged=r"skipped 1 bad row.*\n(.*\n)*.*skipped 1 unreadable image"),
        Case("train", "segmentation: mask of another size", driving_folder(
            lambda f: _mask(f, "f002.png", np.zeros((16, 16), np.uint8)), segmentation=True),
             names="f002.png"),
        Case("evaluate", "NaN steering", driving_folder(
            lambda f: _labels(f, lambda ls: ls.__setitem__(2, "f001.png,nan")), evaluate=True),
             names="labels.csv line 3"),
        Case("predict", "text saved as .png", inputs(text_file, "notes.png"), names="notes.png"),
    ),
)


# ----------------------------------------------------------------------------- medical


def nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0]) if affine is None else affine),
             path)
    return path


def phantom(seed: int, shape: tuple[int, int, int] = (16, 16, 6)
            ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, dtype=np.uint8)
    label[5:11, 4:12, 1:5] = 1
    image = (rng.normal(0, 10, shape) + 100 + 80 * label).astype(np.float32)
    return image, label


def medical_good(root: Path, cases: int = 3) -> None:
    for i in range(cases):
        image, label = phantom(i)
        nifti(root / "imagesTr" / f"case_{i}.nii.gz", image)
        nifti(root / "labelsTr" / f"case_{i}.nii.gz", label)
    (root / "dataset.json").write_text(json.dumps(
        {"labels": {"0": "background", "1": "organ"}, "modality": {"0": "MRI"}}))


def medical_folder(extra: Callable[[Path], object], *, evaluate: bool = False) -> Build:
    def build(folder: Path) -> list[str]:
        medical_good(folder)
        extra(folder)
        return ["--data", str(folder)] if evaluate else ["--set", f"data.dir={folder}"]
    return build



def _nifti_header_claiming(path: Path, side: int = 30_000) -> Path:
    """A .nii.gz whose header claims side x side x side voxels, with 64 bytes of data."""
    header = nib.Nifti1Header()
    header.set_data_shape((side, side, side))
    header.set_data_dtype(np.float32)
    header.set_qform(np.diag([1.0, 1.0, 1.0, 1.0]), code=1)
    raw = io.BytesIO()
    raw.write(header.binaryblock)
    raw.write(b"\x00" * (352 - len(header.binaryblock)) + b"\x00" * 64)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw.getvalue()))
    return path


def _image_with_nan(path: Path) -> Path:
    image, _ = phantom(7)
    image[3, 3, 3] = np.nan
    return nifti(path, image)


def _label_values(path: Path, value: int) -> Path:
    _, label = phantom(0)
    label[label == 1] = value
    return nifti(path, label)


MEDICAL = Corpus(
    settings=("data.max_size=16", "model.width=4", "model.depth=2", "train.batch_size=8"),
    write_good=medical_good,
    cases=(
        Case("train", "zero-byte .nii.gz image", medical_folder(
            lambda f: zero_bytes(f / "imagesTr/case_1.nii.gz")), names="case_1.nii.gz"),
        Case("train", "truncated .nii.gz image", medical_folder(
            lambda f: truncated(f / "imagesTr/case_1.nii.gz",
                                lambda p: nifti(p, phantom(1)[0]))), names="case_1.nii.gz"),
        Case("train", "label of another shape", medical_folder(
            lambda f: nifti(f / "labelsTr/case_1.nii.gz", np.zeros((16, 12, 6), np.uint8))),
             names="case_1.nii.gz"),
        Case("train", "label value 5 (out of range)", medical_folder(
            lambda f: _label_values(f / "labelsTr/case_2.nii.gz", 5)), names="case_2.nii.gz"),
        Case("train", "NaN in an image", medical_folder(
            lambda f: _image_with_nan(f / "imagesTr/case_0.nii.gz")), names="case_0.nii.gz"),
        Case("evaluate", "label of another shape", medical_folder(
            lambda f: nifti(f / "labelsTr/case_1.nii.gz", np.zeros((8, 16, 6), np.uint8)),
            evaluate=True), names="case_1.nii.gz"),
        Case("predict", "header claiming 30000^3 voxels", inputs(
            _nifti_header_claiming, "scan.nii.gz"), names="scan.nii.gz"),
    ),
)


# ----------------------------------------------------------------------------- nlp


WORDS = {"pos": "good great fine lovely superb", "neg": "bad awful dull poor clumsy"}


def nlp_rows(count: int = 40) -> list[list[str]]:
    rows = []
    for i in range(count):
        label = "pos" if i % 2 else "neg"
        words = WORDS[label].split()
        rows.append([f"a {words[i % 5]} film, {words[(i + 2) % 5]} acting", label])
    return rows


def nlp_good(root: Path) -> None:
    write_csv(root / "train.csv", ["text", "label"], nlp_rows())


def nlp_file(change: Callable[[list[list[str]]], object] = lambda rows: None,
             header: tuple[str, ...] = ("text", "label")) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        rows = nlp_rows()
        change(rows)
        return write_csv(path, list(header), rows)
    return make


def nlp_train(make: Callable[[Path], object], name: str = "train.csv") -> Build:
    def build(folder: Path) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        make(folder / name)
        return ["--set", f"data.dir={folder}"]
    return build


def nlp_eval(make: Callable[[Path], object], name: str = "holdout.csv") -> Build:
    def build(folder: Path) -> list[str]:
        make(folder / name)
        return ["--data", str(folder / name)]
    return build


def _not_utf8(path: Path) -> Path:
    nlp_file()(path)
    path.write_bytes(path.read_bytes() + "caf\u00e9 cr\u00e8me,pos\n".encode("latin-1"))
    return path


def _nlp_ragged(rows: list[list[str]]) -> None:
    rows[6] = rows[6] + ["stray field"]


def _empty_texts(rows: list[list[str]]) -> None:
    rows[3][0] = ""
    rows[8][0] = "   "



NLP = Corpus(
    settings=("tokenizer.vocabulary_size=64", "tokenizer.learner=\"python\"",
              "model.embedding_dim=16", "model.num_heads=1", "model.intermediate_dim=16",
              "model.ngram_buckets=64", "train.batch_size=16"),
    write_good=nlp_good,
    cases=(
        Case("train", "not UTF-8 (latin-1)", nlp_train(_not_utf8), names="train.csv"),
        Case("train", "ragged row (too many fields)", nlp_train(nlp_file(_nlp_ragged)),
             names="train.csv"),
        Case("train", "one class only", nlp_train(nlp_file(
            lambda rows: [r.__setitem__(1, "pos") for r in rows])), names="train.csv"),
        Case("train", "empty texts are skipped and counted", nlp_train(nlp_file(_empty_texts)),
             logged=r"skipped 2 row\(s\) with an empty 'text'"),
        Case("evaluate", "label the model never saw (out of range)", nlp_eval(nlp_file(
            lambda rows: rows[5].__setitem__(1, "neutral"))), names="holdout.csv"),
        Case("predict", "non-UTF-8 .txt", inputs(
            lambda p: p.write_bytes(b"fine film\n\xff\xfe broken\n"), "texts.txt"),
             names="texts.txt"),
        Case("predict", "zero-byte .txt", inputs(zero_bytes, "texts.txt"), names="texts.txt"),
    ),
)


CORPORA = {"vision": VISION, "fraud": FRAUD, "driving": DRIVING, "medical": MEDICAL,
           "nlp": NLP}
QUICK = ("train.epochs=1", "train.verbose=0", "train.early_stopping_patience=0")


# ----------------------------------------------------------------------------- running


# None: it hung past TIMEOUT_S; an exception: writing the case's input failed
Outcome = subprocess.CompletedProcess[str] | Exception | None
CLEAN = "clean training"


@dataclass(frozen=True)
class Workspace:
    """A template's generated project, its clean training run and its folder of cases."""

    template: str
    root: Path
    project: Path

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def settings(self) -> list[str]:
        return [a for s in (*QUICK, *CORPORA[self.template].settings) for a in ("--set", s)]


def _run(project: Path, *args: str) -> Outcome:
    try:
        return run_project(project, *args, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None


def _train_clean(space: Workspace) -> Outcome:
    corpus = CORPORA[space.template]
    good = space.root / "good"
    corpus.write_good(good)
    return _run(space.project, "train", "--run-dir", str(space.run), *space.settings,
                "--set", f"{corpus.data_key}={good / corpus.data_file}")


def _run_case(space: Workspace, index: int, case: Case) -> Outcome:
    folder = space.root / f"case{index:02d}"
    args = case.build(folder)
    if case.command == "train":
        return _run(space.project, "train", "--run-dir", str(space.root / f"run{index:02d}"),
                    *space.settings, *args)
    out = ("--out", str(folder / "out")) if case.command == "predict" else ()
    return _run(space.project, case.command, "--run-dir", str(space.run), *args, *out)


def run_corpora(templates: list[str], base: Path) -> dict[str, dict[str, Outcome]]:
    """Every case of ``templates``, a few subprocesses at a time; outcomes by case id.

    Clean trainings go first (they take longest), then the train cases; the evaluate
    and predict cases of a template follow once its clean run exists.
    """
    spaces = {t: Workspace(t, base / t, generate(base / t, f"bad_{t}", t, sample_data=False))
              for t in templates}
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        clean = {t: pool.submit(_train_clean, spaces[t]) for t in templates}
        pending = {(t, case.id): pool.submit(_run_case, spaces[t], i, case)
                   for t in templates for i, case in enumerate(CORPORA[t].cases)
                   if case.command == "train"}
        for t in templates:
            trained = clean[t].exception() or clean[t].result()
            if not isinstance(trained, subprocess.CompletedProcess) or trained.returncode != 0:
                continue
            pending.update({(t, case.id): pool.submit(_run_case, spaces[t], i, case)
                            for i, case in enumerate(CORPORA[t].cases)
                            if case.command != "train"})
        outcomes: dict[str, dict[str, Outcome]] = {
            t: {CLEAN: clean[t].exception() or clean[t].result()} for t in templates}
        for (t, case_id), future in pending.items():
            outcomes[t][case_id] = future.exception() or future.result()
    return outcomes


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> dict[str, dict[str, Outcome]]:
    """Outcomes of the corpora of every template this session selected, run together."""
    selected = sorted({item.callspec.params["template"] for item in request.session.items
                       if item.module is request.module and hasattr(item, "callspec")})
    return run_corpora(selected, tmp_path_factory.mktemp("bad_input"))


def check(case: Case, result: Outcome) -> None:
    """One line naming the file and exit 2, or a logged skip and exit 0; never a traceback."""
    if isinstance(result, Exception):
        raise result
    assert result is not None, f"hung for more than {TIMEOUT_S} s"
    shown = f"\nstdout:\n{result.stdout[-1500:]}\nstderr:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, shown
    if case.logged:
        assert result.returncode == 0, shown
        assert re.search(case.logged, result.stdout), shown
        return
    assert result.returncode == 2, shown
    line = last_line(result.stderr)
    assert line.startswith("error: ") and case.names in line, shown
    assert sum(x.startswith("error:") for x in result.stderr.splitlines()) == 1, shown


PARAMS = [pytest.param(template, case, id=f"{template}-{case.id}")
          for template, corpus in CORPORA.items() for case in corpus.cases]


@pytest.mark.parametrize(("template", "case"), PARAMS)
def test_bad_input(outcomes: dict[str, dict[str, Outcome]], template: str, case: Case) -> None:
    trained = outcomes[template][CLEAN]
    if case.command != "train":
        ok = isinstance(trained, subprocess.CompletedProcess) and trained.returncode == 0
        assert ok, "training on the clean data failed:\n" + (
            trained.stderr[-3000:] if isinstance(trained, subprocess.CompletedProcess)
            else repr(trained))
    check(case, outcomes[template][case.id])
