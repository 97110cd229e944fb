"""cxr_engine.pixels.contours: outer border following in numpy/Python, the same points as OpenCV's
findContours(RETR_EXTERNAL, CHAIN_APPROX_SIMPLE) on real lung masks, and its callers (heat-map outlines,
the viewer's lung outlines)."""
from __future__ import annotations

import numpy as np
import pytest

from cxr_desktop.lung_jobs import outline
from cxr_engine.pixels.contours import outer_contours, polygon_area
from cxr_engine.pixels.overlay import outline_contours

from conftest import real_lung_masks

MASKS = 30


def test_square_ring_and_island_inside_its_hole():
    mask = np.zeros((12, 14), np.uint8)
    mask[1:11, 1:11] = 1
    mask[3:9, 3:9] = 0   # a hole ...
    mask[5:7, 5:7] = 1   # ... with an island in it: not an outer contour
    mask[0, 13] = 1      # a single pixel
    contours = outer_contours(mask)
    assert [c.tolist() for c in contours] == [[[13, 0]], [[1, 1], [1, 10], [10, 10], [10, 1]]]
    assert polygon_area(contours[1]) == 81.0 and polygon_area(contours[0]) == 0.0
    assert outer_contours(np.zeros((4, 4))) == []
    with pytest.raises(ValueError, match="2-D"):
        outer_contours(np.zeros(4))


def test_outline_contours_largest_first_and_lung_outline_through_pixel_centres():
    shown = np.zeros((20, 20), np.float32)
    shown[2:5, 2:5] = 0.9
    shown[8:18, 8:18] = 0.7
    contours = outline_contours(shown, 0.5)
    assert [c.dtype for c in contours] == [np.float32, np.float32]
    assert contours[0].tolist() == [[8, 8], [8, 17], [17, 17], [17, 8]]
    lungs = outline(shown > 0.5)
    assert sorted(c[0].tolist() for c in lungs) == [[2.5, 2.5], [8.5, 8.5]]


def test_same_points_and_areas_as_opencv_on_real_lung_masks(cxr3_dir):
    cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (the lite bundle has none)")
    rng = np.random.default_rng(16)
    speckled = [rng.random((60, 80)) < 0.4 for _ in range(10)]  # many touching and nested regions
    for mask in real_lung_masks(cxr3_dir, MASKS) + speckled:
        theirs, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        ours = outer_contours(mask)
        assert sorted(c.reshape(-1, 2).tolist() for c in theirs) == sorted(c.tolist() for c in ours)
        np.testing.assert_allclose(sorted(polygon_area(c) for c in ours),
                                   sorted(cv2.contourArea(c) for c in theirs), rtol=0, atol=1e-9)
