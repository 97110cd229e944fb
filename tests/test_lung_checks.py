"""training.lung_checks: lungs-masked test with each film's own lung fields, and heat-map in lungs."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


def two_lungs(size: int = 100) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[20:80, 15:42] = True
    mask[20:80, 58:85] = True
    return mask


def test_blank_lungs_fills_only_the_mask_with_the_outside_median():
    from training.lung_checks import blank_lungs

    grey = np.linspace(0, 1, 100 * 100, dtype=np.float32).reshape(100, 100)
    mask = two_lungs()
    out = blank_lungs(grey, mask)
    assert np.all(out[mask] == pytest.approx(float(np.median(grey[~mask]))))
    np.testing.assert_array_equal(out[~mask], grey[~mask])
    assert not np.shares_memory(out, grey)


def test_dilation_grows_the_mask_by_the_stated_fraction():
    from training.lung_checks import dilated

    mask = two_lungs()
    grown = dilated(mask, 0.03)
    assert grown[mask].all() and grown.sum() > mask.sum()
    assert grown[20, 12] and not grown[20, 11]  # 3 px on a 100 px side


def test_heatmap_share_in_mask_by_hand():
    from training.lung_checks import heatmap_share_in_mask

    mask = two_lungs()
    heat = np.zeros((100, 100), np.float32)
    heat[50, 20] = 3.0  # in a lung
    heat[50, 50] = 1.0  # mediastinum
    heat[0, 0] = -5.0  # negative values carry no evidence
    assert heatmap_share_in_mask(heat, mask) == pytest.approx(0.75)
    assert heatmap_share_in_mask(np.zeros((100, 100)), mask) is None


def test_own_lungs_masked_display_uses_the_film_mask_and_falls_back(cxr3_dir):
    from cxr_engine.reading.read import read_image
    from training.lung_checks import own_lungs_masked_display

    path = str(next((cxr3_dir / "images" / "normal").glob("*.jpg")))
    shape = read_image(path).display().shape
    found = SimpleNamespace(segment=lambda image: SimpleNamespace(found=True, mask=_scaled_lungs(shape)))
    out, ok = own_lungs_masked_display(path, 64, found, fallback=lambda g: g * 0)
    assert ok and out.shape == (64, 64)
    assert np.ptp(out[25:45, 12:24]) == 0.0  # inside the left lung: one fill value
    missing = SimpleNamespace(segment=lambda image: SimpleNamespace(found=False, mask=None))
    out, ok = own_lungs_masked_display(path, 64, missing, fallback=lambda g: g * 0)
    assert not ok and out.max() == 0.0


def _scaled_lungs(shape: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(two_lungs().astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST).astype(bool)
