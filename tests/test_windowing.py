"""Windowing maths against values computed by hand from PS3.3 C.11.2.1.2."""
from __future__ import annotations

import numpy as np
import pytest

from cxr_engine.pixels.windowing import (
    LINEAR,
    LINEAR_EXACT,
    SIGMOID,
    VoiLut,
    Window,
    apply_voi_lut_table,
    apply_window,
)


class TestLinear:
    # c=2048, w=4096: y = (x - 2047.5) / 4095 + 0.5, clipped below 0.0 and above 1.0
    @pytest.mark.parametrize(
        "x, expected",
        [(0, 0.0), (-10, 0.0), (2047.5, 0.5), (4095, 1.0), (5000, 1.0), (1000, (1000 - 2047.5) / 4095 + 0.5)],
    )
    def test_spot_values(self, x, expected):
        assert apply_window(np.array([x]), Window(2048, 4096, LINEAR))[0] == pytest.approx(expected, abs=1e-6)

    def test_width_one_is_a_threshold(self):
        out = apply_window(np.array([99, 99.5, 100, 101]), Window(100, 1, LINEAR))
        np.testing.assert_array_equal(out, [0, 0, 1, 1])

    def test_width_below_one_is_refused(self):
        with pytest.raises(ValueError, match="Window Width"):
            Window(100, 0.5, LINEAR)


class TestLinearExact:
    # c=40, w=400: y = (x - 40) / 400 + 0.5 on [-160, 240]
    @pytest.mark.parametrize("x, expected", [(-160, 0.0), (40, 0.5), (240, 1.0), (140, 0.75), (-1000, 0.0)])
    def test_spot_values(self, x, expected):
        assert apply_window(np.array([x]), Window(40, 400, LINEAR_EXACT))[0] == pytest.approx(expected, abs=1e-6)


class TestSigmoid:
    # y = 1 / (1 + exp(-4 (x - c) / w))
    @pytest.mark.parametrize("x, expected", [(500, 0.5), (750, 1 / (1 + np.exp(-2))), (250, 1 / (1 + np.exp(2)))])
    def test_spot_values(self, x, expected):
        assert apply_window(np.array([x]), Window(500, 500, SIGMOID))[0] == pytest.approx(expected, abs=1e-6)


class TestVoiLutTable:
    def test_first_mapped_and_clamping(self):
        lut = VoiLut(first_mapped=100, table=np.array([0, 1000, 2000, 4095]), bits=12)
        out = apply_voi_lut_table(np.array([0, 100, 101, 102, 103, 5000]), lut)
        np.testing.assert_allclose(out, [0, 0, 1000 / 4095, 2000 / 4095, 1, 1], atol=1e-6)


def test_functions_do_not_mutate_their_input():
    values = np.arange(10, dtype=np.int32)
    before = values.copy()
    apply_window(values, Window(5, 4, LINEAR))
    apply_voi_lut_table(values, VoiLut(0, np.arange(10), 4))
    np.testing.assert_array_equal(values, before)


def test_unknown_voi_function_is_refused():
    with pytest.raises(ValueError, match="VOI LUT Function"):
        Window(1, 2, "LOG")
