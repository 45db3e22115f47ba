"""End to end: generate the medical project, train on TensorFlow and on JAX without TensorFlow
installed (``jax-only``), predict NIfTI masks and slice probabilities."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from project_runner import JAX_ONLY, generate, last_line, run_project

pytestmark = pytest.mark.slow

# Three phantom volumes (two train, one validation) coarsened to 32x32x12, a tiny U-Net.
QUICK = ("--set", "train.epochs=1", "--set", "data.max_cases=3", "--set", "data.max_size=32",
         "--set", "model.width=4", "--set", "model.depth=2", "--set", "train.batch_size=8")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("medical"), "scan_demo", "medical")


@pytest.mark.parametrize("backend", ["tensorflow", JAX_ONLY])
def test_train_then_predict_masks_on_the_input_grid(project: Path, backend: str) -> None:
    run = project / "runs" / backend
    result = run_project(project, "train", "--run-dir", str(run), *QUICK, backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"backend {backend.removesuffix('-only')}" in result.stdout
    assert "validation dice" in result.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    final = metrics["final"]
    assert metrics["epochs_completed"] == 1 and "val_dice" in metrics["best"]
    assert 0.0 <= final["dice"] <= 1.0 and 0.0 <= final["iou"] <= final["dice"] + 1e-9
    assert set(final["per_class"]) == {"liver", "kidney_right", "kidney_left", "spleen",
                                       "lesion"}
    meta = json.loads((run / "meta.json").read_text())
    assert meta["normalize"] == "ct_window" and len(meta["val_cases"]) == 1
    assert not set(meta["train_cases"]) & set(meta["val_cases"])
    assert (run / "plots" / "overlays.png").stat().st_size > 1000
    assert (run / "checkpoints" / "best.keras").is_file()

    source = project / "data" / "imagesTr" / f"{meta['val_cases'][0]}.nii.gz"
    out = run / "masks"
    result = run_project(project, "predict", "--run-dir", str(run), str(source),
                         "--out", str(out), backend=backend)
    assert result.returncode == 0, result.stderr[-2000:]
    image, mask = nib.load(source), nib.load(out / source.name)
    assert mask.shape == image.shape and np.allclose(mask.affine, image.affine)
    assert mask.get_data_dtype() == np.uint8 and int(np.asarray(mask.dataobj).max()) <= 5
    assert (out / "volumes.csv").read_text().startswith("input,mask,liver_ml")


def test_evaluate_on_another_folder(project: Path, tmp_path: Path) -> None:
    run = project / "runs" / "tensorflow"
    if not run.is_dir():
        pytest.skip("needs the TensorFlow run of the test above")
    result = run_project(project, "evaluate", "--run-dir", str(run), "--data",
                         str(project / "data"))
    assert result.returncode == 0, result.stderr[-2000:]
    evaluation = json.loads((run / "evaluation.json").read_text())
    # all six volumes, resampled like the training ones: 48 slices of 6 mm -> 16 of 18 mm
    assert evaluation["samples"] == 6 * 16 and 0.0 <= evaluation["dice"] <= 1.0


def test_label_that_does_not_match_its_image_is_named(project: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(project / "data", data)
    label = data / "labelsTr" / "case_002.nii.gz"
    original = nib.load(label)
    nib.save(nib.Nifti1Image(np.asarray(original.dataobj)[:, :, :40], original.affine), label)
    result = run_project(project, "train", "--run-dir", str(tmp_path / "r"),
                         "--set", f'data.dir="{data}"', *QUICK)
    assert result.returncode == 2
    assert "case_002.nii.gz" in last_line(result.stderr) and "shape" in last_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r" / "checkpoints" / "last.keras").exists()



# Tiny 3D U-Net on 16x16x8 patches of the same coarsened phantoms.
QUICK_3D = (*QUICK, "--set", "model.dims=3", "--set", "data.patch_3d=[16, 16, 8]",
            "--set", "data.patches_per_volume=4", "--set", 'augment.flip="z"')


@pytest.mark.parametrize("backend", ["tensorflow", JAX_ONLY])
def test_3d_patches_train_and_slide_over_whole_volumes(project: Path, backend: str) -> None:
    run = project / "runs" / f"3d_{backend}"
    result = run_project(project, "train", "--run-dir", str(run), *QUICK_3D, backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3D patches 16x16x8" in result.stdout
    final = json.loads((run / "metrics.json").read_text())["final"]
    assert 0.0 <= final["dice"] <= 1.0 and len(final["per_volume_dice"]) == 1
    meta = json.loads((run / "meta.json").read_text())
    assert meta["dims"] == 3 and meta["blend"] == "gaussian"
    source = project / "data" / "imagesTr" / f"{meta['val_cases'][0]}.nii.gz"
    result = run_project(project, "predict", "--run-dir", str(run), str(source),
                         "--out", str(run / "masks"), backend=backend)
    assert result.returncode == 0, result.stderr[-2000:]
    image, mask = nib.load(source), nib.load(run / "masks" / source.name)
    assert mask.shape == image.shape and np.allclose(mask.affine, image.affine)


# ------------------------------------------------------------------ slice classification

TINY_CLASSIFIER = ("--set", "train.epochs=1", "--set", "data.image_size=32", "--set",
                   "model.width=4", "--set", "model.depth=2", "--set", "train.batch_size=16")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("medical_cls"), "slice_demo", "medical",
                    task="classification")


@pytest.mark.parametrize("backend", ["tensorflow", JAX_ONLY])
def test_classification_trains_and_predicts_probabilities(classifier: Path, backend: str
                                                          ) -> None:
    assert {p.name for p in (classifier / "data").iterdir()} == {"lesion", "no_lesion"}
    run = classifier / "runs" / backend
    result = run_project(classifier, "train", "--run-dir", str(run), *TINY_CLASSIFIER,
                         backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "validation auc" in result.stdout and "patients" in result.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    final = metrics["final"]
    assert 0.0 <= final["auc"] <= 1.0 and 0.0 <= final["accuracy"] <= 1.0
    # one epoch: the epoch's exact AUC is the report's (issue 15, item 14)
    assert metrics["best"]["val_auc"] == pytest.approx(final["auc"], abs=1e-9)
    assert set(final["per_class_auc"]) == {"lesion", "no_lesion"}
    assert (run / "plots" / "roc.png").stat().st_size > 1000
    meta = json.loads((run / "meta.json").read_text())
    assert meta["task"] == "classification" and meta["val_patients"] >= 1
    # per-patient split: the two sides' patient counts add up to all patients, so none is shared
    patients = {p.name.split("_")[0] for p in (classifier / "data").rglob("*_slice*")}
    assert meta["train_patients"] + meta["val_patients"] == len(patients) == 20
    assert set(meta["val_groups"]) < patients

    inputs = classifier / "data" / "lesion"
    result = run_project(classifier, "predict", "--run-dir", str(run), str(inputs),
                         "--out", str(run / "pred"), backend=backend)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = (run / "pred" / "predictions.csv").read_text().splitlines()
    assert lines[0] == "file,class,p_lesion,p_no_lesion"
    assert len(lines) == 1 + len(list(inputs.iterdir()))


def test_classification_names_a_corrupt_dicom(classifier: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(classifier / "data", data)
    broken = sorted((data / "no_lesion").glob("*.dcm"))[0]
    broken.write_bytes(broken.read_bytes()[:300])
    result = run_project(classifier, "train", "--run-dir", str(tmp_path / "r"),
                         "--set", f'data.dir="{data}"', *TINY_CLASSIFIER)
    assert result.returncode == 2
    assert broken.name in last_line(result.stderr) and "Traceback" not in result.stderr
