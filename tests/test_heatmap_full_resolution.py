"""cxr_engine.models.classifier.heatmap_at_full_resolution: a reduced decode's heat-map on the full film's grid."""
from __future__ import annotations

import numpy as np
import pytest

from cxr_engine.models.classifier import HeatmapResult, Prediction, heatmap_at_full_resolution

PREDICTION = Prediction(("normal", "pneumonia", "covid"), (0.2, 0.7, 0.1), "test")


def _result(heatmap):
    return HeatmapResult(np.asarray(heatmap, dtype=np.float32), "pneumonia", PREDICTION)


class TestHeatmapAtFullResolution:
    def test_each_reduced_pixel_covers_its_block_of_full_pixels(self):
        # 5×7 full pixels reduced ×2: a 3×4 grid, the last row and column half outside the film.
        reduced = np.zeros((3, 4), np.float32)
        reduced[1, 2] = 1.0
        result = heatmap_at_full_resolution(_result(reduced), 2, (5, 7))
        assert result.heatmap.shape == (5, 7) and result.heatmap.dtype == np.float32
        # Full pixels 2-3 (rows) and 4-5 (columns) lie inside the reduced pixel (1, 2): the peak is there.
        peak = np.unravel_index(np.argmax(result.heatmap), result.heatmap.shape)
        assert peak[0] in (2, 3) and peak[1] in (4, 5)
        assert result.heatmap[2:4, 4:6].min() == result.heatmap.max()
        assert result.prediction is PREDICTION and result.target_class == "pneumonia"

    def test_a_constant_map_stays_constant_and_values_stay_in_0_1(self):
        result = heatmap_at_full_resolution(_result(np.full((532, 500), 0.25)), 4, (2128, 2000))
        assert result.heatmap.shape == (2128, 2000) and np.all(result.heatmap == np.float32(0.25))

    def test_a_map_already_on_the_grid_is_returned_as_it_is(self):
        result = _result(np.zeros((10, 12)))
        assert heatmap_at_full_resolution(result, 1, (10, 12)) is result

    def test_a_map_of_another_grid_is_refused(self):
        with pytest.raises(ValueError, match="not the ×2 reduced grid"):
            heatmap_at_full_resolution(_result(np.zeros((10, 12))), 2, (30, 24))
