"""The engine's numpy resizing and heat-map colours against OpenCV's, which the models were trained with.

OpenCV is not a dependency of the engine any more (only of training); the comparisons skip when it
is not installed, the numpy-only checks run everywhere.
"""
from __future__ import annotations

import numpy as np
import pytest

from cxr_engine import read_image
from cxr_engine.pixels.overlay import colorize, colour_table
from cxr_engine.pixels.preprocessing import resize_and_stretch
from cxr_engine.pixels.resampling import resize_area, resize_bilinear

#: Float32 agreement with OpenCV: both sum a few products in float32.
FLOAT_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def films(dicom_dir):
    """The real DICOM films' presentation values (float32 [0, 1]) and 8-bit renderings, two shapes each."""
    paths = [dicom_dir / "966_fixed.dcm", dicom_dir / "CR-MONO1-10-chest.dcm", dicom_dir / "RG1_JLSN.dcm"]
    images = [read_image(p) for p in paths if p.exists()]
    if not images:
        pytest.skip(f"none of {[p.name for p in paths]} in {dicom_dir}")
    return [image.display() for image in images]


def _cv2():
    return pytest.importorskip("cv2", reason="OpenCV (the train extra) is the reference")


class TestResizeArea:
    def test_block_mean_at_integer_factors(self):
        values = np.arange(24, dtype=np.float32).reshape(4, 6)
        expected = values.reshape(2, 2, 3, 2).mean(axis=(1, 3))
        np.testing.assert_allclose(resize_area(values, 2, 3), expected, rtol=0, atol=1e-6)

    def test_partial_pixels_weigh_their_covered_share(self):
        # Three pixels into two: each output covers 1.5 inputs, the middle one shared half and half.
        out = resize_area(np.array([[0.0, 3.0, 6.0]], np.float32), 1, 2)
        np.testing.assert_allclose(out, [[(0.0 + 0.5 * 3.0) / 1.5, (0.5 * 3.0 + 6.0) / 1.5]], atol=1e-6)

    def test_keeps_a_constant_and_the_mean(self):
        rng = np.random.default_rng(1)
        values = rng.random((97, 131)).astype(np.float32)
        assert np.allclose(resize_area(np.full((97, 131), 0.25, np.float32), 13, 29), 0.25)
        # At factors dividing the size exactly the mean is kept (every input pixel weighs the same).
        assert resize_area(values[:91, :130], 13, 26).mean() == pytest.approx(values[:91, :130].mean(), abs=1e-5)

    def test_is_opencvs_bit_for_bit_on_real_films(self, films):
        """The model input's resize: the same float32 values as OpenCV, not merely close ones."""
        cv2 = _cv2()
        for display in films:
            sizes = ((224, 224), (300, 257), (display.shape[0] // 3, display.shape[1] // 2),
                     (display.shape[0] - 1, display.shape[1] - 7))
            for rows, cols in sizes:
                ours = resize_area(display, rows, cols)
                theirs = cv2.resize(display, (cols, rows), interpolation=cv2.INTER_AREA)
                assert ours.dtype == np.float32 and ours.shape == (rows, cols)
                np.testing.assert_array_equal(ours, theirs, err_msg=f"{display.shape} -> {(rows, cols)}")

    @pytest.mark.parametrize("factors", [(2, 2), (3, 3), (4, 2), (1, 3), (5, 5)])
    def test_whole_number_factors_bit_for_bit(self, factors, films):
        cv2 = _cv2()
        grey = films[0][:224 * factors[0], :224 * factors[1]]
        for values in (grey, np.rint(grey * 255).astype(np.uint8)):
            theirs = cv2.resize(values, (224, 224), interpolation=cv2.INTER_AREA)
            np.testing.assert_array_equal(resize_area(values, 224, 224), theirs)

    def test_uint8_colour_bit_for_bit(self, films):
        cv2 = _cv2()
        grey = np.rint(films[0] * 255).astype(np.uint8)
        rgb = np.dstack([grey, grey // 2, 255 - grey])
        ours = resize_area(rgb, 500, 411)
        assert ours.dtype == np.uint8 and ours.shape == (500, 411, 3)
        np.testing.assert_array_equal(ours, cv2.resize(rgb, (411, 500), interpolation=cv2.INTER_AREA))

    def test_refuses_bad_sizes(self):
        with pytest.raises(ValueError, match="positive"):
            resize_area(np.zeros((4, 4), np.float32), 0, 2)
        with pytest.raises(ValueError, match="shape"):
            resize_area(np.zeros((4,), np.float32), 2, 2)


class TestResizeBilinear:
    def test_half_pixel_centres_and_edge_clamp(self):
        # Two pixels to four: samples at -0.25, 0.25, 0.75, 1.25 of the input grid.
        out = resize_bilinear(np.array([[0.0, 4.0]], np.float32), 1, 4)
        np.testing.assert_allclose(out, [[0.0, 1.0, 3.0, 4.0]], atol=1e-6)

    def test_matches_opencv_both_ways(self, films):
        cv2 = _cv2()
        rng = np.random.default_rng(0)
        heatmap = rng.random((7, 7)).astype(np.float32)
        cases = [(heatmap, (224, 224))] + [(display, size) for display in films
                                       for size in ((224, 224), (display.shape[0] + 37, display.shape[1] // 2))]
        for values, (rows, cols) in cases:
            ours = resize_bilinear(values, rows, cols)
            theirs = cv2.resize(values, (cols, rows), interpolation=cv2.INTER_LINEAR)
            assert np.abs(ours - theirs).max() < FLOAT_TOLERANCE, (values.shape, rows, cols)

    def test_does_not_mutate_its_input(self):
        values = np.arange(12, dtype=np.float32).reshape(3, 4)
        before = values.copy()
        resize_bilinear(values, 5, 9)
        resize_area(values, 2, 3)
        np.testing.assert_array_equal(values, before)
        same = resize_bilinear(values, 3, 4)  # an unchanged size is a copy, as cv2.resize gives
        assert same is not values and not np.shares_memory(same, values)
        np.testing.assert_array_equal(same, values)


def test_model_input_equals_opencvs(films):
    """Preprocessing steps 1-3 (the model's input) through numpy equal OpenCV's on real films."""
    cv2 = _cv2()
    for display in films:
        ours = resize_and_stretch(display, 224)
        resized = cv2.resize(display, (224, 224), interpolation=cv2.INTER_AREA)
        step = max(1, min(resized.shape) // 256)
        low, high = np.percentile(resized[::step, ::step], (0.5, 99.5))
        theirs = np.clip((resized - low) / (high - low), 0.0, 1.0).astype(np.float32)
        np.testing.assert_array_equal(ours, theirs)


class TestColourTable:
    def test_is_opencv_jet_exactly(self):
        cv2 = _cv2()
        theirs = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0, ::-1]
        np.testing.assert_array_equal(colour_table(), theirs)

    def test_colorize_low_blue_high_red(self):
        rgb = colorize(np.array([[0.0, 0.5, 1.0, 2.0, -1.0]], np.float32))
        assert rgb.dtype == np.uint8 and rgb.shape == (1, 5, 3)
        assert rgb[0, 0].tolist() == [0, 0, 128]   # dark blue
        assert rgb[0, 2].tolist() == [128, 0, 0]   # dark red
        assert rgb[0, 3].tolist() == rgb[0, 2].tolist() and rgb[0, 4].tolist() == rgb[0, 0].tolist()  # clipped
