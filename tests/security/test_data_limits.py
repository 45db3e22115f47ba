"""Hostile data files: a few bytes that declare gigabytes are refused before allocation.

Each case builds a tiny file whose header (PNG, NIfTI, DICOM) or one line (CSV) claims
far more than the ``[limits]`` caps in config.toml allow, and checks three things: the
error is one line naming the file and the knob, nothing close to the declared size was
allocated (a subprocess under ``RLIMIT_AS``, or the peak RSS of the real command), and
the loader of every template that reads that kind of file refuses it the same way.
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import template_modules
from project_runner import generate, last_line

TESTS = Path(__file__).resolve().parents[1]
GIB = 1 << 30


# ------------------------------------------------------------------------------ files


def png_bomb(path: Path, width: int = 30_000, height: int = 25_000) -> Path:
    """A valid 1-bit PNG of ``width x height`` black pixels, a few hundred KB on disk.

    Decoded it is width*height pixels (750 M for the default: 2.25 GB as RGB). Written
    by hand, row by row, so making it costs no memory either.
    """
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    parts = [packer.compress(row * 1000) for _ in range(height // 1000)]
    parts += [packer.compress(row * (height % 1000)), packer.flush()]
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


def nifti_header(shape: tuple[int, ...], dtype: type, spacing: float = 1.0) -> bytes:
    """A NIfTI-1 single-file header (348 bytes + 4 extension bytes) claiming ``shape``."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_zooms((spacing,) * len(shape))
    header.set_sform(np.diag([spacing, spacing, spacing, 1.0]), code=1)
    header["vox_offset"] = 352
    return header.binaryblock + b"\x00" * 4


def run_isolated(template: str, body: str, address_space: int = GIB) -> str:
    """Run ``body`` in a fresh interpreter limited to ``address_space`` bytes of memory.

    ``pkg`` is the template's package (runtime + template modules); the output is what
    the body prints. Nothing heavy (TensorFlow, Keras) may be imported, or the limit
    would be spent on start-up: the modules used here need numpy, nibabel and Pillow.
    """
    folder = template_modules.package_dir(template)
    script = textwrap.dedent(f"""\
        import importlib, resource, sys
        sys.path.insert(0, {str(folder.parent)!r})
        import numpy, nibabel, PIL.Image, scipy.ndimage  # imports before the limit
        resource.setrlimit(resource.RLIMIT_AS, ({address_space}, {address_space}))
        pkg = importlib.import_module({folder.name!r})
        errors = importlib.import_module({folder.name!r} + ".errors")
        try:
    """) + textwrap.indent(textwrap.dedent(body), "    ") + textwrap.dedent("""\
        except errors.DataError as err:
            print("DataError:", err)
    """)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=180, env=env, check=False)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    return result.stdout.strip()


def one_line_naming(text: str, *names: str) -> None:
    assert "\n" not in text.strip(), text
    for name in names:
        assert name in text, f"{name!r} not in {text!r}"


# ------------------------------------------------------------------------------ images


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return png_bomb(tmp_path_factory.mktemp("png") / "bomb.png")


def test_png_bomb_is_small_and_really_decodes_to_gigabytes(bomb: Path) -> None:
    from PIL import Image

    assert bomb.stat().st_size < 1_000_000
    Image.MAX_IMAGE_PIXELS = None  # only the header: this must be a real 750-Mpixel PNG
    with Image.open(bomb) as image:
        assert image.size == (30_000, 25_000) and image.mode == "1"


def test_png_bomb_is_refused_from_its_header_in_bounded_memory(bomb: Path) -> None:
    out = run_isolated("vision", f"""\
        media = importlib.import_module({template_modules.package_name('vision')!r} + ".media")
        with media.open_image(__import__("pathlib").Path({str(bomb)!r})) as image:
            image.convert("RGB")  # 2.25 GB if it got this far
        print("decoded")
    """)
    assert out.startswith("DataError:")
    one_line_naming(out, "bomb.png", "limits.image_megapixels", "750,000,000 pixels")


def test_image_between_the_knob_and_pillows_own_limit_is_refused(tmp_path: Path) -> None:
    """72 Mpixels: under Pillow's 89 M warning, over the 64 M default of the knob."""
    media = template_modules.load("vision", "media")
    limits = template_modules.load("vision", "limits")
    path = png_bomb(tmp_path / "big.png", 9_000, 8_000)
    with pytest.raises(media.DataError) as caught:
        media.open_image(path)
    one_line_naming(str(caught.value), "big.png", "limits.image_megapixels = 64")
    limits.configure({"limits": {"image_megapixels": 80}})  # the knob raises the cap
    try:
        with media.open_image(path) as image:
            assert image.size == (9_000, 8_000)
    finally:
        limits.configure({})


def test_every_image_reader_refuses_the_bomb(bomb: Path) -> None:
    vision = template_modules.load("vision", "data")
    with pytest.raises(vision.DataError) as caught:
        vision.read_image(bomb, 32, "rgb")
    one_line_naming(str(caught.value), "bomb.png", "limits.image_megapixels")

    driving = template_modules.load("driving", "data")
    with pytest.raises(driving.DataError) as caught:
        driving.read_frame(bomb, 32, 64)
    one_line_naming(str(caught.value), "bomb.png", "limits.image_megapixels")

    medical = template_modules.load("medical", "images")  # used to escape as a traceback
    with pytest.raises(medical.DataError) as caught:
        medical.read_slice(bomb, 32, 3, "auto")
    one_line_naming(str(caught.value), "bomb.png", "limits.image_megapixels")


def test_dicom_declaring_a_huge_image_is_refused_before_decoding(tmp_path: Path) -> None:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.NumberOfFrames = 40_000, 40_000, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = b"\x00\x00" * 16
    path = tmp_path / "huge.dcm"
    ds.save_as(path, enforce_file_format=True)
    images = template_modules.load("medical", "images")
    with pytest.raises(images.DataError) as caught:
        images.read_slice(path, 32, 1, "auto")
    one_line_naming(str(caught.value), "huge.dcm", "limits.image_megapixels", "40000x40000")


# ------------------------------------------------------------------------------ volumes


def test_nifti_header_claiming_800_cubed_float32_is_refused_without_allocating(
        tmp_path: Path) -> None:
    path = tmp_path / "claim.nii.gz"
    path.write_bytes(gzip.compress(nifti_header((800, 800, 800), np.float32), 9))
    assert path.stat().st_size < 100  # 82 bytes in the report; 2 GB if believed
    out = run_isolated("medical", f"""\
        volumes = importlib.import_module({template_modules.package_name('medical')!r}
                                          + ".volumes")
        volumes.load_nifti(__import__("pathlib").Path({str(path)!r}))
        print("loaded")
    """)
    assert out.startswith("DataError:")
    one_line_naming(out, "claim.nii.gz", "limits.volume_megavoxels", "800x800x800")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_shorter_than_its_header_claims_is_refused_in_bounded_memory(
        tmp_path: Path, suffix: str) -> None:
    """250 M int16 voxels declared (under the voxel cap: 500 MB), 1 MB present."""
    body = nifti_header((1000, 500, 500), np.int16) + b"\x00" * (1 << 20)
    path = tmp_path / f"short{suffix}"
    path.write_bytes(gzip.compress(body, 9) if suffix == ".nii.gz" else body)
    out = run_isolated("medical", f"""\
        volumes = importlib.import_module({template_modules.package_name('medical')!r}
                                          + ".volumes")
        volumes.load_nifti(__import__("pathlib").Path({str(path)!r}))
        print("loaded")
    """, address_space=GIB * 6 // 10)  # start-up takes ~0.25 GB; 500 MB more is refused
    assert out.startswith("DataError:")
    one_line_naming(out, path.name, "1000x500x500 int16", "truncated or corrupt")


def test_nifti_gz_bomb_is_never_fully_decompressed(tmp_path: Path) -> None:
    """A real .gz bomb: 1.2 G voxels of zeros, 1.2 MB compressed, refused from its header."""
    path = tmp_path / "bomb.nii.gz"
    with gzip.open(path, "wb", compresslevel=9) as handle:
        handle.write(nifti_header((1200, 1000, 1000), np.uint8))
        zeros = b"\x00" * (1 << 24)
        for _ in range(1200 * 1000 * 1000 // len(zeros) + 1):
            handle.write(zeros)
    assert path.stat().st_size < 3_000_000
    out = run_isolated("medical", f"""\
        volumes = importlib.import_module({template_modules.package_name('medical')!r}
                                          + ".volumes")
        volumes.load_nifti(__import__("pathlib").Path({str(path)!r}))
        print("loaded")
    """)
    assert out.startswith("DataError:")
    one_line_naming(out, "bomb.nii.gz", "limits.volume_megavoxels")


def test_resampling_a_coarse_volume_is_refused_before_allocating(tmp_path: Path) -> None:
    """4x4x4 voxels of 300 mm resampled to 1 mm would be 1200^3 float32 (6.9 GB)."""
    path = tmp_path / "coarse.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.diag([300.0] * 3 + [1.0])),
             path)
    out = run_isolated("medical", f"""\
        volumes = importlib.import_module({template_modules.package_name('medical')!r}
                                          + ".volumes")
        volume = volumes.load_nifti(__import__("pathlib").Path({str(path)!r}))
        shape = volumes.resampled_shape(volume.data.shape, volume.spacing, (1.0, 1.0, 1.0))
        volumes.resample_to(volume.data, shape, order=1, source=volume.source)
        print("resampled", shape)
    """)
    assert out.startswith("DataError:")
    one_line_naming(out, "coarse.nii.gz", "limits.volume_megavoxels", "1200x1200x1200")

    data = template_modules.load("medical", "data")  # the path train/evaluate/predict take
    volume = template_modules.load("medical", "volumes").load_nifti(path)
    with pytest.raises(data.DataError) as caught:
        data.prepare_image(volume, {"spacing": [1.0, 1.0, 1.0], "normalize": "zscore",
                                    "ct_window": [-100.0, 400.0]})
    one_line_naming(str(caught.value), "coarse.nii.gz", "limits.volume_megavoxels")


# ------------------------------------------------------------------------------ commands


def peak_rss_of(project: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``python -m PACKAGE args`` and return it with its peak resident memory in MB."""
    report = project / ".peak_rss"
    script = textwrap.dedent(f"""\
        import runpy, sys
        sys.argv = [{project.name!r}, *{list(args)!r}]
        try:
            runpy.run_module({project.name!r}, run_name="__main__", alter_sys=True)
        finally:
            # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a
            # large pytest process would report the parent's peak.
            status = open("/proc/self/status").read()
            peak = int(status.split("VmHWM:")[1].split()[0]) // 1024
            open({str(report)!r}, "w").write(str(peak))
    """)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script], cwd=project, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    return result, int(report.read_text())


@pytest.mark.slow
def test_predict_on_a_png_bomb_is_one_line_in_bounded_memory(
        trained_vision_run: Path, vision_project: Path, bomb: Path, tmp_path: Path) -> None:
    result, peak_mb = peak_rss_of(vision_project, "predict", "--run-dir", str(trained_vision_run),
                                  str(bomb), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    one_line_naming(last_line(result.stderr), "bomb.png", "limits.image_megapixels")
    assert peak_mb < 1500, f"peak {peak_mb} MB for a 750-Mpixel image (2.25 GB as RGB)"


@pytest.mark.slow
def test_nlp_train_on_a_100_mb_line_is_one_line_in_bounded_memory(tmp_path: Path) -> None:
    project = generate(tmp_path, "huge_nlp", "nlp", sample_data=False)
    data = tmp_path / "data"
    data.mkdir()
    with (data / "train.csv").open("w", encoding="utf-8") as handle:
        handle.write("text,label\n")
        for _ in range(100):
            handle.write("word " * 200_000)  # 1 MB
        handle.write(",pos\nshort,neg\n")
    result, peak_mb = peak_rss_of(project, "train", "--run-dir", str(tmp_path / "run"),
                                  "--set", f"data.dir={data}", "--set", "train.epochs=1")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    one_line_naming(last_line(result.stderr), "train.csv:2", "limits.csv_field_mb")
    assert peak_mb < 1500, f"peak {peak_mb} MB"
