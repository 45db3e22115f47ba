"""Procedural 3D abdomen phantoms with organ and lesion label maps.

``write_phantoms`` writes a small segmentation training set in the Medical
Segmentation Decathlon layout::

    out/dataset.json
    out/imagesTr/case_000.nii.gz   int16: Hounsfield units (CT) or arbitrary units (MRI)
    out/labelsTr/case_000.nii.gz   uint8 label map, same shape and affine

Each case is one simulated subject: a body ellipse with skin, subcutaneous fat and a
muscle wall; spine, aorta, vena cava and bowel loops with gas; liver, spleen, kidneys
and stomach as rotated, bent and lobulated ellipsoids; small lesions inside organs.
The clean tissue map then goes through the degradations a segmentation model must
survive: partial-volume blur, a smooth multiplicative bias field and Gaussian (CT) or
Rician (MRI) noise. The anatomy, the per-volume intensities and the noise come from
three independent random streams per case, so changing ``modality``, ``contrast`` or
``noise`` keeps the same subjects: the way to test generalisation to unseen scanners.

Volumes are stored as (x, y, z) arrays whose axes run towards the patient's left,
posterior and superior (the DICOM LPS order a scanner's NIfTI conversion keeps), so
the RAS affine is ``diag(-sx, -sy, sz)``; ``write_dicom_series`` writes the same
array as a CT series whose geometry matches that affine.

Everything is vectorised numpy; a 96x96x48 case takes a fraction of a second.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from .parallel import available_cpus, run_pieces, split
from .staging import staged_dir

DEFAULT_SIZE = 6
MODALITIES = ("ct", "mri")
# Organs that can be labelled; all of them are always drawn, unlabelled ones stay background.
ORGANS = ("liver", "spleen", "kidney_right", "kidney_left", "stomach")
DEFAULT_ORGANS = ("liver", "kidney_right", "kidney_left", "spleen")

# tissue -> (CT HU, CT texture HU, MRI value, MRI texture); MRI values are T1-weighted-like.
_TISSUE_TABLE: dict[str, tuple[float, float, float, float]] = {
    "air": (-1000.0, 0.0, 0.0, 0.0),
    "skin": (30.0, 3.0, 0.50, 0.02),
    "fat": (-100.0, 8.0, 0.95, 0.03),
    "muscle": (50.0, 6.0, 0.32, 0.02),
    "visceral": (-60.0, 35.0, 0.75, 0.10),  # mesenteric fat mixed with small bowel
    "bowel": (30.0, 15.0, 0.38, 0.06),
    "gas": (-900.0, 20.0, 0.02, 0.01),
    "cortical_bone": (900.0, 60.0, 0.05, 0.02),
    "marrow": (220.0, 40.0, 0.65, 0.05),
    "disc": (80.0, 5.0, 0.30, 0.02),
    "csf": (10.0, 3.0, 0.12, 0.01),
    "aorta": (180.0, 4.0, 0.10, 0.02),
    "ivc": (130.0, 4.0, 0.15, 0.02),
    "liver": (105.0, 6.0, 0.60, 0.03),
    "spleen": (115.0, 5.0, 0.42, 0.02),
    "kidney_right": (175.0, 8.0, 0.50, 0.03),
    "medulla_right": (120.0, 8.0, 0.30, 0.03),
    "kidney_left": (175.0, 8.0, 0.50, 0.03),
    "medulla_left": (120.0, 8.0, 0.30, 0.03),
    "stomach": (15.0, 6.0, 0.20, 0.02),
    "stomach_gas": (-900.0, 20.0, 0.02, 0.01),
}
_TISSUES = tuple(_TISSUE_TABLE)
_T = {name: index for index, name in enumerate(_TISSUES)}
_ORGAN_TISSUES = {
    "liver": ("liver",),
    "spleen": ("spleen",),
    "kidney_right": ("kidney_right", "medulla_right"),
    "kidney_left": ("kidney_left", "medulla_left"),
    "stomach": ("stomach", "stomach_gas"),
}
# Tissues whose intensity `contrast` stretches around soft tissue; air, gas, fat, bone keep theirs.
_CONTRAST_TISSUES = frozenset(_TISSUES) - {
    "air",
    "gas",
    "stomach_gas",
    "fat",
    "visceral",
    "cortical_bone",
    "marrow",
}
# Where lesions grow, with relative frequency (hepatic lesions are the common case).
_LESION_HOSTS = {"liver": 0.6, "kidney_right": 0.13, "kidney_left": 0.13, "spleen": 0.14}
_CT_PIVOT_HU = 40.0
_MRI_PIVOT = 0.5
_CT_RANGE = (-1024, 3071)
_DICOM_INTERCEPT = -1024.0
_Vector = Sequence[float] | np.ndarray  # a point or radii in patient coordinates
_UID_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


@dataclass(frozen=True)
class PhantomConfig:
    """What every case of a phantom data set shares.

    Attributes:
        shape: Volume shape (x, y, z) in voxels.
        spacing: Voxel size (x, y, z) in millimetres, stored in the affine. The anatomy
            scales with the field of view; the default 3x3x6 mm makes the default grid a
            288 mm cube, a plausible abdomen, with slices twice as thick as the pixels.
        modality: ``"ct"`` (Hounsfield units) or ``"mri"`` (arbitrary units, random gain).
        organs: Organs that get a label, in label order (1, 2, ...); see ``ORGANS``.
        max_lesions: Each case gets 1 to this many lesions with their own label; 0 for none.
        contrast: Scales soft-tissue contrast (1 is the training default).
        noise: Scales the noise standard deviation (0 switches noise off).
        bias: Scales the strength of the smooth multiplicative bias field.
        blur: Scales the partial-volume blur (0 switches it off).
        variability: Scales how much pose and organ shapes vary between subjects.
        lesion_size: Scales lesion radii (1: 4.5-10 % of the half field of view in-plane).
    """

    shape: tuple[int, int, int] = (96, 96, 48)
    spacing: tuple[float, float, float] = (3.0, 3.0, 6.0)
    modality: str = "ct"
    organs: tuple[str, ...] = DEFAULT_ORGANS
    max_lesions: int = 3
    contrast: float = 1.0
    noise: float = 1.0
    bias: float = 1.0
    blur: float = 1.0
    variability: float = 1.0
    lesion_size: float = 1.0

    def __post_init__(self) -> None:
        shape = _int_triple("shape", self.shape)
        if not all(16 <= n <= 512 for n in shape):
            raise ValueError(f"shape must be 3 integers between 16 and 512, got {self.shape!r}")
        spacing = _float_triple("spacing", self.spacing)
        if not all(0 < s <= 100 for s in spacing):
            raise ValueError(f"spacing must be 3 millimetre values in (0, 100], got {spacing!r}")
        modality = str(self.modality).lower()
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        organs = (self.organs,) if isinstance(self.organs, str) else tuple(self.organs)
        unknown = [name for name in organs if name not in ORGANS]
        if not organs or unknown or len(set(organs)) != len(organs):
            raise ValueError(f"organs must be distinct names from {ORGANS}, got {self.organs!r}")
        if not _is_int(self.max_lesions) or not 0 <= self.max_lesions <= 10:
            raise ValueError(f"max_lesions must be an integer in [0, 10], got {self.max_lesions!r}")
        for name in ("contrast", "noise", "bias", "blur", "variability", "lesion_size"):
            value = getattr(self, name)
            if _is_int(value) or isinstance(value, float | np.floating):
                value = float(value)
                low_ok = value > 0 if name in ("contrast", "lesion_size") else value >= 0
                if low_ok and value <= 10:
                    object.__setattr__(self, name, value)
                    continue
            bound = "(0, 10]" if name in ("contrast", "lesion_size") else "[0, 10]"
            raise ValueError(f"{name} must be a number in {bound}, got {value!r}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "modality", modality)
        object.__setattr__(self, "organs", organs)

    @property
    def labels(self) -> dict[int, str]:
        """Label value -> name, background included."""
        names = ["background", *self.organs] + (["lesion"] * (self.max_lesions > 0))
        return dict(enumerate(names))


@dataclass(frozen=True)
class Phantom:
    """One generated subject."""

    image: np.ndarray  # (x, y, z) int16: HU for CT, arbitrary units for MRI
    label: np.ndarray  # (x, y, z) uint8, values in PhantomConfig.labels
    affine: np.ndarray  # 4x4 RAS affine shared by image and label
    num_lesions: int


def phantom_affine(shape: Sequence[int], spacing: Sequence[float]) -> np.ndarray:
    """RAS affine of an LPS-ordered grid centred on the origin: ``diag(-sx, -sy, sz)``."""
    (nx, ny, nz), (sx, sy, sz) = shape, spacing
    affine = np.diag([-float(sx), -float(sy), float(sz), 1.0])
    affine[:3, 3] = [sx * (nx - 1) / 2, sy * (ny - 1) / 2, -sz * (nz - 1) / 2]
    return affine


def generate_phantom(
    index: int = 0, *, seed: int = 0, config: PhantomConfig | None = None
) -> Phantom:
    """Simulate subject ``index`` of the data set drawn with ``seed``.

    Args:
        index: Case number; each (seed, index) pair is an independent subject.
        seed: Seed of the data set.
        config: Shared settings; defaults to ``PhantomConfig()``.

    Returns:
        The image, its label map and their affine.
    """
    config = config or PhantomConfig()
    for name, value in (("index", index), ("seed", seed)):
        if not _is_int(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    anatomy_rng, intensity_rng, noise_rng = (
        np.random.default_rng(stream) for stream in np.random.SeedSequence([seed, index]).spawn(3)
    )
    affine = phantom_affine(config.shape, config.spacing)
    grid = _patient_grid(config.shape, affine)
    tissue, lesions, lesion_hosts = _anatomy(grid, config, anatomy_rng)
    if config.modality == "ct":
        image = _ct_image(tissue, lesions, lesion_hosts, grid, config, intensity_rng, noise_rng)
    else:
        image = _mri_image(tissue, lesions, lesion_hosts, grid, config, intensity_rng, noise_rng)

    label_of_tissue = np.zeros(len(_TISSUES), np.uint8)
    for value, organ in enumerate(config.organs, start=1):
        label_of_tissue[[_T[name] for name in _ORGAN_TISSUES[organ]]] = value
    label = label_of_tissue[tissue]
    if config.max_lesions:
        label[lesions > 0] = len(config.organs) + 1
    return Phantom(image=image, label=label, affine=affine, num_lesions=len(lesion_hosts))


def write_phantoms(out: Path, *, size: int | None = None, seed: int = 0, **kw: Any) -> str:
    """Write ``size`` phantom cases in the Medical Segmentation Decathlon layout.

    Args:
        out: Destination folder; must not exist or be empty.
        size: Number of cases (default 6).
        seed: Seed; the same seed and options give identical volumes.
        **kw: Fields of ``PhantomConfig`` (shape, spacing, modality, organs, ...).

    Returns:
        A one-line summary with the time per case.

    Raises:
        FileExistsError: ``out`` exists and is not an empty folder.
        ValueError: An argument is out of range or unknown.
    """
    import nibabel as nib

    size = DEFAULT_SIZE if size is None else size
    if not _is_int(size) or not 1 <= size <= 10_000:
        raise ValueError(f"size must be an integer in [1, 10000], got {size!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    known = {f.name for f in fields(PhantomConfig)}
    if unknown := sorted(set(kw) - known):
        raise ValueError(f"unknown phantom option(s) {unknown}; choose from {sorted(known)}")
    config = PhantomConfig(**kw)
    out = Path(out)

    started = time.perf_counter()
    with staged_dir(out) as tmp:
        (tmp / "imagesTr").mkdir()
        (tmp / "labelsTr").mkdir()
        training = []
        for index in range(size):
            case = generate_phantom(index, seed=seed, config=config)
            name = f"case_{index:03d}.nii.gz"
            image = nib.Nifti1Image(case.image, case.affine)
            label = nib.Nifti1Image(case.label, case.affine)
            label.header.set_intent("label")
            for img, kind in ((image, "image"), (label, "label")):
                img.header.set_xyzt_units("mm")
                img.set_qform(case.affine, code=1)
                img.set_sform(case.affine, code=1)
                img.header["descrip"] = f"appgen phantom seed={seed} case={index} {kind}".encode()
            # nibabel writes scl_slope/scl_inter 1/0 for unscaled arrays and gzip with mtime 0.
            nib.save(image, tmp / "imagesTr" / name)
            nib.save(label, tmp / "labelsTr" / name)
            training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
        (tmp / "dataset.json").write_text(
            json.dumps(_dataset_json(config, seed, training), indent=2) + "\n", encoding="utf-8"
        )
    per_case = (time.perf_counter() - started) / size
    shape = "x".join(map(str, config.shape))
    spacing = "x".join(f"{s:g}" for s in config.spacing)
    names = ", ".join(list(config.labels.values())[1:])
    return (
        f"wrote {size} {config.modality.upper()} phantoms {shape} at {spacing} mm "
        f"(labels: {names}) to {out} in {per_case:.2f} s/case"
    )


def write_dicom_series(
    out_dir: Path,
    volume: np.ndarray,
    spacing: Sequence[float],
    *,
    seed: int = 0,
    series_uid: str | None = None,
) -> None:
    """Write a CT volume as a DICOM series, one file per slice, in shuffled file order.

    ``volume[:, :, k]`` becomes slice k, with columns along axis 0 and rows along axis 1
    (``pixel_array == volume[:, :, k].T``). Geometry is standard LPS: ImageOrientation
    ``[1, 0, 0, 0, 1, 0]``, ImagePositionPatient increasing by ``spacing[2]`` per slice and
    matching ``phantom_affine``. Pixels are stored as uint16 with RescaleSlope 1 and
    RescaleIntercept -1024, so a reader must apply the rescale. File names are a random
    permutation of slice numbers, so a reader must sort by position.

    Args:
        out_dir: Destination folder; must not exist or be empty.
        volume: (x, y, z) array in Hounsfield units, rounded to integers in [-1024, 64511].
        spacing: Voxel size (x, y, z) in millimetres.
        seed: Seeds the file-name order and the UIDs.
        series_uid: SeriesInstanceUID shared by all slices; derived from ``seed`` if None.

    Raises:
        FileExistsError: ``out_dir`` exists and is not an empty folder.
        ValueError: Bad volume, spacing, seed or UID.
    """
    from pydicom.uid import generate_uid

    volume = np.asarray(volume)
    if volume.ndim != 3 or 0 in volume.shape or not np.issubdtype(volume.dtype, np.number):
        raise ValueError(f"volume must be a non-empty 3D numeric array, got shape {volume.shape}")
    if not np.all(np.isfinite(volume)):
        raise ValueError("volume contains NaN or infinite values")
    hu = np.rint(volume.astype(np.float64))
    low, high = _DICOM_INTERCEPT, _DICOM_INTERCEPT + np.iinfo(np.uint16).max
    if hu.min() < low or hu.max() > high:
        raise ValueError(
            f"volume values must lie in [{low:g}, {high:g}] HU, got [{hu.min():g}, {hu.max():g}]"
        )
    sx, sy, sz = _float_triple("spacing", spacing)
    if not all(s > 0 for s in (sx, sy, sz)):
        raise ValueError(f"spacing must be positive, got {spacing!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if series_uid is None:
        series_uid = generate_uid(entropy_srcs=["appgen-phantom-series", str(seed)])
    elif (
        not isinstance(series_uid, str)
        or len(series_uid) > 64
        or not _UID_PATTERN.fullmatch(series_uid)
    ):
        raise ValueError(f"series_uid {series_uid!r} is not a valid DICOM UID")

    stored = (hu - _DICOM_INTERCEPT).astype(np.uint16)
    nz = volume.shape[2]
    origin = -phantom_affine(volume.shape, (sx, sy, sz))[:3, 3] * [1, 1, -1]  # RAS -> LPS
    study_uid, frame_uid = (
        generate_uid(entropy_srcs=[kind, str(seed), series_uid]) for kind in ("study", "frame")
    )
    file_numbers = np.random.default_rng(seed).permutation(nz)

    with staged_dir(Path(out_dir)) as tmp:
        for k in range(nz):
            z = origin[2] + k * sz
            ds = _ct_slice(
                stored[:, :, k],
                (origin[0], origin[1], z),
                (sx, sy, sz),
                uids=(study_uid, series_uid, frame_uid),
                sop_uid=generate_uid(entropy_srcs=["slice", series_uid, str(k)]),
                patient=f"PHANTOM{seed:04d}",
                instance=k + 1,
            )
            _save_dicom(ds, tmp / f"IM{file_numbers[k]:05d}.dcm")


SLICE_CLASSES = ("lesion", "no_lesion")
DEFAULT_SLICE_PATIENTS = 20
PARALLEL_MIN_PATIENTS = 8  # fewer are not worth starting a worker process for
_SLICE_PHANTOM = {"shape": (128, 128, 32), "spacing": (2.25, 2.25, 9.0), "max_lesions": 4,
                  "lesion_size": 1.6}
_MIN_LESION_PIXELS = 40  # a slice is "lesion" from this many lesion pixels; 1..39 is skipped
_MIN_ORGAN_PIXELS = 800  # slices with less organ than this (top, bottom of the scan) are skipped
_PNG_WINDOW = (-160.0, 240.0)  # the DICOM files' WindowCenter 40 / WindowWidth 400


def write_phantom_slices(out: Path, *, size: int | None = None, seed: int = 0) -> str:
    """Write axial phantom slices as class folders for slice classification.

    ``out/lesion/`` holds slices showing at least 40 pixels of a lesion, ``out/no_lesion/``
    slices with none (slices in between are ambiguous and skipped, as are those with little
    organ). Every one of ``size`` patients is one phantom (128x128 pixels of 2.25 mm, 32
    slices of 9 mm). Three patients in four are written as CT DICOM files (uint16 with
    RescaleIntercept -1024, PatientID ``S<seed>P<nnn>``, WindowCenter/Width 40/400); every
    fourth as 8-bit PNG windowed like the DICOM files. File names are
    ``S<seed>P<nnn>_slice<kk>.{dcm,png}``,
    so a reader can keep a patient's slices on one side of a split.

    Args:
        out: Destination folder; must not exist or be empty.
        size: Number of patients (default 20, about 300 slices); from 8 patients on
            they are simulated on every available core.
        seed: Seed; the same seed gives identical files.

    Returns:
        A one-line summary with the number of slices per class.
    """
    size = DEFAULT_SLICE_PATIENTS if size is None else size
    if not _is_int(size) or not 1 <= size <= 10_000:
        raise ValueError(f"size must be an integer in [1, 10000], got {size!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    counts = dict.fromkeys(SLICE_CLASSES, 0)
    started = time.perf_counter()
    with staged_dir(Path(out)) as tmp:
        for name in SLICE_CLASSES:
            (tmp / name).mkdir()
        # Patients are independent: large sets are simulated in pieces on every core.
        parts = available_cpus() if size >= PARALLEL_MIN_PATIENTS else 1
        jobs = [(str(tmp), seed, start, stop) for start, stop in split(size, parts)]
        for piece in run_pieces(_write_slice_patients, jobs):
            for name, count in piece.items():
                counts[name] += count
    seconds = time.perf_counter() - started
    return (
        f"wrote {sum(counts.values())} CT slices of {size} phantom patients "
        f"({', '.join(f'{n}: {c}' for n, c in counts.items())}; DICOM and PNG) "
        f"to {out} in {seconds:.1f} s"
    )


def _write_slice_patients(folder: str, seed: int, start: int, stop: int) -> dict[str, int]:
    """Write the slices of patients ``start..stop-1`` into ``folder``'s class folders;
    return the slices written per class. Runs in a worker process for large sets."""
    from PIL import Image
    from pydicom.uid import generate_uid

    tmp = Path(folder)
    config = PhantomConfig(**_SLICE_PHANTOM)
    lesion_value = len(config.organs) + 1
    counts = dict.fromkeys(SLICE_CLASSES, 0)
    for index in range(start, stop):
        case = generate_phantom(index, seed=seed, config=config)
        patient = f"S{seed}P{index:03d}"  # unique across seeds: sets can be combined
        uids = tuple(generate_uid(entropy_srcs=[kind, str(seed), patient])
                     for kind in ("study", "series", "frame"))
        origin = -case.affine[:3, 3] * [1, 1, -1]  # RAS -> LPS
        lesion_pixels = (case.label == lesion_value).sum(axis=(0, 1))
        organ_pixels = ((case.label > 0) & (case.label < lesion_value)).sum(axis=(0, 1))
        for k in range(config.shape[2]):
            if organ_pixels[k] < _MIN_ORGAN_PIXELS or 0 < lesion_pixels[k] < _MIN_LESION_PIXELS:
                continue
            label = SLICE_CLASSES[0] if lesion_pixels[k] else SLICE_CLASSES[1]
            hu = case.image[:, :, k].astype(np.float64)
            stem = f"{patient}_slice{k:02d}"
            if index % 4 == 3:
                low, high = _PNG_WINDOW
                grey = np.clip((hu - low) / (high - low) * 255.0, 0, 255).round()
                # (x, y) -> rows = y, columns = x, as the DICOM pixel_array
                Image.fromarray(grey.T.astype(np.uint8)).save(tmp / label / f"{stem}.png")
            else:
                ds = _ct_slice(
                    (hu - _DICOM_INTERCEPT).astype(np.uint16),
                    (origin[0], origin[1], origin[2] + k * config.spacing[2]),
                    config.spacing,
                    uids=uids,  # type: ignore[arg-type]
                    sop_uid=generate_uid(entropy_srcs=["slice", patient, str(seed), str(k)]),
                    patient=patient,
                    instance=k + 1,
                )
                _save_dicom(ds, tmp / label / f"{stem}.dcm")
            counts[label] += 1
    return counts


def _ct_slice(
    stored: np.ndarray,
    position: Sequence[float],
    spacing: Sequence[float],
    *,
    uids: tuple[str, str, str],
    sop_uid: str,
    patient: str,
    instance: int,
) -> Any:
    """One axial CT slice (stored uint16 (x, y) values, HU = stored - 1024) as a Dataset."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian

    sx, sy, sz = spacing
    nx, ny = stored.shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = uids
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Modality = "CT"
    ds.Manufacturer = "appgen phantom"
    ds.PatientName = f"Phantom^{patient}"
    ds.PatientID = patient
    ds.StudyDate = ds.SeriesDate = "20240101"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    ds.BodyPartExamined = "ABDOMEN"
    ds.PatientPosition = "HFS"
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceLocation = _ds(position[2])
    ds.SliceThickness = _ds(sz)
    ds.SpacingBetweenSlices = _ds(sz)
    ds.PixelSpacing = [_ds(sy), _ds(sx)]  # (between rows, between columns)
    ds.Rows, ds.Columns = ny, nx
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = _ds(_DICOM_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.PixelData = np.ascontiguousarray(stored.T).astype("<u2").tobytes()
    return ds


def _save_dicom(ds: Any, path: Path) -> None:
    """Save as a DICOM Part 10 file (explicit VR little endian) on pydicom 2.4 and 3."""
    from pydicom.dataset import Dataset

    if "enforce_file_format" in inspect.signature(Dataset.save_as).parameters:
        ds.save_as(path, enforce_file_format=True)
    else:  # pydicom 2.4
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(path, write_like_original=False)


# ---------------------------------------------------------------------------- anatomy


def _patient_grid(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """(3, x, y, z) patient coordinates (right, anterior, superior), ±1 at the FOV edges."""
    axes = []
    for axis, n in enumerate(shape):
        world = affine[axis, axis] * np.arange(n) + affine[axis, 3]
        axes.append((world / (abs(affine[axis, axis]) * n / 2)).astype(np.float32))
    u, v, w = np.meshgrid(*axes, indexing="ij")
    return np.stack([u, v, w])


def _rotation(yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Rotation matrix for angles in degrees about the superior, anterior and right axes."""
    a, b, c = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rx = np.array([[1, 0, 0], [0, np.cos(c), -np.sin(c)], [0, np.sin(c), np.cos(c)]])
    return (rz @ ry @ rx).astype(np.float32)


def _to_local(points: np.ndarray, center: _Vector, rotation: np.ndarray) -> np.ndarray:
    """Coordinates of ``points`` in a frame at ``center`` rotated by ``rotation``."""
    offset = points - np.asarray(center, np.float32)[:, None, None, None]
    return np.einsum("ji,j...->i...", rotation, offset)


def _blob(
    points: np.ndarray,
    center: _Vector,
    radii: _Vector,
    rotation: np.ndarray,
    *,
    bend: float = 0.0,
    taper: float = 0.0,
    lobes: float = 0.0,
    phase: float = 0.0,
) -> np.ndarray:
    """Normalised radius of a deformed ellipsoid: < 1 inside, 0 at the centre.

    ``points`` is a regular grid (linear in the voxel index). Only the box of voxels that
    can hold a value below 1 is computed; every voxel outside it is ``inf``, which keeps
    a whole volume's anatomy to a fraction of a second.
    """
    rho = np.full(points.shape[1:], np.inf, np.float32)
    window = _blob_window(points, center, radii, rotation, bend, taper, lobes)
    if window is None:
        return rho
    q = (_to_local(points[(slice(None), *window)], center, rotation)
         / np.asarray(radii, np.float32)[:, None, None, None])
    a, b, c = q[0] + bend * q[2] ** 2, q[1], q[2]  # bend: poles curve towards -a
    if taper:  # thicker where a > 0
        b = b / np.clip(1 + taper * a, 0.3, None)
    inner = np.sqrt(a * a + b * b + c * c)
    if lobes:
        theta = np.arctan2(b, a)
        inner = inner / (1 + lobes * np.sin(3 * theta + phase) * np.cos(2.5 * c + phase))
    rho[window] = inner
    return rho


def _blob_window(
    points: np.ndarray,
    center: _Vector,
    radii: _Vector,
    rotation: np.ndarray,
    bend: float,
    taper: float,
    lobes: float,
) -> tuple[slice, slice, slice] | None:
    """Index box holding every voxel where ``_blob`` can be below 1 (None: no voxel)."""
    shape = points.shape[1:]
    everything = tuple(slice(0, n) for n in shape)
    if min(shape) < 2 or abs(lobes) >= 1:
        return everything  # type: ignore[return-value]
    # Inside means rho < 1 + |lobes|, which bounds the bent and tapered axes in turn.
    spread = 1.0 + abs(lobes)
    reach_a = spread + abs(bend) * spread**2
    bound = np.array([reach_a, spread * (1 + abs(taper) * spread), spread])
    corners = np.array(np.meshgrid(*[(-1.0, 1.0)] * 3, indexing="ij")).reshape(3, -1)
    local = corners * (bound * np.asarray(radii, np.float64))[:, None]
    world = np.asarray(center, np.float64)[:, None] + rotation.astype(np.float64) @ local
    # The grid is linear in the voxel index: points = origin + steps @ index.
    origin = points[:, 0, 0, 0].astype(np.float64)
    steps = np.stack([
        (points[(slice(None), *[n - 1 if axis == k else 0 for k, n in enumerate(shape)])]
         .astype(np.float64) - origin) / (shape[axis] - 1)
        for axis in range(3)
    ], axis=1)
    try:
        index = np.linalg.solve(steps, world - origin[:, None])
    except np.linalg.LinAlgError:
        return everything  # type: ignore[return-value]
    low = np.maximum(np.floor(index.min(axis=1)).astype(int) - 1, 0)
    high = np.minimum(np.ceil(index.max(axis=1)).astype(int) + 2, shape)
    if np.any(low >= high):
        return None
    return (slice(low[0], high[0]), slice(low[1], high[1]), slice(low[2], high[2]))


# name: (center (u, v, w), radii, yaw degrees, bend, taper)
_ORGAN_LAYOUT: dict[
    str, tuple[tuple[float, float, float], tuple[float, float, float], float, float, float]
] = {
    "liver": ((0.36, 0.05, 0.30), (0.38, 0.36, 0.60), 15.0, 0.0, 0.35),
    "stomach": ((-0.26, 0.26, 0.40), (0.22, 0.15, 0.30), 25.0, 0.15, 0.0),
    "spleen": ((-0.50, -0.12, 0.30), (0.13, 0.24, 0.32), -40.0, 0.20, 0.0),
    "kidney_right": ((0.32, -0.25, -0.22), (0.14, 0.17, 0.30), -25.0, 0.35, 0.0),
    "kidney_left": ((-0.31, -0.24, -0.15), (0.14, 0.17, 0.30), 25.0, -0.35, 0.0),
}


def _anatomy(
    grid: np.ndarray, config: PhantomConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Paint one subject's tissues; return (tissue map, lesion ids, host organ per lesion)."""
    var = config.variability
    shape = grid.shape[1:]
    # Patient pose in the scanner: small rotation and shift of the whole anatomy.
    pose = _rotation(*(rng.normal(0, [3.0, 2.0, 2.0]) * var))
    shift = np.clip(rng.normal(0, [0.03, 0.03, 0.06]) * var, -0.08, 0.08)
    points = _to_local(grid, shift, pose)
    u, v, w = points
    tissue = np.full(shape, _T["air"], np.uint8)

    # Body: ellipse flattened at the back, slightly wider at the bottom, layered wall.
    size = rng.uniform(0.93, 1.04)
    rx, ry = 0.86 * size, 0.68 * size
    ry_eff = np.where(v < 0, 0.9 * ry, ry)
    body = np.sqrt((u / (rx * (1 - 0.04 * w))) ** 2 + (v / ry_eff) ** 2)
    body *= 1 + 0.015 * np.sin(5 * np.arctan2(v, u) + rng.uniform(0, 2 * np.pi))
    skin = max(3.0 / min(shape[:2]), 0.015)
    fat = skin + rng.uniform(0.04, 0.12)
    wall = fat + rng.uniform(0.03, 0.05)
    tissue[body < 1] = _T["skin"]
    tissue[body < 1 - skin] = _T["fat"]
    tissue[body < 1 - fat] = _T["muscle"]
    cavity = body < 1 - wall
    tissue[cavity] = _T["visceral"]

    for side in (-1, 1):  # paraspinal muscles
        back = _blob(points, (0.15 * side, -0.40, 0), (0.11, 0.10, 9), _rotation(0)) < 1
        tissue[back & (body < 1 - fat)] = _T["muscle"]

    for _ in range(rng.integers(8, 14)):  # bowel loops, some holding gas
        center = (rng.uniform(-0.55, 0.55), rng.uniform(-0.1, 0.5), rng.uniform(-1.0, 0.5))
        radii = (rng.uniform(0.07, 0.14), rng.uniform(0.07, 0.12), rng.uniform(0.1, 0.25))
        rotation = _rotation(rng.uniform(0, 180))
        loop = _blob(points, center, radii, rotation, lobes=0.1, phase=rng.uniform(0, 6)) < 1
        loop &= cavity
        tissue[loop] = _T["bowel"]
        if rng.random() < 0.5:
            bubble = (center[0], center[1] + 0.4 * radii[1], center[2])
            gas = _blob(points, bubble, [0.55 * r for r in radii], rotation) < 1
            tissue[loop & gas] = _T["gas"]

    fields_by_organ: dict[str, np.ndarray] = {}
    for organ, (mean_center, mean_radii, yaw, bend, taper) in _ORGAN_LAYOUT.items():
        organ_center = np.asarray(mean_center) + rng.normal(0, 0.025 * var, 3)
        organ_radii = np.asarray(mean_radii) * np.exp(rng.normal(0, 0.08 * var, 3))
        rotation = _rotation(yaw + rng.normal(0, 8 * var), *rng.normal(0, 4 * var, 2))
        field = _blob(
            points,
            organ_center,
            organ_radii,
            rotation,
            bend=bend * rng.uniform(0.7, 1.3),
            taper=taper,
            lobes=rng.uniform(0.02, 0.07),
            phase=rng.uniform(0, 2 * np.pi),
        )
        inside = (field < 1) & cavity
        tissue[inside] = _T[organ]
        fields_by_organ[organ] = np.where(inside, field, np.inf).astype(np.float32)
        if organ.startswith("kidney_"):
            tissue[inside & (field < 0.55)] = _T[organ.replace("kidney", "medulla")]
        if organ == "stomach":  # gas rises anteriorly in a supine patient
            tissue[inside & (v > organ_center[1] + 0.45 * organ_radii[1])] = _T["stomach_gas"]

    # Vessels and spine run the full length of the volume.
    vertical = _rotation(0)
    tissue[_blob(points, (-0.05, -0.12, 0), (0.05, 0.05, 9), vertical) < 1] = _T["aorta"]
    tissue[_blob(points, (0.10, -0.10, 0), (0.055, 0.04, 9), vertical) < 1] = _T["ivc"]
    vertebra = _blob(points, (0, -0.26, 0), (0.10, 0.085, 9), vertical)
    tissue[vertebra < 1] = _T["cortical_bone"]
    tissue[vertebra < 0.78] = _T["marrow"]
    disc = ((w * 2.2 + rng.uniform(0, 1)) % 1.0) < 0.18  # vertebral bodies ~ 0.45 apart
    tissue[(vertebra < 1) & disc] = _T["disc"]
    tissue[_blob(points, (0, -0.39, 0), (0.04, 0.035, 9), vertical) < 1] = _T["csf"]
    canal_ring = _blob(points, (0, -0.39, 0), (0.065, 0.06, 9), vertical)
    spinous = _blob(points, (0, -0.47, 0), (0.025, 0.05, 9), vertical)
    tissue[((canal_ring < 1) & (canal_ring >= 0.62)) | ((spinous < 1) & (body < 1 - fat))] = _T[
        "cortical_bone"
    ]

    lesions = np.zeros(shape, np.uint8)
    hosts: list[str] = []
    count = int(rng.integers(1, config.max_lesions + 1)) if config.max_lesions else 0
    for _ in range(count):
        masks = {
            organ: np.isin(tissue, [_T[t] for t in _ORGAN_TISSUES[organ]])
            for organ in _LESION_HOSTS
        }
        available = [organ for organ in _LESION_HOSTS if masks[organ].any()]
        if not available:
            break
        weights = np.array([_LESION_HOSTS[organ] for organ in available])
        host = available[rng.choice(len(available), p=weights / weights.sum())]
        candidates = np.flatnonzero(masks[host] & (fields_by_organ[host] < 0.75))
        if candidates.size == 0:
            candidates = np.flatnonzero(masks[host])
        seed_point = points.reshape(3, -1)[:, rng.choice(candidates)]
        sizes = tuple(config.lesion_size * rng.uniform(low, high)
                      for low, high in ((0.045, 0.10), (0.045, 0.10), (0.07, 0.15)))
        rotation = _rotation(*rng.uniform(0, 180, 3))
        blob = _blob(points, seed_point, sizes, rotation, lobes=0.1, phase=rng.uniform(0, 6))
        lesions[(blob < 1) & masks[host]] = len(hosts) + 1
        hosts.append(host)
    return tissue, lesions, hosts


# ------------------------------------------------------------------------- intensities


def _ct_image(
    tissue: np.ndarray,
    lesions: np.ndarray,
    hosts: list[str],
    grid: np.ndarray,
    config: PhantomConfig,
    rng: np.random.Generator,
    noise_rng: np.random.Generator,
) -> np.ndarray:
    """Hounsfield units: enhancement varies per subject, int16 after noise."""
    table = np.array([_TISSUE_TABLE[t] for t in _TISSUES])
    hu = table[:, 0] + rng.normal(0, 5, len(_TISSUES)) * (table[:, 0] > -500)
    texture = table[:, 1]
    stretch = config.contrast * rng.uniform(0.85, 1.15)  # contrast-agent phase and dose
    lesion_hu = [
        hu[_T[host]] + (-rng.uniform(40, 75) if rng.random() < 0.75 else rng.uniform(40, 75))
        for host in hosts
    ]
    contrasted = np.array([t in _CONTRAST_TISSUES for t in _TISSUES])
    hu = np.where(contrasted, _CT_PIVOT_HU + stretch * (hu - _CT_PIVOT_HU), hu)
    lesion_hu = [_CT_PIVOT_HU + stretch * (value - _CT_PIVOT_HU) for value in lesion_hu]

    image = _paint(tissue, lesions, hosts, hu, texture, lesion_hu, noise_rng)
    image = _blur(image, [0.6 * config.blur] * 3)
    # Beam hardening and heel effect act on attenuation (HU + 1000), not on HU.
    field = _bias_field(grid, 0.02 * config.bias, rng)
    image = (image + 1000) * field - 1000
    if config.noise:
        grain = _blur(noise_rng.standard_normal(image.shape, np.float32), (0.7, 0.7, 0))
        image += 12.0 * config.noise * grain / grain.std()
    return np.rint(np.clip(image, *_CT_RANGE)).astype(np.int16)


def _mri_image(
    tissue: np.ndarray,
    lesions: np.ndarray,
    hosts: list[str],
    grid: np.ndarray,
    config: PhantomConfig,
    rng: np.random.Generator,
    noise_rng: np.random.Generator,
) -> np.ndarray:
    """Arbitrary units: random per-tissue contrast, gamma and gain; Rician noise."""
    table = np.array([_TISSUE_TABLE[t] for t in _TISSUES])
    values = table[:, 2] * np.exp(rng.normal(0, 0.1, len(_TISSUES)))
    values = values ** rng.uniform(0.8, 1.25)
    texture = table[:, 3]
    lesion_values = [
        values[_T[host]]
        * (rng.uniform(0.45, 0.7) if rng.random() < 0.75 else rng.uniform(1.3, 1.6))
        for host in hosts
    ]
    contrasted = np.array([t in _CONTRAST_TISSUES for t in _TISSUES])
    values = np.where(contrasted, _MRI_PIVOT + config.contrast * (values - _MRI_PIVOT), values)
    lesion_values = [_MRI_PIVOT + config.contrast * (x - _MRI_PIVOT) for x in lesion_values]
    gain = math.exp(rng.uniform(math.log(150), math.log(3000)))

    image = _paint(tissue, lesions, hosts, values, texture, lesion_values, noise_rng)
    image = _blur(np.clip(image, 0, None), [0.6 * config.blur] * 3)
    image *= _bias_field(grid, 0.3 * config.bias, rng) * gain
    if config.noise:
        sigma = 0.025 * config.noise * gain
        real = image + sigma * noise_rng.standard_normal(image.shape, np.float32)
        imag = sigma * noise_rng.standard_normal(image.shape, np.float32)
        image = np.sqrt(real * real + imag * imag)
    # Scanners store integers; the random gain keeps quantisation far below the noise.
    return np.rint(np.clip(image, 0, np.iinfo(np.int16).max)).astype(np.int16)


def _paint(
    tissue: np.ndarray,
    lesions: np.ndarray,
    hosts: list[str],
    values: np.ndarray,
    texture: np.ndarray,
    lesion_values: list[float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Clean image: tissue means plus smooth per-tissue texture."""
    smooth = _blur(rng.standard_normal(tissue.shape, np.float32), (1.5, 1.5, 1.0))
    smooth /= smooth.std()
    mean = values.astype(np.float32)[tissue]
    amplitude = texture.astype(np.float32)[tissue]
    if hosts:
        lesion_mean = np.array([0.0, *lesion_values], np.float32)
        lesion_texture = np.array([0.0, *(texture[_T[h]] for h in hosts)], np.float32)
        inside = lesions > 0
        mean[inside] = lesion_mean[lesions[inside]]
        amplitude[inside] = lesion_texture[lesions[inside]]
    return mean + amplitude * smooth


def _bias_field(grid: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """exp(strength * random quadratic), the quadratic normalised to unit std."""
    u, v, w = grid
    terms = (u, v, w, u * u, v * v, w * w, u * v, u * w, v * w)
    poly = sum(c * t for c, t in zip(rng.normal(0, 1, len(terms)), terms, strict=True))
    poly = (poly - poly.mean()) / max(float(poly.std()), 1e-6)
    return np.exp(strength * poly).astype(np.float32)


def _blur(volume: np.ndarray, sigmas: Sequence[float]) -> np.ndarray:
    """Separable Gaussian blur, sigmas in voxels, edges extended by replication."""
    out = volume.astype(np.float32)
    for axis, sigma in enumerate(sigmas):
        if sigma <= 0:
            continue
        radius = max(1, math.ceil(3 * sigma))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        taps = (taps / taps.sum()).astype(np.float32)
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        # Shifted views (no copies), accumulated in place: same sums, a third of the time.
        window = [slice(None)] * out.ndim
        total = np.zeros(out.shape, np.float32)
        term = np.empty(out.shape, np.float32)
        for offset, weight in enumerate(taps):
            window[axis] = slice(offset, offset + n)
            np.multiply(padded[tuple(window)], weight, out=term)
            total += term
        out = total
    return np.ascontiguousarray(out, dtype=np.float32)


# ----------------------------------------------------------------------------- helpers


def _dataset_json(config: PhantomConfig, seed: int, training: list[dict[str, str]]) -> dict:
    return {
        "name": "AppgenPhantoms",
        "description": "Procedural abdomen phantoms with organ and lesion labels (appgen)",
        "reference": "appgen.datasets.phantoms",
        "licence": "CC0-1.0",
        "release": "1.0",
        "tensorImageSize": "3D",
        "modality": {"0": config.modality.upper()},
        "labels": {str(value): name for value, name in config.labels.items()},
        "numTraining": len(training),
        "numTest": 0,
        "training": training,
        "test": [],
        "generator": {
            "seed": seed,
            **{f.name: getattr(config, f.name) for f in fields(PhantomConfig)},
        },
    }


def _ds(value: float) -> str:
    """Decimal String of at most 16 characters."""
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _int_triple(name: str, value: object) -> tuple[int, int, int]:
    items = tuple(value) if isinstance(value, Sequence | np.ndarray) else ()
    if len(items) != 3 or not all(_is_int(x) for x in items):
        raise ValueError(f"{name} must be 3 integers (x, y, z), got {value!r}")
    return (int(items[0]), int(items[1]), int(items[2]))


def _float_triple(name: str, value: object) -> tuple[float, float, float]:
    items = tuple(value) if isinstance(value, Sequence | np.ndarray) else ()
    if len(items) != 3 or not all(
        (_is_int(x) or isinstance(x, float | np.floating)) and math.isfinite(x) for x in items
    ):
        raise ValueError(f"{name} must be 3 finite numbers (x, y, z), got {value!r}")
    return (float(items[0]), float(items[1]), float(items[2]))
