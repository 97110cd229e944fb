"""Acceptance (issue 15): the peer's corpus, pydicom's own test files, read as pydicom reads them.

Every file with pixel data among the test files installed with pydicom (``pydicom/data/test_files``;
files pydicom would download are not fetched) is read through ``read_image`` and through the
isolated decoding worker. For each, either

- the stored values (first frame; colour turned to grey by BT.601 luma, palettes through pydicom's
  ``apply_color_lut``), the modality values (``pydicom.pixels.apply_modality_lut``) and the first
  VOI (``apply_voi_lut``: VOI LUT or window, normalised to [0, 1]) equal pydicom's, and both paths
  give identical arrays, or
- both paths refuse it with an ``ImageReadError`` naming the file and the reason.

pydicom's reference is masked to Bits Stored (PS3.5 8.1.1), as pydicom itself does for native
data but not after JPEG 2000 decoding. Where no pydicom plugin decodes a file, the engine's
values are checked against pydicom's documented reference values instead (12-bit JPEG Extended,
``test_pixel_pipeline``). ``-s`` prints the counts.
"""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cxr_engine.errors import ImageReadError
from cxr_engine.reading.read import read_image
from cxr_engine.pixels.windowing import Window, apply_voi_lut_table, apply_window

pydicom = pytest.importorskip("pydicom")

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
LUMA = np.array([0.299, 0.587, 0.114])
#: pydicom's documented reference values (tests/pixels/pixels_reference.py) for files no installed
#: pydicom plugin decodes.
DOCUMENTED = {"JPGExtended.dcm": {(420, 140): 244, (230, 120): 95},
              "JPEG-lossy.dcm": {(420, 140): 244, (230, 120): 95}}
RESULTS: Counter = Counter()
REASONS: dict[str, str] = {}


def _files_with_pixel_data() -> list[Path]:
    found = []
    for path in sorted(TEST_FILES.rglob("*")) if TEST_FILES.is_dir() else []:
        if not path.is_file() or path.suffix in (".py", ".pyc", ".json", ".txt", ".gz", ".bz2", ".zip"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, force=True, stop_before_pixels=False, defer_size="1 KB")
        except Exception:
            continue
        if any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            found.append(path)
    return found


FILES = _files_with_pixel_data()


@pytest.fixture(scope="module", autouse=True)
def corpus_summary(request):
    """With ``-s``, the counts of the files read alike and refused, printed once the module has run."""
    yield
    if not FILES or request.config.getoption("capture") != "no":
        return
    print(f"\npydicom corpus: {len(FILES)} files with pixel data")
    for key, count in sorted(RESULTS.items()):
        print(f"  {key}: {count}")
    for name, reason in sorted(REASONS.items()):
        print(f"  refused {name}: {reason}")


@pytest.fixture(scope="module")
def reader():
    from cxr_engine.reading.isolation import IsolatedReader

    with IsolatedReader() as isolated:
        yield isolated


def _reference(path: Path):
    """(dataset, pydicom's stored values of the first frame as the engine defines them) or (ds, None)."""
    from pydicom.pixels import apply_color_lut, pixel_array

    ds = pydicom.dcmread(path, force=True)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = pixel_array(ds, index=0) if frames > 1 else pixel_array(ds)
    except Exception:
        return ds, None
    arr = arr.astype(arr.dtype.newbyteorder("="))
    bits, allocated = int(ds.get("BitsStored", 0) or 0), int(ds.get("BitsAllocated", 0) or 0)
    if arr.dtype.kind in "iu" and allocated > 1 and 0 < bits < arr.dtype.itemsize * 8:
        wide = arr.astype(np.int64) & ((1 << bits) - 1)
        if int(ds.get("PixelRepresentation", 0) or 0):
            wide = np.where(wide >= 1 << (bits - 1), wide - (1 << bits), wide)
        masked = wide.astype(arr.dtype)
        if not np.array_equal(masked, arr):
            RESULTS["pydicom's decode kept bits above Bits Stored (compared masked)"] += 1
        arr = masked
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "PALETTE COLOR" and arr.ndim == 2:
        arr = apply_color_lut(arr, ds)
    if arr.ndim == 3:
        grey = arr[..., :3].astype(np.float64) @ LUMA
        if arr.dtype.kind in "iu":
            info = np.iinfo(arr.dtype)
            grey = np.clip(np.rint(grey), info.min, info.max).astype(arr.dtype)
        arr = grey
    return ds, arr


def _close(ours: np.ndarray, theirs: np.ndarray) -> bool:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return ours.shape == theirs.shape and bool(np.allclose(ours, theirs, rtol=1e-6, atol=1e-6))


def _check_voi(image, ds, modality_reference) -> str:
    from pydicom.pixels import apply_voi_lut, apply_windowing

    if not (ds.get("VOILUTSequence") or "WindowCenter" in ds):
        return "no VOI in the file"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = apply_voi_lut(modality_reference, ds, index=0)
            if ds.get("VOILUTSequence"):
                ours = apply_voi_lut_table(image.modality, image.voi_luts[0]) * image.voi_luts[0].output_max
            else:
                low, high = apply_windowing(np.array([-1e300, 1e300]), ds, index=0)
                theirs = (np.asarray(theirs, dtype=np.float64) - low) / (high - low)
                first: Window = image.windows[0]
                ours = apply_window(image.modality, first)
    except (NotImplementedError, ValueError, TypeError, OverflowError, IndexError) as exc:
        return f"VOI: pydicom gives no reference ({type(exc).__name__})"
    tolerance = 1e-4 * (image.voi_luts[0].output_max if ds.get("VOILUTSequence") else 1.0)
    assert np.asarray(ours).shape == np.asarray(theirs).shape
    assert np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64)).max() <= tolerance, "VOI output differs"
    return "VOI same"


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(TEST_FILES)) for p in FILES])
def test_pydicom_test_file_reads_as_pydicom_reads_it_or_is_refused_with_a_reason(path, reader):
    name = str(path.relative_to(TEST_FILES))
    try:
        image = read_image(path)
    except ImageReadError as exc:
        assert path.name in str(exc) and exc.reason.strip(), exc
        with pytest.raises(ImageReadError) as isolated:
            reader.read(path)
        assert isolated.value.reason == exc.reason
        RESULTS["refused"] += 1
        REASONS[name] = exc.reason
        return
    isolated = reader.read(path)
    for field in ("stored", "modality", "padding"):
        a, b = getattr(image, field), getattr(isolated, field)
        assert (a is None) == (b is None), field
        if a is not None:
            assert a.dtype == b.dtype and b.dtype.isnative, (field, a.dtype, b.dtype)
            np.testing.assert_array_equal(a, b, err_msg=f"{field} differs across the worker")
    ds, stored = _reference(path)
    if stored is None:
        assert path.name in DOCUMENTED, f"{name}: read, but pydicom has no decoder and no documented values"
        for (row, col), value in DOCUMENTED[path.name].items():
            assert int(image.stored[row, col]) == value
        RESULTS["same (pydicom's documented values; its plugins cannot decode)"] += 1
        return
    assert image.stored.dtype.isnative
    np.testing.assert_array_equal(image.stored, stored, err_msg="stored values differ")
    from pydicom.pixels import apply_modality_lut

    try:
        modality = apply_modality_lut(stored, ds)
    except (TypeError, ValueError, IndexError) as exc:  # e.g. a 12-bit Modality LUT: no numpy uint12
        RESULTS[f"modality: pydicom gives no reference ({type(exc).__name__})"] += 1
        modality = image.modality
    else:
        assert _close(image.modality, modality), "modality values differ"
    RESULTS["same"] += 1
    RESULTS[_check_voi(image, ds, modality)] += 1
