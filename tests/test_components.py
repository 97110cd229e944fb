"""cxr_engine.pixels.components: numpy connected components, the same partition, areas, centroids and
boxes as OpenCV's on real lung masks (cxr3/lung_masks) and the lung pipeline's uses of them."""
from __future__ import annotations

import numpy as np
import pytest

from cxr_engine.models.cardiothoracic import _two_lungs
from cxr_engine.models.lung_fields import check_plausibility, clean_mask
from cxr_engine.pixels.components import connected_components

from conftest import real_lung_masks

MASKS = 40


def test_diagonal_neighbours_join_under_8_connectivity_only():
    mask = np.array([[1, 0, 0, 1],
                     [0, 1, 0, 1],
                     [0, 0, 0, 0],
                     [1, 1, 0, 1]], dtype=np.uint8)
    eight = connected_components(mask, 8)
    four = connected_components(mask, 4)
    assert eight.count == 4 and four.count == 5
    assert eight.labels.tolist() == [[1, 0, 0, 2], [0, 1, 0, 2], [0, 0, 0, 0], [3, 3, 0, 4]]
    assert eight.areas.tolist() == [9, 2, 2, 2, 1]
    assert eight.centroids[1].tolist() == [0.5, 0.5] and eight.centroids[3].tolist() == [0.5, 3.0]
    assert eight.boxes[2].tolist() == [3, 0, 1, 2]
    assert eight.largest_first().tolist() == [1, 2, 3, 4]
    assert eight.first_pixels[1:].tolist() == [0, 3, 12, 15]


def test_empty_full_and_bad_input():
    assert connected_components(np.zeros((5, 7), np.uint8)).count == 0
    full = connected_components(np.ones((5, 7), bool))
    assert full.count == 1 and full.areas.tolist() == [0, 35] and full.boxes[1].tolist() == [0, 0, 7, 5]
    with pytest.raises(ValueError, match="connectivity"):
        connected_components(np.ones((3, 3)), 6)
    with pytest.raises(ValueError, match="2-D"):
        connected_components(np.ones(3))


@pytest.mark.parametrize("connectivity", [8, 4])
def test_same_components_as_opencv_on_real_lung_masks(cxr3_dir, connectivity):
    cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (the lite bundle has none)")
    for mask in real_lung_masks(cxr3_dir, MASKS):
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8),
                                                                            connectivity=connectivity)
        ours = connected_components(mask, connectivity)
        assert ours.count == count - 1
        # The same partition: each (OpenCV label, our label) pair occurs once per component.
        pairs = np.unique(np.stack([labels.ravel(), ours.labels.ravel()], axis=1), axis=0)
        assert len(pairs) == count
        for theirs, mine in pairs:
            assert ours.areas[mine] == stats[theirs, cv2.CC_STAT_AREA]
            np.testing.assert_allclose(ours.centroids[mine], centroids[theirs], rtol=0, atol=1e-9)
            if theirs:
                assert ours.boxes[mine].tolist() == stats[theirs, :4].tolist()


def test_lung_steps_as_with_opencv_on_real_lung_masks(cxr3_dir):
    """clean_mask, check_plausibility and the CTR's two lungs give what the OpenCV code gave."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (the lite bundle has none)")
    for mask in real_lung_masks(cxr3_dir, MASKS)[::3]:
        noisy = mask.copy()
        noisy[::37, ::41] ^= True  # specks and pin-holes for clean_mask to remove
        count, labels, stats, _ = cv2.connectedComponentsWithStats(noisy.astype(np.uint8), connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        small = (areas < 0.005 * noisy.size) & (areas < 0.1 * areas.max())
        kept = np.concatenate([[False], ~small])[labels].astype(np.uint8)
        _, background = cv2.connectedComponents(np.pad(1 - kept, 1, constant_values=1), connectivity=4)
        expected = ~(background[1:-1, 1:-1] == background[0, 0])
        cleaned = clean_mask(noisy)
        assert np.array_equal(cleaned, expected)

        lungs, warning = check_plausibility(cleaned)
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(cleaned.astype(np.uint8), connectivity=8)
        two = sorted(np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:2] + 1, key=lambda i: centroids[i][0])
        if warning is None:
            assert [lung.area for lung in lungs] == [int(stats[i, cv2.CC_STAT_AREA]) for i in two]
            assert [lung.bbox for lung in lungs] == [
                (int(stats[i, 1]), int(stats[i, 0]), int(stats[i, 1] + stats[i, 3]), int(stats[i, 0] + stats[i, 2]))
                for i in two]
        if count >= 3:
            left, right = _two_lungs(cleaned)
            assert np.array_equal(left, labels == two[0]) and np.array_equal(right, labels == two[1])
