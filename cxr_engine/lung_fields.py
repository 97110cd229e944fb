"""Lung fields: a bundled U-Net's lung mask at an image's own pixel grid, and a plausibility check.

(Filled in below; ``mask_at_grid`` is shared with ``training.segment`` so that the training
script's Dice figures are measured exactly as the engine returns masks.)
"""
from __future__ import annotations

import numpy as np


def mask_at_grid(probability: np.ndarray, shape: tuple[int, int], threshold: float = 0.5) -> np.ndarray:
    """A (size, size) lung probability at the model's input grid -> a bool mask of ``shape`` (rows, cols).

    The model input is the whole image resized without crop or padding (preprocessing step 2), so the
    probability map is resized back the same way (bilinear) before thresholding.
    """
    import cv2

    rows, cols = int(shape[0]), int(shape[1])
    prob = np.ascontiguousarray(probability, dtype=np.float32)
    if prob.shape != (rows, cols):
        prob = cv2.resize(prob, (cols, rows), interpolation=cv2.INTER_LINEAR)
    return prob >= threshold
