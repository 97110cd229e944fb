"""8-bit rendering: the LUT path agrees with the formula, user windows and inversion."""
from __future__ import annotations

import numpy as np

from cxr_engine.pixels.image import CxrImage
from cxr_engine.reading.read import read_image
from cxr_engine.pixels.rendering import Renderer, render, to_uint8
from cxr_engine.pixels.windowing import SIGMOID, VoiLut, Window


def synthetic(values: np.ndarray, invert: bool = False) -> CxrImage:
    return CxrImage(path="synthetic", stored=values, modality=values, invert=invert, bits_stored=16)


def test_lut_path_equals_the_formula():
    rng = np.random.default_rng(0)
    values = rng.integers(-1000, 3000, size=(64, 80)).astype(np.int32)
    image = synthetic(values, invert=True)
    for window in (Window(500, 1000), Window(100, 2000, SIGMOID), Window.from_range(-1000, 2999)):
        expected = to_uint8(image.display(window))  # display() already inverts
        np.testing.assert_array_equal(Renderer(image).render(window), expected)


def test_user_window_spot_values():
    image = synthetic(np.array([[0, 1000, 2000, 3000]], dtype=np.uint16))
    # LINEAR c=1500 w=1001: 1000 is at the bottom edge (0), 2000 past the top (255)
    out = render(image, Window(1500, 1001))
    np.testing.assert_array_equal(out, [[0, 0, 255, 255]])
    out = render(image, Window.from_range(0, 3000))
    np.testing.assert_array_equal(out, [[0, 85, 170, 255]])


def test_invert_toggle_and_voi_lut():
    image = synthetic(np.array([[0, 1, 2, 3]], dtype=np.uint16))
    lut = VoiLut(0, np.array([0, 10, 20, 255]), 8)
    np.testing.assert_array_equal(render(image, lut), [[0, 10, 20, 255]])
    np.testing.assert_array_equal(render(image, lut, invert=True), [[255, 245, 235, 0]])


def test_float_modality_values_render(dicom_dir):
    image = read_image(dicom_dir / "CR-MONO1-10-chest.dcm")
    as_float = CxrImage(path="f", stored=image.stored, modality=image.modality.astype(np.float32) + 0.25,
                        invert=True, windows=image.windows, bits_stored=10)
    out = render(as_float)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert np.abs(out.astype(int) - render(image).astype(int)).max() <= 1
