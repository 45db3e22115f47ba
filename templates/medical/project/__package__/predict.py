"""``python -m PACKAGE predict``: label maps for whole volumes, written as NIfTI.

Inputs are .nii/.nii.gz files, DICOM series folders, or folders holding either
(``imagesTs/`` of an MSD data set, say). Each volume goes through the training
preprocessing (RAS+, resampling, normalisation), is segmented slice by slice
(2D) or by a sliding 3D window with ``predict.overlap`` and Gaussian blending (3D),
and the class probabilities are resampled back onto the input's own voxel grid
before the argmax, so ``OUT/<case>.nii.gz`` has the input's shape and affine.
``OUT/volumes.csv`` lists the volume of every class in millilitres.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import model as _model  # noqa: F401  registers the custom loss/metric for load_model
from . import rundir
from .config import choice, get, load_config
from .csv_out import write_csv
from .data import pad_slices, padded_shape, prepare_image
from .errors import DataError
from .patches import BLENDS, sliding_window
from .volumes import NIFTI_SUFFIXES, Volume, case_name, is_nifti, load_volume, resample_to


def run_prediction(run_path: Path, inputs: list[Path], out: Path | None,
                   overrides: list[str] | None = None) -> Path:
    """Segment every input volume; return the output folder."""
    run = rundir.open_existing(run_path)
    config = load_config(run.config, overrides or [])  # predict --set KEY=VALUE
    meta = rundir.read_meta(run)
    if meta.get("task") == "classification":
        from . import classify_predict

        return classify_predict.classify(run, config, meta, inputs, out)
    sources = expand(inputs)
    if int(meta.get("dims", 2)) == 3:  # the window may change at predict time (--set)
        meta = {**meta, "overlap": float(get(config, "predict.overlap")),
                "blend": choice(config, "predict.blend", BLENDS)}
    out = rundir.output_folder(run, out)
    net = rundir.load_model(rundir.model_checkpoint(run))
    rundir.check_model_outputs(net, meta)
    batch_size = int(get(config, "train.batch_size"))
    rows = []
    for source in sources:
        volume = load_volume(source)
        mask = segment(net, volume, meta, batch_size)
        target = out / f"{case_name(source)}.nii.gz"
        write_mask(mask, volume, target)
        voxel_ml = abs(float(np.linalg.det(volume.affine[:3, :3]))) / 1000.0
        counts = np.bincount(mask.ravel(), minlength=len(meta["class_names"]))
        rows.append([str(source), str(target),
                     *(f"{counts[i] * voxel_ml:.2f}" for i in range(1, len(counts)))])
        found = ", ".join(f"{name} {counts[i] * voxel_ml:.1f} ml"
                          for i, name in enumerate(meta["class_names"]) if i and counts[i])
        print(f"{source} -> {target} ({found or 'no foreground'})")
    write_csv(out / "volumes.csv", ["input", "mask", *(f"{n}_ml" for n in meta["class_names"][1:])],
              rows)
    print(f"{len(rows)} mask(s) written to {out}")
    return out


def segment(net: keras.Model, volume: Volume, meta: dict[str, Any], batch_size: int
            ) -> np.ndarray:
    """Label map (uint8) on the volume's own grid and axis order."""
    image = prepare_image(volume, meta)
    if int(meta.get("dims", 2)) == 3:
        probabilities = sliding_window(
            lambda x: net.predict(x, verbose=0), image, tuple(meta["patch_3d"]),
            float(meta["overlap"]), str(meta["blend"]), batch_size=batch_size,
            fill=int(image.min()))
    else:
        probabilities = _slice_probabilities(net, image, meta, batch_size)
    # Resample each class's probability to the input grid and keep the running argmax:
    # smoother edges than resampling labels, and one class in memory at a time.
    best = np.full(volume.data.shape, -1.0, dtype=np.float32)
    labels = np.zeros(volume.data.shape, dtype=np.uint8)
    for value in range(probabilities.shape[-1]):
        resampled = resample_to(probabilities[..., value], volume.data.shape, order=1)
        better = resampled > best
        labels[better], best[better] = value, resampled[better]
    return volume.to_original(labels).astype(np.uint8)


def _slice_probabilities(net: keras.Model, image: np.ndarray, meta: dict[str, Any],
                         batch_size: int) -> np.ndarray:
    """(x, y, z, classes) from the 2D network, one axial slice at a time."""
    size = padded_shape(image.shape, meta)
    slices = pad_slices(image, size, int(image.min())).transpose(2, 0, 1)[..., None]
    probabilities = net.predict(slices, batch_size=batch_size, verbose=0)
    left = [(t - n) // 2 for n, t in zip(image.shape[:2], size, strict=True)]
    return probabilities[:, left[0]:left[0] + image.shape[0],
                         left[1]:left[1] + image.shape[1]].transpose(1, 2, 0, 3)


def write_mask(mask: np.ndarray, volume: Volume, target: Path) -> None:
    """Save a uint8 label map with the input's affine (written atomically)."""
    import nibabel as nib

    image = nib.Nifti1Image(mask, volume.affine)
    image.header.set_data_dtype(np.uint8)
    image.header.set_intent("label")
    image.set_qform(volume.affine, code=1)
    image.set_sform(volume.affine, code=1)
    rundir.write_via(target, lambda tmp: nib.save(image, tmp))


def expand(inputs: list[Path]) -> list[Path]:
    """NIfTI files and DICOM series folders named directly or found inside folders."""
    found: list[Path] = []
    for path in inputs:
        if not path.exists():
            raise DataError(f"input {path} does not exist")
        if path.is_file():
            if not is_nifti(path):
                raise DataError(f"{path}: not a NIfTI file ({', '.join(NIFTI_SUFFIXES)}); "
                                "pass DICOM series as folders")
            found.append(path)
            continue
        niftis = sorted(p for p in path.rglob("*") if p.is_file() and is_nifti(p))
        if niftis:
            found += niftis
        elif any(p.is_file() and not p.name.startswith(".") for p in path.iterdir()):
            found.append(path)  # a folder of files and no NIfTI: one DICOM series
        else:
            found += sorted(p for p in path.iterdir() if p.is_dir())
    if not found:
        raise DataError("no .nii/.nii.gz files or DICOM series folders in the inputs")
    return found
