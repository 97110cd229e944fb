"""The VOI step against pydicom 3's own (``pydicom.pixels``) on real files: the bug cases, the real films
and pydicom's test files. What the engine keeps hand-written (the VOI LUT lookup on a table the reader
has already judged, the 8-bit render LUT) must give pydicom's values wherever pydicom reads the file right.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing

from cxr_engine import read_image
from cxr_engine.pixels.rendering import Renderer, to_uint8
from cxr_engine.pixels.windowing import LINEAR, LINEAR_EXACT, SIGMOID, Window, apply_voi_lut_table, apply_window

from conftest import SHARED_DATA

BUGCASES = SHARED_DATA.parent / "bugcases"


def _file(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real file not found: {path}")
    return path


def _pydicom_window(path: Path) -> np.ndarray:
    """pydicom's modality LUT then first window, scaled from its output range to [0, 1]."""
    ds = pydicom.dcmread(path)
    values = apply_modality_lut(ds.pixel_array, ds)
    low, high = apply_windowing(np.array([-1e12, 1e12]), ds)  # the range pydicom scales to
    return (apply_windowing(values, ds) - low) / (high - low)


WINDOWED = [
    pytest.param(lambda: Path(get_testdata_file("MR_small.dcm")), id="pydicom MR_small"),
    pytest.param(lambda: Path(get_testdata_file("MR_small_bigendian.dcm")), id="pydicom MR_small_bigendian"),
    pytest.param(lambda: _file(SHARED_DATA / "dicom" / "966_fixed.dcm"), id="966_fixed"),
    pytest.param(lambda: _file(BUGCASES / "nonsquare-pixels.dcm"), id="bugcase nonsquare-pixels"),
    pytest.param(lambda: _file(BUGCASES / "overlay-highbits-ref-native-clean.dcm"), id="bugcase overlay-ref"),
]


class TestWindow:
    @pytest.mark.parametrize("where", WINDOWED)
    def test_file_window_is_pydicoms(self, where):
        path = where()
        image = read_image(path)
        ours = image.display(image.windows[0])
        ours = 1.0 - ours if image.invert else ours  # pydicom leaves MONOCHROME1 to the caller
        assert ours.dtype == np.float32
        assert np.abs(ours - _pydicom_window(path)).max() < 1e-6

    @pytest.mark.parametrize("where", WINDOWED[:3])
    def test_fast_8bit_render_is_pydicoms_rounded(self, where):
        path = where()
        image = read_image(path)
        rendered = Renderer(image).render(image.windows[0], invert=False)
        expected = to_uint8(_pydicom_window(path))
        assert np.abs(rendered.astype(int) - expected).max() <= 1  # rounding of float32 against float64
        assert np.mean(rendered == expected) > 0.999

    @pytest.mark.parametrize("function", [LINEAR, LINEAR_EXACT, SIGMOID])
    def test_functions_and_a_width_of_one(self, function):
        values = np.arange(-50, 300, dtype=np.int64)
        window = Window(100.25, 37.5, function)
        y = apply_window(values, window)
        assert y.dtype == np.float32 and y.min() >= 0.0 and y.max() <= 1.0
        assert y[0] < 0.01 and y[-1] > 0.99 and np.all(np.diff(y) >= 0)
        threshold = apply_window(values, Window(10.0, 1.0, LINEAR))  # PS3.3 C.11.2.1.2.1: x > c - 0.5 is white
        np.testing.assert_array_equal(threshold, (values > 9.5).astype(np.float32))

    def test_does_not_mutate_its_input(self):
        values = np.arange(0, 4096, dtype=np.int32).reshape(64, 64)
        before = values.copy()
        apply_window(values, Window(2048, 1000))
        np.testing.assert_array_equal(values, before)


class TestVoiLut:
    @pytest.mark.parametrize("name", ["voilut-littleendian-ref.dcm", "voilut-bigendian-ow.dcm"])
    def test_lookup_is_pydicoms(self, name):
        path = _file(BUGCASES / name)
        ds = pydicom.dcmread(path)
        theirs = apply_voi(apply_modality_lut(ds.pixel_array, ds), ds)
        lut = read_image(path).voi_luts[0]
        ours = apply_voi_lut_table(read_image(path).modality, lut) * lut.output_max
        np.testing.assert_array_equal(np.rint(ours).astype(np.int64), theirs.astype(np.int64))

    def test_declared16_data12_same_entries_range_from_the_data(self):
        """Why the lookup stays here: pydicom scales a 12-bit table under a 16-bit descriptor to 16 bits
        (the film shows near-black, near-white for MONOCHROME1); the reader takes the range from the data."""
        path = _file(BUGCASES / "voilut-declared16-data12.dcm")
        ds = pydicom.dcmread(path)
        theirs = apply_voi(apply_modality_lut(ds.pixel_array, ds), ds)
        assert ds.VOILUTSequence[0].LUTDescriptor[2] == 16 and theirs.max() / 65535 < 0.07
        image = read_image(path)
        lut = image.voi_luts[0]
        assert lut.bits == 12
        ours = apply_voi_lut_table(image.modality, lut)
        np.testing.assert_array_equal(np.rint(ours * lut.output_max).astype(np.int64), theirs.astype(np.int64))
        reference = read_image(_file(BUGCASES / "voilut-littleendian-ref.dcm"))
        # Its twin's table was written at 16 bits: the same display to a thousandth of the range.
        np.testing.assert_allclose(ours, apply_voi_lut_table(reference.modality, reference.voi_luts[0]), atol=1e-3)
