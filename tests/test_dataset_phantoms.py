"""Tests for the 3D phantom provider (appgen.datasets.phantoms)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

try:
    from appgen.datasets import phantoms
except ImportError:  # appgen not installed: load the source file itself
    _path = Path(__file__).resolve().parents[1] / "datasets" / "phantoms.py"
    _spec = importlib.util.spec_from_file_location("appgen_datasets_phantoms", _path)
    assert _spec is not None and _spec.loader is not None
    phantoms = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = phantoms  # dataclasses look their module up here
    _spec.loader.exec_module(phantoms)

SMALL = {"shape": (40, 40, 20)}


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.load(path)
    return np.asarray(image.dataobj), image.affine


def _raw_header(path: Path) -> Any:
    with gzip.open(path, "rb") as handle:
        return nib.Nifti1Header.from_fileobj(handle)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("phantoms") / "data"
    return out, phantoms.write_phantoms(out, size=3, seed=1, **SMALL)


def test_layout_and_dataset_json(written: tuple[Path, str]) -> None:
    out, summary = written
    assert "3 CT phantoms 40x40x20" in summary and "s/case" in summary
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "imagesTr", "labelsTr"]
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["modality"] == {"0": "CT"}
    assert meta["labels"] == {
        "0": "background",
        "1": "liver",
        "2": "kidney_right",
        "3": "kidney_left",
        "4": "spleen",
        "5": "lesion",
    }
    assert meta["numTraining"] == 3 == len(meta["training"])
    for index, entry in enumerate(meta["training"]):
        name = f"case_{index:03d}.nii.gz"
        assert entry == {"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"}
        assert (out / entry["image"]).is_file() and (out / entry["label"]).is_file()


def test_default_size_is_six_cases(tmp_path: Path) -> None:
    phantoms.write_phantoms(tmp_path / "d", shape=(16, 16, 16))
    assert len(list((tmp_path / "d" / "imagesTr").glob("*.nii.gz"))) == 6


def test_image_and_label_match_and_every_class_present(written: tuple[Path, str]) -> None:
    out, _ = written
    spacing = np.array(phantoms.PhantomConfig().spacing)
    for image_path in sorted((out / "imagesTr").glob("*.nii.gz")):
        image, affine = _load(image_path)
        label, label_affine = _load(out / "labelsTr" / image_path.name)
        assert image.shape == label.shape == SMALL["shape"]
        np.testing.assert_array_equal(affine, label_affine)
        np.testing.assert_allclose(np.linalg.norm(affine[:3, :3], axis=0), spacing)
        assert image.dtype == np.int16 and label.dtype == np.uint8
        assert set(np.unique(label)) == {0, 1, 2, 3, 4, 5}
        header = _raw_header(image_path)
        assert (float(header["scl_slope"]), float(header["scl_inter"])) == (1.0, 0.0)
        assert header.get_xyzt_units()[0] == "mm"


def test_same_seed_same_volumes_other_seed_different(tmp_path: Path) -> None:
    first, second, other = (tmp_path / name for name in ("a", "b", "c"))
    phantoms.write_phantoms(first, size=2, seed=5, **SMALL)
    phantoms.write_phantoms(second, size=2, seed=5, **SMALL)
    phantoms.write_phantoms(other, size=2, seed=6, **SMALL)
    for folder in ("imagesTr", "labelsTr"):
        for name in ("case_000.nii.gz", "case_001.nii.gz"):
            a, b, c = (_load(root / folder / name)[0] for root in (first, second, other))
            np.testing.assert_array_equal(a, b)
            assert not np.array_equal(a, c)
            # nibabel writes gzip with mtime 0, so the files themselves are identical.
            assert (first / folder / name).read_bytes() == (second / folder / name).read_bytes()


def test_ct_intensities_are_plausible_hounsfield_units() -> None:
    case = phantoms.generate_phantom(0, seed=0)
    image, label = case.image.astype(float), case.label
    assert case.image.shape == (96, 96, 48)
    expected = {1: (70, 150), 2: (110, 230), 3: (110, 230), 4: (70, 160), 5: (-40, 260)}
    for value, (low, high) in expected.items():
        assert low <= np.median(image[label == value]) <= high, value
    assert np.median(image[:3, :3, :]) < -950  # air outside the body
    assert image.min() >= -1024 and image.max() <= 3071


def test_lesions_stand_out_from_the_organ_around_them() -> None:
    config = phantoms.PhantomConfig(max_lesions=1)
    for index in range(4):
        case = phantoms.generate_phantom(index, config=config)
        lesion = case.label == 5
        ring = np.zeros_like(lesion)
        for axis in range(3):
            for shift in (-2, 2):
                ring |= np.roll(lesion, shift, axis=axis)
        ring &= (case.label > 0) & ~lesion
        assert lesion.sum() > 20 and ring.any()
        image = case.image.astype(float)
        assert abs(np.median(image[lesion]) - np.median(image[ring])) > 20, index


def test_contrast_noise_and_modality_keep_the_same_subject() -> None:
    base = phantoms.generate_phantom(2, seed=3, config=phantoms.PhantomConfig(**SMALL))
    strong = phantoms.generate_phantom(
        2, seed=3, config=phantoms.PhantomConfig(contrast=2.0, noise=0.0, **SMALL)
    )
    noisy = phantoms.generate_phantom(2, seed=3, config=phantoms.PhantomConfig(noise=4.0, **SMALL))
    mri = phantoms.generate_phantom(
        2, seed=3, config=phantoms.PhantomConfig(modality="MRI", **SMALL)
    )
    for case in (strong, noisy, mri):
        np.testing.assert_array_equal(case.label, base.label)
    kidney = base.label == 2
    assert np.median(strong.image[kidney]) - 40 > 1.5 * (np.median(base.image[kidney]) - 40)
    liver = base.label == 1
    assert np.std(noisy.image[liver]) > 2 * np.std(base.image[liver])


def test_mri_mode_has_arbitrary_positive_units_and_random_gain(tmp_path: Path) -> None:
    summary = phantoms.write_phantoms(tmp_path / "mr", size=3, seed=0, modality="mri", **SMALL)
    assert "MRI" in summary
    assert json.loads((tmp_path / "mr" / "dataset.json").read_text())["modality"] == {"0": "MRI"}
    liver_medians = []
    for index in range(3):
        image, _ = _load(tmp_path / "mr" / "imagesTr" / f"case_{index:03d}.nii.gz")
        label, _ = _load(tmp_path / "mr" / "labelsTr" / f"case_{index:03d}.nii.gz")
        assert image.dtype == np.int16 and image.min() >= 0
        liver_medians.append(np.median(image[label == 1]))
    assert max(liver_medians) > 1.2 * min(liver_medians)  # per-volume gain


def test_organs_and_lesions_are_configurable(tmp_path: Path) -> None:
    config = phantoms.PhantomConfig(organs=("liver", "spleen", "stomach"), max_lesions=0)
    assert config.labels == {0: "background", 1: "liver", 2: "spleen", 3: "stomach"}
    case = phantoms.generate_phantom(
        1,
        config=phantoms.PhantomConfig(
            shape=(32, 32, 16), organs=("liver", "spleen", "stomach"), max_lesions=0
        ),
    )
    assert set(np.unique(case.label)) == {0, 1, 2, 3} and case.num_lesions == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size"),
        ({"size": True}, "size"),
        ({"seed": -1}, "seed"),
        ({"modality": "pet"}, "modality"),
        ({"shape": (8, 8, 8)}, "shape"),
        ({"shape": (64, 64)}, "shape"),
        ({"spacing": (0.0, 1.0, 1.0)}, "spacing"),
        ({"spacing": (1.0, 1.0, float("nan"))}, "spacing"),
        ({"organs": ("liver", "heart")}, "organs"),
        ({"organs": ()}, "organs"),
        ({"max_lesions": 11}, "max_lesions"),
        ({"contrast": 0}, "contrast"),
        ({"noise": -1.0}, "noise"),
        ({"blurr": 1.0}, "unknown phantom option"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        phantoms.write_phantoms(tmp_path / "out", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    (tmp_path / "file").write_text("mine")
    for name in ("full", "file"):
        with pytest.raises(FileExistsError):
            phantoms.write_phantoms(tmp_path / name, size=1, **SMALL)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    phantoms.write_phantoms(tmp_path / "empty", size=1, **SMALL)
    assert (tmp_path / "empty" / "dataset.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file", "full"]


def test_failure_leaves_no_temporary_folder(tmp_path: Path, monkeypatch) -> None:
    generate = phantoms.generate_phantom

    def fail_on_second(index: int, **kwargs: object) -> object:
        if index == 1:
            raise RuntimeError("disk full")
        return generate(index, **kwargs)

    monkeypatch.setattr(phantoms, "generate_phantom", fail_on_second)
    with pytest.raises(RuntimeError, match="disk full"):
        phantoms.write_phantoms(tmp_path / "out", size=2, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_dicom_series_round_trips(tmp_path: Path) -> None:
    config = phantoms.PhantomConfig(shape=(32, 24, 16), spacing=(0.8, 0.7, 2.5))
    case = phantoms.generate_phantom(0, seed=4, config=config)
    out = tmp_path / "series"
    phantoms.write_dicom_series(out, case.image, config.spacing, seed=4)

    files = sorted(out.iterdir())
    assert len(files) == 16 and list(tmp_path.iterdir()) == [out]
    slices = [pydicom.dcmread(path) for path in files]
    by_name_z = [float(ds.ImagePositionPatient[2]) for ds in slices]
    assert by_name_z != sorted(by_name_z), "file names must not give the slice order"
    assert len({ds.SeriesInstanceUID for ds in slices}) == 1
    assert len({ds.SOPInstanceUID for ds in slices}) == 16

    slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    volume = np.stack(
        [ds.pixel_array.T * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices],
        axis=-1,
    )
    assert np.abs(volume - case.image).max() < 1
    assert float(slices[0].RescaleIntercept) != 0  # the reader really has to apply it
    first, second = slices[0], slices[1]
    assert [float(x) for x in first.PixelSpacing] == [0.7, 0.8]  # rows, columns
    assert float(first.SliceThickness) == 2.5
    assert float(second.SliceLocation) - float(first.SliceLocation) == pytest.approx(2.5)
    assert [float(x) for x in first.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    # Same geometry as the NIfTI affine: voxel (0, 0, 0) in RAS, flipped to DICOM's LPS.
    corner = case.affine[:3, 3] * [-1, -1, 1]
    np.testing.assert_allclose([float(x) for x in first.ImagePositionPatient], corner)


def test_dicom_series_uid_float_input_and_bad_arguments(tmp_path: Path) -> None:
    volume = np.linspace(-1000, 1500, 8 * 6 * 4).reshape(8, 6, 4)
    uid = "1.2.826.0.1.3680043.8.498.12345"
    phantoms.write_dicom_series(tmp_path / "ok", volume, (1, 1, 3), series_uid=uid)
    slices = sorted(
        (pydicom.dcmread(p) for p in (tmp_path / "ok").iterdir()),
        key=lambda ds: float(ds.ImagePositionPatient[2]),
    )
    assert {ds.SeriesInstanceUID for ds in slices} == {uid}
    restored = np.stack([ds.pixel_array.T - 1024.0 for ds in slices], axis=-1)
    assert np.abs(restored - volume).max() <= 0.5

    bad = [
        (volume[:, :, 0], (1, 1, 3), {}, "3D"),
        (volume, (1, -1, 3), {}, "spacing"),
        (volume, (1, 1), {}, "spacing"),
        (volume - 2000, (1, 1, 3), {}, "HU"),
        (volume * np.nan, (1, 1, 3), {}, "NaN"),
        (volume, (1, 1, 3), {"series_uid": "not a uid"}, "series_uid"),
    ]
    for array, spacing, extra, message in bad:
        with pytest.raises(ValueError, match=message):
            phantoms.write_dicom_series(tmp_path / "bad", array, spacing, **extra)
    with pytest.raises(FileExistsError):
        phantoms.write_dicom_series(tmp_path / "ok", volume, (1, 1, 3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok"]


def test_phantom_slices_are_labelled_dicom_and_png_class_folders(tmp_path: Path) -> None:
    out = tmp_path / "slices"
    summary = phantoms.write_phantom_slices(out, size=4, seed=2)
    assert "slices of 4 phantom patients" in summary
    files = {name: sorted((out / name).iterdir()) for name in phantoms.SLICE_CLASSES}
    assert sorted(p.name for p in out.iterdir()) == sorted(phantoms.SLICE_CLASSES)
    assert all(files.values()) and not list(tmp_path.glob(".*partial"))
    config = phantoms.PhantomConfig(**phantoms._SLICE_PHANTOM)
    lesion = len(config.organs) + 1
    cases = {i: phantoms.generate_phantom(i, seed=2, config=config) for i in range(4)}
    for name, paths in files.items():
        for path in paths:
            patient, slice_number = path.stem.split("_slice")
            assert patient.startswith("S2P")  # the seed is part of the patient id
            case = cases[int(patient[3:])]
            k = int(slice_number)
            pixels = int((case.label[:, :, k] == lesion).sum())
            assert (pixels >= 40) if name == "lesion" else pixels == 0, path
            if path.suffix == ".dcm":
                ds = pydicom.dcmread(path)
                assert ds.PatientID == patient and ds.Modality == "CT"
                hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(
                    ds.RescaleIntercept)
                np.testing.assert_array_equal(hu, case.image[:, :, k].T)
            else:
                from PIL import Image

                png = np.asarray(Image.open(path)).astype(np.float64)
                expected = np.clip((case.image[:, :, k].T + 160.0) / 400.0 * 255.0, 0, 255)
                assert png.shape == (128, 128) and np.abs(png - expected).max() <= 0.51
    assert {p.suffix for paths in files.values() for p in paths} == {".dcm", ".png"}
